"""Clips of embeddings: a frozen encoder's output for every frame of a dataset, read once.

A predictor trained on a frozen encoder (`jepaworld train --freeze-encoder`, V-JEPA 2-AC's recipe)
gets the same embedding of a frame at every step it draws it. `LatentClips` keeps those embeddings
(N frames x D floats, 24 MiB for PushT's 1000 episodes of 100 frames at D = 64) beside the episodes'
actions, and gives a step's batch by indexing: for the same (episode, t0) keys, the clips a
`ClipDataset` of the same episodes gives, embeddings (B, T, D) in place of frames. The encoder is
then run once per frame instead of once per frame per draw.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from jepaworld.data.loader import clip_starts


def _offsets(lengths: Sequence[int], device: torch.device) -> torch.Tensor:
    """Start of each sequence in the concatenation of sequences of `lengths`: (E,) int64."""
    ends = torch.tensor(np.cumsum([0, *lengths]), dtype=torch.int64, device=device)
    return ends[:-1]


class LatentClips:
    """Clips of T embeddings at a frame stride k, with the k raw actions of each transition
    concatenated into one macro action (as `ClipDataset`).

    Args:
        latents: per episode, the embeddings of its frames (n_e, D), all on one device.
        actions: per episode, its raw actions (>= n_e - 1, A).
        frames, stride: T and k of each clip.
        source: what the episodes are (a dataset path), for error messages.

    `batch(keys)` gives latents (B, T, D) and actions (B, T-1, k*A) on the latents' device.
    """

    def __init__(
        self,
        latents: Sequence[torch.Tensor],
        actions: Sequence[torch.Tensor],
        frames: int,
        stride: int,
        source: str,
    ) -> None:
        if not latents or len(latents) != len(actions):
            raise ValueError(
                f"{source}: need one (n, D) embedding tensor and one (n - 1, A) action tensor per "
                f"episode, got {len(latents)} and {len(actions)}"
            )
        for e, (z, a) in enumerate(zip(latents, actions, strict=True)):
            if z.ndim != 2 or a.ndim != 2 or a.shape[0] < z.shape[0] - 1:
                raise ValueError(
                    f"{source}: episode {e} has embeddings {tuple(z.shape)} and actions "
                    f"{tuple(a.shape)}; need (n, D) and (>= n - 1, A)"
                )
        lengths = [z.shape[0] for z in latents]
        self.starts = clip_starts(
            lengths, frames, stride, lambda n: f"{source}: episodes of length {n}"
        )
        self.frames, self.stride = frames, stride
        device = latents[0].device
        self.z = torch.cat(list(latents))  # (N, D)
        self.a = torch.cat([a.to(device=device, dtype=torch.float32) for a in actions])  # (M, A)
        self.z_start = _offsets(lengths, device)  # (E,)
        self.a_start = _offsets([a.shape[0] for a in actions], device)  # (E,)

    def __len__(self) -> int:
        return int(self.starts.sum())

    def batch(self, keys: Sequence[tuple[int, int]]) -> dict[str, torch.Tensor]:
        """The clips starting at frame t0 of episode e, for each (e, t0) of `keys`."""
        device = self.z.device
        e = torch.tensor([k[0] for k in keys], dtype=torch.int64, device=device)  # (B,)
        t0 = torch.tensor([k[1] for k in keys], dtype=torch.int64, device=device)  # (B,)
        T, k = self.frames, self.stride
        steps = torch.arange(T, device=device) * k  # (T,)
        latents = self.z[(self.z_start[e] + t0)[:, None] + steps]  # (B, T, D)
        span = torch.arange((T - 1) * k, device=device)  # ((T-1)*k,)
        raw = self.a[(self.a_start[e] + t0)[:, None] + span]  # (B, (T-1)*k, A)
        acts = raw.reshape(len(keys), T - 1, k * self.a.shape[1])  # (B, T-1, k*A); A may be 0
        return {"latents": latents, "actions": acts}
