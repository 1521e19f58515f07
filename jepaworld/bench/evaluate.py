"""`jepaworld plan`: evaluate a run's latest checkpoint under the Two-Room protocol, with baselines."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from jepaworld.bench import plan_eval
from jepaworld.bench.protocols import TwoRoomProtocol
from jepaworld.config import require
from jepaworld.envs import two_room
from jepaworld.models.world_model import CheckpointError, WorldModel
from jepaworld.train import latest_checkpoint, resolve_device

log = logging.getLogger(__name__)


@dataclass
class PlanConfig:
    """Plan toward goal images with a trained world model and measure success."""

    run: Path
    """Run directory written by `jepaworld train` (its latest checkpoint is used)."""
    out: Path
    """Output directory for results.json and rollout media."""
    env: str = "jepaworld/TwoRoom-v0"
    """Environment id (the protocol is chosen from it)."""
    episodes: int = 50
    """Evaluation episodes (the protocol's default is 50; a different count is recorded)."""
    seed: int = 0
    """Seed of the planner's sampling generator."""
    media: int = 4
    """How many episodes get a filmstrip PNG and a GIF."""
    latency_repeats: int = 3
    """Single-problem plans timed for plan_latency_seconds."""
    device: str = "auto"
    """Device: auto, cpu, cuda."""

    def __post_init__(self) -> None:
        self.run, self.out = Path(self.run), Path(self.out)
        require(self.episodes >= 1, "episodes", f"must be >= 1, got {self.episodes}")
        require(self.media >= 0, "media", "must be >= 0")
        require(self.latency_repeats >= 0, "latency_repeats", "must be >= 0")
        require(
            self.env == "jepaworld/TwoRoom-v0", "env", f"no planning protocol for {self.env!r} yet"
        )


def _run_record(run: Path) -> dict[str, Any]:
    path = run / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (is {run} a run directory from `jepaworld train`?)")
    return json.loads(path.read_text())


def check_seeds_disjoint(protocol: TwoRoomProtocol, record: dict[str, Any], run: Path) -> None:
    """The protocol's seeds must never have been used to collect the training data."""
    seeds = record.get("data_seeds") or {}
    first, count = int(seeds.get("first", 0)), int(seeds.get("count", 0))
    used = range(first, first + count)
    if set(protocol.seeds()) & set(used):
        raise ValueError(
            f"{run}/config.json: training data used seeds {first}..{first + count - 1}, which overlap "
            f"the evaluation seeds {protocol.seed}..{protocol.seed + protocol.episodes - 1}"
        )


def load_checked_model(
    run: Path, device: str, env_config: two_room.TwoRoomConfig
) -> tuple[WorldModel, Path]:
    ckpt = latest_checkpoint(run)
    model = WorldModel.from_pretrained(ckpt, map_location=resolve_device(device))
    if model.config.image_size != env_config.size:
        raise CheckpointError(
            f"{ckpt}: model takes {model.config.image_size}px frames, the environment renders {env_config.size}px"
        )
    return model, ckpt


def evaluate(cfg: PlanConfig, protocol: TwoRoomProtocol | None = None) -> dict[str, Any]:
    """Run the planner and both baselines on the protocol's episodes; write results.json."""
    import jepaworld.envs  # noqa: F401

    protocol = (protocol or TwoRoomProtocol()).with_episodes(cfg.episodes)
    record = _run_record(cfg.run)
    if record.get("data_env_id") != protocol.env_id:
        raise ValueError(
            f"{cfg.run}: trained on {record.get('data_env_id')!r}, not {protocol.env_id!r}"
        )
    check_seeds_disjoint(protocol, record, cfg.run)
    env_kwargs: dict[str, Any] = {}
    env_config = two_room.TwoRoomConfig(success_radius=protocol.success_radius)
    model, ckpt = load_checked_model(cfg.run, cfg.device, env_config)
    t0 = time.perf_counter()
    specs = plan_eval.sample_specs(protocol, env_config)
    space = gym.make(protocol.env_id).action_space
    baselines = {
        "random": plan_eval.run_policy(protocol, specs, plan_eval.random_policy(space), env_kwargs),
        "straight_line": plan_eval.run_policy(
            protocol, specs, plan_eval.straight_line_policy(env_config), env_kwargs
        ),
    }
    outcomes, frames, timings = plan_eval.run_planner(
        protocol, specs, model, env_kwargs, seed=cfg.seed
    )
    goals = [two_room.render_scene(env_config, np.asarray(s.goal)) for s in specs]
    latency = (
        plan_eval.plan_latency(model, protocol, frames[0][0], goals[0], cfg.latency_repeats)
        if cfg.latency_repeats
        else []
    )
    media = plan_eval.write_media(cfg.out / "media", frames, goals, cfg.media)
    results = {
        "protocol": protocol.to_dict(),
        **plan_eval.summarize(outcomes),
        "checkpoint": str(ckpt),
        "checkpoint_sha256": plan_eval.checkpoint_sha256(ckpt),
        "data_manifest_sha256": record.get("data_manifest_sha256"),
        "plan_seconds_mean": timings["plan_seconds_mean"],
        "plan_seconds_note": "wall time of the lock-step batched search divided by episodes planned",
        "plan_calls": timings["plan_calls"],
        "plan_latency_seconds": latency,
        "baselines": {
            k: {**plan_eval.summarize(v), "per_episode": v} for k, v in baselines.items()
        },
        "per_episode": outcomes,
        "media": [f"media/{m}" for m in media],
        "eval_seconds": time.perf_counter() - t0,
    }
    plan_eval.write_json(cfg.out / "results.json", results)
    return results
