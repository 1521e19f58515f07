"""Long-horizon control with memory: plan a path through remembered states, MPC along it.

Flat MPC in latent space sees `horizon` model steps ahead; a goal rooms away is out of sight and
greedy latent distance leads into walls. Here the graph over remembered states (memory/graph.py)
gives the way: the memory nearest the current frame, Dijkstra to the memory nearest the goal. The
foundation's LatentMPC then drives toward a point `lookahead` nodes further along the path than the
path node nearest the current embedding (progress never moves backward), and toward the goal
itself once the path's end is in reach. No latent-distance threshold decides when a subgoal is
"reached": progress is read off the path. When the agent is farther than `drift` from every node
ahead on its path, the path is searched again from where it is.

`reachability_edges` adds the edges the world model vouches for: for candidate pairs of remembered
states, a short search over actions asks whether the model predicts reaching one from the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from jepaworld.config import require
from jepaworld.memory.graph import MemoryGraph, NoPathError, proximity_edges, transition_edges
from jepaworld.planning.cem import CEM, CEMConfig
from jepaworld.planning.mpc import LatentGoalCost, LatentMPC
from jepaworld.planning.protocols import ActionBounds, Planner, WorldModelLike, refuse_proprio


@dataclass(frozen=True)
class GuidedConfig:
    """How memory guides MPC."""

    lookahead: int = 3
    """MPC targets the path node this many nodes past the agent's progress along the path."""
    window: int = 12
    """How many nodes ahead of the current progress are searched for the nearest one."""
    drift: float = float("inf")
    """Latent distance to the nearest node ahead beyond which the path is searched again."""

    def __post_init__(self) -> None:
        require(self.lookahead >= 1, "lookahead", "must be >= 1")
        require(self.window >= 1, "window", "must be >= 1")
        require(self.drift > 0, "drift", "must be > 0")


@dataclass(frozen=True)
class GraphSettings:
    """How remembered states become a graph."""

    proximity_k: int = 5
    """Candidate edges from each remembered state to its k nearest others in latent space."""
    proximity_scale: float = 1.0
    """Candidates lie within this many median observed-transition distances."""
    verify: bool = True
    """Keep a candidate only if the world model predicts reaching it (`reachability_edges`);
    otherwise keep every candidate, costed by latent distance."""
    verify_horizon: int = 2
    """Model steps the reachability search may use."""
    verify_samples: int = 32
    """CEM samples of the reachability search."""
    verify_iterations: int = 4
    """CEM iterations of the reachability search."""
    reach_scale: float = 0.5
    """A candidate is reachable when the best predicted end is within this many median
    transition distances of it."""

    def __post_init__(self) -> None:
        require(self.proximity_k >= 0, "proximity_k", "must be >= 0")
        require(self.proximity_scale > 0, "proximity_scale", "must be > 0")
        require(self.verify_horizon >= 1, "verify_horizon", "must be >= 1")
        require(self.reach_scale > 0, "reach_scale", "must be > 0")


def build_graph(
    model: WorldModelLike,
    episode: np.ndarray,
    step: np.ndarray,
    embeddings: torch.Tensor,
    settings: GraphSettings,
    bounds: ActionBounds,
    generator: torch.Generator,
    steps_per_model_step: int = 1,
) -> tuple[MemoryGraph, dict[str, float]]:
    """The graph over remembered states: observed transitions (both ways, costed in env steps),
    plus latent-proximity candidates, kept if the model predicts reaching them (when `verify`).

    Args:
        episode, step: (N,) ids of each remembered state; embeddings: (N, D).
        bounds: one planner action's box (held for `steps_per_model_step` env steps).
    Returns:
        The graph and counts: transition and proximity edges, candidates, median transition
        distance.
    """
    z = torch.as_tensor(embeddings, dtype=torch.float32)
    graph = MemoryGraph(len(z))
    observed = transition_edges(episode, step)
    graph.add_edges(observed, both_ways=True)
    pairs = torch.tensor([(i, j) for i, j, _ in observed], dtype=torch.long).reshape(-1, 2)
    gaps = (z[pairs[:, 0]] - z[pairs[:, 1]]).norm(dim=1)  # (M,)
    median = float(gaps.median()) if len(gaps) else 1.0
    near = proximity_edges(z, settings.proximity_k, settings.proximity_scale * median)
    candidates = [(i, j) for i, j, _ in near if j not in graph.adjacency[i]]
    if settings.verify:
        cem = CEM(
            CEMConfig(
                samples=settings.verify_samples,
                elites=max(2, settings.verify_samples // 8),
                iterations=settings.verify_iterations,
            )
        )
        kept = reachability_edges(
            model, z, candidates, cem, settings.verify_horizon, bounds,
            settings.reach_scale * median, generator, repeat=steps_per_model_step,
        )  # fmt: skip
        extra = [(i, j, c * steps_per_model_step) for i, j, c in kept]
    else:
        extra = [(i, j, d / median * steps_per_model_step) for i, j, d in near]
    graph.add_edges(extra)
    counts = {
        "nodes": len(z),
        "transition_edges": 2 * len(observed),
        "candidates": len(candidates),
        "proximity_edges": len(extra),
        "median_transition_distance": median,
    }
    return graph, counts


def reachability_edges(
    model: WorldModelLike,
    embeddings: torch.Tensor,
    candidates: list[tuple[int, int]],
    planner: Planner,
    horizon: int,
    bounds: ActionBounds,
    threshold: float,
    generator: torch.Generator,
    repeat: int = 1,
    chunk: int = 1024,
) -> list[tuple[int, int, float]]:
    """Edges (i, j, horizon) for the candidate pairs the model predicts it can bridge.

    For every pair at once, the planner searches `horizon` actions (each held `repeat` env steps)
    minimising the predicted squared latent distance to z_j from z_i; a pair whose best predicted
    end is within `threshold` (distance, not squared) becomes an edge costing `horizon` model steps.
    """
    z = torch.as_tensor(embeddings, dtype=torch.float32)
    keep: list[bool] = []
    for start in range(0, len(candidates), chunk):  # bounded memory: chunk * samples rollouts
        part = candidates[start : start + chunk]
        src = torch.tensor([i for i, _ in part])
        dst = torch.tensor([j for _, j in part])
        cost = LatentGoalCost(model, z[src].unsqueeze(1), z[dst], 0.0, repeat)  # (E,1,D), (E,D)
        plan = planner.solve_batch(cost, len(part), horizon, bounds, generator)  # (E, L, A)
        final = cost(plan.unsqueeze(1))[:, 0].sqrt()  # (E,): best predicted end distance
        keep += (final <= threshold).tolist()
    return [(i, j, float(horizon)) for (i, j), ok in zip(candidates, keep, strict=True) if ok]


class MemoryGuidedMPC:
    """Drives E problems at once along paths through a graph over remembered states.

    Args:
        embeddings: (N, D) remembered latent states, node i of `graph`.
        graph: edges between remembered states (observed, proximity, model-predicted).
        mpc: the flat controller used between subgoals.
    """

    def __init__(
        self, embeddings: torch.Tensor, graph: MemoryGraph, mpc: LatentMPC, config: GuidedConfig
    ) -> None:
        if graph.size != len(embeddings):
            raise ValueError(f"graph has {graph.size} nodes but {len(embeddings)} embeddings")
        self.z = torch.as_tensor(embeddings, dtype=torch.float32)  # (N, D)
        self.graph, self.mpc, self.config = graph, mpc, config
        self.paths: list[list[int]] = []  # per problem: node path to the memory nearest its goal
        self.progress: list[int] = []  # per problem: index of the path node reached
        self.z_goal = torch.empty(0)
        self.reroutes = 0

    def nearest(self, z: torch.Tensor) -> list[int]:
        """Index of the remembered state nearest each of (E, D) embeddings."""
        return torch.cdist(z.float().cpu(), self.z).argmin(dim=1).tolist()

    def route(self, z_now: torch.Tensor, z_goal: torch.Tensor) -> list[int]:
        """Nodes from the memory nearest z_now (D,) to the memory nearest z_goal (D,); empty when
        no path exists (MPC then heads for the goal directly)."""
        a, b = self.nearest(torch.stack([z_now, z_goal]))
        try:
            return self.graph.shortest_path(a, b)[0]
        except NoPathError:
            return []

    def start(
        self,
        frames: torch.Tensor,
        goals: torch.Tensor,
        proprio: torch.Tensor | None = None,
        goal_proprio: torch.Tensor | None = None,
    ) -> None:
        """Begin E problems: current frames and goal frames, (E, H, W, 3). The memory's nodes are
        frames alone, so a model that reads proprioception is refused (`proprio` and
        `goal_proprio` are the Controller protocol's, unused)."""
        refuse_proprio(self.mpc.model, "memory-guided planning", "a memory holds frames alone")
        if goals.ndim != 4:
            raise ValueError(
                f"goals: memory-guided planning takes goal images (E, H, W, 3), got "
                f"{tuple(goals.shape)}"
            )
        z_now = self.mpc.encode_frames(frames).cpu()  # (E, D)
        self.z_goal = self.mpc.encode_frames(goals).float().cpu()  # (E, D)
        self.paths = [self.route(z, g) for z, g in zip(z_now, self.z_goal, strict=True)]
        self.progress = [0] * len(self.paths)
        self.mpc.reset()

    def _advance(self, e: int, z: torch.Tensor) -> None:
        """Move problem e's progress to the nearest path node ahead; re-route if it drifted."""
        path, c = self.paths[e], self.config
        ahead = path[self.progress[e] : self.progress[e] + c.window]
        if not ahead:
            return
        dist = (self.z[ahead] - z).norm(dim=1)  # (window,)
        if float(dist.min()) > c.drift:
            self.paths[e], self.progress[e] = self.route(z, self.z_goal[e]), 0
            self.reroutes += 1
            return
        self.progress[e] += int(dist.argmin())

    def targets(self, z_now: torch.Tensor) -> torch.Tensor:
        """The (E, D) MPC targets for current embeddings (E, D): a node ahead, or the goal."""
        out = []
        for e, z in enumerate(z_now):
            self._advance(e, z)
            path, i = self.paths[e], self.progress[e] + self.config.lookahead
            out.append(self.z[path[i]] if i < len(path) else self.z_goal[e])
        return torch.stack(out)  # (E, D)

    def plan(
        self,
        frames: torch.Tensor,
        generator: torch.Generator,
        keep: torch.Tensor | None = None,
        proprio: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Env actions (E, receding*k, A), or (E, execute, A), for the current frames (E, H, W, 3).

        Args:
            keep: optional bool mask of which previous problems are still active; their paths
                (and the MPC's warm starts) follow them as the batch shrinks.
            proprio: the Controller protocol's; unused (`start` refuses proprioception).
        """
        if keep is not None and len(keep) == len(self.paths):
            kept = [e for e, k in enumerate(keep.tolist()) if k]
            self.paths = [self.paths[e] for e in kept]
            self.progress = [self.progress[e] for e in kept]
            self.z_goal = self.z_goal[kept]
        z_now = self.mpc.encode_frames(frames)  # (E, D)
        target = self.targets(z_now.cpu()).to(z_now.device)
        return self.mpc.plan(frames, target, generator, keep, z_now=z_now)
