from __future__ import annotations

import numpy as np
import pytest
import torch

from jepaworld.memory.graph import (
    MemoryGraph,
    NoPathError,
    proximity_edges,
    subgoals,
    transition_edges,
)


def test_shortest_path_on_a_hand_made_graph() -> None:
    #   0 -1-> 1 -1-> 2 -1-> 3      the chain costs 3
    #   0 ----------5--------> 3    the direct hop costs 5
    #   0 -1-> 4 -0.5-> 3           the detour costs 1.5: the answer
    g = MemoryGraph(5)
    g.add_edges([(0, 1, 1), (1, 2, 1), (2, 3, 1), (0, 3, 5), (0, 4, 1), (4, 3, 0.5)])
    path, cost = g.shortest_path(0, 3)
    assert path == [0, 4, 3] and cost == pytest.approx(1.5)
    assert g.shortest_path(2, 2) == ([2], 0.0)
    with pytest.raises(NoPathError, match="node 0 is not reachable from node 3"):
        g.shortest_path(3, 0)  # edges are directed


def test_edges_are_validated_and_keep_the_cheapest() -> None:
    g = MemoryGraph(3)
    g.add_edges([(0, 1, 4.0), (0, 1, 2.0), (0, 1, 3.0)], both_ways=True)
    assert g.adjacency[0][1] == 2.0 and g.adjacency[1][0] == 2.0 and g.edge_count == 2
    with pytest.raises(IndexError, match="outside the graph"):
        g.add_edges([(0, 7, 1.0)])
    with pytest.raises(ValueError, match="negative cost"):
        g.add_edges([(0, 2, -1.0)])


def test_transition_edges_follow_episodes_in_step_order() -> None:
    episode = np.array([1, 0, 0, 1, 0])
    step = np.array([0, 2, 0, 3, 1])
    edges = sorted(transition_edges(episode, step))
    # episode 0: nodes 2 (step 0) -> 4 (step 1) -> 1 (step 2); episode 1: node 0 (step 0) -> 3 (step 3)
    assert edges == [(0, 3, 3.0), (2, 4, 1.0), (4, 1, 1.0)]


def test_proximity_edges_join_near_states_only() -> None:
    z = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.0, 5.2]])
    edges = proximity_edges(z, k=3, max_distance=1.0, cost_per_unit=10.0)
    assert sorted((i, j) for i, j, _ in edges) == [(0, 1), (1, 0), (2, 3), (3, 2)]
    assert dict(((i, j), c) for i, j, c in edges)[(0, 1)] == pytest.approx(1.0)


def test_two_episodes_joined_by_proximity_give_a_path_between_them() -> None:
    # two remembered trajectories that pass near each other once: only their union reaches the goal
    a = [(float(x), 0.0) for x in range(5)]  # episode 0 walks along y = 0
    b = [(4.0, float(y)) for y in range(1, 6)]  # episode 1 walks up from (4, 1)
    z = torch.tensor(a + b)
    episode, step = np.array([0] * 5 + [1] * 5), np.array(list(range(5)) * 2)
    g = MemoryGraph(10)
    g.add_edges(transition_edges(episode, step))
    g.add_edges(proximity_edges(z, k=2, max_distance=1.01), both_ways=True)
    path, _ = g.shortest_path(0, 9)
    assert path[0] == 0 and path[-1] == 9 and 4 in path and 5 in path


def test_subgoals_are_spaced_and_end_at_the_goal() -> None:
    assert subgoals([0, 1, 2, 3, 4, 5, 6], every=3) == [3, 6]
    assert subgoals([0, 1, 2, 3, 4], every=3) == [3, 4]
    assert subgoals([7], every=2) == [7]
    with pytest.raises(ValueError):
        subgoals([0, 1], every=0)
