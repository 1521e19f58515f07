"""Model-predictive path integral (MPPI) over action sequences.

Each iteration samples S sequences around the current mean, scores them in one batched call, and
moves the mean to their average weighted by exp(-cost / temperature) (costs shifted by their
minimum, so the weights never underflow), the std to the weighted spread. Compared with CEM, every
sample contributes, in proportion to how good it is, rather than the K best equally (as in
TD-MPC2's MPPI-style update and PLDM's planner).
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
class MPPIConfig:
    """MPPI settings."""

    samples: int = 300
    """S: action sequences sampled per iteration."""
    iterations: int = 30
    """Updates per plan."""
    temperature: float = 0.05
    """Softmax temperature, relative to the spread of the costs (their std) in each iteration."""
    init_std: float = 1.0
    """Initial std as a fraction of the half-width of the action box."""
    min_std: float = 0.05
    """Floor on the std (fraction of the half-width)."""

    def __post_init__(self) -> None:
        require(self.samples >= 2, "samples", f"must be >= 2, got {self.samples}")
        require(self.iterations >= 1, "iterations", "must be >= 1")
        require(self.temperature > 0, "temperature", "must be > 0")
        require(self.init_std > 0, "init_std", "must be > 0")


class MPPI(BatchSolver):
    """MPPI planner (satisfies planning.protocols.Planner)."""

    def __init__(self, config: MPPIConfig | None = None) -> None:
        self.config = config or MPPIConfig()

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
        mean, std, half = gaussian_start(bounds, problems, horizon, init, c.init_std)
        for _ in range(c.iterations):
            samples = sample_around(mean, std, c.samples, bounds, generator)  # (E, S, L, A)
            costs = cost_fn(samples).float()  # (E, S)
            scale = costs.std(dim=1, keepdim=True).clamp_min(1e-8)  # (E, 1)
            shifted = (costs - costs.min(dim=1, keepdim=True).values) / scale
            w = torch.softmax(-shifted / c.temperature, dim=1)[:, :, None, None]  # (E, S, 1, 1)
            mean = (w * samples).sum(dim=1)  # (E, L, A)
            spread = (w * (samples - mean.unsqueeze(1)).pow(2)).sum(dim=1).sqrt()
            std = spread.clamp_min(c.min_std * half)
        return bounds.clip(mean)  # (E, L, A)
