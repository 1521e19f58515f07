"""`jepaworld plan --goal FILE`: plan toward a goal image of your own, in any environment.

One episode: the environment is reset with the protocol seed (1_000_000, far from collection
seeds), the PNG (or any image PIL reads) is centre-cropped and area-resized to the model's size,
and the latent MPC (settings of protocol image-goal: trajectory-goal's planner) acts for
`budget` steps toward it. An image carries no state, so there is no success criterion:
results.json gives the latent distance to the goal before and after, and the environment's own
state at the end, beside a filmstrip and a GIF.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from jepaworld.bench import plan_eval
from jepaworld.bench.evaluate import PlanConfig, load_checked_model, read_checked_run
from jepaworld.bench.protocols import TrajectoryProtocol
from jepaworld.data.episodes import sha256_file
from jepaworld.envs.gym_adapter import make_pixel_env, square_resize
from jepaworld.planning.protocols import ActionBounds, refuse_proprio


def read_goal_image(path: Path, size: int) -> np.ndarray:
    """(size, size, 3) uint8 from an image file; errors name --goal and the file."""
    try:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
    except FileNotFoundError as e:
        raise FileNotFoundError(f"--goal {path}: no such file") from e
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"--goal {path}: not a readable image ({e})") from e
    return square_resize(rgb, size)


class ImageGoal(gym.Wrapper):
    """info["goal"] is the goal image; never a success (an image has no state to compare). The
    environment's own state after the last step or reset, if it has one, is `last_state`."""

    def __init__(self, env: gym.Env, goal: np.ndarray) -> None:
        super().__init__(env)
        self.goal = goal
        self.last_state: list[float] | None = None

    def _info(self, info: dict[str, Any]) -> dict[str, Any]:
        if "state" in info:
            self.last_state = np.asarray(info["state"], float).reshape(-1).tolist()
        return {**info, "goal": self.goal.copy(), "success": False, "distance": float("nan")}

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return obs, self._info(info)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, float(reward), terminated, truncated, self._info(info)


def image_goal_protocol(env_id: str) -> TrajectoryProtocol:
    """Planner settings and budget for image goals (no success criterion: dims 0)."""
    return TrajectoryProtocol(
        env_id=env_id, state_dims=0, tolerance=0.0, name="image-goal", version="1", episodes=1
    )


def plan_to_image(cfg: PlanConfig, protocol: TrajectoryProtocol | None = None) -> dict[str, Any]:
    """One MPC episode toward the image `cfg.goal`; writes results.json and media."""
    if cfg.goal is None:
        raise ValueError("goal: an image file is required")
    protocol = (
        (protocol or image_goal_protocol(cfg.env))
        .with_history(cfg.history)
        .with_goal_at(cfg.goal_at)
        .with_execute(cfg.execute)
    )
    record = read_checked_run(cfg.run, protocol)
    size = int(record["model"]["image_size"])
    goal = read_goal_image(cfg.goal, size)  # before any long work
    env = ImageGoal(make_pixel_env(cfg.env, size), goal)
    space = env.action_space
    model, ckpt = load_checked_model(cfg.run, cfg.device, protocol, size, int(space.shape[0]))
    refuse_proprio(model, cfg.run, "an image goal has no state vector")
    t0 = time.perf_counter()
    spec = plan_eval.EpisodeSpec(protocol.seed, (0.0, 0.0), (0.0, 0.0), float(protocol.budget))

    def factory(s: plan_eval.EpisodeSpec) -> tuple[gym.Env, np.ndarray, dict]:
        obs, info = env.reset(seed=s.seed)
        return env, obs, info

    low, high = (torch.as_tensor(b, dtype=torch.float32) for b in (space.low, space.high))
    mpc = plan_eval.make_mpc(
        protocol, model, len(low), planner=cfg.planner, bounds=ActionBounds(low, high)
    )
    outcomes, frames, _ = plan_eval.run_flat_mpc(
        [spec], factory, mpc, protocol.budget, model.device, cfg.seed
    )
    with torch.no_grad():
        ends = torch.from_numpy(np.stack([frames[0][0], frames[0][-1], goal]))  # (3, H, W, 3)
        z = mpc.encode_frames(ends.to(model.device))  # (3, D)
    start_d, final_d = (float(torch.linalg.vector_norm(z[i] - z[2])) for i in (0, 1))
    media = plan_eval.write_media(cfg.out / "media", frames, [goal], cfg.media)
    results = {
        "protocol": protocol.to_dict(),
        "goal": str(cfg.goal),
        "goal_sha256": sha256_file(cfg.goal),
        "checkpoint": str(ckpt),
        "checkpoint_sha256": plan_eval.checkpoint_sha256(ckpt),
        "planner": cfg.planner,
        "steps": outcomes[0]["steps"],
        "latent_distance_start": start_d,
        "latent_distance_final": final_d,
        "final_state": env.last_state,
        "media": [f"media/{m}" for m in media],
        "eval_seconds": time.perf_counter() - t0,
    }
    plan_eval.write_json(cfg.out / "results.json", results)
    return results
