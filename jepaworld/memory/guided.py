"""Long-horizon control with memory: plan a path through remembered states, MPC to each subgoal.

Flat MPC in latent space sees `horizon` model steps ahead; a goal rooms away is out of sight and
greedy latent distance leads into walls. Here the graph over remembered states (memory/graph.py)
gives the way: the memory nearest the current frame, Dijkstra to the memory nearest the goal,
every few nodes of the path a subgoal. The foundation's LatentMPC then drives toward the current
subgoal; a subgoal counts as reached when the current embedding is within `reach` of it (then the
next one is targeted, the goal itself last), and when the agent drifts farther than `drift` from
its subgoal the path is searched again from where it is.

`reachability_edges` adds the edges the world model vouches for: for candidate pairs of remembered
states, a short search over actions asks whether the model predicts reaching one from the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from jepaworld.config import require
from jepaworld.memory.graph import MemoryGraph, NoPathError, subgoals
from jepaworld.planning.mpc import LatentGoalCost, LatentMPC
from jepaworld.planning.protocols import ActionBounds, Planner, WorldModelLike


@dataclass
class GuidedConfig:
    """How memory guides MPC."""

    subgoal_every: int = 4
    """Path nodes between consecutive subgoals."""
    reach: float = 1.0
    """Latent distance at which a subgoal counts as reached."""
    drift: float = 8.0
    """Latent distance from the current subgoal beyond which the path is searched again."""

    def __post_init__(self) -> None:
        require(self.subgoal_every >= 1, "subgoal_every", "must be >= 1")
        require(self.reach > 0, "reach", "must be > 0")
        require(self.drift > self.reach, "drift", "must be > reach")


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
) -> list[tuple[int, int, float]]:
    """Edges (i, j, horizon) for the candidate pairs the model predicts it can bridge.

    For every pair at once, the planner searches `horizon` actions (each held `repeat` env steps)
    minimising the predicted squared latent distance to z_j from z_i; a pair whose best predicted
    end is within `threshold` (distance, not squared) becomes an edge costing `horizon` model steps.
    """
    if not candidates:
        return []
    src = torch.tensor([i for i, _ in candidates])
    dst = torch.tensor([j for _, j in candidates])
    z = torch.as_tensor(embeddings, dtype=torch.float32)
    cost = LatentGoalCost(model, z[src].unsqueeze(1), z[dst], 0.0, repeat)  # (E, 1, D), (E, D)
    plan = planner.solve_batch(cost, len(candidates), horizon, bounds, generator)  # (E, L, A)
    final = cost(plan.unsqueeze(1))[:, 0].sqrt()  # (E,): best predicted end distance
    keep = (final <= threshold).tolist()
    return [(i, j, float(horizon)) for (i, j), ok in zip(candidates, keep, strict=True) if ok]


class MemoryGuidedMPC:
    """Drives E problems at once through subgoals taken from a graph over remembered states.

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
        self.routes: list[list[int]] = []  # per problem: remaining subgoal nodes
        self.z_goal = torch.empty(0)
        self.replans = 0

    def nearest(self, z: torch.Tensor) -> list[int]:
        """Index of the remembered state nearest each of (E, D) embeddings."""
        return torch.cdist(z.float().cpu(), self.z).argmin(dim=1).tolist()

    def route(self, z_now: torch.Tensor, z_goal: torch.Tensor) -> list[int]:
        """Subgoal nodes from the memory nearest z_now (D,) to the memory nearest z_goal (D,);
        empty when no path exists (MPC then heads for the goal directly)."""
        (a, b) = self.nearest(torch.stack([z_now, z_goal]))
        try:
            path, _ = self.graph.shortest_path(a, b)
        except NoPathError:
            return []
        return subgoals(path, self.config.subgoal_every) if len(path) > 1 else []

    def start(self, frames: torch.Tensor, z_goal: torch.Tensor) -> None:
        """Begin E problems: current frames (E, H, W, 3), goal embeddings (E, D)."""
        z_now = self.mpc.encode_frames(frames).cpu()  # (E, D)
        self.z_goal = z_goal.float().cpu()
        self.routes = [self.route(z, g) for z, g in zip(z_now, self.z_goal, strict=True)]
        self.mpc.reset()

    def targets(self, z_now: torch.Tensor) -> torch.Tensor:
        """Advance past reached subgoals, re-route drifted problems; the (E, D) MPC targets."""
        c, out = self.config, []
        for e, z in enumerate(z_now):
            route = self.routes[e]
            while route and float((z - self.z[route[0]]).norm()) <= c.reach:
                route.pop(0)
            if route and float((z - self.z[route[0]]).norm()) > c.drift:
                self.routes[e] = route = self.route(z, self.z_goal[e])
                self.replans += 1
            out.append(self.z[route[0]] if route else self.z_goal[e])
        return torch.stack(out)  # (E, D)

    def plan(
        self, frames: torch.Tensor, generator: torch.Generator, keep: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Env actions (E, receding*k, A) for the current frames (E, H, W, 3).

        Args:
            keep: optional bool mask of which previous problems are still active; their routes
                (and the MPC's warm starts) follow them as the batch shrinks.
        """
        if keep is not None and len(keep) == len(self.routes):
            self.routes = [r for r, k in zip(self.routes, keep.tolist(), strict=True) if k]
            self.z_goal = self.z_goal[keep.cpu()]
        z_now = self.mpc.encode_frames(frames)  # (E, D)
        target = self.targets(z_now.cpu()).to(z_now.device)
        return self.mpc.plan(frames, target, generator, keep, z_now=z_now)
