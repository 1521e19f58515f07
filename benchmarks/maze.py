"""Long-horizon planning with memory, measured as a user would run it.

collect (Maze-v0, persistent random exploration) -> train (a 128 px model) -> memory build (one
entry per model step) -> plan --memory under protocol maze-goal: memory-guided MPC, flat MPC and
random on the same 50 episodes. Targets (issue: Persistent memory and long-horizon planning):
memory-guided success >= 0.90 where flat MPC <= 0.30.

Usage::

    python benchmarks/maze.py                                  # everything, in a temporary dir
    python benchmarks/maze.py --workdir W                      # keep data, run, memory, eval in W
    python benchmarks/maze.py --workdir W --reuse              # skip what W already holds
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from targets import (  # benchmarks/targets.py, beside this script
    Stages,
    report_and_save,
    stage_arguments,
)

from jepaworld.bench.evaluate import PlanConfig
from jepaworld.bench.machine import environment, peak_rss_mib
from jepaworld.bench.maze_eval import evaluate_maze
from jepaworld.data.collect import CollectConfig, collect
from jepaworld.memory.commands import MemoryBuildConfig, build_memory
from jepaworld.models.world_model import ModelConfig
from jepaworld.train import TrainConfig, resolve_device, train

TARGET_MEMORY, TARGET_FLAT = 0.90, 0.30


def maze_model() -> ModelConfig:
    """The 128 px model: one more stride-2 conv than the 64 px default."""
    return ModelConfig(image_size=128, conv_channels=(16, 32, 64, 64, 64))


def run(work: Path, episodes: int, steps: int, reuse: bool) -> dict[str, Any]:
    """Each stage in `work`; with `reuse`, a stage whose output exists is skipped (time 0)."""
    stage = Stages(work, reuse)
    data, run_dir, db = work / "data", work / "run", work / "memory.db"
    collect_cfg = CollectConfig(out=data, env="jepaworld/Maze-v0", episodes=episodes)
    stage("collect", data / "manifest.json", lambda: collect(collect_cfg))
    cfg = TrainConfig(out=run_dir, data=data, steps=steps, model=maze_model())
    stage("train", run_dir / "checkpoints", lambda: train(cfg))
    build = MemoryBuildConfig(run=run_dir, data=data, db=db, every=cfg.model.frame_stride)
    stage("memory", db, lambda: build_memory(build))
    result: dict[str, Any] = {}
    plan = PlanConfig(run=run_dir, out=work / "eval", env="jepaworld/Maze-v0", memory=db)
    stage("plan", None, lambda: result.update(evaluate_maze(plan)))
    return {"seconds": stage.seconds, "episodes": episodes, "steps": steps, "results": result}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    stage_arguments(parser, "benchmarks/results/maze.json")
    parser.add_argument("--episodes", type=int, default=400, help="exploration episodes")
    parser.add_argument("--steps", type=int, default=2000, help="training steps")
    args = parser.parse_args(argv)
    env = environment(resolve_device("auto"))
    with tempfile.TemporaryDirectory() as tmp:
        out = run(args.workdir or Path(tmp), args.episodes, args.steps, args.reuse)
    r = out["results"]
    memory, flat = r["success_rate"], r["baselines"]["flat_mpc"]["success_rate"]
    out |= {
        "environment": env,
        "peak_rss_mib": peak_rss_mib(),
        "targets": {
            "memory_success": {"target": TARGET_MEMORY, "pass": memory >= TARGET_MEMORY},
            "flat_mpc_success_at_most": {"target": TARGET_FLAT, "pass": flat <= TARGET_FLAT},
        },
    }
    random = r["baselines"]["random"]["success_rate"]
    print(f"success: memory-guided {memory:.2f}, flat MPC {flat:.2f}, random {random:.2f}")
    print(f"graph: {r['memory']['graph']}, reroutes {r['memory']['reroutes']}")
    print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in out["seconds"].items()))
    report_and_save(out, args.out)
    return out


if __name__ == "__main__":
    main()
