"""`jepaworld plan`: evaluate a run's latest checkpoint under the Two-Room protocol, with baselines."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from jepaworld.bench import plan_eval
from jepaworld.bench.protocols import (
    TRAJECTORY_SUCCESS,
    MazeProtocol,
    TrajectoryProtocol,
    TwoRoomProtocol,
    require_goal_image,
)
from jepaworld.config import require
from jepaworld.envs import two_room
from jepaworld.models.world_model import CheckpointError, WorldModel
from jepaworld.planning.mpc import GoalAt
from jepaworld.train import data_sources, latest_checkpoint, read_run_record, resolve_device

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
    planner: str = "cem"
    """Planner: cem (the protocol's), mppi (same samples x iterations) or gradient (projected
    Adam); a planner other than the protocol's is recorded in results.json."""
    goal: Path | None = None
    """A goal image file (PNG, ...): plan one episode toward it from the env's reset with seed
    1000000, in any environment (protocol image-goal; no success criterion, the latent distance
    to it is reported)."""
    memory: Path | None = None
    """Memory file from `jepaworld memory build` (same checkpoint): plan through remembered
    states, with flat MPC and random actions as baselines on the same episodes. Needed for
    jepaworld/Maze-v0, whose goals are rooms away; optional for the trajectory-goal protocols
    whose goal is one image (PointMaze_UMaze-v3, jepaworld/PushT-v0)."""
    history: int = 0
    """Observed frames the predictor sees at each decision, the current one and earlier
    decisions' with the actions between them (DINO-WM and LeWM use 3); 0 keeps the protocol's
    (1; Pendulum-v1's 3). history + horizon should not exceed the model's training clip length
    (--clip-frames); a change is recorded in results.json's protocol block."""
    goal_at: GoalAt | None = None
    """Where in the horizon the planner's cost wants the goal: end (the end of the horizon; every
    protocol's own but Pendulum-v1's) or any (the nearest step; for goals passed through, such as
    a swinging pendulum's); unset keeps the protocol's, a change is recorded in results.json's
    protocol block."""
    execute: int = 0
    """Env steps executed before replanning: 0 keeps the protocol's (each plan's first model step
    whole, frame_stride env steps); 1 replans after every env step, from the frame it reaches
    (frame_stride times the plans, so as many times the planning time); needs the planner's
    history 1; a change is recorded in results.json's protocol block."""

    def __post_init__(self) -> None:
        self.run, self.out = Path(self.run), Path(self.out)
        self.memory = None if self.memory is None else Path(self.memory)
        self.goal = None if self.goal is None else Path(self.goal)
        require(self.episodes >= 1, "episodes", f"must be >= 1, got {self.episodes}")
        require(self.media >= 0, "media", "must be >= 0")
        require(self.latency_repeats >= 0, "latency_repeats", "must be >= 0")
        require(self.history >= 0, "history", f"must be >= 0, got {self.history}")
        require(self.execute >= 0, "execute", f"must be >= 0, got {self.execute}")
        require(
            self.planner in plan_eval.PLANNERS,
            "planner",
            f"must be one of {', '.join(plan_eval.PLANNERS)}, got {self.planner!r}",
        )
        known = ("jepaworld/TwoRoom-v0", "jepaworld/Maze-v0", *TRAJECTORY_SUCCESS)
        require(
            self.goal is not None or self.env in known,
            "env",
            f"no planning protocol for {self.env!r} (known: {known}); --goal IMAGE works with any",
        )
        maze_protocol = self.env == "jepaworld/Maze-v0" and self.goal is None
        require(
            not maze_protocol or self.memory is not None,
            "memory",
            "is required for jepaworld/Maze-v0's protocol",
        )
        require(
            self.memory is None or (self.goal is None and self.env != "jepaworld/TwoRoom-v0"),
            "memory",
            "is used by jepaworld/Maze-v0's protocol and the trajectory-goal ones, not by "
            "jepaworld/TwoRoom-v0's or with --goal",
        )
        if self.memory is not None:
            require_goal_image(self.env, TRAJECTORY_SUCCESS.get(self.env, {}).get("goal_frames", 1))


EP = TypeVar("EP", TwoRoomProtocol, MazeProtocol, TrajectoryProtocol)


def configured(protocol: EP, cfg: PlanConfig) -> EP:
    """The protocol with the episode count and the planner's history, goal_at and execute that
    `cfg` asks for, all recorded in the result's protocol block."""
    protocol = protocol.with_episodes(cfg.episodes).with_history(cfg.history)
    return protocol.with_goal_at(cfg.goal_at).with_execute(cfg.execute)


def check_seeds_disjoint(
    protocol: TwoRoomProtocol | MazeProtocol | TrajectoryProtocol, record: dict[str, Any], run: Path
) -> None:
    """The protocol's seeds must never have been used to collect the training data."""
    seeds = record.get("data_seeds")
    if not isinstance(seeds, dict) or not {"first", "count"} <= set(seeds):
        raise CheckpointError(
            f"{run}/config.json: no data_seeds, cannot check they differ from evaluation seeds"
        )
    first, count = int(seeds["first"]), int(seeds["count"])
    if set(protocol.seeds()) & set(range(first, first + count)):
        raise ValueError(
            f"{run}/config.json: training data used seeds {first}..{first + count - 1}, which overlap "
            f"the evaluation seeds {protocol.seed}..{protocol.seed + protocol.episodes - 1}"
        )


def read_checked_run(
    run: Path, protocol: TwoRoomProtocol | MazeProtocol | TrajectoryProtocol
) -> dict[str, Any]:
    """RUN's record, checked: trained on the protocol's environment (alone or in a mixture),
    never on its seeds."""
    record = read_run_record(run)
    sources = [s for s in data_sources(record) if s.get("env_id") == protocol.env_id]
    if not sources:
        trained = sorted(str(s.get("env_id")) for s in data_sources(record))
        raise ValueError(f"{run}: trained on {', '.join(trained)}, not {protocol.env_id!r}")
    for source in sources:
        check_seeds_disjoint(protocol, {"data_seeds": source.get("seeds")}, run)
    warn_untrained_positions(record, protocol, run)
    return record


def warn_untrained_positions(
    record: dict[str, Any], protocol: TwoRoomProtocol | MazeProtocol | TrajectoryProtocol, run: Path
) -> None:
    """Log a warning when planning from a history of frames reaches predictor positions the
    run's training clips never covered (learned absolute positions: history + horizon frames
    need clips at least that long)."""
    p, clip = protocol.planner, record.get("train", {}).get("clip_frames")
    if p.history > 1 and isinstance(clip, int) and p.history + p.horizon > clip:
        log.warning(
            "%s: history %d + horizon %d frames exceed the %d-frame clips it was trained on; "
            "the predictor's later positions are untrained",
            run, p.history, p.horizon, clip,
        )  # fmt: skip


def load_checked_model(
    run: Path,
    device: str,
    protocol: TwoRoomProtocol | MazeProtocol | TrajectoryProtocol,
    frame_size: int,
    env_action_dim: int,
) -> tuple[WorldModel, Path]:
    """Load the latest checkpoint and check it fits the environment and the protocol's planner
    (the environment's frames are area-resized down to the model's size)."""
    ckpt = latest_checkpoint(run)
    model = WorldModel.from_pretrained(ckpt, map_location=resolve_device(device))
    c, p = model.config, protocol.planner
    problems = [
        (
            c.image_size <= frame_size,
            f"takes {c.image_size}px frames, larger than the environment's {frame_size}px "
            "(frames are only ever scaled down)",
        ),
        (
            c.action_dim == env_action_dim,
            f"takes {c.action_dim}-d actions, the environment's are {env_action_dim}-d",
        ),
        (
            c.frame_stride == p.frame_stride,
            f"has frame_stride {c.frame_stride}, the protocol plans with {p.frame_stride}",
        ),
        (
            c.max_len >= p.horizon + p.history - 1,
            f"has max_len {c.max_len} < the planner's horizon {p.horizon} + history "
            f"{p.history} - 1",
        ),
    ]
    for ok, what in problems:
        if not ok:
            raise CheckpointError(f"{ckpt}: the model {what}")
    return model, ckpt


def plan_results(
    protocol: TwoRoomProtocol | MazeProtocol | TrajectoryProtocol,
    record: dict[str, Any],
    ckpt: Path,
    sha: str,
    planner: str,
    outcomes: list[dict[str, Any]],
    timings: dict[str, float],
    baselines: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    """What every planning evaluation's results.json starts with: protocol, success, the
    checkpoint and its data, planner and timings, baselines on the same episodes, every episode."""
    return {
        "protocol": protocol.to_dict(),
        **plan_eval.summarize(outcomes),
        "planner": planner,
        "checkpoint": str(ckpt),
        "checkpoint_sha256": sha,
        "data_manifest_sha256": record.get("data_manifest_sha256"),
        "plan_seconds_mean": timings["plan_seconds_mean"],
        "plan_seconds_note": "wall time of the lock-step batched search divided by episodes planned",
        "plan_calls": timings["plan_calls"],
        "baselines": {
            k: {**plan_eval.summarize(v), "per_episode": v} for k, v in baselines.items()
        },
        "per_episode": outcomes,
    }


def evaluate(cfg: PlanConfig, protocol: TwoRoomProtocol | None = None) -> dict[str, Any]:
    """Run the planner and both baselines on the protocol's episodes; write results.json."""
    protocol = configured(protocol or TwoRoomProtocol(), cfg)
    record = read_checked_run(cfg.run, protocol)
    env_config = two_room.TwoRoomConfig(success_radius=protocol.success_radius)
    space = two_room.TwoRoomEnv(env_config).action_space
    model, ckpt = load_checked_model(  # before any long work
        cfg.run, cfg.device, protocol, env_config.size, space.shape[0]
    )
    t0 = time.perf_counter()
    specs = plan_eval.sample_specs(protocol, env_config)
    baselines = {
        "random": plan_eval.run_policy(protocol, specs, plan_eval.random_policy(space)),
        "straight_line": plan_eval.run_policy(
            protocol, specs, plan_eval.straight_line_policy(env_config)
        ),
    }
    outcomes, frames, timings = plan_eval.run_planner(
        protocol, specs, model, seed=cfg.seed, planner=cfg.planner
    )
    goals = [two_room.render_scene(env_config, np.asarray(s.goal)) for s in specs]
    sha = plan_eval.checkpoint_sha256(ckpt)
    results = plan_results(protocol, record, ckpt, sha, cfg.planner, outcomes, timings, baselines)
    states = (np.asarray(specs[0].start), np.asarray(specs[0].goal))  # for proprioception
    results["plan_latency_seconds"] = (
        plan_eval.plan_latency(
            model, protocol, frames[0][0], goals[0], cfg.latency_repeats, cfg.planner, states=states
        )
        if cfg.latency_repeats
        else []
    )
    results["media"] = [
        f"media/{m}" for m in plan_eval.write_media(cfg.out / "media", frames, goals, cfg.media)
    ]
    results["eval_seconds"] = time.perf_counter() - t0
    plan_eval.write_json(cfg.out / "results.json", results)
    return results
