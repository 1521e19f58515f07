"""Geometry shared by the disc-agent worlds (Two-Room, Maze): collisions, paths, drawing, the env.

A world is axis-aligned wall rectangles on a `width` x `height` canvas whose edge is the outer
wall, and a round agent of `radius`. Coordinates are continuous pixels, x to the right and y
down. Every function takes the walls, bounds and radius as arguments, so each world keeps its
own config and caching and calls these once per concept.

`cull=True` (for worlds with many walls) passes the walls as an (R, 4) array and tests only the
walls near the query (`rects_near`); the answers are the same, only cheaper.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import gymnasium
import numpy as np
from gymnasium import spaces
from numpy.typing import ArrayLike, NDArray

FLOOR_RGB = (30, 30, 30)
WALL_RGB = (200, 200, 200)
AGENT_RGB = (230, 60, 50)

Rect = tuple[float, float, float, float]
"""An axis-aligned rectangle as (x0, y0, x1, y1) in pixels, x0 <= x1 and y0 <= y1."""

MAX_SAMPLING_TRIES = 10_000
PATH_MARGIN = 1e-6  # keeps path-graph chords strictly outside the inflated walls

Walls = Sequence[Rect] | NDArray[np.float64]
"""Wall rectangles: any sequence of `Rect`, or an (R, 4) array (required with `cull=True`)."""


def check_number_fields(config: Any) -> None:
    """Raise ValueError unless every field of the dataclass `config` is a finite int / real."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        kind = numbers.Integral if field.type == "int" else numbers.Real
        if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
            raise ValueError(f"{type(config).__name__}.{field.name} must be a finite {field.type}")


def require(ok: bool, config: Any, name: str, message: str) -> None:
    """Raise ValueError naming the config class and field unless `ok`."""
    if not ok:
        raise ValueError(f"{type(config).__name__}.{name} {message}")


def angle_error(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """|a - b| of angles in radians, wrapped to [0, pi]."""
    d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)) % (2 * math.pi)
    return np.minimum(d, 2 * math.pi - d)


def point_rect_distance(px: float, py: float, rect: Rect) -> float:
    """Euclidean distance from the point (px, py) to a rectangle (0 inside it)."""
    x0, y0, x1, y1 = rect
    return math.hypot(max(x0 - px, 0.0, px - x1), max(y0 - py, 0.0, py - y1))


def segment_rect_distance(a: NDArray, b: NDArray, rect: Rect) -> float:
    """Exact distance between the segment a-b and a rectangle.

    Along the segment, f(t) = distance(a + t (b - a), rect). Between the crossings of the lines
    x = x0, x = x1, y = y0, y = y1 the point stays in one cell around the rectangle, where f is
    zero (inside), affine (beside an edge) or the distance to one corner. So f is smallest at an
    endpoint, a crossing or a corner's projection on the segment: evaluating those is exact.
    """
    x0, y0, x1, y1 = rect
    dx, dy = b[0] - a[0], b[1] - a[1]
    ts = [0.0, 1.0]
    if dx != 0:
        ts += [(x0 - a[0]) / dx, (x1 - a[0]) / dx]
    if dy != 0:
        ts += [(y0 - a[1]) / dy, (y1 - a[1]) / dy]
    if length2 := dx * dx + dy * dy:
        ts += [
            ((cx - a[0]) * dx + (cy - a[1]) * dy) / length2 for cx in (x0, x1) for cy in (y0, y1)
        ]
    return min(point_rect_distance(a[0] + t * dx, a[1] + t * dy, rect) for t in ts if 0 <= t <= 1)


def rects_near(rects: NDArray, a: NDArray, b: NDArray, radius: float) -> list[Rect]:
    """Walls (R, 4) within `radius` of the box around a and b: the only ones a sweep can touch."""
    lo, hi = np.minimum(a, b) - radius, np.maximum(a, b) + radius
    near = (rects[:, 0] <= hi[0]) & (rects[:, 2] >= lo[0])
    near &= (rects[:, 1] <= hi[1]) & (rects[:, 3] >= lo[1])
    return [tuple(rect) for rect in rects[near]]


def _candidates(rects: Walls, a: NDArray, b: NDArray, radius: float, cull: bool) -> Walls:
    return rects_near(np.asarray(rects), a, b, radius) if cull else rects


def inside_bounds(xy: NDArray, width: float, height: float, radius: float) -> bool:
    """Whether the disc centred at `xy` lies within the canvas (touching the edge counts)."""
    return bool(radius <= xy[0] <= width - radius and radius <= xy[1] <= height - radius)


def disc_is_free(
    xy: ArrayLike, rects: Walls, width: float, height: float, radius: float, *, cull: bool = False
) -> bool:
    """Whether the disc centred at `xy` is on the canvas and overlaps no wall (touching is free)."""
    p = np.asarray(xy, dtype=np.float64).reshape(-1)
    if p.shape != (2,) or not np.all(np.isfinite(p)) or not inside_bounds(p, width, height, radius):
        return False
    walls = _candidates(rects, p, p, radius, cull)
    return all(point_rect_distance(p[0], p[1], rect) >= radius for rect in walls)


def sweep_is_free(
    a: NDArray,
    b: NDArray,
    rects: Walls,
    width: float,
    height: float,
    radius: float,
    *,
    cull: bool = False,
) -> bool:
    """Whether the disc can sweep from `a` to `b` without overlapping a wall.

    The canvas bounds are a convex box, so checking both endpoints covers the whole segment;
    sweeping the interior walls exactly is what rules out tunnelling at any speed.
    """
    if not (inside_bounds(a, width, height, radius) and inside_bounds(b, width, height, radius)):
        return False
    walls = _candidates(rects, a, b, radius, cull)
    return all(segment_rect_distance(a, b, rect) >= radius for rect in walls)


def slide_move(
    xy: NDArray,
    delta: NDArray,
    rects: Walls,
    width: float,
    height: float,
    radius: float,
    *,
    cull: bool = False,
) -> NDArray:
    """Apply one displacement: the full move, else slide along x, else along y, else stay."""
    for step in (delta, np.array([delta[0], 0.0]), np.array([0.0, delta[1]])):
        if np.any(step != 0):
            target = xy + step
            if sweep_is_free(xy, target, rects, width, height, radius, cull=cull):
                return target
    return xy.copy()


def sample_free_position(
    rng: np.random.Generator,
    width: float,
    height: float,
    radius: float,
    is_free: Callable[[NDArray], bool],
    context: object = "",
) -> NDArray[np.float32]:
    """A position drawn uniformly among free ones (rejection sampling on the canvas).

    The float32 value itself is checked, so a position read back as float32 is free.
    `context` (the config) only goes into the error message.
    """
    lo, hi = np.array([radius, radius]), np.array([width - radius, height - radius])
    for _ in range(MAX_SAMPLING_TRIES):
        xy = rng.uniform(lo, hi).astype(np.float32)
        if is_free(xy):
            return xy
    raise RuntimeError(f"no free position found in {MAX_SAMPLING_TRIES} draws for {context}")


def as_free_point(xy: Any, name: str, is_free: Callable[[NDArray], bool]) -> NDArray[np.float64]:
    """Parse an (x, y) pair and check it is free; errors name the argument and the value."""
    try:
        p = np.asarray(xy, dtype=np.float64).reshape(2)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an (x, y) pair, got {xy!r}") from exc
    if not is_free(p):
        raise ValueError(f"{name}={xy!r} is not a free position (inside a wall or off the canvas)")
    return p


def corner_arc(radius: float, points: int) -> NDArray[np.float64]:
    """Offsets (K, 2) of a quarter arc from angle 0 (+x) to pi/2 (+y) around a wall corner.

    A shortest path of a disc wraps each corner along an arc of radius `radius`. The arc is
    replaced by a polygon whose chords stay just outside it (vertices on a slightly larger
    circle), so every chord is collision-free and the length errs by a small fraction of it.
    """
    step = (math.pi / 2) / (points - 1)
    inflated = (radius + PATH_MARGIN) / math.cos(step / 2)
    phi = np.arange(points) * step
    return inflated * np.stack([np.cos(phi), np.sin(phi)], axis=1)  # (K, 2)


def door_nodes(
    across: float,
    along: float,
    half_thickness: float,
    half_width: float,
    arc: NDArray[np.float64],
    *,
    vertical: bool = True,
    along_bounds: tuple[float, float] | None = None,
) -> NDArray[np.float64]:
    """Path-graph nodes of one door: two on its centre line, then an arc around each jamb corner.

    Coordinates are built across/along the wall (x/y for a vertical wall) and swapped for a
    horizontal one. Corners not strictly inside `along_bounds` (where that wall part is absent)
    are left out. The two centre-line nodes keep a door barely wider than the agent passable.
    """
    nodes = [np.array([[across - half_thickness, along], [across + half_thickness, along]])]
    for corner_along, into in ((along - half_width, 1.0), (along + half_width, -1.0)):
        if along_bounds is not None and not along_bounds[0] < corner_along < along_bounds[1]:
            continue
        for corner_across, out in ((across - half_thickness, -1.0), (across + half_thickness, 1.0)):
            nodes.append(np.array([corner_across, corner_along]) + arc * np.array([out, into]))
    points = np.concatenate(nodes)
    return points if vertical else points[:, ::-1].copy()


def visibility_graph(
    nodes: NDArray[np.float64],
    segment_is_free: Callable[[NDArray, NDArray], bool],
    linked: NDArray[np.bool_] | None = None,
) -> NDArray[np.float64]:
    """All-pairs shortest path lengths (N, N) over straight collision-free edges between nodes.

    Only pairs marked in `linked` (N, N), if given, are tested for an edge.
    """
    n = len(nodes)
    dist = np.full((n, n), math.inf)
    np.fill_diagonal(dist, 0.0)
    for i in range(n):
        for j in range(i + 1, n):
            if (linked is None or linked[i, j]) and segment_is_free(nodes[i], nodes[j]):
                dist[i, j] = dist[j, i] = float(np.linalg.norm(nodes[i] - nodes[j]))
    for k in range(n):  # Floyd-Warshall, vectorised over i and j; N is at most a few hundred
        dist = np.minimum(dist, dist[:, k : k + 1] + dist[k : k + 1, :])
    return dist


def path_length(
    start: NDArray,
    goal: NDArray,
    nodes: NDArray[np.float64],
    between: NDArray[np.float64],
    segment_is_free: Callable[[NDArray, NDArray], bool],
) -> float:
    """Pixels along the shortest path: the straight segment if free, else via the graph nodes.

    `between` is `visibility_graph(nodes, ...)`; math.inf when no route exists.
    """
    if segment_is_free(start, goal):
        return float(np.linalg.norm(goal - start))
    if len(nodes) == 0:
        return math.inf
    from_start = _visible_lengths(start, nodes, segment_is_free)
    to_goal = _visible_lengths(goal, nodes, segment_is_free)
    return float(np.min(from_start[:, None] + between + to_goal[None, :]))


def _visible_lengths(
    p: NDArray, nodes: NDArray, segment_is_free: Callable[[NDArray, NDArray], bool]
) -> NDArray[np.float64]:
    """Straight-line length from `p` to each node, inf where the segment is blocked."""
    return np.array([np.linalg.norm(q - p) if segment_is_free(p, q) else math.inf for q in nodes])


def _coverage(edges: NDArray, lo: float, hi: float) -> NDArray[np.float64]:
    """Fraction of each pixel interval [edges[k], edges[k+1]] covered by [lo, hi]."""
    return np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0.0, 1.0)


def wall_background(rects: Walls, width: int, height: int) -> NDArray[np.uint8]:
    """Floor and walls (H, W, 3), anti-aliased by exact pixel-area coverage; read-only."""
    xs = np.arange(width + 1, dtype=np.float64)
    ys = np.arange(height + 1, dtype=np.float64)
    cover = np.zeros((height, width), dtype=np.float64)
    for x0, y0, x1, y1 in rects:
        cover += np.outer(_coverage(ys, y0, y1), _coverage(xs, x0, x1))  # (H, W)
    cover = np.clip(cover, 0.0, 1.0)[..., None]  # walls may overlap where they cross
    floor, wall = np.array(FLOOR_RGB, np.float64), np.array(WALL_RGB, np.float64)
    image = np.rint(floor + (wall - floor) * cover).astype(np.uint8)
    image.flags.writeable = False  # meant to be cached and shared by every frame
    return image


def render_disc(background: NDArray[np.uint8], xy: ArrayLike, radius: float) -> NDArray[np.uint8]:
    """A fresh copy of `background` with the anti-aliased agent disc centred at `xy`.

    Pixel coverage is 0.5 minus the signed distance from the pixel centre to the disc edge,
    clipped to [0, 1], computed only in the disc's bounding box.
    """
    frame = background.copy()
    p = np.asarray(xy, dtype=np.float64).reshape(-1)
    x, y = float(p[0]), float(p[1])
    reach = radius + 1.0
    x0, x1 = max(math.floor(x - reach), 0), min(math.ceil(x + reach), frame.shape[1])
    y0, y1 = max(math.floor(y - reach), 0), min(math.ceil(y + reach), frame.shape[0])
    if x0 >= x1 or y0 >= y1:
        return frame
    dx = np.arange(x0, x1, dtype=np.float32) + np.float32(0.5 - x)
    dy = np.arange(y0, y1, dtype=np.float32) + np.float32(0.5 - y)
    dist = np.sqrt(dx[None, :] ** 2 + dy[:, None] ** 2)  # (h, w) pixel centre to agent centre
    cover = np.clip(np.float32(radius + 0.5) - dist, 0.0, 1.0)[..., None]
    patch = frame[y0:y1, x0:x1].astype(np.float32)
    patch += (np.array(AGENT_RGB, np.float32) - patch) * cover
    frame[y0:y1, x0:x1] = (patch + 0.5).astype(np.uint8)
    return frame


class DiscAgentConfig(Protocol):
    """What `DiscAgentEnv` reads from a world's (frozen dataclass) config."""

    @property
    def speed(self) -> float: ...
    @property
    def success_radius(self) -> float: ...
    @property
    def max_episode_steps(self) -> int: ...


ConfigT = TypeVar("ConfigT", bound=DiscAgentConfig)


class DiscAgentEnv(gymnasium.Env[NDArray[np.uint8], NDArray[np.float32]], Generic[ConfigT]):
    """Reach a goal position from pixels: the episode logic shared by the disc-agent worlds.

    Reward is `-distance / max(H, W)` (dense, for information; planners use goal images). An
    episode terminates within `success_radius` of the goal and truncates after
    `max_episode_steps`. A subclass sets `config_type` and provides the world through five hooks:
    `_frame_size`, `_is_free`, `_sample_position`, `_move` and `_render_at`.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 30}
    config_type: ClassVar[type]

    def __init__(
        self,
        config: ConfigT | None = None,
        render_mode: str | None = "rgb_array",
        **overrides: Any,
    ) -> None:
        """Build from a config and/or config field overrides (as `gymnasium.make` passes).

        Raises:
            TypeError: for an override that is not a field of `config_type`.
            ValueError: for an unsupported render mode or an invalid config.
        """
        super().__init__()
        known = {field.name for field in dataclasses.fields(self.config_type)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected keyword argument(s) {unknown}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.config: ConfigT = dataclasses.replace(config or self.config_type(), **overrides)
        self.render_mode = render_mode
        height, width = self._frame_size()
        self.observation_space = spaces.Box(0, 255, (height, width, 3), np.uint8)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._xy = np.zeros(2)
        self._goal_xy = np.zeros(2)
        self._goal_image: NDArray[np.uint8] | None = None
        self._steps = 0

    # The world, provided by a subclass.
    def _frame_size(self) -> tuple[int, int]:  # (H, W) in pixels
        raise NotImplementedError

    def _is_free(self, xy: NDArray) -> bool:
        raise NotImplementedError

    def _sample_position(self) -> NDArray[np.float32]:  # free, drawn with self.np_random
        raise NotImplementedError

    def _move(self, xy: NDArray, delta: NDArray) -> NDArray:  # where trying `delta` ends
        raise NotImplementedError

    def _render_at(self, xy: ArrayLike) -> NDArray[np.uint8]:  # a fresh (H, W, 3) frame
        raise NotImplementedError

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.uint8], dict[str, Any]]:
        """Start an episode; `options` may fix `"start"` and/or `"goal"` as (x, y) pairs.

        Positions not given are drawn uniformly among free ones; a drawn position is kept only
        if it is more than `success_radius` from the other, so episodes do not start solved.

        Raises:
            ValueError: for an unknown option or a position that is not free (naming it).
        """
        super().reset(seed=seed)
        options = options or {}
        unknown = sorted(set(options) - {"start", "goal"})
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}; known: 'start', 'goal'")
        start, goal = (
            None if options.get(key) is None else as_free_point(options[key], key, self._is_free)
            for key in ("start", "goal")
        )
        if start is None:
            start = self._sample_away_from(goal)
        if goal is None:
            goal = self._sample_away_from(start)
        self._xy, self._goal_xy, self._steps = start, goal, 0
        self._goal_image = self._render_at(goal)
        return self._render_at(self._xy), self._info()

    def step(
        self, action: ArrayLike
    ) -> tuple[NDArray[np.uint8], float, bool, bool, dict[str, Any]]:
        """Move by `speed * clip(action, -1, 1)`, sliding along walls (see `slide_move`)."""
        if self._goal_image is None:
            raise RuntimeError("call reset() before step()")
        a = np.asarray(action, dtype=np.float64).reshape(2)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action must be finite, got {action!r}")
        self._xy = self._move(self._xy, self.config.speed * np.clip(a, -1.0, 1.0))
        self._steps += 1
        info = self._info()
        reward = -info["distance"] / max(self._frame_size())
        truncated = self._steps >= self.config.max_episode_steps
        return self._render_at(self._xy), reward, info["success"], truncated, info

    def render(self) -> NDArray[np.uint8] | None:
        """The current frame (a fresh array, equal to the last observation); None without mode."""
        if self.render_mode is None:
            return None
        return self._render_at(self._xy)

    def _sample_away_from(self, other: NDArray | None) -> NDArray[np.float64]:
        for _ in range(MAX_SAMPLING_TRIES):
            xy = self._sample_position().astype(np.float64)
            if other is None or np.linalg.norm(xy - other) > self.config.success_radius:
                return xy
        raise RuntimeError(f"no free position farther than success_radius from {other}")

    def _info(self) -> dict[str, Any]:
        assert self._goal_image is not None
        distance = float(np.linalg.norm(self._xy - self._goal_xy))
        return {
            "state": self._xy.astype(np.float32),
            "goal_state": self._goal_xy.astype(np.float32),
            "goal": self._goal_image.copy(),
            "distance": distance,
            "success": distance <= self.config.success_radius,
        }
