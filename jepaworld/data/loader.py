"""Clips for training: T frames at a frame stride, with the actions between them.

A clip starting at frame t0 with `frames` T and `stride` k holds frames t0, t0+k, ..., t0+(T-1)k and,
for each of the T-1 transitions, the k raw actions taken in between, concatenated into one
"macro action" of size k*A (as DINO-WM's frameskip does). Sampling is a pure function of
(seed, step), so a resumed run sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from jepaworld.data.episodes import DataError, EpisodeStore


def clip_starts(
    lengths: Sequence[int], frames: int, stride: int, what: Callable[[int], str]
) -> np.ndarray:
    """Number of valid clip starts (int64) of each sequence of `lengths` frames, for clips of
    `frames` frames at `stride`.

    Raises:
        ValueError: for frames < 2.
        DataError: "{what(longest)} are too short ..." when no sequence holds one clip.
    """
    if frames < 2:
        raise ValueError(f"frames: a clip needs >= 2 frames, got {frames}")
    span = (frames - 1) * stride  # a clip covers frames t0 .. t0 + span
    starts = np.array([max(0, n - span) for n in lengths], dtype=np.int64)
    if starts.sum() == 0:
        raise DataError(
            f"{what(max(lengths))} are too short for clips of {frames} frames at stride {stride}"
        )
    return starts


class ClipDataset(Dataset):
    """Map-style dataset indexed by (episode, t0); items are dicts of tensors.

    Returns:
        frames: uint8 (T, H, W, 3); actions: float32 (T-1, k*A).
    """

    def __init__(self, store: EpisodeStore, frames: int, stride: int) -> None:
        self.store, self.frames, self.stride = store, frames, stride
        self.span = (frames - 1) * stride  # frames t0 .. t0 + span
        self.starts = clip_starts(
            store.lengths, frames, stride, lambda n: f"{store.root}: episodes of length {n}"
        )

    def __len__(self) -> int:
        return int(self.starts.sum())

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        e, t0 = key
        ep = self.store.episode(e)
        idx = t0 + self.stride * np.arange(self.frames)
        frames = ep.frames[idx]  # (T, H, W, 3)
        acts = ep.actions[t0 : t0 + self.span]  # (T-1 * k, A)
        acts = acts.reshape(self.frames - 1, self.stride * ep.actions.shape[1])  # (T-1, k*A)
        return {"frames": torch.from_numpy(frames.copy()), "actions": torch.from_numpy(acts.copy())}


class StepBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yields one batch of (episode, t0) keys per training step in [start_step, total_steps).

    Episodes are drawn in proportion to their number of valid clip starts, then t0 uniformly.
    """

    def __init__(
        self, starts: np.ndarray, batch_size: int, seed: int, start_step: int, total_steps: int
    ):
        self.weights = torch.as_tensor(starts, dtype=torch.float64)
        self.starts = starts
        self.batch_size, self.seed = batch_size, seed
        self.start_step, self.total_steps = start_step, total_steps

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step)

    def batch(self, step: int) -> list[tuple[int, int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        eps = torch.multinomial(self.weights, self.batch_size, replacement=True, generator=g)
        u = torch.rand(self.batch_size, generator=g, dtype=torch.float64)
        t0 = (u * torch.as_tensor(self.starts[eps.numpy()])).long()
        return list(zip(eps.tolist(), t0.tolist(), strict=True))

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start_step, self.total_steps):
            yield self.batch(step)


def make_loader(
    dataset: ClipDataset,
    batch_size: int,
    seed: int,
    start_step: int,
    total_steps: int,
    workers: int,
) -> DataLoader[Any]:
    """A DataLoader over deterministic per-step batches; workers decode shards in the background."""
    sampler = StepBatchSampler(dataset.starts, batch_size, seed, start_step, total_steps)
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        persistent_workers=False,
        prefetch_factor=4 if workers > 0 else None,
        # its own generator: creating the iterator then draws from it, not from torch's global RNG,
        # so a resumed run's global RNG (SIGReg directions) continues exactly
        generator=torch.Generator().manual_seed(seed),
    )
