"""Image encoders: uint8 frames -> one embedding per frame.

Two options, small parts first:
Both end in BatchNorm over the embedding (as LeWM's projector does). It matters here: frames of one
scene differ only in a few pixels, so a fresh encoder maps them all to nearly one point, and SIGReg's
gradient vanishes at a collapsed point (the characteristic function of a constant is flat in its
location). Batch statistics spread the embeddings from the first step; SIGReg then shapes them.
Evaluation normalises by running statistics instead, which training re-estimates for the weights of
each checkpoint (WorldModel.calibrate_norms): where the features before the norm vary little
(Pendulum-v1's frames), the running average over past weights was off by about their spread.

- `ConvEncoder` (default): strided 4x4 convolutions, each halving the image, then a linear map of
  the flattened feature map. Cheap on a CPU (~3k frames/s training at 64x64 on two cores). With
  `head="flatten-max"` the linear map also reads each channel's maximum over the map's cells:
  features bound to no position (which colours and shapes are in view), beside the flattened
  map's, which tie what is seen to where.
- `ViTEncoder`: patch embedding + pre-norm transformer blocks + mean pooling, for users who want
  the V-JEPA / LeWM architecture family.

Either can keep its last feature map as a grid of tokens instead (`grid=True`: the conv's last map,
or the ViT's patch tokens), each projected to `embed_dim / N` channels; the frame's embedding is the
N tokens concatenated, row-major, so a frame is still one (D,) vector to the losses, planners and
surprise, and the predictor splits it back into tokens (`models/predictor.py`). A small object then
owns the tokens of the cells it is in, where a global vector must fit it beside the whole scene.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from einops.layers.torch import Rearrange
from torch import nn


def to_float_images(frames: torch.Tensor, image_size: int) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [-1, 1], after checking the size."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (B, H, W, 3), got {tuple(frames.shape)}")
    if frames.shape[1] != image_size or frames.shape[2] != image_size:
        raise ValueError(
            f"frames are {frames.shape[1]}x{frames.shape[2]} but the model expects "
            f"{image_size}x{image_size} (model.image_size)"
        )
    x = rearrange(frames, "b h w c -> b c h w").to(torch.float32, copy=True)  # (B, 3, H, W)
    return x.div_(127.5).sub_(1.0)  # in place on the copy: one image-sized tensor, not three


def embed_in_float32(
    head: Callable[[torch.Tensor], torch.Tensor], norm: nn.Module, h: torch.Tensor
) -> torch.Tensor:
    """norm(head(h)) in float32 even inside a lower-precision torch.autocast region (training
    may run the feature layers in bfloat16): the embedding is what the losses and every score
    compare, so it keeps full precision. h (B, ...) -> (B, D)."""
    with torch.autocast(h.device.type, enabled=False):
        return norm(head(h.float()))


def token_width(embed_dim: int, tokens: int) -> int:
    """Channels of each of `tokens` grid tokens that make up an embedding of size `embed_dim`."""
    if embed_dim % tokens:
        raise ValueError(f"embed_dim {embed_dim} must be divisible by the {tokens} grid tokens")
    return embed_dim // tokens


class ConvEncoder(nn.Module):
    """Strided conv stack -> linear embedding (or, with `grid`, a 1x1 projection of each cell of
    the last feature map). Output (B, D)."""

    def __init__(
        self,
        image_size: int,
        channels: tuple[int, ...],
        embed_dim: int,
        grid: bool = False,
        head: str = "flatten",
    ) -> None:
        super().__init__()
        if image_size % (2 ** len(channels)):
            raise ValueError(f"image_size {image_size} must be divisible by 2**len(channels)")
        layers: list[nn.Module] = []
        c_in = 3
        for c_out in channels:
            layers += [
                nn.Conv2d(c_in, c_out, 4, stride=2, padding=1),
                nn.GroupNorm(1, c_out),
                nn.GELU(),
            ]
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        if head not in ("flatten", "flatten-max"):
            raise ValueError(f"head must be flatten or flatten-max, got {head!r}")
        if grid and head != "flatten":
            raise ValueError(f"head {head!r} needs the vector latent (grid tokens keep each cell)")
        side = image_size // 2 ** len(channels)
        self.head = self._head(c_in, side, embed_dim, grid, head)
        self.norm = nn.BatchNorm1d(embed_dim)

    @staticmethod
    def _head(channels: int, side: int, embed_dim: int, grid: bool, head: str) -> nn.Module:
        if grid:  # (B, C, h, w) -> (B, h*w*d): token n is cell (n // w, n % w)
            width = token_width(embed_dim, side * side)
            return nn.Sequential(nn.Conv2d(channels, width, 1), Rearrange("b d h w -> b (h w d)"))
        if head == "flatten-max":
            return FlattenMaxHead(channels, side, embed_dim)
        return nn.Linear(channels * side * side, embed_dim)  # flattened in forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(x)  # (B, C, h, w)
        flat = isinstance(self.head, nn.Linear)  # the plain head; the others take the map
        return embed_in_float32(self.head, self.norm, h.flatten(1) if flat else h)  # (B, D)


class FlattenMaxHead(nn.Module):
    """(B, C, h, w) -> (B, D): a linear map of the flattened map and of each channel's maximum
    over the cells. A linear map of the flattened map can average over cells but not take a
    maximum, so a feature that says "this colour is somewhere in view" needs the second input."""

    def __init__(self, channels: int, side: int, embed_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(channels * side * side + channels, embed_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        peak = h.amax(dim=(2, 3))  # (B, C)
        return self.linear(torch.cat([h.flatten(1), peak], dim=1))  # (B, C*h*w + C) -> (B, D)


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SelfAttention(nn.Module):
    """Multi-head self-attention; `causal` masks the future (used over time by the predictor):
    with `frame_tokens` F > 1, tokens come F per frame and a token sees every token of its own
    frame and the frames before (DINO-WM's frame-causal mask)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads = heads
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(
        self,
        x: torch.Tensor,
        causal: bool = False,
        cache: dict[str, torch.Tensor] | None = None,
        frame_tokens: int = 1,
    ) -> torch.Tensor:
        """x (B, N, D). With `cache` (a dict kept by the caller), keys and values of earlier calls are
        reused and extended: incremental decoding, one frame (`frame_tokens` tokens) per call after
        the first, whose tokens attend to all cached ones and to each other."""
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        mask = None
        if cache is not None and "k" in cache:
            if x.shape[1] != frame_tokens:
                raise ValueError(
                    f"incremental attention takes one new frame ({frame_tokens} tokens) per call"
                )
            k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
            causal = False  # the new frame may see every cached one
        elif causal and frame_tokens > 1:
            frame = torch.arange(x.shape[1], device=x.device) // frame_tokens  # (N,)
            mask, causal = frame[:, None] >= frame[None, :], False  # (N, N): True may attend
        if cache is not None:
            cache["k"], cache["v"] = k, v
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal
        )  # (B, heads, N, d)
        return self.proj(rearrange(y, "b h n d -> b n (h d)"))  # (B, N, D)


class ViTBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), SelfAttention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), MLP(dim, 4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViTEncoder(nn.Module):
    """Patchify -> transformer -> mean-pooled tokens -> linear embedding (or, with `grid`, each
    token projected on its own and kept). Output (B, D)."""

    def __init__(
        self,
        image_size: int,
        patch: int,
        dim: int,
        depth: int,
        heads: int,
        embed_dim: int,
        grid: bool = False,
    ):
        super().__init__()
        if image_size % patch:
            raise ValueError(f"image_size {image_size} must be divisible by vit_patch {patch}")
        n_tokens = (image_size // patch) ** 2
        self.patchify = nn.Conv2d(3, dim, patch, stride=patch)
        self.pos = nn.Parameter(torch.randn(1, n_tokens, dim) * 0.02)
        self.blocks = nn.ModuleList(ViTBlock(dim, heads) for _ in range(depth))
        self.grid = grid
        width = token_width(embed_dim, n_tokens) if grid else embed_dim
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, width)
        self.out_norm = nn.BatchNorm1d(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = rearrange(self.patchify(x), "b d h w -> b (h w) d") + self.pos  # (B, N, dim)
        for block in self.blocks:
            tokens = block(tokens)
        tokens = self.norm(tokens.float())  # (B, N, dim)
        if self.grid:  # each token its own head: (B, N, d) -> (B, N*d)
            return embed_in_float32(lambda t: self.head(t).flatten(1), self.out_norm, tokens)
        return embed_in_float32(self.head, self.out_norm, tokens.mean(dim=1))  # (B, D)
