"""Can PushT's protocol be solved by its own planner? The planner on the true dynamics.

The world models here plan 0.56-0.62 on protocol pusht-goal against a 0.90 target (README, PushT).
This script asks how much of the gap is the model: it takes the episodes of one `jepaworld plan
--env jepaworld/PushT-v0` run (its results.json: each episode's start and goal state) and plans
them again with the same planner structure over gym-pusht's own physics instead of a world model.
As `LatentMPC` does with the protocol's settings: CEM over `horizon` actions, each held for
`frame_stride` environment steps, the plan's first action executed, the shifted plan as the next
warm start (the tail at the box's middle), a decision every `frame_stride` steps. The cost is
`LatentGoalCost`'s on states: the squared distance at the end of the horizon plus
`intermediate_weight` x the mean squared distance at the earlier model steps, where a state's
distance is the L2 over (agent xy, block xy) in canvas px with the block's wrapped angle error
weighed as the success criterion does (pi/9 counts as 20 px). Success is the env's own, at any step
of the 50-step budget.

Each rollout starts from a copy of the episode's world (positions, angle and velocities) and steps
gym-pusht's PD control and pymunk as its `step` does, without its coverage reward (the slow part
of a step). Contact state cached inside pymunk is not copied, so a rollout and the real step can
differ slightly after a contact; the real env judges success.

The search is smaller than the protocol's by default (`--iterations 10` against its 30) because
each sample is a Python simulation: about 25 environment steps of about 0.1 ms each. Fewer
iterations can only make the oracle weaker, so a high rate is evidence that the planner and its
protocol can succeed with a good model; a low one bounds the protocol's planner, not the task.

Usage::

    jepaworld plan --run trun --env jepaworld/PushT-v0 --out teval
    python benchmarks/pusht_oracle.py --results teval/results.json --episodes 20
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import time
from collections.abc import Callable
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch
from targets import report_and_save  # benchmarks/targets.py, beside this script

from jepaworld.bench.protocols import TrajectoryProtocol
from jepaworld.config import from_dict
from jepaworld.envs.pusht import CANVAS, PushTConfig, PushTEnv, _import_gym_pusht
from jepaworld.planning.cem import CEM, CEMConfig
from jepaworld.planning.protocols import ActionBounds

ANGLE_PX = 20.0 / (math.pi / 9)
"""Canvas px per radian of block angle: the success criterion's 20 px and pi/9 weigh the same."""
Snapshot = tuple[tuple[float, float], ...]
CostFn = Callable[[torch.Tensor], torch.Tensor]


def snapshot(sim: Any) -> Snapshot:
    """The parts of a gym-pusht world that its next steps depend on (pymunk's cache aside)."""
    a, b = sim.agent, sim.block
    return (
        tuple(a.position), tuple(a.velocity), tuple(b.position), tuple(b.velocity),
        (b.angle, b.angular_velocity),
    )  # fmt: skip


def restore(sim: Any, snap: Snapshot) -> None:
    """Put the scratch world in `snap`: the block's angle before its position, since setting
    the angle turns the block about its origin (as `envs/pusht.py _place` does)."""
    a, b = sim.agent, sim.block
    agent_pos, agent_vel, block_pos, block_vel, (angle, spin) = snap
    b.angle, b.angular_velocity = angle, spin
    b.position, b.velocity = block_pos, block_vel
    a.position, a.velocity = agent_pos, agent_vel


def step_world(sim: Any, action: np.ndarray, scale: float) -> None:
    """One environment step as jepaworld/PushT-v0 takes it (a relative action to a PD target)
    and gym-pusht's `step` runs it, without computing the reward."""
    from pymunk import Vec2d

    target = Vec2d(*np.clip(np.asarray(sim.agent.position) + action * scale, 0.0, CANVAS))
    for _ in range(int(1 / (sim.dt * sim.control_hz))):
        accel = sim.k_p * (target - sim.agent.position) + sim.k_v * (
            Vec2d(0, 0) - sim.agent.velocity
        )
        sim.agent.velocity += accel * sim.dt
        sim.space.step(sim.dt)


def distance_sq(sim: Any, goal: np.ndarray, angle_px: float = ANGLE_PX) -> float:
    """Squared L2 over (agent xy, block xy) plus the block angle error weighed `angle_px` px per
    radian, canvas px^2."""
    a, b = sim.agent.position, sim.block.position
    pos = (a[0] - goal[0]) ** 2 + (a[1] - goal[1]) ** 2 + (b[0] - goal[2]) ** 2
    pos += (b[1] - goal[3]) ** 2
    turn = (sim.block.angle - goal[4] + math.pi) % (2 * math.pi) - math.pi
    return pos + (angle_px * turn) ** 2


def plan_costs(
    sim: Any, snap: Snapshot, actions: torch.Tensor, *, goal: np.ndarray, stride: int, w: float,
    scale: float, angle_px: float = ANGLE_PX,
) -> torch.Tensor:  # fmt: skip
    """actions (1, S, L, 2), each held `stride` steps -> (1, S) costs, as LatentGoalCost's."""
    out = []
    for plan in actions[0].numpy().astype(np.float64):  # (L, 2)
        restore(sim, snap)
        d = []
        for a in plan:
            for _ in range(stride):
                step_world(sim, a, scale)
            d.append(distance_sq(sim, goal, angle_px))
        out.append(d[-1] + (w * float(np.mean(d[:-1])) if len(d) > 1 else 0.0))
    return torch.tensor(out, dtype=torch.float32)[None]  # (1, S)


def run_episode(job: tuple[dict[str, Any], dict[str, Any], int, int]) -> dict[str, Any]:
    """Plan one episode from its start toward its goal state on the true dynamics."""
    episode, planner, iterations, seed = job
    torch.set_num_threads(1)
    env, scratch = PushTEnv(), _import_gym_pusht()(obs_type="state")
    scratch.reset(seed=0)
    goal = np.asarray(episode["goal"], np.float64)

    def true_costs(env: PushTEnv, info: dict[str, Any]) -> CostFn:
        return functools.partial(
            plan_costs, scratch, snapshot(env._sim), goal=goal, stride=planner["frame_stride"],
            w=planner["intermediate_weight"], scale=PushTConfig().action_scale,
            angle_px=planner["angle_px"],
        )  # fmt: skip

    try:
        return mpc_episode(env, episode, planner, iterations, seed, true_costs)
    finally:
        env.close()
        scratch.close()


def mpc_episode(
    env: PushTEnv,
    episode: dict[str, Any],
    planner: dict[str, Any],
    iterations: int,
    seed: int,
    costs_now: Callable[[PushTEnv, dict[str, Any]], CostFn],
) -> dict[str, Any]:
    """MPC in `env` from the episode's start toward its goal state, as `LatentMPC` plans with the
    protocol's settings; `costs_now(env, info)` gives each decision's cost of action sequences
    (1, S, L, 2) -> (1, S)."""
    stride, L = planner["frame_stride"], planner["horizon"]
    goal = np.asarray(episode["goal"], np.float64)
    _, info = env.reset(options={"start": episode["start"], "goal": goal})
    cem = CEM(
        CEMConfig(
            samples=planner["samples"], elites=planner["elites"], iterations=iterations,
            init_std=planner["init_std"], min_std=planner["min_std"], momentum=planner["momentum"],
        )
    )  # fmt: skip
    bounds, gen = ActionBounds.box(-1.0, 1.0, 2), torch.Generator().manual_seed(seed)
    warm, steps, success, t0 = None, 0, bool(info["success"]), time.perf_counter()
    while not success and steps < episode["budget"]:
        plan = cem.solve_batch(costs_now(env, info), 1, L, bounds, gen, warm)  # (1, L, 2)
        warm = torch.cat([plan[:, 1:], torch.zeros(1, 1, 2)], dim=1)  # the box's middle
        for _ in range(stride):
            _, _, _, _, info = env.step(plan[0, 0].numpy())
            steps, success = steps + 1, bool(info["success"])
            if success or steps >= episode["budget"]:
                break
    return {
        "seed": episode["seed"],
        "success": success,
        "steps": steps,
        "final_state": info["state"].tolist(),
        "model_success": bool(episode["success"]),
        "seconds": time.perf_counter() - t0,
    }


def protocol_episodes(
    results: dict[str, Any], path: Path, count: int
) -> tuple[TrajectoryProtocol, list[dict[str, Any]]]:
    """The protocol and first `count` episodes of a flat-MPC PushT plan's `results` (read from
    results.json `path`), each with the protocol's budget; exits naming the file if it was
    planned otherwise."""
    protocol = from_dict(TrajectoryProtocol, results["protocol"], str(path))
    p = protocol.planner
    settings = (p.hold, p.receding, p.execute, p.goal_at, p.history, protocol.goal_frames)
    planned_as_here = settings == (True, 1, 0, "end", 1, 1)
    if protocol.env_id != "jepaworld/PushT-v0" or not planned_as_here or "memory" in results:
        raise SystemExit(
            f"{path}: not a flat-MPC PushT plan with held actions, receding 1 executed whole, the goal at "
            "the end of the horizon, one observed frame and one goal image"
        )
    if count < 1:
        raise SystemExit(f"--episodes: must be >= 1, got {count}")
    episodes = [{**e, "budget": protocol.budget} for e in results["per_episode"][:count]]
    return protocol, episodes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, required=True, help="results.json of a PushT plan")
    p.add_argument("--episodes", type=int, default=20, help="the file's first N episodes")
    p.add_argument("--iterations", type=int, default=10, help="CEM iterations (protocol: 30)")
    p.add_argument("--workers", type=int, default=2, help="episodes planned at once")
    p.add_argument("--seed", type=int, default=0, help="planner seed (episode i: seed + i)")
    p.add_argument(
        "--angle-px", type=float, default=ANGLE_PX,
        help="px per radian of the block's angle error in the cost (default: the criterion's "
        "pi/9 = 20 px; 0: a cost blind to the angle)",
    )  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/pusht_oracle.json"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    results = json.loads(args.results.read_text())
    protocol, episodes = protocol_episodes(results, args.results, args.episodes)
    planner = {**dataclasses.asdict(protocol.planner), "angle_px": args.angle_px}
    jobs = [(e, planner, args.iterations, args.seed + i) for i, e in enumerate(episodes)]
    t0 = time.perf_counter()
    with get_context("spawn").Pool(args.workers) as pool:
        outcomes = pool.map(run_episode, jobs)
    rate = sum(o["success"] for o in outcomes) / len(outcomes)
    model = sum(o["model_success"] for o in outcomes) / len(outcomes)
    result = {
        "results_file": str(args.results),
        "checkpoint_sha256": results.get("checkpoint_sha256"),
        "protocol": results["protocol"],
        "iterations": args.iterations,
        "angle_px": args.angle_px,
        "episodes": len(outcomes),
        "oracle_success_rate": rate,
        "model_success_rate_same_episodes": model,
        "seconds": time.perf_counter() - t0,
        "per_episode": outcomes,
    }
    print(
        f"oracle {rate:.2f} against the model's {model:.2f} on the same {len(outcomes)} episodes "
        f"(CEM {protocol.planner.samples} x {args.iterations} iterations, "
        f"{result['seconds']:.0f} s)"
    )
    report_and_save(result, args.out)
    return result


if __name__ == "__main__":
    main()
