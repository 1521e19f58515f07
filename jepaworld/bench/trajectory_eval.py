"""`jepaworld plan --env ID` for environments nobody here wrote: trajectory goals, flat MPC, random
(and MPC guided by a memory, with `--memory`).

Under protocol trajectory-goal (bench/protocols.py), each episode's goal image is the frame
`goal_steps` ahead on a held-out exploration trajectory from the episode's own start (or, with
`goal_frames` G > 1, the clip of its last G frames one model step apart); the planner
(CEM + MPC, the env's own action bounds) and random actions run on the same episodes, and success
compares the env's own state with the goal's (GoalState).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from jepaworld.bench import plan_eval
from jepaworld.bench.evaluate import (
    PlanConfig,
    configured,
    load_checked_model,
    plan_results,
    read_checked_run,
)
from jepaworld.bench.memory_eval import guided_controller, load_memory, run_guided
from jepaworld.bench.protocols import TrajectoryProtocol, require_goal_image
from jepaworld.data.collect import exploration_policy
from jepaworld.envs.gym_adapter import GoalState, make_pixel_env
from jepaworld.models.world_model import WorldModel
from jepaworld.planning.protocols import ActionBounds, refuse_proprio
from jepaworld.train import check_view

Goal = tuple[np.ndarray, np.ndarray]  # frames (G, H, W, 3) ending at the goal, their states (G, S)


def held_out_goal(protocol: TrajectoryProtocol, seed: int, size: int) -> tuple[np.ndarray, Goal]:
    """(start state, (goal frames, their states)): `goal_steps` steps of the collection policy from
    the start that `reset(seed=seed)` gives; the frames are the last `goal_frames` one model step
    apart, the last at the goal."""
    env = make_pixel_env(protocol.env_id, size)
    _, info = env.reset(seed=seed)
    start = info["state"]
    rng = np.random.default_rng([seed, 1])
    policy = exploration_policy(env, protocol.policy, protocol.persistence, protocol.noise, rng)
    stride = protocol.planner.frame_stride
    kept = {protocol.goal_steps - g * stride for g in range(protocol.goal_frames)}
    frames, states = [], []
    for step in range(1, protocol.goal_steps + 1):
        obs, _, _, _, info = env.step(policy())
        if step in kept:
            frames.append(obs)
            states.append(info["state"])
    env.close()
    return start, (np.stack(frames), np.stack(states))  # (G, H, W, 3), (G, S)


def goal_env_factory(
    protocol: TrajectoryProtocol, goals: dict[int, Goal], size: int
) -> plan_eval.EnvFactory:
    """Episode spec -> the adapted env with its goal, reset to the episode's start."""

    def make(spec: plan_eval.EpisodeSpec) -> tuple[gym.Env, np.ndarray, dict]:
        frames, states = goals[spec.seed]
        env = GoalState(
            make_pixel_env(protocol.env_id, size), frames[-1], states[-1], protocol.state_dims,
            protocol.tolerance, protocol.angle_dim, protocol.angle_tolerance,
            frames if len(frames) > 1 else None,
        )  # fmt: skip
        obs, info = env.reset(seed=spec.seed)
        return env, obs, info

    return make


def memory_states(
    cfg: PlanConfig, protocol: TrajectoryProtocol, sha: str, model: WorldModel
) -> dict[str, Any]:
    """The memory's states for checkpoint `sha` (`model`'s), refused up front for goal clips,
    which memory-guided planning does not take."""
    assert cfg.memory is not None
    require_goal_image(protocol.env_id, protocol.goal_frames)
    return load_memory(cfg.memory, sha, model, cfg.run)


def episode_specs(
    protocol: TrajectoryProtocol, size: int
) -> tuple[dict[int, Goal], list[plan_eval.EpisodeSpec]]:
    """Each protocol episode's held-out goal (by seed) and its spec."""
    goals: dict[int, Goal] = {}
    specs = []
    for seed in protocol.seeds():
        start, goals[seed] = held_out_goal(protocol, seed, size)
        start_xy, goal_xy = tuple(map(float, start)), tuple(map(float, goals[seed][1][-1]))
        specs.append(plan_eval.EpisodeSpec(seed, start_xy, goal_xy, float(protocol.goal_steps)))
    return goals, specs


@dataclass(frozen=True)
class CheckedRun:
    """A run loaded for a trajectory-goal protocol (`load_run`)."""

    record: dict[str, Any]
    model: WorldModel
    ckpt: Path
    space: gym.spaces.Box
    """The env's action space."""
    size: int
    """The model's frame size (the env's frames are resized to it)."""


def load_run(run: Path, device: str, protocol: TrajectoryProtocol) -> CheckedRun:
    """The run's latest checkpoint, checked as `plan` checks it: evaluation seeds disjoint from its
    training data, its data drawn from this env's camera view, frame size and action width."""
    record = read_checked_run(run, protocol)
    size = int(record["model"]["image_size"])
    probe = make_pixel_env(protocol.env_id, size)
    space, view = probe.action_space, getattr(probe, "view", None)
    probe.close()
    check_view(record, protocol.env_id, view, run)
    model, ckpt = load_checked_model(run, device, protocol, size, int(space.shape[0]))
    if protocol.goal_frames > 1:
        why = f"{protocol.env_id}'s goals are clips of {protocol.goal_frames} frames, planned from frames alone"
        refuse_proprio(model, run, why)
    return CheckedRun(record, model, ckpt, space, size)


def space_bounds(space: gym.spaces.Box) -> ActionBounds:
    """The planner's action bounds: the env's own."""
    return ActionBounds(
        torch.as_tensor(space.low, dtype=torch.float32),
        torch.as_tensor(space.high, dtype=torch.float32),
    )


def evaluate_trajectory(
    cfg: PlanConfig, protocol: TrajectoryProtocol | None = None
) -> dict[str, Any]:
    """The checkpoint's MPC and random actions on the protocol's episodes; writes results.json.
    With `cfg.memory`, MPC guided by the memory leads (results' "controller" memory_guided) and
    flat MPC joins the baselines; plan_latency_seconds stays flat MPC's."""
    protocol = configured(protocol or TrajectoryProtocol.for_env(cfg.env), cfg)
    run = load_run(cfg.run, cfg.device, protocol)
    record, model, ckpt, space, size = run.record, run.model, run.ckpt, run.space, run.size
    A = int(space.shape[0])
    sha = plan_eval.checkpoint_sha256(ckpt)
    states = None if cfg.memory is None else memory_states(cfg, protocol, sha, model)
    bounds = space_bounds(space)
    t0 = time.perf_counter()
    guided, memory = (
        (None, {}) if states is None else guided_controller(cfg, protocol, model, states, bounds)
    )
    goals, specs = episode_specs(protocol, size)
    factory = goal_env_factory(protocol, goals, size)
    baselines = {
        "random": plan_eval.run_policy(protocol, specs, plan_eval.random_policy(space), factory)
    }
    mpc = plan_eval.make_mpc(protocol, model, A, planner=cfg.planner, bounds=bounds)
    outcomes, frames, timings = plan_eval.run_flat_mpc(
        specs, factory, mpc, protocol.budget, model.device, cfg.seed, protocol.chunk
    )
    if guided is not None:  # the memory leads; flat MPC becomes a baseline
        baselines["flat_mpc"] = outcomes
        outcomes, frames, timings = run_guided(guided, cfg, protocol, model, specs, factory)
    results = plan_results(protocol, record, ckpt, sha, cfg.planner, outcomes, timings, baselines)
    results["controller"] = "flat_mpc" if guided is None else "memory_guided"
    if guided is not None:
        results["memory"] = {**memory, "reroutes": guided.reroutes}
    first_goal, first_states = next(iter(goals.values()))  # (G, H, W, 3), (G, S)
    latency_states = (np.asarray(specs[0].start), np.asarray(first_states))  # (S,), (G, S)
    results["plan_latency_seconds"] = plan_eval.plan_latency(
        model,
        protocol,
        frames[0][0],
        first_goal,
        cfg.latency_repeats,
        cfg.planner,
        bounds,
        latency_states,
    )
    media = plan_eval.write_media(
        cfg.out / "media", frames, [g[0][-1] for g in goals.values()], cfg.media
    )
    results["media"] = [f"media/{m}" for m in media]
    results["eval_seconds"] = time.perf_counter() - t0
    plan_eval.write_json(cfg.out / "results.json", results)
    return results
