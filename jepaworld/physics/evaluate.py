"""`jepaworld physics eval`: the violation-of-expectation suite on one checkpoint, baselines alongside.

For each property, every matched pair is scored by three surprise functions in the same process:
the checkpoint (latent prediction error), the same architecture untrained, and a pixel predictor
trained here on possible-only videos. EVAL/voe.json holds, per property and scorer, the relative
accuracy, its bootstrap 95% interval, the AUROC and the per-pair scores (for the matched-set
properties, permanence, gravity and constancy, a set's two scores reduce the frames of its two
possible videos together, and of its two impossible ones; under protocol v5 each video's surprise
is averaged over its left-right flip and copies moved sideways by a few pixels), stamped with the
checkpoint's sha256 and the protocol; EVAL/plots/<property>.png shows the checkpoint's surprise
over time for one possible and one impossible video, the violation frame marked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jepaworld.bench.machine import environment
from jepaworld.bench.media import save_png
from jepaworld.bench.plan_eval import checkpoint_sha256, write_json
from jepaworld.bench.plot import line_chart
from jepaworld.bench.protocols import VoEProtocol
from jepaworld.config import require
from jepaworld.data.episodes import manifest_sha256
from jepaworld.data.voe import iter_pairs, load_pairs_manifest, pair_seed
from jepaworld.envs.physics_scenes import PROPERTIES, SceneConfig, VoEPair, make_pair, make_video
from jepaworld.models.world_model import CheckpointError, WorldModel
from jepaworld.physics.pixel_baseline import pixel_surprise, train_pixel_predictor
from jepaworld.physics.surprise import check_shifts, look_mean, surprise
from jepaworld.physics.voe import auroc, bootstrap_ci, relative_accuracy, video_score
from jepaworld.planning.protocols import refuse_proprio
from jepaworld.train import latest_checkpoint, read_run_record, resolve_device

log = logging.getLogger(__name__)
Scorer = Callable[[torch.Tensor], np.ndarray]  # uint8 video (T, H, W, 3) -> surprise (T,)


@dataclass
class PhysicsEvalConfig:
    """Score a run's latest checkpoint on the violation-of-expectation suite, with baselines."""

    run: Path
    """Run directory (its latest checkpoint is evaluated)."""
    out: Path
    """Output directory: voe.json and plots/<property>.png."""
    pairs: int = 50
    """Pairs per property, generated from the protocol's seeds (its default is 50)."""
    pairs_dir: Path | None = None
    """Use the pairs written by `jepaworld physics make` (DIR or DIR/pairs) instead."""
    device: str = "auto"
    """Device: auto, cpu, cuda."""
    flip: bool | None = None
    """Average each video's surprise with that of the video flipped left to right, for every
    scorer (default: the protocol's, physics-voe v5: true); false: no flipped looks (with
    `--shifts 0` as well, each video as it is, as version 3 scored; recorded in voe.json)."""
    shifts: tuple[int, ...] | None = None
    """Average each video's surprise over copies moved sideways by these pixels (edge columns
    repeated), for every scorer (default: the protocol's, physics-voe v5: -6 -3 0 3 6); 0 alone
    scores the video where it is, as version 4 did (recorded in voe.json's protocol)."""

    def __post_init__(self) -> None:
        self.run, self.out = Path(self.run), Path(self.out)
        if self.pairs_dir is not None:
            self.pairs_dir = Path(self.pairs_dir)
            if (self.pairs_dir / "pairs").is_dir():
                self.pairs_dir = self.pairs_dir / "pairs"
        require(self.pairs >= 1, "pairs", f"must be >= 1, got {self.pairs}")
        if self.shifts is not None:
            self.shifts = check_shifts(self.shifts, SceneConfig().size)


def load_video_model(run: Path, device: str, protocol: VoEProtocol) -> tuple[WorldModel, Path]:
    """The latest checkpoint, checked against the scenes' frame size and the protocol's windows."""
    ckpt = latest_checkpoint(run)
    model = WorldModel.from_pretrained(ckpt, map_location=resolve_device(device))
    refuse_proprio(model, ckpt, "videos have no state vectors")
    size, need = SceneConfig().size, protocol.context + protocol.horizon - 1
    if model.config.image_size != size:
        raise CheckpointError(
            f"{ckpt}: the model takes {model.config.image_size}px frames, the scenes are {size}px"
        )
    if model.config.max_len < need:
        raise CheckpointError(
            f"{ckpt}: model.max_len {model.config.max_len} < {need} (protocol context "
            f"{protocol.context} + horizon {protocol.horizon} - 1)"
        )
    return model, ckpt


def protocol_pairs(protocol: VoEProtocol) -> Iterable[VoEPair]:
    for prop in PROPERTIES:
        for i in range(protocol.pairs):
            yield make_pair(prop, pair_seed(protocol.seed, prop, i))


def latent_scorers(model: WorldModel, protocol: VoEProtocol) -> dict[str, Scorer]:
    """The checkpoint and the same architecture untrained (seeded), as video -> surprise."""
    torch.manual_seed(protocol.untrained_seed)
    untrained = WorldModel(model.config).to(model.device).eval()

    def latent(m: WorldModel) -> Scorer:
        return lambda v: surprise(
            m, v, protocol.context, protocol.horizon, protocol.flip, protocol.shifts
        ).numpy()

    return {"model": latent(model), "untrained": latent(untrained)}


def make_scorers(model: WorldModel, protocol: VoEProtocol) -> dict[str, Scorer]:
    """The checkpoint and its two baselines (untrained, pixel predictor trained here)."""
    scorers = latent_scorers(model, protocol)
    videos = [make_video(seed) for seed in range(protocol.pixel_videos)]
    pixel = train_pixel_predictor(
        videos, protocol.pixel_context, protocol.pixel_steps, seed=protocol.untrained_seed
    )

    def pixel_score(video: torch.Tensor) -> np.ndarray:
        score = partial(pixel_surprise, pixel)
        return look_mean(score, video, protocol.flip, protocol.shifts).numpy()

    return {**scorers, "pixel": pixel_score}


def _metrics(possible: np.ndarray, impossible: np.ndarray, protocol: VoEProtocol) -> dict[str, Any]:
    lo, hi = bootstrap_ci(
        possible, impossible, relative_accuracy, protocol.bootstrap_resamples, seed=0
    )
    return {
        "relative_accuracy": relative_accuracy(possible, impossible),
        "ci95": [lo, hi],
        "auroc": auroc(possible, impossible),
        "pairs": len(possible),
        "scores": {"possible": possible.tolist(), "impossible": impossible.tolist()},
    }


def _plot(pair: VoEPair, scorer: Scorer, path: Path) -> Path:
    curves = {
        "possible": scorer(torch.from_numpy(pair.possible)),
        "impossible": scorer(torch.from_numpy(pair.impossible)),
    }
    title = f"{pair.prop}: surprise of the checkpoint (pair seed {pair.seed})"
    image = line_chart(curves, title, marker=pair.violation_frame, marker_label="violation")
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_png(image, path)


def pair_scores(pair: VoEPair, scorer: Scorer, reduce: str) -> tuple[float, float]:
    """(possible, impossible) scores of one pair. A matched set (IntPhys's design) is scored over
    the frames of its two possible videos together, likewise its two impossible ones: where the
    frames' surprises are the same numbers in another order (a scorer that judges frames one at a
    time, or a context too short to reach back to the change), the scores tie exactly
    (`video_score` is order-free) and the set counts 0.5, instead of rounding deciding it."""

    def score(*videos: np.ndarray) -> float:
        per_frame = [scorer(torch.from_numpy(v)) for v in videos]
        return video_score(np.concatenate(per_frame), reduce)  # (T,) or (2T,) frames

    if not pair.matched:
        return score(pair.possible), score(pair.impossible)
    return score(pair.possible, pair.possible_mirror), score(
        pair.impossible, pair.impossible_mirror
    )


def score_pairs(
    pairs: Iterable[VoEPair], scorers: dict[str, Scorer], protocol: VoEProtocol
) -> dict[str, dict[str, np.ndarray]]:
    """property -> scorer -> (N, 2) scores, column 0 possible, column 1 impossible (a matched
    set's reduce the frames of both its pairs: `pair_scores`)."""
    rows: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for pair in pairs:
        per = rows.setdefault(pair.prop, {name: [] for name in scorers})
        for name, scorer in scorers.items():
            per[name].append(pair_scores(pair, scorer, protocol.reduce))
    return {
        prop: {name: np.asarray(v, float) for name, v in per.items()} for prop, per in rows.items()
    }


def summary(properties: dict[str, Any]) -> dict[str, dict[str, float]]:
    """scorer -> property -> relative accuracy, for a one-look table."""
    out = {"model": {p: e["relative_accuracy"] for p, e in properties.items()}}
    for p, e in properties.items():
        for name, m in e["baselines"].items():
            out.setdefault(name, {})[p] = m["relative_accuracy"]
    return out


def evaluate_voe(cfg: PhysicsEvalConfig, protocol: VoEProtocol | None = None) -> dict[str, Any]:
    """Score the checkpoint and both baselines on every pair; write voe.json and the plots."""
    protocol = (protocol or VoEProtocol()).with_pairs(cfg.pairs)
    if cfg.flip is not None:
        protocol = replace(protocol, flip=cfg.flip)
    if cfg.shifts is not None:
        protocol = replace(protocol, shifts=cfg.shifts)
    record = read_run_record(cfg.run)
    model, ckpt = load_video_model(cfg.run, cfg.device, protocol)  # before any long work
    clip = record.get("train", {}).get("clip_frames")
    if isinstance(clip, int) and clip - 1 < protocol.context:
        log.warning(
            "%s was trained on clips of %d frames: predictions from more than %d frames were never "
            "trained, and the protocol's context is %d",
            cfg.run, clip, clip - 1, protocol.context,
        )  # fmt: skip
    t0 = time.perf_counter()
    scorers = make_scorers(model, protocol)
    baseline_seconds = time.perf_counter() - t0
    if cfg.pairs_dir is not None:
        pairs, source = list(iter_pairs(cfg.pairs_dir)), str(cfg.pairs_dir)
        pairs_sha: str | None = manifest_sha256(cfg.pairs_dir)
        seeds = load_pairs_manifest(cfg.pairs_dir)["seeds"]  # what was scored, not --pairs
        protocol = replace(protocol, pairs=int(seeds["per_property"]), seed=int(seeds["first"]))
    else:
        pairs, source, pairs_sha = list(protocol_pairs(protocol)), "generated", None
    scores = score_pairs(pairs, scorers, protocol)
    properties: dict[str, Any] = {}
    for prop, per in scores.items():
        mine = [p for p in pairs if p.prop == prop]
        metrics = {name: _metrics(arr[:, 0], arr[:, 1], protocol) for name, arr in per.items()}
        entry: dict[str, Any] = metrics.pop("model")
        entry["baselines"] = metrics
        entry["seeds"] = [p.seed for p in mine]
        entry["violation_frames"] = [p.violation_frame for p in mine]
        _plot(mine[0], scorers["model"], cfg.out / "plots" / f"{prop}.png")
        entry["plot"] = f"plots/{prop}.png"
        properties[prop] = entry
    results = {
        "protocol": protocol.to_dict(),
        "checkpoint": str(ckpt),
        "checkpoint_sha256": checkpoint_sha256(ckpt),
        "data_manifest_sha256": record.get("data_manifest_sha256"),
        "data_env_id": record.get("data_env_id"),
        "pairs_source": source,
        "pairs_manifest_sha256": pairs_sha,
        "scorers": {
            "model": "the checkpoint: latent L1 prediction error",
            "untrained": "same architecture, random init: latent L1 prediction error",
            "pixel": "conv next-frame pixel predictor trained in this run: pixel MSE",
        },
        "properties": properties,
        "summary": summary(properties),
        "baseline_training_seconds": baseline_seconds,
        "eval_seconds": time.perf_counter() - t0,
        "machine": environment(model.device),
    }
    write_json(cfg.out / "voe.json", results)
    return results
