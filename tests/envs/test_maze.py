"""Behaviour of the Maze environment, its layouts and its geometry helpers."""

from __future__ import annotations

import math

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from jepaworld.envs import MazeConfig, MazeEnv  # importing registers the gym id
from jepaworld.envs.maze import (
    door_centres,
    doors,
    is_free,
    render_scene,
    room_of,
    sample_free_position,
    shortest_path_steps,
    wall_rects,
)
from jepaworld.envs.two_room import straight_line_action

CFG = MazeConfig()


def centre(config: MazeConfig, room: tuple[int, int]) -> np.ndarray:
    return (np.array(room) * config.pitch + config.room_size / 2).astype(np.float64)


def run(env: MazeEnv, action: tuple[float, float], steps: int) -> dict:
    info: dict = {}
    for _ in range(steps):
        *_, info = env.step(np.array(action, dtype=np.float32))
    return info


def closed_wall(config: MazeConfig) -> tuple[tuple[int, int], tuple[int, int]]:
    """Two horizontally adjacent rooms with no door between them."""
    open_pairs = {door.rooms for door in doors(config)}
    for j in range(config.rooms_y):
        for i in range(config.rooms_x - 1):
            if ((i, j), (i + 1, j)) not in open_pairs:
                return (i, j), (i + 1, j)
    raise AssertionError("every vertical wall has a door")


def test_passes_gymnasium_env_checker() -> None:
    check_env(MazeEnv())
    check_env(gymnasium.make("jepaworld/Maze-v0", layout_seed=2).unwrapped)


def test_make_passes_config_overrides_and_rejects_unknown_ones() -> None:
    env = gymnasium.make("jepaworld/Maze-v0", layout_seed=3, extra_doors=1)
    assert env.unwrapped.config == MazeConfig(layout_seed=3, extra_doors=1)
    with pytest.raises(TypeError, match="door_height"):
        gymnasium.make("jepaworld/Maze-v0", door_height=3.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("door_width", 6.0),
        ("door_width", 41.0),
        ("room_size", 6),
        ("rooms_x", 0),
        ("layout_seed", -1),
        ("extra_doors", 5),  # a 3x3 grid has 12 walls, 8 of them in the tree
        ("wall_thickness", 2.5),
    ],
)
def test_invalid_config_names_the_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        MazeConfig(**{field: value})


def test_default_canvas_and_shapes() -> None:
    assert (CFG.width, CFG.height) == (128, 128)
    env = MazeEnv()
    obs, info = env.reset(seed=3)
    assert obs.shape == (128, 128, 3) and obs.dtype == np.uint8
    assert env.observation_space.contains(obs)
    assert MazeEnv(rooms_x=4).observation_space.shape == (128, 172, 3)


def test_info_keys_and_goal_image() -> None:
    env = MazeEnv()
    obs, info = env.reset(seed=5)
    assert set(info) == {"state", "goal_state", "goal", "distance", "success"}
    assert info["state"].shape == (2,) and info["state"].dtype == np.float32
    assert info["goal_state"].shape == (2,) and info["goal_state"].dtype == np.float32
    assert info["goal"].shape == obs.shape and info["goal"].dtype == np.uint8
    assert isinstance(info["distance"], float) and isinstance(info["success"], bool)
    assert info["distance"] > CFG.success_radius and not info["success"]
    np.testing.assert_array_equal(info["goal"], render_scene(CFG, info["goal_state"]))
    np.testing.assert_array_equal(obs, render_scene(CFG, info["state"]))
    np.testing.assert_array_equal(env.render(), obs)
    obs[:] = 0
    info["goal"][:] = 0
    assert env.render().any() and env.step(np.zeros(2, np.float32))[4]["goal"].any()


def test_walls_are_visible_in_every_frame() -> None:
    frame = render_scene(CFG, centre(CFG, (0, 0)))
    x0, y0, x1, y1 = (int(v) for v in wall_rects(CFG)[0])
    assert (frame[y0:y1, x0:x1] == 200).all()  # WALL_RGB
    assert (frame[CFG.height - 2, CFG.width - 2] == 30).all()  # FLOOR_RGB, far from the agent


def test_layout_is_a_function_of_layout_seed() -> None:
    fresh = doors.__wrapped__  # bypass the cache: the draw itself must be deterministic
    assert fresh(MazeConfig(layout_seed=4)) == fresh(MazeConfig(layout_seed=4))
    layouts = {wall_rects(MazeConfig(layout_seed=seed)) for seed in range(5)}
    assert len(layouts) > 1
    assert len(doors(CFG)) == CFG.rooms_x * CFG.rooms_y - 1  # a spanning tree
    more = MazeConfig(extra_doors=2)
    assert set(doors(CFG)) < set(doors(more)) and len(doors(more)) == len(doors(CFG)) + 2


@pytest.mark.parametrize(
    "config",
    [MazeConfig(layout_seed=s) for s in range(4)]
    + [MazeConfig(rooms_x=4, rooms_y=2, layout_seed=7)],
)
def test_every_room_is_reachable(config: MazeConfig) -> None:
    rooms = [(i, j) for i in range(config.rooms_x) for j in range(config.rooms_y)]
    start = centre(config, rooms[0])
    for room in rooms[1:]:  # paths are symmetric, so one source shows all pairs connected
        steps = shortest_path_steps(config, start, centre(config, room))
        assert math.isfinite(steps) and steps >= np.linalg.norm(centre(config, room) - start) / 2


def test_goals_at_least_100_steps_away_exist() -> None:
    rng = np.random.default_rng(0)
    pairs = [(sample_free_position(CFG, rng), sample_free_position(CFG, rng)) for _ in range(200)]
    steps = np.array([shortest_path_steps(CFG, s, g) for s, g in pairs])
    assert np.isfinite(steps).all()
    assert (steps >= 100).sum() >= 5  # 17 of 200 (max 126 steps) for the default layout


def test_wall_without_a_door_blocks_even_at_high_speed() -> None:
    left, right = closed_wall(CFG)
    wall_face = (left[0] + 1) * CFG.pitch - CFG.wall_thickness
    for speed in (2.0, 12.0):  # 12 px per step is 3x the wall thickness: no tunnelling
        env = MazeEnv(speed=speed)
        start = centre(CFG, left)
        env.reset(options={"start": start, "goal": centre(CFG, right)})
        info = run(env, (1.0, 0.0), 100)
        assert room_of(CFG, info["state"]) == left
        assert info["state"][0] == pytest.approx(wall_face - CFG.agent_radius, abs=speed)
        assert info["state"][1] == pytest.approx(start[1])


def test_agent_passes_a_door() -> None:
    for door in doors(CFG):
        a, b = door.rooms
        env = MazeEnv()
        env.reset(options={"start": centre(CFG, a), "goal": centre(CFG, b)})
        info = env.step(np.zeros(2, np.float32))[4]
        for waypoint in (door.centre, centre(CFG, b)):
            for _ in range(40):
                *_, terminated, _, info = env.step(straight_line_action(info["state"], waypoint))
        assert terminated and room_of(CFG, info["state"]) == b


def test_terminates_and_truncates() -> None:
    env = MazeEnv(success_radius=1.0, max_episode_steps=5)
    _, info = env.reset(options={"start": (10.0, 10.0), "goal": (13.0, 10.0)})
    assert not info["success"]
    _, reward, terminated, truncated, info = env.step(np.array([1.0, 0.0], np.float32))
    assert terminated and not truncated and info["success"] and reward == pytest.approx(-1 / 128)
    env.reset(options={"start": (10.0, 10.0), "goal": (30.0, 30.0)})
    assert [env.step(np.zeros(2, np.float32))[3] for _ in range(5)] == [False] * 4 + [True]


def test_reset_rejects_bad_options_naming_them() -> None:
    env = MazeEnv()
    wall = wall_rects(CFG)[0]
    inside_wall = ((wall[0] + wall[2]) / 2, (wall[1] + wall[3]) / 2)
    with pytest.raises(ValueError, match="start"):
        env.reset(options={"start": inside_wall})
    with pytest.raises(ValueError, match="goal"):
        env.reset(options={"goal": (1.0, 30.0)})  # closer to the edge than the radius
    with pytest.raises(ValueError, match="goal"):
        env.reset(options={"goal": (1.0, 2.0, 3.0)})
    with pytest.raises(ValueError, match="teleport"):
        env.reset(options={"teleport": (10.0, 10.0)})


def test_sampled_positions_are_free_and_fill_every_room() -> None:
    rng = np.random.default_rng(0)
    xs = [sample_free_position(CFG, rng) for _ in range(300)]
    assert all(p.dtype == np.float32 and is_free(CFG, p) for p in xs)
    assert {room_of(CFG, p) for p in xs} == {(i, j) for i in range(3) for j in range(3)}


def test_doors_are_free_and_join_their_rooms() -> None:
    centres = door_centres(CFG)
    assert centres.shape == (len(doors(CFG)), 2)
    for door, xy in zip(doors(CFG), centres, strict=True):
        a, b = door.rooms
        assert is_free(CFG, xy)
        across = np.array(b) - np.array(a)  # unit step from room a to room b
        assert room_of(CFG, xy - across * CFG.pitch / 4) == a
        assert room_of(CFG, xy + across * CFG.pitch / 4) == b


def test_shortest_path_in_one_room_is_the_straight_line() -> None:
    start, goal = (5.0, 10.0), (30.0, 34.0)
    assert shortest_path_steps(CFG, start, goal) == pytest.approx(math.hypot(25, 24) / CFG.speed)


def test_shortest_path_across_rooms_is_longer_and_near_the_door_route() -> None:
    door = doors(CFG)[0]
    a, b = door.rooms
    across = np.array(b) - np.array(a)  # unit step from room a to room b
    along = across[::-1]
    # Both points well to one side of the door: the straight line between them hits the wall.
    start = centre(CFG, a) + 15 * (along - across)
    goal = centre(CFG, b) + 15 * (along + across)
    steps = shortest_path_steps(CFG, start, goal)
    via_door = np.linalg.norm(door.centre - start) + np.linalg.norm(goal - door.centre)
    assert np.linalg.norm(goal - start) / CFG.speed < steps <= via_door / CFG.speed
    assert steps == pytest.approx(shortest_path_steps(CFG, goal, start))
    x0, y0, x1, y1 = wall_rects(CFG)[0]
    with pytest.raises(ValueError, match="goal"):
        shortest_path_steps(CFG, start, ((x0 + x1) / 2, (y0 + y1) / 2))


def test_shortest_path_bounds_what_the_agent_can_do() -> None:
    # Steering through the doors of the tree by hand never travels less than the shortest path.
    config = MazeConfig(layout_seed=1)
    route = [(0, 0), (1, 0), (1, 1)]
    env = MazeEnv(config)
    start, goal = centre(config, route[0]), centre(config, route[-1])
    _, info = env.reset(options={"start": start, "goal": goal})
    by_rooms = {door.rooms: door.centre for door in doors(config)}
    waypoints = [by_rooms[tuple(sorted(p))] for p in zip(route, route[1:], strict=False)] + [goal]
    travelled, terminated = 0.0, False
    for waypoint in waypoints:
        while not terminated and np.linalg.norm(info["state"] - np.asarray(waypoint)) > 1e-3:
            before = info["state"]
            _, _, terminated, _, info = env.step(straight_line_action(before, waypoint))
            travelled += float(np.linalg.norm(info["state"] - before))
    assert terminated and info["success"]
    shortest = shortest_path_steps(config, start, info["state"]) * config.speed
    assert shortest - 1e-3 <= travelled <= shortest + 20.0  # door centres are near-optimal
