"""Receding-horizon model-predictive control in latent space toward a goal image.

At each decision the current frame and the goal frame are encoded; the planner searches action
sequences whose predicted embeddings end near the goal's; the first `receding` model steps are
executed and the rest warm-start the next search (shifted by what was executed). With `execute`
the controller replans after fewer env steps than a model step holds, from the frame it reaches.

With `history` T > 1 the predictor also sees the frames of up to T-1 earlier decisions and the
actions executed between them, as DINO-WM and LeWM condition on 3 frames: one frame shows where
things are, several show how fast they move (a pusher still coasting from its last push).

A goal may also be a short clip of G frames, one model step apart (`LatentMPC.encode_goal`): the
last G predicted embeddings are then compared with the clip's, in order. One image shows where
things are, not how fast they move; two frames show both (a pendulum that must pass an angle at a
given speed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch

from jepaworld.config import require
from jepaworld.planning.protocols import ActionBounds, Planner, WorldModelLike

GoalAt = Literal["end", "any"]
"""Where in the horizon the planner's cost wants the goal (MPCConfig.goal_at)."""
GOAL_AT: tuple[str, ...] = get_args(GoalAt)


def check_goal_at(goal_at: str) -> None:
    """A named error for a goal_at that is neither end nor any."""
    require(goal_at in GOAL_AT, "goal_at", f"must be {' or '.join(GOAL_AT)}, got {goal_at!r}")


def check_execute(execute: int, history: int) -> None:
    """Named errors for an execute below 0, or one set beside a history of frames."""
    require(execute >= 0, "execute", f"must be >= 0, got {execute}")
    require(
        history == 1 or execute == 0,
        "execute",
        f"needs history 1 (remembered frames are one model step apart), got history {history}",
    )


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
    history: int = 1
    """T: observed frames the predictor sees, the current one and up to T-1 earlier decisions'
    (one model step apart, so receding must be 1), with the actions executed between them. A
    model predicts from as many frames as its training clips gave it: history + horizon should
    not exceed the clip length it was trained on (`train --clip-frames`)."""
    execute: int = 0
    """Env steps executed before replanning: 0 executes the `receding` model steps whole
    (receding x frame_stride env steps, as the anchors do); fewer replan sooner, from the frame
    they reach, so the controller corrects its model's errors more often, at the cost of more
    plans per episode. The next search's warm start is this plan less what was executed (held
    actions: shifted by the whole model steps nearest to it). Needs history 1."""
    goal_at: GoalAt = "end"
    """end: the goal is to be reached at the end of the horizon (the anchors' cost, plus
    intermediate_weight x the earlier steps' distances); any: at whichever step of the horizon
    comes nearest to it (the least distance over the horizon; intermediate_weight unused), for a
    goal that is passed through rather than stopped at, such as a swinging pendulum's."""

    def __post_init__(self) -> None:
        require(self.horizon >= 1, "horizon", "must be >= 1")
        require(1 <= self.receding <= self.horizon, "receding", "must be in [1, horizon]")
        require(self.intermediate_weight >= 0, "intermediate_weight", "must be >= 0")
        require(self.history >= 1, "history", "must be >= 1")
        check_goal_at(self.goal_at)
        check_execute(self.execute, self.history)
        require(
            self.history == 1 or self.receding == 1,
            "history",
            f"needs receding 1 (frames one model step apart), got receding {self.receding}",
        )


class LatentGoalCost:
    """cost(actions (E,S,L,A)) = ||z_L - z_goal||^2 + w * mean_l<L ||z_l - z_goal||^2, per sample;
    with goal_at "any", min_l ||z_l - z_goal||^2 instead (reach the goal at any step).

    With a goal clip z_goal (E, G, D), the final term is the mean of ||z_{L-G+g} - z_goal_g||^2
    over its G frames, and the intermediate term compares the steps before them with its last;
    "any" takes the least such mean over every G consecutive predicted steps.
    z_now (E, T, D) may hold T observed frames, the last the current one, with `past_actions`
    (E, T-1, A') the model-step actions executed between them."""

    def __init__(
        self,
        model: WorldModelLike,
        z_now: torch.Tensor,
        z_goal: torch.Tensor,
        intermediate_weight: float,
        repeat: int = 1,
        past_actions: torch.Tensor | None = None,
        goal_at: GoalAt = "end",
    ) -> None:
        check_goal_at(goal_at)
        self.goal_at = goal_at
        T = z_now.shape[1]
        if past_actions is None and T > 1:
            z_now = z_now[:, -1:]  # without the actions between them, earlier frames say nothing
        elif past_actions is not None and past_actions.shape[1] != T - 1:
            raise ValueError(
                f"past_actions: {T} observed frames need {T - 1} actions between them, "
                f"got {past_actions.shape[1]}"
            )
        self.model, self.z_now, self.past = model, z_now, past_actions  # (E, T, D), (E, T-1, A')
        self.z_goal = z_goal if z_goal.ndim == 3 else z_goal.unsqueeze(1)  # (E, G, D)
        self.w, self.repeat = intermediate_weight, repeat

    def __call__(self, actions: torch.Tensor) -> torch.Tensor:
        """Differentiable when `actions` requires grad (gradient planners); else no autograd."""
        if not actions.requires_grad:
            with torch.inference_mode():
                return self._cost(actions, self.z_now, self.z_goal, self.past)
        # tensors made under inference_mode cannot enter autograd; plain copies can
        past = None if self.past is None else self.past.clone()
        return self._cost(actions, self.z_now.clone(), self.z_goal.clone(), past)

    def _cost(
        self,
        actions: torch.Tensor,
        z_now: torch.Tensor,
        z_goal: torch.Tensor,
        past: torch.Tensor | None,
    ) -> torch.Tensor:
        E, S, L, A = actions.shape
        G = z_goal.shape[1]
        if G > L:
            raise ValueError(f"z_goal: a goal clip of {G} frames needs horizon >= {G}, got {L}")
        z0 = z_now.repeat_interleave(S, dim=0)  # (E*S, T, D)
        acts = actions.reshape(E * S, L, A).to(z_now.device)  # (E*S, L, A)
        acts = acts.repeat(1, 1, self.repeat)  # held actions: (E*S, L, repeat*A)
        if past is None or past.shape[1] == 0:
            pred = self.model.rollout(z0, acts)  # one frame (__init__): (E*S, L, D)
        else:
            past = past.to(z_now.device).repeat_interleave(S, dim=0)  # (E*S, T-1, A')
            pred = self.model.rollout(z0, acts, past)  # (E*S, L, D)
        goal = z_goal.repeat_interleave(S, dim=0)  # (E*S, G, D)
        if self.goal_at == "any":
            windows = pred.unfold(1, G, 1)  # (E*S, L-G+1, D, G): every G consecutive steps
            err = (windows - goal.transpose(1, 2)[:, None]).pow(2).sum(2).mean(-1)  # (E*S, L-G+1)
            return err.min(dim=1).values.reshape(E, S).float().cpu()  # (E, S)
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
        whole = config.receding * self.k
        if config.execute > whole:
            raise ValueError(
                f"execute: {config.execute} env steps are more than a plan executes whole "
                f"(receding {config.receding} x {self.k} env steps a model step)"
            )
        reps = 1 if config.hold else self.k
        self.bounds = ActionBounds(
            bounds.low.repeat(reps), bounds.high.repeat(reps)
        )  # planner's box
        self.env_action_dim = env_action_dim
        self.warm: torch.Tensor | None = None  # (E, L, A_plan)
        self.z_past: torch.Tensor | None = None  # earlier decisions' embeddings (E, h, D)
        self.a_past: torch.Tensor | None = None  # model-step actions executed after them (E, h, A')

    def reset(self) -> None:
        self.warm = self.z_past = self.a_past = None

    @torch.inference_mode()
    def encode_frames(
        self, frames: torch.Tensor, proprio: torch.Tensor | None = None
    ) -> torch.Tensor:
        """uint8 (E, H, W, 3) -> (E, D); `proprio`, the frames' state vectors (E, S), for a model
        that reads proprioception."""
        if proprio is None:  # models without proprioception may take frames alone
            return self.model.encode(frames.unsqueeze(1))[:, 0]
        return self.model.encode(frames.unsqueeze(1), proprio.unsqueeze(1))[:, 0]  # (E, 1, S)

    @torch.inference_mode()
    def encode_goal(self, goals: torch.Tensor, proprio: torch.Tensor | None = None) -> torch.Tensor:
        """Goal images uint8 (E, H, W, 3) -> (E, D), or goal clips (E, G, H, W, 3), frames one
        model step apart, -> (E, G, D); `proprio`, the goals' state vectors (E, S) or (E, G, S),
        for a model that reads proprioception."""
        if goals.ndim == 4:
            return self.encode_frames(goals, proprio)
        if goals.ndim != 5 or goals.shape[1] > self.config.horizon:
            raise ValueError(
                f"goals must be (E, H, W, 3) images or (E, G, H, W, 3) clips of at most the "
                f"horizon ({self.config.horizon}) frames, got {tuple(goals.shape)}"
            )
        if proprio is None:
            return self.model.encode(goals)  # (E, G, D)
        return self.model.encode(goals, proprio)  # (E, G, D)

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
        proprio: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Plan for the current frames (E, H, W, 3) toward z_goal (E, D), or goal clips' (E, G, D)
        (`encode_goal`); returns env actions to execute (E, receding*k, A), or (E, execute, A).

        Args:
            keep: optional bool (E_prev,) mask of which previous problems are still active, used to
                carry warm starts across a shrinking batch.
            z_now: the frames' embeddings (E, D), when the caller has already encoded them.
            proprio: the frames' state vectors (E, S), for a model that reads proprioception.
        """
        c = self.config
        if z_now is None:
            z_now = self.encode_frames(frames, proprio)
        z_now = z_now.unsqueeze(1)  # (E, 1, D)
        init = self._carried(self.warm, keep, frames.shape[0])
        z_ctx, past = self._context(z_now, keep)  # (E, T, D), (E, T-1, A') or None
        repeat = self.k if c.hold else 1
        cost = LatentGoalCost(
            self.model, z_ctx, z_goal, c.intermediate_weight, repeat, past, c.goal_at
        )
        plan = self.planner.solve_batch(
            cost, frames.shape[0], c.horizon, self.bounds, generator, init
        )
        steps = c.execute or c.receding * self.k  # env steps executed now
        self.warm = self._shifted(plan, steps)  # (E, L, A_plan)
        if c.history > 1:  # remember this frame and the model-step action about to be executed
            executed = plan[:, :1].repeat(1, 1, repeat).to(z_ctx.device)  # (E, 1, A')
            self.z_past = z_ctx[:, -c.history + 1 :]  # (E, <=T-1, D)
            a_past = executed if past is None else torch.cat([past, executed], dim=1)
            self.a_past = a_past[:, -c.history + 1 :]  # (E, <=T-1, A')
        return self.to_env_actions(plan[:, : c.receding])[:, :steps]  # (E, steps, A)

    def _shifted(self, plan: torch.Tensor, steps: int) -> torch.Tensor:
        """The next search's warm start: `plan` (E, L, A_plan) less the `steps` env actions just
        executed, padded with the middle of the box. Held actions shift by the whole model steps
        nearest to `steps` (a held action cannot be split); per-env-step plans shift exactly."""
        E, L, _ = plan.shape
        mid = (self.bounds.low + self.bounds.high) / 2  # (A_plan,)
        if not self.config.hold:
            flat = plan.reshape(E, L * self.k, self.env_action_dim)  # (E, L*k, A)
            pad = mid[: self.env_action_dim].expand(E, steps, -1)  # (E, steps, A)
            return torch.cat([flat[:, steps:], pad], dim=1).reshape(E, L, -1)
        shift = (steps + self.k // 2) // self.k  # model steps the next search starts nearest to
        return torch.cat([plan[:, shift:], mid.expand(E, shift, -1)], dim=1)

    @staticmethod
    def _carried(
        state: torch.Tensor | None, keep: torch.Tensor | None, n: int
    ) -> torch.Tensor | None:
        """Per-problem state of the last call (E_prev, ...) narrowed to the problems still active,
        or None when it no longer lines up with the n problems planned now."""
        if state is not None and keep is not None:
            state = state[keep.to(state.device)]
        return state if state is not None and state.shape[0] == n else None

    def _context(
        self, z_now: torch.Tensor, keep: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The current embedding (E, 1, D) after the remembered ones: (E, h+1, D), and the h
        actions executed between them (E, h, A'), or None without history."""
        if self.config.history == 1:
            return z_now, None
        z_past = self._carried(self.z_past, keep, z_now.shape[0])
        a_past = self._carried(self.a_past, keep, z_now.shape[0])
        if z_past is None or a_past is None:
            return z_now, None
        return torch.cat([z_past, z_now], dim=1), a_past
