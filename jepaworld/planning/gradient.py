"""Gradient planning: Adam on the action sequence through a differentiable cost, projected to the box.

The cost function is called with actions that require grad; the world model's rollout must then
be differentiable (LatentGoalCost is, when its input requires grad). Several restarts per problem
(the mean of the box plus Gaussian perturbations, or `init` plus perturbations) run in one batch;
the best final sequence wins. Cheap per iteration, but local: it can stall in a poor basin where
sampling planners would jump out (DINO-WM reports CEM ahead of gradient descent on its tasks).
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
class GradientConfig:
    """Gradient planner settings."""

    restarts: int = 8
    """Sequences optimised in parallel per problem (the first starts at init or the box centre)."""
    iterations: int = 50
    """Adam steps."""
    lr: float = 0.1
    """Adam step size, as a fraction of the half-width of the action box."""
    init_std: float = 0.5
    """Std of the restarts' perturbation (fraction of the half-width)."""

    def __post_init__(self) -> None:
        require(self.restarts >= 1, "restarts", "must be >= 1")
        require(self.iterations >= 1, "iterations", "must be >= 1")
        require(self.lr > 0, "lr", "must be > 0")
        require(self.init_std >= 0, "init_std", "must be >= 0")


class GradientPlanner(BatchSolver):
    """Projected Adam over action sequences (satisfies planning.protocols.Planner)."""

    def __init__(self, config: GradientConfig | None = None) -> None:
        self.config = config or GradientConfig()

    def solve_batch(
        self,
        cost_fn: BatchCostFn,
        problems: int,
        horizon: int,
        bounds: ActionBounds,
        generator: torch.Generator,
        init: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Minimise cost_fn((E, R, L, A)) -> (E, R) for E problems; returns (E, L, A).

        Raises:
            TypeError: if the cost does not depend differentiably on the actions.
        """
        c = self.config
        E = problems
        mean, std, half = gaussian_start(bounds, E, horizon, init, c.init_std)
        # restart 0 starts exactly at init / the centre
        actions = sample_around(mean, std, c.restarts, bounds, generator).requires_grad_(True)
        opt = torch.optim.Adam([actions], lr=c.lr * float(half.mean()))
        for _ in range(c.iterations):
            with torch.enable_grad():
                costs = cost_fn(actions)  # (E, R)
                if not costs.requires_grad:
                    raise TypeError(
                        "the gradient planner needs a cost differentiable in the actions "
                        "(is the world model's rollout run under inference_mode?)"
                    )
                # grad of the actions only: the model's parameters are left untouched
                (actions.grad,) = torch.autograd.grad(costs.sum(), [actions])
            opt.step()
            with torch.no_grad():
                actions.copy_(bounds.clip(actions))  # projection onto the box
        with torch.no_grad():
            costs = cost_fn(actions.detach())  # (E, R)
            best = costs.argmin(dim=1)  # (E,)
            return actions.detach()[torch.arange(E), best]  # (E, L, A)
