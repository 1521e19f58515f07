"""Memory-guided evaluation: MPC along paths through remembered states, for any protocol whose
settings include a graph and a guide (maze-goal; trajectory-goal with `jepaworld plan --memory`).

The memory must hold embeddings made by the very checkpoint being evaluated; its states become a
graph of observed transitions plus latent-proximity edges the model predicts it can travel
(memory/guided.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jepaworld.bench import plan_eval
from jepaworld.bench.evaluate import PlanConfig
from jepaworld.bench.protocols import MazeProtocol, TrajectoryProtocol
from jepaworld.data.episodes import sha256_file
from jepaworld.memory.guided import MemoryGuidedMPC, build_graph
from jepaworld.memory.store import MemoryStore
from jepaworld.models.world_model import WorldModel
from jepaworld.planning.protocols import ActionBounds


def load_memory(path: Path, sha: str, device: torch.device) -> dict[str, Any]:
    """The states the memory holds for checkpoint `sha` (UnknownModelError names both if none)."""
    with MemoryStore.open(path, readonly=True) as store:
        states = store.states(sha)
    states["embedding"] = states["embedding"].to(device)
    return states


def run_guided(
    cfg: PlanConfig,
    protocol: MazeProtocol | TrajectoryProtocol,
    model: WorldModel,
    states: dict[str, Any],
    specs: list[plan_eval.EpisodeSpec],
    factory: plan_eval.EnvFactory,
    bounds: ActionBounds,
) -> tuple[list[dict[str, Any]], list[list[np.ndarray]], dict[str, float], dict[str, Any]]:
    """Memory-guided MPC on every episode, the graph built from `states` (`load_memory`) with
    the protocol's settings: outcomes, frames, timings and the results' memory block."""
    assert cfg.memory is not None
    t0 = time.perf_counter()
    graph, graph_counts = build_graph(
        model, states["episode"], states["step"], states["embedding"], protocol.graph, bounds,
        torch.Generator().manual_seed(cfg.seed), steps_per_model_step=model.config.frame_stride,
    )  # fmt: skip
    graph_seconds = time.perf_counter() - t0
    live = plan_eval.start_episodes(specs, factory)
    mpc = plan_eval.make_mpc(protocol, model, bounds.dim, planner=cfg.planner, bounds=bounds)
    guided = MemoryGuidedMPC(states["embedding"], graph, mpc, protocol.guide)
    timings = plan_eval.run_lockstep(
        live, guided, protocol.budget, model.device, cfg.seed, protocol.chunk,
        model.config.image_size,
    )  # fmt: skip
    outcomes, frames = plan_eval.finish_episodes(live)
    memory = {
        "path": str(cfg.memory),
        "sha256": sha256_file(cfg.memory),
        "entries": len(states["ids"]),
        "graph": graph_counts,
        "graph_seconds": graph_seconds,
        "reroutes": guided.reroutes,
    }
    return outcomes, frames, timings, memory
