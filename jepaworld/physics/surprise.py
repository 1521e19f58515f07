"""Surprise: how badly a world model predicted each frame, measured in representation space.

Following Garrido et al. (2025, "Intuitive physics understanding emerges from self-supervised
pretraining on natural videos"), surprise at frame t is the L1 error between the embedding the model
predicted for frame t from the `context` frames before it and the embedding the encoder gives frame t.
An impossible event (a ball vanishing, teleporting, passing through a wall) is one the model could not
have predicted, so its surprise peaks there. Works on any video the model's encoder accepts.

`flip=True` averages a video's surprise with that of the video flipped left to right. Where physics
looks the same flipped (gravity points down either way), the flipped video shows the same event,
possible or not, and the model's two answers differ by errors that depend on the look: on the
physics scenes' validation sets the average raised shape/colour constancy on 8 of 9 checkpoints
(README; protocol physics-voe v4 scores this way).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from jepaworld.planning.protocols import VideoModelLike


def flip_mean(score: Callable[[torch.Tensor], torch.Tensor], video: torch.Tensor) -> torch.Tensor:
    """The mean of `score` on a (T, H, W, C) video and on the video flipped left to right."""
    return (score(video) + score(torch.flip(video, dims=[2]))) / 2


@torch.inference_mode()
def surprise(
    model: VideoModelLike,
    video: torch.Tensor,
    context: int = 4,
    horizon: int = 1,
    flip: bool = False,
) -> torch.Tensor:
    """Per-frame surprise of one video.

    Args:
        model: any model with `encode` and causal `predict` (jepaworld's WorldModel qualifies).
        video: uint8 (T, H, W, 3).
        context: frames of context per prediction (fewer for the first frames, which have fewer).
        horizon: frames predicted open-loop from each context (V-JEPA's masked future): surprise
            at t averages the errors on frames t..t+horizon-1, so a change of velocity, which a
            one-frame prediction barely sees, adds up over the horizon.
        flip: average with the surprise of the video flipped left to right (module docstring);
            only for videos whose physics is the same flipped.
    Returns:
        (T,) float: 0 at frame 0 (nothing to predict it from), then the mean absolute error of the
        embeddings predicted from frames t-context..t-1 against the encoded frames from t on.
    """

    def plain(v: torch.Tensor) -> torch.Tensor:
        return token_surprise(model, v, context, horizon, tokens=1)[:, 0]

    return flip_mean(plain, video) if flip else plain(video)


@torch.inference_mode()
def token_surprise(
    model: VideoModelLike, video: torch.Tensor, context: int = 4, horizon: int = 1, tokens: int = 1
) -> torch.Tensor:
    """`surprise` per token: the embedding is split into `tokens` equal parts (a grid latent's
    tokens, `ModelConfig.grid_tokens`) and each part's error is kept.

    Args:
        model, video, context, horizon: as `surprise`.
        tokens: parts of equal width the embedding is split into (1: the whole embedding).
    Returns:
        (T, tokens) float; its mean over tokens is `surprise` (to float rounding).
    Raises:
        ValueError: a bad video, context or horizon, or tokens not a divisor of the embedding size.
    """
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1:
        raise ValueError(f"tokens must be an int >= 1, got {tokens!r}")
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"video must be (T, H, W, 3) uint8, got {tuple(video.shape)}")
    if context < 1:
        raise ValueError(f"context must be >= 1, got {context}")
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    z = model.encode(video.unsqueeze(0))[0]  # (T, D)
    if z.shape[-1] % tokens:
        raise ValueError(f"tokens must divide the embedding size {z.shape[-1]}, got {tokens}")
    T = z.shape[0]
    out = torch.zeros(T, tokens, device=z.device)  # (T, tokens)
    for t in range(1, min(context, T)):  # short warm-up windows, one per frame
        start = torch.tensor([t], device=z.device)
        out[t] = _errors(model, z[None, :t], z, start, horizon, tokens)[0]
    if context < T:
        windows = z.unfold(0, context, 1)[: T - context]  # (T-C, D, C): windows ending at t-1
        windows = windows.permute(0, 2, 1)  # (T-C, C, D)
        starts = torch.arange(context, T, device=z.device)  # (T-C,): first predicted frame
        out[context:] = _errors(model, windows, z, starts, horizon, tokens)
    return out.float().cpu()


def _errors(
    model: VideoModelLike,
    windows: torch.Tensor,
    z: torch.Tensor,
    starts: torch.Tensor,
    horizon: int,
    tokens: int,
) -> torch.Tensor:
    """Mean L1 error per token of the `horizon` open-loop predictions after each window, counting
    only frames inside the video. windows (N, C, D), z (T, D), starts (N,) -> (N, tokens)."""
    T = z.shape[0]
    N = len(windows)
    seq = windows  # (N, C, D)
    total, count = windows.new_zeros(N, tokens), windows.new_zeros(N, 1)  # (N, tokens), (N, 1)
    for k in range(min(horizon, T - int(starts.min()))):
        null = seq.new_zeros(*seq.shape[:2], 0)  # (N, C+k, 0): action-free
        pred = model.predict(seq, null)[:, -1]  # (N, D)
        frame = starts + k  # (N,)
        valid = (frame < T).to(pred.dtype)[:, None]  # (N, 1)
        gap = (pred - z[frame.clamp(max=T - 1)]).abs()  # (N, D)
        err = gap.reshape(N, tokens, -1).mean(dim=-1)  # (N, tokens)
        total, count = total + valid * err, count + valid
        seq = torch.cat([seq, pred[:, None]], dim=1)  # (N, C+k+1, D)
    return total / count
