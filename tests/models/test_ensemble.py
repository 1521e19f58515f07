from __future__ import annotations

import pytest
import torch

from jepaworld.models.ensemble import Ensemble
from jepaworld.models.world_model import WorldModel
from jepaworld.planning.protocols import WorldModelLike
from tests.conftest import random_clip, tiny_model


def _members(*embed_dims: int) -> list[WorldModel]:
    members = []
    for seed, D in enumerate(embed_dims):
        torch.manual_seed(seed)
        members.append(WorldModel(tiny_model(embed_dim=D)).eval())
    return members


@torch.no_grad()
def test_a_latent_cost_on_the_ensemble_is_the_weighted_sum_of_its_members_costs() -> None:
    """What the planners rely on: the squared distance of an ensemble rollout to an ensemble goal
    embedding is sum_m w_m * (member m's own distance), members of different widths included."""
    members, weights = _members(16, 8), [2.0, 0.5]
    ens = Ensemble(members, weights)
    assert isinstance(ens, WorldModelLike) and ens.step_action_dim == members[0].step_action_dim
    frames, actions = random_clip(members[0])
    z, goal = ens.encode(frames[:, :1]), ens.encode(frames[:, 1:])  # (B, 1, 24) each
    assert z.shape == (3, 1, 24)
    cost = (ens.rollout(z, actions)[:, -1] - goal[:, 0]).pow(2).sum(-1)  # (B,)
    own = []
    for m in members:
        zm, gm = m.encode(frames[:, :1]), m.encode(frames[:, 1:])
        own.append((m.rollout(zm, actions)[:, -1] - gm[:, 0]).pow(2).sum(-1))  # (B,)
    expected = weights[0] * own[0] + weights[1] * own[1]
    assert torch.allclose(cost, expected, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(own[0], own[1])  # the members do disagree


@torch.no_grad()
def test_each_member_rolls_out_from_its_own_slice_with_a_history() -> None:
    members, weights = _members(16, 8), [2.0, 0.5]
    ens = Ensemble(members, weights)
    frames, actions = random_clip(members[0], T=2)
    past = torch.rand(3, 1, members[0].step_action_dim)  # (B, T-1, A')
    pred = ens.rollout(ens.encode(frames), actions, past)  # (B, L, 24)
    for m, w, part in zip(members, weights, pred.split([16, 8], dim=-1), strict=True):
        own = m.rollout(m.encode(frames), actions, past)  # (B, L, D_m)
        assert torch.allclose(part, own * w**0.5, atol=1e-5)
    with pytest.raises(ValueError, match="width 16, expected 24"):
        ens.rollout(members[0].encode(frames), actions, past)


def test_members_that_cannot_share_frames_and_actions_are_refused() -> None:
    torch.manual_seed(0)
    a, b = WorldModel(tiny_model()), WorldModel(tiny_model(frame_stride=2))
    with pytest.raises(ValueError, match="member 1: frame_stride"):
        Ensemble([a, b])
    with pytest.raises(ValueError, match="at least 2 members"):
        Ensemble([a])
    for other in (tiny_model(image_size=32), tiny_model(action_dim=3)):
        name = "image_size" if other.image_size != a.config.image_size else "action_dim"
        with pytest.raises(ValueError, match=f"member 1: {name}"):
            Ensemble([a, WorldModel(other)])
    same = WorldModel(tiny_model())
    with pytest.raises(ValueError, match="one positive weight per member"):
        Ensemble([a, same], [1.0, 0.0])
    with pytest.raises(ValueError, match="one positive weight per member"):
        Ensemble([a, same], [1.0])
