"""Training on several datasets at once: one source per batch, deterministic, frames resized."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from jepaworld.bench.suites import trained_domains
from jepaworld.data.collect import CollectConfig, collect
from jepaworld.data.episodes import DataError
from jepaworld.data.loader import MixtureBatchSampler, resize_frames
from jepaworld.data.voe import write_training_videos
from jepaworld.train import TrainConfig, data_sources, load_train_state, train
from tests.conftest import tiny_train


def test_each_clips_source_is_drawn_by_weight_from_the_step_alone() -> None:
    starts = [np.array([5, 5]), np.array([3]), np.array([7, 1, 1])]
    sampler = MixtureBatchSampler(starts, [1.0, 1.0, 2.0], 8, seed=3, start_step=0, total_steps=400)
    batches = list(sampler)
    for s, e, t0 in (k for b in batches for k in b):
        assert 0 <= t0 < starts[s][e]
    sources = [s for b in batches for s, _, _ in b]
    share = np.bincount(sources, minlength=3) / len(sources)
    assert share[2] == pytest.approx(0.5, abs=0.03) and share[0] == pytest.approx(0.25, abs=0.03)
    assert sum(len({s for s, _, _ in b}) > 1 for b in batches) > 300  # batches mix the sources
    resumed = MixtureBatchSampler(
        starts, [1.0, 1.0, 2.0], 8, seed=3, start_step=250, total_steps=400
    )
    assert list(resumed) == batches[250:]  # a resumed run sees the same batches


def test_action_free_clips_get_the_null_action_inside_a_mixed_batch() -> None:
    from jepaworld.models.predictor import Predictor

    torch.manual_seed(0)
    p = Predictor(embed_dim=4, action_dim=2, dim=8, depth=1, heads=2, max_len=4)
    torch.nn.init.normal_(p.null_action)
    z, acts = torch.randn(3, 2, 4), torch.randn(3, 2, 2)  # (B, T, D), (B, T, A')
    has = torch.tensor([True, False, True])
    mixed = p(z, acts, has_actions=has)
    assert torch.allclose(mixed[[0, 2]], p(z[[0, 2]], acts[[0, 2]]), atol=1e-6)
    assert torch.allclose(mixed[1:2], p(z[1:2], acts[1:2, :, :0]), atol=1e-6)  # null action
    assert torch.allclose(mixed[1:2], p(z[1:2], 5 * acts[1:2], has_actions=has[1:2]), atol=1e-6)


def test_resize_frames_averages_areas_and_keeps_leading_dims() -> None:
    frames = torch.zeros(2, 3, 8, 8, 3, dtype=torch.uint8)
    frames[..., :4, :, 0] = 200  # top half red
    small = resize_frames(frames, 4)
    assert small.shape == (2, 3, 4, 4, 3)
    assert (small[..., :2, :, 0] == 200).all() and (small[..., 2:, :, 0] == 0).all()
    assert resize_frames(small, 4) is small


@pytest.fixture(scope="module")
def maze_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("maze") / "maze"
    collect(CollectConfig(out=out, env="jepaworld/Maze-v0", episodes=3, episode_length=30))
    return out


def test_one_model_trains_on_two_room_maze_and_video(
    tiny_data: Path, maze_data: Path, tmp_path: Path
) -> None:
    videos = tmp_path / "videos"
    write_training_videos(videos, count=3, seed=0)
    cfg = tiny_train(tiny_data, tmp_path / "run", mix=(maze_data, videos), mix_weights=(2, 1, 1))
    ckpt = train(cfg)
    assert load_train_state(ckpt)["step"] == 6
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    sources = data_sources(record)
    assert [s["env_id"] for s in sources] == [
        "jepaworld/TwoRoom-v0",
        "jepaworld/Maze-v0",
        "jepaworld/PhysicsScenes-v0",
    ]
    assert [s["frame_size"] for s in sources] == [64, 128, 64]  # maze frames resized to 64
    assert [s["stride"] for s in sources] == [5, 5, 1]  # action-free: --video-stride
    assert trained_domains(record) == {s["env_id"] for s in sources}
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(x["loss"]) for x in lines)
    more = tiny_train(tiny_data, tmp_path / "run", resume=True, steps=8)  # the saved mixture
    assert load_train_state(train(more))["step"] == 8


def test_mixture_inputs_are_checked_before_training(tiny_data: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mix_weights: one weight for --data and one per --mix"):
        tiny_train(tiny_data, tmp_path / "a", mix=(tiny_data,), mix_weights=(1.0,))
    with pytest.raises(ValueError, match="mix: needs --data"):
        TrainConfig(out=tmp_path / "b", videos=tmp_path, mix=(tiny_data,))
    big = tiny_train(tiny_data, tmp_path / "c", mix=(tiny_data,))
    big.model.image_size = 128
    big.model.conv_channels = (8, 8, 16, 16)
    with pytest.raises(DataError, match="at least --model.image-size 128"):
        train(big)
    assert not (tmp_path / "c" / "checkpoints").exists()
