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

import functools
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from jepaworld.envs import geometry
from jepaworld.envs.geometry import AGENT_RGB, FLOOR_RGB, WALL_RGB, Rect, require

__all__ = [
    "AGENT_RGB",
    "FLOOR_RGB",
    "WALL_RGB",
    "Door",
    "MazeConfig",
    "MazeEnv",
    "Rect",
    "Room",
    "door_centres",
    "doors",
    "is_free",
    "render_scene",
    "room_of",
    "sample_free_position",
    "shortest_path_steps",
    "wall_rects",
]

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
        geometry.check_number_fields(self)
        for name in ("rooms_x", "rooms_y", "wall_thickness", "max_episode_steps"):
            require(getattr(self, name) >= 1, self, name, "must be >= 1")
        for name in ("agent_radius", "speed", "success_radius"):
            require(getattr(self, name) > 0, self, name, "must be > 0")
        require(self.layout_seed >= 0, self, "layout_seed", "must be >= 0")
        r2 = 2 * self.agent_radius
        require(self.room_size > r2, self, "room_size", "must exceed 2 * radius")
        require(self.door_width > r2, self, "door_width", "must exceed 2 * radius")
        require(self.door_width <= self.room_size, self, "door_width", "must be <= room_size")
        spare = len(_adjacent_pairs(self.rooms_x, self.rooms_y)) - (self.rooms_x * self.rooms_y - 1)
        require(0 <= self.extra_doors <= spare, self, "extra_doors", f"must be in [0, {spare}]")

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


def is_free(config: MazeConfig, xy: ArrayLike) -> bool:
    """Whether the agent disc centred at `xy` overlaps no wall (touching counts as free)."""
    w, h, r = config.width, config.height, config.agent_radius
    return geometry.disc_is_free(xy, _rect_array(config), w, h, r, cull=True)


def _segment_is_free(config: MazeConfig, a: NDArray, b: NDArray) -> bool:
    """Whether the disc can sweep from `a` to `b` without overlapping a wall (no tunnelling)."""
    w, h, r = config.width, config.height, config.agent_radius
    return geometry.sweep_is_free(a, b, _rect_array(config), w, h, r, cull=True)


def room_of(config: MazeConfig, xy: ArrayLike) -> Room:
    """The room (i, j) containing `xy`; a point inside a wall or door goes to the nearer side."""
    p = np.asarray(xy, dtype=np.float64).reshape(2)
    half_wall = config.wall_thickness / 2
    i = int(np.clip((p[0] + half_wall) // config.pitch, 0, config.rooms_x - 1))
    j = int(np.clip((p[1] + half_wall) // config.pitch, 0, config.rooms_y - 1))
    return i, j


def sample_free_position(config: MazeConfig, rng: np.random.Generator) -> NDArray[np.float32]:
    """A position drawn uniformly among free ones (rejection sampling; the float32 is checked)."""
    free = functools.partial(is_free, config)
    w, h, r = config.width, config.height, config.agent_radius
    return geometry.sample_free_position(rng, w, h, r, free, config)


def _door_nodes(config: MazeConfig, door: Door, arc: NDArray) -> NDArray[np.float64]:
    """Path-graph nodes of one door: arcs around its four jamb corners, and two on its centre line.

    As in Two-Room, a shortest path wraps a corner along an arc of radius agent_radius; the arc
    is a polygon with vertices on a slightly larger circle, so its chords are collision-free.
    """
    vertical = door.rooms[1][0] > door.rooms[0][0]
    across, along = door.centre if vertical else door.centre[::-1]
    half_t, half_w = config.wall_thickness / 2, config.door_width / 2
    return geometry.door_nodes(across, along, half_t, half_w, arc, vertical=vertical)


@functools.lru_cache(maxsize=32)
def _door_graph(config: MazeConfig) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Door nodes (N, 2) and their all-pairs shortest path lengths (N, N), in pixels.

    Only nodes of doors sharing a room are tested for a straight edge: a longer straight line
    through a third door is then a chain of edges via that door's nodes, which costs at most a
    fraction of a pixel, and it keeps the graph cheap to build (a few hundred nodes).
    """
    arc = geometry.corner_arc(config.agent_radius, _ARC_POINTS)
    per_door = [_door_nodes(config, door, arc) for door in doors(config)]
    nodes = np.concatenate(per_door) if per_door else np.zeros((0, 2))
    owner = np.repeat(np.arange(len(per_door)), [len(n) for n in per_door])
    keep = np.array([is_free(config, node) for node in nodes], dtype=bool)
    nodes, owner = nodes[keep], owner[keep]
    rooms = [set(door.rooms) for door in doors(config)]
    share = np.array([[bool(a & b) for b in rooms] for a in rooms], dtype=bool)
    linked = share.reshape(len(rooms), len(rooms))[np.ix_(owner, owner)]
    sweep = functools.partial(_segment_is_free, config)
    return nodes, geometry.visibility_graph(nodes, sweep, linked)


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
    free = functools.partial(is_free, config)
    s, g = geometry.as_free_point(start, "start", free), geometry.as_free_point(goal, "goal", free)
    sweep = functools.partial(_segment_is_free, config)
    return geometry.path_length(s, g, *_door_graph(config), sweep) / config.speed


@functools.lru_cache(maxsize=32)
def _background(config: MazeConfig) -> NDArray[np.uint8]:
    """Floor and walls, anti-aliased by exact pixel-area coverage; computed once per config."""
    return geometry.wall_background(wall_rects(config), config.width, config.height)


def render_scene(config: MazeConfig, xy: ArrayLike) -> NDArray[np.uint8]:
    """The maze with the agent centred at `xy`, as a fresh uint8 (H, W, 3) array.

    The whole layout is drawn in every frame, so a single image tells where the doors are.
    Rendering a goal image is the same call with the goal position.
    """
    return geometry.render_disc(_background(config), xy, config.agent_radius)


class MazeEnv(geometry.DiscAgentEnv[MazeConfig]):
    """Reach a goal position, possibly many rooms away, from pixels.

    The same API, dynamics and `info` keys as `TwoRoomEnv`: reward is `-distance / max(H, W)`
    (dense, for information; planners use goal images), termination within `success_radius`
    of the goal, truncation after `max_episode_steps`. Drawn start and goal positions are
    uniform among free ones, so most goals are rooms away.

    Example:
        >>> env = MazeEnv(layout_seed=1)
        >>> obs, info = env.reset(seed=0, options={"start": (15.0, 15.0)})
        >>> obs.shape, info["state"]
        ((128, 128, 3), array([15., 15.], dtype=float32))
    """

    config_type = MazeConfig

    def _frame_size(self) -> tuple[int, int]:
        return self.config.height, self.config.width

    def _is_free(self, xy: NDArray) -> bool:
        return is_free(self.config, xy)

    def _sample_position(self) -> NDArray[np.float32]:
        return sample_free_position(self.config, self.np_random)

    def _move(self, xy: NDArray, delta: NDArray) -> NDArray:
        w, h, r = self.config.width, self.config.height, self.config.agent_radius
        return geometry.slide_move(xy, delta, _rect_array(self.config), w, h, r, cull=True)

    def _render_at(self, xy: ArrayLike) -> NDArray[np.uint8]:
        return render_scene(self.config, xy)
