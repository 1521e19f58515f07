"""Clips of cached embeddings: the clips a ClipDataset gives, embeddings in place of frames."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from jepaworld.data.episodes import DataError, EpisodeStore
from jepaworld.data.latents import LatentClips
from jepaworld.data.loader import ClipDataset, StepBatchSampler


def _frame_ids(store: EpisodeStore) -> list[torch.Tensor]:
    """A stand-in "embedding" per frame that says which frame it is: (episode, index, pixel sum)."""
    out = []
    for e in range(len(store)):
        frames = torch.from_numpy(store.episode(e).frames).double()  # (T, H, W, 3)
        index = torch.arange(len(frames), dtype=torch.float64)
        out.append(torch.stack([torch.full_like(index, e), index, frames.sum((1, 2, 3))], -1))
    return out


def test_latent_clips_are_the_clip_datasets_clips_for_the_same_keys(tiny_data: Path) -> None:
    store = EpisodeStore(tiny_data)
    clips = ClipDataset(store, frames=3, stride=5)
    ids = _frame_ids(store)
    actions = [torch.from_numpy(store.episode(e).actions) for e in range(len(store))]
    cached = LatentClips(ids, actions, frames=3, stride=5, source=str(tiny_data))
    assert (cached.starts == clips.starts).all() and len(cached) == len(clips)
    keys = StepBatchSampler(clips.starts, 16, seed=0, start_step=0, total_steps=1).batch(0)
    got = cached.batch(keys)
    assert got["latents"].shape == (16, 3, 3) and got["actions"].shape == (16, 2, 10)
    for b, (e, t0) in enumerate(keys):
        want = clips[(e, t0)]
        assert got["latents"][b, :, 0].eq(e).all()
        assert got["latents"][b, :, 1].tolist() == [t0, t0 + 5, t0 + 10]
        pixel_sums = want["frames"].double().sum((1, 2, 3))  # (T,)
        assert torch.equal(got["latents"][b, :, 2], pixel_sums)
        assert torch.equal(got["actions"][b], want["actions"])


def test_latent_clips_refuse_embeddings_and_actions_that_do_not_match(tiny_data: Path) -> None:
    z = [torch.zeros(10, 4), torch.zeros(12, 4)]
    a = [torch.zeros(10, 2), torch.zeros(12, 2)]
    with pytest.raises(ValueError, match="got 2 and 1"):
        LatentClips(z, a[:1], frames=3, stride=1, source="d")
    with pytest.raises(ValueError, match=r"d: episode 1 has embeddings \(12, 4\) and actions"):
        LatentClips(z, [a[0], torch.zeros(5, 2)], frames=3, stride=1, source="d")
    with pytest.raises(DataError, match="d: episodes of length 12 are too short"):
        LatentClips(z, a, frames=4, stride=5, source="d")
