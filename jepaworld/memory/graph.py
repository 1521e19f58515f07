"""A graph over remembered states, and shortest paths through it (subgoals for long-horizon MPC).

Nodes are memory entries (0..N-1 here; the caller maps them to store ids). Edges come from two
sources: transitions actually observed (step t -> t+1 of the same episode, cost 1 model step), and
pairs of states close in latent space, which the world model can be asked to bridge within a few
actions (cost proportional to latent distance). Dijkstra gives the cheapest chain from the memory
nearest the current frame to the memory nearest the goal; every few nodes of it become subgoals.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch


class NoPathError(LookupError):
    """The target cannot be reached from the source in the graph."""


@dataclass
class MemoryGraph:
    """A directed, weighted graph over `size` nodes."""

    size: int
    adjacency: list[dict[int, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError(f"size must be >= 0, got {self.size}")
        if not self.adjacency:
            self.adjacency = [{} for _ in range(self.size)]

    def add_edges(self, edges: Iterable[tuple[int, int, float]], both_ways: bool = False) -> None:
        """Add (i, j, cost) edges; a repeated edge keeps its cheapest cost."""
        for i, j, cost in edges:
            if not (0 <= i < self.size and 0 <= j < self.size):
                raise IndexError(f"edge ({i}, {j}) outside the graph of {self.size} nodes")
            if cost < 0:
                raise ValueError(f"edge ({i}, {j}) has negative cost {cost}")
            for a, b in ((i, j), (j, i)) if both_ways else ((i, j),):
                if a != b and cost < self.adjacency[a].get(b, float("inf")):
                    self.adjacency[a][b] = float(cost)

    @property
    def edge_count(self) -> int:
        return sum(len(nbrs) for nbrs in self.adjacency)

    def shortest_path(self, source: int, target: int) -> tuple[list[int], float]:
        """Dijkstra from source to target: (nodes on the path, total cost)."""
        dist, parent = {source: 0.0}, {source: source}
        heap = [(0.0, source)]
        while heap:
            d, node = heapq.heappop(heap)
            if node == target:
                return _unwind(parent, target), d
            if d > dist[node]:
                continue
            for nbr, cost in self.adjacency[node].items():
                nd = d + cost
                if nd < dist.get(nbr, float("inf")):
                    dist[nbr], parent[nbr] = nd, node
                    heapq.heappush(heap, (nd, nbr))
        raise NoPathError(f"node {target} is not reachable from node {source}")


def _unwind(parent: dict[int, int], node: int) -> list[int]:
    path = [node]
    while parent[node] != node:
        node = parent[node]
        path.append(node)
    return path[::-1]


def transition_edges(episode: np.ndarray, step: np.ndarray) -> list[tuple[int, int, float]]:
    """Edges i -> j where j is the next remembered step of i's episode (cost: steps between)."""
    episode, step = np.asarray(episode), np.asarray(step)
    order = np.lexsort((step, episode))  # by episode, then step
    edges = []
    for a, b in zip(order[:-1], order[1:], strict=True):
        if episode[a] == episode[b]:
            edges.append((int(a), int(b), float(step[b] - step[a])))
    return edges


def proximity_edges(
    embeddings: torch.Tensor, k: int, max_distance: float, cost_per_unit: float = 1.0
) -> list[tuple[int, int, float]]:
    """Edges from each node to its k nearest others in latent space within `max_distance`.

    Args:
        embeddings: (N, D) latent states.
        cost_per_unit: model steps charged per unit of latent distance.
    """
    z = torch.as_tensor(embeddings, dtype=torch.float32)
    n = z.shape[0]
    if n < 2 or k < 1:
        return []
    d = torch.cdist(z, z)  # (N, N)
    d.fill_diagonal_(float("inf"))
    vals, idx = d.topk(min(k, n - 1), dim=1, largest=False)  # (N, k)
    keep = vals <= max_distance
    rows = torch.arange(n).unsqueeze(1).expand_as(idx)
    return [
        (int(i), int(j), float(v) * cost_per_unit)
        for i, j, v in zip(
            rows[keep].tolist(), idx[keep].tolist(), vals[keep].tolist(), strict=True
        )
    ]


def subgoals(path: list[int], every: int) -> list[int]:
    """Every `every`-th node of a path after the start, always ending with the last node."""
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    picked = path[every::every]
    if not picked or picked[-1] != path[-1]:
        picked.append(path[-1])
    return picked
