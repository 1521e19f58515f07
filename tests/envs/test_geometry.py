"""The shared disc-agent geometry on small worlds with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jepaworld.envs import geometry

WALL = (10.0, 0.0, 12.0, 15.0)  # a wall hanging from the top of a 30 x 20 canvas
RECTS, W, H, R = (WALL,), 30.0, 20.0, 1.0


def test_point_and_segment_distances_are_exact() -> None:
    assert geometry.point_rect_distance(11.0, 5.0, WALL) == 0.0
    assert geometry.point_rect_distance(7.0, 19.0, WALL) == pytest.approx(5.0)
    a, b = np.array([5.0, 18.0]), np.array([20.0, 18.0])  # passes under the wall
    assert geometry.segment_rect_distance(a, b, WALL) == pytest.approx(3.0)
    assert geometry.segment_rect_distance(a, a, WALL) == pytest.approx(math.hypot(5, 3))


def test_free_tests_respect_walls_canvas_and_culling() -> None:
    rects = np.array(RECTS)
    rng = np.random.default_rng(0)
    for xy in rng.uniform(-2, 32, size=(500, 2)):
        free = geometry.disc_is_free(xy, RECTS, W, H, R)
        assert free == geometry.disc_is_free(xy, rects, W, H, R, cull=True)
    assert not geometry.disc_is_free((11.0, 5.0), RECTS, W, H, R)
    assert not geometry.disc_is_free((0.5, 5.0), RECTS, W, H, R)  # off the canvas
    assert not geometry.disc_is_free((1.0, 2.0, 3.0), RECTS, W, H, R)
    assert geometry.disc_is_free((9.0, 5.0), RECTS, W, H, R)  # touching counts as free
    a, b = np.array([5.0, 5.0]), np.array([25.0, 5.0])
    assert not geometry.sweep_is_free(a, b, RECTS, W, H, R)  # no tunnelling at any speed
    assert geometry.sweep_is_free(a + [0, 13], b + [0, 13], RECTS, W, H, R)


def test_slide_move_slides_along_a_wall_or_stays() -> None:
    xy = np.array([8.0, 5.0])
    moved = geometry.slide_move(xy, np.array([3.0, 2.0]), RECTS, W, H, R)
    np.testing.assert_array_equal(moved, [8.0, 7.0])  # x blocked, y kept
    stuck = geometry.slide_move(xy, np.array([3.0, 0.0]), RECTS, W, H, R)
    np.testing.assert_array_equal(stuck, xy)
    assert stuck is not xy  # a fresh array, never the caller's


def test_shortest_path_wraps_the_wall_end() -> None:
    arc = geometry.corner_arc(R, 9)
    # The gap below the wall as a door: centre (11, 17.5), 5 px tall, top corners only.
    nodes = geometry.door_nodes(11.0, 17.5, 1.0, 2.5, arc, along_bounds=(0.0, H))
    assert nodes.shape == (2 + 2 * 9, 2)
    free = [geometry.disc_is_free(node, RECTS, W, H, R) for node in nodes]
    nodes = nodes[free]

    def sweep(a: np.ndarray, b: np.ndarray) -> bool:
        return geometry.sweep_is_free(a, b, RECTS, W, H, R)

    between = geometry.visibility_graph(nodes, sweep)
    start, goal = np.array([5.0, 5.0]), np.array([17.0, 5.0])
    length = geometry.path_length(start, goal, nodes, between, sweep)
    # Tangent to the circle of radius R round each bottom corner, the arc, the wall's width.
    d = math.hypot(5.0, 10.0)
    turn = math.pi / 2 + math.atan2(10.0, 5.0) - math.acos(R / d)
    expected = 2 * (math.sqrt(d * d - R * R) + R * turn) + 2.0
    assert expected < length < expected + 0.02  # chords stay just outside the arcs
    assert geometry.path_length(start, start + 3, nodes, between, sweep) == pytest.approx(
        math.hypot(3, 3)
    )


def test_background_and_disc_rendering() -> None:
    background = geometry.wall_background(((0.5, 0.0, 2.0, 4.0),), 6, 4)
    assert background.shape == (4, 6, 3) and not background.flags.writeable
    assert (background[:, 1] == geometry.WALL_RGB).all()
    assert (background[:, 0] == (115, 115, 115)).all()  # half covered: halfway to the wall
    frame = geometry.render_disc(background, (4.0, 2.0), 1.5)
    assert frame.flags.writeable and (frame[1, 3] == geometry.AGENT_RGB).all()
    np.testing.assert_array_equal(frame[:, :2], background[:, :2])  # out of reach
