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
from jepaworld.envs.gym_adapter import square_resize


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
        frames: uint8 (T, H, W, 3); actions: float32 (T-1, k*A); with `states`, also states:
        float32 (T, S), the frames' state vectors (for a model with proprioception).
    """

    def __init__(self, store: EpisodeStore, frames: int, stride: int, states: bool = False) -> None:
        self.store, self.frames, self.stride, self.states = store, frames, stride, states
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
        item = {"frames": torch.from_numpy(frames.copy()), "actions": torch.from_numpy(acts.copy())}
        if self.states:
            item["states"] = torch.from_numpy(ep.states[idx].astype(np.float32))  # (T, S)
        return item


class ActionFreeClips(Dataset):
    """A ClipDataset's clips without their actions: zero actions and has_actions False, so the
    model gives them the null action (an environment's own frames used as action-free video)."""

    def __init__(self, clips: ClipDataset) -> None:
        self.clips, self.starts = clips, clips.starts

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        item = self.clips[key]
        return {
            "frames": item["frames"],
            "actions": torch.zeros_like(item["actions"]),  # (T-1, k*A)
            "has_actions": torch.tensor(False),
        }


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
    dataset: Any,
    batch_size: int,
    seed: int,
    start_step: int,
    total_steps: int,
    workers: int,
) -> DataLoader[Any]:
    """A DataLoader over deterministic per-step batches; workers decode shards in the background.
    `dataset` is a ClipDataset, a VideoClipDataset or a MixtureDataset (with `weights`)."""
    sampler: Sampler[Any]
    if isinstance(dataset, MixtureDataset):
        sampler = MixtureBatchSampler(
            [s.starts for s in dataset.sources],  # type: ignore[attr-defined]
            dataset.weights,
            batch_size,
            seed,
            start_step,
            total_steps,
        )
    else:
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


def resize_frames(frames: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (..., H, W, 3) frames -> uint8 (..., size, size, 3) by `square_resize` (centre
    square, area resampling); the same tensor when already that size. Used where frames of one
    domain meet a model of another size."""
    h, w = frames.shape[-3], frames.shape[-2]
    if h == w == size:
        return frames
    flat = frames.reshape(-1, h, w, 3).cpu().numpy()  # (N, H, W, 3)
    out = np.stack([square_resize(f, size) for f in flat])  # (N, S, S, 3)
    return torch.from_numpy(out).reshape(*frames.shape[:-3], size, size, 3).to(frames.device)


class MixtureDataset(Dataset):
    """Several clip datasets trained on together, indexed by (source, episode, t0).

    Each source keeps its own clip stride; frames are resized to `size`. Items carry
    `has_actions`: an action-free source's clips get zero actions of `action_width` and False, so
    clips of every source stack into one batch (the model gives them the null action).
    """

    def __init__(
        self, sources: Sequence[Dataset], weights: Sequence[float], size: int, action_width: int
    ) -> None:
        if len(weights) != len(sources) or min(weights) <= 0:
            raise ValueError(f"weights: one positive weight per source, got {list(weights)}")
        self.sources, self.weights, self.size = list(sources), list(weights), size
        self.action_width = action_width

    def __len__(self) -> int:
        return sum(len(s) for s in self.sources)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int, int]) -> dict[str, torch.Tensor]:
        s, e, t0 = key
        item = self.sources[s][(e, t0)]
        actions = item["actions"]  # (T-1, k*A) or (T-1, 0)
        has = actions.shape[-1] > 0
        if not has:
            actions = torch.zeros(actions.shape[0], self.action_width)  # (T-1, A')
        return {
            "frames": resize_frames(item["frames"], self.size),
            "actions": actions,
            "has_actions": torch.tensor(has),
        }


class MixtureBatchSampler(Sampler[list[tuple[int, int, int]]]):
    """One batch per step in [start_step, total_steps): each clip's source drawn with probability
    `weights`, then (episode, t0) within it as StepBatchSampler. A pure function of (seed, step)."""

    def __init__(
        self,
        starts: Sequence[np.ndarray],
        weights: Sequence[float],
        batch_size: int,
        seed: int,
        start_step: int,
        total_steps: int,
    ) -> None:
        self.samplers = [
            StepBatchSampler(st, batch_size, seed + 7_919 * i, 0, 0) for i, st in enumerate(starts)
        ]
        self.weights = torch.as_tensor(weights, dtype=torch.float64)
        self.batch_size, self.seed = batch_size, seed
        self.start_step, self.total_steps = start_step, total_steps

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step)

    def sources(self, step: int) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_033 + step)
        return torch.multinomial(self.weights, self.batch_size, True, generator=g).tolist()

    def batch(self, step: int) -> list[tuple[int, int, int]]:
        drawn = self.sources(step)
        keys = {s: iter(self.samplers[s].batch(step)) for s in set(drawn)}
        return [(s, *next(keys[s])) for s in drawn]

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        for step in range(self.start_step, self.total_steps):
            yield self.batch(step)
