"""Receding-horizon model-predictive control in latent space toward a goal image.

At each decision the current frame and the goal frame are encoded; the planner searches action
sequences whose predicted embeddings end near the goal's; the first `receding` model steps are
executed and the rest warm-start the next search (shifted by what was executed).

A goal may also be a short clip of G frames, one model step apart (`LatentMPC.encode_goal`): the
last G predicted embeddings are then compared with the clip's, in order. One image shows where
things are, not how fast they move; two frames show both (a pendulum that must pass an angle at a
given speed).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from jepaworld.config import require
from jepaworld.planning.protocols import ActionBounds, Planner, WorldModelLike


@dataclass
class MPCConfig:
    """Receding-horizon control settings."""

    horizon: int = 5
    """L: model steps planned ahead."""
    receding: int = 1
    """Model steps executed before replanning."""
    intermediate_weight: float = 0.1
    """Weight of the goal distance at intermediate steps (the final step has weight 1)."""
    hold: bool = True
    """Plan one action per model step, held for its frame_stride env steps (k times fewer dimensions
    and coherent motion in every sample); false plans every env action."""

    def __post_init__(self) -> None:
        require(self.horizon >= 1, "horizon", "must be >= 1")
        require(1 <= self.receding <= self.horizon, "receding", "must be in [1, horizon]")
        require(self.intermediate_weight >= 0, "intermediate_weight", "must be >= 0")


class LatentGoalCost:
    """cost(actions (E,S,L,A)) = ||z_L - z_goal||^2 + w * mean_l<L ||z_l - z_goal||^2, per sample.

    With a goal clip z_goal (E, G, D), the final term is the mean of ||z_{L-G+g} - z_goal_g||^2
    over its G frames, and the intermediate term compares the steps before them with its last."""

    def __init__(
        self,
        model: WorldModelLike,
        z_now: torch.Tensor,
        z_goal: torch.Tensor,
        intermediate_weight: float,
        repeat: int = 1,
    ) -> None:
        self.model, self.z_now = model, z_now  # (E, 1, D)
        self.z_goal = z_goal if z_goal.ndim == 3 else z_goal.unsqueeze(1)  # (E, G, D)
        self.w, self.repeat = intermediate_weight, repeat

    def __call__(self, actions: torch.Tensor) -> torch.Tensor:
        """Differentiable when `actions` requires grad (gradient planners); else no autograd."""
        if not actions.requires_grad:
            with torch.inference_mode():
                return self._cost(actions, self.z_now, self.z_goal)
        # embeddings made under inference_mode cannot enter autograd; plain copies can
        return self._cost(actions, self.z_now.clone(), self.z_goal.clone())

    def _cost(
        self, actions: torch.Tensor, z_now: torch.Tensor, z_goal: torch.Tensor
    ) -> torch.Tensor:
        E, S, L, A = actions.shape
        G = z_goal.shape[1]
        if G > L:
            raise ValueError(f"z_goal: a goal clip of {G} frames needs horizon >= {G}, got {L}")
        z0 = z_now.repeat_interleave(S, dim=0)  # (E*S, 1, D)
        acts = actions.reshape(E * S, L, A).to(z_now.device)  # (E*S, L, A)
        acts = acts.repeat(1, 1, self.repeat)  # held actions: (E*S, L, repeat*A)
        pred = self.model.rollout(z0, acts)  # (E*S, L, D)
        goal = z_goal.repeat_interleave(S, dim=0)  # (E*S, G, D)
        cost = (pred[:, L - G :] - goal).pow(2).sum(-1).mean(dim=1)  # (E*S,)
        if L > G and self.w:
            early = (pred[:, : L - G] - goal[:, -1:]).pow(2).sum(-1)  # (E*S, L-G)
            cost = cost + self.w * early.mean(dim=1)
        return cost.reshape(E, S).float().cpu()  # (E, S)


class LatentMPC:
    """Plans for E environments at once and remembers warm starts.

    Args:
        env_action_dim: A of one environment action; the model step takes k = A' / A of them.
        bounds: box of one environment action (A,).
    """

    def __init__(
        self,
        model: WorldModelLike,
        planner: Planner,
        config: MPCConfig,
        bounds: ActionBounds,
        env_action_dim: int,
    ):
        self.model, self.planner, self.config = model, planner, config
        if model.step_action_dim % env_action_dim:
            raise ValueError(
                f"model step action {model.step_action_dim} is not a multiple of {env_action_dim}"
            )
        self.k = model.step_action_dim // env_action_dim
        if bounds.dim != env_action_dim:
            raise ValueError(
                f"bounds have {bounds.dim} dims, the environment action has {env_action_dim}"
            )
        reps = 1 if config.hold else self.k
        self.bounds = ActionBounds(
            bounds.low.repeat(reps), bounds.high.repeat(reps)
        )  # planner's box
        self.env_action_dim = env_action_dim
        self.warm: torch.Tensor | None = None  # (E, L, A_plan)

    def reset(self) -> None:
        self.warm = None

    @torch.inference_mode()
    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (E, H, W, 3) -> (E, D)."""
        return self.model.encode(frames.unsqueeze(1))[:, 0]

    @torch.inference_mode()
    def encode_goal(self, goals: torch.Tensor) -> torch.Tensor:
        """Goal images uint8 (E, H, W, 3) -> (E, D), or goal clips (E, G, H, W, 3), frames one
        model step apart, -> (E, G, D)."""
        if goals.ndim == 4:
            return self.encode_frames(goals)
        if goals.ndim != 5 or goals.shape[1] > self.config.horizon:
            raise ValueError(
                f"goals must be (E, H, W, 3) images or (E, G, H, W, 3) clips of at most the "
                f"horizon ({self.config.horizon}) frames, got {tuple(goals.shape)}"
            )
        return self.model.encode(goals)  # (E, G, D)

    def to_env_actions(self, plan: torch.Tensor) -> torch.Tensor:
        """Planner actions (E, n, A_plan) -> environment actions (E, n * k, A) in execution order."""
        E = plan.shape[0]
        if self.config.hold:
            return plan.repeat_interleave(self.k, dim=1)  # (E, n*k, A)
        return plan.reshape(E, -1, self.env_action_dim)  # (E, n*k, A)

    def plan(
        self,
        frames: torch.Tensor,
        z_goal: torch.Tensor,
        generator: torch.Generator,
        keep: torch.Tensor | None = None,
        z_now: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Plan for the current frames (E, H, W, 3) toward z_goal (E, D), or goal clips' (E, G, D)
        (`encode_goal`); returns env actions to execute (E, receding*k, A).

        Args:
            keep: optional bool (E_prev,) mask of which previous problems are still active, used to
                carry warm starts across a shrinking batch.
            z_now: the frames' embeddings (E, D), when the caller has already encoded them.
        """
        c = self.config
        z_now = (self.encode_frames(frames) if z_now is None else z_now).unsqueeze(1)  # (E, 1, D)
        init = self.warm if self.warm is None or keep is None else self.warm[keep]
        if init is not None and init.shape[0] != frames.shape[0]:
            init = None
        repeat = self.k if c.hold else 1
        cost = LatentGoalCost(self.model, z_now, z_goal, c.intermediate_weight, repeat)
        plan = self.planner.solve_batch(
            cost, frames.shape[0], c.horizon, self.bounds, generator, init
        )
        mid = (self.bounds.low + self.bounds.high) / 2
        tail = mid.expand(plan.shape[0], c.receding, -1)
        self.warm = torch.cat(
            [plan[:, c.receding :], tail], dim=1
        )  # shifted warm start (E, L, A_plan)
        return self.to_env_actions(plan[:, : c.receding])  # (E, receding*k, A)
