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
(README; protocol physics-voe v4). `shifts` averages, likewise, over copies of the video moved
sideways by a few pixels (`shift_x`): a strided conv encoder sees a moved scene on another
alignment to its stride, so its errors change where the event does not (protocol v5 averages over
both; README).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from numbers import Integral

import torch

from jepaworld.planning.protocols import VideoModelLike

LOOK_BATCH_FRAMES = 2048
"""Frames encoded at once at most when `surprise` scores several looks of a video (a batch of
whole looks; a video longer than this is scored one look at a time)."""


def shift_x(video: torch.Tensor, dx: int) -> torch.Tensor:
    """A (T, H, W, C) video whose content is moved `dx` pixels right (left if negative), the edge
    column repeated into the gap it leaves."""
    W = video.shape[2]
    cols = (torch.arange(W, device=video.device) - dx).clamp(0, W - 1)  # (W,) source column
    return video.index_select(2, cols)


def check_shifts(shifts: Sequence[int], width: int | None = None) -> tuple[int, ...]:
    """`shifts` as a tuple of distinct ints, each narrower than `width` when given.

    Raises:
        ValueError: naming `shifts`, for a non-sequence, empty, repeated, non-integer or too
            wide shift.
    """
    if not isinstance(shifts, Sequence) or isinstance(shifts, str):
        raise ValueError(f"shifts: must be a sequence of ints, got {shifts!r}")
    if not shifts or any(isinstance(d, bool) or not isinstance(d, Integral) for d in shifts):
        raise ValueError(f"shifts: must be one or more ints, got {shifts!r}")
    out = tuple(int(d) for d in shifts)
    if len(set(out)) != len(out):
        raise ValueError(f"shifts: must be distinct, got {out}")
    if width is not None and max(abs(d) for d in out) >= width:
        raise ValueError(f"shifts: must be narrower than the {width}px frame, got {out}")
    return out


def look_specs(
    flip: bool = False, shifts: Sequence[int] = (0,), width: int | None = None
) -> list[tuple[int, bool]]:
    """The looks of a video `width` pixels wide as (shift, flipped): each of `shifts`, then, with
    `flip`, each of those flipped left to right as well (len(shifts) x (1 + flip) looks).

    Raises:
        ValueError: bad `shifts` (`check_shifts`).
    """
    shifts = check_shifts(shifts, width)
    return [(d, False) for d in shifts] + ([(d, True) for d in shifts] if flip else [])


def look(video: torch.Tensor, shift: int, flipped: bool) -> torch.Tensor:
    """One look of a (T, H, W, C) video: moved by `shift` (`shift_x`), then flipped if `flipped`."""
    moved = shift_x(video, shift)
    return torch.flip(moved, dims=[2]) if flipped else moved


def look_mean(
    score: Callable[[torch.Tensor], torch.Tensor],
    video: torch.Tensor,
    flip: bool = False,
    shifts: Sequence[int] = (0,),
) -> torch.Tensor:
    """The mean of `score` over the looks of a (T, H, W, C) video (`look_specs`)."""
    specs = look_specs(flip, shifts, video.shape[2])
    return torch.stack([score(look(video, *s)) for s in specs]).mean(dim=0)


@torch.inference_mode()
def surprise(
    model: VideoModelLike,
    video: torch.Tensor,
    context: int = 4,
    horizon: int = 1,
    flip: bool = False,
    shifts: Sequence[int] = (0,),
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
        shifts: average over the video moved sideways by each of these pixels (`shift_x`; (0,):
            as it is), each flipped too with `flip`; only for videos whose physics is the same
            moved. The looks are scored in batches of up to `LOOK_BATCH_FRAMES` frames.
    Returns:
        (T,) float: 0 at frame 0 (nothing to predict it from), then the mean absolute error of the
        embeddings predicted from frames t-context..t-1 against the encoded frames from t on.
    """
    _check(video, context, horizon)
    specs = look_specs(flip, shifts, video.shape[2])
    per = max(1, LOOK_BATCH_FRAMES // len(video))  # looks per batch: a long video goes alone
    parts = []
    for i in range(0, len(specs), per):
        views = torch.stack([look(video, *s) for s in specs[i : i + per]])  # (V, T, H, W, 3)
        parts.append(_look_errors(model, views, context, horizon, tokens=1))  # (V, T, 1)
    return torch.cat(parts)[..., 0].mean(dim=0)


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
    _check(video, context, horizon)
    return _look_errors(model, video[None], context, horizon, tokens)[0]


def _check(video: torch.Tensor, context: int, horizon: int) -> None:
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"video must be (T, H, W, 3) uint8, got {tuple(video.shape)}")
    if context < 1:
        raise ValueError(f"context must be >= 1, got {context}")
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")


def _look_errors(
    model: VideoModelLike, videos: torch.Tensor, context: int, horizon: int, tokens: int
) -> torch.Tensor:
    """Per-token surprise of V looks of one video, (V, T, H, W, 3) -> (V, T, tokens)."""
    z = model.encode(videos)  # (V, T, D)
    if z.shape[-1] % tokens:
        raise ValueError(f"tokens must divide the embedding size {z.shape[-1]}, got {tokens}")
    V, T, D = z.shape
    out = torch.zeros(V, T, tokens, device=z.device)  # (V, T, tokens)
    each = torch.arange(V, device=z.device)  # (V,): the look of each row
    for t in range(1, min(context, T)):  # short warm-up windows, one per frame and look
        start = torch.full((V,), t, device=z.device)
        out[:, t] = _errors(model, z[:, :t], z, each, start, horizon, tokens)
    if context < T:
        windows = z.unfold(1, context, 1)[:, : T - context]  # (V, T-C, D, C): ending at t-1
        windows = windows.permute(0, 1, 3, 2).reshape(-1, context, D)  # (V*(T-C), C, D)
        starts = torch.arange(context, T, device=z.device).repeat(V)  # (V*(T-C),)
        of = each.repeat_interleave(T - context)  # (V*(T-C),): look-major, as the windows
        err = _errors(model, windows, z, of, starts, horizon, tokens)  # (V*(T-C), tokens)
        out[:, context:] = err.reshape(V, T - context, tokens)
    return out.float().cpu()


def _errors(
    model: VideoModelLike,
    windows: torch.Tensor,
    z: torch.Tensor,
    look: torch.Tensor,
    starts: torch.Tensor,
    horizon: int,
    tokens: int,
) -> torch.Tensor:
    """Mean L1 error per token of the `horizon` open-loop predictions after each window, counting
    only frames inside the video. windows (N, C, D), z (V, T, D), look and starts (N,): each
    window's look and first predicted frame -> (N, tokens)."""
    T = z.shape[1]
    N = len(windows)
    seq = windows  # (N, C, D)
    total, count = windows.new_zeros(N, tokens), windows.new_zeros(N, 1)  # (N, tokens), (N, 1)
    for k in range(min(horizon, T - int(starts.min()))):
        null = seq.new_zeros(*seq.shape[:2], 0)  # (N, C+k, 0): action-free
        pred = model.predict(seq, null)[:, -1]  # (N, D)
        frame = starts + k  # (N,)
        valid = (frame < T).to(pred.dtype)[:, None]  # (N, 1)
        gap = (pred - z[look, frame.clamp(max=T - 1)]).abs()  # (N, D)
        err = gap.reshape(N, tokens, -1).mean(dim=-1)  # (N, tokens)
        total, count = total + valid * err, count + valid
        seq = torch.cat([seq, pred[:, None]], dim=1)  # (N, C+k+1, D)
    return total / count
