from __future__ import annotations

import numpy as np
import pytest
import torch

from jepaworld.data.augment import turn_actions, turn_frames, turn_states
from jepaworld.envs.pusht import turn_state
from jepaworld.models.turned import TurnedViews
from jepaworld.models.world_model import WorldModel
from jepaworld.planning.protocols import WorldModelLike
from tests.conftest import random_clip, tiny_model


def _model(**overrides) -> WorldModel:
    torch.manual_seed(0)
    return WorldModel(tiny_model(**overrides)).eval()


@torch.no_grad()
def test_the_cost_in_turned_looks_is_the_sum_of_each_looks_own_cost() -> None:
    """What a planner relies on: the squared distance of a rollout to a goal, both in the turned
    looks, is the sum over looks g of the model's distance with frames and actions turned by g."""
    model = _model()
    views = TurnedViews(model, elements=(0, 3, 5))
    assert isinstance(views, WorldModelLike) and views.step_action_dim == model.step_action_dim
    frames, actions = random_clip(model)
    z, goal = views.encode(frames[:, :1]), views.encode(frames[:, 1:])  # (B, 1, 3 * D)
    D = model.config.latent_dim
    assert z.shape == (3, 1, 3 * D)
    cost = (views.rollout(z, actions)[:, -1] - goal[:, 0]).pow(2).sum(-1)  # (B,)
    own = []
    for g in (0, 3, 5):
        seen = turn_frames(frames, g)
        zg, gg = model.encode(seen[:, :1]), model.encode(seen[:, 1:])
        pred = model.rollout(zg, turn_actions(actions, g))[:, -1]  # (B, D)
        own.append((pred - gg[:, 0]).pow(2).sum(-1))  # (B,)
    assert torch.allclose(cost, sum(own), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(own[0], own[1])  # an untrained model's looks disagree


@torch.no_grad()
def test_a_history_and_proprioception_turn_with_each_look() -> None:
    model = _model(proprio=(0, 1), action_dim=2)
    model.set_proprio_stats(torch.rand(50, 5) * 512)
    views = TurnedViews(model, elements=(0, 6), turn=turn_state)
    frames, actions = random_clip(model)
    states = torch.rand(3, 2, 5, dtype=torch.float64) * 512  # (B, T, S): PushT's state
    past = torch.rand(3, 1, model.step_action_dim) * 2 - 1  # (B, T-1, A')
    pred = views.rollout(views.encode(frames, states.float()), actions, past)  # (B, L, 2D)
    for g, part in zip((0, 6), pred.chunk(2, dim=-1), strict=True):
        seen = turn_states(states.float(), g, turn_state)
        z = model.encode(turn_frames(frames, g), seen)
        own = model.rollout(z, turn_actions(actions, g), turn_actions(past, g))
        assert torch.allclose(part, own, atol=1e-5)
    assert not np.allclose(turn_states(states, 6, turn_state).numpy(), states.numpy())
    with pytest.raises(ValueError, match="width"):
        views.rollout(model.encode(frames, states.float()), actions, past)


def test_bad_looks_and_a_missing_state_rule_are_refused() -> None:
    model = _model()
    for bad in ((), (0, 0), (8,), (-1,)):
        with pytest.raises(ValueError, match="turned views"):
            TurnedViews(model, elements=bad)
    with pytest.raises(ValueError, match="DIHEDRAL_ENVS"):
        TurnedViews(_model(proprio=(0, 1), action_dim=2))
