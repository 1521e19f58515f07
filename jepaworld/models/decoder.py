"""Pixel decoder: one embedding -> the frame it came from, for the reconstruction auxiliary.

A JEPA objective asks the embedding to keep only what helps predict the next embeddings. What the
actions rarely move (PushT's block, which turns only when a push catches it off-centre) can then be
dropped: the prediction loss is met as well without it. A decoder trained to redraw the frame from
its embedding, with its gradient reaching the encoder (`ModelConfig.recon_weight`), asks the
embedding to keep everything visible, in proportion to the pixels it covers. Dreamer's world
models have a reconstruction term beside their dynamics terms; DINO-WM trains a decoder on its
frozen encoder's embeddings only to visualise them. Here the decoder is part of the model from the
first step (a model trained without it has none, and `--init` needs the same config).

The decoder mirrors `ConvEncoder`: a linear map to the last feature map, then transposed 4x4
convolutions that each double it, back to (3, H, W) in the encoder's [-1, 1] pixel range.
"""

from __future__ import annotations

import torch
from torch import nn


class PixelDecoder(nn.Module):
    """(B, D) embeddings -> (B, 3, H, W) images in [-1, 1]."""

    def __init__(self, embed_dim: int, image_size: int, channels: tuple[int, ...]) -> None:
        super().__init__()
        if image_size % (2 ** len(channels)):
            raise ValueError(f"image_size {image_size} must be divisible by 2**len(channels)")
        self.side = image_size // 2 ** len(channels)
        self.c0 = channels[-1]
        self.fc = nn.Linear(embed_dim, self.c0 * self.side * self.side)
        layers: list[nn.Module] = []
        widths = list(reversed(channels))  # the encoder's channels, last first
        for c_in, c_out in zip(widths, widths[1:], strict=False):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1),
                nn.GroupNorm(1, c_out),
                nn.GELU(),
            ]
        layers += [nn.ConvTranspose2d(widths[-1], 3, 4, stride=2, padding=1), nn.Tanh()]
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, self.c0, self.side, self.side)  # (B, C, h, w)
        return self.deconvs(h)  # (B, 3, H, W)
