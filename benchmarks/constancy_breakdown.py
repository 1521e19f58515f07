"""Where a checkpoint's constancy score comes from: surprise of the token under the ball, per frame.

A constancy set (physics-voe v3) is four videos: the ball keeps look A (AA), keeps look B (BB),
changes from A to B while hidden (AB), or from B to A (BA); the set is scored by the impossible
videos' surprise (AB + BA) against the possible ones' (AA + BB). For each of the protocol's sets
this takes the per-token surprise (`physics.surprise.token_surprise`, the protocol's context and
horizon) of the token under the ball (`physics.look_probe.token_under_ball`; a vector model has one
token, its whole embedding) at the violation frame and the frames after it, and reports per frame
offset and per kind of change (colour or shape): the mean surprise of each of the four videos, and
the mean and the share of sets where impossible minus possible is above 0. A model that carries a
look across the screen has AB > BB and BA > AA right where the ball comes out; a model misled by
an earlier, same-looking ball has them the other way round in the frames after
(`--context 4`, shorter than the occlusion, is the control: it cannot remember the look at all).

Usage::

    python benchmarks/constancy_breakdown.py --run RUN [--sets 50] [--context 15] [--out JSON]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch
from targets import report_and_save  # benchmarks/targets.py, beside this script

from jepaworld.bench.machine import environment
from jepaworld.bench.plan_eval import checkpoint_sha256
from jepaworld.bench.protocols import VoEProtocol
from jepaworld.data.voe import pair_seed
from jepaworld.envs.physics_scenes import StagedPair, stage_pair
from jepaworld.models.world_model import WorldModel
from jepaworld.physics.look_probe import token_under_ball
from jepaworld.physics.surprise import token_surprise
from jepaworld.train import latest_checkpoint

VIDEOS = ("AA", "BB", "AB", "BA")  # possible, possible mirror, impossible, impossible mirror
OFFSETS = range(6)  # frames from the violation on


def set_rows(model: WorldModel, staged: StagedPair, context: int, horizon: int) -> list[dict]:
    """One row per frame offset: the surprise of the token under the ball in each video."""
    pair, tokens = staged.pair, model.config.grid_tokens
    videos = (pair.possible, pair.possible_mirror, pair.impossible, pair.impossible_mirror)
    per_token = [
        token_surprise(model, torch.from_numpy(v), context, horizon, tokens) for v in videos
    ]  # 4 x (T, tokens)
    ball, size = staged.ball, pair.possible.shape[1]
    changed = (staged.possible.rgb[:, ball] != staged.impossible.rgb[:, ball]).any()
    rows = []
    for offset in OFFSETS:
        t = pair.violation_frame + offset
        if t >= len(per_token[0]):
            break
        xy = torch.as_tensor(staged.possible.xy[t, ball], dtype=torch.float32)[None]  # (1, 2)
        under = [float(token_under_ball(s[t][None], xy, tokens, size)[0, 0]) for s in per_token]
        rows.append(
            {
                "offset": offset,
                "kind": "colour" if changed else "shape",
                **dict(zip(VIDEOS, under, strict=True)),
            }
        )
    return rows


def summarize(rows: list[dict]) -> list[dict[str, Any]]:
    """Per (kind, offset): the sets, each video's mean surprise, and impossible minus possible."""
    out = []
    for kind in ("colour", "shape"):
        for offset in OFFSETS:
            picked = [r for r in rows if r["kind"] == kind and r["offset"] == offset]
            if not picked:
                continue
            s = {v: np.array([r[v] for r in picked]) for v in VIDEOS}
            diff = s["AB"] + s["BA"] - s["AA"] - s["BB"]  # (sets,)
            out.append(
                {
                    "kind": kind,
                    "offset": offset,
                    "sets": len(picked),
                    **{v: round(float(x.mean()), 5) for v, x in s.items()},
                    "impossible_minus_possible": round(float(diff.mean()), 5),
                    "share_above_0": round(float((diff > 0).mean()), 3),
                }
            )
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    protocol = VoEProtocol()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--sets", type=int, default=protocol.pairs, help="constancy sets")
    parser.add_argument("--context", type=int, default=protocol.context, help="frames of context")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/constancy.json"))
    args = parser.parse_args(argv)
    if args.sets < 1 or args.context < 1:
        parser.error("--sets and --context must be >= 1")
    ckpt = latest_checkpoint(args.run)
    model = WorldModel.from_pretrained(ckpt).eval()
    rows = []
    for k in range(args.sets):
        staged = stage_pair("constancy", pair_seed(protocol.seed, "constancy", k))
        rows += set_rows(model, staged, args.context, protocol.horizon)
    summary = summarize(rows)
    print(
        f"{'kind':<7} {'offset':>6} {'sets':>4}  "
        + "  ".join(f"{v:>7}" for v in VIDEOS)
        + "   I-P      >0"
    )
    for r in summary:
        videos = "  ".join(f"{r[v]:7.4f}" for v in VIDEOS)
        print(
            f"{r['kind']:<7} {r['offset']:>6} {r['sets']:>4}  {videos}  "
            f"{r['impossible_minus_possible']:+.5f} {r['share_above_0']:.2f}"
        )
    result = {
        "environment": environment(torch.device("cpu")),
        "checkpoint": str(ckpt),
        "checkpoint_sha256": checkpoint_sha256(ckpt),
        "protocol": {**protocol.to_dict(), "pairs": args.sets, "context": args.context},
        "tokens": model.config.grid_tokens,
        "rows": summary,
    }
    report_and_save(result, args.out)
    return result


if __name__ == "__main__":
    main()
