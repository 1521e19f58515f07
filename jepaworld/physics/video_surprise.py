"""`jepaworld physics surprise`: a checkpoint's surprise over time on one video file of yours.

The video is decoded with PyAV (any container PyAV reads: mp4, mkv, webm, avi, mov), every
`stride`-th frame up to `max_frames`, each scaled so its short side is the model's frame size and
centre-cropped, as `physics pretrain --videos` reads its folder. Surprise at each kept frame is
`physics.surprise.surprise`: the latent L1 error of the prediction from the `context` frames
before it (averaged with the video flipped left to right with `--flip`, and over copies moved
sideways by `--shifts` pixels, as protocol physics-voe v5 scores the scenes; leave them off for a
world whose physics changes when flipped or moved). OUT/surprise.json holds the per-frame curve,
its peak and what made it (the file's and the checkpoint's sha256, the settings); OUT/surprise.png
draws it with the peak marked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jepaworld.bench.media import save_png
from jepaworld.bench.plan_eval import checkpoint_sha256, write_json
from jepaworld.bench.plot import line_chart
from jepaworld.bench.protocols import VoEProtocol
from jepaworld.config import require
from jepaworld.data.episodes import DataError, sha256_file
from jepaworld.data.video_folder import read_strided
from jepaworld.models.world_model import CheckpointError, WorldModel
from jepaworld.physics.surprise import check_shifts, surprise
from jepaworld.planning.protocols import refuse_proprio
from jepaworld.train import latest_checkpoint, resolve_device

log = logging.getLogger(__name__)


@dataclass
class PhysicsSurpriseConfig:
    """Score one video file with a run's latest checkpoint: surprise per frame, JSON and a plot."""

    run: Path
    """Run directory (its latest checkpoint scores the video)."""
    video: Path
    """The video file (mp4, mkv, webm, avi, mov: whatever PyAV reads)."""
    out: Path
    """Output directory: surprise.json and surprise.png."""
    context: int | None = None
    """Frames of context per prediction (default: the protocol's 15, or as many as the
    checkpoint's max_len allows)."""
    horizon: int = 1
    """Frames predicted open-loop from each context; surprise at t averages their errors."""
    stride: int = 1
    """Keep every stride-th frame of the file (a model trained at another frame rate)."""
    max_frames: int = 2000
    """Frames kept at most, from the start (the decoded frames are held in memory)."""
    flip: bool = False
    """Average with the surprise of the video flipped left to right (physics-voe v5 does, on
    scenes whose physics is the same flipped)."""
    shifts: tuple[int, ...] = (0,)
    """Average over copies of the video moved sideways by these pixels, edge columns repeated
    (physics-voe v5 uses -6 -3 0 3 6; 0 alone: the video where it is)."""
    device: str = "auto"
    """Device: auto, cpu, cuda."""

    def __post_init__(self) -> None:
        self.run, self.video, self.out = Path(self.run), Path(self.video), Path(self.out)
        require(self.context is None or self.context >= 1, "context", "must be >= 1")
        require(self.horizon >= 1, "horizon", f"must be >= 1, got {self.horizon}")
        require(self.stride >= 1, "stride", f"must be >= 1, got {self.stride}")
        require(self.max_frames >= 2, "max_frames", f"must be >= 2, got {self.max_frames}")
        self.shifts = check_shifts(self.shifts)


def load_scorer(cfg: PhysicsSurpriseConfig) -> tuple[WorldModel, Path, int]:
    """The latest checkpoint, checked for video (no proprioception), and the context it allows."""
    ckpt = latest_checkpoint(cfg.run)
    model = WorldModel.from_pretrained(ckpt, map_location=resolve_device(cfg.device)).eval()
    refuse_proprio(model, ckpt, "a video file has no state vectors")
    room = model.config.max_len - cfg.horizon + 1  # the longest context the predictor takes
    if room < 1:
        raise CheckpointError(
            f"{ckpt}: model.max_len {model.config.max_len} is shorter than --horizon {cfg.horizon}"
        )
    context = cfg.context if cfg.context is not None else min(VoEProtocol.context, room)
    if context > room:
        raise CheckpointError(
            f"{ckpt}: model.max_len {model.config.max_len} takes a context of at most {room} "
            f"frames with horizon {cfg.horizon}, got --context {context}"
        )
    return model, ckpt, context


def read_video(path: Path, size: int, stride: int, max_frames: int) -> tuple[np.ndarray, bool]:
    """Every `stride`-th frame of `path`, at most `max_frames`, as (T, size, size, 3) uint8, and
    whether the file goes on past them (a warning says so).

    Raises:
        DataError: the file is missing, not a video PyAV can decode, or has under 2 such frames.
    """
    if not path.is_file():
        raise DataError(f"{path}: no such video file")
    frames, cut = read_strided(path, size, stride, max_frames)
    if len(frames) < 2:
        raise DataError(
            f"{path}: {len(frames)} frame(s) kept at stride {stride}, surprise needs at least 2"
        )
    if cut:
        log.warning("%s: scoring its first %d frames only (--max-frames)", path, len(frames))
    return frames, cut


def score_video(cfg: PhysicsSurpriseConfig) -> dict[str, Any]:
    """Surprise per kept frame of `cfg.video`; writes OUT/surprise.json and OUT/surprise.png."""
    model, ckpt, context = load_scorer(cfg)  # before decoding: a bad run fails fast
    check_shifts(cfg.shifts, model.config.image_size)
    frames, cut = read_video(cfg.video, model.config.image_size, cfg.stride, cfg.max_frames)
    if len(frames) <= context:
        log.warning(
            "%s: %d frames, so no prediction has the full %d-frame context", cfg.video,
            len(frames), context,
        )  # fmt: skip
    video = torch.from_numpy(frames)
    curve = surprise(model, video, context, cfg.horizon, cfg.flip, cfg.shifts).numpy()
    peak = int(np.argmax(curve))
    results = {
        "video": str(cfg.video),
        "video_sha256": sha256_file(cfg.video),
        "checkpoint": str(ckpt),
        "checkpoint_sha256": checkpoint_sha256(ckpt),
        "context": context,
        "horizon": cfg.horizon,
        "stride": cfg.stride,
        "flip": cfg.flip,
        "shifts": list(cfg.shifts),
        "frames": len(frames),
        "max_frames": cfg.max_frames,
        "cut_at_max_frames": cut,
        "surprise": curve.tolist(),
        "peak_frame": peak,
        "peak_file_frame": peak * cfg.stride,
        "peak_surprise": float(curve[peak]),
        "plot": "surprise.png",
    }
    title = f"surprise of {cfg.video.name} ({len(frames)} frames, context {context})"
    x_label = "frame" if cfg.stride == 1 else f"frame kept (every {cfg.stride}th of the file)"
    image = line_chart(
        {"surprise": curve}, title, marker=peak, marker_label="peak", x_label=x_label
    )
    cfg.out.mkdir(parents=True, exist_ok=True)
    save_png(image, cfg.out / "surprise.png")
    write_json(cfg.out / "surprise.json", results)
    log.info("peak surprise %.4f at frame %d of %s", curve[peak], peak * cfg.stride, cfg.video)
    return results
