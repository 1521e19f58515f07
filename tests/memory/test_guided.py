"""Memory-guided MPC on a world with known dynamics: a point that cannot cross a wall.

The "model" is exact: z is the 2-D position, an action moves it by up to 1 per axis, and a move
that would cross the wall x = 0 for |y| <= WALL stops short. From (-3, 0) to (3, 0) greedy latent
distance leads straight into the wall, so flat MPC stalls; a memory of positions along a path
round the wall's end gives subgoals that reach the goal.
"""

from __future__ import annotations

import torch

from jepaworld.memory.graph import MemoryGraph, transition_edges
from jepaworld.memory.guided import (
    GraphSettings,
    GuidedConfig,
    MemoryGuidedMPC,
    build_graph,
    reachability_edges,
)
from jepaworld.planning.cem import CEM, CEMConfig
from jepaworld.planning.mpc import LatentMPC, MPCConfig
from jepaworld.planning.protocols import ActionBounds

WALL = 6.0


def move(p: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """p (..., 2) + a (..., 2), stopped at the wall."""
    new = p + a.clamp(-1, 1)
    crosses = (torch.sign(p[..., 0]) != torch.sign(new[..., 0])) & (new[..., 1].abs() <= WALL)
    stop_x = torch.where(
        p[..., 0] < 0, torch.full_like(p[..., 0], -0.05), torch.full_like(p[..., 0], 0.05)
    )
    return torch.stack([torch.where(crosses, stop_x, new[..., 0]), new[..., 1]], dim=-1)


class WallWorld:
    """An exact world model: frames are float positions (E, 1, 1, 2) stored as (E, H, W, 3)-like."""

    step_action_dim = 2

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        return frames[:, :, 0, 0, :2].float()  # (B, T, 2)

    def rollout(self, z_hist: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        p, out = z_hist[:, -1], []
        for t in range(actions.shape[1]):
            p = move(p, actions[:, t])
            out.append(p)
        return torch.stack(out, dim=1)  # (B, L, 2)


def frames_of(p: torch.Tensor) -> torch.Tensor:
    return torch.cat([p, torch.zeros(len(p), 1)], dim=-1)[:, None, None, :]  # (E, 1, 1, 3)


def run(controller, start: torch.Tensor, steps: int) -> torch.Tensor:
    g, p = torch.Generator().manual_seed(0), start.clone()
    for _ in range(steps):
        actions = controller(frames_of(p), g)  # (E, n, 2)
        for t in range(actions.shape[1]):
            p = move(p, actions[:, t])
    return p


def make_mpc(model: WallWorld) -> LatentMPC:
    cem = CEM(CEMConfig(samples=64, elites=8, iterations=6))
    return LatentMPC(model, cem, MPCConfig(horizon=3), ActionBounds.box(-1, 1, 2), 2)


def path_memory() -> torch.Tensor:
    """Positions remembered along one episode: up the left side, over the wall's end, down."""
    up = [(-3.0, y) for y in torch.arange(0.0, 9.0, 1.0).tolist()]
    over = [(x, 8.0) for x in torch.arange(-2.0, 3.0, 1.0).tolist()]
    down = [(3.0, y) for y in torch.arange(8.0, -1.0, -1.0).tolist()]
    return torch.tensor(up + over + down)  # (N, 2)


def test_flat_mpc_stalls_at_the_wall_and_memory_guidance_goes_round_it() -> None:
    model, start, goal = WallWorld(), torch.tensor([[-3.0, 0.0]]), torch.tensor([[3.0, 0.0]])
    flat = make_mpc(model)
    end = run(lambda f, g: flat.plan(f, goal, g), start, steps=40)
    assert float((end - goal).norm()) > 2.0  # pressed against the wall

    z = path_memory()
    graph = MemoryGraph(len(z))
    graph.add_edges(transition_edges(torch.zeros(len(z)).numpy(), torch.arange(len(z)).numpy()))
    guided = MemoryGuidedMPC(z, graph, make_mpc(model), GuidedConfig(lookahead=2))
    guided.start(frames_of(start), frames_of(goal))
    end = run(guided.plan, start, steps=40)
    assert float((end - goal).norm()) < 0.5


def test_reachability_edges_keep_only_what_the_model_can_bridge() -> None:
    z = torch.tensor([[-3.0, 0.0], [-1.0, 1.0], [1.0, 0.0], [-3.0, 7.5], [-1.5, 7.5]])
    candidates = [(0, 1), (1, 2), (3, 4), (0, 3)]
    edges = reachability_edges(
        WallWorld(), z, candidates, CEM(CEMConfig(samples=128, elites=16, iterations=8)),
        horizon=3, bounds=ActionBounds.box(-1, 1, 2), threshold=0.3,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    # (1, 2) crosses the wall; (0, 3) is 7.5 away, beyond 3 steps; the others are within reach
    assert edges == [(0, 1, 3.0), (3, 4, 3.0)]


def test_progress_only_moves_forward_and_a_drifted_agent_is_rerouted() -> None:
    z = path_memory()
    graph = MemoryGraph(len(z))
    graph.add_edges(
        transition_edges(torch.zeros(len(z)).numpy(), torch.arange(len(z)).numpy()), both_ways=True
    )
    guided = MemoryGuidedMPC(
        z, graph, make_mpc(WallWorld()), GuidedConfig(lookahead=2, window=4, drift=2.5)
    )
    guided.start(frames_of(torch.tensor([[-3.0, 0.0]])), frames_of(torch.tensor([[3.0, 0.0]])))
    assert guided.paths[0] == list(range(len(z)))
    target = guided.targets(torch.tensor([[-3.0, 3.1]]))  # at node 3: target node 5
    assert guided.progress == [3] and torch.equal(target[0], z[5])
    guided.targets(torch.tensor([[-3.0, 1.0]]))  # behind: progress stays
    assert guided.progress == [3] and guided.reroutes == 0
    guided.targets(torch.tensor([[0.0, 8.0]]))  # far from nodes 3..6: search again from node 11
    assert guided.reroutes == 1 and guided.paths[0][0] == 11 and guided.progress == [0]


def test_build_graph_keeps_proximity_edges_the_model_can_travel_and_drops_those_through_walls() -> (
    None
):
    ys = torch.arange(0.0, 10.0)
    z = torch.cat([torch.stack([-torch.ones(10), ys], 1), torch.stack([torch.ones(10), ys], 1)])
    episode, step = torch.arange(20) // 10, torch.arange(20) % 10

    def cross_edges(verify: bool) -> list[tuple[int, int]]:
        settings = GraphSettings(
            proximity_k=3, proximity_scale=2.5, verify=verify, verify_samples=64
        )
        graph, counts = build_graph(
            WallWorld(), episode.numpy(), step.numpy(), z, settings,
            ActionBounds.box(-1, 1, 2), torch.Generator().manual_seed(0),
        )  # fmt: skip
        assert counts["transition_edges"] == 2 * 18 and counts["median_transition_distance"] == 1
        return [(i, j) for i in range(20) for j in graph.adjacency[i] if (i < 10) != (j < 10)]

    unverified = cross_edges(verify=False)
    assert any(float(z[i, 1]) <= WALL for i, _ in unverified)  # latent neighbours through the wall
    verified = cross_edges(verify=True)
    assert verified and all(float(z[i, 1]) > WALL and float(z[j, 1]) > WALL for i, j in verified)
