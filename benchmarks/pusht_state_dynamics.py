"""How good must PushT's learned dynamics be? The protocol planned on a learned *state* model.

`pusht_oracle.py` plans the protocol's episodes on gym-pusht's own physics with a cost on true
states (0.90). The world models plan about 0.5 (README, PushT). Between the two, this script
learns the dynamics from the same episodes the world models train on, but from the true states
instead of pixels: an MLP maps (state, the `frame_stride` actions of one model step) to the state
one model step later (trained on the change: positions in 20 px units, the block's wrapped angle in
units of 0.2 rad). It then plans each episode with the protocol's CEM and MPC (`pusht_oracle.
mpc_episode`) and the oracle's cost on the predicted states, executing in the real env.

So it separates what the data allows (a dynamics model learned from these episodes, with the state
given) from what the pixels and the latent cost lose. With `--augment dihedral` each transition
also enters turned by the square's 7 other symmetries (`jepaworld/data/augment.py`,
`jepaworld.envs.pusht.turn_state`), as `jepaworld train --augment dihedral` turns clips. With
`--heldout DATASET` it also reports the median one-step errors on that dataset's transitions in
which the block moved, beside "nothing moved".

Usage::

    jepaworld plan --run trun --env jepaworld/PushT-v0 --out teval      # the episodes to plan
    python benchmarks/pusht_state_dynamics.py --data tdata --results teval/results.json \\
        --heldout thold [--augment dihedral]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pusht_oracle import ANGLE_PX, CostFn, mpc_episode, protocol_episodes  # beside this script
from targets import report_and_save  # benchmarks/targets.py, beside this script
from torch import nn

from jepaworld.data.augment import ELEMENTS, element_matrix, turn_actions
from jepaworld.data.episodes import EpisodeStore
from jepaworld.envs.pusht import PushTEnv, turn_state

POS_UNIT, ANGLE_UNIT = 20.0, 0.2
"""The MLP's output units: canvas px of position change, radians of angle change."""


def wrap(angle: torch.Tensor) -> torch.Tensor:
    """Angles wrapped to [-pi, pi)."""
    return (angle + math.pi) % (2 * math.pi) - math.pi


def transitions(root: Path, stride: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every (state, the `stride` actions after it, the state `stride` steps later) of a dataset:
    (N, 5), (N, stride * 2), (N, 5); action t takes frame t to frame t + 1."""
    store = EpisodeStore(root)
    starts, acts, ends = [], [], []
    for e in range(len(store)):
        s, a = store.states(e), store.episode(e).actions  # (L, 5), (L, 2)
        t = np.arange(len(s) - stride)  # starts with `stride` actions and an end state after them
        starts.append(s[t])
        acts.append(np.stack([a[t + k] for k in range(stride)], axis=1).reshape(len(t), -1))
        ends.append(s[t + stride])
    return tuple(torch.tensor(np.concatenate(v), dtype=torch.float32) for v in (starts, acts, ends))


def turned_copies(
    starts: torch.Tensor, acts: torch.Tensor, ends: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The transitions under each of the square's 8 symmetries (the identity first): 8N of each."""
    out: list[list[torch.Tensor]] = [[], [], []]
    for g in range(len(ELEMENTS)):
        m = element_matrix(g).numpy()
        out[0].append(torch.tensor(turn_state(starts.numpy(), m), dtype=torch.float32))
        out[1].append(turn_actions(acts, g))
        out[2].append(torch.tensor(turn_state(ends.numpy(), m), dtype=torch.float32))
    return tuple(torch.cat(v) for v in out)


class StateDynamics(nn.Module):
    """(state (N, 5), actions (N, k * 2)) -> the state one model step later (N, 5)."""

    def __init__(self, action_width: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(6 + action_width, width), nn.GELU(),
            nn.Linear(width, width), nn.GELU(),
            nn.Linear(width, width), nn.GELU(),
            nn.Linear(width, 5),
        )  # fmt: skip

    @staticmethod
    def features(states: torch.Tensor) -> torch.Tensor:
        """(N, 5) -> (N, 6): positions / 512, the angle's cosine and sine."""
        return torch.cat(
            [states[:, :4] / 512, torch.cos(states[:, 4:]), torch.sin(states[:, 4:])], 1
        )

    def change(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The predicted change in training units (N, 5)."""
        return self.net(torch.cat([self.features(states), actions], dim=1))

    def forward(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        d = self.change(states, actions)  # (N, 5)
        return torch.cat(
            [states[:, :4] + d[:, :4] * POS_UNIT, states[:, 4:] + d[:, 4:] * ANGLE_UNIT], 1
        )


def change_targets(starts: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
    """What `StateDynamics.change` is fitted to (N, 5)."""
    return torch.cat(
        [(ends[:, :4] - starts[:, :4]) / POS_UNIT, wrap(ends[:, 4:] - starts[:, 4:]) / ANGLE_UNIT],
        1,
    )


def fit(
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor], width: int, steps: int, seed: int
) -> tuple[StateDynamics, float]:
    """AdamW (1e-3, cosine to 0) on batches of 512; returns the model and its last batch loss."""
    starts, acts, ends = data
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = StateDynamics(acts.shape[1], width)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    targets = change_targets(starts, ends)
    loss = torch.zeros(())
    for _ in range(steps):
        b = torch.randint(0, len(starts), (512,), generator=gen)
        loss = (model.change(starts[b], acts[b]) - targets[b]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model.eval(), float(loss.detach())


@torch.no_grad()
def one_step_errors(
    model: StateDynamics, data: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
) -> dict[str, dict[str, float]]:
    """Median pusher px, block px, block angle degrees one model step ahead, on transitions whose
    block moved over 2 px or 1 degree, for the model and for "nothing moved"."""
    starts, acts, ends = data
    moved = ((ends[:, 2:4] - starts[:, 2:4]).norm(dim=1) > 2) | (
        wrap(ends[:, 4] - starts[:, 4]).abs() > math.radians(1)
    )
    out = {"transitions": {"moved": int(moved.sum()), "all": len(moved)}}
    for name, guess in (("model", model(starts, acts)), ("nothing_moved", starts)):
        g, e = guess[moved], ends[moved]
        out[name] = {
            "pusher_px": float((g[:, :2] - e[:, :2]).norm(dim=1).median()),
            "block_px": float((g[:, 2:4] - e[:, 2:4]).norm(dim=1).median()),
            "angle_deg": float(torch.rad2deg(wrap(g[:, 4] - e[:, 4]).abs()).median()),
        }
    return out


@torch.no_grad()
def model_costs(
    model: StateDynamics, state: torch.Tensor, goal: torch.Tensor, actions: torch.Tensor,
    *, stride: int, w: float,
) -> torch.Tensor:  # fmt: skip
    """actions (1, S, L, 2), each held `stride` env steps -> (1, S): the oracle's cost (squared
    position error plus the angle weighed as the criterion does) at the end of the predicted
    rollout plus `w` x its mean over the earlier model steps."""
    plans = actions[0]  # (S, L, 2)
    s = state[None].expand(plans.shape[0], 5)  # (S, 5)
    dist = []
    for step in range(plans.shape[1]):
        s = model(s, plans[:, step].repeat(1, stride))  # (S, 5): the action held `stride` steps
        turn = wrap(s[:, 4] - goal[4])
        dist.append((s[:, :4] - goal[:4]).pow(2).sum(1) + (ANGLE_PX * turn).pow(2))
    d = torch.stack(dist, dim=1)  # (S, L)
    later = w * d[:, :-1].mean(1) if d.shape[1] > 1 else 0.0
    return (d[:, -1] + later)[None]


def plan_all(
    model: StateDynamics, episodes: list[dict[str, Any]], planner: dict[str, Any], seed: int
) -> list[dict[str, Any]]:
    """Each episode planned in a real env with the model's costs (planner seed `seed` + i)."""

    def costs_now(env: PushTEnv, info: dict[str, Any], goal: torch.Tensor) -> CostFn:
        state = torch.tensor(info["state"], dtype=torch.float32)
        return functools.partial(
            model_costs, model, state, goal,
            stride=planner["frame_stride"], w=planner["intermediate_weight"],
        )  # fmt: skip

    env, out = PushTEnv(), []
    try:
        for i, e in enumerate(episodes):
            goal = torch.tensor(e["goal"], dtype=torch.float32)
            costs = functools.partial(costs_now, goal=goal)
            out.append(mpc_episode(env, e, planner, planner["iterations"], seed + i, costs))
    finally:
        env.close()
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="PushT episodes to learn from")
    p.add_argument("--results", type=Path, required=True, help="results.json of a PushT plan")
    p.add_argument("--heldout", type=Path, default=None, help="episodes to measure errors on")
    p.add_argument("--augment", choices=["none", "dihedral"], default="none")
    p.add_argument("--steps", type=int, default=20000, help="optimizer steps (batch 512)")
    p.add_argument("--width", type=int, default=512, help="hidden width of the 3-layer MLP")
    p.add_argument("--episodes", type=int, default=50, help="the results file's first N")
    p.add_argument(
        "--seed", type=int, default=0, help="training seed; planner seed for episode i: seed + i"
    )
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/pusht_state_dynamics.json"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    results = json.loads(args.results.read_text())
    protocol, episodes = protocol_episodes(results, args.results, args.episodes)
    planner = dataclasses.asdict(protocol.planner)
    stride = planner["frame_stride"]
    t0 = time.perf_counter()
    data = transitions(args.data, stride)
    if args.augment == "dihedral":
        data = turned_copies(*data)
    model, loss = fit(data, args.width, args.steps, args.seed)
    fit_seconds = time.perf_counter() - t0
    errors = (
        None if args.heldout is None else one_step_errors(model, transitions(args.heldout, stride))
    )
    t1 = time.perf_counter()
    outcomes = plan_all(model, episodes, planner, args.seed)
    rate = sum(o["success"] for o in outcomes) / len(outcomes)
    world_model = sum(o["model_success"] for o in outcomes) / len(outcomes)
    result = {
        "results_file": str(args.results),
        "data": str(args.data),
        "augment": args.augment,
        "training": {
            "transitions": len(data[0]),
            "steps": args.steps,
            "width": args.width,
            "last_batch_loss": loss,
            "seconds": round(fit_seconds, 1),
        },  # fmt: skip
        "heldout_one_step": errors,
        "protocol": protocol.to_dict(),
        "episodes": len(outcomes),
        "state_model_success_rate": rate,
        "world_model_success_rate_same_episodes": world_model,
        "plan_seconds": round(time.perf_counter() - t1, 1),
        "per_episode": outcomes,
    }
    print(
        f"state-dynamics planner {rate:.2f} against the world model's {world_model:.2f} on the same "
        f"{len(outcomes)} episodes ({len(data[0])} transitions, {fit_seconds:.0f} s to fit)"
    )
    if errors:
        m, n = errors["model"], errors["nothing_moved"]
        print(
            f"held-out one-step errors where the block moved: block {m['block_px']:.1f} px (nothing "
            f"moved: {n['block_px']:.1f}), angle {m['angle_deg']:.1f} deg ({n['angle_deg']:.1f})"
        )
    report_and_save(result, args.out)
    return result


if __name__ == "__main__":
    main()
