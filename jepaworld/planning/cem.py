"""Cross-entropy method (CEM) over action sequences.

Each iteration samples S sequences from a diagonal Gaussian (clipped to the action box), scores
them with the cost function in one batched call, and refits the Gaussian to the K lowest-cost
"elites". Anchors' defaults (DINO-WM, LeWM): S=300, K=30, 30 iterations, horizon 5.
Several independent problems (e.g. one per evaluation episode) are solved in lock-step, so the
world model sees one large batch per iteration instead of many small ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from jepaworld.config import require
from jepaworld.planning.protocols import (
    ActionBounds,
    BatchCostFn,
    BatchSolver,
    gaussian_start,
    sample_around,
)


@dataclass
class CEMConfig:
    """Cross-entropy method settings."""

    samples: int = 300
    """S: action sequences sampled per iteration."""
    elites: int = 30
    """K: lowest-cost samples the Gaussian is refit to."""
    iterations: int = 30
    """Refits per plan."""
    init_std: float = 1.0
    """Initial std as a fraction of the half-width of the action box."""
    min_std: float = 0.05
    """Floor on the std (fraction of the half-width), so the search never freezes."""
    momentum: float = 0.0
    """Fraction of the previous mean/std kept at each refit."""

    def __post_init__(self) -> None:
        require(self.samples >= 2, "samples", f"must be >= 2, got {self.samples}")
        require(1 <= self.elites <= self.samples, "elites", "must be in [1, samples]")
        require(self.iterations >= 1, "iterations", "must be >= 1")
        require(self.init_std > 0, "init_std", "must be > 0")
        require(0 <= self.momentum < 1, "momentum", "must be in [0, 1)")


class CEM(BatchSolver):
    """CEM planner (satisfies planning.protocols.Planner)."""

    def __init__(self, config: CEMConfig | None = None) -> None:
        self.config = config or CEMConfig()

    def solve_batch(
        self,
        cost_fn: BatchCostFn,
        problems: int,
        horizon: int,
        bounds: ActionBounds,
        generator: torch.Generator,
        init: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Minimise cost_fn((E, S, L, A)) -> (E, S) for E problems; returns (E, L, A)."""
        c = self.config
        E, L, A = problems, horizon, bounds.dim
        mean, std, half = gaussian_start(bounds, E, L, init, c.init_std)  # (E, L, A) x2, (A,)
        for _ in range(c.iterations):
            samples = sample_around(mean, std, c.samples, bounds, generator)  # (E, S, L, A)
            costs = cost_fn(samples)  # (E, S)
            idx = costs.topk(c.elites, dim=1, largest=False).indices  # (E, K)
            elites = samples.gather(
                1, idx[:, :, None, None].expand(E, c.elites, L, A)
            )  # (E, K, L, A)
            new_mean, new_std = elites.mean(dim=1), elites.std(dim=1, unbiased=False)
            mean = c.momentum * mean + (1 - c.momentum) * new_mean
            std = (c.momentum * std + (1 - c.momentum) * new_std).clamp_min(c.min_std * half)
        return bounds.clip(mean)  # (E, L, A)
