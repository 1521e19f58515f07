"""Action-conditioned predictor: a small causal transformer over time.

Token t is the embedding z_t; the action taken after frame t conditions that token through AdaLN
(as in DiT and LeWM: the action sets the scale, shift and gate of each block's LayerNorms). The
output at token t is the predicted z_{t+1}, written as z_t plus a learned change, and attention is
causal so a prediction never sees a later frame. The AdaLN projections start at zero, so at
initialisation every block is the identity and the predictor says "nothing changes".

With a grid latent (`tokens` N > 1, see `models/encoder.py`) each frame's embedding is split into its
N tokens, which get a learned position in the grid besides their time; every token of frame t sees
every token of frames <= t (frame-causal attention, as DINO-WM's predictor over patch tokens), and
all N take that frame's action. Outputs are joined back into one (D,) vector per frame.
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat
from torch import nn

from jepaworld.models.encoder import MLP, SelfAttention, token_width


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class AdaLNBlock(nn.Module):
    """Pre-norm transformer block whose norms are modulated by a conditioning vector per token
    (one vector may stand for many: c broadcasts against x)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False)
        self.attn, self.mlp = SelfAttention(dim, heads), MLP(dim, 4 * dim)
        self.ada = nn.Linear(dim, 6 * dim)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def forward(
        self,
        x: torch.Tensor,
        c: torch.Tensor,
        cache: dict[str, torch.Tensor] | None = None,
        frame_tokens: int = 1,
    ) -> torch.Tensor:
        # x: (B, T*F, P), F = frame_tokens; c: (B, T*F, P), or (B, 1, P) / (1, 1, P) broadcast
        s1, g1, b1, s2, g2, b2 = self.ada(c).chunk(6, dim=-1)  # each shaped as c
        h = modulate(self.norm1(x), b1, s1)
        x = x + g1 * self.attn(h, causal=True, cache=cache, frame_tokens=frame_tokens)
        return x + g2 * self.mlp(modulate(self.norm2(x), b2, s2))


class Predictor(nn.Module):
    """Predicts z_{t+1} from z_{<=t} and a_t. Shapes: z (B,T,D), actions (B,T,A') -> (B,T,D).

    Actions of width 0 mean "no action known" (action-free video) and use a learned null action.
    `tokens` N > 1: each embedding is N grid tokens of D/N channels (module docstring).
    """

    def __init__(
        self,
        embed_dim: int,
        action_dim: int,
        dim: int,
        depth: int,
        heads: int,
        max_len: int,
        tokens: int = 1,
    ):
        super().__init__()
        self.max_len, self.tokens = max_len, tokens
        width = token_width(embed_dim, tokens)
        self.z_in = nn.Linear(width, dim)
        self.a_in = (
            nn.Sequential(nn.Linear(action_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
            if action_dim
            else None
        )
        # the conditioning of action-free video: one model serves clips with and without actions
        self.null_action = nn.Parameter(torch.zeros(dim))
        self.pos = nn.Parameter(torch.randn(1, max_len, dim) * 0.02)
        if tokens > 1:  # a one-token model keeps the state dict it always had
            self.grid_pos = nn.Parameter(torch.randn(1, 1, tokens, dim) * 0.02)
        self.blocks = nn.ModuleList(AdaLNBlock(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, width)

    def forward(
        self,
        z: torch.Tensor,
        actions: torch.Tensor,
        caches: list[dict] | None = None,
        offset: int = 0,
        has_actions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """z (B,T,D), actions (B,T,A') -> predicted next embeddings (B,T,D).

        With `caches` (one dict per block, from `new_caches`), this call continues a sequence whose
        first `offset` frames were already fed: rollouts then cost one frame (N tokens) per step.
        `has_actions` (B,) bool marks the clips that have actions; the others (action-free video
        in a mixed batch) get the null action whatever their action values.
        """
        T = z.shape[1]
        if offset + T > self.max_len:
            raise ValueError(
                f"sequence of {offset + T} steps exceeds the predictor's max_len {self.max_len}"
            )
        if actions.shape[:2] != z.shape[:2]:
            raise ValueError(
                f"actions {tuple(actions.shape)} do not match embeddings {tuple(z.shape)}"
            )
        N = self.tokens
        grid = rearrange(z, "b t (n d) -> b t n d", n=N)  # (B, T, N, D/N)
        h = self.z_in(grid) + self.pos[:, offset : offset + T, None]  # (B, T, N, P)
        if N > 1:
            h = h + self.grid_pos
        h = rearrange(h, "b t n p -> b (t n) p")  # (B, T*N, P)
        c = self.condition(actions, has_actions)  # (B, T, P), or (1, 1, P): broadcast as it is
        if c.shape[1] > 1:
            c = repeat(c, "b t p -> b (t n) p", n=N)  # (B, T*N, P)
        for i, block in enumerate(self.blocks):
            h = block(h, c, None if caches is None else caches[i], N)
        delta = self.out(self.norm(h))  # (B, T*N, D/N)
        return z + rearrange(delta, "b (t n) d -> b t (n d)", n=N)  # (B, T, D)

    def condition(
        self, actions: torch.Tensor, has_actions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, T, A') actions -> (B, T, P) AdaLN conditioning; zero-width actions (action-free
        video), and the clips `has_actions` marks False, get the learned null action. Zero-width
        actions give it once, (1, 1, P), for every block to modulate with one row of its AdaLN
        projection, broadcast over clips, time and grid tokens, instead of one row per token
        (6P^2 of the 18P^2 multiply-adds of each block's linear layers): on the 2-core AMD EPYC,
        old and new code back to back, this cut a step of `physics pretrain` from 0.23 to 0.18 s
        and a step of its predictor alone (cached embeddings) from 0.17 to 0.11 s."""
        if actions.shape[-1] == 0:
            return self.null_action[None, None]  # (1, 1, P)
        null = self.null_action.expand(*actions.shape[:2], -1)  # (B, T, P)
        if self.a_in is None:
            raise ValueError(
                f"this predictor is action-free but got actions of size {actions.shape[-1]}"
            )
        c = self.a_in(actions)  # (B, T, P)
        if has_actions is None:
            return c
        return torch.where(has_actions.to(c.device)[:, None, None], c, null)

    def new_caches(self) -> list[dict]:
        return [{} for _ in self.blocks]
