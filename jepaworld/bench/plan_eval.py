"""Two-Room goal reaching: the world model with CEM + MPC, and baselines on the same episodes.

Baselines, run in the same process on the same starts and goals:
- `random`: uniform random actions.
- `straight_line`: heads straight for the goal using the true state, ignoring the wall. It shows
  how much of the task needs planning through the door.
The planner runs all active episodes in lock-step (one batched search per decision), which is how
the planning stage fits the demo's time budget; the single-problem latency of one plan is measured
separately on a few decisions and reported as `plan_latency_seconds`.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

from jepaworld.bench.media import filmstrip, save_gif, save_png
from jepaworld.bench.protocols import (
    MazeProtocol,
    PlannerSettings,
    TrajectoryProtocol,
    TwoRoomProtocol,
)
from jepaworld.data.episodes import atomic_write, sha256_file
from jepaworld.data.loader import resize_frames
from jepaworld.envs import two_room
from jepaworld.planning.cem import CEM, CEMConfig
from jepaworld.planning.gradient import GradientConfig, GradientPlanner
from jepaworld.planning.mpc import LatentMPC, MPCConfig
from jepaworld.planning.mppi import MPPI, MPPIConfig
from jepaworld.planning.protocols import ActionBounds, Planner

log = logging.getLogger(__name__)
Policy = Callable[[np.ndarray, dict[str, Any]], np.ndarray]


@dataclass(frozen=True)
class EpisodeSpec:
    seed: int
    start: tuple[float, float]
    goal: tuple[float, float]
    path_steps: float


def sample_specs(
    protocol: TwoRoomProtocol | MazeProtocol, env_config: Any, world: ModuleType = two_room
) -> list[EpisodeSpec]:
    """Starts and goals for each protocol seed, goal >= min_goal_steps of shortest path away.

    `world` is the environment's module (two_room or maze): its `sample_free_position` and
    `shortest_path_steps` take `env_config`."""
    specs = []
    for seed in protocol.seeds():
        rng = np.random.default_rng(seed)
        for _ in range(10_000):
            start = world.sample_free_position(env_config, rng)
            goal = world.sample_free_position(env_config, rng)
            steps = world.shortest_path_steps(env_config, start, goal)
            if protocol.min_goal_steps <= steps < float("inf"):
                break
        else:
            raise RuntimeError(
                f"seed {seed}: no goal {protocol.min_goal_steps} steps away in this layout"
            )
        specs.append(
            EpisodeSpec(seed, tuple(map(float, start)), tuple(map(float, goal)), float(steps))
        )
    return specs


def make_env(
    protocol: TwoRoomProtocol | MazeProtocol, spec: EpisodeSpec
) -> tuple[gym.Env, np.ndarray, dict]:
    env = gym.make(protocol.env_id, **protocol.env_kwargs())
    obs, info = env.reset(seed=spec.seed, options={"start": spec.start, "goal": spec.goal})
    return env, obs, info


def _outcome(spec: EpisodeSpec, steps: int, info: dict[str, Any], success: bool) -> dict[str, Any]:
    """One episode's record; with the env's own state at the end (`final_state`) where its info
    carries one, so a failure can be traced to the part of the goal that was missed."""
    outcome = {
        "seed": spec.seed,
        "start": list(spec.start),
        "goal": list(spec.goal),
        "shortest_path_steps": round(spec.path_steps, 2),
        "success": bool(success),
        "steps": steps,
        "final_distance": round(float(info["distance"]), 3),
    }
    if "state" in info:
        outcome["final_state"] = [round(float(x), 4) for x in np.asarray(info["state"]).ravel()]
    return outcome


EnvFactory = Callable[[EpisodeSpec], tuple[gym.Env, np.ndarray, dict]]


def run_policy(
    protocol: TwoRoomProtocol | MazeProtocol | TrajectoryProtocol,
    specs: list[EpisodeSpec],
    make_policy: Callable[[int], Policy],
    env_factory: EnvFactory | None = None,
) -> list[dict[str, Any]]:
    """Run a state-based baseline policy on every episode (envs from `env_factory`, by default
    `make_env(protocol, spec)`)."""
    factory = env_factory or functools.partial(make_env, protocol)  # type: ignore[arg-type]
    results = []
    for spec in specs:
        env, obs, info = factory(spec)
        policy, success, steps = make_policy(spec.seed), bool(info["success"]), 0
        while not success and steps < protocol.budget:
            obs, _, _, _, info = env.step(policy(obs, info))
            success, steps = bool(info["success"]), steps + 1
        results.append(_outcome(spec, steps, info, success))
        env.close()
    return results


def random_policy(space: gym.spaces.Box) -> Callable[[int], Policy]:
    def make(seed: int) -> Policy:
        rng = np.random.default_rng(seed + 7_919)
        return lambda obs, info: rng.uniform(space.low, space.high).astype(np.float32)

    return make


def straight_line_policy(env_config: two_room.TwoRoomConfig) -> Callable[[int], Policy]:
    def make(seed: int) -> Policy:
        return lambda obs, info: two_room.straight_line_action(
            info["state"], info["goal_state"], env_config.speed
        )

    return make


@dataclass
class _Live:
    """One planner episode in progress."""

    spec: EpisodeSpec
    env: gym.Env
    obs: np.ndarray
    info: dict[str, Any]
    frames: list[np.ndarray]
    steps: int = 0
    success: bool = False


PLANNERS = ("cem", "mppi", "gradient")


def make_planner(settings: PlannerSettings, name: str = "cem") -> Planner:
    """The protocol's CEM, or MPPI with the same samples x iterations, or the gradient planner
    (its defaults: 8 restarts x 50 Adam steps). Only CEM is the protocol's own planner."""
    s = settings
    if name == "cem":
        return CEM(
            CEMConfig(
                samples=s.samples,
                elites=s.elites,
                iterations=s.iterations,
                init_std=s.init_std,
                min_std=s.min_std,
                momentum=s.momentum,
            )
        )
    if name == "mppi":
        return MPPI(
            MPPIConfig(
                samples=s.samples, iterations=s.iterations, init_std=s.init_std, min_std=s.min_std
            )
        )
    if name == "gradient":
        return GradientPlanner(GradientConfig())
    raise ValueError(f"planner: unknown {name!r}; known: {', '.join(PLANNERS)}")


def make_mpc(
    protocol: TwoRoomProtocol | MazeProtocol | TrajectoryProtocol,
    model: Any,
    env_action_dim: int,
    horizon: int | None = None,
    planner: str = "cem",
    bounds: ActionBounds | None = None,
) -> LatentMPC:
    """The protocol's planner and receding-horizon MPC, every setting from the protocol."""
    p = protocol.planner
    mpc_cfg = MPCConfig(
        horizon=horizon or p.horizon,
        receding=p.receding,
        hold=p.hold,
        intermediate_weight=p.intermediate_weight,
        history=p.history,
        goal_at=p.goal_at,
        execute=p.execute,
    )
    bounds = bounds or ActionBounds.box(-1.0, 1.0, env_action_dim)
    return LatentMPC(model, make_planner(p, planner), mpc_cfg, bounds, env_action_dim)


def _execute(ep: _Live, actions: np.ndarray, budget: int) -> None:
    """Apply env actions (n, A) until done or out of budget."""
    for a in actions:
        if ep.success or ep.steps >= budget:
            return
        ep.obs, _, _, _, ep.info = ep.env.step(a)
        ep.success = bool(ep.info["success"])
        ep.steps += 1
        ep.frames.append(ep.obs)


class Controller(Protocol):
    """What the lock-step runner drives: flat MPC, or MPC guided by memory."""

    def start(
        self,
        frames: torch.Tensor,
        goals: torch.Tensor,
        proprio: torch.Tensor | None = None,
        goal_proprio: torch.Tensor | None = None,
    ) -> None:
        """Begin E problems: current frames and goal frames, uint8 (E, H, W, 3) (or goal clips
        (E, G, H, W, 3), where the episodes' info has a "goal_clip": FlatController only), and
        where the env gives them, their state vectors (E, S) (info "state" and "goal_state"),
        which a model with proprioception reads."""
        ...

    def plan(
        self,
        frames: torch.Tensor,
        generator: torch.Generator,
        keep: torch.Tensor | None,
        proprio: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Env actions (E', n, A) for the still-active problems (keep: which of the last E);
        `proprio`, the frames' state vectors (E', S), where the env gives them."""
        ...


class FlatController:
    """LatentMPC straight toward each problem's goal embedding."""

    def __init__(self, mpc: LatentMPC) -> None:
        self.mpc = mpc
        self.z_goal = torch.empty(0)

    def start(
        self,
        frames: torch.Tensor,
        goals: torch.Tensor,
        proprio: torch.Tensor | None = None,
        goal_proprio: torch.Tensor | None = None,
    ) -> None:
        self.z_goal = self.mpc.encode_goal(goals, goal_proprio)  # (E, D) or clips' (E, G, D)
        self.mpc.reset()

    def plan(
        self,
        frames: torch.Tensor,
        generator: torch.Generator,
        keep: torch.Tensor | None,
        proprio: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if keep is not None and len(keep) == len(self.z_goal):
            self.z_goal = self.z_goal[keep.to(self.z_goal.device)]
        return self.mpc.plan(frames, self.z_goal, generator, keep, proprio=proprio)


def run_lockstep(
    live: list[_Live],
    controller: Controller,
    budget: int,
    device: torch.device,
    seed: int = 0,
    chunk: int | None = None,
    frame_size: int | None = None,
) -> dict[str, float]:
    """Drive the episodes in lock-step batches of `chunk` (all at once when None): one batched
    plan per decision until each succeeds or runs out of budget. Batch b's planner generator is
    seeded `seed + b`, so one batch re-run alone reproduces its episodes (`bench verify` does).
    Frames and goals are resized to `frame_size` (the model's) when it is given."""
    chunk = chunk or max(1, len(live))
    seconds, calls, plans = 0.0, 0, 0
    for b, first in enumerate(range(0, len(live), chunk)):
        batch = live[first : first + chunk]
        s, c, p = _run_batch(batch, controller, budget, device, seed + b, frame_size)
        seconds, calls, plans = seconds + s, calls + c, plans + p
    return {"plan_seconds_mean": seconds / max(plans, 1), "plan_calls": calls, "plans": plans}


def _run_batch(
    live: list[_Live],
    controller: Controller,
    budget: int,
    device: torch.device,
    seed: int,
    frame_size: int | None,
) -> tuple[float, int, int]:
    """One lock-step batch: (planning seconds, batched calls, problems planned)."""
    gen = torch.Generator().manual_seed(seed)
    active = [i for i, ep in enumerate(live) if not ep.success]

    def stacked(key: str) -> torch.Tensor:
        arrays = [live[i].obs if key == "obs" else live[i].info[key] for i in active]
        frames = torch.from_numpy(np.stack(arrays))  # (E, H, W, 3) or clips (E, G, H, W, 3)
        return (resize_frames(frames, frame_size) if frame_size else frames).to(device)

    def states(key: str) -> torch.Tensor | None:
        """The active episodes' state vectors (E, S) under info[key], where every one has them."""
        if not all(key in live[i].info for i in active):
            return None
        arrays = [np.asarray(live[i].info[key], dtype=np.float32).ravel() for i in active]
        return torch.from_numpy(np.stack(arrays)).to(device)  # (E, S)

    if active:
        clips = "goal_clip" in live[active[0]].info  # a goal of several frames (GoalState)
        goals = stacked("goal_clip" if clips else "goal")
        goal_states = None if clips else states("goal_state")
        controller.start(stacked("obs"), goals, states("state"), goal_states)
    plan_time, solved, calls, keep = 0.0, 0, 0, None
    bar = tqdm(total=budget, desc="plan", unit="step", dynamic_ncols=True)
    while active:
        frames = stacked("obs")
        t0 = time.perf_counter()
        acts = controller.plan(frames, gen, keep, states("state")).cpu().numpy()  # (E, n, A)
        plan_time += time.perf_counter() - t0
        solved, calls = solved + len(active), calls + 1
        for i, a in zip(active, acts, strict=True):
            _execute(live[i], a, budget)
        still = [not live[i].success and live[i].steps < budget for i in active]
        keep = torch.tensor(still)
        active = [i for i, s in zip(active, still, strict=True) if s]
        bar.n = max(ep.steps for ep in live)
        bar.set_postfix(active=len(active), success=sum(ep.success for ep in live))
        bar.refresh()
    bar.close()
    return plan_time, calls, solved


def run_planner(
    protocol: TwoRoomProtocol,
    specs: list[EpisodeSpec],
    model: Any,
    seed: int = 0,
    planner: str = "cem",
) -> tuple[list[dict[str, Any]], list[list[np.ndarray]], dict[str, float]]:
    """Model-based MPC on every episode in lock-step. Returns outcomes, frames, timings."""
    device = next(model.parameters()).device
    mpc = make_mpc(protocol, model, model.config.action_dim, planner=planner)
    factory = functools.partial(make_env, protocol)
    return run_flat_mpc(specs, factory, mpc, protocol.budget, device, seed, protocol.chunk)


def run_flat_mpc(
    specs: list[EpisodeSpec],
    factory: EnvFactory,
    mpc: LatentMPC,
    budget: int,
    device: torch.device,
    seed: int = 0,
    chunk: int | None = None,
) -> tuple[list[dict[str, Any]], list[list[np.ndarray]], dict[str, float]]:
    """MPC straight toward each goal on every episode, in lock-step batches of `chunk`:
    outcomes, frames, timings."""
    live = start_episodes(specs, factory)
    size = mpc.model.config.image_size
    timings = run_lockstep(live, FlatController(mpc), budget, device, seed, chunk, size)
    outcomes, frames = finish_episodes(live)
    return outcomes, frames, timings


def start_episodes(specs: list[EpisodeSpec], factory: EnvFactory) -> list[_Live]:
    """One live episode per spec, its env made and reset by `factory`."""
    live = []
    for spec in specs:
        env, obs, info = factory(spec)
        live.append(_Live(spec, env, obs, info, [obs], success=bool(info["success"])))
    return live


def finish_episodes(live: list[_Live]) -> tuple[list[dict[str, Any]], list[list[np.ndarray]]]:
    """Close the envs; each episode's outcome and frames."""
    outcomes = [_outcome(ep.spec, ep.steps, ep.info, ep.success) for ep in live]
    for ep in live:
        ep.env.close()
    return outcomes, [ep.frames for ep in live]


def plan_latency(
    model: Any,
    protocol: TwoRoomProtocol | TrajectoryProtocol,
    frames: np.ndarray,
    goal: np.ndarray,
    repeats: int = 3,
    planner: str = "cem",
    bounds: ActionBounds | None = None,
    states: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[float]:
    """Seconds for one single-problem plan (E=1) with the protocol's planner, `repeats` times,
    toward `goal`, an image (H, W, 3) or a clip (G, H, W, 3). With a planner history of T frames,
    each timed plan follows T-1 untimed ones from the same frame, so it predicts from T frames.
    `states`: the frame's state vector (S,) and the goal's, (S,) for an image or (G, S) for a
    clip, for a model that reads proprioception."""
    device = next(model.parameters()).device
    mpc = make_mpc(protocol, model, model.config.action_dim, planner=planner, bounds=bounds)
    now_p, goal_p = (
        (None, None)
        if states is None
        else (torch.as_tensor(s, dtype=torch.float32)[None].to(device) for s in states)
    )  # (1, S) each
    z_goal = mpc.encode_goal(torch.from_numpy(goal[None]).to(device), goal_p)
    now = torch.from_numpy(frames[None]).to(device)  # (1, H, W, 3)
    gen = torch.Generator().manual_seed(0)
    times = []
    for _ in range(repeats):
        mpc.reset()
        for _ in range(mpc.config.history - 1):
            mpc.plan(now, z_goal, gen, proprio=now_p)
        t0 = time.perf_counter()
        mpc.plan(now, z_goal, gen, proprio=now_p)
        times.append(time.perf_counter() - t0)
    return times


def summarize(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(outcomes)
    wins = sum(o["success"] for o in outcomes)
    return {"success_rate": wins / n if n else 0.0, "successes": wins, "episodes": n}


def write_media(
    out: Path, frames: list[list[np.ndarray]], goals: list[np.ndarray], count: int = 4
) -> list[str]:
    """A filmstrip PNG and a GIF for the first `count` episodes."""
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for i, (fr, goal) in enumerate(zip(frames[:count], goals[:count], strict=False)):
        names.append(save_png(filmstrip(list(fr), goal), out / f"episode_{i:02d}.png").name)
        names.append(save_gif(list(fr) + [goal] * 5, out / f"episode_{i:02d}.gif").name)
    return names


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(data, indent=2) + "\n").encode())


def checkpoint_sha256(ckpt: Path) -> str:
    return sha256_file(Path(ckpt) / "model.safetensors")
