"""Physics-scene videos on disk: action-free training episodes and violation-of-expectation pairs.

Training videos reuse the episode format of `episodes.py` with zero-width actions (T, 0), so the
store, the loader and training read them unchanged: a model learns from video alone.

Evaluation pairs have their own small format, because a pair is two videos and a violation frame,
not an episode::

    PAIRS/manifest.json       format, config, properties, per pair its seed and violation frame,
                              and the sha256 of every shard
    PAIRS/<property>.npz      arrays possible_i, impossible_i (T, H, W, 3) uint8, i = 0..n-1,
                              and for the matched-set properties also possible_mirror_i and
                              impossible_mirror_i (format 3: gravity too; format 2 had mirrors
                              for permanence and constancy only, format 1 none)

Shards are written to a temporary name and renamed, the manifest last, so a directory with a
manifest is complete. Pair seeds start at 1_000_000, above every training seed, so no evaluation
scene is ever a training scene.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from jepaworld.data.episodes import (
    MANIFEST,
    DataError,
    Episode,
    atomic_write,
    read_versioned_manifest,
    sha256_file,
    write_manifest,
    write_npz,
    write_shard,
)
from jepaworld.envs.physics_scenes import PROPERTIES, SceneConfig, VoEPair, make_pair, make_video

ENV_ID = "jepaworld/PhysicsScenes-v0"
PAIRS_FORMAT = "jepaworld.voe_pairs"
PAIRS_FORMAT_VERSION = 3
TRAINING_SEED_LIMIT = 1_000_000
"""Training videos use seeds below this; evaluation pairs use seeds at or above it."""
_DEFAULT_CONFIG = SceneConfig()  # frozen, so one shared default is safe


def pair_seed(seed: int, prop: str, index: int) -> int:
    """Seed of pair `index` of property `prop`: one block of 1_000_000 seeds per property."""
    return seed + PROPERTIES.index(prop) * TRAINING_SEED_LIMIT + index


def _refuse_existing(out: Path) -> None:
    if (out / MANIFEST).exists():
        raise FileExistsError(f"{out / MANIFEST}: already exists; choose another directory")


def write_training_videos(
    out: Path,
    count: int,
    seed: int = 0,
    config: SceneConfig = _DEFAULT_CONFIG,
    per_shard: int = 50,
) -> dict[str, Any]:
    """Write `count` possible-only videos (seeds seed..seed+count-1) as an episode dataset.

    Actions and states are zero-width, (T, 0) float32: the videos are action-free, and a model
    trained on them predicts from frames alone.

    Raises:
        ValueError: for a bad count, per_shard or seed range (naming the argument).
        FileExistsError: if `out` already holds a manifest.

    Returns:
        The manifest, as written.
    """
    out = Path(out)
    if count < 1 or per_shard < 1:
        raise ValueError(f"count and per_shard must be >= 1, got {count} and {per_shard}")
    if not 0 <= seed <= TRAINING_SEED_LIMIT - count:
        raise ValueError(f"seed: training seeds must lie in [0, {TRAINING_SEED_LIMIT}), got {seed}")
    _refuse_existing(out)
    out.mkdir(parents=True, exist_ok=True)
    shards, batch = [], []
    for i in range(count):
        frames = make_video(seed + i, config)  # (T, H, W, 3)
        empty = np.zeros((len(frames), 0), dtype=np.float32)  # (T, 0)
        batch.append(Episode(frames, empty, empty.copy()))
        if len(batch) == per_shard or i == count - 1:
            shards.append(write_shard(out / f"shard_{len(shards):05d}.npz", batch))
            batch = []
    manifest = {
        "env_id": ENV_ID,
        "env_config": asdict(config),
        "policy": {"name": "none (action-free video)"},
        "seeds": {"first": seed, "count": count},
        "episodes": count,
        "episode_length": config.frames,
        "frame_shape": [config.size, config.size, 3],
        "action_dim": 0,
        "shards": shards,
    }
    write_manifest(out, manifest)
    return json.loads((out / MANIFEST).read_text())


def write_pairs(
    out: Path,
    pairs_per_property: int,
    seed: int = 2_000_000,
    config: SceneConfig = _DEFAULT_CONFIG,
) -> dict[str, Any]:
    """Write `pairs_per_property` pairs of every property, one compressed shard per property.

    Pair i of property p has seed `pair_seed(seed, p, i)`, so a pair can be regenerated alone.

    Raises:
        ValueError: for a bad pair count or a seed inside the training range (naming it).
        FileExistsError: if `out` already holds a manifest.

    Returns:
        The manifest, as written.
    """
    out = Path(out)
    if not 1 <= pairs_per_property <= TRAINING_SEED_LIMIT:
        raise ValueError(f"pairs_per_property must be in [1, 1e6], got {pairs_per_property}")
    if seed < TRAINING_SEED_LIMIT:
        raise ValueError(
            f"seed must be >= {TRAINING_SEED_LIMIT} (above training seeds), got {seed}"
        )
    _refuse_existing(out)
    out.mkdir(parents=True, exist_ok=True)
    shards = []
    for prop in PROPERTIES:
        pairs = [
            make_pair(prop, pair_seed(seed, prop, i), config) for i in range(pairs_per_property)
        ]
        arrays = {}
        for i, pair in enumerate(pairs):
            arrays[f"possible_{i}"], arrays[f"impossible_{i}"] = pair.possible, pair.impossible
            if pair.matched:
                arrays[f"possible_mirror_{i}"] = pair.possible_mirror
                arrays[f"impossible_mirror_{i}"] = pair.impossible_mirror
        path = out / f"{prop}.npz"
        write_npz(path, arrays)
        entries = [
            {"seed": p.seed, "violation_frame": p.violation_frame, "matched": p.matched}
            for p in pairs
        ]
        shards.append({"file": path.name, "property": prop, "pairs": entries})
        shards[-1]["sha256"] = sha256_file(path)
    manifest = {
        "format": PAIRS_FORMAT,
        "format_version": PAIRS_FORMAT_VERSION,
        "env_id": ENV_ID,
        "config": asdict(config),
        "properties": list(PROPERTIES),
        "seeds": {"first": seed, "per_property": pairs_per_property},
        "frame_shape": [config.frames, config.size, config.size, 3],
        "shards": shards,
    }
    text = json.dumps(manifest, indent=2) + "\n"
    atomic_write(out / MANIFEST, text.encode())  # last: marks completion
    return manifest


def load_pairs_manifest(root: Path) -> dict[str, Any]:
    """Read and validate a pairs manifest, with errors that name the file."""
    path = Path(root) / MANIFEST
    hint = "not a pairs directory, or writing died"
    manifest = read_versioned_manifest(path, PAIRS_FORMAT, PAIRS_FORMAT_VERSION, hint)
    for key in ("shards", "frame_shape", "properties", "config"):
        if key not in manifest:
            raise DataError(f"{path}: manifest lacks the field {key!r}")
    return manifest


def _verified(root: Path, manifest: dict[str, Any]) -> list[Path]:
    """Every shard's path, after checking that it exists and matches its sha256."""
    paths = []
    for shard in manifest["shards"]:
        path = root / shard["file"]
        if not path.is_file():
            raise DataError(f"{path}: shard listed in the manifest is missing")
        if sha256_file(path) != shard["sha256"]:
            raise DataError(f"{path}: sha256 does not match the manifest (corrupt or replaced)")
        paths.append(path)
    return paths


def iter_pairs(root: Path) -> Iterator[VoEPair]:
    """Yield the pairs of a directory, shard by shard; all shards are verified before the first.

    Only one shard is decompressed at a time, so a large evaluation set need not fit in RAM.

    Raises:
        DataError: naming the file, for a missing or corrupt manifest or shard.
    """
    root = Path(root)
    manifest = load_pairs_manifest(root)
    shape = tuple(manifest["frame_shape"])
    for shard, path in zip(manifest["shards"], _verified(root, manifest), strict=True):
        try:
            with np.load(path, allow_pickle=False) as npz:
                for i, entry in enumerate(shard["pairs"]):
                    names = ["possible", "impossible"]
                    names += ["possible_mirror", "impossible_mirror"] if entry["matched"] else []
                    videos = [npz[f"{name}_{i}"] for name in names]
                    if any(v.shape != shape or v.dtype != np.uint8 for v in videos):
                        raise DataError(f"{path}: pair {i} is not uint8 {shape}")
                    frame, prop, seed = entry["violation_frame"], shard["property"], entry["seed"]
                    yield VoEPair(*videos[:2], int(frame), prop, int(seed), *videos[2:])
        except DataError:
            raise
        except (KeyError, OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
            raise DataError(f"{path}: cannot read pairs ({e})") from e


def load_pairs(root: Path) -> list[VoEPair]:
    """All pairs of a directory in manifest order (see `iter_pairs` to stream them)."""
    return list(iter_pairs(root))
