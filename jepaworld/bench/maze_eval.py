"""`jepaworld plan --env jepaworld/Maze-v0 --memory DB`: long-horizon goals, memory vs flat MPC.

On the protocol's episodes (goals >= 100 steps of shortest path away, rooms apart), three
controllers run in the same process on the same starts and goals: MPC guided by the memory's graph
(memory/guided.py), the same MPC without memory (`flat_mpc`), and random actions. The memory must
hold embeddings made by the very checkpoint being evaluated; its states become a graph of observed
transitions plus latent-proximity edges the model predicts it can travel.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np

from jepaworld.bench import plan_eval
from jepaworld.bench.evaluate import (
    PlanConfig,
    configured,
    load_checked_model,
    plan_results,
    read_checked_run,
)
from jepaworld.bench.memory_eval import guided_controller, load_memory, run_guided
from jepaworld.bench.protocols import MazeProtocol
from jepaworld.envs import maze
from jepaworld.planning.protocols import ActionBounds


def evaluate_maze(cfg: PlanConfig, protocol: MazeProtocol | None = None) -> dict[str, Any]:
    """Memory-guided MPC, flat MPC and random on the maze protocol's episodes; writes results.json."""
    protocol = configured(protocol or MazeProtocol(), cfg)
    assert cfg.memory is not None  # PlanConfig requires it for the maze
    record = read_checked_run(cfg.run, protocol)
    env_config = maze.MazeConfig(
        layout_seed=protocol.layout_seed, success_radius=protocol.success_radius
    )
    specs = plan_eval.sample_specs(protocol, env_config, world=maze)
    probe = plan_eval.make_env(protocol, specs[0])[0]
    space, A = probe.action_space, int(probe.action_space.shape[0])
    probe.close()
    model, ckpt = load_checked_model(cfg.run, cfg.device, protocol, env_config.width, A)
    sha = plan_eval.checkpoint_sha256(ckpt)
    states = load_memory(cfg.memory, sha, model, cfg.run)  # before any long work
    t0 = time.perf_counter()
    bounds = ActionBounds.box(-1.0, 1.0, A)
    guided, memory = guided_controller(cfg, protocol, model, states, bounds)
    factory = functools.partial(plan_eval.make_env, protocol)
    random = plan_eval.run_policy(protocol, specs, plan_eval.random_policy(space), factory)

    flat_mpc = plan_eval.make_mpc(protocol, model, A, planner=cfg.planner)
    flat, _, _ = plan_eval.run_flat_mpc(
        specs, factory, flat_mpc, protocol.budget, model.device, cfg.seed, protocol.chunk
    )
    outcomes, frames, timings = run_guided(guided, cfg, protocol, model, specs, factory)
    goals = [maze.render_scene(env_config, np.asarray(s.goal)) for s in specs]
    baselines = {"flat_mpc": flat, "random": random}
    results = plan_results(protocol, record, ckpt, sha, cfg.planner, outcomes, timings, baselines)
    results["controller"] = "memory_guided"
    results["memory"] = {**memory, "reroutes": guided.reroutes}
    media = plan_eval.write_media(cfg.out / "media", frames, goals, cfg.media)
    results["media"] = [f"media/{m}" for m in media]
    results["eval_seconds"] = time.perf_counter() - t0
    plan_eval.write_json(cfg.out / "results.json", results)
    return results
