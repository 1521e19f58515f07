"""`jepaworld physics pretrain`: action-free JEPA pretraining on video, with physics-sized defaults.

It is `jepaworld train` with a video preset: one model step per frame, clips of 16 frames, the
open-loop rollout loss predicting the last 12 frames from the first 4 (V-JEPA's "predict the masked
future", in time), and a predictor of 4 blocks of width 128. The temporal-smoothness term stays: on
the VoE pairs (20 per property, 1500 steps) dropping it cost solidity 0.90 -> 0.53-0.65. The
predictor is the foundation's 2 x 64 grown: with the 15-frame context of physics-voe v3 (3000
steps, the same 1000 videos), the small one scored permanence 0.66, gravity 0.50 and constancy 0.54,
this one 0.78, 0.86 and 0.66 (validation seeds: 0.62 -> 0.70, 0.50 -> 0.76, 0.60 -> 0.60); it
costs about 10% more time per step, so the default run is 2700 steps to stay in 15 minutes on two
cores. The run, checkpoint and model format are the foundation's, and clips go through the same
predictor with its learned null action, so the checkpoint can later be trained on action-labelled
episodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from jepaworld.data.episodes import MANIFEST
from jepaworld.models.world_model import ModelConfig
from jepaworld.train import TrainConfig, train

PRETRAIN_STEPS = 2700
"""Default optimizer steps of `physics pretrain` (about 14 minutes on two CPU cores)."""


def video_model() -> ModelConfig:
    """Preset: an action-free world model for 64 px video, one model step per frame."""
    return ModelConfig(
        action_dim=0,
        frame_stride=1,
        max_len=24,
        rollout_context=4,
        pred_dim=128,
        pred_depth=4,
    )


@dataclass
class PhysicsPretrainConfig(TrainConfig):
    """Pretrain a world model on action-free video: --videos FOLDER (any mp4/mkv/webm/avi/mov)
    or --data DIR (`jepaworld physics make` output, or any episode dataset)."""

    data: Path | None = None
    """Generated scenes: the DIR given to `physics make` (its train/ is used) or a dataset dir."""
    steps: int | None = None
    """Total optimizer steps; the LR schedule is defined in steps, so short runs still anneal
    (default 2700, about 14 minutes on two CPU cores; with --resume, the run's own unless given)."""
    batch_size: int = 32
    """Clips per step."""
    clip_frames: int = 16
    """Frames per training clip (at --model.frame-stride)."""
    model: ModelConfig = field(default_factory=video_model)

    def __post_init__(self) -> None:
        if self.steps is None and not self.resume:
            self.steps = PRETRAIN_STEPS
        if self.data is not None:
            self.data = Path(self.data)
            if not (self.data / MANIFEST).is_file() and (self.data / "train" / MANIFEST).is_file():
                self.data = self.data / "train"
        super().__post_init__()


def pretrain(cfg: PhysicsPretrainConfig) -> Path:
    """Train (or resume) the run; returns its final checkpoint directory."""
    return train(cfg)
