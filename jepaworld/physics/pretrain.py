"""`jepaworld physics pretrain`: action-free JEPA pretraining on video, with physics-sized defaults.

It is `jepaworld train` with a video preset: one model step per frame, clips of 16 frames, the
open-loop rollout loss predicting the last 12 frames from the first 4 (V-JEPA's "predict the masked
future", in time), a predictor of 4 blocks of width 128, an EMA target encoder, and the encoder's
feature layers in bfloat16 where the CPU or GPU has it natively. The temporal-smoothness term stays:
on the VoE pairs (20 per property, 1500 steps) dropping it cost solidity 0.90 -> 0.53-0.65.

Why these (physics-voe v3; "val" is 100 sets per property from seeds outside the protocol's,
protocol is its 50 per property; permanence / continuity / solidity / gravity / constancy, relative
accuracy, 2-core CPU):
- 10,000 training videos (`physics make --videos`), not 1000: the same 3200 steps draw each of 1000
  videos about 100 times (lower training loss, lower validation scores). Training seeds 0 / 1 / 2,
  protocol 0.96/1.00/0.94/0.98/0.86, 1.00/1.00/0.98/0.98/0.82, 0.98/0.98/0.96/0.98/0.76, val
  (pair seed 2,500,000) 0.93/0.98/0.93/0.94/0.80, 0.96/1.00/0.96/0.96/0.78,
  0.93/1.00/0.96/0.96/0.61; on 1000 videos, seed 0 protocol 0.84/1.00/0.86/0.92/0.58 and, run
  again, 0.84/1.00/0.84/0.96/0.52 with val 0.86/0.96/0.85/0.91/0.68; seed 1 protocol
  0.76/1.00/0.96/0.90/0.62. Every other choice below was measured on the same 1000 videos.
- predictor 4 x 128, not the foundation's 2 x 64: 3000 steps, protocol 0.66/0.98/0.96/0.50/0.54
  became 0.78/1.00/0.98/0.86/0.66, for about 10% more time per step.
- EMA target (`ModelConfig.target`, SIGReg kept): the same 15 minutes (bfloat16 encoder),
  3500 EMA steps against 4000 with the online target: val 0.89/1.00/0.91/0.89/0.67 against
  0.73/1.00/0.99/0.88/0.57. Permanence and constancy gain, solidity loses a little; in float32
  (2250 against 2700 steps, two seeds) the same trade, with solidity lower (0.76-0.88).
- a vector latent, not `--model.latent grid` (16 tokens of 16 channels, smoothness 0.025 to match
  the vector's per-frame weight): 1500 steps each, protocol 0.82/0.96/0.52/0.76/0.80 against
  grid 0.56/0.98/0.94/0.74/0.38, at a quarter of the steps per second. The grid's token under a
  ball holds its colour better than the vector's embedding does (`benchmarks/physics_probe.py`),
  yet its constancy fell.
- SIGReg weight 0.1 (`ModelConfig.reg_weight`), not 0.3 or 1.0: 1500 steps, protocol
  0.82/0.96/0.52/0.76/0.80 against 0.78/0.98/0.64/0.78/0.62 and 0.76/0.90/0.50/0.76/0.58. The
  stronger weights hold more of a ball's colour (`benchmarks/physics_probe.py`: 0.53 -> 0.81,
  0.90) and score constancy lower, one run each; the preset's seeds 1 and 2 scored constancy 0.70
  and 0.68 there (colour 0.56 and 0.19).
- no pixel-reconstruction term (`ModelConfig.recon_weight` 0, not 30): with it, four runs (seeds
  0 and 1, 3200 and 2700 steps; 2700 steps estimated at about 880 s on the day the preset took 830)
  scored constancy 0.54-0.88 and solidity 0.76-0.88, against the preset's 0.58 / 0.62 and
  0.86 / 0.96 (seeds 0 / 1): no clear gain, and 3200 steps of it ran over the 15 minutes.
- on the AMD EPYC, 10,000 videos, seed 0 (one run each; val against the preset's
  0.97/0.99/0.96/0.93/0.83 there): mean squared error, not V-JEPA's L1 (`ModelConfig.pred_loss`;
  protocol 0.90/1.00/1.00/1.00/0.82, val 0.86/1.00/0.94/0.98/0.76); the flattened conv head, not
  `conv_head` flatten-max (1.00/1.00/0.94/1.00/0.78, val 0.97/0.99/0.93/0.97/0.80); 64-d, not
  128-d embeddings (0.76/1.00/0.98/0.86/0.62); 16-frame clips, not whole 24-frame videos (batch
  21: 0.98/1.00/0.88/0.92/0.78).
- bfloat16 encoder (`TrainConfig.encoder_dtype` auto): 1.5x the steps per second on an Intel Xeon
  (AMX), at no measured cost: online target, 4000 bfloat16 steps scored like 5400 float32 ones.
The default, 3200 steps, took about 14 minutes on two Intel Xeon cores with native bfloat16 (AMX)
and 10-11 on two AMD EPYC cores (AVX-512 bfloat16; seeds 0 and 1 scored 0.98/1.00/0.96/0.94/0.74
and 0.96/1.00/0.96/0.94/0.78 there); without native bfloat16 (auto falls back to float32), expect
about 20 on the Xeon. Those times are from before the predictor modulated action-free clips
with one row of conditioning (`Predictor.condition`, 2026-11-29): on the AMD, old and new code
back to back on one day, a step went from 0.23 to 0.18 s. The run, checkpoint and model format
are the foundation's, and clips go through the same predictor with its learned null action, so
the checkpoint can later be trained on action-labelled episodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from jepaworld.data.episodes import MANIFEST
from jepaworld.models.world_model import ModelConfig
from jepaworld.train import TrainConfig, train

PRETRAIN_STEPS = 3200
"""Default optimizer steps of `physics pretrain` (10-14 minutes on two CPU cores with native
bfloat16)."""


def video_model() -> ModelConfig:
    """Preset: an action-free world model for 64 px video, one model step per frame."""
    return ModelConfig(
        action_dim=0,
        frame_stride=1,
        max_len=24,
        rollout_context=4,
        pred_dim=128,
        pred_depth=4,
        target="ema",
    )


@dataclass
class PhysicsPretrainConfig(TrainConfig):
    """Pretrain a world model on action-free video: --videos FOLDER (any mp4/mkv/webm/avi/mov)
    or --data DIR (`jepaworld physics make` output, or any episode dataset)."""

    data: Path | None = None
    """Generated scenes: the DIR given to `physics make` (its train/ is used) or a dataset dir."""
    steps: int | None = None
    """Total optimizer steps; the LR schedule is defined in steps, so short runs still anneal
    (default 3200, 10-14 minutes on two CPU cores with native bfloat16; with --resume, the
    run's own unless given)."""
    batch_size: int = 32
    """Clips per step."""
    clip_frames: int = 16
    """Frames per training clip (at --model.frame-stride)."""
    encoder_dtype: Literal["float32", "bfloat16", "auto"] = "auto"
    """Precision of the encoder's feature layers in training (see `jepaworld train --help`);
    auto: bfloat16 where the device has it natively, else float32."""
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
