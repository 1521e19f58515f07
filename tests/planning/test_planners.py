"""MPPI and the gradient planner on problems with known optima, and inside latent MPC."""

from __future__ import annotations

import pytest
import torch

from jepaworld.models.world_model import WorldModel
from jepaworld.planning.cem import CEM
from jepaworld.planning.gradient import GradientConfig, GradientPlanner
from jepaworld.planning.mpc import LatentGoalCost
from jepaworld.planning.mppi import MPPI, MPPIConfig
from jepaworld.planning.protocols import ActionBounds, Planner
from tests.conftest import tiny_model

PLANNERS = {"mppi": MPPI, "gradient": GradientPlanner}
TARGET = torch.tensor([[0.5, -0.25], [-0.75, 0.1], [0.3, 0.9]])  # (L, A)


def quadratic(actions: torch.Tensor) -> torch.Tensor:
    return (actions - TARGET).pow(2).sum(dim=(-1, -2))  # (..., L, A) -> (...)


@pytest.mark.parametrize("name", PLANNERS)
def test_finds_the_minimum_of_a_quadratic(name: str) -> None:
    planner: Planner = PLANNERS[name]()
    plan = planner.solve(quadratic, 3, ActionBounds.box(-1, 1, 2), torch.Generator().manual_seed(0))
    assert plan.shape == (3, 2) and torch.allclose(plan, TARGET, atol=0.05)


@pytest.mark.parametrize("name", PLANNERS)
def test_stays_in_the_box_when_the_optimum_is_outside(name: str) -> None:
    cost = lambda a: (a - 3.0).pow(2).sum(dim=(-1, -2))  # noqa: E731
    plan = PLANNERS[name]().solve(
        cost, 2, ActionBounds.box(-1, 1, 2), torch.Generator().manual_seed(0)
    )
    assert torch.allclose(plan, torch.ones(2, 2), atol=1e-3)


@pytest.mark.parametrize("name", PLANNERS)
def test_solves_independent_problems_in_one_batch_deterministically(name: str) -> None:
    targets = torch.tensor([[[0.5]], [[-0.5]], [[0.0]]])  # (E, L, A)
    cost = lambda a: (a - targets.unsqueeze(1)).pow(2).sum(dim=(-1, -2))  # noqa: E731
    b = ActionBounds.box(-1, 1, 1)
    p1 = PLANNERS[name]().solve_batch(cost, 3, 1, b, torch.Generator().manual_seed(1))
    p2 = PLANNERS[name]().solve_batch(cost, 3, 1, b, torch.Generator().manual_seed(1))
    assert torch.allclose(p1, targets, atol=0.03) and torch.equal(p1, p2)


def test_mppi_weights_every_sample_so_one_iteration_moves_toward_the_optimum() -> None:
    b, g = ActionBounds.box(-1, 1, 2), torch.Generator().manual_seed(0)
    one = MPPI(MPPIConfig(iterations=1, samples=2000)).solve(quadratic, 3, b, g)
    assert float(quadratic(one)) < float(quadratic(torch.zeros(3, 2)))


def test_the_gradient_planner_refuses_a_cost_without_gradients() -> None:
    cost = lambda a: quadratic(a.detach())  # noqa: E731
    with pytest.raises(TypeError, match="differentiable"):
        GradientPlanner().solve(cost, 3, ActionBounds.box(-1, 1, 2), torch.Generator())


@pytest.mark.parametrize("history", [1, 2])
@pytest.mark.parametrize("planner", [CEM(), MPPI(), GradientPlanner(GradientConfig(iterations=20))])
def test_every_planner_lowers_the_latent_goal_cost_of_a_world_model(
    planner: Planner, history: int
) -> None:
    """Also from two observed frames and the action between them, all made as LatentMPC makes
    them (under inference_mode), which the gradient planner must still differentiate through."""
    torch.manual_seed(0)
    model = WorldModel(tiny_model()).eval()
    with torch.inference_mode():  # as LatentMPC encodes and remembers
        z = model.encode(torch.randint(0, 256, (2, 3, 64, 64, 3), dtype=torch.uint8))  # (2, 3, D)
        past = torch.rand(2, history - 1, model.step_action_dim) * 2 - 1  # (E, T-1, A')
    z_now = z[:, 2 - history : 2]  # (E, T, D)
    cost = LatentGoalCost(
        model, z_now, z[:, 2], 0.1, model.config.frame_stride, past if history > 1 else None
    )
    b = ActionBounds.box(-1, 1, model.config.action_dim)
    plan = planner.solve_batch(cost, 2, 3, b, torch.Generator().manual_seed(0))  # (E, L, A)
    base = cost(torch.zeros(2, 1, 3, 2))[:, 0]
    assert bool((cost(plan.unsqueeze(1))[:, 0] <= base + 1e-6).all())
    assert all(p.grad is None for p in model.parameters())  # planning never touches the model
