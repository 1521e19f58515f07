from __future__ import annotations

import pytest
import torch

from jepaworld.planning.cem import CEM, CEMConfig
from jepaworld.planning.mpc import LatentGoalCost, LatentMPC, MPCConfig
from jepaworld.planning.protocols import ActionBounds, WorldModelLike


def test_cem_finds_the_minimum_of_a_quadratic() -> None:
    target = torch.tensor([[0.5, -0.25], [-0.75, 0.1], [0.3, 0.9]])  # (L, A)
    cost = lambda a: (a - target).pow(2).sum(dim=(-1, -2))  # noqa: E731  (S, L, A) -> (S,)
    plan = CEM().solve(cost, 3, ActionBounds.box(-1, 1, 2), torch.Generator().manual_seed(0))
    assert plan.shape == (3, 2)
    assert torch.allclose(plan, target, atol=0.05)


def test_cem_respects_bounds_when_the_optimum_is_outside() -> None:
    cost = lambda a: (a - 3.0).pow(2).sum(dim=(-1, -2))  # noqa: E731
    plan = CEM().solve(cost, 2, ActionBounds.box(-1, 1, 2), torch.Generator().manual_seed(0))
    assert torch.allclose(plan, torch.ones(2, 2), atol=1e-3)


def test_cem_solves_independent_problems_in_one_batch() -> None:
    targets = torch.tensor([[[0.5]], [[-0.5]], [[0.0]]])  # (E, L, A)
    cost = lambda a: (a - targets.unsqueeze(1)).pow(2).sum(dim=(-1, -2))  # noqa: E731  (E,S,L,A)->(E,S)
    plan = CEM().solve_batch(
        cost, 3, 1, ActionBounds.box(-1, 1, 1), torch.Generator().manual_seed(1)
    )
    assert torch.allclose(plan, targets, atol=0.03)


def test_cem_is_deterministic_given_the_generator() -> None:
    cost = lambda a: a.sin().sum(dim=(-1, -2))  # noqa: E731
    b = ActionBounds.box(-1, 1, 3)
    p1 = CEM(CEMConfig(iterations=3)).solve(cost, 4, b, torch.Generator().manual_seed(5))
    p2 = CEM(CEMConfig(iterations=3)).solve(cost, 4, b, torch.Generator().manual_seed(5))
    assert torch.equal(p1, p2)


def test_invalid_settings_are_named() -> None:
    with pytest.raises(ValueError, match="elites"):
        CEMConfig(samples=10, elites=20)
    with pytest.raises(ValueError, match="receding"):
        MPCConfig(horizon=2, receding=3)
    with pytest.raises(ValueError, match="low must be <= high"):
        ActionBounds.box(1, -1, 2)


class PointModel:
    """A known world: the embedding is the 2-D position; a model step takes k=2 env actions of size 2,
    each moving the point by 0.05 * a."""

    step_action_dim = 4

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        return frames.float()[..., 0, 0, :2]  # (B, T, 2) read from pixel (0, 0)

    def rollout(self, z_hist: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        step = 0.05 * (actions[..., :2] + actions[..., 2:])  # (B, L, 2)
        return z_hist[:, -1:] + step.cumsum(dim=1)


@pytest.mark.parametrize("hold", [True, False])
def test_mpc_drives_a_known_model_to_its_goal(hold: bool) -> None:
    model = PointModel()
    assert isinstance(model, WorldModelLike)
    cem = CEM(CEMConfig(samples=100, elites=10, iterations=20))
    mpc = LatentMPC(
        model, cem, MPCConfig(horizon=3, hold=hold), ActionBounds.box(-1, 1, 2), env_action_dim=2
    )
    pos, goal = torch.zeros(1, 2), torch.tensor([[0.25, -0.2]])
    gen = torch.Generator().manual_seed(0)
    for _ in range(6):
        frames = torch.zeros(1, 1, 1, 3)
        frames[..., :2] = pos[:, None, None, :]
        env_actions = mpc.plan(frames, goal, gen)  # (1, k, 2)
        assert env_actions.shape == (1, 2, 2)
        if hold:
            assert torch.equal(env_actions[:, 0], env_actions[:, 1])
        pos = pos + 0.05 * env_actions.sum(dim=1)
    assert torch.dist(pos, goal) < 0.02


def test_latent_goal_cost_prefers_moving_toward_the_goal() -> None:
    goal = torch.tensor([[0.25, -0.2]])
    cost = LatentGoalCost(PointModel(), torch.zeros(1, 1, 2), goal, 0.0, repeat=2)
    toward = torch.tensor([1.0, -1.0]).expand(
        1, 1, 1, 2
    )  # (E, S, L, A), held twice: to (0.1, -0.1)
    away = torch.tensor([-1.0, 1.0]).expand(1, 1, 1, 2)
    assert float(cost(toward)) < float(cost(away))


def test_a_goal_clip_asks_for_where_and_how_fast() -> None:
    """Goal clip (g1, g2): the last two predicted positions must be g1 then g2, so the last held
    action is fixed at (g2 - g1) / 0.1; a goal image g2 alone is met at any speed."""
    model = PointModel()
    mpc = LatentMPC(
        model, CEM(CEMConfig(samples=300, elites=20, iterations=30)), MPCConfig(horizon=3),
        ActionBounds.box(-1, 1, 2), env_action_dim=2,
    )  # fmt: skip
    g1, g2 = torch.tensor([0.05, 0.05]), torch.tensor([0.15, 0.0])
    clip = torch.zeros(1, 2, 1, 1, 3)  # (E, G, H, W, 3): positions written into pixel (0, 0)
    clip[0, 0, 0, 0, :2], clip[0, 1, 0, 0, :2] = g1, g2
    z_goal = mpc.encode_goal(clip)
    assert z_goal.shape == (1, 2, 2)
    cost = LatentGoalCost(model, torch.zeros(1, 1, 2), z_goal, 0.1, repeat=2)
    plan = mpc.planner.solve_batch(
        cost, 1, 3, mpc.bounds, torch.Generator().manual_seed(0)
    )  # (1, L, A)
    path = model.rollout(torch.zeros(1, 1, 2), plan.repeat(1, 1, 2))[0]  # (L, 2)
    assert torch.allclose(path[1], g1, atol=0.01) and torch.allclose(path[2], g2, atol=0.01)
    assert torch.allclose(plan[0, -1], torch.tensor([1.0, -0.5]), atol=0.1)

    # one frame: the same as a goal image; the early steps are compared with the clip's last
    actions = torch.rand(1, 5, 3, 2, generator=torch.Generator().manual_seed(1)) * 2 - 1
    one = LatentGoalCost(model, torch.zeros(1, 1, 2), z_goal[:, 1:], 0.1, repeat=2)(actions)
    image = LatentGoalCost(model, torch.zeros(1, 1, 2), z_goal[:, 1], 0.1, repeat=2)(actions)
    pred = model.rollout(torch.zeros(5, 1, 2), actions[0].repeat(1, 1, 2))  # (S, L, 2)
    dist = (pred - g2).pow(2).sum(-1)  # (S, L)
    assert torch.equal(one, image)
    assert torch.allclose(image[0], dist[:, -1] + 0.1 * dist[:, :-1].mean(dim=1))

    with pytest.raises(ValueError, match="z_goal: a goal clip of 2 frames needs horizon >= 2"):
        LatentGoalCost(model, torch.zeros(1, 1, 2), z_goal, 0.1, repeat=2)(actions[:, :, :1])
    with pytest.raises(ValueError, match="at most the horizon"):
        mpc.encode_goal(torch.zeros(1, 4, 1, 1, 3))


class CoastModel:
    """A point that keeps half its last push: a model step moves it by 0.05 * (a_t + a_{t-1}), so
    where it ends depends on the action before the plan, which only a history shows. Records what
    the planner handed it."""

    step_action_dim = 2

    def __init__(self) -> None:
        self.calls: list[tuple[torch.Tensor, torch.Tensor | None]] = []

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        return frames.float()[..., 0, 0, :2]  # (B, T, 2) read from pixel (0, 0)

    def rollout(
        self, z_hist: torch.Tensor, actions: torch.Tensor, past_actions: torch.Tensor | None = None
    ) -> torch.Tensor:
        self.calls.append((z_hist, past_actions))
        prev = torch.zeros_like(actions[:, :1])  # (B, 1, A): no history, no coasting known
        if past_actions is not None and past_actions.shape[1]:
            prev = past_actions[:, -1:]
        moves = 0.05 * (actions + torch.cat([prev, actions[:, :-1]], dim=1))  # (B, L, A)
        return z_hist[:, -1:] + moves.cumsum(dim=1)


def frames_at(pos: torch.Tensor) -> torch.Tensor:
    """(E, 2) positions -> uint8-like (E, 1, 1, 3) frames holding them in pixel (0, 0)."""
    frames = torch.zeros(pos.shape[0], 1, 1, 3)
    frames[:, 0, 0, :2] = pos
    return frames


def test_history_lets_the_cost_plan_for_a_coasting_point() -> None:
    """The point was pushed by (1, 1) just before the plan. With that action known (two observed
    frames and the action between them) the planned actions land on the goal; from one frame the
    model ignores the coasting, and the same search misses by about the coast, 0.05 * |(1, 1)|."""
    model, goal, prev = CoastModel(), torch.tensor([[0.2, -0.1]]), torch.ones(1, 1, 2)
    z = torch.stack([torch.zeros(2), torch.full((2,), 0.05)])[None]  # (E, T=2, D)
    cem = CEM(CEMConfig(samples=300, elites=20, iterations=30))

    def miss(cost: LatentGoalCost) -> float:
        plan = cem.solve_batch(
            cost, 1, 3, ActionBounds.box(-1, 1, 2), torch.Generator().manual_seed(0)
        )
        true_end = CoastModel().rollout(z, plan, prev)[:, -1]  # (E, D): what the world does
        return float(torch.dist(true_end, goal))

    assert miss(LatentGoalCost(model, z, goal, 0.0, 1, prev)) < 0.01
    assert miss(LatentGoalCost(model, z, goal, 0.0, 1)) > 0.05


def test_history_hands_the_model_past_frames_and_executed_actions() -> None:
    model = CoastModel()
    cem = CEM(CEMConfig(samples=20, elites=5, iterations=2))
    mpc = LatentMPC(model, cem, MPCConfig(horizon=2, history=3), ActionBounds.box(-1, 1, 2), 2)
    goal, gen = torch.ones(2, 2) * 0.2, torch.Generator().manual_seed(0)
    pos = [torch.tensor([[0.0, 0.0], [0.1, 0.0]])]
    acts = []
    for t in range(3):
        acts.append(mpc.plan(frames_at(pos[-1]), goal, gen)[:, 0])  # (2, 2)
        pos.append(pos[-1] + 0.1)
        z_hist, past = model.calls[-1]
        assert z_hist.shape[1] == min(t + 1, 3)  # grows to T = 3, then slides
    # the last call saw frames 0, 1, 2 with the actions executed after frames 0 and 1
    z_hist, past = model.calls[-1]
    assert past is not None
    assert torch.equal(z_hist[::20, :, :], torch.stack(pos[:3], dim=1))  # one row per problem
    assert torch.equal(past[::20], torch.stack(acts[:2], dim=1))
    # problem 0 finishes: the survivor keeps its own history
    mpc.plan(frames_at(pos[3][1:]), goal[1:], gen, keep=torch.tensor([False, True]))
    z_hist, past = model.calls[-1]
    assert torch.equal(z_hist[0], torch.stack([p[1] for p in pos[1:4]]))
    assert torch.equal(past[0], torch.stack([a[1] for a in acts[1:3]]))
    mpc.reset()
    mpc.plan(frames_at(pos[0]), goal, gen)
    assert model.calls[-1][1] is None and model.calls[-1][0].shape[1] == 1


class RecordingPointModel(PointModel):
    """PointModel (k = 2 env actions per model step) that keeps the past actions it is handed."""

    def __init__(self) -> None:
        self.past: list[torch.Tensor | None] = []

    def rollout(
        self, z_hist: torch.Tensor, actions: torch.Tensor, past_actions: torch.Tensor | None = None
    ) -> torch.Tensor:
        self.past.append(past_actions)
        return super().rollout(z_hist, actions)


@pytest.mark.parametrize("hold", [True, False])
def test_history_records_the_model_step_action_the_env_executes(hold: bool) -> None:
    """k = 2: the remembered model-step action is the two env actions just returned, in order."""
    model = RecordingPointModel()
    cem = CEM(CEMConfig(samples=10, elites=3, iterations=2))
    config = MPCConfig(horizon=2, hold=hold, history=2)
    mpc = LatentMPC(model, cem, config, ActionBounds.box(-1, 1, 2), env_action_dim=2)
    goal, gen = torch.full((1, 2), 0.2), torch.Generator().manual_seed(0)
    env_actions = mpc.plan(frames_at(torch.zeros(1, 2)), goal, gen)  # (1, k=2, 2)
    mpc.plan(frames_at(torch.full((1, 2), 0.05)), goal, gen)
    past = model.past[-1]
    assert past is not None and past.shape == (10, 1, 4)  # (E*S, T-1, k*A)
    assert torch.equal(past[0, 0], env_actions.reshape(4))


def test_history_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="history"):
        MPCConfig(history=0)
    with pytest.raises(ValueError, match="needs receding 1"):
        MPCConfig(horizon=3, receding=2, history=2)
    with pytest.raises(ValueError, match="3 observed frames need 2 actions"):
        LatentGoalCost(
            CoastModel(), torch.zeros(1, 3, 2), torch.zeros(1, 2), 0.0, 1, torch.zeros(1, 1, 2)
        )


class DriftModel(PointModel):
    """PointModel in a current: every model step also carries the point +0.3 in x, more than the
    actions (at most 0.1 a step) can undo, so a point ahead in x is passed through, never held."""

    def rollout(self, z_hist: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        pred = super().rollout(z_hist, actions)  # (B, L, 2)
        drift = torch.arange(1, actions.shape[1] + 1, dtype=pred.dtype) * 0.3  # (L,)
        return pred + torch.stack([drift, torch.zeros_like(drift)], dim=-1)


def test_goal_at_any_step_reaches_a_goal_the_horizon_passes_through() -> None:
    model, start, g = DriftModel(), torch.zeros(1, 1, 2), torch.Generator().manual_seed(0)
    goal = torch.tensor([[0.3, 0.05]])  # (E, D): one step of current, then it is left behind
    bounds, cem = ActionBounds.box(-1, 1, 2), CEM(CEMConfig(samples=300, elites=20, iterations=30))

    def closest(goal_at: str) -> float:
        cost = LatentGoalCost(model, start, goal, 0.1, repeat=2, goal_at=goal_at)
        plan = cem.solve_batch(cost, 1, 5, bounds, g)  # (1, L, A)
        path = model.rollout(start, plan.repeat(1, 1, 2))[0]  # (L, 2)
        return float((path - goal).norm(dim=-1).min())

    assert closest("any") < 0.01  # it steers through the goal on the way
    assert closest("end") > 0.05  # aiming to end there, it never comes near it

    # the cost is the least squared distance over the horizon, intermediate weight unused
    actions = torch.rand(1, 4, 5, 2, generator=torch.Generator().manual_seed(1)) * 2 - 1
    any_cost = LatentGoalCost(model, start, goal, 0.1, repeat=2, goal_at="any")(actions)
    pred = model.rollout(torch.zeros(4, 1, 2), actions[0].repeat(1, 1, 2))  # (S, L, 2)
    assert torch.allclose(any_cost[0], (pred - goal).pow(2).sum(-1).min(dim=1).values)

    # a goal clip of G frames: the least mean over every G consecutive predicted steps, in order
    clip = torch.tensor([[[0.3, 0.05], [0.6, 0.0], [0.9, -0.05]]])  # (E, G, D)
    clip_cost = LatentGoalCost(model, start, clip, 0.1, repeat=2, goal_at="any")(actions)
    windows = [
        sum((pred[:, w + k] - clip[0, k]).pow(2).sum(-1) for k in range(3)) / 3 for w in range(3)
    ]  # L - G + 1 = 3 windows, each (S,)
    assert torch.allclose(clip_cost[0], torch.stack(windows, dim=1).min(dim=1).values)

    with pytest.raises(ValueError, match="goal_at: must be end or any"):
        LatentGoalCost(model, start, goal, 0.1, goal_at="nearest")
    with pytest.raises(ValueError, match="goal_at"):
        MPCConfig(goal_at="nearest")  # type: ignore[arg-type]


class StridePointModel(PointModel):
    """PointModel whose model step holds k=5 env actions (frame_stride 5, as PushT's)."""

    step_action_dim = 10

    def rollout(self, z_hist: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        step = 0.05 * actions.reshape(*actions.shape[:2], 5, 2).sum(dim=2)  # (B, L, 2)
        return z_hist[:, -1:] + step.cumsum(dim=1)


def test_executing_one_env_step_replans_sooner_and_keeps_the_warm_start_in_place() -> None:
    cem = CEM(CEMConfig(samples=50, elites=5, iterations=3))
    mpc = LatentMPC(
        StridePointModel(), cem, MPCConfig(horizon=3, execute=1), ActionBounds.box(-1, 1, 2), 2
    )
    plan_calls = recording(cem)
    acts = mpc.plan(torch.zeros(2, 1, 1, 3), torch.ones(2, 2), torch.Generator().manual_seed(0))
    assert acts.shape == (2, 1, 2)  # one env step each, the first of the held model step
    assert torch.equal(acts[:, 0], plan_calls[0][:, 0])
    assert mpc.warm is not None and torch.equal(mpc.warm, plan_calls[0])  # 1 of 5: not shifted
    whole = LatentMPC(StridePointModel(), cem, MPCConfig(horizon=3), ActionBounds.box(-1, 1, 2), 2)
    held = whole.plan(torch.zeros(2, 1, 1, 3), torch.ones(2, 2), torch.Generator())
    assert held.shape == (2, 5, 2)  # the whole model step
    assert whole.warm is not None and torch.equal(whole.warm[:, :2], plan_calls[1][:, 1:])


def recording(cem: CEM) -> list[torch.Tensor]:
    """The plans `cem.solve_batch` returns from now on, in order."""
    plans: list[torch.Tensor] = []
    solve = cem.solve_batch

    def record(*args, **kwargs) -> torch.Tensor:
        plans.append(solve(*args, **kwargs))
        return plans[-1]

    cem.solve_batch = record  # type: ignore[method-assign]
    return plans


@pytest.mark.parametrize("execute, shift", [(2, 0), (3, 1), (7, 1), (8, 2)])
def test_a_held_plans_warm_start_shifts_by_the_nearest_whole_model_steps(
    execute: int, shift: int
) -> None:
    cem = CEM(CEMConfig(samples=20, elites=4, iterations=2))
    config = MPCConfig(horizon=3, receding=2, execute=execute)
    mpc = LatentMPC(StridePointModel(), cem, config, ActionBounds.box(-1, 1, 2), 2)
    plans = recording(cem)
    acts = mpc.plan(torch.zeros(1, 1, 1, 3), torch.ones(1, 2), torch.Generator().manual_seed(0))
    assert torch.equal(acts, plans[0].repeat_interleave(5, dim=1)[:, :execute])  # (1, execute, 2)
    assert mpc.warm is not None and torch.equal(mpc.warm[:, : 3 - shift], plans[0][:, shift:])
    assert torch.equal(mpc.warm[:, 3 - shift :], torch.zeros(1, shift, 2))  # the box's middle


def test_a_per_step_plans_warm_start_shifts_by_exactly_the_env_steps_executed() -> None:
    cem = CEM(CEMConfig(samples=20, elites=4, iterations=2))
    config = MPCConfig(horizon=2, hold=False, execute=3)
    mpc = LatentMPC(StridePointModel(), cem, config, ActionBounds.box(-1, 1, 2), 2)
    plans = recording(cem)
    acts = mpc.plan(torch.zeros(1, 1, 1, 3), torch.ones(1, 2), torch.Generator().manual_seed(0))
    flat = plans[0].reshape(1, 10, 2)  # (E, L*k, A): 2 model steps of 5 env actions
    assert torch.equal(acts, flat[:, :3])
    assert mpc.warm is not None and mpc.warm.shape == (1, 2, 10)
    warm = mpc.warm.reshape(1, 10, 2)
    assert torch.equal(warm[:, :7], flat[:, 3:]) and torch.equal(warm[:, 7:], torch.zeros(1, 3, 2))


def test_replanning_every_env_step_corrects_a_model_that_undershoots() -> None:
    """The world moves the point twice as far as the model predicts: executing a whole held model
    step lands it past the goal and back again, replanning after each env step homes in."""

    def final_distance(execute: int, seed: int) -> float:
        cem = CEM(CEMConfig(samples=100, elites=10, iterations=10))
        config = MPCConfig(horizon=3, execute=execute)
        mpc = LatentMPC(StridePointModel(), cem, config, ActionBounds.box(-1, 1, 2), 2)
        pos, goal = torch.zeros(1, 2), torch.tensor([[0.3, -0.2]])
        gen, steps = torch.Generator().manual_seed(seed), 0
        while steps < 20:
            frames = torch.zeros(1, 1, 1, 3)
            frames[..., :2] = pos[:, None, None, :]
            for a in mpc.plan(frames, goal, gen)[0]:
                pos, steps = pos + 0.05 * 2.0 * a, steps + 1
        return torch.dist(pos, goal).item()

    whole = sum(final_distance(0, seed) for seed in range(4))
    every_step = sum(final_distance(1, seed) for seed in range(4))
    assert every_step < 0.5 * whole


def test_execute_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="execute: must be >= 0"):
        MPCConfig(execute=-1)
    with pytest.raises(ValueError, match="execute: needs history 1"):
        MPCConfig(horizon=3, history=2, execute=1)
    with pytest.raises(ValueError, match="execute: 6 env steps are more than a plan executes"):
        LatentMPC(StridePointModel(), CEM(), MPCConfig(execute=6), ActionBounds.box(-1, 1, 2), 2)
