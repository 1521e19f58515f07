"""Collect exploration episodes from a Gymnasium environment into an episode dataset.

The default policy is smoothed random actions with persistence: it keeps a target action for a
geometric number of steps (mean `1 / (1 - persistence)`), then draws a new one uniformly from the
action box, and adds small Gaussian noise. Persistent actions travel far enough to cross rooms and to
hit walls, which uniform i.i.d. actions (a random walk) rarely do.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from jepaworld.config import require
from jepaworld.data.episodes import Episode, write_manifest, write_shard
from jepaworld.envs.geometry import DiscAgentEnv
from jepaworld.envs.gym_adapter import make_pixel_env

log = logging.getLogger(__name__)


@dataclass
class CollectConfig:
    """Collect exploration episodes into a dataset directory."""

    out: Path
    """Output dataset directory (must not already hold a dataset)."""
    env: str = "jepaworld/TwoRoom-v0"
    """Gymnasium environment id."""
    episodes: int = 300
    """Number of episodes to collect."""
    episode_length: int = 100
    """Frames per episode (the policy acts episode_length times)."""
    seed: int = 0
    """Episode i is reset with seed + i. Evaluation protocols use seeds far from this range."""
    persistence: float = 0.9
    """Probability of keeping the current target action at each step."""
    noise: float = 0.1
    """Std of Gaussian noise added to the target action (in half-widths of the action box)."""
    policy: str = "auto"
    """Exploration policy: 'random' (persistent random actions), 'scripted' (the world's own
    collection policy, e.g. PushT's pusher) or 'auto' (scripted where the world has one)."""
    episodes_per_shard: int = 50
    """Episodes per compressed shard file."""
    image_size: int | None = None
    """Side of the stored frames: other environments' rgb_array renders are centre-cropped and
    area-resized to it (default 64); jepaworld's own worlds keep their native size unless it is
    given (e.g. 64 for Maze-v0's 128 px frames)."""

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        require(self.episodes >= 1, "episodes", f"must be >= 1, got {self.episodes}")
        require(
            self.episode_length >= 2, "episode_length", f"must be >= 2, got {self.episode_length}"
        )
        require(0.0 <= self.persistence < 1.0, "persistence", "must be in [0, 1)")
        require(self.noise >= 0.0, "noise", "must be >= 0")
        require(self.episodes_per_shard >= 1, "episodes_per_shard", "must be >= 1")
        require(self.seed >= 0, "seed", "must be >= 0")
        require(
            self.policy in POLICIES, "policy", f"must be one of {POLICIES}, got {self.policy!r}"
        )
        require(
            self.image_size is None or self.image_size >= 8,
            "image_size",
            f"must be >= 8, got {self.image_size}",
        )


POLICIES = ("auto", "random", "scripted")


class PersistentRandomPolicy:
    """Smoothed random actions with persistence in a Box action space."""

    def __init__(
        self, space: gym.spaces.Box, persistence: float, noise: float, rng: np.random.Generator
    ):
        self.low, self.high = space.low.astype(np.float32), space.high.astype(np.float32)
        self.persistence, self.noise, self.rng = persistence, noise, rng
        self.target = self._draw()

    def _draw(self) -> np.ndarray:
        return self.rng.uniform(self.low, self.high).astype(np.float32)

    def __call__(self) -> np.ndarray:
        if self.rng.random() > self.persistence:
            self.target = self._draw()
        jitter = self.rng.normal(0.0, self.noise, size=self.target.shape).astype(np.float32)
        return np.clip(self.target + jitter * (self.high - self.low) / 2, self.low, self.high)


def _env_config(env: gym.Env) -> dict[str, Any]:
    """A jepaworld world's config, or the adapter's camera (`view`) where it sets one."""
    cfg = getattr(env.unwrapped, "config", None)
    if dataclasses.is_dataclass(cfg):
        return dataclasses.asdict(cfg)
    view = getattr(env, "view", None)
    return {} if view is None else {"view": view}


def _true_state(info: dict[str, Any]) -> np.ndarray:
    return np.asarray(info.get("state", np.zeros(0)), dtype=np.float32).reshape(-1)


def resolve_policy(env: gym.Env, name: str, env_id: str) -> str:
    """'random' or 'scripted' for --policy `name` on this env (errors name --policy)."""
    scripted = hasattr(env.unwrapped, "scripted_policy")
    if name == "scripted" and not scripted:
        raise ValueError(f"--policy scripted: {env_id} has no scripted collection policy")
    return "scripted" if name == "scripted" or (name == "auto" and scripted) else "random"


def exploration_policy(
    env: gym.Env, policy: str, persistence: float, noise: float, rng: np.random.Generator
) -> Callable[[], np.ndarray]:
    """The resolved exploration policy ('random' or 'scripted') acting in `env`."""
    if policy == "scripted":
        return env.unwrapped.scripted_policy(rng, noise)
    return PersistentRandomPolicy(env.action_space, persistence, noise, rng)


def collect_episode(env: gym.Env, cfg: CollectConfig, seed: int, policy_name: str) -> Episode:
    """Run the exploration policy for one episode; frames (T,H,W,3), actions (T,A)."""
    obs, info = env.reset(seed=seed)
    # its own stream: sharing env.reset's seed would correlate the first action with the start
    rng = np.random.default_rng([seed, 1])
    policy = exploration_policy(env, policy_name, cfg.persistence, cfg.noise, rng)
    frames, actions, states = [], [], []
    for _ in range(cfg.episode_length):
        action = policy()
        frames.append(obs)
        actions.append(action)
        states.append(_true_state(info))
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:  # keep moving: exploration episodes have a fixed length
            # jepaworld's worlds restart where the agent is; others restart as they do
            restart = isinstance(env.unwrapped, DiscAgentEnv) and "state" in info
            obs, info = env.reset(options={"start": info["state"]}) if restart else env.reset()
    return Episode(np.stack(frames), np.stack(actions), np.stack(states))


def policy_record(policy: str, persistence: float, noise: float) -> dict[str, Any]:
    """The manifest's description of the exploration policy."""
    if policy == "scripted":
        return {"name": "scripted", "noise": noise}
    return {"name": "persistent_random", "persistence": persistence, "noise": noise}


def collect(cfg: CollectConfig) -> dict[str, Any]:
    """Collect `cfg.episodes` episodes into `cfg.out`; return the manifest."""
    if (cfg.out / "manifest.json").exists():
        raise FileExistsError(f"{cfg.out}: already holds a dataset; choose another --out")
    env = make_pixel_env(cfg.env, cfg.image_size)  # errors name --env
    policy = resolve_policy(env, cfg.policy, cfg.env)
    cfg.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    shards, batch = [], []
    for i in tqdm(range(cfg.episodes), desc="collect", unit="ep"):
        batch.append(collect_episode(env, cfg, cfg.seed + i, policy))
        if len(batch) == cfg.episodes_per_shard or i == cfg.episodes - 1:
            shards.append(write_shard(cfg.out / f"shard_{len(shards):05d}.npz", batch))
            batch = []
    manifest = {
        "env_id": cfg.env,
        "env_config": _env_config(env),
        "policy": policy_record(policy, cfg.persistence, cfg.noise),
        "seeds": {"first": cfg.seed, "count": cfg.episodes},
        "episodes": cfg.episodes,
        "episode_length": cfg.episode_length,
        "frame_shape": list(env.observation_space.shape),
        "action_dim": int(np.prod(env.action_space.shape)),
        "action_low": env.action_space.low.tolist(),
        "action_high": env.action_space.high.tolist(),
        "shards": shards,
        "collect_seconds": round(time.perf_counter() - t0, 3),
    }
    write_manifest(cfg.out, manifest)
    env.close()
    log.info("collected %d episodes into %s", cfg.episodes, cfg.out)
    return json.loads((cfg.out / "manifest.json").read_text())
