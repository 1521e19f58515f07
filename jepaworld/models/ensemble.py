"""Several world models planned with as one: a deep ensemble over independently trained members.

A planner searching one learned model finds action sequences where that model's errors make the goal
look reached (PETS, Chua et al. 2018, uses an ensemble against this). Here the ensemble's embedding
is its members' embeddings side by side, member m's scaled by sqrt(w_m), and each member rolls out
its own slice. The planners' squared distance to a goal embedding is then the weighted sum of the
members' own latent costs, so a sequence scores well only where every member agrees that it reaches
the goal. It satisfies `planning.protocols.WorldModelLike` and needs nothing of the planners.

Members must share the frame size, frame stride and step action width (they see the same frames
and execute the same actions) and a device; they may differ in everything else (embedding width,
encoder, predictor, training data or seed). The weights multiply each member's raw latent cost,
the one its own planning would use: SIGReg makes each embedding dimension about unit-variance, so
a member's cost grows with its width, and equal weights give a wider member more say.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from jepaworld.models.world_model import ModelConfig, WorldModel


class Ensemble(nn.Module):
    """Members' embeddings concatenated: encode (B, T, H, W, 3) -> (B, T, sum D_m)."""

    def __init__(self, members: Sequence[WorldModel], weights: Sequence[float] | None = None):
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        weights = [1.0] * len(members) if weights is None else [float(w) for w in weights]
        if len(weights) != len(members) or not all(w > 0 for w in weights):
            raise ValueError(f"ensemble weights: one positive weight per member, got {weights}")
        first = members[0].config
        for i, m in enumerate(members[1:], start=1):
            for name in ("image_size", "frame_stride", "action_dim"):
                if getattr(m.config, name) != getattr(first, name):
                    raise ValueError(
                        f"ensemble member {i}: {name} {getattr(m.config, name)} differs from "
                        f"member 0's {getattr(first, name)}"
                    )
        devices = {m.device for m in members}
        if len(devices) > 1:
            raise ValueError(
                f"ensemble members are on several devices: {sorted(map(str, devices))}"
            )
        self.members = nn.ModuleList(members)
        self.dims = [m.config.latent_dim for m in members]
        self.register_buffer(
            "scales", torch.tensor([w**0.5 for w in weights], dtype=torch.float32), persistent=False
        )

    @property
    def config(self) -> ModelConfig:
        """Member 0's config, for the frame size, stride and action width all members share; its
        latent_dim is member 0's alone, not the ensemble's width (sum(self.dims))."""
        return self.members[0].config

    @property
    def step_action_dim(self) -> int:
        return self.members[0].step_action_dim

    @property
    def device(self) -> torch.device:
        return self.members[0].device

    def encode(self, frames: torch.Tensor, proprio: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 frames (B, T, H, W, 3) -> (B, T, sum D_m), member m's part scaled by sqrt(w_m);
        `proprio` (B, T, S) goes to the members that read proprioception."""
        pairs = zip(self.members, self.scales, strict=True)
        parts = [m.encode(frames, proprio) * s for m, s in pairs]
        return torch.cat(parts, dim=-1)  # (B, T, sum D_m)

    def rollout(
        self,
        z_hist: torch.Tensor,
        actions: torch.Tensor,
        past_actions: torch.Tensor | None = None,
        has_actions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """z_hist (B, T, sum D_m), actions (B, L, A') -> (B, L, sum D_m): each member predicts from
        its own slice, unscaled, and its predictions are scaled back."""
        if z_hist.shape[-1] != sum(self.dims):
            raise ValueError(
                f"ensemble rollout: embeddings of width {z_hist.shape[-1]}, expected "
                f"{sum(self.dims)} (the members' {self.dims} side by side)"
            )
        outs = []
        for m, s, z in zip(self.members, self.scales, z_hist.split(self.dims, dim=-1), strict=True):
            outs.append(m.rollout(z / s, actions, past_actions, has_actions) * s)  # (B, L, D_m)
        return torch.cat(outs, dim=-1)  # (B, L, sum D_m)
