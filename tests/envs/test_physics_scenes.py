from __future__ import annotations

import math

import numpy as np
import pytest

from jepaworld.envs.physics_scenes import (
    MATCHED_SETS,
    PROPERTIES,
    WALL_RGB,
    SceneConfig,
    StagedPair,
    make_pair,
    make_video,
    stage_pair,
)

CONFIG = SceneConfig()
SEEDS = range(6)


@pytest.fixture(scope="module")
def staged() -> dict[tuple[str, int], StagedPair]:
    return {(prop, s): stage_pair(prop, s) for prop in PROPERTIES for s in SEEDS}


def _of(staged: dict, prop: str) -> list[StagedPair]:
    return [staged[prop, s] for s in SEEDS]


@pytest.mark.parametrize("prop", PROPERTIES)
def test_pair_is_identical_before_the_violation_and_differs_at_it(staged, prop: str) -> None:
    for st in _of(staged, prop):
        pair, v = st.pair, st.pair.violation_frame
        assert pair.prop == prop
        assert pair.possible.shape == pair.impossible.shape == (CONFIG.frames, 64, 64, 3)
        assert pair.possible.dtype == pair.impossible.dtype == np.uint8
        assert 4 <= v <= CONFIG.frames - 2
        assert np.array_equal(pair.possible[:v], pair.impossible[:v])
        assert not np.array_equal(pair.possible[v], pair.impossible[v])


@pytest.mark.parametrize("prop", MATCHED_SETS)
def test_a_matched_set_holds_the_same_frames_among_possible_and_impossible(staged, prop) -> None:
    for st in _of(staged, prop):
        pair, v = st.pair, st.pair.violation_frame
        p1, i1, p2, i2 = (
            pair.possible,
            pair.impossible,
            pair.possible_mirror,
            pair.impossible_mirror,
        )
        assert np.array_equal(p2[:v], i2[:v]) and not np.array_equal(p2[v], i2[v])
        for t in range(CONFIG.frames):  # the same two frames on each side, at every index
            possible = sorted(f.tobytes() for f in (p1[t], p2[t]))
            assert possible == sorted(f.tobytes() for f in (i1[t], i2[t])), t
        assert not np.array_equal(p1, p2)  # the mirror really differs before the change


@pytest.mark.parametrize("prop", sorted(set(PROPERTIES) - set(MATCHED_SETS)))
def test_other_properties_are_plain_pairs(staged, prop: str) -> None:
    assert not any(st.pair.matched for st in _of(staged, prop))


@pytest.mark.parametrize("prop", PROPERTIES)
def test_only_the_staged_ball_behaves_differently(staged, prop: str) -> None:
    for st in _of(staged, prop):
        others = np.arange(len(st.scene.balls)) != st.ball
        tracks = [st.impossible, st.possible_mirror, st.impossible_mirror]
        for track in (t for t in tracks if t is not None):
            assert np.array_equal(st.possible.xy[:, others], track.xy[:, others])


def test_pairs_are_reproducible_from_the_seed() -> None:
    a, b, c = make_pair("gravity", 11), make_pair("gravity", 11), make_pair("gravity", 12)
    assert np.array_equal(a.possible, b.possible) and np.array_equal(a.impossible, b.impossible)
    assert a.violation_frame == b.violation_frame and a.seed == 11
    assert not np.array_equal(a.possible, c.possible)


def test_unknown_property_is_named() -> None:
    with pytest.raises(ValueError, match="unknown property 'mass'"):
        make_pair("mass", 0)


def test_training_video_is_reproducible_and_moves() -> None:
    video = make_video(5)
    assert video.shape == (CONFIG.frames, 64, 64, 3) and video.dtype == np.uint8
    assert np.array_equal(video, make_video(5)) and not np.array_equal(video, make_video(6))
    assert (video[1:] != video[:-1]).any()


def _wall_gap(xy: np.ndarray, r: float, square: bool, wall: tuple[int, int, int, int]) -> float:
    """Signed clearance between a ball and the wall rectangle (negative: overlap)."""
    x0, y0, x1, y1 = wall
    dx, dy = max(x0 - xy[0], 0.0, xy[0] - x1), max(y0 - xy[1], 0.0, xy[1] - y1)
    return max(dx, dy) - r if square else math.hypot(dx, dy) - r


def test_solidity_possible_ball_never_enters_the_wall_and_impossible_does(staged) -> None:
    for st in _of(staged, "solidity"):
        x0, y0, x1, y1 = st.scene.wall
        for t in range(CONFIG.frames):
            for i, ball in enumerate(st.scene.balls):
                gap = _wall_gap(
                    st.possible.xy[t, i], ball.radius, st.possible.square[t, i], st.scene.wall
                )
                assert gap >= -1e-6
        # in pixels: the possible video never paints over the wall; the impossible one does
        assert (st.pair.possible[:, y0:y1, x0:x1] == WALL_RGB).all()
        assert not (st.pair.impossible[:, y0:y1, x0:x1] == WALL_RGB).all()


def test_continuity_possible_moves_smoothly_and_impossible_jumps(staged) -> None:
    for st in _of(staged, "continuity"):
        step = np.linalg.norm(np.diff(st.possible.xy, axis=0), axis=-1)  # (T-1, N)
        assert step.max() < 12
        v = st.pair.violation_frame
        jump = np.linalg.norm(st.impossible.xy[v, st.ball] - st.impossible.xy[v - 1, st.ball])
        assert jump >= 12


def test_gravity_possible_falls_freely_and_impossible_does_not(staged) -> None:
    for st in _of(staged, "gravity"):
        v, i = st.pair.violation_frame, st.ball
        # both possible flights pass one point at frame v-1; the mirror's really is simulated
        assert np.allclose(st.possible.xy[v - 1, i], st.possible_mirror.xy[v - 1, i])
        assert not np.allclose(
            st.possible.velocity[v - 1, i], st.possible_mirror.velocity[v - 1, i]
        )
        assert not st.possible_mirror.contact[: v + 3, i].any()  # free flight to the point
        pairs = ((st.possible, st.impossible), (st.possible_mirror, st.impossible_mirror))
        for possible, impossible in pairs:
            dvy = np.diff(possible.velocity[:, i, 1])  # (T-1,)
            free = ~possible.contact[1:, i]  # no contact during the step
            assert np.allclose(dvy[free], CONFIG.gravity)
            assert (np.diff(possible.velocity[:, i, 0])[free] == 0).all()
            kick = impossible.velocity[v, i] - impossible.velocity[v - 1, i]
            assert np.abs(kick - (0.0, CONFIG.gravity)).max() > 1.0  # a change of velocity...
            assert not impossible.contact[v - 1 : v + 3, i].any()  # ...in mid-air, touching nothing
            step = np.linalg.norm(impossible.xy[v, i] - impossible.xy[v - 1, i])
            assert step < 6  # and no jump: the ball moves on from where it was


def test_gravity_second_flight_starts_and_flies_inside_the_scene() -> None:
    """Its start comes from undoing the flight back to frame 0: it must not lie in the floor, an
    edge or the wall, from where the first simulated step would have pushed it out unseen."""
    for seed in range(80):
        st = stage_pair("gravity", seed)
        i, v, wall = st.ball, st.pair.violation_frame, st.scene.wall
        r = st.scene.balls[i].radius
        x, y = st.possible_mirror.xy[:v, i].T  # (v,) each
        assert ((r <= x) & (x <= CONFIG.size - r)).all(), seed
        assert ((r <= y) & (y <= st.scene.floor_y - r)).all(), seed
        if wall is not None:
            square = st.possible_mirror.square[0, i]
            gaps = [_wall_gap(xy, r, square, wall) for xy in st.possible_mirror.xy[:v, i]]
            assert min(gaps) > 0, seed


def _colour_pixels(video: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    return (video == rgb).all(axis=-1).sum(axis=(1, 2))  # (T,)


def test_permanence_possible_ball_comes_back_and_impossible_does_not(staged) -> None:
    for st in _of(staged, "permanence"):
        v, rgb = st.pair.violation_frame, st.possible.rgb[0, st.ball]
        assert st.possible.visible.all()
        assert _colour_pixels(st.pair.possible[v:], rgb).max() > 0
        assert _colour_pixels(st.pair.impossible[v:], rgb).max() == 0


def test_constancy_possible_keeps_its_looks_and_impossible_changes(staged) -> None:
    for st in _of(staged, "constancy"):
        i = st.ball
        assert (st.possible.rgb[:, i] == st.possible.rgb[0, i]).all()
        assert (st.possible.square[:, i] == st.possible.square[0, i]).all()
        changed = (st.impossible.rgb[-1, i] != st.possible.rgb[-1, i]).any() or (
            st.impossible.square[-1, i] != st.possible.square[-1, i]
        )
        assert changed


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="SceneConfig.gravity"):
        SceneConfig(gravity=-1.0)
    with pytest.raises(ValueError, match="SceneConfig.radius_range"):
        SceneConfig(radius_range=(5.0, 3.0))
    with pytest.raises(ValueError, match="SceneConfig.frames"):
        SceneConfig(frames=8)
    assert SceneConfig(radius_range=[3.0, 4.0]).radius_range == (3.0, 4.0)  # as read from JSON
