from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jepaworld.data.episodes import DataError, EpisodeStore, load_manifest
from jepaworld.data.loader import ClipDataset
from jepaworld.data.voe import (
    ENV_ID,
    TRAINING_SEED_LIMIT,
    load_pairs,
    pair_seed,
    write_pairs,
    write_training_videos,
)
from jepaworld.envs.physics_scenes import (
    MATCHED_SETS,
    PROPERTIES,
    SceneConfig,
    make_pair,
    make_video,
)
from tests.conftest import copy_dir


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("voe") / "pairs"
    write_pairs(out, pairs_per_property=2)
    return out


def test_pairs_roundtrip_and_regenerate_from_their_seeds(pairs_dir: Path) -> None:
    pairs = load_pairs(pairs_dir)
    assert [p.prop for p in pairs] == [prop for prop in PROPERTIES for _ in range(2)]
    for p in pairs:
        again = make_pair(p.prop, p.seed)
        assert np.array_equal(p.possible, again.possible)
        assert np.array_equal(p.impossible, again.impossible)
        assert p.violation_frame == again.violation_frame
        assert p.matched == again.matched == (p.prop in MATCHED_SETS)
        if p.matched:
            assert np.array_equal(p.possible_mirror, again.possible_mirror)
            assert np.array_equal(p.impossible_mirror, again.impossible_mirror)


def test_pairs_manifest_records_seeds_frames_and_hashes(pairs_dir: Path) -> None:
    m = json.loads((pairs_dir / "manifest.json").read_text())
    assert m["format"] == "jepaworld.voe_pairs" and m["format_version"] == 3
    assert m["properties"] == list(PROPERTIES) and m["config"]["frames"] == 24
    seeds = [e["seed"] for s in m["shards"] for e in s["pairs"]]
    assert len(set(seeds)) == len(seeds) and min(seeds) >= TRAINING_SEED_LIMIT
    assert seeds[:2] == [pair_seed(2_000_000, "permanence", i) for i in range(2)]
    assert all(len(s["sha256"]) == 64 for s in m["shards"])
    assert SceneConfig(**m["config"]) == SceneConfig()  # the config can be rebuilt from JSON


def test_writing_into_an_existing_dataset_is_refused(pairs_dir: Path) -> None:
    with pytest.raises(FileExistsError, match="manifest.json"):
        write_pairs(pairs_dir, pairs_per_property=1)


def test_pair_seeds_must_avoid_the_training_range(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="seed"):
        write_pairs(tmp_path / "p", pairs_per_property=1, seed=5)


def test_corrupt_shard_is_named(pairs_dir: Path, tmp_path: Path) -> None:
    d = copy_dir(pairs_dir, tmp_path)
    data = bytearray((d / "gravity.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (d / "gravity.npz").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"gravity\.npz: sha256 does not match"):
        load_pairs(d)


def test_missing_shard_and_manifest_are_named(pairs_dir: Path, tmp_path: Path) -> None:
    d = copy_dir(pairs_dir, tmp_path)
    (d / "solidity.npz").unlink()
    with pytest.raises(DataError, match=r"solidity\.npz: shard listed in the manifest is missing"):
        load_pairs(d)
    (d / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match=r"manifest\.json: manifest is not valid JSON"):
        load_pairs(d)
    (d / "manifest.json").unlink()
    with pytest.raises(DataError, match=r"manifest\.json: manifest missing"):
        load_pairs(d)


def test_training_videos_are_action_free_episodes(tmp_path: Path) -> None:
    out = tmp_path / "train"
    write_training_videos(out, count=5, seed=3, per_shard=2)
    m = load_manifest(out)
    assert m["env_id"] == ENV_ID and m["action_dim"] == 0 and m["episodes"] == 5
    assert [s["episodes"] for s in m["shards"]] == [2, 2, 1]
    assert m["seeds"] == {"first": 3, "count": 5} and m["frame_shape"] == [64, 64, 3]
    store = EpisodeStore(out)
    ep = store.episode(4)
    assert np.array_equal(ep.frames, make_video(7))
    assert ep.actions.shape == (24, 0) and ep.actions.dtype == np.float32
    clips = ClipDataset(store, frames=4, stride=2)
    item = clips[(4, 5)]
    assert item["frames"].shape == (4, 64, 64, 3) and tuple(item["actions"].shape) == (3, 0)
    with pytest.raises(FileExistsError, match="manifest.json"):
        write_training_videos(out, count=1)
