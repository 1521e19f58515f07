"""`jepaworld physics make`: training videos (possible only) and evaluation pairs, on disk."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from jepaworld.config import require
from jepaworld.data.voe import TRAINING_SEED_LIMIT, write_pairs, write_training_videos
from jepaworld.envs.physics_scenes import SceneConfig


@dataclass
class PhysicsMakeConfig:
    """Generate physics videos: DIR/train (possible only, for pretraining) and DIR/pairs (evaluation)."""

    out: Path
    """Output directory; train/ and pairs/ are created inside (neither may exist yet)."""
    pairs: int = 50
    """Matched possible/impossible pairs per property (five properties)."""
    videos: int = 10000
    """Possible-only training videos (about 25 s for 10,000; with `physics pretrain`'s 3200 steps,
    10,000 scored higher than 1000 on held-out permanence and solidity sets, see
    jepaworld/physics/pretrain.py)."""
    seed: int = 0
    """First training-video seed (must stay below 1,000,000, the evaluation seeds start above)."""
    pair_seed: int = 2_000_000
    """First evaluation-pair seed (never used for training videos)."""
    screen_prob: float = SceneConfig.screen_prob
    """Probability of an occluding screen in a training video (recorded in train/manifest.json);
    the evaluation pairs always use the protocol's scenes."""

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        require(self.pairs >= 1, "pairs", f"must be >= 1, got {self.pairs}")
        require(self.videos >= 0, "videos", f"must be >= 0, got {self.videos}")
        require(
            self.seed >= 0 and self.seed + self.videos <= TRAINING_SEED_LIMIT,
            "seed",
            f"training seeds must stay in [0, {TRAINING_SEED_LIMIT})",
        )
        require(
            self.pair_seed >= TRAINING_SEED_LIMIT, "pair_seed", f"must be >= {TRAINING_SEED_LIMIT}"
        )
        require(
            0 <= self.screen_prob <= 1, "screen_prob", f"must be in [0, 1], got {self.screen_prob}"
        )


def make_physics_data(cfg: PhysicsMakeConfig) -> dict[str, Any]:
    """Write both sets; returns their manifests."""
    out: dict[str, Any] = {}
    if cfg.videos:
        scenes = replace(SceneConfig(), screen_prob=cfg.screen_prob)
        out["train"] = write_training_videos(cfg.out / "train", cfg.videos, cfg.seed, scenes)
    out["pairs"] = write_pairs(cfg.out / "pairs", cfg.pairs, seed=cfg.pair_seed)
    return out
