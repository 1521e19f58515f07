"""Maze: a grid of rooms joined by doors, so that a goal can be many rooms and steps away.

The long-horizon sibling of Two-Room: the same round agent, the same 2-D velocity action scaled by
`speed` px per step, the same sliding collision rule and the same `info` keys. Rooms are square,
separated by interior walls; the canvas edge is the outer wall, as in Two-Room. Which walls
between adjacent rooms have a door comes from a random spanning tree over the room grid drawn
with `layout_seed` (a depth-first "backtracker" tree, whose long corridors make paths wind), so
every room is reachable; `extra_doors` opens further walls to create loops.

Canvas: 128x128 by default (3x3 rooms of 40 px, 4 px walls as in Two-Room). With 64x64 (20 px
rooms) the longest shortest path of a 3x3 maze is only 60-76 steps at speed 2, and with 96x96
94-116 steps depending on the layout (none >= 100 for layout_seed=0). At 128x128 every layout
seed tried (0-9) has goals >= 100 steps away: 6-17% of random start/goal pairs, 7-8% for seed 0,
longest 125-153 steps. 128 also halves exactly to the 64 px reference resolution. A non-square
grid gives (H, W, 3) frames.

Geometry helpers are pure functions of the config (cached per config), like Two-Room's.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from dataclasses import dataclass
from typing import Any, NamedTuple

import gymnasium
import numpy as np
from gymnasium import spaces
from numpy.typing import ArrayLike, NDArray

from jepaworld.envs.two_room import (
    _MAX_SAMPLING_TRIES,
    _PATH_MARGIN,
    AGENT_RGB,
    FLOOR_RGB,
    WALL_RGB,
    Rect,
    _point_rect_distance,
    _segment_rect_distance,
)

Room = tuple[int, int]
"""A room as (i, j): column i counted along x, row j counted along y, from the top-left."""

_ARC_POINTS = 5  # nodes per door-corner arc in the path graph; path error < 0.02 px per corner


@dataclass(frozen=True)
class MazeConfig:
    """Layout, geometry and dynamics of the maze (defaults: 3x3 rooms on a 128 px canvas)."""

    rooms_x: int = 3
    """Number of room columns."""
    rooms_y: int = 3
    """Number of room rows."""
    room_size: int = 40
    """Side of a room's free interior in pixels."""
    wall_thickness: int = 4
    """Thickness of the interior walls in pixels."""
    door_width: float = 16.0
    """Width of each door gap, centred on its wall; must exceed the agent's diameter."""
    agent_radius: float = 3.0
    """Radius of the round agent; collisions treat the agent as an exact disc."""
    speed: float = 2.0
    """Displacement in pixels per step for an action component of magnitude 1."""
    success_radius: float = 4.5
    """The episode succeeds when the agent centre is this close to the goal (pixels)."""
    max_episode_steps: int = 400
    """Steps after which an episode is truncated."""
    layout_seed: int = 0
    """Seed of the random spanning tree that decides which walls have a door."""
    extra_doors: int = 0
    """Doors added beyond the spanning tree (making loops); at most the walls left closed."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            kind = numbers.Integral if field.type == "int" else numbers.Real
            if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
                raise ValueError(f"MazeConfig.{field.name} must be a finite {field.type}")
        for name in ("rooms_x", "rooms_y", "wall_thickness", "max_episode_steps"):
            _require(getattr(self, name) >= 1, name, "must be >= 1")
        for name in ("agent_radius", "speed", "success_radius"):
            _require(getattr(self, name) > 0, name, "must be > 0")
        _require(self.layout_seed >= 0, "layout_seed", "must be >= 0")
        _require(self.room_size > 2 * self.agent_radius, "room_size", "must exceed 2 * radius")
        _require(self.door_width > 2 * self.agent_radius, "door_width", "must exceed 2 * radius")
        _require(self.door_width <= self.room_size, "door_width", "must be <= room_size")
        spare = len(_adjacent_pairs(self.rooms_x, self.rooms_y)) - (self.rooms_x * self.rooms_y - 1)
        _require(0 <= self.extra_doors <= spare, "extra_doors", f"must be in [0, {spare}]")

    @property
    def pitch(self) -> int:
        """Distance from one room's left (top) edge to the next room's."""
        return self.room_size + self.wall_thickness

    @property
    def width(self) -> int:
        """Canvas width in pixels."""
        return self.rooms_x * self.pitch - self.wall_thickness

    @property
    def height(self) -> int:
        """Canvas height in pixels."""
        return self.rooms_y * self.pitch - self.wall_thickness


def _require(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise ValueError(f"MazeConfig.{name} {message}")


class Door(NamedTuple):
    """A gap in the wall between two adjacent rooms."""

    rooms: tuple[Room, Room]
    """The rooms it joins; the second is right of (or below) the first."""
    centre: tuple[float, float]
    """Centre of the gap, midway through the wall's thickness."""


def _adjacent_pairs(rooms_x: int, rooms_y: int) -> list[tuple[Room, Room]]:
    right = [((i, j), (i + 1, j)) for i in range(rooms_x - 1) for j in range(rooms_y)]
    down = [((i, j), (i, j + 1)) for i in range(rooms_x) for j in range(rooms_y - 1)]
    return right + down


def _spanning_tree(rooms_x: int, rooms_y: int, rng: np.random.Generator) -> set[tuple[Room, Room]]:
    """A random depth-first ("recursive backtracker") spanning tree of the room grid.

    Chosen over a uniform spanning tree because it makes long corridors with few branches,
    which is what a long-horizon benchmark wants: many goal pairs far apart along the path.
    """
    start = (int(rng.integers(rooms_x)), int(rng.integers(rooms_y)))
    visited, stack, edges = {start}, [start], set()
    while stack:
        i, j = stack[-1]
        options = [
            (i + di, j + dj)
            for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1))
            if 0 <= i + di < rooms_x and 0 <= j + dj < rooms_y and (i + di, j + dj) not in visited
        ]
        if not options:
            stack.pop()
            continue
        room = options[int(rng.integers(len(options)))]
        visited.add(room)
        stack.append(room)
        edges.add(((i, j), room) if (i, j) < room else (room, (i, j)))
    return edges


@functools.lru_cache(maxsize=32)
def doors(config: MazeConfig) -> tuple[Door, ...]:
    """All doors of the layout, sorted by the rooms they join; a pure function of the config."""
    rng = np.random.default_rng(config.layout_seed)
    tree = _spanning_tree(config.rooms_x, config.rooms_y, rng)
    spare = [pair for pair in _adjacent_pairs(config.rooms_x, config.rooms_y) if pair not in tree]
    extra = [spare[k] for k in rng.permutation(len(spare))[: config.extra_doors]]
    p, half_room, half_wall = config.pitch, config.room_size / 2, config.wall_thickness / 2
    result = []
    for a, b in sorted(tree | set(extra)):
        if b[0] > a[0]:  # b is right of a: the door is in a vertical wall
            centre = (b[0] * p - half_wall, a[1] * p + half_room)
        else:
            centre = (a[0] * p + half_room, b[1] * p - half_wall)
        result.append(Door((a, b), centre))
    return tuple(result)


def door_centres(config: MazeConfig) -> NDArray[np.float64]:
    """Door centres (M, 2) in the order of `doors(config)`: natural subgoals between rooms."""
    return np.array([door.centre for door in doors(config)], dtype=np.float64).reshape(-1, 2)


def _open_intervals(length: float, gaps: list[float], width: float) -> list[tuple[float, float]]:
    """The parts of [0, length] left after removing gaps of `width` centred at `gaps`."""
    cuts = [0.0] + [e for c in sorted(gaps) for e in (c - width / 2, c + width / 2)] + [length]
    return [(lo, hi) for lo, hi in zip(cuts[::2], cuts[1::2], strict=True) if hi > lo]


@functools.lru_cache(maxsize=32)
def wall_rects(config: MazeConfig) -> tuple[Rect, ...]:
    """The interior walls as rectangles: each full-length wall line cut at its doors."""
    p, s, t, w = config.pitch, config.room_size, config.wall_thickness, config.door_width
    rects: list[Rect] = []
    for k in range(config.rooms_x - 1):  # vertical wall lines, between columns k and k + 1
        gaps = [d.centre[1] for d in doors(config) if d.rooms[1][0] == k + 1 > d.rooms[0][0]]
        x0 = float(k * p + s)
        rects += [(x0, lo, x0 + t, hi) for lo, hi in _open_intervals(config.height, gaps, w)]
    for k in range(config.rooms_y - 1):  # horizontal wall lines, between rows k and k + 1
        gaps = [d.centre[0] for d in doors(config) if d.rooms[1][1] == k + 1 > d.rooms[0][1]]
        y0 = float(k * p + s)
        rects += [(lo, y0, hi, y0 + t) for lo, hi in _open_intervals(config.width, gaps, w)]
    return tuple(rects)


@functools.lru_cache(maxsize=32)
def _rect_array(config: MazeConfig) -> NDArray[np.float64]:
    return np.array(wall_rects(config), dtype=np.float64).reshape(-1, 4)


def _nearby_rects(config: MazeConfig, a: NDArray, b: NDArray) -> list[Rect]:
    """Walls within agent_radius of the box around a and b: the only ones a sweep can touch."""
    r, rects = config.agent_radius, _rect_array(config)
    lo, hi = np.minimum(a, b) - r, np.maximum(a, b) + r
    near = (rects[:, 0] <= hi[0]) & (rects[:, 2] >= lo[0])
    near &= (rects[:, 1] <= hi[1]) & (rects[:, 3] >= lo[1])
    return [tuple(rect) for rect in rects[near]]


def _inside_canvas(config: MazeConfig, xy: NDArray) -> bool:
    r = config.agent_radius
    return bool(r <= xy[0] <= config.width - r and r <= xy[1] <= config.height - r)


def is_free(config: MazeConfig, xy: ArrayLike) -> bool:
    """Whether the agent disc centred at `xy` overlaps no wall (touching counts as free)."""
    p = np.asarray(xy, dtype=np.float64).reshape(-1)
    if p.shape != (2,) or not np.all(np.isfinite(p)) or not _inside_canvas(config, p):
        return False
    r = config.agent_radius
    return all(_point_rect_distance(p[0], p[1], rect) >= r for rect in _nearby_rects(config, p, p))


def _segment_is_free(config: MazeConfig, a: NDArray, b: NDArray) -> bool:
    """Whether the disc can sweep from `a` to `b` without overlapping a wall (no tunnelling)."""
    if not (_inside_canvas(config, a) and _inside_canvas(config, b)):
        return False
    r = config.agent_radius
    return all(_segment_rect_distance(a, b, rect) >= r for rect in _nearby_rects(config, a, b))


def _move(config: MazeConfig, xy: NDArray, delta: NDArray) -> NDArray:
    """Apply one displacement: the full move, else slide along x, else along y, else stay.

    The same rule as Two-Room's `_move`, over the maze's walls.
    """
    for step in (delta, np.array([delta[0], 0.0]), np.array([0.0, delta[1]])):
        if np.any(step != 0):
            target = xy + step
            if _segment_is_free(config, xy, target):
                return target
    return xy.copy()


def room_of(config: MazeConfig, xy: ArrayLike) -> Room:
    """The room (i, j) containing `xy`; a point inside a wall or door goes to the nearer side."""
    p = np.asarray(xy, dtype=np.float64).reshape(2)
    half_wall = config.wall_thickness / 2
    i = int(np.clip((p[0] + half_wall) // config.pitch, 0, config.rooms_x - 1))
    j = int(np.clip((p[1] + half_wall) // config.pitch, 0, config.rooms_y - 1))
    return i, j


def sample_free_position(config: MazeConfig, rng: np.random.Generator) -> NDArray[np.float32]:
    """A position drawn uniformly among free ones (rejection sampling; the float32 is checked)."""
    r = config.agent_radius
    lo, hi = np.array([r, r]), np.array([config.width - r, config.height - r])
    for _ in range(_MAX_SAMPLING_TRIES):
        xy = rng.uniform(lo, hi).astype(np.float32)
        if is_free(config, xy):
            return xy
    raise RuntimeError(f"no free position found in {_MAX_SAMPLING_TRIES} draws for {config}")


def _as_point(config: MazeConfig, xy: Any, name: str) -> NDArray[np.float64]:
    """Parse an (x, y) pair and check it is free; errors name the argument and the value."""
    try:
        p = np.asarray(xy, dtype=np.float64).reshape(2)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an (x, y) pair, got {xy!r}") from exc
    if not is_free(config, p):
        raise ValueError(f"{name}={xy!r} is not a free position (inside a wall or off the canvas)")
    return p


def _door_nodes(config: MazeConfig, door: Door) -> NDArray[np.float64]:
    """Path-graph nodes of one door: arcs around its four jamb corners, and two on its centre line.

    As in Two-Room, a shortest path wraps a corner along an arc of radius agent_radius; the arc
    is a polygon with vertices on a slightly larger circle, so its chords are collision-free.
    Coordinates are built across/along the wall, then swapped for a horizontal wall.
    """
    step = (math.pi / 2) / (_ARC_POINTS - 1)
    radius = (config.agent_radius + _PATH_MARGIN) / math.cos(step / 2)
    phi = np.arange(_ARC_POINTS) * step  # 0: beside the corner, in a room; pi/2: in the door
    vertical = door.rooms[1][0] > door.rooms[0][0]
    across, along = door.centre if vertical else door.centre[::-1]
    half_t, half_w = config.wall_thickness / 2, config.door_width / 2
    nodes = [np.array([[across - half_t, along], [across + half_t, along]])]
    for corner_along, into in ((along - half_w, 1.0), (along + half_w, -1.0)):
        for corner_across, out in ((across - half_t, -1.0), (across + half_t, 1.0)):
            arc = [
                corner_across + out * radius * np.cos(phi),
                corner_along + into * radius * np.sin(phi),
            ]
            nodes.append(np.stack(arc, axis=1))
    points = np.concatenate(nodes)
    return points if vertical else points[:, ::-1].copy()


@functools.lru_cache(maxsize=32)
def _door_graph(config: MazeConfig) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Door nodes (N, 2) and their all-pairs shortest path lengths (N, N), in pixels.

    Only nodes of doors sharing a room are tested for a straight edge: a longer straight line
    through a third door is then a chain of edges via that door's nodes, which costs at most a
    fraction of a pixel, and it keeps the graph cheap to build (a few hundred nodes).
    """
    per_door = [_door_nodes(config, door) for door in doors(config)]
    nodes = np.concatenate(per_door) if per_door else np.zeros((0, 2))
    owner = np.repeat(np.arange(len(per_door)), [len(n) for n in per_door])
    keep = np.array([is_free(config, node) for node in nodes], dtype=bool)
    nodes, owner = nodes[keep], owner[keep]
    rooms = [set(door.rooms) for door in doors(config)]
    n = len(nodes)
    dist = np.full((n, n), math.inf)
    np.fill_diagonal(dist, 0.0)
    for i in range(n):
        for j in range(i + 1, n):
            if rooms[owner[i]] & rooms[owner[j]] and _segment_is_free(config, nodes[i], nodes[j]):
                dist[i, j] = dist[j, i] = float(np.linalg.norm(nodes[i] - nodes[j]))
    for k in range(n):  # Floyd-Warshall, vectorised over i and j
        dist = np.minimum(dist, dist[:, k : k + 1] + dist[k : k + 1, :])
    return nodes, dist


def _visible_lengths(config: MazeConfig, p: NDArray, nodes: NDArray) -> NDArray[np.float64]:
    """Straight-line length from `p` to each node, inf where the segment is blocked."""
    return np.array(
        [np.linalg.norm(q - p) if _segment_is_free(config, p, q) else math.inf for q in nodes]
    )


def shortest_path_steps(config: MazeConfig, start: ArrayLike, goal: ArrayLike) -> float:
    """Length of the shortest collision-free path of the agent disc, in env steps.

    The straight segment when the disc can sweep it; otherwise a path that bends around door
    corners, found on a visibility graph (see `_door_graph`), accurate to well under a step.
    Steps are pixels / `speed`; a diagonal action covers up to sqrt(2) * speed per step.

    Raises:
        ValueError: if `start` or `goal` is not free (naming which).

    Returns:
        Steps, or math.inf if unreachable (impossible: the doors form a spanning tree).
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


def _coverage(edges: NDArray, lo: float, hi: float) -> NDArray[np.float64]:
    """Fraction of each pixel interval [edges[k], edges[k+1]] covered by [lo, hi]."""
    return np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0.0, 1.0)


@functools.lru_cache(maxsize=32)
def _background(config: MazeConfig) -> NDArray[np.uint8]:
    """Floor and walls, anti-aliased by exact pixel-area coverage; computed once per config."""
    xs = np.arange(config.width + 1, dtype=np.float64)
    ys = np.arange(config.height + 1, dtype=np.float64)
    cover = np.zeros((config.height, config.width), dtype=np.float64)
    for x0, y0, x1, y1 in wall_rects(config):
        cover += np.outer(_coverage(ys, y0, y1), _coverage(xs, x0, x1))  # (H, W)
    cover = np.clip(cover, 0.0, 1.0)[..., None]  # walls overlap where lines cross
    floor, wall = np.array(FLOOR_RGB, np.float64), np.array(WALL_RGB, np.float64)
    image = np.rint(floor + (wall - floor) * cover).astype(np.uint8)
    image.flags.writeable = False  # shared by every frame; render_scene copies it
    return image


def _draw_disc(frame: NDArray[np.uint8], x: float, y: float, radius: float) -> None:
    """Blend an anti-aliased agent disc into `frame` in place, exactly as Two-Room draws it."""
    reach = radius + 1.0
    x0, x1 = max(math.floor(x - reach), 0), min(math.ceil(x + reach), frame.shape[1])
    y0, y1 = max(math.floor(y - reach), 0), min(math.ceil(y + reach), frame.shape[0])
    if x0 >= x1 or y0 >= y1:
        return
    dx = np.arange(x0, x1, dtype=np.float32) + np.float32(0.5 - x)
    dy = np.arange(y0, y1, dtype=np.float32) + np.float32(0.5 - y)
    dist = np.sqrt(dx[None, :] ** 2 + dy[:, None] ** 2)  # (h, w) pixel centre to agent centre
    cover = np.clip(np.float32(radius + 0.5) - dist, 0.0, 1.0)[..., None]
    patch = frame[y0:y1, x0:x1].astype(np.float32)
    patch += (np.array(AGENT_RGB, np.float32) - patch) * cover
    frame[y0:y1, x0:x1] = (patch + 0.5).astype(np.uint8)


def render_scene(config: MazeConfig, xy: ArrayLike) -> NDArray[np.uint8]:
    """The maze with the agent centred at `xy`, as a fresh uint8 (H, W, 3) array.

    The whole layout is drawn in every frame, so a single image tells where the doors are.
    Rendering a goal image is the same call with the goal position.
    """
    frame = _background(config).copy()
    p = np.asarray(xy, dtype=np.float64).reshape(-1)
    _draw_disc(frame, float(p[0]), float(p[1]), config.agent_radius)
    return frame


class MazeEnv(gymnasium.Env[NDArray[np.uint8], NDArray[np.float32]]):
    """Reach a goal position, possibly many rooms away, from pixels.

    The same API, dynamics and `info` keys as `TwoRoomEnv`: reward is `-distance / max(H, W)`
    (dense, for information; planners use goal images), termination within `success_radius`
    of the goal, truncation after `max_episode_steps`.

    Example:
        >>> env = MazeEnv(layout_seed=1)
        >>> obs, info = env.reset(seed=0, options={"start": (15.0, 15.0)})
        >>> obs.shape, info["state"]
        ((128, 128, 3), array([15., 15.], dtype=float32))
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self,
        config: MazeConfig | None = None,
        render_mode: str | None = "rgb_array",
        **overrides: Any,
    ) -> None:
        """Build from a config and/or `MazeConfig` field overrides (as `gymnasium.make` passes).

        Raises:
            TypeError: for an override that is not a `MazeConfig` field.
            ValueError: for an unsupported render mode or an invalid config.
        """
        super().__init__()
        unknown = sorted(set(overrides) - {field.name for field in dataclasses.fields(MazeConfig)})
        if unknown:
            raise TypeError(f"MazeEnv got unexpected keyword argument(s) {unknown}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.config = dataclasses.replace(config or MazeConfig(), **overrides)
        self.render_mode = render_mode
        shape = (self.config.height, self.config.width, 3)
        self.observation_space = spaces.Box(0, 255, shape, np.uint8)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._xy = np.zeros(2)
        self._goal_xy = np.zeros(2)
        self._goal_image: NDArray[np.uint8] | None = None
        self._steps = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.uint8], dict[str, Any]]:
        """Start an episode; `options` may fix `"start"` and/or `"goal"` as (x, y) pairs.

        Positions not given are drawn uniformly among free ones (so most goals are rooms
        away); a drawn position is kept only if it is more than `success_radius` from the other.

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
        reward = -info["distance"] / max(self.config.width, self.config.height)
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
