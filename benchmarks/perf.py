"""Performance of jepaworld on this machine, measured in one process and one run.

What is measured:

1. **matmul peak** - float32 GFLOP/s of square matmuls (2 * n^3 FLOPs each), repeated for a fixed
   wall time after a warm-up, with the current torch thread count. It is the machine's reference
   peak, measured in the same run as everything else so that a busy machine lowers both.
2. **training throughput** - the default `ModelConfig()` world model, AdamW, and batches shaped like
   real training (`TrainConfig` defaults: `batch_size` clips of `clip_frames` frames). Each timed
   step is `jepaworld.train.train_step` (lr schedule, loss, backward, grad clipping, AdamW step).
   Two variants: *model-only* (one synthetic uint8 batch, reused) and *with-loader* (a tiny dataset
   collected into a temporary directory and read through `ClipDataset` / `make_loader` with the
   default number of workers, so decoding and batching are included).
   And *by encoder*: the model-only step for the default model and two larger encoders (conv
   channels (32, 64, 128, 128); the ViT preset), since the fraction of the peak is a property of a
   model's arithmetic intensity more than of the training loop; where the device has native
   bfloat16, each again with `--encoder-dtype bfloat16`, whose GFLOP/s are set against the fp32
   and the bf16 matmul peaks (measured the same way). The issue's goal (>= 40%) is printed as
   PASS/FAIL for the default model in float32.
   On CPU, glibc malloc is first set to keep freed memory, as `jepaworld train` does
   (`jepaworld/allocator.py`); `--system-malloc` leaves it as shipped, to measure the difference.
   On this workplace's 2 cores (torch 2.13 CPU, AMX, batch 64 x 4 frames), one run each way
   (2026-11-27, 10 warm-up steps), frames/s of model-only training (the fraction of the fp32
   matmul peak in brackets; the two runs measured peaks of 403 and 392 GFLOP/s):

   | model-only training      | as shipped      | kept freed memory |
   |--------------------------|-----------------|-------------------|
   | default (train row)      | 3061 (27.7%)    | 3108 (29.0%)      |
   | default (by encoder)     | 2908 (26.3%)    | 3204 (29.9%)      |
   | default, with the loader | 2706 (24.5%)    | 3002 (28.0%)      |
   | wide conv                | 1228 (40.9%)    | 1278 (43.9%)      |
   | ViT                      | 498 (38.3%)     | 507 (40.1%)       |
   | default, bf16 encoder    | 4321 (39.1%)    | 4458 (41.5%; 6.6% of the bf16 peak) |
   | wide conv, bf16 encoder  | 2527 (84.2%)    | 2519 (86.5%; 13.8% of the bf16 peak) |

   So a few percent in steady state, up to 10% (an earlier pair of runs with 2 warm-up steps
   showed 6-32%: glibc as shipped takes several steps to settle, and those gains were mostly that).

   The default model stays below 40% in float32: of its ~80 ms step, the convolutions take ~36 ms
   (~250 GFLOP/s, backward slower than forward), and GroupNorm + GELU over the first layer's
   16 x 32 x 32 maps ~18 ms, bound by memory traffic (4M floats a pass, ten passes forward and
   backward), not arithmetic; the predictor, losses and AdamW take the rest. torch.compile of the
   encoder (or of GroupNorm + GELU alone) measured slower here, not faster. Nor did
   `channels_last` measurably help: the frames arrive as (B, H, W, 3), so the encoder's input is
   already NHWC in memory and the convolutions, GroupNorms and GELUs already run channels_last,
   forward and backward (all but the last GELU's backward, after the flatten); converting the
   weights too measured 2227-2233 frames/s against 2176-2218, gains of 15 and 50 frames/s in two
   back-to-back pairs, about the 42 between the two runs without it (2026-11-27, on a day the fp32
   peak measured 300 GFLOP/s). That day's profile (10 steps, 117 ms each): convolution backward
   39 ms; in the three layers after the first it took 2.8-3.5x the layer's forward time for 2x the
   FLOPs (the second layer's, 16 -> 32 channels on 32 x 32 maps, ran at about 120 GFLOP/s against
   its forward's 210).
   On a 2-core AMD EPYC (AVX-512 with bfloat16, no AMX; 2026-11-28, one full run, kept freed
   memory) the float32 matmul measured 209.7 GFLOP/s (201-215 at sizes 512 to 4096 in one loop
   timed apart, 211-220 in the bench reports of that day) and the bf16 one 852: model-only training
   3952 frames/s (68.8% of the fp32 peak, PASS), with the loader 3627 (63.1%); by encoder, default
   3682 (64.1%), bf16 encoder 4330 (75.4%; 18.6% of the bf16 peak), wide conv 1632 (104.6%), its
   bf16 encoder 2314 (148.3%; 36.5%), ViT 424 (62.7%), its bf16 encoder 566 (83.6%; 20.6%). The
   wide conv's float32 step counted more GFLOP/s than the measured matmul: on this CPU the measured
   peak is a reference, not a ceiling. One plan at horizon 5 took 0.183 s (p50), at 10 0.381 s.
3. **seconds per plan** - the Two-Room protocol's planner (`LatentMPC` with CEM: the anchors' 300
   samples, 30 elites, 30 iterations; held actions) on the default model, cold-started, at the
   issue's target horizon 5 and at the protocol's horizon; a timed plan also encodes the current frame
   (the goal is encoded once, outside). One problem (E=1): p50 / p95 / mean after a warm-up; and the
   amortised seconds per problem when E problems are solved in one lock-step batch. The issue's
   target is one plan <= 0.5 s on CPU.
4. **peak RSS** of the process at the end (`resource.getrusage().ru_maxrss`).

On a GPU the default model is launch-bound, not arithmetic-bound. On one NVIDIA H200 (torch
2.11+cu130, 2026-11-27, `--device cuda`), a step of batch 64 x 4 frames took 36 ms model-only: 0.6%
of the 46 TFLOP/s fp32 peak measured at 2048^2 (7166 frames/s against about 3100 on the 2-core
CPU). A profile of 5 steps showed about 1200 kernel launches per step, 4.6 ms of GPU time per step,
and two things that need not run every step: the effective-rank metric's SVD (a quarter of the GPU
time) and the host syncs that read every metric. Since then (70e75bc) the loss returns its metrics
as tensors, the training loop reads them (and computes the rank) only on the steps it logs, both
non-finite checks share one sync, and AdamW is the fused kernel on CUDA. On the same H200, with
metrics read every 25th step, 200 timed steps after 10 warm-up, old and new code in one call:
37.9 -> 30.2 ms per step at batch 64 and 38.7 -> 32.7 ms at batch 256. Absolute times vary between
calls (the old step took 26 ms in the profiling call). On the 2-core CPU: 94.5 -> 90.3 and
103.4 -> 95.6 ms (two alternating pairs, 80 steps each). With the loader, the GPU step stays at
40 ms (`with_loader`, one worker): the data path is next. Batch 1024 took 35 ms a step against
26 ms for batch 64 (the profiling call): 38% more time for 16 times the clips.

`jepaworld train --compile reduce-overhead` (CUDA graphs) takes most of the launches away: 4.6
against 23.2 ms a step on one H200 for the default model (`benchmarks/compile_speed.py`; README).

The CPU table above was measured before the timed steps stopped reading metrics on every step;
later runs read them every `log_every` steps, as training does, which alone made the step 4-8%
faster in the two pairs above.

Before anything runs, the CPU use of other processes is sampled for 0.5 s from /proc/stat; when they
use half a CPU or more the table warns that timings are disturbed. On a shared CPU, two torch threads
can be far slower than one (each small op waits for a descheduled OpenMP thread): try `--threads 1`.

How FLOPs are counted: `torch.utils.flop_counter.FlopCounterMode` records one forward + backward of
`WorldModel.loss` on a training batch, once, outside any timing. It counts matmuls, convolutions and
their backward passes (and attention kernels it knows of); elementwise ops, norms and the optimizer
update are not counted, and on CPU PyTorch's fused attention kernel is not registered with the
counter (with at most `clip_frames` tokens it is negligible). Achieved GFLOP/s = counted FLOPs per
step / seconds per step, so the fraction of the matmul peak is a lower bound on the useful work.

Usage::

    python benchmarks/perf.py                 # full run, writes benchmarks/results/perf.json
    python benchmarks/perf.py --quick         # smoke run (< 60 s)
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jepaworld.allocator import keep_freed_memory
from jepaworld.bench.machine import environment, load_average, peak_rss_mib
from jepaworld.bench.performance import (
    matmul_peak,
    new_model,
    plan_seconds,
    run_steps,
    throughput,
    train_throughput,
)
from jepaworld.bench.protocols import TwoRoomProtocol
from jepaworld.data.collect import CollectConfig, collect
from jepaworld.data.episodes import EpisodeStore
from jepaworld.data.loader import ClipDataset, make_loader
from jepaworld.models.world_model import ModelConfig, WorldModel
from jepaworld.train import TrainConfig, batches_on, native_bfloat16

ROOT = Path(__file__).resolve().parents[1]
PLAN_TARGET_S = 0.5
TRAIN_TARGET_FRACTION = 0.4  # the goal: training at >= 40% of the measured matmul peak
ENCODERS: dict[str, ModelConfig] = {
    "default": ModelConfig(),
    "wide-conv": ModelConfig(conv_channels=(32, 64, 128, 128)),
    "vit": ModelConfig(encoder="vit"),
}
TARGET_HORIZON = 5  # the target: one CEM plan (300 samples, horizon 5, 30 iterations)
Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Budget:
    """How much of each measurement to do."""

    matmul_size: int
    matmul_seconds: float
    batch_size: int
    warmup_steps: int
    train_steps: int
    episodes: int
    plan_warmup: int
    plan_repeats: int
    batch_problems: int
    batch_repeats: int


# 10 warm-up steps: glibc malloc as shipped takes several steps to settle (--system-malloc)
FULL = Budget(2048, 1.5, TrainConfig.batch_size, 10, 10, 20, 1, 10, 50, 2)
# --quick: a smaller training batch and fewer repetitions; the CEM settings stay the anchors'.
QUICK = Budget(1024, 0.3, 16, 1, 2, 4, 1, 2, 4, 1)


# ---- helpers ---------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ---- 1. matmul peak ---------------------------------------------------------------------------


def bench_matmul(
    budget: Budget, device: torch.device, dtype: torch.dtype = torch.float32
) -> dict[str, Any]:
    """GFLOP/s of n x n matmuls in dtype, repeated for budget.matmul_seconds after a warm-up."""
    return matmul_peak(budget.matmul_size, budget.matmul_seconds, device, dtype)


# ---- 2. training throughput -------------------------------------------------------------------


def loader_batches(
    data: Path, cfg: TrainConfig, total: int, device: torch.device
) -> Iterator[Batch]:
    """Training batches read from a dataset directory, moved to the device."""
    dataset = ClipDataset(EpisodeStore(data), cfg.clip_frames, cfg.model.frame_stride)
    loader = make_loader(dataset, cfg.batch_size, cfg.seed, 0, total, cfg.workers)
    yield from batches_on(loader, device)


def bench_train(budget: Budget, device: torch.device, peak: float, tmp: Path) -> dict[str, Any]:
    """Model-only and with-loader training throughput of the default model."""
    data = tmp / "data"
    collect(CollectConfig(out=data, episodes=budget.episodes))
    cfg = TrainConfig(data=data, out=tmp / "run", batch_size=budget.batch_size)
    warm, steps = budget.warmup_steps, budget.train_steps
    model_only = train_throughput(cfg, device, peak, warm, steps)
    shape = ("batch_size", "clip_frames", "parameters", "flops_per_step", "warmup_steps")
    facts = {key: model_only.pop(key) for key in shape}  # the rest is the speed
    model, opt = new_model(cfg, device)
    batches = loader_batches(data, cfg, warm + steps, device)
    seconds = run_steps(model, opt, batches, cfg, warm, steps, device)
    return {
        **facts,
        "model_only": model_only,
        "with_loader": {
            **throughput(seconds, cfg, steps, facts["flops_per_step"], peak),
            "workers": cfg.workers,
            "episodes": budget.episodes,
        },
    }


def bench_encoders(
    budget: Budget, device: torch.device, peak: float, bf16_peak: float | None
) -> dict[str, Any]:
    """Model-only training throughput and fraction of the peak for each of `ENCODERS`; where the
    device has native bfloat16 (bf16_peak given), also with --encoder-dtype bfloat16, whose
    GFLOP/s are compared with both peaks."""
    out = {}
    dtypes = ("float32", "bfloat16") if bf16_peak else ("float32",)
    for (name, model_cfg), dtype in itertools.product(ENCODERS.items(), dtypes):
        cfg = TrainConfig(
            data=Path("unused"),
            out=Path("unused"),
            batch_size=budget.batch_size,
            model=model_cfg,
            encoder_dtype=dtype,
        )
        speed = train_throughput(cfg, device, peak, budget.warmup_steps, budget.train_steps)
        key = name if dtype == "float32" else f"{name}, bf16 encoder"
        out[key] = {"model": asdict(model_cfg), "encoder_dtype": dtype, **speed}
        if dtype == "bfloat16":
            out[key]["fraction_of_bf16_peak"] = speed["gflops"] / bf16_peak
    return out


# ---- 3. seconds per plan ----------------------------------------------------------------------


def plan_stats(
    model: WorldModel, budget: Budget, device: torch.device, horizon: int
) -> dict[str, Any]:
    plan_seconds(model, 1, budget.plan_warmup, device, horizon)
    single = np.array(plan_seconds(model, 1, budget.plan_repeats, device, horizon))
    batched = np.array(
        plan_seconds(model, budget.batch_problems, budget.batch_repeats, device, horizon)
    )
    p50 = float(np.percentile(single, 50))
    return {
        "horizon": horizon,
        "single": {
            "repeats": budget.plan_repeats,
            "p50_s": p50,
            "p95_s": float(np.percentile(single, 95)),
            "mean_s": float(single.mean()),
            "target_s": PLAN_TARGET_S,
            "pass": p50 <= PLAN_TARGET_S,
        },
        "batch": {
            "problems": budget.batch_problems,
            "repeats": budget.batch_repeats,
            "seconds_per_batch": float(batched.mean()),
            "seconds_per_problem": float(batched.mean()) / budget.batch_problems,
        },
    }


def bench_plan(budget: Budget, device: torch.device) -> dict[str, Any]:
    """Plan latency at the issue's target setting (horizon 5) and at the protocol's horizon."""
    torch.manual_seed(0)
    model = WorldModel(ModelConfig()).to(device).eval()
    p = TwoRoomProtocol().planner
    return {
        "samples": p.samples,
        "elites": p.elites,
        "iterations": p.iterations,
        "hold": p.hold,
        **plan_stats(model, budget, device, TARGET_HORIZON),
        "protocol": plan_stats(model, budget, device, p.horizon),
    }


# ---- report -----------------------------------------------------------------------------------


def table_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    env, mm, tr, pl = r["environment"], r["matmul"], r["train"], r["plan"]
    rows = [
        ("torch / threads / device", f"{env['torch']} / {env['threads']} / {env['device']}"),
        ("cpu", f"{env['cpu_model']} ({env['cpu_count']} logical)"),
        ("CPU busy before start", f"{env['cpu_busy_fraction_start']} (fraction of all CPUs)"),
        (f"matmul peak ({mm['size']}^2 fp32)", f"{mm['gflops']:.1f} GFLOP/s"),
    ]
    if "matmul_bf16" in r:
        rows.append(
            (f"matmul peak ({mm['size']}^2 bf16)", f"{r['matmul_bf16']['gflops']:.1f} GFLOP/s")
        )
    rows += [
        ("train FLOPs / step (fwd+bwd)", f"{tr['flops_per_step'] / 1e9:.2f} GFLOP"),
        ("malloc keeps freed memory", str(r["malloc_keeps_freed_memory"])),
    ]
    for name in ("model_only", "with_loader"):
        t = tr[name]
        rows.append(
            (
                f"train {name} (B={tr['batch_size']}, T={tr['clip_frames']})",
                f"{t['seconds_per_step']:.3f} s/step  {t['samples_per_s']:.1f} clips/s  "
                f"{t['frames_per_s']:.0f} frames/s  {t['gflops']:.1f} GFLOP/s  "
                f"{100 * t['fraction_of_peak']:.1f}% of peak",
            )
        )
    fraction = tr["model_only"]["fraction_of_peak"]
    rows.append(
        (
            f"train >= {100 * TRAIN_TARGET_FRACTION:.0f}% of peak (default model)",
            "PASS" if fraction >= TRAIN_TARGET_FRACTION else "FAIL",
        )
    )
    for name, t in r["train_by_encoder"].items():
        bf16 = t.get("fraction_of_bf16_peak")
        rows.append(
            (
                f"train by encoder: {name}",
                f"{t['flops_per_step'] / 1e9:.2f} GFLOP/step  {t['frames_per_s']:.0f} frames/s  "
                f"{t['gflops']:.1f} GFLOP/s  {100 * t['fraction_of_peak']:.1f}% of fp32 peak"
                + ("" if bf16 is None else f", {100 * bf16:.1f}% of bf16 peak"),
            )
        )
    for block in (pl, pl["protocol"]):
        s, b = block["single"], block["batch"]
        name = f"L={block['horizon']}" + (" (protocol)" if block is pl["protocol"] else " (target)")
        rows += [
            (
                f"plan E=1 {name}",
                f"p50 {s['p50_s']:.3f} s  p95 {s['p95_s']:.3f} s  mean {s['mean_s']:.3f} s  (n={s['repeats']})",
            ),
            (f"plan {name} p50 <= {s['target_s']} s", "PASS" if s["pass"] else "FAIL"),
            (
                f"plan {name} E={b['problems']} lock-step",
                f"{b['seconds_per_batch']:.2f} s/batch  {b['seconds_per_problem']:.3f} s/problem",
            ),
        ]
    rows += [
        ("peak RSS", f"{r['peak_rss_mib']:.0f} MiB"),
    ]
    if env["machine_busy"]:
        rows.append(
            (
                "WARNING",
                "other processes were using the CPUs: timings are disturbed (try --threads 1)",
            )
        )
    return rows


def print_table(result: dict[str, Any]) -> None:
    rows = table_rows(result)
    width = max(len(k) for k, _ in rows)
    print(f"{'metric'.ljust(width)} | value")
    print(f"{'-' * width}-+-{'-' * 40}")
    for key, value in rows:
        print(f"{key.ljust(width)} | {value}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "perf.json")
    p.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test, < 60 s)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--system-malloc",
        action="store_true",
        help="leave glibc malloc as it is (training sets it to keep freed memory on CPU)",
    )
    args = p.parse_args(argv)
    if args.threads < 0:
        p.error(f"argument --threads: must be >= 0, got {args.threads}")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("argument --device: cuda requested but CUDA is not available")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if use_cuda else "cpu")
    budget = QUICK if args.quick else FULL
    seed_everything(args.seed)
    kept = device.type == "cpu" and not args.system_malloc and keep_freed_memory()
    result: dict[str, Any] = {"environment": environment(device), "quick": args.quick}
    result["malloc_keeps_freed_memory"] = kept
    result["budget"] = asdict(budget)
    result["matmul"] = bench_matmul(budget, device)
    with tempfile.TemporaryDirectory(prefix="jepaworld-perf-") as tmp:
        result["train"] = bench_train(budget, device, result["matmul"]["gflops"], Path(tmp))
    bf16_peak = None
    if native_bfloat16(device):
        result["matmul_bf16"] = bench_matmul(budget, device, torch.bfloat16)
        bf16_peak = result["matmul_bf16"]["gflops"]
    result["train_by_encoder"] = bench_encoders(
        budget, device, result["matmul"]["gflops"], bf16_peak
    )
    result["plan"] = bench_plan(budget, device)
    result["environment"]["load_average_end"] = load_average()
    result["peak_rss_mib"] = peak_rss_mib()
    if device.type == "cuda":
        result["cuda_max_memory_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"\nwrote {args.out}")
    return result


if __name__ == "__main__":
    main()
