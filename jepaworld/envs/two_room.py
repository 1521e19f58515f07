"""Two-Room: a round agent, one vertical wall with a door, pixels as observations.

The navigation task of PLDM and stable-worldmodel, rebuilt in plain numpy so that collecting data
and rendering goal images costs almost nothing next to the model. Coordinates are continuous
pixels on the canvas, x to the right and y down. The true state is exposed through `info` for
evaluation only; a planner sees pixels.

The geometry helpers (`is_free`, `shortest_path_steps`, ...) are pure functions of the config so
the evaluation protocol and the baselines can use them without an environment instance. They
apply the shared rules of `jepaworld.envs.geometry` to this world's walls.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from jepaworld.envs import geometry
from jepaworld.envs.geometry import AGENT_RGB, FLOOR_RGB, WALL_RGB, Rect, require

__all__ = [
    "AGENT_RGB",
    "FLOOR_RGB",
    "WALL_RGB",
    "Rect",
    "TwoRoomConfig",
    "TwoRoomEnv",
    "is_free",
    "render_scene",
    "sample_free_position",
    "shortest_path_steps",
    "straight_line_action",
    "wall_rects",
]

_ARC_POINTS = 9  # nodes per door-corner arc in the path graph; error < 0.01 * agent_radius


@dataclass(frozen=True)
class TwoRoomConfig:
    """Geometry and dynamics of the Two-Room world (defaults: the 64 px reference canvas)."""

    size: int = 64
    """Canvas side in pixels; observations are (size, size, 3) uint8."""
    wall_x: float = 32.0
    """x of the centre line of the vertical wall that splits the rooms."""
    wall_thickness: float = 4.0
    """Width of the vertical wall in pixels."""
    door_y: float = 32.0
    """y of the centre of the door in the wall."""
    door_height: float = 16.0
    """Height of the door gap; must exceed the agent's diameter."""
    agent_radius: float = 3.0
    """Radius of the round agent; collisions treat the agent as an exact disc."""
    speed: float = 2.0
    """Displacement in pixels per step for an action component of magnitude 1."""
    success_radius: float = 4.5
    """The episode succeeds when the agent centre is this close to the goal (pixels)."""
    max_episode_steps: int = 200
    """Steps after which an episode is truncated."""

    def __post_init__(self) -> None:
        geometry.check_number_fields(self)
        r = self.agent_radius
        (wall_left, wall_right), (door_top, door_bottom) = self.wall_span, self.door_span
        require(self.size >= 8, self, "size", "must be >= 8")
        for name in ("agent_radius", "wall_thickness", "speed", "success_radius"):
            require(getattr(self, name) > 0, self, name, "must be > 0")
        require(self.max_episode_steps >= 1, self, "max_episode_steps", "must be >= 1")
        # Each room must be wider than the agent, or half the world is unreachable.
        require(wall_left > 2 * r, self, "wall_x", "leaves no room left of the wall")
        require(wall_right < self.size - 2 * r, self, "wall_x", "leaves no room right of the wall")
        require(self.door_height > 2 * r, self, "door_height", "must exceed 2 * agent_radius")
        on_canvas = door_top >= 0 and door_bottom <= self.size
        require(on_canvas, self, "door_y", "puts the door off-canvas")

    @property
    def wall_span(self) -> tuple[float, float]:
        """x of the wall's left and right faces."""
        return self.wall_x - self.wall_thickness / 2, self.wall_x + self.wall_thickness / 2

    @property
    def door_span(self) -> tuple[float, float]:
        """y of the door's top and bottom edges."""
        return self.door_y - self.door_height / 2, self.door_y + self.door_height / 2


@functools.lru_cache(maxsize=32)
def wall_rects(config: TwoRoomConfig) -> tuple[Rect, ...]:
    """The interior wall as rectangles: the part above the door and the part below it.

    A part of zero height (a door touching the canvas edge) is left out.
    """
    (x0, x1), (top, bottom) = config.wall_span, config.door_span
    rects: list[Rect] = []
    if top > 0:
        rects.append((x0, 0.0, x1, top))
    if bottom < config.size:
        rects.append((x0, bottom, x1, float(config.size)))
    return tuple(rects)


def is_free(config: TwoRoomConfig, xy: ArrayLike) -> bool:
    """Whether the agent disc centred at `xy` overlaps no wall (touching counts as free)."""
    n = config.size
    return geometry.disc_is_free(xy, wall_rects(config), n, n, config.agent_radius)


def _segment_is_free(config: TwoRoomConfig, a: NDArray, b: NDArray) -> bool:
    """Whether the disc can sweep from `a` to `b` without overlapping a wall (no tunnelling)."""
    n = config.size
    return geometry.sweep_is_free(a, b, wall_rects(config), n, n, config.agent_radius)


def sample_free_position(config: TwoRoomConfig, rng: np.random.Generator) -> NDArray[np.float32]:
    """A position drawn uniformly among free ones (rejection sampling on the canvas).

    The float32 value itself is checked, so a position read back from `info["state"]` is free.
    """
    free = functools.partial(is_free, config)
    n = config.size
    return geometry.sample_free_position(rng, n, n, config.agent_radius, free, config)


def straight_line_action(
    state: ArrayLike, goal: ArrayLike, speed: float = TwoRoomConfig.speed
) -> NDArray[np.float32]:
    """The action heading straight for the goal, blind to walls: the baseline policy.

    The displacement `(goal - state) / speed` is scaled down uniformly (not clipped per axis) so
    that it fits in [-1, 1]^2: the direction is kept, and a near goal is reached exactly.
    """
    delta = (np.asarray(goal, dtype=np.float64) - np.asarray(state, dtype=np.float64)) / speed
    return (delta / max(1.0, float(np.max(np.abs(delta))))).astype(np.float32)


@functools.lru_cache(maxsize=32)
def _door_graph(config: TwoRoomConfig) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Door-corner nodes (N, 2) and their all-pairs shortest path lengths (N, N), in pixels.

    The nodes are where a shortest path can bend: arcs around the door's corners (those whose
    wall part exists) and two on its centre line (see `geometry.door_nodes`).
    """
    arc = geometry.corner_arc(config.agent_radius, _ARC_POINTS)
    half_t, half_h = config.wall_thickness / 2, config.door_height / 2
    bounds = (0, config.size)
    candidates = geometry.door_nodes(
        config.wall_x, config.door_y, half_t, half_h, arc, along_bounds=bounds
    )
    nodes = candidates[[is_free(config, node) for node in candidates]]
    return nodes, geometry.visibility_graph(nodes, functools.partial(_segment_is_free, config))


def shortest_path_steps(config: TwoRoomConfig, start: ArrayLike, goal: ArrayLike) -> float:
    """Length of the shortest collision-free path of the agent disc, in env steps.

    The path is the straight segment when the disc can sweep it; otherwise it bends around the
    door corners (see `_door_graph`), found by a visibility graph. Steps are the length
    in pixels divided by `speed`, i.e. the count of full-speed steps along the path.

    A diagonal action covers up to sqrt(2) * speed, so an agent may need fewer actual steps.

    Raises:
        ValueError: if `start` or `goal` is not free (naming which): a caller bug, not an inf.

    Returns:
        Steps, or math.inf if unreachable (impossible for a valid config: the door fits).
    """
    free = functools.partial(is_free, config)
    s, g = geometry.as_free_point(start, "start", free), geometry.as_free_point(goal, "goal", free)
    sweep = functools.partial(_segment_is_free, config)
    return geometry.path_length(s, g, *_door_graph(config), sweep) / config.speed


@functools.lru_cache(maxsize=32)
def _background(config: TwoRoomConfig) -> NDArray[np.uint8]:
    """Floor and walls, anti-aliased by exact pixel-area coverage; computed once per config."""
    return geometry.wall_background(wall_rects(config), config.size, config.size)


def render_scene(config: TwoRoomConfig, xy: ArrayLike) -> NDArray[np.uint8]:
    """The scene with the agent centred at `xy`, as a fresh uint8 (H, W, 3) array.

    The agent is an anti-aliased disc (see `geometry.render_disc`). Rendering a goal image is
    the same call with the goal position.
    """
    return geometry.render_disc(_background(config), xy, config.agent_radius)


class TwoRoomEnv(geometry.DiscAgentEnv[TwoRoomConfig]):
    """Reach a goal position, possibly in the other room through the door, from pixels.

    Reward is `-distance / size` (dense, for information; planners use goal images). An episode
    terminates within `success_radius` of the goal and truncates after `max_episode_steps`.

    Example:
        >>> env = TwoRoomEnv(door_y=20.0)
        >>> obs, info = env.reset(seed=0, options={"start": (10.0, 20.0)})
        >>> obs.shape, info["state"]
        ((64, 64, 3), array([10., 20.], dtype=float32))
    """

    config_type = TwoRoomConfig

    def _frame_size(self) -> tuple[int, int]:
        return self.config.size, self.config.size

    def _is_free(self, xy: NDArray) -> bool:
        return is_free(self.config, xy)

    def _sample_position(self) -> NDArray[np.float32]:
        return sample_free_position(self.config, self.np_random)

    def _move(self, xy: NDArray, delta: NDArray) -> NDArray:
        n, r = self.config.size, self.config.agent_radius
        return geometry.slide_move(xy, delta, wall_rects(self.config), n, n, r)

    def _render_at(self, xy: ArrayLike) -> NDArray[np.uint8]:
        return render_scene(self.config, xy)
