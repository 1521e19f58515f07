"""Intuitive physics, measured as a user would get it: make scenes, pretrain on them, evaluate VoE.

Runs `jepaworld physics make` (training videos; the evaluation pairs come from the protocol's
seeds), `jepaworld physics pretrain --data` with its defaults, then `jepaworld physics eval`
(checkpoint, untrained encoder and pixel predictor in the same run), each timed. Targets
(issue: Intuitive physics): relative accuracy >= 0.95 on every property, pretraining (making the
videos included) <= 15 minutes on the 2-core CPU, the untrained baseline near chance.

Usage::

    python benchmarks/physics.py                     # writes benchmarks/results/physics.json
    python benchmarks/physics.py --steps 500 --pairs 10 --workdir /tmp/phys   # a quick look
    python benchmarks/physics.py --recon-weight 30 --steps 2700 --seed 1   # a variant of the preset
    python benchmarks/physics.py --sigreg-over time   # SIGReg per time step (LeWM's)
    python benchmarks/physics.py --videos 1000 --screen-prob 1.0   # other training videos
    python benchmarks/physics.py --steps 2000 --predictor-steps 2000   # then the predictor alone
    python benchmarks/physics.py --steps 2000 --predictor-steps 2500 --predictor-hide-frames 0.5

`--predictor-steps N` adds a second stage inside the same budget: N more steps of the predictor
alone on the pretrained encoder, frozen, whose embeddings are read once (`physics pretrain --init
RUN --freeze-encoder --cache-latents`), on whole videos as clips (`--predictor-clip-frames`, 24);
the second stage's checkpoint is the one evaluated, and its time counts in the pretraining's.
`--predictor-hide-frames S` hides a run of input frames in a share S of the stage's clips
(`physics pretrain --hide-frames`; README: "Where constancy is lost").

The machine's float32 and bfloat16 matmul peaks are measured first, in the same run, and saved
beside the timings: this workplace's CPU has measured from 262 to 403 float32 GFLOP/s on different
days, and a pretraining time is to be read against that day's peak.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from targets import report_and_save  # benchmarks/targets.py, beside this script

from jepaworld.bench.machine import environment, peak_rss_mib
from jepaworld.bench.performance import PEAK_SECONDS, PEAK_SIZE, matmul_peak
from jepaworld.physics.evaluate import PhysicsEvalConfig, evaluate_voe
from jepaworld.physics.make import PhysicsMakeConfig, make_physics_data
from jepaworld.physics.pretrain import PhysicsPretrainConfig, pretrain, video_model
from jepaworld.train import resolve_device

TARGET_ACCURACY, TARGET_PRETRAIN_SECONDS = 0.95, 900.0


def pretrain_config(
    work: Path, steps: int | None, model_options: dict[str, Any], seed: int | None
) -> PhysicsPretrainConfig:
    """`physics pretrain --data work/scenes` with its defaults, but for the options given (None:
    the preset's; `model_options`, ModelConfig fields, replace the preset model's)."""
    model = dataclasses.replace(video_model(), **model_options)
    options: dict[str, Any] = {} if seed is None else {"seed": seed}
    return PhysicsPretrainConfig(
        out=work / "run", data=work / "scenes", steps=steps, model=model, **options
    )


def predictor_config(
    work: Path, first: PhysicsPretrainConfig, steps: int, clip_frames: int, hide: float = 0.0
) -> PhysicsPretrainConfig:
    """The second stage: `steps` of the predictor alone on `first`'s frozen encoder, from its
    cached embeddings, on clips of `clip_frames`, a share `hide` of them with a run of input
    frames hidden (`TrainConfig.hide_frames`)."""
    return dataclasses.replace(
        first,
        out=work / "run_predictor",
        init=first.out,
        freeze_encoder=True,
        cache_latents=True,
        steps=steps,
        clip_frames=clip_frames,
        hide_frames=hide,
    )


def run(
    work: Path,
    videos: int,
    steps: int | None,
    pairs: int,
    model_options: dict[str, Any] | None = None,
    seed: int | None = None,
    screen_prob: float | None = None,
    predictor_steps: int = 0,
    predictor_clip_frames: int = 24,
    predictor_hide: float = 0.0,
) -> dict[str, Any]:
    """make -> pretrain [-> the predictor alone] -> eval in `work`; returns timings and the
    eval's results."""
    scenes: dict[str, Any] = {} if screen_prob is None else {"screen_prob": screen_prob}
    make_cfg = PhysicsMakeConfig(out=work / "scenes", videos=videos, pairs=1, **scenes)
    t0 = time.perf_counter()
    make_physics_data(make_cfg)
    t1 = time.perf_counter()
    cfg = pretrain_config(work, steps, model_options or {}, seed)
    pretrain(cfg)
    t2 = time.perf_counter()
    evaluated = cfg
    if predictor_steps:
        evaluated = predictor_config(
            work, cfg, predictor_steps, predictor_clip_frames, predictor_hide
        )
        pretrain(evaluated)
    t3 = time.perf_counter()
    results = evaluate_voe(PhysicsEvalConfig(run=evaluated.out, out=work / "eval", pairs=pairs))
    t4 = time.perf_counter()
    seconds = {"make": t1 - t0, "pretrain": t2 - t1, "predictor": t3 - t2, "eval": t4 - t3}
    return {
        "seconds": seconds,
        "steps": cfg.steps,
        "predictor_steps": predictor_steps,
        "predictor_clip_frames": predictor_clip_frames if predictor_steps else None,
        "predictor_hide_frames": predictor_hide if predictor_steps else None,
        "seed": cfg.seed,
        "recon_weight": cfg.model.recon_weight,
        "reg_weight": cfg.model.reg_weight,
        "sigreg_over": cfg.model.sigreg_over,
        "videos": videos,
        "screen_prob": make_cfg.screen_prob,
        "voe": results,
    }


def table(result: dict[str, Any]) -> str:
    summary = result["voe"]["summary"]
    props = list(summary["model"])
    lines = [f"{'':>10} " + " ".join(f"{p:>11}" for p in props)]
    for name, row in summary.items():
        lines.append(f"{name:>10} " + " ".join(f"{row[p]:>11.2f}" for p in props))
    ci = [result["voe"]["properties"][p]["ci95"] for p in props]
    lines.append(f"{'model ci95':>10} " + " ".join(f"{lo:.2f}-{hi:.2f}".rjust(11) for lo, hi in ci))
    s = result["seconds"]
    stage = (
        f", predictor alone {s['predictor']:.0f} ({result['predictor_steps']} steps)"
        if result["predictor_steps"]
        else ""
    )
    lines.append(
        f"seconds: make {s['make']:.0f}, pretrain {s['pretrain']:.0f} ({result['steps']} steps)"
        f"{stage}, eval {s['eval']:.0f}"
    )
    return "\n".join(lines)


def model_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ModelConfig fields the command line sets (those given; the rest the preset's)."""
    given = {
        "recon_weight": args.recon_weight,
        "reg_weight": args.reg_weight,
        "sigreg_over": args.sigreg_over,
    }
    return {k: v for k, v in given.items() if v is not None}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/physics.json"))
    parser.add_argument("--workdir", type=Path, default=None, help="keep the run's files here")
    parser.add_argument("--videos", type=int, default=10000, help="training videos to make")
    parser.add_argument("--steps", type=int, default=None, help="pretraining steps (default: its)")
    parser.add_argument("--pairs", type=int, default=50, help="pairs per property")
    parser.add_argument("--seed", type=int, default=None, help="pretraining seed (the preset's)")
    parser.add_argument(
        "--recon-weight",
        type=float,
        default=None,
        help="weight of the pixel-reconstruction auxiliary (--model.recon-weight; the preset's)",
    )
    parser.add_argument(
        "--reg-weight",
        type=float,
        default=None,
        help="weight of the anti-collapse term (--model.reg-weight; the preset's)",
    )
    parser.add_argument(
        "--sigreg-over",
        choices=("frames", "time"),
        default=None,
        help="what SIGReg tests: frames pooled, or each time step (--model.sigreg-over; the "
        "preset's)",
    )
    parser.add_argument(
        "--screen-prob",
        type=float,
        default=None,
        help="share of training videos with an occluding screen (physics make --screen-prob)",
    )
    parser.add_argument(
        "--predictor-steps",
        type=int,
        default=0,
        help="then this many steps of the predictor alone on the frozen encoder (0: none)",
    )
    parser.add_argument(
        "--predictor-clip-frames",
        type=int,
        default=24,
        help="frames per clip of the predictor stage (24: the training videos' whole length)",
    )
    parser.add_argument(
        "--predictor-hide-frames",
        type=float,
        default=0.0,
        help="share of the predictor stage's clips with a run of input frames hidden "
        "(physics pretrain --hide-frames; 0: none)",
    )
    args = parser.parse_args(argv)
    if args.predictor_steps < 0:
        parser.error(f"--predictor-steps: must be >= 0, got {args.predictor_steps}")
    if not 0 <= args.predictor_hide_frames <= 1:
        parser.error(
            f"--predictor-hide-frames: must be in [0, 1], got {args.predictor_hide_frames}"
        )
    if args.predictor_hide_frames and not args.predictor_steps:
        parser.error("--predictor-hide-frames: needs --predictor-steps (the stage it hides in)")
    if args.predictor_steps and args.recon_weight:
        parser.error("--predictor-steps trains the predictor alone: not with --recon-weight")
    longest = video_model().max_len
    if args.predictor_steps and not 2 <= args.predictor_clip_frames <= longest:
        parser.error(f"--predictor-clip-frames: must be in [2, {longest}] (the model's max_len)")
    device = resolve_device("auto")
    env = environment(device)
    peaks = {
        str(d).removeprefix("torch."): matmul_peak(PEAK_SIZE, PEAK_SECONDS, device, d)
        for d in (torch.float32, torch.bfloat16)
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        result = run(
            work,
            args.videos,
            args.steps,
            args.pairs,
            model_options(args),
            args.seed,
            args.screen_prob,
            args.predictor_steps,
            args.predictor_clip_frames,
            args.predictor_hide_frames,
        )
    accuracy = result["voe"]["summary"]["model"]
    s = result["seconds"]
    pretrain_seconds = s["make"] + s["pretrain"] + s["predictor"]
    result |= {
        "environment": env,
        "matmul_peak": peaks,
        "peak_rss_mib": peak_rss_mib(),
        "targets": {
            "relative_accuracy": {
                "target": TARGET_ACCURACY,
                "pass": {p: a >= TARGET_ACCURACY for p, a in accuracy.items()},
            },
            "pretrain_seconds": {
                "target": TARGET_PRETRAIN_SECONDS,
                "value": pretrain_seconds,
                "pass": pretrain_seconds <= TARGET_PRETRAIN_SECONDS,
            },
        },
    }
    print(table(result))
    report_and_save(result, args.out)
    return result


if __name__ == "__main__":
    main()
