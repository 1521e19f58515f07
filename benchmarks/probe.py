"""What the embedding knows: probes of the true state from a checkpoint's frame embeddings.

Linear and MLP probes are fitted on the embeddings of a dataset's episodes and scored on its last
episodes (held out), for the checkpoint and, in the same run, for an untrained encoder of the same
architecture (random init, seed 0) and the train-mean answer. Errors are in the state's units
(PushT: canvas px, angles in degrees). Latent planning reaches what the embedding holds: on PushT a
goal is reached only when the L2 over (pusher xy, block xy) is below 20 px (group `pose_xy`) and
the angle is within 20 deg, so a probe error far above that names the part of the state the model
cannot see. The probe's held-out episodes are held out from the probe only: on a run's own training
data the world model has seen them.

Usage::

    python benchmarks/probe.py --run RUN --data DATASET [--episodes 500] [--out JSON]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from targets import report_and_save  # benchmarks/targets.py, beside this script

from jepaworld.bench.machine import environment
from jepaworld.bench.plan_eval import checkpoint_sha256
from jepaworld.bench.probe import ProbeConfig, state_probe
from jepaworld.data.episodes import EpisodeStore, manifest_sha256
from jepaworld.models.world_model import WorldModel
from jepaworld.train import latest_checkpoint

# state layout of the worlds whose states have named parts: (angle dims, groups)
NAMED: dict[str, tuple[list[int], dict[str, list[int]]]] = {
    "jepaworld/PushT-v0": ([4], {"pusher_xy": [0, 1], "block_xy": [2, 3], "pose_xy": [0, 1, 2, 3]}),
    # (cos, sin, angular velocity); `state` is the L2 the protocol's tolerance (0.5) reads
    "Pendulum-v1": ([], {"angle": [0, 1], "speed": [2], "state": [0, 1, 2]}),
}


def parse_groups(items: list[str]) -> dict[str, list[int]]:
    """["name:0,1", ...] -> {"name": [0, 1]}."""
    groups = {}
    for item in items:
        name, _, dims = item.partition(":")
        try:
            groups[name] = [int(d) for d in dims.split(",")]
        except ValueError:
            groups[name] = []
        if not name or not groups[name]:
            raise SystemExit(f"--group {item!r}: expected NAME:d,d (e.g. block_xy:2,3)")
    return groups


def print_row(label: str, r: dict[str, Any]) -> None:
    parts = [f"{n} {g['median']:.1f}" for n, g in r["groups"].items()]
    parts += [f"dim {d} {v['median']:.2f} {v['unit']}" for d, v in r["dims"].items()]
    print(f"  {label:<7} median error: " + ", ".join(parts))


def stamp(ckpt: Path, data: Path, cfg: ProbeConfig) -> dict[str, Any]:
    """What a probe result was measured with: machine, checkpoint and data (with hashes), probe."""
    return {
        "environment": environment(torch.device("cpu")),
        "checkpoint": str(ckpt),
        "checkpoint_sha256": checkpoint_sha256(ckpt),
        "data": str(data),
        "data_manifest_sha256": manifest_sha256(data),
        "probe": vars(cfg),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="dataset with true states")
    parser.add_argument("--episodes", type=int, default=500, help="episodes read (0: all)")
    parser.add_argument("--angle-dims", type=int, nargs="*", default=None)
    parser.add_argument("--group", action="append", default=[], help="NAME:d,d (repeatable)")
    parser.add_argument("--steps", type=int, default=ProbeConfig.steps, help="Adam steps a probe")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/probe.json"))
    args = parser.parse_args(argv)
    store = EpisodeStore(args.data)
    named_angles, named_groups = NAMED.get(store.manifest.get("env_id", ""), ([], {}))
    angle_dims = named_angles if args.angle_dims is None else args.angle_dims
    groups = parse_groups(args.group) if args.group else named_groups
    cfg = ProbeConfig(episodes=args.episodes, steps=args.steps)
    ckpt = latest_checkpoint(args.run)
    trained = WorldModel.from_pretrained(ckpt).eval()
    torch.manual_seed(0)
    untrained = WorldModel(trained.config).eval()
    result = {**stamp(ckpt, args.data, cfg), "angle_dims": angle_dims, "groups": groups}
    for name, model in (("checkpoint", trained), ("untrained", untrained)):
        # the image features alone: proprioception, where a model reads it, is state itself
        result[name] = state_probe(model.encode_image, store, cfg, angle_dims, groups)
        print(f"{name} ({result[name]['samples']['held_out']} held-out frames):")
        for label in ("linear", "mlp", "mean"):
            print_row(label, result[name][label])
    report_and_save(result, args.out)
    return result


if __name__ == "__main__":
    main()
