"""What a physics checkpoint sees of a ball's look: colour and shape probes from its embeddings.

A constancy violation (a ball changes colour, or disc <-> square, while hidden) can only surprise
a model whose embedding holds that look. This fits MLP probes of the ball's colour (7 classes) and
shape (disc or square) on the embeddings of one-ball scenes' frames, scores them on held-out
videos, and does the same in the same run for the architecture untrained (seed 0) and the majority
answer (`jepaworld/physics/look_probe.py`). For a grid latent the token under the ball is probed too.
Two references from the frames themselves bound what the probe can do: `ball_crop` (a 12 x 12
window on the ball: the look is there to be read) and `pixels` (the whole frame, 4 x 4-pooled: what
the probe finds without being told where the ball is; it does not find the shape).

Usage::

    python benchmarks/physics_probe.py --run RUN [--videos 300] [--out JSON]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from targets import report_and_save  # benchmarks/targets.py, beside this script

from jepaworld.bench.machine import environment
from jepaworld.bench.plan_eval import checkpoint_sha256
from jepaworld.bench.probe import ProbeConfig
from jepaworld.models.world_model import WorldModel
from jepaworld.physics.look_probe import FIRST_SEED, look_probe, look_samples
from jepaworld.train import latest_checkpoint


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument(
        "--videos", type=int, default=300, help="one-ball scenes (last 20%% held out)"
    )
    parser.add_argument("--steps", type=int, default=ProbeConfig.steps, help="Adam steps a probe")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/physics_probe.json"))
    args = parser.parse_args(argv)
    ckpt = latest_checkpoint(args.run)
    trained = WorldModel.from_pretrained(ckpt).eval()
    torch.manual_seed(0)
    untrained = WorldModel(trained.config).eval()
    cfg = ProbeConfig(steps=args.steps)
    samples = look_samples(args.videos)
    result: dict[str, Any] = {
        "environment": environment(torch.device("cpu")),
        "checkpoint": str(ckpt),
        "checkpoint_sha256": checkpoint_sha256(ckpt),
        "scenes": {"videos": args.videos, "first_seed": FIRST_SEED},
        "probe": {
            k: getattr(cfg, k) for k in ("hidden", "steps", "batch_size", "lr", "held_out", "seed")
        },
        "probes": look_probe(
            {"model": trained.encode, "untrained": untrained.encode},
            samples,
            cfg,
            trained.config.grid_tokens,
        ),
    }
    probes = result["probes"]
    print(f"held-out frames: {probes['samples']['held_out']} (fit on {probes['samples']['fit']})")
    for name, acc in probes.items():
        if name != "samples":
            print(f"  {name:<16} colour {acc['colour']:.3f}  shape {acc['shape']:.3f}")
    report_and_save(result, args.out)
    return result


if __name__ == "__main__":
    main()
