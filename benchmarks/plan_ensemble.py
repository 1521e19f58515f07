"""Plan a trajectory-goal protocol (PushT, Pendulum, PointMaze) with an ensemble of checkpoints.

`jepaworld plan` searches one model; here the protocol's planner and MPC search
`jepaworld.models.ensemble.Ensemble` over several runs: an action sequence's cost is the weighted
sum of every member's latent distance to the goal, so a sequence one member wrongly believes
reaches the goal scores badly in the others. Each member is loaded and checked as `plan` checks a
run (the protocol's seeds disjoint from its training data, the camera view, the frame size and
action width). Episodes, goals, random baseline and success are the protocol's, as in `plan`;
results.json records every member's checkpoint and sha256 and the weights.

`--turned` plans one run through `jepaworld.models.turned.TurnedViews` instead: the world's 8
symmetries (turns and mirrors of the square; worlds in `jepaworld.envs.DIHEDRAL_ENVS`) as the
ensemble's members, so an action sequence's cost is the sum of the one model's latent distances to
the goal seen in each look. Meant for a model trained with `--augment dihedral`.

Usage::

    python benchmarks/plan_ensemble.py --runs runA runB runC --env jepaworld/PushT-v0 --out eens
    python benchmarks/plan_ensemble.py --runs runA runB --weights 2 1 --episodes 20 --out eens
    python benchmarks/plan_ensemble.py --runs runA --turned --env jepaworld/PushT-v0 --out eturn
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from jepaworld.bench import plan_eval
from jepaworld.bench.evaluate import PlanConfig, configured
from jepaworld.bench.protocols import TrajectoryProtocol
from jepaworld.bench.trajectory_eval import (
    CheckedRun,
    episode_specs,
    goal_env_factory,
    load_run,
    space_bounds,
)
from jepaworld.envs import DIHEDRAL_ENVS
from jepaworld.models.ensemble import Ensemble
from jepaworld.models.turned import TurnedViews

log = logging.getLogger(__name__)


def member_record(run: CheckedRun, path: Path) -> dict[str, Any]:
    """What results.json records of one member."""
    return {
        "run": str(path),
        "checkpoint": str(run.ckpt),
        "checkpoint_sha256": plan_eval.checkpoint_sha256(run.ckpt),
        "data_manifest_sha256": run.record.get("data_manifest_sha256"),
    }


def planned_model(runs: list[CheckedRun], args: argparse.Namespace) -> Ensemble | TurnedViews:
    """The ensemble of the runs, or with --turned the one run's turned looks."""
    if not args.turned:
        return Ensemble([r.model for r in runs], args.weights).eval()
    if runs[0].record.get("train", {}).get("augment") != "dihedral":
        log.warning("--turned: %s was not trained with --augment dihedral", args.runs[0])
    return TurnedViews(runs[0].model, turn=DIHEDRAL_ENVS[args.env]).eval()


def evaluate(
    args: argparse.Namespace, protocol: TrajectoryProtocol | None = None
) -> dict[str, Any]:
    """The ensemble's MPC and random actions on the protocol's episodes (default: the env's)."""
    cfg = PlanConfig(
        run=args.runs[0], env=args.env, out=args.out, episodes=args.episodes, device=args.device,
        planner=args.planner, seed=args.seed,
    )  # fmt: skip
    protocol = configured(protocol or TrajectoryProtocol.for_env(args.env), cfg)
    runs = [load_run(path, args.device, protocol) for path in args.runs]
    ensemble = planned_model(runs, args)
    space, size = runs[0].space, runs[0].size  # the members' shared frame size (Ensemble checks)
    t0 = time.perf_counter()
    goals, specs = episode_specs(protocol, size)
    factory = goal_env_factory(protocol, goals, size)
    random = plan_eval.run_policy(protocol, specs, plan_eval.random_policy(space), factory)
    mpc = plan_eval.make_mpc(
        protocol, ensemble, int(space.shape[0]), planner=args.planner, bounds=space_bounds(space)
    )
    outcomes, _, timings = plan_eval.run_flat_mpc(
        specs, factory, mpc, protocol.budget, ensemble.device, args.seed, protocol.chunk
    )
    return {
        "benchmark": "plan_ensemble",
        "protocol": protocol.to_dict(),
        **plan_eval.summarize(outcomes),
        "planner": args.planner,
        "members": [member_record(r, path) for r, path in zip(runs, args.runs, strict=True)],
        "weights": list(args.weights or [1.0] * len(runs)),
        "turned_views": list(ensemble.elements) if args.turned else None,
        "plan_seconds_mean": timings["plan_seconds_mean"],
        "baselines": {"random": {**plan_eval.summarize(random), "per_episode": random}},
        "per_episode": outcomes,
        "eval_seconds": time.perf_counter() - t0,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="run dirs (2+; 1 turned)")
    p.add_argument("--weights", type=float, nargs="+", help="one per run (default: equal)")
    p.add_argument("--env", default="jepaworld/PushT-v0")
    p.add_argument("--out", type=Path, required=True, help="directory for results.json")
    p.add_argument("--episodes", type=int, default=PlanConfig.episodes)
    p.add_argument("--planner", choices=("cem", "mppi", "gradient"), default="cem")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0, help="planner seed")
    p.add_argument("--turned", action="store_true", help="one run, planned in its 8 turned looks")
    args = p.parse_args(argv)
    if args.turned and (len(args.runs) != 1 or args.weights):
        p.error("--turned: give one run and no --weights")
    if args.turned and args.env not in DIHEDRAL_ENVS:
        p.error(f"--turned: {args.env} does not declare the square's symmetries (DIHEDRAL_ENVS)")
    if not args.turned and len(args.runs) < 2:
        p.error("--runs: give two or more runs")
    if args.weights is not None and len(args.weights) != len(args.runs):
        p.error(f"--weights: one per run ({len(args.runs)}), got {len(args.weights)}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    result = evaluate(args)
    what = "turned looks of 1 run" if args.turned else f"ensemble of {len(args.runs)}"
    args.out.mkdir(parents=True, exist_ok=True)
    plan_eval.write_json(args.out / "results.json", result)
    print(
        f"{what}: success {result['success_rate']:.2f} over "
        f"{result['episodes']} episodes (random {result['baselines']['random']['success_rate']:.2f}); "
        f"{result['eval_seconds']:.0f} s; results in {args.out / 'results.json'}"
    )
    return result


if __name__ == "__main__":
    main()
