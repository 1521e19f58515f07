"""Any Gymnasium environment as a pixel world: render rgb_array, square it, keep the state in info.

jepaworld's worlds observe uint8 (H, W, 3) frames. `make_pixel_env(ID, size)` makes any registered
environment with a Box action space look the same: each observation is the environment's
`render()` in rgb_array mode, centre-cropped to a square and area-resized to `size`; the
environment's own observation goes to `info["state"]` (flattened float32), for evaluation only.
Environments that already observe pixels of another size are resized the same way; jepaworld's
own worlds keep their native size (e.g. Maze-v0's 128 px) unless a size is given, when their
frames are area-resized to it.

MuJoCo environments render headless through EGL (MUJOCO_GL=egl unless set) with shadows,
reflections and multisampling off; gymnasium-robotics mazes are seen from straight above
(`maze_view`). Errors name the environment: an id that is not registered, a
missing optional package or extra (with the pip command), no rgb_array rendering, or a non-Box
action space.
"""

from __future__ import annotations

import importlib
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator
from numpy.typing import NDArray
from PIL import Image

from jepaworld.envs.geometry import angle_error


def square_resize(frame: NDArray[np.uint8], size: int) -> NDArray[np.uint8]:
    """(H, W, 3) uint8 -> (size, size, 3): centre crop to a square, then area resampling."""
    h, w = frame.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    square = Image.fromarray(np.ascontiguousarray(frame[y0 : y0 + side, x0 : x0 + side, :3]))
    return np.array(square.resize((size, size), Image.Resampling.BOX))  # writable


class PixelObservation(gym.Wrapper):
    """Observations are rendered frames (size, size, 3) uint8; the original one is info["state"]."""

    def __init__(self, env: gym.Env, size: int, env_id: str) -> None:
        super().__init__(env)
        if env.render_mode != "rgb_array":
            raise ValueError(
                f"--env {env_id}: needs render_mode='rgb_array', got {env.render_mode!r}"
            )
        self.size = size
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), dtype=np.uint8)
        self.fast_mujoco = fast_mujoco_rendering(env)
        self.view = maze_view(env) if self.fast_mujoco else None
        """The camera the frames come from when it is not the environment's own (`maze_view`);
        `jepaworld collect` records it in the manifest's env_config."""

    def _frame(self) -> NDArray[np.uint8]:
        frame = self.env.render()
        if not isinstance(frame, np.ndarray) or frame.ndim != 3:
            raise ValueError(
                f"{self.env.spec.id if self.env.spec else self.env}: render() gave no image"
            )
        return square_resize(frame, self.size)

    def _info(self, obs: Any, info: dict[str, Any]) -> dict[str, Any]:
        state = gym.spaces.flatten(self.env.observation_space, obs)  # Dict/Tuple spaces too
        return {**info, "state": np.asarray(state, dtype=np.float32).reshape(-1)}

    def reset(self, **kwargs: Any) -> tuple[NDArray[np.uint8], dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return self._frame(), self._info(obs, info)

    def step(self, action: Any) -> tuple[NDArray[np.uint8], float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._frame(), float(reward), terminated, truncated, self._info(obs, info)


def _mujoco_renderer(env: gym.Env) -> Any:
    """The MuJoCo renderer of a gymnasium MuJoCo env, also one nested a level down (PointMaze
    keeps it on `point_env`); None for other environments."""
    top = env.unwrapped
    for holder in (top, *vars(top).values()):
        renderer = getattr(holder, "mujoco_renderer", None)
        if renderer is not None and hasattr(renderer, "model"):
            return renderer
    return None


def fast_mujoco_rendering(env: gym.Env) -> bool:
    """Turn off shadows, reflections and multisampling of a MuJoCo env's offscreen renderer (none
    of them matter at 64 px). benchmarks/render.py on PointMaze_UMaze-v3, 2-core CPU, EGL: 254 ->
    435 steps+renders/s at 64 px, 150 -> 256 at 224 px (measured before `maze_view`).
    Returns whether the env had a MuJoCo renderer."""
    renderer = _mujoco_renderer(env)
    if renderer is None:
        return False
    import mujoco

    renderer.model.vis.quality.offsamples = 0  # before the GL context exists
    scene = renderer._get_viewer("rgb_array").scn  # gymnasium creates the viewer lazily
    scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
    scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
    return True


MAZE_VIEW = "top-down"
"""The view of gymnasium-robotics mazes (`maze_view`); a change to it gets a new name."""


def maze_view(env: gym.Env) -> str | None:
    """Look straight down on a gymnasium-robotics maze (PointMaze, AntMaze), the whole maze in the
    square frame, with the environment's own goal marker hidden. Their default camera looks at the
    maze from 45 degrees, where the near walls hide much of the corridors and the small agent,
    while the goal marker (a random place drawn at reset, not the protocol's goal) shows; from
    above, a 64 px frame shows the UMaze's inside at about 18 px a cell and the ball as a disc.
    Returns the view's name (recorded with the data), None for other environments."""
    maze = getattr(env.unwrapped, "maze", None)
    renderer = _mujoco_renderer(env)
    if maze is None or renderer is None:
        return None
    camera = renderer._get_viewer("rgb_array").cam
    # the maze is centred at 0 and its border cells are walls: frame the inside and a quarter
    # of a border cell on each side
    half = (max(maze.map_length, maze.map_width) - 1.5) * maze.maze_size_scaling / 2
    camera.elevation, camera.azimuth = -90.0, 90.0  # x to the right, y up
    camera.lookat[:] = 0.0
    camera.distance = half / math.tan(math.radians(renderer.model.vis.global_.fovy / 2))
    target = getattr(env.unwrapped, "target_site_id", None)
    if target is not None:
        renderer.model.site_rgba[target, 3] = 0.0  # transparent: rendering only
    return MAZE_VIEW


_EXTRAS = {
    "PointMaze": ("gymnasium_robotics", "mujoco"),
    "AntMaze": ("gymnasium_robotics", "mujoco"),
}
"""Env id prefixes registered by an optional package: (module to import, jepaworld extra)."""


def _registered_spec(env_id: str) -> Any:
    """gymnasium's spec of `env_id`, importing the package that registers it when known."""
    for prefix, (module, extra) in _EXTRAS.items():
        if env_id.startswith(prefix) and env_id not in gym.registry:
            try:
                registrar = importlib.import_module(module)
            except ImportError as e:
                raise ImportError(
                    f"--env {env_id}: needs {module}, from the [{extra}] extra: "
                    f"pip install -c constraints.txt 'jepaworld[{extra}]'"
                ) from e
            gym.register_envs(registrar)
    try:
        return gym.spec(env_id)
    except gym.error.Error as e:
        raise ValueError(f"--env {env_id}: not a registered Gymnasium environment ({e})") from e


def _render_size(entry: Any, size: int) -> dict[str, int]:
    """MuJoCo envs render at any width/height: ask for `size` rather than resizing 480 px frames."""
    name = entry if isinstance(entry, str) else getattr(entry, "__module__", "")
    mujoco_based = "mujoco" in name or "gymnasium_robotics" in name
    return {"width": size, "height": size} if mujoco_based else {}


def is_pixel_env(env: gym.Env, size: int | None = None) -> bool:
    """True when observations are uint8 (H, W, 3) frames (of `size` x `size`, when given)."""
    space = env.observation_space
    pixels = (
        isinstance(space, gym.spaces.Box)
        and space.dtype == np.uint8
        and len(space.shape) == 3
        and space.shape[-1] == 3
    )
    return pixels and (size is None or tuple(space.shape[:2]) == (size, size))


DEFAULT_SIZE = 64
"""Frame side of other environments' renders when no size is given."""


class ResizedFrames(gym.ObservationWrapper):
    """A pixel world's frames area-resized to `size` x `size` (jepaworld's worlds at a size of
    the caller's choosing)."""

    def __init__(self, env: gym.Env, size: int) -> None:
        super().__init__(env)
        self.size = size
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), dtype=np.uint8)

    def observation(self, observation: NDArray[np.uint8]) -> NDArray[np.uint8]:
        return square_resize(observation, self.size)


_RENDER_SIZED = {"jepaworld/PushT-v0"}
"""jepaworld worlds that draw their frames at any size (the others are resized)."""


def make_pixel_env(env_id: str, size: int | None, **kwargs: Any) -> gym.Env:
    """`gymnasium.make(env_id)` observing `size` px frames (None: a jepaworld world's own size,
    DEFAULT_SIZE for other environments); see the module docstring.

    Raises:
        ValueError: unknown id, no rgb_array rendering, or an action space that is not a Box.
        ImportError: the environment needs a package that is not installed.
    """
    import jepaworld.envs  # noqa: F401  (registers the built-in environments)

    os.environ.setdefault("MUJOCO_GL", "egl")  # headless MuJoCo rendering, if any
    spec = _registered_spec(env_id)
    if env_id.startswith("jepaworld/"):  # our own worlds observe pixels at their native size
        if env_id in _RENDER_SIZED and size is not None:
            kwargs = {"size": size, **kwargs}
        env = gym.make(spec, **kwargs)
        return env if size is None or is_pixel_env(env, size) else ResizedFrames(env, size)
    size = size or DEFAULT_SIZE
    try:
        entry = spec.entry_point
        creator = load_env_creator(entry) if isinstance(entry, str) else entry
        modes = getattr(creator, "metadata", {}).get("render_modes", ["rgb_array"])
        if "rgb_array" not in modes:
            raise ValueError(
                f"--env {env_id}: cannot render rgb_array frames (render_modes: {modes})"
            )
        env = gym.make(spec, render_mode="rgb_array", **{**_render_size(entry, size), **kwargs})
    except (gym.error.DependencyNotInstalled, ModuleNotFoundError) as e:
        raise ImportError(f"--env {env_id}: needs a package that is not installed: {e}") from e
    _remove_model_file(env)
    if not isinstance(env.action_space, gym.spaces.Box):
        env.close()
        raise ValueError(f"--env {env_id}: needs a Box action space, got {env.action_space}")
    return env if is_pixel_env(env, size) else PixelObservation(env, size, env_id)


def _remove_model_file(env: gym.Env) -> None:
    """gymnasium-robotics' mazes (PointMaze, AntMaze) write their MuJoCo model to a new file in
    the temp directory at every make and never remove it: thousands pile up over evaluations. The
    model is loaded by the time the env exists, so the file goes (only one in the temp directory)."""
    name = getattr(env.unwrapped, "tmp_xml_file_path", None)
    if isinstance(name, str) and Path(name).parent == Path(tempfile.gettempdir()):
        Path(name).unlink(missing_ok=True)


class GoalState(gym.Wrapper):
    """Adds a goal to an adapted env: `info["goal"]` (the goal frame), `"goal_state"`,
    `"distance"` (L2 over the first `dims` state entries) and `"success"` (distance <= tolerance,
    and the `angle_dim` entry within `angle_tolerance` of the goal's, wrapped, when given); a step
    that succeeds terminates the episode, as in jepaworld's own worlds. The wrapped env's own goal,
    if it has one (an info "success"), is replaced: its success no longer ends the episode.
    With `goal_clip` (G, H, W, 3), the frames leading to the goal, ending with `goal_frame`, it is
    `info["goal_clip"]` too: a goal that shows motion."""

    def __init__(
        self,
        env: gym.Env,
        goal_frame: NDArray[np.uint8],
        goal_state: NDArray[np.float32],
        dims: int,
        tolerance: float,
        angle_dim: int | None = None,
        angle_tolerance: float = 0.0,
        goal_clip: NDArray[np.uint8] | None = None,
    ) -> None:
        super().__init__(env)
        if goal_clip is not None and (
            goal_clip.ndim != 4 or not np.array_equal(goal_clip[-1], goal_frame)
        ):
            raise ValueError("goal_clip must be (G, H, W, 3) frames ending with goal_frame")
        self.goal_frame, self.goal_state = goal_frame, np.asarray(goal_state, np.float32)
        self.goal_clip = goal_clip
        self.dims, self.tolerance = dims, tolerance
        self.angle_dim, self.angle_tolerance = angle_dim, angle_tolerance

    def _angle_ok(self, state: NDArray[np.float32]) -> bool:
        if self.angle_dim is None:
            return True
        gap = angle_error(state[self.angle_dim], self.goal_state[self.angle_dim])
        return bool(gap < self.angle_tolerance)

    def _info(self, info: dict[str, Any]) -> dict[str, Any]:
        gap = info["state"][: self.dims] - self.goal_state[: self.dims]
        distance = float(np.linalg.norm(gap))
        clip = {} if self.goal_clip is None else {"goal_clip": self.goal_clip.copy()}
        return {
            **info,
            "goal": self.goal_frame.copy(),
            **clip,
            "goal_state": self.goal_state.copy(),
            "distance": distance,
            "success": distance <= self.tolerance and self._angle_ok(info["state"]),
        }

    def reset(self, **kwargs: Any) -> tuple[NDArray[np.uint8], dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return obs, self._info(info)

    def step(self, action: Any) -> tuple[NDArray[np.uint8], float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        own_goal = "success" in info  # the wrapped env's own goal ended it: not ours
        info = self._info(info)
        ended = info["success"] or (terminated and not own_goal)
        return obs, float(reward), ended, truncated, info
