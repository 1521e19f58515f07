"""jepaworld/PushT-v0: DINO-WM's success criterion, relative actions, goals, the scripted pusher."""

from __future__ import annotations

import builtins
import math
from pathlib import Path

import numpy as np
import pytest

from jepaworld.envs.geometry import angle_error
from jepaworld.envs.gym_adapter import GoalState, make_pixel_env
from jepaworld.envs.pusht import pusht_errors, pusht_success, turn_state

GOAL = np.array([100.0, 100.0, 300.0, 300.0, 1.0])


def test_success_criterion_on_hand_made_states() -> None:
    assert pusht_success(GOAL, GOAL) == (0.0, True)
    # 12 px agent + 15 px block: L2 19.2 < 20, inside; 13 + 16: 20.6, outside
    near = GOAL + [12.0, 0.0, 0.0, 15.0, 0.0]
    far = GOAL + [13.0, 0.0, 0.0, 16.0, 0.0]
    assert pusht_success(near, GOAL)[1] and not pusht_success(far, GOAL)[1]
    assert pusht_success(far, GOAL)[0] == pytest.approx(math.hypot(13, 16))
    # the angle: within pi/9 (20 degrees), wrapped across 0 / 2 pi
    assert pusht_success(GOAL + [0, 0, 0, 0, math.radians(19)], GOAL)[1]
    assert not pusht_success(GOAL + [0, 0, 0, 0, math.radians(21)], GOAL)[1]
    wrapped = np.array([*GOAL[:4], 2 * math.pi - 0.1])
    assert pusht_success(wrapped, [*GOAL[:4], 0.1])[1]
    assert angle_error(0.1, 2 * math.pi - 0.1) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="5 entries"):
        pusht_success(GOAL[:4], GOAL)


def test_errors_name_the_part_of_the_goal_missed() -> None:
    state = GOAL + [3.0, 4.0, -6.0, 8.0, 0.0]
    state[4] = 2 * math.pi + GOAL[4] - 0.3  # wrapped: 0.3 rad off
    pusher, block, angle = pusht_errors(state, GOAL)
    assert (pusher, block) == (pytest.approx(5.0), pytest.approx(10.0))
    assert angle == pytest.approx(0.3)
    assert pusht_success(state, GOAL)[0] == pytest.approx(math.hypot(pusher, block))
    with pytest.raises(ValueError, match="5 entries"):
        pusht_errors(GOAL, GOAL[:3])


pytest.importorskip("gym_pusht", reason="needs the [pusht] extra")


def test_pusht_observes_frames_and_moves_by_relative_actions() -> None:
    env = make_pixel_env("jepaworld/PushT-v0", 48)
    obs, info = env.reset(seed=0, options={"start": [100, 100, 300, 300, 0.0]})
    assert obs.shape == (48, 48, 3) and obs.dtype == np.uint8 and obs.std() > 0
    assert np.allclose(info["state"][:2], [100, 100])
    for _ in range(5):
        obs, _, _, _, info = env.step(np.array([1.0, 0.0], np.float32))
    moved = info["state"][:2] - np.array([100, 100])
    assert 40 < moved[0] < 120 and abs(moved[1]) < 1  # ~16 px per step to the right, no drift
    assert np.allclose(info["state"][2:], [300, 300, 0.0], atol=1e-3)  # block untouched
    env.close()


def test_goal_option_renders_the_goal_and_success_ends_the_episode() -> None:
    env = make_pixel_env("jepaworld/PushT-v0", 64)
    start = np.array([100.0, 100.0, 300.0, 300.0, 0.5])
    goal = start + [30.0, 0.0, 0.0, 0.0, 0.0]  # only the agent moves: 30 px to the right
    obs, info = env.reset(seed=0, options={"start": start, "goal": goal})
    assert not info["success"] and info["distance"] == pytest.approx(30.0, abs=0.5)
    assert not np.array_equal(obs, info["goal"])
    assert np.array_equal(env.unwrapped.render_state(start), obs)
    for _ in range(10):
        obs, reward, terminated, _, info = env.step(np.array([0.3, 0.0], np.float32))
        if terminated:
            break
    assert terminated and info["success"] and reward == -info["distance"]
    with pytest.raises(ValueError, match=r"options\['goal'\]: a PushT state is 5"):
        env.reset(options={"goal": [1, 2]})
    with pytest.raises(ValueError, match="unknown options"):
        env.reset(options={"target": goal})
    env.close()


def test_goal_state_wrapper_applies_the_angle_condition() -> None:
    env = make_pixel_env("jepaworld/PushT-v0", 32)
    start = np.array([100.0, 100.0, 300.0, 300.0, 0.5], np.float32)
    frame = np.zeros((32, 32, 3), np.uint8)
    turned = start + np.array([0, 0, 0, 0, 0.5], np.float32)  # same place, block turned 0.5 rad
    wrapped = GoalState(env, frame, turned, 4, 20.0, angle_dim=4, angle_tolerance=math.pi / 9)
    _, info = wrapped.reset(seed=0, options={"start": start})
    assert info["distance"] == pytest.approx(0.0, abs=1e-3) and not info["success"]
    lenient = GoalState(env, frame, turned, 4, 20.0)  # no angle condition
    assert lenient.reset(seed=0, options={"start": start})[1]["success"]
    assert "goal_clip" not in info
    clip = np.stack([frame + 1, frame])  # (G, H, W, 3), ending with the goal frame
    moving = GoalState(env, frame, turned, 4, 20.0, goal_clip=clip)
    assert np.array_equal(moving.reset(seed=0, options={"start": start})[1]["goal_clip"], clip)
    with pytest.raises(ValueError, match="ending with goal_frame"):
        GoalState(env, frame, turned, 4, 20.0, goal_clip=clip[::-1])
    env.close()


def test_scripted_pusher_moves_the_block_far_more_than_random_actions() -> None:
    from jepaworld.data.collect import PersistentRandomPolicy

    def block_travel(scripted: bool, seed: int) -> float:
        env = make_pixel_env("jepaworld/PushT-v0", 16)
        _, info = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        policy = (
            env.unwrapped.scripted_policy(rng, 0.1)
            if scripted
            else PersistentRandomPolicy(env.action_space, 0.9, 0.1, rng)
        )
        travel, last = 0.0, info["state"][2:4]
        for _ in range(60):
            _, _, _, _, info = env.step(policy())
            travel += float(np.linalg.norm(info["state"][2:4] - last))
            last = info["state"][2:4]
        env.close()
        return travel

    scripted = sum(block_travel(True, s) for s in range(3))
    random = sum(block_travel(False, s) for s in range(3))
    assert scripted > 100 and scripted > 3 * random


def test_collect_uses_the_scripted_policy_and_records_it(tmp_path: Path) -> None:
    from jepaworld.data.collect import CollectConfig, collect

    cfg = CollectConfig(out=tmp_path / "d", env="jepaworld/PushT-v0", episodes=1, episode_length=5)
    manifest = collect(cfg)
    assert manifest["policy"] == {"name": "scripted", "noise": 0.1}
    assert manifest["frame_shape"] == [64, 64, 3] and manifest["action_low"] == [-1.0, -1.0]
    with pytest.raises(ValueError, match="--policy scripted: Pendulum-v1 has no scripted"):
        collect(CollectConfig(out=tmp_path / "p", env="Pendulum-v1", episodes=1, policy="scripted"))
    assert not (tmp_path / "p").exists()


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_gym_pusht(name: str, *args, **kwargs):
        if name.startswith("gym_pusht"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_gym_pusht)
    with pytest.raises(ImportError, match=r"jepaworld\[pusht\]"):
        make_pixel_env("jepaworld/PushT-v0", 64)


def test_pusht_is_dihedral_symmetric_in_the_frames_axes() -> None:
    """What `--augment dihedral` assumes of PushT (jepaworld.envs.DIHEDRAL_ENVS): frames put the
    canvas x along the columns and y down the rows, and a turned or mirrored world with turned
    actions moves as the original, turned (to within contact's sensitivity to rounding)."""
    from jepaworld.data.augment import ELEMENTS, element_matrix
    from jepaworld.envs import DIHEDRAL_ENVS, PUSHT_ID

    assert PUSHT_ID in DIHEDRAL_ENVS
    env = make_pixel_env(PUSHT_ID, 64)
    frame, _ = env.reset(options={"start": np.array([100.0, 400.0, 380.0, 120.0, 0.0])})
    blue = (frame[..., 2] > 150) & (frame[..., 0] < 120) & (frame[..., 1] < 150)  # the pusher
    rows, cols = np.nonzero(blue)
    assert abs(cols.mean() * 8 + 4 - 100) < 8 and abs(rows.mean() * 8 + 4 - 400) < 8

    def run(start: np.ndarray, actions: list[np.ndarray]) -> np.ndarray:
        _, info = env.reset(options={"start": start})
        for a in actions:
            _, _, _, _, info = env.step(a)
        return info["state"]

    pusher_errors, contact = [], []  # contact: (block px, angle rad) errors of clips with a push
    for seed in range(2):
        _, info = env.reset(seed=seed)
        policy = env.unwrapped.scripted_policy(np.random.default_rng(seed), 0.1)
        for _ in range(6):  # 6 clips of 5 steps along a scripted episode
            start, actions = info["state"], [policy() for _ in range(5)]
            end = run(start, actions)
            pushed = np.linalg.norm(end[2:4] - start[2:4]) > 10
            for g in range(1, len(ELEMENTS)):
                m = element_matrix(g).numpy().astype(np.float64)
                got = run(turn_state(start, m), [m @ a for a in actions])
                want = turn_state(end, m)
                pusher_errors.append(np.linalg.norm(got[:2] - want[:2]))
                if pushed:
                    contact.append(
                        (np.linalg.norm(got[2:4] - want[2:4]), angle_error(got[4], want[4]))
                    )
            _, info = env.reset(options={"start": end})
    env.close()
    assert len(contact) >= 2 * 7, "too few clips with a push to judge"
    assert np.max(pusher_errors) < 0.5
    block, angle = np.median(np.array(contact), axis=0)  # contact is chaotic: a few clips diverge
    assert block < 2.0 and angle < math.radians(1.0), (block, math.degrees(angle))


def test_turn_state_moves_positions_and_turns_or_mirrors_the_angle() -> None:
    quarter = np.array([[0.0, -1.0], [1.0, 0.0]])  # (x, y) -> (-y, x): a quarter turn
    mirror = np.diag([-1.0, 1.0])  # x -> -x
    s = np.array([266.0, 256.0, 256.0, 286.0, 0.5])
    assert np.allclose(turn_state(s, quarter), [256.0, 266.0, 226.0, 256.0, 0.5 + math.pi / 2])
    assert np.allclose(turn_state(s, mirror), [246.0, 256.0, 256.0, 286.0, 2 * math.pi - 0.5])
    both = turn_state(np.stack([s, s]), quarter)  # (2, 5): batched
    assert both.shape == (2, 5) and np.allclose(both[0], both[1])


def test_a_placed_state_is_drawn_where_it_is() -> None:
    """A start or goal state's frame (before any step) shows the T where one step at rest draws it:
    a turned block used to be drawn where gym-pusht's own reset had left it, tens of px away."""
    from jepaworld.envs.pusht import PushTEnv

    env = PushTEnv()
    state = np.array([100.0, 400.0, 300.0, 250.0, 2.0])
    drawn = env.render_state(state).astype(int)
    first, _ = env.reset(options={"start": state})
    after, _, _, _, info = env.step(np.zeros(2, np.float32))  # at rest: nothing moves
    env.close()
    assert np.allclose(info["state"], state, atol=1e-3)
    for frame in (drawn, first.astype(int)):
        assert (np.abs(frame - after.astype(int)).max(-1) > 30).sum() < 10
