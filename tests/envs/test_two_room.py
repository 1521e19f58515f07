"""Behaviour of the Two-Room environment and its geometry helpers."""

from __future__ import annotations

import math

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from jepaworld.envs import TwoRoomConfig, TwoRoomEnv  # importing registers the gym id
from jepaworld.envs.two_room import (
    is_free,
    render_scene,
    sample_free_position,
    shortest_path_steps,
    straight_line_action,
)

CFG = TwoRoomConfig()
WALL_LEFT = CFG.wall_x - CFG.wall_thickness / 2  # 30
WALL_RIGHT = CFG.wall_x + CFG.wall_thickness / 2  # 34
DOOR_TOP = CFG.door_y - CFG.door_height / 2  # 24


def run(env: TwoRoomEnv, action: tuple[float, float], steps: int) -> dict:
    info: dict = {}
    for _ in range(steps):
        *_, info = env.step(np.array(action, dtype=np.float32))
    return info


def test_passes_gymnasium_env_checker() -> None:
    check_env(TwoRoomEnv())
    check_env(gymnasium.make("jepaworld/TwoRoom-v0").unwrapped)


def test_make_passes_config_overrides_and_rejects_unknown_ones() -> None:
    env = gymnasium.make("jepaworld/TwoRoom-v0", size=64, door_y=20.0)
    assert env.unwrapped.config == TwoRoomConfig(door_y=20.0)
    with pytest.raises(TypeError, match="door_width"):
        gymnasium.make("jepaworld/TwoRoom-v0", door_width=3.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [("door_height", 6.0), ("agent_radius", 0.0), ("wall_x", 5.0), ("door_y", 60.0), ("size", 4)],
)
def test_invalid_config_names_the_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        TwoRoomConfig(**{field: value})


def test_shapes_dtypes_and_goal_image() -> None:
    env = TwoRoomEnv()
    obs, info = env.reset(seed=3)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert env.observation_space.contains(obs)
    assert info["state"].shape == (2,) and info["state"].dtype == np.float32
    assert info["goal_state"].shape == (2,) and info["goal_state"].dtype == np.float32
    assert info["goal"].shape == (64, 64, 3) and info["goal"].dtype == np.uint8
    assert isinstance(info["distance"], float) and isinstance(info["success"], bool)
    assert info["distance"] > CFG.success_radius and not info["success"]
    assert not np.array_equal(info["goal"], obs)
    np.testing.assert_array_equal(info["goal"], render_scene(CFG, info["goal_state"]))
    np.testing.assert_array_equal(obs, render_scene(CFG, info["state"]))
    np.testing.assert_array_equal(env.render(), obs)


def test_observations_are_fresh_arrays() -> None:
    env = TwoRoomEnv()
    obs, info = env.reset(seed=0)
    obs[:] = 0
    info["goal"][:] = 0
    assert env.render().any()
    assert env.step(np.zeros(2, np.float32))[4]["goal"].any()
    assert render_scene(CFG, (10.0, 10.0)).flags.writeable


def test_same_seed_same_episode_different_seed_different_start() -> None:
    a, b = TwoRoomEnv(), TwoRoomEnv()
    obs_a, info_a = a.reset(seed=7)
    obs_b, info_b = b.reset(seed=7)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(info_a["goal_state"], info_b["goal_state"])
    action = np.array([0.3, -0.8], np.float32)
    np.testing.assert_array_equal(a.step(action)[0], b.step(action)[0])
    _, info_c = b.reset(seed=8)
    assert not np.array_equal(info_a["state"], info_c["state"])


def test_wall_blocks_outside_the_door_even_at_high_speed() -> None:
    for speed in (2.0, 12.0):  # 12 px per step is 3x the wall thickness: no tunnelling
        env = TwoRoomEnv(speed=speed)
        env.reset(options={"start": (10.0, 8.0), "goal": (50.0, 8.0)})
        info = run(env, (1.0, 0.0), 50)
        assert info["state"][0] < WALL_LEFT - CFG.agent_radius + 1e-6
        assert info["state"][1] == pytest.approx(8.0)


def test_agent_passes_through_the_door() -> None:
    env = TwoRoomEnv()
    env.reset(options={"start": (10.0, CFG.door_y), "goal": (54.0, 54.0)})
    info = run(env, (1.0, 0.0), 50)
    assert info["state"][0] > WALL_RIGHT + CFG.agent_radius


def test_diagonal_push_into_the_wall_slides_along_it() -> None:
    env = TwoRoomEnv()
    env.reset(options={"start": (WALL_LEFT - CFG.agent_radius - 0.5, 50.0), "goal": (10, 10)})
    info = run(env, (1.0, -1.0), 5)
    assert info["state"][1] == pytest.approx(50.0 - 5 * CFG.speed)
    assert info["state"][0] < WALL_LEFT - CFG.agent_radius + 1e-6


def test_agent_stays_on_the_canvas() -> None:
    env = TwoRoomEnv()
    env.reset(options={"start": (10.0, 10.0), "goal": (50.0, 50.0)})
    info = run(env, (-1.0, -1.0), 20)
    assert np.all(info["state"] >= CFG.agent_radius)


def test_terminates_on_reaching_a_near_goal() -> None:
    env = TwoRoomEnv(success_radius=1.0)
    _, info = env.reset(options={"start": (10.0, 10.0), "goal": (13.0, 10.0)})
    assert info["distance"] == pytest.approx(3.0) and not info["success"]
    _, reward, terminated, truncated, info = env.step(np.array([1.0, 0.0], np.float32))
    assert terminated and not truncated and info["success"]
    assert reward == pytest.approx(-1.0 / CFG.size)


def test_truncates_at_max_episode_steps() -> None:
    env = TwoRoomEnv(max_episode_steps=5)
    env.reset(options={"start": (10.0, 10.0), "goal": (50.0, 50.0)})
    flags = [env.step(np.zeros(2, np.float32))[3] for _ in range(5)]
    assert flags == [False] * 4 + [True]


def test_reset_rejects_positions_that_are_not_free() -> None:
    env = TwoRoomEnv()
    with pytest.raises(ValueError, match="start"):
        env.reset(options={"start": (CFG.wall_x, 5.0)})
    with pytest.raises(ValueError, match="goal"):
        env.reset(options={"goal": (1.0, 30.0)})  # closer to the edge than the radius
    with pytest.raises(ValueError, match="teleport"):
        env.reset(options={"teleport": (10.0, 10.0)})


def test_sampled_positions_are_free_and_fill_both_rooms() -> None:
    rng = np.random.default_rng(0)
    xs = np.array([sample_free_position(CFG, rng) for _ in range(300)])
    assert xs.dtype == np.float32
    assert all(is_free(CFG, p) for p in xs)
    assert (xs[:, 0] < CFG.wall_x).any() and (xs[:, 0] > CFG.wall_x).any()


def test_shortest_path_in_one_room_is_the_straight_line() -> None:
    start, goal = (5.0, 10.0), (20.0, 50.0)
    assert shortest_path_steps(CFG, start, goal) == pytest.approx(math.hypot(15, 40) / CFG.speed)


def _tangent_and_arc(point: np.ndarray, corner: np.ndarray, r: float, exit_angle: float) -> float:
    """Length from `point` along the tangent to the circle (corner, r), then along the arc to
    the circle point at `exit_angle` (radians, y down); the arc turns towards `exit_angle`."""
    offset = point - corner
    d = float(np.linalg.norm(offset))
    tangent_angles = math.atan2(offset[1], offset[0]) + np.array([1, -1]) * math.acos(r / d)
    turn = min(abs((a - exit_angle + math.pi) % (2 * math.pi) - math.pi) for a in tangent_angles)
    return math.sqrt(d * d - r * r) + r * turn


def test_shortest_path_across_the_wall_wraps_the_door_corners() -> None:
    # Both points high up, far from the door: the path dips around the two upper door corners,
    # leaving the left one and reaching the right one straight below them (angle pi/2).
    r = CFG.agent_radius
    start, goal = np.array([10.0, 5.0]), np.array([54.0, 5.0])
    left = _tangent_and_arc(start, np.array([WALL_LEFT, DOOR_TOP]), r, math.pi / 2)
    right = _tangent_and_arc(goal, np.array([WALL_RIGHT, DOOR_TOP]), r, math.pi / 2)
    expected = (left + (WALL_RIGHT - WALL_LEFT) + right) / CFG.speed
    steps = shortest_path_steps(CFG, start, goal)
    assert steps > np.linalg.norm(goal - start) / CFG.speed
    assert steps == pytest.approx(expected, abs=0.02)


def test_shortest_path_is_symmetric_and_rejects_blocked_points() -> None:
    a, b = (10.0, 60.0), (40.0, 3.5)
    assert shortest_path_steps(CFG, a, b) == pytest.approx(shortest_path_steps(CFG, b, a))
    with pytest.raises(ValueError, match="goal"):
        shortest_path_steps(CFG, a, (CFG.wall_x, 5.0))


def test_shortest_path_bounds_what_the_agent_can_do() -> None:
    # Steering through the door by hand never travels less than the computed shortest path.
    # (Compared in pixels travelled: a diagonal action covers up to sqrt(2) * speed per step.)
    env = TwoRoomEnv()
    start, goal = (10.0, 8.0), (54.0, 56.0)
    _, info = env.reset(options={"start": start, "goal": goal})
    travelled, terminated = 0.0, False
    for waypoint in [(WALL_LEFT - 4, CFG.door_y), (WALL_RIGHT + 4, CFG.door_y), goal]:
        while not terminated and np.linalg.norm(info["state"] - np.asarray(waypoint)) > 1e-3:
            before = info["state"]
            _, _, terminated, _, info = env.step(straight_line_action(before, waypoint))
            travelled += float(np.linalg.norm(info["state"] - before))
    assert terminated and info["success"]
    shortest = shortest_path_steps(CFG, start, info["state"]) * CFG.speed
    assert shortest - 1e-3 <= travelled <= shortest + 6.0  # the hand route is near-optimal


def test_straight_line_action_keeps_the_direction() -> None:
    np.testing.assert_allclose(straight_line_action((0, 0), (10, 5)), [1.0, 0.5])
    np.testing.assert_allclose(straight_line_action((0, 0), (1, -0.5)), [0.5, -0.25])
    assert straight_line_action((0, 0), (1, 1)).dtype == np.float32
