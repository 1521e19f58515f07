"""Shared fixtures: a tiny dataset and a tiny run, built once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from jepaworld.data.collect import CollectConfig, collect
from jepaworld.models.world_model import ModelConfig, WorldModel
from jepaworld.train import TrainConfig, train

torch.set_num_threads(2)


TINY_MODEL = {
    "conv_channels": (8, 8, 16, 16),
    "embed_dim": 16,
    "pred_dim": 32,
    "pred_depth": 1,
    "pred_heads": 2,
    "sigreg_directions": 32,
}


def tiny_model(**overrides) -> ModelConfig:
    return ModelConfig(**{**TINY_MODEL, **overrides})


def random_clip(model: WorldModel, B: int = 3, T: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded random frames (B, T, S, S, 3) uint8 for `model` and actions (B, 4, A') in [-1, 1]."""
    g, S = torch.Generator().manual_seed(0), model.config.image_size
    frames = torch.randint(0, 256, (B, T, S, S, 3), generator=g, dtype=torch.uint8)
    actions = torch.rand(B, 4, model.step_action_dim, generator=g) * 2 - 1  # (B, L=4, A')
    return frames, actions


def tiny_model_args() -> list[str]:
    """The same tiny model as command-line options (`--model.embed-dim 16 ...`)."""
    args: list[str] = []
    for name, value in TINY_MODEL.items():
        values = value if isinstance(value, tuple) else (value,)
        args += [f"--model.{name.replace('_', '-')}", *map(str, values)]
    return args


def tiny_train(data: Path, out: Path, **overrides) -> TrainConfig:
    base = dict(
        data=data,
        out=out,
        steps=6,
        batch_size=4,
        clip_frames=3,
        workers=0,
        checkpoint_every=3,
        log_every=1,
        warmup_steps=2,
        model=tiny_model(),
    )
    return TrainConfig(**{**base, **overrides})


def assert_guided_results(r: dict, memory_episodes: int, entries_per_episode: int) -> None:
    """Memory-guided results: flat MPC and random actions as baselines on the same episodes, and
    a graph over every remembered state (`memory_episodes` collected episodes of
    `entries_per_episode`) with each episode's observed transitions both ways."""
    assert set(r["baselines"]) == {"flat_mpc", "random"}
    seeds = [e["seed"] for e in r["per_episode"]]
    for name in ("flat_mpc", "random"):
        assert [e["seed"] for e in r["baselines"][name]["per_episode"]] == seeds
    graph = r["memory"]["graph"]
    assert r["memory"]["entries"] == graph["nodes"] == memory_episodes * entries_per_episode
    assert graph["transition_edges"] == 2 * memory_episodes * (entries_per_episode - 1)


def copy_dir(src: Path, tmp_path: Path) -> Path:
    """A copy of a dataset to damage in a test without touching the shared fixture."""
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data") / "tworoom"
    collect(CollectConfig(out=out, episodes=6, episode_length=30, episodes_per_shard=4))
    return out


@pytest.fixture(scope="session")
def tiny_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    train(tiny_train(tiny_data, out))
    return out


def numbered_frames(count: int, height: int = 48, width: int = 64) -> torch.Tensor:
    """(count, H, W, 3) uint8 frames whose flat colour encodes the frame number (survives lossy
    codecs, which shift colours by a few levels): red = 16 * (n % 16), green = 16 * (n // 16)."""
    if count > 256:
        raise ValueError("numbered_frames encodes at most 256 frames")
    n = torch.arange(count)
    rgb = torch.stack([16 * (n % 16), 16 * (n // 16), torch.full_like(n, 128)], dim=-1)  # (N, 3)
    return rgb[:, None, None, :].expand(count, height, width, 3).to(torch.uint8).contiguous()


def frame_number(frame: torch.Tensor) -> int:
    """Inverse of `numbered_frames` for one decoded (H, W, 3) frame."""
    r, g = (int(round(float(c) / 16)) for c in frame.float().mean(dim=(0, 1))[:2])
    return r + 16 * g


def write_video(path: Path, frames: torch.Tensor, fps: int = 10, codec: str = "mpeg4") -> Path:
    """Encode uint8 (T, H, W, 3) frames into a video file with PyAV."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": "12"}  # a keyframe every 12 frames, so seeking is exercised
        for f in frames.numpy():
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        container.mux(stream.encode())
    return path
