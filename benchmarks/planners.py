"""CEM, MPPI and the gradient planner on Two-Room and PushT: per world one checkpoint, the
protocol's episodes and seeds.

Each planner drives the same latent MPC (horizon, held actions, receding 1, cost) from the world's
protocol (tworoom-goal, pusht-goal); only the search differs (MPPI with CEM's samples x
iterations; the gradient planner with its defaults). Reports success and seconds per plan: p50 of
single-problem plans, and the lock-step batch's seconds per plan.

Usage::

    python benchmarks/planners.py --run RUN [--pusht-run RUN]   # Two-Room run (`jepaworld demo`)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from targets import report_and_save  # benchmarks/targets.py, beside this script

from jepaworld.bench.evaluate import PlanConfig, evaluate
from jepaworld.bench.machine import environment, peak_rss_mib
from jepaworld.bench.plan_eval import PLANNERS
from jepaworld.bench.trajectory_eval import evaluate_trajectory
from jepaworld.train import resolve_device

TWO_ROOM, PUSHT = "jepaworld/TwoRoom-v0", "jepaworld/PushT-v0"


def compare(run: Path, env: str, work: Path, episodes: int, planners: list[str]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for name in planners:
        cfg = PlanConfig(
            run=run, out=work / name, env=env, planner=name, episodes=episodes, latency_repeats=5
        )
        r = evaluate(cfg) if env == TWO_ROOM else evaluate_trajectory(cfg)
        rows[name] = {
            "success_rate": r["success_rate"],
            "plan_seconds_p50": statistics.median(r["plan_latency_seconds"]),
            "plan_seconds_lockstep": r["plan_seconds_mean"],
            "checkpoint_sha256": r["checkpoint_sha256"],
            "baselines": {k: v["success_rate"] for k, v in r["baselines"].items()},
        }
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a Two-Room run directory")
    parser.add_argument("--pusht-run", type=Path, default=None, help="a PushT run directory")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/planners.json"))
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--planners", nargs="+", default=list(PLANNERS), choices=PLANNERS)
    args = parser.parse_args(argv)
    env = environment(resolve_device("auto"))
    runs = {TWO_ROOM: args.run, **({PUSHT: args.pusht_run} if args.pusht_run else {})}
    tables: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for world, run in runs.items():
            work = Path(tmp) / world.replace("/", "_")
            tables[world] = compare(run, world, work, args.episodes, args.planners)
    print(f"{'world':>20} {'planner':>9} {'success':>8} {'s/plan p50':>11} {'s/plan batched':>15}")
    for world, rows in tables.items():
        for name, r in rows.items():
            print(
                f"{world:>20} {name:>9} {r['success_rate']:>8.2f} {r['plan_seconds_p50']:>11.3f}"
                f" {r['plan_seconds_lockstep']:>15.3f}"
            )
        print(f"{world} baselines (same episodes): {next(iter(rows.values()))['baselines']}")
    result = {"environment": env, "planners": tables, "peak_rss_mib": peak_rss_mib()}
    report_and_save(result, args.out)
    return result


if __name__ == "__main__":
    main()
