"""Dihedral augmentation: frames and actions turned the same way, reproducibly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jepaworld.data.augment import (
    ELEMENTS,
    augment_batch,
    element_matrix,
    turn_actions,
    turn_frames,
    turn_states,
)


def _dot(n: int, x: int, y: int) -> torch.Tensor:
    frame = torch.zeros(n, n, 3, dtype=torch.uint8)  # (H, W, C): rows are y, columns x
    frame[y, x] = 255
    return frame


def _where(frame: torch.Tensor) -> tuple[int, int]:
    y, x = (frame[..., 0] == 255).nonzero()[0].tolist()
    return x, y


@pytest.mark.parametrize("g", range(len(ELEMENTS)))
def test_a_motion_seen_in_turned_frames_is_the_turned_action(g: int) -> None:
    n, c = 9, 4.0  # centre of a 9 px frame
    start, move = (1, 2), (3, -1)  # a dot moves by the action (x, y)
    clip = torch.stack([_dot(n, *start), _dot(n, start[0] + move[0], start[1] + move[1])])
    turned = turn_frames(clip, g)  # (T, H, W, C)
    m = element_matrix(g)
    expect = m @ torch.tensor([start[0] - c, start[1] - c]) + c
    assert _where(turned[0]) == tuple(int(v) for v in expect.tolist())
    seen = torch.tensor(_where(turned[1])) - torch.tensor(_where(turned[0]))
    action = turn_actions(torch.tensor([float(move[0]), float(move[1])]), g)
    assert seen.tolist() == action.round().int().tolist()


def test_the_eight_turns_are_distinct_and_each_undone_by_one_of_them() -> None:
    frame = torch.arange(4 * 4 * 3).reshape(4, 4, 3)  # no symmetry of its own
    turned = [turn_frames(frame, g) for g in range(len(ELEMENTS))]
    assert len({tuple(t.flatten().tolist()) for t in turned}) == 8
    assert torch.equal(turned[0], frame)  # element 0 is the identity
    for t in turned:
        assert any(torch.equal(turn_frames(t, h), frame) for h in range(8))


def test_macro_actions_turn_each_raw_action() -> None:
    a = torch.tensor([[1.0, 2.0, -3.0, 0.5]])  # (1, k * 2): two raw actions
    for g in range(8):
        m = element_matrix(g)
        assert torch.allclose(turn_actions(a, g)[0, :2], m @ a[0, :2])
        assert torch.allclose(turn_actions(a, g)[0, 2:], m @ a[0, 2:])
    with pytest.raises(ValueError, match="2-D actions"):
        turn_actions(torch.zeros(2, 3), 1)
    with pytest.raises(ValueError, match="square frames"):
        turn_frames(torch.zeros(4, 6, 3), 1)


def test_augment_batch_turns_each_clip_and_its_actions_by_one_element() -> None:
    B, T = 64, 3
    frames = torch.randint(0, 255, (B, T, 6, 6, 3), dtype=torch.uint8)
    actions = torch.randn(B, T - 1, 4)
    batch = {"frames": frames, "actions": actions, "has_actions": torch.ones(B, dtype=torch.bool)}
    out = augment_batch(batch, torch.Generator().manual_seed(3))
    again = augment_batch(batch, torch.Generator().manual_seed(3))
    assert torch.equal(out["frames"], again["frames"]) and torch.equal(
        out["actions"], again["actions"]
    )
    assert out["has_actions"] is batch["has_actions"]
    used = set()
    for i in range(B):
        g = next(g for g in range(8) if torch.equal(turn_frames(frames[i], g), out["frames"][i]))
        assert torch.allclose(out["actions"][i], turn_actions(actions[i], g))
        used.add(g)
    assert len(used) > 4  # 64 draws of 8 elements
    assert torch.equal(batch["frames"], frames)  # the input batch is left as it was
    with pytest.raises(ValueError, match="cannot turn these state vectors.*no rule"):
        augment_batch({**batch, "states": torch.zeros(B, T, 5)}, torch.Generator())


def _turn_xy_about_4(states: np.ndarray, m: np.ndarray) -> np.ndarray:
    """A world's rule for the tests: entries 0 and 1 are a position in a 9 px frame (centre 4),
    entry 2 a speed no turn changes."""
    xy = (states[..., :2] - 4.0) @ m.T + 4.0
    return np.concatenate([xy, states[..., 2:]], axis=-1)


def test_augment_batch_turns_state_vectors_by_the_worlds_rule_with_their_clip() -> None:
    B, T, n = 32, 2, 9
    xy = torch.randint(0, n, (B, T, 2))
    frames = torch.stack([torch.stack([_dot(n, *p.tolist()) for p in clip]) for clip in xy])
    states = torch.cat([xy.float(), torch.rand(B, T, 1)], dim=-1)  # (B, T, 3)
    batch = {"frames": frames, "actions": torch.randn(B, T - 1, 2), "states": states}
    out = augment_batch(batch, torch.Generator().manual_seed(1), _turn_xy_about_4)
    assert out["states"].dtype == states.dtype and torch.equal(batch["states"], states)
    turned = 0
    for i in range(B):
        for t in range(T):  # the dot in the turned frame is where the turned state puts it
            assert _where(out["frames"][i, t]) == tuple(out["states"][i, t, :2].int().tolist())
        assert torch.equal(out["states"][i, :, 2], states[i, :, 2])
        turned += not torch.equal(out["states"][i], states[i])
    assert turned > B // 2  # 7 of the 8 elements move some dot
    again = augment_batch(batch, torch.Generator().manual_seed(1), _turn_xy_about_4)
    assert torch.equal(out["states"], again["states"])


def test_a_rule_that_changes_the_state_width_is_refused() -> None:
    with pytest.raises(ValueError, match=r"state turn gave shape \(2, 2\) for states \(2, 3\)"):
        turn_states(torch.zeros(2, 3), 1, lambda s, m: s[..., :2])


def test_action_free_clips_are_turned_without_actions() -> None:
    frames = torch.randint(0, 255, (8, 2, 4, 4, 3), dtype=torch.uint8)
    out = augment_batch({"frames": frames, "actions": torch.zeros(8, 1, 0)}, torch.Generator())
    assert out["actions"].shape == (8, 1, 0)


def test_null_action_clips_keep_their_zero_actions_and_flags() -> None:
    frames = torch.randint(0, 255, (16, 2, 4, 4, 3), dtype=torch.uint8)
    batch = {
        "frames": frames,
        "actions": torch.zeros(16, 1, 4),
        "has_actions": torch.zeros(16, dtype=torch.bool),
    }
    out = augment_batch(batch, torch.Generator().manual_seed(0))
    assert torch.equal(out["actions"], batch["actions"]) and not out["has_actions"].any()
    assert not torch.equal(out["frames"], frames)  # 16 clips: some were turned
