"""The pixel-space baseline of the VoE suite: predict the next frame's pixels, surprise = pixel error.

Garrido et al. (2025) report that models predicting pixels stay near chance on intuitive-physics
benchmarks while JEPA's latent prediction does not; this baseline lets every evaluation check that
claim on its own data. A small conv encoder-decoder sees the last `context` frames (downsampled to
`size` px, stacked on channels) and predicts the next one; it is trained with MSE on possible-only
videos. Surprise at frame t is the mean squared pixel error of its prediction of frame t.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def _frames_to_float(frames: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, T, H, W, 3) -> float (N, T*3, size, size) in [0, 1]."""
    N, T = frames.shape[:2]
    x = rearrange(frames.float() / 255.0, "n t h w c -> (n t) c h w")  # (N*T, 3, H, W)
    x = F.interpolate(x, size=(size, size), mode="area")  # (N*T, 3, s, s)
    return rearrange(x, "(n t) c h w -> n (t c) h w", n=N, t=T)  # (N, T*3, s, s)


class PixelPredictor(nn.Module):
    """Next frame (3, s, s) from `context` previous frames; a residual on the last frame."""

    def __init__(self, context: int = 4, size: int = 32, width: int = 32) -> None:
        super().__init__()
        self.context, self.size = context, size
        self.net = nn.Sequential(
            nn.Conv2d(3 * context, width, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),  # s/2
            nn.GELU(),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1),
            nn.GELU(),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),  # s
            nn.GELU(),
            nn.Conv2d(width, 3, 3, padding=1),
        )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W, 3) context frames -> predicted next frame, float (N, 3, s, s)."""
        x = _frames_to_float(frames, self.size)  # (N, C*3, s, s)
        return x[:, -3:] + self.net(x)

    def target(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (N, H, W, 3) -> the float targets (N, 3, s, s) the predictions are compared to."""
        return _frames_to_float(frames[:, None], self.size)


def _windows(video: torch.Tensor, context: int) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> (T-1, C, H, W, 3): for each t >= 1 the C frames before it, the
    first frame repeated where the video has fewer."""
    T = video.shape[0]
    idx = torch.arange(1, T)[:, None] - context + torch.arange(context)[None]  # (T-1, C)
    return video[idx.clamp(min=0)]


def train_pixel_predictor(
    videos: Sequence[np.ndarray],
    context: int = 4,
    steps: int = 300,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
) -> PixelPredictor:
    """Fit a PixelPredictor on random windows of possible-only videos (uint8 (T, H, W, 3) each)."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = PixelPredictor(context)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    data = torch.from_numpy(np.stack(videos))  # (V, T, H, W, 3)
    V, T = data.shape[:2]
    for _ in range(steps):
        v = torch.randint(0, V, (batch_size,), generator=g)
        t = torch.randint(1, T, (batch_size,), generator=g)  # predicted frame
        idx = (t[:, None] - context + torch.arange(context)[None]).clamp(min=0)  # (B, C)
        context_frames = data[v[:, None], idx]  # (B, C, H, W, 3)
        loss = F.mse_loss(model(context_frames), model.target(data[v, t]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


@torch.inference_mode()
def pixel_surprise(model: PixelPredictor, video: torch.Tensor) -> torch.Tensor:
    """Per-frame surprise (T,) of a uint8 (T, H, W, 3) video: 0 at frame 0, then the mean squared
    error of the predicted frame t against frame t."""
    pred = model(_windows(video, model.context))  # (T-1, 3, s, s)
    err = (pred - model.target(video[1:])).pow(2).mean(dim=(1, 2, 3))  # (T-1,)
    return torch.cat([err.new_zeros(1), err])
