"""Where planning, physics and memory meet a model: Protocols, so they never import a model class.

Shape letters (DESIGN.md): E independent problems solved together, S samples, L horizon,
A action dim, D embedding dim, T time steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

# cost_fn(actions (E, S, L, A)) -> costs (E, S); lower is better.
BatchCostFn = Callable[[torch.Tensor], torch.Tensor]
# cost_fn(actions (S, L, A)) -> costs (S,)
CostFn = Callable[[torch.Tensor], torch.Tensor]


@runtime_checkable
class WorldModelLike(Protocol):
    """What a planner needs of a world model (jepaworld.models.WorldModel satisfies it)."""

    step_action_dim: int

    def encode(self, frames: torch.Tensor, proprio: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 frames (B, T, H, W, 3) -> embeddings (B, T, D); `proprio`, the frames' state
        vectors (B, T, S), for a model that reads proprioception (others ignore it)."""
        ...

    def rollout(
        self, z_hist: torch.Tensor, actions: torch.Tensor, past_actions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """z_hist (B, T, D), actions (B, L, A) -> predicted embeddings (B, L, D). Without
        past_actions (B, T-1, A), the actions taken between the observed frames, only the last
        frame is used."""
        ...


@dataclass(frozen=True)
class ActionBounds:
    """Box bounds of one planner action. low, high: (A,)."""

    low: torch.Tensor
    high: torch.Tensor

    def __post_init__(self) -> None:
        if self.low.shape != self.high.shape or self.low.ndim != 1:
            raise ValueError(
                f"bounds must be two (A,) tensors, got {self.low.shape} and {self.high.shape}"
            )
        if bool((self.low > self.high).any()):
            raise ValueError("action bounds: low must be <= high")

    @property
    def dim(self) -> int:
        return int(self.low.shape[0])

    def clip(self, actions: torch.Tensor) -> torch.Tensor:
        return torch.maximum(torch.minimum(actions, self.high), self.low)

    @classmethod
    def box(cls, low: float, high: float, dim: int) -> ActionBounds:
        return cls(torch.full((dim,), float(low)), torch.full((dim,), float(high)))


class Planner(Protocol):
    """A sampling or gradient planner over action sequences."""

    def solve(
        self,
        cost_fn: CostFn,
        horizon: int,
        bounds: ActionBounds,
        generator: torch.Generator,
        init: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return the best action sequence (L, A) found for one problem."""
        ...

    def solve_batch(
        self,
        cost_fn: BatchCostFn,
        problems: int,
        horizon: int,
        bounds: ActionBounds,
        generator: torch.Generator,
        init: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Solve E independent problems at once; returns (E, L, A)."""
        ...


@runtime_checkable
class VideoModelLike(Protocol):
    """What surprise scoring needs of a world model: encode frames, predict the next embeddings.

    `predict(z (B,T,D), actions (B,T,A')) -> (B,T,D)` is causal: output t is the prediction of
    z_{t+1} from z_{<=t}. Zero-width actions (A'=0) mean action-free video.
    """

    def encode(self, frames: torch.Tensor, proprio: torch.Tensor | None = None) -> torch.Tensor: ...

    def predict(self, z: torch.Tensor, actions: torch.Tensor) -> torch.Tensor: ...


class BatchSolver:
    """Gives a planner `solve` (one problem) from its `solve_batch` (E problems in lock-step)."""

    def solve(
        self,
        cost_fn: CostFn,
        horizon: int,
        bounds: ActionBounds,
        generator: torch.Generator,
        init: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Minimise cost_fn((S, L, A)) -> (S,); returns (L, A)."""
        batched = lambda a: cost_fn(a[0]).unsqueeze(0)  # (1, S, L, A) -> (1, S)  # noqa: E731
        init_b = None if init is None else init.unsqueeze(0)
        return self.solve_batch(batched, 1, horizon, bounds, generator, init_b)[0]  # type: ignore[attr-defined]


def gaussian_start(
    bounds: ActionBounds, problems: int, horizon: int, init: torch.Tensor | None, init_std: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where a search starts: mean (E, L, A) at `init` or the box centre, std (E, L, A) at
    `init_std` half-widths, and the half-width (A,) itself."""
    low, high = bounds.low.float(), bounds.high.float()
    half = (high - low) / 2  # (A,)
    shape = (problems, horizon, bounds.dim)
    mean = ((low + high) / 2).expand(shape).clone() if init is None else init.float().clone()
    return mean, (init_std * half).expand(shape).clone(), half


def sample_around(
    mean: torch.Tensor,
    std: torch.Tensor,
    samples: int,
    bounds: ActionBounds,
    generator: torch.Generator,
) -> torch.Tensor:
    """S sequences per problem from N(mean, std), clipped to the box; sample 0 is the mean itself,
    so a search never loses its current best guess. mean, std (E, L, A) -> (E, S, L, A)."""
    E, L, A = mean.shape
    noise = torch.randn(E, samples, L, A, generator=generator)  # (E, S, L, A)
    out = bounds.clip(mean.unsqueeze(1) + std.unsqueeze(1) * noise)
    out[:, 0] = mean
    return out


def reads_proprio(model: object) -> bool:
    """Whether a model reads proprioception beside its frames (`ModelConfig.proprio`)."""
    return bool(getattr(getattr(model, "config", None), "proprio", ()))


def refuse_proprio(model: object, where: object, why: str) -> None:
    """A named error, before any work, where a model that reads proprioception cannot be given
    its state vectors: `where` names the run or file, `why` says what holds frames alone."""
    if reads_proprio(model):
        raise ValueError(
            f"{where}: its model reads proprioception (--model.proprio), but {why}; "
            "use a model trained without it"
        )
