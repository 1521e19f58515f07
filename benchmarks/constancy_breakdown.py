"""Where a checkpoint's constancy score comes from: surprise of the token under the ball, per frame.

A constancy set (physics-voe v3-v5) is four videos: the ball keeps look A (AA), keeps look B (BB),
changes from A to B while hidden (AB), or from B to A (BA); the set is scored by the impossible
videos' surprise (AB + BA) against the possible ones' (AA + BB). For each of the protocol's sets
this takes the per-token surprise (`physics.surprise.token_surprise`, the protocol's context and
horizon) of the token where the ball's look shows: the grid cell holding most of the pixels where
the possible and impossible videos differ (at the violation frame the ball is only part out of the
screen, its centre still behind it), or, where they do not differ, the cell of the ball's centre
(`physics.look_probe.token_under_ball`); a vector model has one token, its whole embedding. It
does so at the violation frame and the frames after it, and reports per frame
offset and per kind of change (colour or shape): the mean surprise of each of the four videos, and
the mean and the share of sets where impossible minus possible is above 0. A model that carries a
look across the screen has AB > BB and BA > AA right where the ball comes out; a model misled by
an earlier, same-looking ball has them the other way round in the frames after. `--context 4` is
the control: the ball hides for 4 frames or more before the violation in all but 6 of the 50
protocol sets, so a 4-frame window sees no earlier look there, and from the third frame after
the violation none in any set: impossible minus possible is then 0 by construction.

`--property permanence` does the same for the permanence sets, read with "look" meaning whether
the ball is there: AA the ball comes out from behind the screen, BB nothing went in and nothing
comes out, AB it went in and nothing comes out (vanished), BA nothing went in and a ball comes
out (appeared). A model that remembers the ball and predicts where it comes out has AB > BB (an
empty screen surprises it when it expects a ball) and BA > AA (an expected ball surprises it
less than one from nowhere).

Usage::

    python benchmarks/constancy_breakdown.py --run RUN [--sets 50] [--context 15] [--out JSON]
    python benchmarks/constancy_breakdown.py --run RUN --property permanence
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
PROPERTIES = ("constancy", "permanence")  # the sets that change a ball while it is hidden
OFFSETS = range(6)  # frames from the violation on


def changed_cell(possible: np.ndarray, impossible: np.ndarray, side: int) -> int | None:
    """The grid cell (row-major, `side` x `side`) holding most of the pixels where two frames
    (H, W, 3) differ: where the ball's look shows, even while part of it is still behind the
    screen. None where they do not differ."""
    differs = (possible != impossible).any(axis=-1)  # (H, W)
    cell = differs.shape[0] // side
    counts = differs.reshape(side, cell, side, cell).sum(axis=(1, 3))  # (side, side)
    return int(counts.argmax()) if counts.any() else None


def set_rows(model: WorldModel, staged: StagedPair, context: int, horizon: int) -> list[dict]:
    """One row per frame offset: the surprise of the token under the ball in each video. The
    token is the cell where the look differs between the possible and impossible videos; where
    it does not show (the ball hidden again), each video's own ball centre."""
    pair, tokens = staged.pair, model.config.grid_tokens
    videos = (pair.possible, pair.possible_mirror, pair.impossible, pair.impossible_mirror)
    tracks = (staged.possible, staged.possible_mirror, staged.impossible, staged.impossible_mirror)
    per_token = [
        token_surprise(model, torch.from_numpy(v), context, horizon, tokens) for v in videos
    ]  # 4 x (T, tokens)
    ball, size, side = staged.ball, pair.possible.shape[1], round(tokens**0.5)
    recoloured = (staged.possible.rgb[:, ball] != staged.impossible.rgb[:, ball]).any()
    vanished = (staged.possible.visible[:, ball] != staged.impossible.visible[:, ball]).any()
    kind = "presence" if vanished else "colour" if recoloured else "shape"  # one change a set
    rows = []
    for offset in OFFSETS:
        t = pair.violation_frame + offset
        if t >= len(per_token[0]):
            break
        cell = changed_cell(pair.possible[t], pair.impossible[t], side)
        under = []
        for s, track in zip(per_token, tracks, strict=True):
            if cell is None:
                xy = torch.as_tensor(track.xy[t, ball], dtype=torch.float32)[None]  # (1, 2)
                under.append(float(token_under_ball(s[t][None], xy, tokens, size)[0, 0]))
            else:
                under.append(float(s[t, cell]))
        rows.append({"offset": offset, "kind": kind, **dict(zip(VIDEOS, under, strict=True))})
    return rows


def summarize(rows: list[dict]) -> list[dict[str, Any]]:
    """Per (kind, offset): the sets, each video's mean surprise, and impossible minus possible."""
    out = []
    for kind in ("colour", "shape", "presence"):
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
    parser.add_argument("--property", choices=PROPERTIES, default="constancy")
    parser.add_argument("--sets", type=int, default=protocol.pairs, help="matched sets")
    parser.add_argument("--context", type=int, default=protocol.context, help="frames of context")
    parser.add_argument("--out", type=Path, help="(default: benchmarks/results/PROPERTY.json)")
    args = parser.parse_args(argv)
    if args.sets < 1:
        parser.error(f"argument --sets: must be >= 1, got {args.sets}")
    if args.context < 1:
        parser.error(f"argument --context: must be >= 1, got {args.context}")
    ckpt = latest_checkpoint(args.run)
    model = WorldModel.from_pretrained(ckpt).eval()
    if args.context + protocol.horizon - 1 > model.config.max_len:
        parser.error(
            f"argument --context: {args.context} frames (+ horizon {protocol.horizon} - 1) exceed "
            f"the model's max_len {model.config.max_len}"
        )
    rows = []
    for k in range(args.sets):
        staged = stage_pair(args.property, pair_seed(protocol.seed, args.property, k))
        rows += set_rows(model, staged, args.context, protocol.horizon)
    summary = summarize(rows)
    header = "  ".join(f"{v:>7}" for v in VIDEOS)
    print(f"{'kind':<7} {'offset':>6} {'sets':>4}  {header}  {'I-P':>8} {'>0':>4}")
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
        "property": args.property,
        # per-token surprise of the videos as they are (a flip or a shift moves the grid's cells)
        "protocol": {
            **protocol.to_dict(),
            "pairs": args.sets,
            "context": args.context,
            "flip": False,
            "shifts": [0],
        },
        "tokens": model.config.grid_tokens,
        "rows": summary,
    }
    report_and_save(result, args.out or Path(f"benchmarks/results/{args.property}.json"))
    return result


if __name__ == "__main__":
    main()
