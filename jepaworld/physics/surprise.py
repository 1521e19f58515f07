"""Surprise: how badly a world model predicted each frame, measured in representation space.

Following Garrido et al. (2025, "Intuitive physics understanding emerges from self-supervised
pretraining on natural videos"), surprise at frame t is the L1 error between the embedding the model
predicted for frame t from the `context` frames before it and the embedding the encoder gives frame t.
An impossible event (a ball vanishing, teleporting, passing through a wall) is one the model could not
have predicted, so its surprise peaks there. Works on any video the model's encoder accepts.
"""

from __future__ import annotations

import torch

from jepaworld.planning.protocols import VideoModelLike


@torch.inference_mode()
def surprise(model: VideoModelLike, video: torch.Tensor, context: int = 4) -> torch.Tensor:
    """Per-frame surprise of one video.

    Args:
        model: any model with `encode` and causal `predict` (jepaworld's WorldModel qualifies).
        video: uint8 (T, H, W, 3).
        context: frames of context per prediction (fewer for the first frames, which have fewer).
    Returns:
        (T,) float: 0 at frame 0 (nothing to predict it from), then the mean absolute error of the
        predicted embedding of frame t against the encoded frame t.
    """
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"video must be (T, H, W, 3) uint8, got {tuple(video.shape)}")
    if context < 1:
        raise ValueError(f"context must be >= 1, got {context}")
    z = model.encode(video.unsqueeze(0))[0]  # (T, D)
    T = z.shape[0]
    out = torch.zeros(T, device=z.device)
    for t in range(1, min(context, T)):  # short warm-up windows, one per frame
        out[t] = _errors(model, z[None, :t], z[t : t + 1])[0]
    if context < T:
        windows = z.unfold(0, context, 1)[: T - context]  # (T-C, D, C): windows ending at t-1
        windows = windows.permute(0, 2, 1)  # (T-C, C, D)
        out[context:] = _errors(model, windows, z[context:])
    return out.float().cpu()


def _errors(model: VideoModelLike, windows: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """L1 error of the prediction that follows each window. windows (N, C, D), targets (N, D)."""
    null = windows.new_zeros(*windows.shape[:2], 0)  # (N, C, 0): action-free
    pred = model.predict(windows, null)[:, -1]  # (N, D)
    return (pred - targets).abs().mean(dim=-1)  # (N,)
