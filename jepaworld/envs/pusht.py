"""PushT: push a T-shaped block with a round pusher, from pixels (over gym-pusht's pymunk world).

`jepaworld/PushT-v0` observes (size, size, 3) uint8 frames of gym-pusht's 512 x 512 canvas
(area-resampled, default 64 px) and acts with a 2-D *relative* action in [-1, 1]: the pusher's PD
target is its own position plus `action * action_scale` canvas px (gym-pusht's own action is an
absolute target in [0, 512]; a relative one keeps "the same action" meaning the same motion
anywhere, which a latent planner needs). Each step is gym-pusht's 0.1 s of PD control.

The true state is `info["state"]` = (agent x, agent y, block x, block y, block angle) in canvas
px and radians, as gym-pusht's `obs_type="state"`: for evaluation, except its first two entries,
the pusher's position, which an agent senses of itself (`--model.proprio 0 1`, DINO-WM's
proprioception; `info["goal_state"]` gives the goal's). The task is a goal
*state*: `reset(options={"goal": state})` (default: gym-pusht's goal pose for the block, the
pusher at its start) renders the goal image into `info["goal"]`; success is the DINO-WM criterion
(`pusht_success`): L2 of (agent xy, block xy) below 20 px and block angle error below pi / 9.
`reset(options={"start": state})` fixes the start.

Random actions rarely touch the block, so `ScriptedPusher` is the collection policy that
`jepaworld collect` uses here: it walks behind a random point of the T's outline and pushes
through it, with Gaussian noise on every action.

Needs the [pusht] extra (gym-pusht, pymunk); the error when it is missing says so.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import ArrayLike, NDArray

from jepaworld.envs.geometry import angle_error, check_number_fields, require

CANVAS = 512.0
"""gym-pusht's canvas side in px; states are in these units."""
SUCCESS_POSITION_PX = 20.0
"""DINO-WM's PushT success: L2 of (agent xy, block xy) to the goal's below this (canvas px) ..."""
SUCCESS_ANGLE = math.pi / 9
"""... and the block's angle within this of the goal's (radians, wrapped)."""
GOAL_POSE = (256.0, 256.0, math.pi / 4)
"""gym-pusht's goal pose of the block (x, y, angle), drawn as the green T on every frame."""
AGENT_RADIUS = 15.0
"""gym-pusht's pusher radius (canvas px)."""


def _states(state: ArrayLike, goal: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """A state and a goal as float arrays, each checked to be 5 entries."""
    s, g = np.asarray(state, np.float64), np.asarray(goal, np.float64)
    if s.shape[-1] != 5 or g.shape[-1] != 5:
        raise ValueError(f"PushT states have 5 entries, got {s.shape} and {g.shape}")
    return s, g


def pusht_errors(state: ArrayLike, goal: ArrayLike) -> tuple[float, float, float]:
    """(pusher error px, block position error px, block angle error radians, wrapped) of a state
    (agent x, y, block x, y, angle) against a goal state: which part of the goal was missed."""
    s, g = _states(state, goal)
    return (
        float(np.linalg.norm(s[:2] - g[:2])),
        float(np.linalg.norm(s[2:4] - g[2:4])),
        float(angle_error(s[4], g[4])),
    )


def pusht_success(state: ArrayLike, goal: ArrayLike) -> tuple[float, bool]:
    """(position error in canvas px, success) of a state (agent x, y, block x, y, angle) against a
    goal state, by DINO-WM's criterion (L2 over the first four entries < 20, angle error < pi/9)."""
    s, g = _states(state, goal)
    distance = float(np.linalg.norm(s[:4] - g[:4]))
    return distance, bool(
        distance < SUCCESS_POSITION_PX and angle_error(s[4], g[4]) < SUCCESS_ANGLE
    )


def turn_state(state: ArrayLike, m: ArrayLike) -> NDArray[np.float64]:
    """States (..., 5) turned about the canvas centre by a (2, 2) signed permutation `m` of (x, y)
    (`jepaworld.data.augment.element_matrix`): the pusher and the block move with it, and the T,
    symmetric about its own y axis, turns by m's angle or, where m mirrors, is mirrored (angle
    phi - angle for m = rotation(phi) @ diag(-1, 1)); angles in [0, 2 pi)."""
    s, m = np.asarray(state, np.float64), np.asarray(m, np.float64)
    centre = CANVAS / 2
    pusher = (s[..., 0:2] - centre) @ m.T + centre  # (..., 2)
    block = (s[..., 2:4] - centre) @ m.T + centre  # (..., 2)
    if np.linalg.det(m) > 0:
        angle = s[..., 4] + math.atan2(m[1, 0], m[0, 0])
    else:
        r = m @ np.diag([-1.0, 1.0])  # the rotation part
        angle = math.atan2(r[1, 0], r[0, 0]) - s[..., 4]
    return np.concatenate([pusher, block, (angle % (2 * math.pi))[..., None]], axis=-1)


def _import_gym_pusht() -> Any:
    """gym-pusht's PushTEnv class, or an ImportError naming the [pusht] extra."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        from gym_pusht.envs.pusht import PushTEnv as GymPushT
    except ImportError as e:
        raise ImportError(
            "jepaworld/PushT-v0 needs gym-pusht, from the [pusht] extra: "
            "pip install -c constraints.txt 'jepaworld[pusht]'"
        ) from e
    return GymPushT


@dataclass(frozen=True)
class PushTConfig:
    """Observation size, action scaling and episode length of jepaworld/PushT-v0."""

    size: int = 64
    """Side of the observed frames in px (the 512 px canvas is area-resampled to it)."""
    action_scale: float = 40.0
    """Canvas px between the pusher and its PD target for an action component of 1. Held, the
    pusher settles at about half of it per step (20 px/step, 0.04 of the canvas)."""
    max_episode_steps: int = 300
    """Steps after which an episode is truncated (gym-pusht's own limit)."""

    def __post_init__(self) -> None:
        check_number_fields(self)
        require(self.size >= 8, self, "size", "must be >= 8")
        require(self.action_scale > 0, self, "action_scale", "must be > 0")
        require(self.max_episode_steps >= 1, self, "max_episode_steps", "must be >= 1")


def _as_state(value: Any, key: str) -> NDArray[np.float64]:
    state = np.asarray(value, np.float64).reshape(-1)
    if state.shape != (5,) or not np.all(np.isfinite(state)):
        raise ValueError(
            f"options[{key!r}]: a PushT state is 5 finite numbers "
            f"(agent x, agent y, block x, block y, block angle), got {value!r}"
        )
    return state


def _place(sim: Any, state: NDArray[np.float64]) -> None:
    """Put a gym-pusht world in `state` exactly, at rest, its shapes drawn there. (gym-pusht's own
    reset_to_state sets the block's position before its angle, which turns it about its origin, not
    its centre of gravity: the block then reads back up to tens of px from the state asked for.)"""
    sim.reset(options={"reset_to_state": state})
    sim.block.angle = float(state[4])
    sim.block.position = (float(state[2]), float(state[3]))
    sim.agent.position = (float(state[0]), float(state[1]))
    for body in (sim.block, sim.agent):
        body.velocity, body.angular_velocity = (0.0, 0.0), 0.0
        sim.space.reindex_shapes_for_body(body)  # else a frame drawn before the next step shows
        # the shapes where reset_to_state's physics step left them


class PushTEnv(gym.Env):
    """jepaworld/PushT-v0; see the module docstring."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, config: PushTConfig | None = None, render_mode: str | None = None, **kw):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(
                f"jepaworld/PushT-v0: render_mode must be 'rgb_array', got {render_mode!r}"
            )
        self.config = dataclasses.replace(config or PushTConfig(), **kw)
        self.render_mode = "rgb_array"
        gym_pusht = _import_gym_pusht()
        self._sim = gym_pusht(obs_type="state")  # the episode's world
        self._goal_sim = gym_pusht(obs_type="state")  # renders goal images, never stepped
        s = self.config.size
        self.observation_space = gym.spaces.Box(0, 255, (s, s, 3), dtype=np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self._goal = np.zeros(5)
        self._goal_frame = np.zeros((s, s, 3), np.uint8)
        self._steps = 0

    # -- state and frames ------------------------------------------------------------------
    def state(self) -> NDArray[np.float64]:
        """(agent x, agent y, block x, block y, block angle in [0, 2 pi))."""
        return np.asarray(self._sim.get_obs(), np.float64)

    def block_outline(self) -> list[NDArray[np.float64]]:
        """The T's two rectangles, each (4, 2) world corners in canvas px."""
        body = self._sim.block
        return [
            np.array([tuple(body.local_to_world(v)) for v in shape.get_vertices()])
            for shape in self._sim._block_shapes
        ]

    def _frame(self, sim: Any) -> NDArray[np.uint8]:
        """gym-pusht's 512 px drawing, averaged down to `size` by pygame's smoothscale (within 2
        levels of PIL's box filter, 12x faster: ~0.25 ms here)."""
        import pygame  # gym-pusht's dependency, imported with it

        s = self.config.size
        screen = pygame.transform.smoothscale(sim._draw(), (s, s))  # (s, s) surface, x first
        return np.ascontiguousarray(np.transpose(pygame.surfarray.array3d(screen), (1, 0, 2)))

    def render_state(self, state: ArrayLike) -> NDArray[np.uint8]:
        """The frame of a state, without touching the episode."""
        _place(self._goal_sim, _as_state(state, "state"))
        return self._frame(self._goal_sim)

    def render(self) -> NDArray[np.uint8]:
        return self._frame(self._sim)

    # -- episode ---------------------------------------------------------------------------
    def _info(self) -> dict[str, Any]:
        state = self.state()
        distance, success = pusht_success(state, self._goal)
        return {
            "state": state.astype(np.float32),
            "goal": self._goal_frame.copy(),
            "goal_state": self._goal.astype(np.float32),
            "distance": distance,
            "success": success,
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.uint8], dict[str, Any]]:
        """Start an episode (gym-pusht's random start unless `options["start"]`); `options["goal"]`
        is the goal state (default: the block at GOAL_POSE, the pusher where it starts)."""
        super().reset(seed=seed)
        options = options or {}
        unknown = sorted(set(options) - {"start", "goal"})
        if unknown:
            raise ValueError(f"jepaworld/PushT-v0 reset: unknown options {unknown}")
        self._sim.reset(seed=None if seed is None else int(seed))
        if options.get("start") is not None:
            _place(self._sim, _as_state(options["start"], "start"))
        goal = options.get("goal")
        if goal is None:
            goal = [*self.state()[:2], *GOAL_POSE]
        self._goal = _as_state(goal, "goal")
        self._goal_frame = self.render_state(self._goal)
        self._steps = 0
        return self.render(), self._info()

    def step(
        self, action: ArrayLike
    ) -> tuple[NDArray[np.uint8], float, bool, bool, dict[str, Any]]:
        a = np.clip(np.asarray(action, np.float64).reshape(2), -1.0, 1.0)
        target = np.asarray(self._sim.agent.position) + a * self.config.action_scale
        self._sim.step(np.clip(target, 0.0, CANVAS))
        self._steps += 1
        info = self._info()
        truncated = self._steps >= self.config.max_episode_steps
        return self.render(), -info["distance"], info["success"], truncated, info

    def scripted_policy(self, rng: np.random.Generator, noise: float) -> ScriptedPusher:
        """The collection policy for this world (see ScriptedPusher)."""
        return ScriptedPusher(self, rng, noise)


class ScriptedPusher:
    """Pushes the T: picks a random point on the block's outline and a push direction (the
    outline's inward normal, turned by up to 30 degrees), walks to a point behind it, then pushes
    through for 4-12 steps at a random speed; one segment in seven is a free move to a random
    point instead. Gaussian noise of std `noise` (in action units) is added to every action."""

    def __init__(self, env: PushTEnv, rng: np.random.Generator, noise: float) -> None:
        self.env, self.rng, self.noise = env, rng, noise
        self._plan: list[tuple[str, NDArray[np.float64], int]] = []

    def _new_segment(self) -> None:
        rng = self.rng
        if rng.random() < 1 / 7:
            self._plan = [("goto", rng.uniform(40, CANVAS - 40, 2), 15)]
            return
        rects = self.env.block_outline()
        corners = rects[rng.integers(len(rects))]  # (4, 2)
        k = int(rng.integers(4))
        a, b = corners[k], corners[(k + 1) % 4]
        point = a + rng.random() * (b - a)
        centre = corners.mean(axis=0)
        edge = b - a
        normal = np.array([edge[1], -edge[0]]) / (np.linalg.norm(edge) + 1e-9)
        if np.dot(normal, centre - point) < 0:
            normal = -normal  # inward
        turn = rng.uniform(-math.pi / 6, math.pi / 6)
        c, s = math.cos(turn), math.sin(turn)
        direction = np.array([c * normal[0] - s * normal[1], s * normal[0] + c * normal[1]])
        behind = point - direction * (AGENT_RADIUS + 12)
        push = direction * rng.uniform(0.5, 1.0)
        self._plan = [
            ("goto", np.clip(behind, 20, CANVAS - 20), 12),
            ("push", push, int(rng.integers(4, 13))),
        ]

    def _action(self) -> NDArray[np.float64]:
        while not self._plan:
            self._new_segment()
        kind, value, left = self._plan[0]
        agent = self.env.state()[:2]
        if kind == "goto":
            offset = (value - agent) / self.env.config.action_scale
            done = np.linalg.norm(value - agent) < 10 or left <= 1
            action = offset / max(1.0, float(np.abs(offset).max()))
        else:
            done, action = left <= 1, value
        self._plan[0] = (kind, value, left - 1)
        if done:
            self._plan.pop(0)
        return action

    def __call__(self) -> NDArray[np.float32]:
        action = self._action() + self.rng.normal(0.0, self.noise, 2)
        return np.clip(action, -1.0, 1.0).astype(np.float32)
