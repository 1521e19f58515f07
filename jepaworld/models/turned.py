"""One world model planned with as several: the world's symmetries as an ensemble of views.

Where a world's physics looks the same turned by a multiple of 90 degrees or mirrored (PushT, see
`data/augment.py`), each of the square's 8 symmetries gives the model another look at the same
moment: the frames turned, each action turned the same way, the state vectors turned by the world's
rule. A model trained with those turns (`train --augment dihedral`) predicts each look about as
well, but its errors differ from look to look. Here the embedding is the model's embeddings of the
chosen looks side by side, and each look rolls out its own slice with its own turned actions, so a
planner's squared distance to a goal embedding (the goal turned the same way) is the sum of the
looks' latent costs: a sequence scores well only where every look expects it to reach the goal, as
in the ensemble of checkpoints (`models/ensemble.py`) but from one checkpoint. Planning costs one
rollout per look. It satisfies `planning.protocols.WorldModelLike`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from jepaworld.data.augment import ELEMENTS, turn_actions, turn_frames, turn_states
from jepaworld.models.world_model import ModelConfig, WorldModel

if TYPE_CHECKING:
    from jepaworld.envs import StateTurn


class TurnedViews(nn.Module):
    """The model's embeddings of each turned look, side by side: encode (B, T, H, W, 3) ->
    (B, T, G * D) for the G chosen elements of `data.augment.ELEMENTS`."""

    def __init__(
        self,
        model: WorldModel,
        elements: Sequence[int] = tuple(range(len(ELEMENTS))),
        turn: StateTurn | None = None,
    ) -> None:
        super().__init__()
        elements = tuple(int(g) for g in elements)
        if not elements or len(set(elements)) != len(elements):
            raise ValueError(f"turned views: distinct elements needed, got {list(elements)}")
        if not all(0 <= g < len(ELEMENTS) for g in elements):
            raise ValueError(
                f"turned views: elements index the square's {len(ELEMENTS)} symmetries, "
                f"got {list(elements)}"
            )
        if model.config.proprio and turn is None:
            raise ValueError(
                "turned views of a model that reads proprioception need the world's rule for "
                "turning its state vectors (jepaworld.envs.DIHEDRAL_ENVS)"
            )
        self.model, self.elements, self.turn = model, elements, turn
        self.dim = model.config.latent_dim

    @property
    def config(self) -> ModelConfig:
        """The model's config (frame size, stride, action width); its latent_dim is one look's."""
        return self.model.config

    @property
    def step_action_dim(self) -> int:
        return self.model.step_action_dim

    @property
    def device(self) -> torch.device:
        return self.model.device

    def encode(self, frames: torch.Tensor, proprio: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 frames (B, T, H, W, 3) -> (B, T, G * D), look g's embedding at slice g;
        `proprio` (B, T, S) turns with the frames by the world's rule (for a model that reads it;
        others ignore it)."""
        parts = []
        for g in self.elements:
            state = None
            if proprio is not None and self.turn is not None and self.model.config.proprio:
                state = turn_states(proprio, g, self.turn)
            parts.append(self.model.encode(turn_frames(frames, g), state))  # (B, T, D)
        return torch.cat(parts, dim=-1)  # (B, T, G * D)

    def rollout(
        self,
        z_hist: torch.Tensor,
        actions: torch.Tensor,
        past_actions: torch.Tensor | None = None,
        has_actions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """z_hist (B, T, G * D), actions (B, L, A') in the world's own axes -> (B, L, G * D): look
        g rolls out its slice with the actions turned by g."""
        if z_hist.shape[-1] != self.dim * len(self.elements):
            raise ValueError(
                f"turned views rollout: embeddings of width {z_hist.shape[-1]}, expected "
                f"{self.dim * len(self.elements)} ({len(self.elements)} looks of {self.dim})"
            )
        outs = []
        for g, z in zip(self.elements, z_hist.split(self.dim, dim=-1), strict=True):
            past = None if past_actions is None else turn_actions(past_actions, g)
            outs.append(self.model.rollout(z, turn_actions(actions, g), past, has_actions))
        return torch.cat(outs, dim=-1)  # (B, L, G * D)
