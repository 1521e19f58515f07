"""Physics scenes: short 2-D videos of bouncing balls, and impossible twins for violation of expectation.

Garrido et al. (2025) measure intuitive physics as surprise: a model that has learned how objects
move predicts a possible video better than a matched impossible one. This module makes both from
one seed. A scene is a floor, solid canvas edges, maybe a solid wall segment standing on the
floor, maybe an opaque screen drawn in front of the balls, and one or two balls (discs, or squares
of the same size) thrown with random velocities. The possible video is the simulation; the
impossible one branches from it at one frame by breaking one rule (`PROPERTIES`), so the two are
identical up to `violation_frame` and a model's surprise can only come from the violation. Three
properties come as matched sets of four videos (`MATCHED_SETS`), so that the impossible videos are
not simply easier to predict than the possible ones.

Coordinates are continuous pixels, x to the right, y down; velocities are px/frame. Wall, floor
and screen are integer rectangles (crisp edges), balls are anti-aliased as in `two_room`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

PROPERTIES = ("permanence", "continuity", "solidity", "gravity", "constancy")
MATCHED_SETS = ("permanence", "gravity", "constancy")
"""Properties whose pairs come with a mirror pair (`VoEPair.possible_mirror`), as IntPhys does for
changes made behind an occluder (Riochet et al. 2018): at every frame index the two possible videos
and the two impossible ones hold the same two frames, so a score that looks at frames one at a
time cannot tell the sets apart, and only a model that predicts across time can. Without the
mirror, "the ball never comes out" is trivially less surprising than "the ball comes out", and a
ball that stops dead in mid-air than one that falls on and bounces. Gravity's set is two possible
flights through one point at one frame, each impossible video following one flight up to there
and the other after it (`_stage_gravity`)."""

Rect = tuple[int, int, int, int]
"""An integer rectangle (x0, y0, x1, y1): pixels x0..x1-1 by y0..y1-1."""
RGB = tuple[int, int, int]

BACKGROUND_RGBS: tuple[RGB, ...] = ((24, 26, 40), (38, 30, 28), (22, 38, 32), (36, 28, 44))
FLOOR_RGB: RGB = (112, 96, 80)
WALL_RGB: RGB = (190, 190, 198)
SCREEN_RGBS: tuple[RGB, ...] = ((96, 84, 124), (70, 102, 112), (124, 112, 78))  # muted
BALL_RGBS: tuple[RGB, ...] = (
    (232, 60, 50), (246, 160, 40), (240, 228, 70), (70, 204, 90),
    (60, 206, 232), (214, 80, 222), (90, 120, 255),
)  # fmt: skip

_MAX_SCENES = 500  # scenes tried per pair; typical pairs need a handful
_MAX_PLACEMENTS = 50
_SCREEN_WALL_GAP = 8  # px between screen and wall, so a bounce off the wall is in plain view
_JUMP_RANGE = (14.0, 20.0)  # continuity teleports, px: well beyond any one-frame displacement
_VISIBLE_DELTA = 40  # a pixel counts as visibly changed above this channel difference...
_VISIBLE_PIXELS = 25  # ...and a violation must change this many pixels in some frame


@dataclass(frozen=True)
class SceneConfig:
    """Distribution of scenes and the rules of motion (defaults: 64 px, 24 frames)."""

    size: int = 64
    """Canvas side in pixels; frames are (size, size, 3) uint8."""
    frames: int = 24
    """Frames per video."""
    gravity: float = 0.35
    """Downward acceleration in px/frame^2."""
    restitution: float = 0.8
    """Fraction of the normal speed kept by a bounce."""
    substeps: int = 4
    """Euler integration steps per frame; keeps fast balls from skipping into walls."""
    radius_range: tuple[float, float] = (3.0, 5.0)
    """Ball radius in px (a square has side 2 * radius)."""
    speed_range: tuple[float, float] = (1.0, 3.0)
    """Initial horizontal speed |vx| in px/frame, direction random."""
    lift_range: tuple[float, float] = (-3.0, 1.0)
    """Initial vy of a ball that starts in the air, px/frame (negative is up)."""
    min_balls: int = 1
    """Fewest balls in a scene."""
    max_balls: int = 2
    """Most balls in a scene."""
    square_prob: float = 0.25
    """Probability that a ball is drawn (and collides) as a square."""
    floor_height: int = 6
    """Height of the solid floor at the bottom, px."""
    wall_prob: float = 0.5
    """Probability of a solid vertical wall segment standing on the floor."""
    wall_width_range: tuple[int, int] = (4, 6)
    """Wall segment width, px."""
    wall_height_range: tuple[int, int] = (14, 30)
    """Wall segment height above the floor, px."""
    screen_prob: float = 0.5
    """Probability of an opaque screen standing on the floor, drawn in front of the balls."""
    screen_width_range: tuple[int, int] = (18, 26)
    """Screen width, px; must hide the largest ball with room to spare."""
    screen_height_range: tuple[int, int] = (24, 40)
    """Screen height above the floor, px."""
    context_frames: int = 6
    """A violation happens at this frame or later, so a model sees normal motion first."""
    evidence_frames: int = 4
    """A violation happens at least this many frames before the end, so its effect is seen."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            _check_type(self, field)
        lo_r, hi_r = self.radius_range
        _require(self.size >= 32, "size", "must be >= 32")
        _require(self.frames > self.context_frames + self.evidence_frames, "frames", "too short")
        _require(self.gravity > 0, "gravity", "must be > 0")
        _require(0 <= self.restitution <= 1, "restitution", "must be in [0, 1]")
        _require(self.substeps >= 1, "substeps", "must be >= 1")
        _require(lo_r >= 1, "radius_range", "must be >= 1")
        _require(self.speed_range[0] > 0, "speed_range", "must be > 0 (balls must move)")
        _require(
            1 <= self.min_balls <= self.max_balls <= 4, "max_balls", "needs 1 <= min <= max <= 4"
        )
        for name in ("square_prob", "wall_prob", "screen_prob"):
            _require(0 <= getattr(self, name) <= 1, name, "must be in [0, 1]")
        _require(4 <= self.floor_height <= self.size // 4, "floor_height", "must be in [4, size/4]")
        _require(self.wall_width_range[0] >= 2, "wall_width_range", "must be >= 2")
        room = self.size - self.floor_height - 2 * hi_r - 2
        for name in ("wall_height_range", "screen_height_range"):
            _require(2 * hi_r <= getattr(self, name)[0], name, "must be >= 2 * max radius")
            _require(getattr(self, name)[1] <= room, name, "leaves no room above for a ball")
        _require(self.screen_width_range[0] >= 2 * hi_r + 6, "screen_width_range", "too narrow")
        _require(self.screen_width_range[1] <= self.size // 2, "screen_width_range", "too wide")
        _require(self.context_frames >= 2, "context_frames", "must be >= 2")
        _require(self.evidence_frames >= 1, "evidence_frames", "must be >= 1")


def _check_type(config: SceneConfig, field: dataclasses.Field) -> None:
    """Fields are finite numbers or (low, high) pairs; a JSON list is accepted for a pair."""
    value, kind = getattr(config, field.name), numbers.Real
    if "int" in str(field.type):
        kind = numbers.Integral
    if str(field.type).startswith("tuple"):
        ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(map(_finite(kind), value))
        _require(ok and value[0] <= value[1], field.name, "must be a (low, high) pair, low <= high")
        object.__setattr__(config, field.name, tuple(value))
    else:
        _require(_finite(kind)(value), field.name, f"must be a finite {field.type}")


def _finite(kind: type) -> Callable[[object], bool]:
    return lambda v: not isinstance(v, bool) and isinstance(v, kind) and math.isfinite(v)


def _require(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise ValueError(f"SceneConfig.{name} {message}")


@dataclass(frozen=True)
class Ball:
    """A ball's looks and initial state; `square` draws it (and collides it) as a square."""

    radius: float
    rgb: RGB
    square: bool
    xy: tuple[float, float]
    velocity: tuple[float, float]


@dataclass(frozen=True)
class Scene:
    """The layout and the balls of one video; everything a simulation starts from."""

    background: RGB
    floor_y: int
    wall: Rect | None
    screen: Rect | None
    screen_rgb: RGB
    balls: tuple[Ball, ...]


@dataclass(frozen=True)
class Track:
    """Per-frame state of every ball: what rendering draws and what tests check.

    xy, velocity (T, N, 2) float64; rgb (T, N, 3) uint8; square, visible (T, N) bool;
    contact (T, N): touched anything during the step into the frame; side_hit (T, N): hit a
    vertical face of the wall segment (moving into it) during that step.
    """

    xy: NDArray[np.float64]
    velocity: NDArray[np.float64]
    rgb: NDArray[np.uint8]
    square: NDArray[np.bool_]
    visible: NDArray[np.bool_]
    contact: NDArray[np.bool_]
    side_hit: NDArray[np.bool_]


@dataclass(frozen=True)
class VoEPair:
    """A possible and an impossible video, identical before `violation_frame`, not at it.

    possible, impossible (and the mirrors, when present): (T, H, W, 3) uint8.
    """

    possible: NDArray[np.uint8]
    impossible: NDArray[np.uint8]
    violation_frame: int
    prop: str
    seed: int
    possible_mirror: NDArray[np.uint8] | None = None
    """For the `MATCHED_SETS` properties, the mirror pair of IntPhys's matched design. For a change
    made out of sight, the object has the impossible video's look (absent; the new colour or shape)
    before the change too, and the mirror's impossible video changes it back; for gravity, it is a
    second possible flight through the point where the ball breaks the rule, and the mirror's
    impossible video switches to the first flight there. Identical to `impossible_mirror` before
    `violation_frame`, which is the same frame for both pairs."""
    impossible_mirror: NDArray[np.uint8] | None = None

    @property
    def matched(self) -> bool:
        """Whether this is a matched set of four videos (two possible, two impossible)."""
        return self.possible_mirror is not None


@dataclass(frozen=True)
class StagedPair:
    """A pair with what made it: the scene, the tracks and the index of the ball that breaks."""

    pair: VoEPair
    scene: Scene
    possible: Track
    impossible: Track
    ball: int
    possible_mirror: Track | None = None
    impossible_mirror: Track | None = None


@dataclass(frozen=True)
class _Staging:
    """What a stager returns: the impossible track, the ball that breaks a rule and, when the
    stager makes the mirror pair itself (gravity), its (possible, impossible) tracks."""

    impossible: Track
    ball: int
    mirror: tuple[Track, Track] | None = None


@dataclass
class _Body:
    """Mutable simulation state of one ball; the per-ball rule overrides that stage violations."""

    x: float
    y: float
    vx: float
    vy: float
    r: float
    rgb: RGB
    square: bool
    g: float
    present: bool = True  # drawn and collides with other balls
    ghost: bool = False  # passes through the wall segment
    contact: bool = False
    side_hit: bool = False


# ---------------------------------------------------------------- scene sampling


def _place(rng: np.random.Generator, config: SceneConfig, wall: bool, avoid: Rect | None) -> Rect:
    """A wall segment or a screen standing on the floor, _SCREEN_WALL_GAP px clear of `avoid`.

    A wall keeps a ball's width plus 2 px from the canvas edges, so no ball gets wedged there.

    Raises:
        RuntimeError: if it cannot be placed (a config whose rectangles are too wide).
    """
    widths = config.wall_width_range if wall else config.screen_width_range
    heights = config.wall_height_range if wall else config.screen_height_range
    margin = math.ceil(2 * config.radius_range[1]) + 2 if wall else config.size // 8
    floor_y = config.size - config.floor_height
    for _ in range(_MAX_PLACEMENTS):
        w = int(rng.integers(widths[0], widths[1] + 1))
        h = int(rng.integers(heights[0], heights[1] + 1))
        x0 = int(rng.integers(margin, config.size - margin - w + 1))
        if (
            avoid is None
            or x0 >= avoid[2] + _SCREEN_WALL_GAP
            or x0 + w <= avoid[0] - _SCREEN_WALL_GAP
        ):
            return (x0, floor_y - h, x0 + w, floor_y)
    raise RuntimeError(f"no room for a {'wall' if wall else 'screen'} in {_MAX_PLACEMENTS} draws")


def _free_start(
    xy: tuple[float, float],
    r: float,
    config: SceneConfig,
    wall: Rect | None,
    balls: Iterable[Ball],
) -> bool:
    """Whether a ball of radius r may start at xy: inside the canvas and above the floor, clear of
    the wall and of the other balls."""
    (x, y), floor_y = xy, config.size - config.floor_height
    inside = r <= x <= config.size - r and r <= y <= floor_y - r
    clear_of_wall = wall is None or not _overlaps(xy, r + 1, wall)
    return inside and clear_of_wall and all(math.dist(xy, b.xy) > r + b.radius + 2 for b in balls)


def _sample_ball(
    rng: np.random.Generator, config: SceneConfig, wall: Rect | None, balls: list[Ball], rgb: RGB
) -> Ball:
    """A ball clear of the wall and the other balls, on the floor or thrown from the air."""
    floor_y = config.size - config.floor_height
    for _ in range(_MAX_PLACEMENTS):
        r = float(rng.uniform(*config.radius_range))
        x = float(rng.uniform(r, config.size - r))
        on_floor = rng.random() < 0.5
        y = floor_y - r if on_floor else float(rng.uniform(r + 2, floor_y - r - 2))
        vx = float(rng.choice([-1.0, 1.0]) * rng.uniform(*config.speed_range))
        vy = 0.0 if on_floor else float(rng.uniform(*config.lift_range))
        square = bool(rng.random() < config.square_prob)
        if _free_start((x, y), r, config, wall, balls):
            return Ball(r, rgb, square, (x, y), (vx, vy))
    raise RuntimeError(f"no free start for a ball in {_MAX_PLACEMENTS} draws; config {config}")


def sample_scene(
    rng: np.random.Generator,
    config: SceneConfig,
    need_wall: bool = False,
    need_screen: bool = False,
) -> Scene:
    """Draw a scene; `need_*` forces a wall or a screen in (a property's event needs it).

    The needed rectangle is placed first so that it always fits; the other one is left out when
    there is no room for it beside the first.
    """
    background = BACKGROUND_RGBS[rng.integers(len(BACKGROUND_RGBS))]
    screen_rgb = SCREEN_RGBS[rng.integers(len(SCREEN_RGBS))]
    want_wall = need_wall or rng.random() < config.wall_prob
    want_screen = need_screen or rng.random() < config.screen_prob
    wall = screen = None
    try:
        if need_screen:
            screen = _place(rng, config, False, None)
        wall = _place(rng, config, True, screen) if want_wall else None
        if want_screen and screen is None:
            screen = _place(rng, config, False, wall)
    except RuntimeError:
        if (need_wall and wall is None) or (need_screen and screen is None):
            raise
    n = int(rng.integers(config.min_balls, config.max_balls + 1))
    balls: list[Ball] = []
    for k in rng.choice(len(BALL_RGBS), size=n, replace=False):
        balls.append(_sample_ball(rng, config, wall, balls, BALL_RGBS[k]))
    floor_y = config.size - config.floor_height
    return Scene(background, floor_y, wall, screen, screen_rgb, tuple(balls))


# ---------------------------------------------------------------- simulation


def _overlaps(xy: tuple[float, float], r: float, rect: Rect) -> bool:
    """Whether the square of half-side r at xy overlaps rect (conservative for a disc)."""
    x, y = xy
    return x + r > rect[0] and x - r < rect[2] and y + r > rect[1] and y - r < rect[3]


def _bounce(b: _Body, nx: float, ny: float, config: SceneConfig) -> bool:
    """Reflect the velocity's normal component, scaled by restitution; settle slow landings.

    Returns whether the ball was moving into the surface (a real bounce, not a graze).
    """
    b.contact = True
    vn = b.vx * nx + b.vy * ny
    if vn >= 0:
        return False
    b.vx -= (1 + config.restitution) * vn * nx
    b.vy -= (1 + config.restitution) * vn * ny
    if ny and abs(b.vy) < config.gravity:  # no endless micro-bounces on a surface
        b.vy = 0.0
    return True


def _collide_rect(b: _Body, rect: Rect, config: SceneConfig) -> None:
    x0, y0, x1, y1 = rect
    cx, cy = min(max(b.x, x0), x1), min(max(b.y, y0), y1)
    dx, dy = b.x - cx, b.y - cy
    if not b.square and dx and dy:  # a disc beside a corner touches the corner point
        d = math.hypot(dx, dy)
        if d >= b.r:
            return
        nx, ny = dx / d, dy / d
        b.x, b.y = cx + nx * b.r, cy + ny * b.r
    else:  # a face contact: push out along the axis of least penetration
        pens = (b.x + b.r - x0, x1 - b.x + b.r, b.y + b.r - y0, y1 - b.y + b.r)
        k = int(np.argmin(pens))
        if pens[k] <= 0:
            return
        nx, ny = ((-1.0, 0.0), (1.0, 0.0), (0.0, -1.0), (0.0, 1.0))[k]
        b.x, b.y = b.x + nx * pens[k], b.y + ny * pens[k]
    b.side_hit |= _bounce(b, nx, ny, config) and ny == 0


def _collide_pair(a: _Body, c: _Body, restitution: float) -> None:
    """Balls as discs of mass radius^2: separate, then exchange a normal impulse."""
    dx, dy = c.x - a.x, c.y - a.y
    d, reach = math.hypot(dx, dy), a.r + c.r
    if d >= reach or d == 0:
        return
    nx, ny = dx / d, dy / d
    wa, wc = c.r**2 / (a.r**2 + c.r**2), a.r**2 / (a.r**2 + c.r**2)  # the lighter moves more
    a.x, a.y = a.x - nx * (reach - d) * wa, a.y - ny * (reach - d) * wa
    c.x, c.y = c.x + nx * (reach - d) * wc, c.y + ny * (reach - d) * wc
    vn = (c.vx - a.vx) * nx + (c.vy - a.vy) * ny
    if vn < 0:
        j = -(1 + restitution) * vn
        a.vx, a.vy = a.vx - j * wa * nx, a.vy - j * wa * ny
        c.vx, c.vy = c.vx + j * wc * nx, c.vy + j * wc * ny
    a.contact = c.contact = True


def _substep(scene: Scene, bodies: list[_Body], config: SceneConfig) -> None:
    dt = 1.0 / config.substeps
    for b in bodies:
        b.vy += b.g * dt
        b.x, b.y = b.x + b.vx * dt, b.y + b.vy * dt
    present = [b for b in bodies if b.present]
    for i, a in enumerate(present):  # pairs first, so walls and floor get the last word
        for c in present[i + 1 :]:
            _collide_pair(a, c, config.restitution)
    for b in bodies:
        for bad, pos, nx, ny in (
            (b.x < b.r, (b.r, b.y), 1.0, 0.0),
            (b.x > config.size - b.r, (config.size - b.r, b.y), -1.0, 0.0),
            (b.y < b.r, (b.x, b.r), 0.0, 1.0),
            (b.y > scene.floor_y - b.r, (b.x, scene.floor_y - b.r), 0.0, -1.0),
        ):
            if bad:
                b.x, b.y = pos
                _bounce(b, nx, ny, config)
        if scene.wall is not None and not b.ghost:
            _collide_rect(b, scene.wall, config)


def _rollout(scene: Scene, bodies: list[_Body], frames: int, config: SceneConfig) -> Track:
    """The current state as frame 0, then `frames - 1` simulated frames."""
    n = len(bodies)
    xy, vel = np.zeros((frames, n, 2)), np.zeros((frames, n, 2))  # (T, N, 2)
    rgb, flags = np.zeros((frames, n, 3), np.uint8), np.zeros((4, frames, n), bool)
    for t in range(frames):
        if t:
            for b in bodies:
                b.contact = b.side_hit = False
            for _ in range(config.substeps):
                _substep(scene, bodies, config)
        for i, b in enumerate(bodies):
            xy[t, i], vel[t, i], rgb[t, i] = (b.x, b.y), (b.vx, b.vy), b.rgb
            flags[:, t, i] = b.square, b.present, b.contact, b.side_hit
    return Track(xy, vel, rgb, *flags)


def simulate(scene: Scene, config: SceneConfig) -> Track:
    """The possible motion of the scene's balls over `config.frames` frames."""
    bodies = [
        _Body(*b.xy, *b.velocity, b.radius, b.rgb, b.square, config.gravity) for b in scene.balls
    ]
    return _rollout(scene, bodies, config.frames, config)


def _branch(scene: Scene, track: Track, t: int, ball: int, config: SceneConfig, **rule) -> Track:
    """`track` up to frame t-1, then from frame t with `rule` overriding one ball's attributes."""
    bodies = []
    for i, b in enumerate(scene.balls):
        (x, y), (vx, vy) = track.xy[t, i], track.velocity[t, i]
        rgb = tuple(int(c) for c in track.rgb[t, i])
        body = _Body(x, y, vx, vy, b.radius, rgb, bool(track.square[t, i]), config.gravity)
        body.present, body.contact = bool(track.visible[t, i]), bool(track.contact[t, i])
        body.side_hit = bool(track.side_hit[t, i])
        bodies.append(dataclasses.replace(body, **rule) if i == ball else body)
    tail = _rollout(scene, bodies, config.frames - t, config)
    fields = [f.name for f in dataclasses.fields(Track)]
    return Track(*(np.concatenate([getattr(track, f)[:t], getattr(tail, f)]) for f in fields))


# ---------------------------------------------------------------- rendering


def _background(scene: Scene, config: SceneConfig) -> NDArray[np.uint8]:
    image = np.empty((config.size, config.size, 3), dtype=np.uint8)  # (H, W, 3)
    image[:] = scene.background
    image[scene.floor_y :] = FLOOR_RGB
    if scene.wall is not None:
        x0, y0, x1, y1 = scene.wall
        image[y0:y1, x0:x1] = WALL_RGB
    return image


def _draw_ball(frame: NDArray[np.uint8], xy: NDArray, r: float, square: bool, rgb: NDArray) -> None:
    """Blend one anti-aliased ball into `frame` (H, W, 3) in place, within its bounding box.

    A disc's pixel coverage is 0.5 minus the signed distance from the pixel centre to the edge (as
    in `two_room`); a square's is its exact pixel-area overlap. Either touches only pixels whose
    index lies in `_span`, which is what makes a fully hidden ball leave no trace.
    """
    x, y, n = float(xy[0]), float(xy[1]), frame.shape[0]
    x0, x1 = max(math.floor(x - r - 1), 0), min(math.ceil(x + r + 1), n)
    y0, y1 = max(math.floor(y - r - 1), 0), min(math.ceil(y + r + 1), n)
    if x0 >= x1 or y0 >= y1:
        return
    cols, rows = np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32)
    if square:
        cx = np.clip(np.minimum(cols + 1, x + r) - np.maximum(cols, x - r), 0.0, 1.0)
        cy = np.clip(np.minimum(rows + 1, y + r) - np.maximum(rows, y - r), 0.0, 1.0)
        cover = np.outer(cy, cx)  # (h, w)
    else:
        dist = np.sqrt((cols[None, :] + 0.5 - x) ** 2 + (rows[:, None] + 0.5 - y) ** 2)  # (h, w)
        cover = np.clip(np.float32(r + 0.5) - dist, 0.0, 1.0)
    patch = frame[y0:y1, x0:x1].astype(np.float32)  # (h, w, 3)
    patch += (rgb.astype(np.float32) - patch) * cover[..., None]
    frame[y0:y1, x0:x1] = (patch + 0.5).astype(np.uint8)


def render(scene: Scene, track: Track, config: SceneConfig) -> NDArray[np.uint8]:
    """The video (T, H, W, 3) uint8: background, floor, wall, balls, then the screen in front."""
    video = np.repeat(_background(scene, config)[None], len(track.xy), axis=0)  # (T, H, W, 3)
    for t, frame in enumerate(video):
        for i, ball in enumerate(scene.balls):
            if track.visible[t, i]:
                _draw_ball(frame, track.xy[t, i], ball.radius, track.square[t, i], track.rgb[t, i])
    if scene.screen is not None:
        x0, y0, x1, y1 = scene.screen
        video[:, y0:y1, x0:x1] = scene.screen_rgb
    return video


# ---------------------------------------------------------------- staging violations


def _span(c: float, r: float) -> tuple[int, int]:
    """First and last pixel index touched by a ball of radius r centred at c (cover > 0)."""
    return math.floor(c - r - 1) + 1, math.ceil(c + r) - 1


def _hidden(screen: Rect, xy: NDArray, r: float) -> bool:
    (ax, bx), (ay, by) = _span(xy[0], r), _span(xy[1], r)
    return screen[0] <= ax and bx < screen[2] and screen[1] <= ay and by < screen[3]


def in_view(scene: Scene, xy: NDArray, r: float) -> bool:
    """No pixel of the ball is behind the screen."""
    if scene.screen is None:
        return True
    (ax, bx), (ay, by) = _span(xy[0], r), _span(xy[1], r)
    x0, y0, x1, y1 = scene.screen
    return bx < x0 or ax >= x1 or by < y0 or ay >= y1


def _window(config: SceneConfig) -> NDArray[np.int64]:
    return np.arange(config.context_frames, config.frames - config.evidence_frames + 1)


def _occlusion(
    scene: Scene, track: Track, rng: np.random.Generator, config: SceneConfig
) -> tuple[int, int] | None:
    """(ball, t_hide): a ball seen at frame 0, wholly behind the screen from t_hide, that comes
    out again inside the window and is then seen whole."""
    if scene.screen is None:
        return None
    for i in rng.permutation(len(scene.balls)):
        r = scene.balls[i].radius
        hidden = [_hidden(scene.screen, xy, r) for xy in track.xy[:, i]]
        if not in_view(scene, track.xy[0, i], r) or True not in hidden:
            continue
        t_hide = hidden.index(True)
        t_out = next((t for t in range(t_hide, config.frames) if not hidden[t]), None)
        if t_out in _window(config) and any(in_view(scene, xy, r) for xy in track.xy[t_out:, i]):
            return int(i), t_hide
    return None


def _stage_permanence(
    scene: Scene, track: Track, rng: np.random.Generator, config: SceneConfig
) -> _Staging | None:
    """Impossible: the ball vanishes while hidden, so nothing comes out from behind the screen."""
    if (found := _occlusion(scene, track, rng, config)) is None:
        return None
    i, t_hide = found
    return _Staging(_branch(scene, track, t_hide, i, config, present=False), i)


def _stage_constancy(
    scene: Scene, track: Track, rng: np.random.Generator, config: SceneConfig
) -> _Staging | None:
    """Impossible: the ball changes colour, or disc <-> square, while hidden by the screen."""
    if (found := _occlusion(scene, track, rng, config)) is None:
        return None
    i, t_hide = found
    if rng.random() < 0.5:
        unused = [c for c in BALL_RGBS if c not in {b.rgb for b in scene.balls}]
        old = track.rgb[t_hide, i].astype(float)
        rule = {"rgb": max(unused, key=lambda c: float(np.abs(np.subtract(c, old)).sum()))}
    else:
        rule = {"square": not track.square[t_hide, i]}
    return _Staging(_branch(scene, track, t_hide, i, config, **rule), i)


def _stage_continuity(
    scene: Scene, track: Track, rng: np.random.Generator, config: SceneConfig
) -> _Staging | None:
    """Impossible: in plain view, the ball jumps sideways by 14-20 px and moves on from there."""
    for i in rng.permutation(len(scene.balls)):
        r = scene.balls[i].radius
        for t in rng.permutation(_window(config)):
            if not (in_view(scene, track.xy[t - 1, i], r) and in_view(scene, track.xy[t, i], r)):
                continue
            for sign in rng.permutation([-1.0, 1.0]):
                xy = track.xy[t, i] + (sign * rng.uniform(*_JUMP_RANGE), 0.0)
                others = [track.xy[t, j] for j in range(len(scene.balls)) if j != i]
                if (
                    math.dist(xy, track.xy[t - 1, i]) >= _JUMP_RANGE[0]
                    and r <= xy[0] <= config.size - r
                    and in_view(scene, xy, r)
                    and (scene.wall is None or not _overlaps(xy, r + 1, scene.wall))
                    and all(math.dist(xy, o) > r + config.radius_range[1] + 1 for o in others)
                ):
                    return _Staging(_branch(scene, track, t, i, config, x=float(xy[0])), i)
    return None


def _stage_solidity(
    scene: Scene, track: Track, rng: np.random.Generator, config: SceneConfig
) -> _Staging | None:
    """Impossible: the ball meets the wall's side in plain view and passes through it."""
    for i in rng.permutation(len(scene.balls)):
        hits = np.flatnonzero(track.side_hit[:, i])
        if not hits.size or hits[0] not in _window(config):
            continue
        t, r = int(hits[0]), scene.balls[i].radius
        fast = abs(track.velocity[t - 1, i, 0]) >= 0.8  # so the ghost gets through in time
        if fast and all(in_view(scene, xy, r) for xy in track.xy[t - 1 : t + 3, i]):
            return _Staging(_branch(scene, track, t - 1, i, config, ghost=True), i)
    return None


def _flight_start(
    xy: NDArray, velocity: tuple[float, float], frames: int, config: SceneConfig
) -> tuple[tuple[float, float], tuple[float, float]]:
    """The state `frames` frames earlier of a ball in free flight that has `velocity` at `xy` now:
    `_substep`'s Euler steps undone one by one, so simulating forward from it comes back to xy (up
    to rounding) unless the ball meets something on the way."""
    (x, y), (vx, vy) = (float(xy[0]), float(xy[1])), velocity
    dt = 1.0 / config.substeps
    for _ in range(frames * config.substeps):
        x, y = x - vx * dt, y - vy * dt
        vy -= config.gravity * dt
    return (x, y), (vx, vy)


def _crossing_flight(
    scene: Scene,
    track: Track,
    ball: int,
    t: int,
    velocity: tuple[float, float],
    config: SceneConfig,
) -> Track | None:
    """The possible video in which `ball` passes its frame-t position in `track` at frame t, with
    `velocity` there: the scene simulated from where free flight back from that point starts.

    None unless the ball starts inside the scene, clear of the wall and the other balls, flies
    freely up to frame t + 3, is in plain view at t and t + 1, and the other balls move exactly as
    in `track` (it never meets them).
    """
    start_xy, start_velocity = _flight_start(track.xy[t, ball], velocity, t, config)
    r, rest = scene.balls[ball].radius, scene.balls[:ball] + scene.balls[ball + 1 :]
    if not _free_start(start_xy, r, config, scene.wall, rest):
        return None  # it would start in the floor, the wall, an edge or another ball
    balls = list(scene.balls)
    balls[ball] = dataclasses.replace(balls[ball], xy=start_xy, velocity=start_velocity)
    other = simulate(dataclasses.replace(scene, balls=tuple(balls)), config)
    others = np.arange(len(scene.balls)) != ball
    if (
        other.contact[: t + 4, ball].any()
        or not np.allclose(other.xy[t, ball], track.xy[t, ball], rtol=0.0, atol=1e-9)
        or not np.array_equal(other.xy[:, others], track.xy[:, others])
        or not all(in_view(scene, xy, r) for xy in other.xy[t : t + 2, ball])
    ):
        return None
    return other


def _splice(first: Track, second: Track, start: int, ball: int) -> Track:
    """`first`, except that `ball` follows `second` from frame `start` on."""
    arrays = []
    for f in dataclasses.fields(Track):
        a = getattr(first, f.name).copy()
        a[start:, ball] = getattr(second, f.name)[start:, ball]
        arrays.append(a)
    return Track(*arrays)


def _stage_gravity(
    scene: Scene, track: Track, rng: np.random.Generator, config: SceneConfig
) -> _Staging | None:
    """Impossible: a falling ball, in the air and in plain view, changes velocity with nothing to
    push it: it stops dead and drops from rest, or turns back up as if it bounced off nothing.

    Made as a matched set: a second possible flight of the ball passes the same point at the same
    frame t with the new velocity (thrown straight up to stop there, or rising through it). Each
    impossible video follows one flight up to t and the other after it, so the mirror's ball
    rising to the point then flies off as the first one falls on, kicked by nothing.
    """
    for stop in rng.permutation([True, False]):  # the other kind only if this one cannot be
        for i in rng.permutation(len(scene.balls)):
            r = scene.balls[i].radius
            for t in rng.permutation(_window(config) - 1):  # the last frame both flights share
                y, (vx, vy) = track.xy[t, i, 1], track.velocity[t, i]
                if (
                    track.contact[t : t + 4, i].any()
                    or vy <= 1.0
                    or y + r > scene.floor_y - 6
                    or not all(in_view(scene, xy, r) for xy in track.xy[t : t + 2, i])
                ):
                    continue
                velocity = (0.0, 0.0) if stop else (float(vx), -float(vy))
                flight = _crossing_flight(scene, track, int(i), int(t), velocity, config)
                if flight is not None:
                    mirror = (flight, _splice(flight, track, t + 1, i))
                    return _Staging(_splice(track, flight, t + 1, i), int(i), mirror)
    return None


_STAGERS = {  # property -> (stager, what the scene must contain)
    "permanence": (_stage_permanence, "screen"),
    "continuity": (_stage_continuity, None),
    "solidity": (_stage_solidity, "wall"),
    "gravity": (_stage_gravity, None),
    "constancy": (_stage_constancy, "screen"),
}


def _unseen_change_mirror(
    scene: Scene, possible: Track, impossible: Track, ball: int
) -> tuple[Track, Track] | None:
    """The mirror pair of a change made out of sight at frame t: the ball takes its after-change
    look (absent, or the new colour or shape) in frames before t as well. The possible mirror is
    the impossible track so redrawn (the new look throughout), the impossible mirror the possible
    track so redrawn (it changes back). None if the ball met another one before t: without it
    there, the other ball would bounce off nothing."""
    changed = (
        (possible.visible[:, ball] != impossible.visible[:, ball])
        | (possible.square[:, ball] != impossible.square[:, ball])
        | (possible.rgb[:, ball] != impossible.rgb[:, ball]).any(axis=-1)
    )  # (T,)
    t = int(np.argmax(changed))
    r = scene.balls[ball].radius
    for j, other in enumerate(scene.balls):
        gap = np.linalg.norm(
            possible.xy[: t + 1, ball] - possible.xy[: t + 1, j], axis=-1
        )  # (t+1,)
        if j != ball and (gap <= r + other.radius + 1).any():
            return None

    def new_look_before_t(tr: Track) -> Track:
        visible, rgb, square = tr.visible.copy(), tr.rgb.copy(), tr.square.copy()
        visible[:t, ball] = impossible.visible[t, ball]
        rgb[:t, ball], square[:t, ball] = impossible.rgb[t, ball], impossible.square[t, ball]
        return dataclasses.replace(tr, visible=visible, rgb=rgb, square=square)

    return new_look_before_t(impossible), new_look_before_t(possible)


def _violation_frame(possible: NDArray, impossible: NDArray, config: SceneConfig) -> int | None:
    """First frame where the videos differ, if it is inside the window and the change is plain."""
    differs = (possible != impossible).any(axis=(1, 2, 3))  # (T,)
    if not differs.any():
        return None
    frame = int(np.argmax(differs))
    delta = np.abs(possible[frame:].astype(np.int16) - impossible[frame:]).max(axis=-1)
    visible = (delta > _VISIBLE_DELTA).sum(axis=(1, 2)).max() >= _VISIBLE_PIXELS
    return frame if visible and frame in _window(config) else None


def stage_pair(prop: str, seed: int, config: SceneConfig = SceneConfig()) -> StagedPair:
    """Sample scenes from `seed` until the event of `prop` can be staged; return the pair.

    Raises:
        ValueError: for a property not in PROPERTIES.
        RuntimeError: if no scene in _MAX_SCENES allows the event (a config that forbids it).
    """
    if prop not in PROPERTIES:
        raise ValueError(f"unknown property {prop!r}; known: {', '.join(PROPERTIES)}")
    stager, needs = _STAGERS[prop]
    rng = np.random.default_rng(seed)
    for _ in range(_MAX_SCENES):
        scene = sample_scene(rng, config, need_wall=needs == "wall", need_screen=needs == "screen")
        possible = simulate(scene, config)
        if (staging := stager(scene, possible, rng, config)) is None:
            continue
        impossible, ball = staging.impossible, staging.ball
        others = np.arange(len(scene.balls)) != ball
        if not np.array_equal(possible.xy[:, others], impossible.xy[:, others]):
            continue  # another ball met the one that breaks a rule: two differences, not one
        videos = render(scene, possible, config), render(scene, impossible, config)
        if (frame := _violation_frame(*videos, config)) is None:
            continue
        pair = VoEPair(*videos, violation_frame=frame, prop=prop, seed=seed)
        if prop not in MATCHED_SETS:
            return StagedPair(pair, scene, possible, impossible, ball)
        mirror = staging.mirror or _unseen_change_mirror(scene, possible, impossible, ball)
        if mirror is None:
            continue
        mirror_videos = render(scene, mirror[0], config), render(scene, mirror[1], config)
        if _violation_frame(*mirror_videos, config) != frame:
            continue
        pair = dataclasses.replace(
            pair, possible_mirror=mirror_videos[0], impossible_mirror=mirror_videos[1]
        )
        return StagedPair(pair, scene, possible, impossible, ball, *mirror)
    raise RuntimeError(f"could not stage {prop!r} from seed {seed} in {_MAX_SCENES} scenes")


def make_pair(prop: str, seed: int, config: SceneConfig = SceneConfig()) -> VoEPair:
    """A possible/impossible pair for one property (see `PROPERTIES`), reproducible from `seed`.

    Example:
        >>> pair = make_pair("solidity", seed=3)
        >>> pair.possible.shape, bool((pair.possible[: pair.violation_frame]
        ...     == pair.impossible[: pair.violation_frame]).all())
        ((24, 64, 64, 3), True)
    """
    return stage_pair(prop, seed, config).pair


def make_video(seed: int, config: SceneConfig = SceneConfig()) -> NDArray[np.uint8]:
    """A possible video (T, H, W, 3) uint8 from the general scene distribution, for training."""
    scene = sample_scene(np.random.default_rng(seed), config)
    return render(scene, simulate(scene, config), config)
