"""Two-Room: a round agent, one vertical wall with a door, pixels as observations.

The navigation task of PLDM and stable-worldmodel, rebuilt in plain numpy so that collecting data
and rendering goal images costs almost nothing next to the model. Coordinates are continuous
pixels on the canvas, x to the right and y down. The true state is exposed through `info` for
evaluation only; a planner sees pixels.

The geometry helpers (`is_free`, `shortest_path_steps`, ...) are pure functions of the config so
the evaluation protocol and the baselines can use them without an environment instance.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from numpy.typing import ArrayLike, NDArray

FLOOR_RGB = (30, 30, 30)
WALL_RGB = (200, 200, 200)
AGENT_RGB = (230, 60, 50)

Rect = tuple[float, float, float, float]
"""An axis-aligned rectangle as (x0, y0, x1, y1) in pixels, x0 <= x1 and y0 <= y1."""

_MAX_SAMPLING_TRIES = 10_000
_ARC_POINTS = 9  # nodes per door-corner arc in the path graph; error < 0.01 * agent_radius
_PATH_MARGIN = 1e-6  # keeps path-graph chords strictly outside the inflated walls


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
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            kind = numbers.Integral if field.type == "int" else numbers.Real
            if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
                raise ValueError(f"TwoRoomConfig.{field.name} must be a finite {field.type}")
        r = self.agent_radius
        (wall_left, wall_right), (door_top, door_bottom) = self.wall_span, self.door_span
        _require(self.size >= 8, "size", "must be >= 8")
        for name in ("agent_radius", "wall_thickness", "speed", "success_radius"):
            _require(getattr(self, name) > 0, name, "must be > 0")
        _require(self.max_episode_steps >= 1, "max_episode_steps", "must be >= 1")
        # Each room must be wider than the agent, or half the world is unreachable.
        _require(wall_left > 2 * r, "wall_x", "leaves no room left of the wall")
        _require(wall_right < self.size - 2 * r, "wall_x", "leaves no room right of the wall")
        _require(self.door_height > 2 * r, "door_height", "must exceed 2 * agent_radius")
        _require(door_top >= 0 and door_bottom <= self.size, "door_y", "puts the door off-canvas")

    @property
    def wall_span(self) -> tuple[float, float]:
        """x of the wall's left and right faces."""
        return self.wall_x - self.wall_thickness / 2, self.wall_x + self.wall_thickness / 2

    @property
    def door_span(self) -> tuple[float, float]:
        """y of the door's top and bottom edges."""
        return self.door_y - self.door_height / 2, self.door_y + self.door_height / 2


def _require(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise ValueError(f"TwoRoomConfig.{name} {message}")


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


def _point_rect_distance(px: float, py: float, rect: Rect) -> float:
    x0, y0, x1, y1 = rect
    return math.hypot(max(x0 - px, 0.0, px - x1), max(y0 - py, 0.0, py - y1))


def _segment_rect_distance(a: NDArray, b: NDArray, rect: Rect) -> float:
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
    return min(_point_rect_distance(a[0] + t * dx, a[1] + t * dy, rect) for t in ts if 0 <= t <= 1)


def _inside_canvas(config: TwoRoomConfig, xy: NDArray) -> bool:
    lo, hi = config.agent_radius, config.size - config.agent_radius
    return bool(lo <= xy[0] <= hi and lo <= xy[1] <= hi)


def is_free(config: TwoRoomConfig, xy: ArrayLike) -> bool:
    """Whether the agent disc centred at `xy` overlaps no wall (touching counts as free)."""
    p = np.asarray(xy, dtype=np.float64).reshape(-1)
    if p.shape != (2,) or not np.all(np.isfinite(p)) or not _inside_canvas(config, p):
        return False
    r = config.agent_radius
    return all(_point_rect_distance(p[0], p[1], rect) >= r for rect in wall_rects(config))


def _segment_is_free(config: TwoRoomConfig, a: NDArray, b: NDArray) -> bool:
    """Whether the disc can sweep from `a` to `b` without overlapping a wall.

    The canvas bounds are a convex box, so checking both endpoints covers the whole segment;
    sweeping the interior walls exactly is what rules out tunnelling at any speed.
    """
    if not (_inside_canvas(config, a) and _inside_canvas(config, b)):
        return False
    r = config.agent_radius
    return all(_segment_rect_distance(a, b, rect) >= r for rect in wall_rects(config))


def _move(config: TwoRoomConfig, xy: NDArray, delta: NDArray) -> NDArray:
    """Apply one displacement: the full move, else slide along x, else along y, else stay."""
    for step in (delta, np.array([delta[0], 0.0]), np.array([0.0, delta[1]])):
        if np.any(step != 0):
            target = xy + step
            if _segment_is_free(config, xy, target):
                return target
    return xy.copy()


def sample_free_position(config: TwoRoomConfig, rng: np.random.Generator) -> NDArray[np.float32]:
    """A position drawn uniformly among free ones (rejection sampling on the canvas).

    The float32 value itself is checked, so a position read back from `info["state"]` is free.
    """
    lo, hi = config.agent_radius, config.size - config.agent_radius
    for _ in range(_MAX_SAMPLING_TRIES):
        xy = rng.uniform(lo, hi, size=2).astype(np.float32)
        if is_free(config, xy):
            return xy
    raise RuntimeError(f"no free position found in {_MAX_SAMPLING_TRIES} draws for {config}")


def _as_point(config: TwoRoomConfig, xy: Any, name: str) -> NDArray[np.float64]:
    """Parse an (x, y) pair and check it is free; errors name the argument and the value."""
    try:
        p = np.asarray(xy, dtype=np.float64).reshape(2)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an (x, y) pair, got {xy!r}") from exc
    if not is_free(config, p):
        raise ValueError(f"{name}={xy!r} is not a free position (inside a wall or off the canvas)")
    return p


def straight_line_action(
    state: ArrayLike, goal: ArrayLike, speed: float = TwoRoomConfig.speed
) -> NDArray[np.float32]:
    """The action heading straight for the goal, blind to walls: the baseline policy.

    The displacement `(goal - state) / speed` is scaled down uniformly (not clipped per axis) so
    that it fits in [-1, 1]^2: the direction is kept, and a near goal is reached exactly.
    """
    delta = (np.asarray(goal, dtype=np.float64) - np.asarray(state, dtype=np.float64)) / speed
    return (delta / max(1.0, float(np.max(np.abs(delta))))).astype(np.float32)


def _door_corner_nodes(config: TwoRoomConfig) -> NDArray[np.float64]:
    """Graph nodes where a shortest path can bend: around the four corners of the door gap.

    A shortest path of a disc wraps each corner along an arc of radius agent_radius. The arc is
    replaced by a polygon whose chords stay just outside the arc (vertices on a slightly larger
    circle), so every chord is collision-free and the length errs by < 0.01 * agent_radius.
    Two nodes on the door's centre line keep a door barely wider than the agent passable.
    """
    step = (math.pi / 2) / (_ARC_POINTS - 1)
    radius = (config.agent_radius + _PATH_MARGIN) / math.cos(step / 2)
    phi = np.arange(_ARC_POINTS) * step  # 0: beside the corner, outside; pi/2: in the door
    arc = radius * np.stack([np.cos(phi), np.sin(phi)], axis=1)  # (K, 2)
    (x_left, x_right), (top, bottom) = config.wall_span, config.door_span
    nodes = [np.array([[x_left, config.door_y], [x_right, config.door_y]])]
    for corner_y, sign_y in ((top, 1.0), (bottom, -1.0)):
        if 0 < corner_y < config.size:  # else that part of the wall is absent
            for corner_x, sign_x in ((x_left, -1.0), (x_right, 1.0)):
                nodes.append(np.array([corner_x, corner_y]) + arc * np.array([sign_x, sign_y]))
    candidates = np.concatenate(nodes)
    return candidates[[is_free(config, node) for node in candidates]]


@functools.lru_cache(maxsize=32)
def _door_graph(config: TwoRoomConfig) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Door-corner nodes (N, 2) and their all-pairs shortest path lengths (N, N), in pixels."""
    nodes = _door_corner_nodes(config)
    n = len(nodes)
    dist = np.full((n, n), math.inf)
    np.fill_diagonal(dist, 0.0)
    for i in range(n):
        for j in range(i + 1, n):
            if _segment_is_free(config, nodes[i], nodes[j]):
                dist[i, j] = dist[j, i] = float(np.linalg.norm(nodes[i] - nodes[j]))
    for k in range(n):  # Floyd-Warshall; N is a few dozen
        dist = np.minimum(dist, dist[:, k : k + 1] + dist[k : k + 1, :])
    return nodes, dist


def _visible_lengths(config: TwoRoomConfig, p: NDArray, nodes: NDArray) -> NDArray[np.float64]:
    """Straight-line length from `p` to each node, inf where the segment is blocked."""
    return np.array(
        [np.linalg.norm(q - p) if _segment_is_free(config, p, q) else math.inf for q in nodes]
    )


def shortest_path_steps(config: TwoRoomConfig, start: ArrayLike, goal: ArrayLike) -> float:
    """Length of the shortest collision-free path of the agent disc, in env steps.

    The path is the straight segment when the disc can sweep it; otherwise it bends around the
    door corners (see `_door_corner_nodes`), found by a visibility graph. Steps are the length
    in pixels divided by `speed`, i.e. the count of full-speed steps along the path.

    A diagonal action covers up to sqrt(2) * speed, so an agent may need fewer actual steps.

    Raises:
        ValueError: if `start` or `goal` is not free (naming which): a caller bug, not an inf.

    Returns:
        Steps, or math.inf if unreachable (impossible for a valid config: the door fits).
    """
    s, g = _as_point(config, start, "start"), _as_point(config, goal, "goal")
    if _segment_is_free(config, s, g):
        return float(np.linalg.norm(g - s)) / config.speed
    nodes, between = _door_graph(config)
    if len(nodes) == 0:
        return math.inf
    from_start = _visible_lengths(config, s, nodes)
    to_goal = _visible_lengths(config, g, nodes)
    return float(np.min(from_start[:, None] + between + to_goal[None, :])) / config.speed


@functools.lru_cache(maxsize=32)
def _background(config: TwoRoomConfig) -> NDArray[np.uint8]:
    """Floor and walls, anti-aliased by exact pixel-area coverage; computed once per config."""
    edges = np.arange(config.size + 1, dtype=np.float64)
    cover = np.zeros((config.size, config.size), dtype=np.float64)
    for x0, y0, x1, y1 in wall_rects(config):
        cols = np.clip(np.minimum(edges[1:], x1) - np.maximum(edges[:-1], x0), 0.0, 1.0)
        rows = np.clip(np.minimum(edges[1:], y1) - np.maximum(edges[:-1], y0), 0.0, 1.0)
        cover += np.outer(rows, cols)  # (H, W)
    cover = np.clip(cover, 0.0, 1.0)[..., None]
    floor, wall = np.array(FLOOR_RGB, np.float64), np.array(WALL_RGB, np.float64)
    image = np.rint(floor + (wall - floor) * cover).astype(np.uint8)
    image.flags.writeable = False  # shared by every frame; render_scene copies it
    return image


def render_scene(config: TwoRoomConfig, xy: ArrayLike) -> NDArray[np.uint8]:
    """The scene with the agent centred at `xy`, as a fresh uint8 (H, W, 3) array.

    The agent is an anti-aliased disc: pixel coverage is 0.5 minus the signed distance from the
    pixel centre to the disc edge, clipped to [0, 1], computed only in the disc's bounding box.
    Rendering a goal image is the same call with the goal position.
    """
    frame = _background(config).copy()
    x, y = float(np.asarray(xy).reshape(-1)[0]), float(np.asarray(xy).reshape(-1)[1])
    reach = config.agent_radius + 1.0
    x0, x1 = max(math.floor(x - reach), 0), min(math.ceil(x + reach), config.size)
    y0, y1 = max(math.floor(y - reach), 0), min(math.ceil(y + reach), config.size)
    if x0 >= x1 or y0 >= y1:
        return frame
    dx = np.arange(x0, x1, dtype=np.float32) + np.float32(0.5 - x)
    dy = np.arange(y0, y1, dtype=np.float32) + np.float32(0.5 - y)
    dist = np.sqrt(dx[None, :] ** 2 + dy[:, None] ** 2)  # (h, w) pixel centre to agent centre
    cover = np.clip(np.float32(config.agent_radius + 0.5) - dist, 0.0, 1.0)[..., None]
    patch = frame[y0:y1, x0:x1].astype(np.float32)
    patch += (np.array(AGENT_RGB, np.float32) - patch) * cover
    frame[y0:y1, x0:x1] = (patch + 0.5).astype(np.uint8)
    return frame


class TwoRoomEnv(gymnasium.Env[NDArray[np.uint8], NDArray[np.float32]]):
    """Reach a goal position, possibly in the other room through the door, from pixels.

    Reward is `-distance / size` (dense, for information; planners use goal images). An episode
    terminates within `success_radius` of the goal and truncates after `max_episode_steps`.

    Example:
        >>> env = TwoRoomEnv(door_y=20.0)
        >>> obs, info = env.reset(seed=0, options={"start": (10.0, 20.0)})
        >>> obs.shape, info["state"]
        ((64, 64, 3), array([10., 20.], dtype=float32))
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self,
        config: TwoRoomConfig | None = None,
        render_mode: str | None = "rgb_array",
        **overrides: Any,
    ) -> None:
        """Build from a config and/or `TwoRoomConfig` field overrides (as `gymnasium.make` passes).

        Raises:
            TypeError: for an override that is not a `TwoRoomConfig` field.
            ValueError: for an unsupported render mode or an invalid config.
        """
        super().__init__()
        known = {field.name for field in dataclasses.fields(TwoRoomConfig)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"TwoRoomEnv got unexpected keyword argument(s) {unknown}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.config = dataclasses.replace(config or TwoRoomConfig(), **overrides)
        self.render_mode = render_mode
        n = self.config.size
        self.observation_space = spaces.Box(0, 255, (n, n, 3), np.uint8)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._xy = np.zeros(2)
        self._goal_xy = np.zeros(2)
        self._goal_image: NDArray[np.uint8] | None = None
        self._steps = 0

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
            None if options.get(key) is None else _as_point(self.config, options[key], key)
            for key in ("start", "goal")
        )
        if start is None:
            start = self._sample_away_from(goal)
        if goal is None:
            goal = self._sample_away_from(start)
        self._xy, self._goal_xy, self._steps = start, goal, 0
        self._goal_image = render_scene(self.config, goal)
        return render_scene(self.config, self._xy), self._info()

    def step(
        self, action: ArrayLike
    ) -> tuple[NDArray[np.uint8], float, bool, bool, dict[str, Any]]:
        """Move by `speed * clip(action, -1, 1)`, sliding along walls (see `_move`)."""
        if self._goal_image is None:
            raise RuntimeError("call reset() before step()")
        a = np.asarray(action, dtype=np.float64).reshape(2)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action must be finite, got {action!r}")
        self._xy = _move(self.config, self._xy, self.config.speed * np.clip(a, -1.0, 1.0))
        self._steps += 1
        info = self._info()
        reward = -info["distance"] / self.config.size
        truncated = self._steps >= self.config.max_episode_steps
        return render_scene(self.config, self._xy), reward, info["success"], truncated, info

    def render(self) -> NDArray[np.uint8] | None:
        """The current frame (a fresh array, equal to the last observation); None without mode."""
        if self.render_mode is None:
            return None
        return render_scene(self.config, self._xy)

    def _sample_away_from(self, other: NDArray | None) -> NDArray[np.float64]:
        for _ in range(_MAX_SAMPLING_TRIES):
            xy = sample_free_position(self.config, self.np_random).astype(np.float64)
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
