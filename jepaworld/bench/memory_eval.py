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
from jepaworld.planning.protocols import ActionBounds, refuse_proprio


def load_memory(path: Path, sha: str, model: WorldModel, run: Path) -> dict[str, Any]:
    """The states the memory holds for checkpoint `sha`, RUN's `model`, on its device
    (UnknownModelError names both if none). A model that reads proprioception is refused first:
    a memory holds frames alone."""
    refuse_proprio(model, run, "a memory holds frames alone")
    with MemoryStore.open(path, readonly=True) as store:
        states = store.states(sha)
    states["embedding"] = states["embedding"].to(model.device)
    return states


def guided_controller(
    cfg: PlanConfig,
    protocol: MazeProtocol | TrajectoryProtocol,
    model: WorldModel,
    states: dict[str, Any],
    bounds: ActionBounds,
) -> tuple[MemoryGuidedMPC, dict[str, Any]]:
    """Memory-guided MPC over the graph of `states` (`load_memory`), built with the protocol's
    settings, and the results' memory block. Callers build it before any episode runs, so that a
    graph that cannot be built stops the evaluation before the long work."""
    assert cfg.memory is not None
    t0 = time.perf_counter()
    graph, graph_counts = build_graph(
        model, states["episode"], states["step"], states["embedding"], protocol.graph, bounds,
        torch.Generator().manual_seed(cfg.seed), steps_per_model_step=model.config.frame_stride,
    )  # fmt: skip
    memory = {
        "path": str(cfg.memory),
        "sha256": sha256_file(cfg.memory),
        "entries": len(states["ids"]),
        "graph": graph_counts,
        "graph_seconds": time.perf_counter() - t0,
    }
    mpc = plan_eval.make_mpc(protocol, model, bounds.dim, planner=cfg.planner, bounds=bounds)
    return MemoryGuidedMPC(states["embedding"], graph, mpc, protocol.guide), memory


def run_guided(
    guided: MemoryGuidedMPC,
    cfg: PlanConfig,
    protocol: MazeProtocol | TrajectoryProtocol,
    model: WorldModel,
    specs: list[plan_eval.EpisodeSpec],
    factory: plan_eval.EnvFactory,
) -> tuple[list[dict[str, Any]], list[list[np.ndarray]], dict[str, float]]:
    """`guided` (`guided_controller`) on every episode in lock-step: outcomes, frames, timings."""
    live = plan_eval.start_episodes(specs, factory)
    timings = plan_eval.run_lockstep(
        live, guided, protocol.budget, model.device, cfg.seed, protocol.chunk,
        model.config.image_size,
    )  # fmt: skip
    outcomes, frames = plan_eval.finish_episodes(live)
    return outcomes, frames, timings
