"""torch.compile of the training step (`jepaworld train --compile MODE`): time per step, per mode.

For each mode (off = eager, default, reduce-overhead; reduce-overhead only on CUDA, where it
captures CUDA graphs) a fresh model with the same seed trains on one fixed synthetic batch shaped
like a real one (model-only, as the train row of benchmarks/perf.py): one step that reads the
metrics and `--warmup` that do not, untimed (so both compiled variants, with and without the rank
metric, are built before timing), then `--steps` timed steps that read metrics every
`--log-every`, as training does. Reported per mode: the warm-up's wall seconds (compilation,
mostly), ms per step, frames/s, the speed-up over eager measured in the same process, and the
loss at the last step (the compiled kernels round differently and draw SIGReg's directions from
another generator, so losses agree closely but not bit for bit).

Usage::

    python benchmarks/compile_speed.py                       # this device's modes, default model
    python benchmarks/compile_speed.py --device cuda --model wide --out compile_wide.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Any

import torch

from jepaworld.allocator import keep_freed_memory
from jepaworld.bench.machine import environment
from jepaworld.bench.performance import new_model, run_steps, sync, synthetic_batch
from jepaworld.models.world_model import ModelConfig
from jepaworld.train import TrainConfig, loss_function, resolve_device, train_step

ROOT = Path(__file__).resolve().parents[1]
MODELS: dict[str, ModelConfig] = {
    "default": ModelConfig(),
    # the larger conv model of benchmarks/pusht_gpu.sh (BIG)
    "wide": ModelConfig(
        embed_dim=128, conv_channels=(32, 64, 128, 128), pred_dim=128, pred_depth=3
    ),
}


def measure_mode(cfg: TrainConfig, mode: str, device: torch.device, warmup: int, steps: int):
    """Warm-up seconds, seconds per timed step and the last step's metrics for one compile mode."""
    torch._dynamo.reset()  # each mode compiles from scratch, not from an earlier mode's caches
    model, opt = new_model(cfg, device)
    loss_fn = loss_function(model, mode)
    batches = itertools.repeat(synthetic_batch(cfg, device))
    sync(device)
    t0 = time.perf_counter()
    train_step(model, opt, next(batches), 0, cfg, True, loss_fn)  # builds the logging variant
    # then `warmup` untimed steps (the other variant), then the timed ones, numbered on from there
    timed = run_steps(model, opt, batches, cfg, warmup, steps, device, loss_fn)
    warm = time.perf_counter() - t0 - timed
    last = train_step(model, opt, next(batches), warmup + steps, cfg, True, loss_fn)
    return {"warmup_s": warm, "seconds_per_step": timed / steps, "last": last}


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = resolve_device(args.device)
    if device.type == "cpu":
        keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig(
        out=Path("unused"),
        data=Path("unused"),
        batch_size=args.batch_size,
        clip_frames=args.clip_frames,
        log_every=args.log_every,
        model=MODELS[args.model],
    )
    modes = args.modes or (
        ["off", "default", "reduce-overhead"] if device.type == "cuda" else ["off", "default"]
    )
    rows: dict[str, Any] = {}
    for mode in modes:
        r = measure_mode(cfg, mode, device, args.warmup, args.steps)
        frames = cfg.batch_size * cfg.clip_frames
        rows[mode] = {
            "warmup_s": r["warmup_s"],
            "ms_per_step": 1000 * r["seconds_per_step"],
            "frames_per_s": frames / r["seconds_per_step"],
            "loss_last": r["last"]["loss"],
        }
        print(
            f"{mode:>16}: warm-up {r['warmup_s']:.1f} s, {rows[mode]['ms_per_step']:.2f} ms/step, "
            f"{rows[mode]['frames_per_s']:.0f} frames/s, loss {r['last']['loss']:.4f}",
            flush=True,
        )
    if "off" in rows:
        for row in rows.values():
            row["speedup_over_eager"] = rows["off"]["ms_per_step"] / row["ms_per_step"]
    return {
        "benchmark": "compile_speed",
        "model": args.model,
        "batch_size": cfg.batch_size,
        "clip_frames": cfg.clip_frames,
        "warmup_steps": args.warmup,
        "timed_steps": args.steps,
        "log_every": cfg.log_every,
        "modes": rows,
        "environment": environment(device),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument(
        "--modes",
        nargs="+",
        choices=("off", "default", "reduce-overhead"),
        help="compile modes to measure (default: all this device has)",
    )
    p.add_argument("--model", choices=sorted(MODELS), default="default")
    p.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    p.add_argument("--clip-frames", type=int, default=TrainConfig.clip_frames)
    p.add_argument("--log-every", type=int, default=TrainConfig.log_every)
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first (compiling)")
    p.add_argument("--steps", type=int, default=100, help="timed steps per mode")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "compile_speed.json"
    )
    args = p.parse_args(argv)
    if args.warmup < 1 or args.steps < 1:
        p.error("--warmup and --steps must be >= 1")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
