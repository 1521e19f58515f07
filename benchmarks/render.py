"""MuJoCo rendering speed through the Gymnasium adapter: default effects vs shadows, reflections and
multisampling off (what `make_pixel_env` does). Steps + renders per second on PointMaze_UMaze-v3.
The adapter also looks at gymnasium-robotics mazes from straight above (`maze_view`), so since
then its side of the comparison is a different view as well as fewer effects: 2026-11-28, 2-core
CPU, EGL, 300 steps, 272 -> 578 steps+renders/s at 64 px, 160 -> 369 at 224 px.

Usage::

    python benchmarks/render.py            # writes benchmarks/results/render.json (needs [mujoco])
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from targets import report_and_save  # benchmarks/targets.py, beside this script

from jepaworld.bench.machine import environment
from jepaworld.envs.gym_adapter import make_pixel_env
from jepaworld.train import resolve_device


def rate(env_id: str, size: int, fast: bool, steps: int) -> float:
    """Steps + renders per second, after one warm-up render (the adapter's observation is its
    render, so its step alone renders once)."""
    import gymnasium as gym

    env = make_pixel_env(env_id, size)
    if not fast:  # rebuild without the adapter's settings: the environment's own defaults
        env.close()
        env = gym.make(env_id, render_mode="rgb_array", width=size, height=size)
    env.reset(seed=0)
    env.render()
    t0 = time.perf_counter()
    for _ in range(steps):
        env.step(env.action_space.sample())
        if not fast:
            env.render()
    seconds = time.perf_counter() - t0
    env.close()
    return steps / seconds


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/render.json"))
    parser.add_argument("--env", default="PointMaze_UMaze-v3")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args(argv)
    os.environ.setdefault("MUJOCO_GL", "egl")
    rows = {}
    for size in args.sizes:
        default = rate(args.env, size, fast=False, steps=args.steps)
        fast = rate(args.env, size, fast=True, steps=args.steps)
        rows[str(size)] = {"default_per_s": default, "fast_per_s": fast, "speedup": fast / default}
        print(
            f"{args.env} {size}px: default {default:.0f}/s, effects off {fast:.0f}/s ({fast / default:.1f}x)"
        )
    result = {"environment": environment(resolve_device("cpu")), "env": args.env, "rates": rows}
    report_and_save(result, args.out)
    return result


if __name__ == "__main__":
    main()
