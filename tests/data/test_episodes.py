from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import jepaworld.data.episodes as episodes
from jepaworld.data.episodes import DataError, EpisodeStore, load_manifest
from jepaworld.data.loader import ClipDataset, StepBatchSampler, make_loader
from tests.conftest import copy_dir


def test_manifest_records_the_collection(tiny_data: Path) -> None:
    m = load_manifest(tiny_data)
    assert m["env_id"] == "jepaworld/TwoRoom-v0"
    assert m["episodes"] == 6 and m["frame_shape"] == [64, 64, 3] and m["action_dim"] == 2
    assert [s["episodes"] for s in m["shards"]] == [4, 2]
    assert all(len(s["sha256"]) == 64 for s in m["shards"])
    assert m["seeds"] == {"first": 0, "count": 6}


def test_episodes_have_the_documented_shapes(tiny_data: Path) -> None:
    store = EpisodeStore(tiny_data)
    ep = store.episode(5)
    assert ep.frames.shape == (30, 64, 64, 3) and ep.frames.dtype == np.uint8
    assert ep.actions.shape == (30, 2) and ep.actions.dtype == np.float32
    assert np.abs(ep.actions).max() <= 1.0
    # the agent moves: consecutive frames differ somewhere
    assert (ep.frames[1:] != ep.frames[:-1]).any()


def test_missing_manifest_names_the_file(tiny_data: Path, tmp_path: Path) -> None:
    d = copy_dir(tiny_data, tmp_path)
    (d / "manifest.json").unlink()
    with pytest.raises(DataError, match="manifest.json: manifest missing"):
        EpisodeStore(d)


def test_corrupt_manifest_names_the_file(tiny_data: Path, tmp_path: Path) -> None:
    d = copy_dir(tiny_data, tmp_path)
    (d / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="manifest.json: manifest is not valid JSON"):
        EpisodeStore(d)


def test_missing_shard_names_the_file(tiny_data: Path, tmp_path: Path) -> None:
    d = copy_dir(tiny_data, tmp_path)
    (d / "shard_00001.npz").unlink()
    with pytest.raises(DataError, match="shard_00001.npz: shard listed in the manifest is missing"):
        EpisodeStore(d)


def test_corrupt_shard_is_caught_before_training(tiny_data: Path, tmp_path: Path) -> None:
    d = copy_dir(tiny_data, tmp_path)
    blob = bytearray((d / "shard_00000.npz").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (d / "shard_00000.npz").write_bytes(bytes(blob))
    with pytest.raises(DataError, match="shard_00000.npz: sha256 does not match"):
        EpisodeStore(d)
    # without the hash check, reading the damaged episode still fails with the file's name
    store = EpisodeStore(d, verify=False)
    with pytest.raises(DataError, match="shard_00000.npz"):
        for e in range(4):
            store.episode(e)


def test_newer_format_is_refused(tiny_data: Path, tmp_path: Path) -> None:
    d = copy_dir(tiny_data, tmp_path)
    m = json.loads((d / "manifest.json").read_text())
    m["format_version"] = 99
    (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(DataError, match="format_version 99 is not supported"):
        EpisodeStore(d)


def test_clip_frames_and_macro_actions_line_up(tiny_data: Path) -> None:
    store = EpisodeStore(tiny_data)
    ds = ClipDataset(store, frames=3, stride=5)
    item = ds[(2, 4)]
    ep = store.episode(2)
    assert item["frames"].shape == (3, 64, 64, 3)
    assert torch.equal(item["frames"][1], torch.from_numpy(ep.frames[9]))
    assert item["actions"].shape == (2, 10)
    # macro action 1 = raw actions 9..13 concatenated
    assert torch.allclose(item["actions"][1], torch.from_numpy(ep.actions[9:14].reshape(-1)))


def test_sampling_is_a_function_of_seed_and_step(tiny_data: Path) -> None:
    ds = ClipDataset(EpisodeStore(tiny_data), frames=3, stride=5)
    a = StepBatchSampler(ds.starts, 8, seed=1, start_step=0, total_steps=5)
    b = StepBatchSampler(ds.starts, 8, seed=1, start_step=3, total_steps=5)
    assert list(a)[3:] == list(b)
    assert a.batch(0) != StepBatchSampler(ds.starts, 8, seed=2, start_step=0, total_steps=1).batch(
        0
    )
    for e, t0 in a.batch(4):
        assert 0 <= t0 < ds.starts[e]


def test_loader_with_a_worker_yields_batches(tiny_data: Path) -> None:
    ds = ClipDataset(EpisodeStore(tiny_data, cache_mb=1), frames=3, stride=5)
    batches = list(make_loader(ds, batch_size=4, seed=0, start_step=0, total_steps=2, workers=1))
    assert len(batches) == 2
    assert (
        batches[0]["frames"].shape == (4, 3, 64, 64, 3)
        and batches[0]["frames"].dtype == torch.uint8
    )


def reads(store: EpisodeStore, order: list[int], monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The episodes `store` decompresses while `order` is asked for."""
    read, done = store._read, []
    monkeypatch.setattr(store, "_read", lambda e: done.append(e) or read(e))
    for e in order:
        store.episode(e)
    return done


def test_cache_decompresses_each_episode_once_within_its_budget(
    tiny_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = [0, 1, 2, 0, 1, 2, 5]
    assert reads(EpisodeStore(tiny_data, cache_mb=64), order, monkeypatch) == [0, 1, 2, 5]
    # a budget below one episode (30 frames of 12 KiB) keeps only the latest
    assert reads(EpisodeStore(tiny_data, cache_mb=0.1), order, monkeypatch) == order


def test_default_cache_is_a_quarter_of_memory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sizes = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 2**20}  # 4 GiB
    monkeypatch.setattr(episodes.os, "sysconf", lambda name: sizes[name])
    unlimited, limited = tmp_path / "v2", tmp_path / "v1"
    unlimited.write_text("max\n")
    monkeypatch.setattr(episodes, "CGROUP_LIMITS", (unlimited, tmp_path / "absent"))
    assert episodes.default_cache_mb() == 1024.0
    limited.write_text(f"{2**30}\n")  # a container allowed 1 GiB
    monkeypatch.setattr(episodes, "CGROUP_LIMITS", (unlimited, limited))
    assert episodes.default_cache_mb() == 256.0

    def unknown(name: str) -> int:
        raise ValueError(name)

    monkeypatch.setattr(episodes.os, "sysconf", unknown)
    assert episodes.default_cache_mb() == 256.0  # the container's limit alone
    monkeypatch.setattr(episodes, "CGROUP_LIMITS", ())
    assert episodes.default_cache_mb() == episodes.FALLBACK_CACHE_MB


def test_clips_longer_than_episodes_are_refused(tiny_data: Path) -> None:
    with pytest.raises(DataError, match="too short"):
        ClipDataset(EpisodeStore(tiny_data), frames=10, stride=5)


def test_malformed_shard_entry_names_the_manifest(tiny_data: Path, tmp_path: Path) -> None:
    d = copy_dir(tiny_data, tmp_path)
    m = json.loads((d / "manifest.json").read_text())
    del m["shards"][1]["sha256"]
    (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(DataError, match="manifest.json: shard entry 1 lacks"):
        EpisodeStore(d)


def test_exploration_does_not_mirror_the_start(tiny_data: Path) -> None:
    # the policy has its own RNG stream: its first action is not a copy of the start-position draw
    store = EpisodeStore(tiny_data)
    starts = np.stack([store.episode(e).states[0] for e in range(len(store))])  # (E, 2) in px
    firsts = np.stack([store.episode(e).actions[0] for e in range(len(store))])  # (E, 2)
    scaled = (starts / 64.0) * 2 - 1
    assert not np.allclose(scaled, firsts, atol=0.3)
