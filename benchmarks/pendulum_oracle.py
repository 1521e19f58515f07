"""Can Pendulum's trajectory-goal protocol be solved at all? Its planner on the true dynamics.

`jepaworld plan --env Pendulum-v1` has planned at or below the rate of random actions (README,
"Use your own environment"). That is the world model's fault or the protocol's: the goal is the
(cos, sin, angular velocity) of a random trajectory 25 steps ahead, within 0.5 (L2), reached by
at most 2 N m of torque in a 50-step budget. This script takes the episodes of one `plan` run
(its results.json: each episode's start and goal state, the model's and random actions' outcomes)
and plans them again with the same CEM (S, K, iterations, horizon from the file's protocol block;
held actions, replanning every model step and the shifted warm start, as `LatentMPC` does; a file
planned otherwise is refused) over the environment's own equations instead of a world model,
from the true state, and steps the real `gymnasium` Pendulum-v1 to judge success
as the protocol does (any step within the tolerance ends the episode). Two costs:

- `final`: the planner's own cost structure, on states: the squared distance of the state at the
  end of the horizon to the goal, plus `intermediate_weight` x the mean squared distance at the
  earlier model steps (what `LatentGoalCost` does with embeddings; with one goal state, where
  Pendulum's protocol gives the planner two goal frames, 20 and 25 steps ahead);
- `any_step`: the least distance at any environment step of the horizon, which is what success
  asks for;
- `any_model_step`: the same at the model steps only (every `frame_stride` environment steps), as
  a perfect world model of the full state would plan with the nearest step's cost (goal_at any)
  toward the goal state alone;
- `angle_clip`: version 4's cost with what the goal clip shows: the angle (cos, sin) alone, at
  every `goal_frames`-long window of model steps against the clip's frames (regenerated from the
  episode's seed with the protocol's policy, checked against the stored goal), the least mean
  squared distance over windows. That is a world model whose embedding is the angle, predicted
  without error: what this protocol asks of one that sees no speed in a frame.

The last two tell whether a failure lies in the model or in what the protocol lets it see.

The dynamics are gymnasium's Pendulum-v1 (g = 10, m = l = 1, dt = 0.05, torque within 2, speed
within 8; facts from gymnasium/envs/classic_control/pendulum.py), written again in torch so the
planner scores all samples of all episodes in one batch.

Usage::

    jepaworld plan --run prun --env Pendulum-v1 --out peval
    python benchmarks/pendulum_oracle.py --results peval/results.json
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from targets import report_and_save  # benchmarks/targets.py, beside this script

from jepaworld.bench.protocols import TrajectoryProtocol
from jepaworld.bench.trajectory_eval import held_out_goal
from jepaworld.planning.cem import CEM, CEMConfig
from jepaworld.planning.protocols import ActionBounds

G, DT, MAX_TORQUE, MAX_SPEED = 10.0, 0.05, 2.0, 8.0  # gymnasium Pendulum-v1, m = l = 1
COSTS = ("final", "any_step", "any_model_step", "angle_clip")


def pendulum_step(
    th: torch.Tensor, thdot: torch.Tensor, u: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """One environment step of Pendulum-v1 on tensors of any (same) shape."""
    u = u.clamp(-MAX_TORQUE, MAX_TORQUE)
    thdot = (thdot + (3 * G / 2 * torch.sin(th) + 3.0 * u) * DT).clamp(-MAX_SPEED, MAX_SPEED)
    return th + thdot * DT, thdot


def observe(th: torch.Tensor, thdot: torch.Tensor) -> torch.Tensor:
    """(...,) angle and speed -> (..., 3) observation (cos, sin, speed), as the env gives it."""
    return torch.stack([torch.cos(th), torch.sin(th), thdot], dim=-1)


def simulate(state: torch.Tensor, actions: torch.Tensor, stride: int) -> torch.Tensor:
    """state (E, 2) (angle, speed); actions (E, S, L, 1), each held for `stride` steps ->
    observations after every environment step (E, S, L * stride, 3)."""
    E, S, L, _ = actions.shape
    th = state[:, 0, None].expand(E, S)  # (E, S)
    thdot = state[:, 1, None].expand(E, S)  # (E, S)
    out = []
    for step in range(L * stride):
        th, thdot = pendulum_step(th, thdot, actions[:, :, step // stride, 0])
        out.append(observe(th, thdot))
    return torch.stack(out, dim=2)  # (E, S, L*stride, 3)


def state_cost(
    state: torch.Tensor, clip: torch.Tensor, stride: int, kind: str, intermediate: float
) -> Any:
    """The batch cost function over actions (E, S, L, 1) -> (E, S) for start states (E, 2) and
    goal clips (E, G, 3), observations one model step apart ending at the goal."""
    if kind not in COSTS:
        raise ValueError(f"kind: must be one of {COSTS}, got {kind!r}")
    goal = clip[:, -1]  # (E, 3)

    def cost(actions: torch.Tensor) -> torch.Tensor:
        obs = simulate(state, actions, stride)  # (E, S, L*stride, 3)
        if kind == "any_step":
            return (obs - goal[:, None, None]).norm(dim=-1).min(dim=-1).values
        at_steps = obs[:, :, stride - 1 :: stride]  # (E, S, L, 3): after each model step
        if kind == "angle_clip":
            G = clip.shape[1]
            windows = at_steps[..., :2].unfold(2, G, 1)  # (E, S, L-G+1, 2, G)
            target = clip[:, None, None, :, :2].transpose(-1, -2)  # (E, 1, 1, 2, G)
            err = (windows - target).square().sum(-2).mean(-1)  # (E, S, L-G+1)
            return err.min(dim=-1).values
        dist = (at_steps - goal[:, None, None]).norm(dim=-1)  # (E, S, L)
        if kind == "any_model_step":
            return dist.min(dim=-1).values
        sq = dist.square()  # (E, S, L)
        rest = sq[:, :, :-1].mean(-1) if sq.shape[-1] > 1 else 0.0
        return sq[:, :, -1] + intermediate * rest

    return cost


def true_state(obs: list[float]) -> tuple[float, float]:
    """(cos, sin, speed) -> (angle, speed)."""
    return math.atan2(obs[1], obs[0]), obs[2]


def make_envs(starts: list[list[float]]) -> list[Any]:
    """One gymnasium Pendulum-v1 per episode, set to the episode's start state."""
    import gymnasium as gym

    envs = []
    for start in starts:
        env = gym.make("Pendulum-v1")
        env.reset(seed=0)
        env.unwrapped.state = np.array(true_state(start), dtype=np.float64)
        envs.append(env)
    return envs


def goal_clips(episodes: list[dict[str, Any]], protocol: dict[str, Any]) -> torch.Tensor:
    """(E, G, 3): the states of each episode's goal clip, from its seed with the protocol's policy
    (as `jepaworld plan` made them); refused unless the last is the stored goal."""
    base = TrajectoryProtocol.for_env("Pendulum-v1")
    stride = protocol["planner"]["frame_stride"]
    fields = ("goal_steps", "policy", "persistence", "noise")
    replay = dataclasses.replace(
        base,
        **{k: protocol[k] for k in fields},
        goal_frames=protocol.get("goal_frames", 1),  # versions 1-2: one goal image
        planner=dataclasses.replace(base.planner, frame_stride=stride),
    )
    clips = []
    for ep in episodes:
        _, (_, states) = held_out_goal(replay, ep["seed"], 16)  # (G, 3); the frames unused
        if not np.allclose(states[-1], ep["goal"], atol=1e-4):
            raise SystemExit(
                f"episode seed {ep['seed']}: its goal replayed as {states[-1].tolist()}, the "
                f"results file has {ep['goal']} (made by another policy or version?)"
            )
        clips.append(torch.from_numpy(np.asarray(states, dtype=np.float64)))
    return torch.stack(clips)  # (E, G, 3)


def run_oracle(
    episodes: list[dict[str, Any]],
    protocol: dict[str, Any],
    kind: str,
    seed: int = 0,
    clips: torch.Tensor | None = None,
) -> list[dict[str, Any]]:
    """Plan every episode in lock-step with the true dynamics; returns one outcome per episode.
    clips (E, G, 3): the goal clips' states (kind angle_clip); None: each goal alone."""
    plan = protocol["planner"]
    stride, horizon, budget = plan["frame_stride"], plan["horizon"], protocol["budget"]
    tolerance = protocol["tolerance"]
    cem = CEM(
        CEMConfig(
            samples=plan["samples"],
            elites=plan["elites"],
            iterations=plan["iterations"],
            init_std=plan["init_std"],
            min_std=plan["min_std"],
            momentum=plan["momentum"],
        )
    )
    bounds = ActionBounds.box(-MAX_TORQUE, MAX_TORQUE, 1)
    envs = make_envs([ep["start"] for ep in episodes])
    goals = torch.tensor([ep["goal"] for ep in episodes], dtype=torch.float64)  # (E, 3)
    clips = goals[:, None] if clips is None else clips  # (E, G, 3)
    steps = [0] * len(episodes)
    best = [_distance(ep["start"], ep["goal"]) for ep in episodes]  # a start may already be there
    done = [b <= tolerance for b in best]
    warm = torch.zeros(len(episodes), horizon, 1)  # (E, L, 1): the box centre, as LatentMPC starts
    generator = torch.Generator().manual_seed(seed)
    while not all(done):
        live = [i for i, d in enumerate(done) if not d]
        state = torch.tensor([env_state(envs[i]) for i in live], dtype=torch.float64)  # (E', 2)
        cost = state_cost(state, clips[live], stride, kind, plan["intermediate_weight"])
        actions = cem.solve_batch(cost, len(live), horizon, bounds, generator, warm[live])
        warm[live] = torch.cat([actions[:, 1:], torch.zeros_like(actions[:, :1])], dim=1)
        for row, i in enumerate(live):
            u = float(actions[row, 0, 0])
            for _ in range(stride):
                o, *_ = envs[i].step(np.array([u], dtype=np.float32))
                steps[i] += 1
                dist = _distance(o.tolist(), goals[i].tolist())
                best[i] = min(best[i], dist)
                if dist <= tolerance or steps[i] >= budget:
                    done[i] = True
                    break
    return [
        {"seed": ep["seed"], "success": best[i] <= tolerance, "steps": steps[i], "best": best[i]}
        for i, ep in enumerate(episodes)
    ]


def env_state(env: Any) -> tuple[float, float]:
    th, thdot = env.unwrapped.state
    return float(th), float(thdot)


def _distance(obs: list[float], goal: list[float]) -> float:
    return math.dist(obs[:3], goal[:3])


def load_results(path: Path) -> dict[str, Any]:
    """A `jepaworld plan` results.json of Pendulum-v1, checked."""
    if not path.is_file():
        raise SystemExit(f"--results {path}: no such file (give a `jepaworld plan` results.json)")
    results = json.loads(path.read_text())
    protocol = results.get("protocol", {})
    if protocol.get("env_id") != "Pendulum-v1":
        raise SystemExit(
            f"--results {path}: a plan run on {protocol.get('env_id')!r}, not Pendulum-v1"
        )
    plan = protocol.get("planner", {})
    whole = (
        results.get("planner", "cem") == "cem" and plan.get("hold") and plan.get("receding") == 1
    )
    if not whole or plan.get("execute", 0) != 0:
        raise SystemExit(
            f"--results {path}: planned with {results.get('planner')!r}, hold {plan.get('hold')}, "
            f"receding {plan.get('receding')}, execute {plan.get('execute', 0)}; this oracle "
            "replays CEM with held actions, receding 1, each model step executed whole"
        )
    if not results.get("per_episode"):
        raise SystemExit(f"--results {path}: no episodes")
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, required=True, help="`jepaworld plan` results.json")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/pendulum_oracle.json"))
    parser.add_argument("--seed", type=int, default=0, help="the planner's random seed")
    args = parser.parse_args(argv)
    results = load_results(args.results)
    episodes, protocol = results["per_episode"], results["protocol"]
    rates = {
        "model": results["success_rate"],
        "random": results["baselines"]["random"]["success_rate"],
    }
    clips = goal_clips(episodes, protocol)  # (E, G, 3)
    oracle = {kind: run_oracle(episodes, protocol, kind, args.seed, clips) for kind in COSTS}
    for kind, outcomes in oracle.items():
        rates[f"true dynamics, {kind}"] = sum(o["success"] for o in outcomes) / len(outcomes)
    for name, rate in rates.items():
        print(f"{name:>28}: {rate:.2f}")
    out = {
        "results": str(args.results),
        "results_sha256": hashlib.sha256(args.results.read_bytes()).hexdigest(),
        "checkpoint_sha256": results.get("checkpoint_sha256"),
        "protocol": protocol,
        "success_rate": rates,
        "episodes": len(episodes),
        "oracle": oracle,
    }
    report_and_save(out, args.out)
    return out


if __name__ == "__main__":
    main()
