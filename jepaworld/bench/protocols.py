"""Evaluation protocols: frozen, versioned dataclasses. A result always names its protocol.

Changing any field's meaning or default bumps `version`; results with the same name and version
are comparable.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

from jepaworld.config import require, to_dict
from jepaworld.memory.guided import GraphSettings, GuidedConfig
from jepaworld.planning.mpc import GoalAt, check_execute, check_goal_at

P = TypeVar("P", bound="EpisodicProtocol")


class EpisodicProtocol:
    """What protocols run over `episodes` episodes from seeds seed .. seed + episodes - 1 share.

    The planner runs the episodes in lock-step batches of `chunk` consecutive episodes, batch b
    with its sampling generator seeded `planner seed + b`: any batch re-run alone gives the same
    episodes again, which is how `jepaworld bench verify` reproduces a few episodes of a report.
    """

    episodes: int
    seed: int
    chunk: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def seeds(self) -> range:
        return range(self.seed, self.seed + self.episodes)

    def with_episodes(self: P, episodes: int) -> P:
        """Same protocol on fewer/more episodes (recorded in the result's protocol block)."""
        if episodes < 1:
            raise ValueError(f"episodes: must be >= 1, got {episodes}")
        return dataclasses.replace(self, episodes=episodes)  # type: ignore[type-var]

    def with_history(self: P, history: int) -> P:
        """Same protocol whose planner sees `history` observed frames (0 keeps the protocol's;
        recorded in the result's protocol block)."""
        if history < 0:
            raise ValueError(f"history: must be >= 0, got {history}")
        return self if not history else self._with_planner("history", history)

    def with_goal_at(self: P, goal_at: GoalAt | None) -> P:
        """Same protocol whose planner's cost reaches the goal at `goal_at` (None keeps the
        protocol's; recorded in the result's protocol block)."""
        if goal_at is None:
            return self
        check_goal_at(goal_at)
        return self._with_planner("goal_at", goal_at)

    def with_execute(self: P, execute: int) -> P:
        """Same protocol whose controller replans after `execute` env steps (0 keeps the
        protocol's whole model steps; recorded in the result's protocol block)."""
        if execute < 0:
            raise ValueError(f"execute: must be >= 0, got {execute}")
        return self if not execute else self._with_planner("execute", execute)

    def _with_planner(self: P, name: str, value: Any) -> P:
        """Same protocol with one planner setting replaced; a protocol without a planner is refused
        by the setting's name."""
        planner = getattr(self, "planner", None)
        if planner is None:
            raise ValueError(f"{name}: {type(self).__name__} has no planner to give it to")
        return dataclasses.replace(  # type: ignore[type-var]
            self, planner=dataclasses.replace(planner, **{name: value})
        )


@dataclass(frozen=True)
class PlannerSettings:
    """CEM + MPC settings that are part of a planning protocol.

    CEM samples, elites and iterations are the anchors' defaults (DINO-WM, LeWM). The horizon is
    10 model steps (50 environment steps at frame_stride 5), not the anchors' 5: 25 environment
    steps cannot see around the wall from most starts. On one checkpoint (2000 steps x 64 clips),
    horizon 5 reached 0.74 and horizon 10 reached 0.96 on these 50 episodes.
    """

    samples: int = 300
    elites: int = 30
    iterations: int = 30
    init_std: float = 1.0
    min_std: float = 0.05
    momentum: float = 0.0
    horizon: int = 10
    receding: int = 1
    hold: bool = True
    intermediate_weight: float = 0.1
    frame_stride: int = 5
    """Environment steps per model step; a model with another frame_stride is refused."""
    history: int = 1
    """Observed frames the predictor sees at each decision (MPCConfig.history): 1 for every
    protocol but Pendulum-v1's (3, version 5); `jepaworld plan --history` overrides it and the
    result records the change."""
    goal_at: GoalAt = "end"
    """Where in the horizon the goal is to be reached (MPCConfig.goal_at): end for every protocol
    but Pendulum-v1's (any, since version 4); `jepaworld plan --goal-at` overrides it and the
    result records the change."""
    execute: int = 0
    """Env steps executed before replanning (MPCConfig.execute): 0, the `receding` model steps
    whole, for every protocol; `jepaworld plan --execute` overrides it and the result records the
    change."""

    def __post_init__(self) -> None:
        check_execute(self.execute, self.history)
        whole = self.receding * self.frame_stride
        require(
            self.execute <= whole,
            "execute",
            f"must be at most {whole} env steps (receding {self.receding} x frame_stride "
            f"{self.frame_stride}), got {self.execute}",
        )


@dataclass(frozen=True)
class TwoRoomProtocol(EpisodicProtocol):
    """Goal reaching in Two-Room (facts: PLDM; stable-worldmodel).

    Episode i starts from `seed + i`: start and goal are drawn uniformly among free positions until
    the goal is at least `min_goal_steps` steps of shortest path away (path length / speed: steps at
    axis speed; a diagonal action moves up to sqrt(2) times farther). Success = the agent's centre
    within `success_radius` px of the goal within `budget` environment steps. Seeds start far above
    any collection seed (`jepaworld collect` uses seed..seed+episodes, default from 0).
    """

    name: str = "tworoom-goal"
    version: str = "3"  # 3: lock-step batches of `chunk`; 2: horizon 10, held actions
    env_id: str = "jepaworld/TwoRoom-v0"
    episodes: int = 50
    seed: int = 1_000_000
    chunk: int = 10
    min_goal_steps: float = 25.0
    budget: int = 50
    success_radius: float = 4.5
    planner: PlannerSettings = field(default_factory=PlannerSettings)

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of gymnasium.make for this protocol's environment."""
        return {"success_radius": self.success_radius}


@dataclass(frozen=True)
class VoEProtocol:
    """Violation of expectation on the physics scenes (facts: Garrido et al. 2025).

    For each property, pairs i = 0..pairs-1 come from `pair_seed(seed, property, i)`
    (jepaworld.data.voe), far above every training seed. A video's score is its surprise,
    reduced over frames by `reduce`; surprise at frame t is the latent error of `horizon` frames
    predicted from the `context` frames before t.

    Version 5: every scorer's surprise of a video is also averaged over copies of it moved
    sideways by each of `shifts` pixels, edge columns repeated (`physics.surprise.look_specs`:
    with the flip, 10 looks). A copy shows the same events (the floor is level) except where a
    ball meets the canvas's side edge, a wall that is not drawn: there it bounces `shift` pixels
    off the frame's side, in the possible and the impossible video alike. A conv encoder of
    stride 16 meets each copy on another alignment, so its errors change where the event does
    not. Chosen on the validation sets below, constancy only, among three sets of five shifts
    (step 1, 3 and 4) on the four checkpoints of the 15-minute recipe (README): with the flip,
    (-6, -3, 0, 3, 6) raised it from 0.85, 0.89, 0.73 and 0.87 to 0.94, 0.95, 0.83 and 0.93. `shifts` (0,) scores as version 4 did (to float
    rounding: the looks are encoded in one batch).

    Version 4: with `flip`, every scorer's surprise of a video is the mean of its own and that of
    the video flipped left to right (`physics.surprise.look_mean`; the scenes' physics is the same
    flipped). Chosen on 100 validation sets per property from pair seed 2,500,000, rescoring 9
    checkpoints both ways (README): constancy changed by -0.03 to +0.10, rising on 8 of them
    (pooled, 77 sets right only with the flip, 30 only without), the other properties by -0.01 to
    +0.04. On the protocol's own sets constancy moved both ways (-0.06 to +0.12; 32 and 26).
    Otherwise as version 3: a v4 result with `flip` false scores as version 3 did, so the field
    must be read beside the version.

    Version 3: permanence, gravity and constancy are scored on IntPhys's matched sets of four
    videos (physics_scenes.MATCHED_SETS; the possible score of a set reduces the frames of its two
    possible videos together, likewise the impossible: `physics.evaluate.pair_scores`), and the
    context is 15 frames. Version 2 had matched sets for permanence and constancy only, and
    version 1 none: there "nothing comes out from behind the screen", and a ball that stops dead
    in mid-air, are the less surprising videos for any predictor, possible or not. Both had a
    context of 8 frames, shorter than the occlusion before about one permanence or constancy set
    in four: no window then shows the object before it hid, the set's scores are the same numbers
    and only rounding decided it. Occlusions in the scenes last at most 13 frames before the
    violation (600 sets from seeds outside the protocol's), so a window must reach back 14; 15 is
    the most that pretraining on 16-frame clips trains (the last frame of a clip is never a
    context's end, having no next frame to predict).

    Baselines in the same run: the same architecture untrained (initialised from
    `untrained_seed`), and a pixel predictor trained for `pixel_steps`
    on `pixel_videos` possible-only training videos (seeds 0..pixel_videos-1).
    """

    name: str = "physics-voe"
    version: str = "5"
    pairs: int = 50
    seed: int = 2_000_000
    context: int = 15
    horizon: int = 1
    reduce: str = "mean"
    flip: bool = True
    shifts: tuple[int, ...] = (-6, -3, 0, 3, 6)
    bootstrap_resamples: int = 1000
    untrained_seed: int = 0
    pixel_videos: int = 300
    pixel_steps: int = 400
    pixel_context: int = 4

    def __post_init__(self) -> None:
        from jepaworld.physics.surprise import check_shifts  # physics imports this module

        object.__setattr__(self, "shifts", check_shifts(self.shifts))

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)  # shifts as a list, as JSON holds it

    def with_pairs(self, pairs: int) -> VoEProtocol:
        """Same protocol on fewer/more pairs per property (recorded in the result)."""
        if pairs < 1:
            raise ValueError(f"pairs: must be >= 1, got {pairs}")
        return dataclasses.replace(self, pairs=pairs)


@dataclass(frozen=True)
class MazeProtocol(EpisodicProtocol):
    """Long-horizon goal reaching in Maze-v0 (3x3 rooms, layout_seed 0, 128 px).

    Episode i starts from `seed + i`: start and goal uniform among free positions until the goal
    is at least `min_goal_steps` steps of shortest path away. Success within `budget` steps. The
    planner is cheaper than Two-Room's (a decision every 5 steps over 300 steps, 50 episodes): the
    same CEM + MPC for the flat baseline and between memory subgoals.
    """

    name: str = "maze-goal"
    version: str = "2"  # 2: lock-step batches of `chunk`
    env_id: str = "jepaworld/Maze-v0"
    layout_seed: int = 0
    episodes: int = 50
    seed: int = 1_000_000
    chunk: int = 10
    min_goal_steps: float = 100.0
    budget: int = 300
    success_radius: float = 4.5
    planner: PlannerSettings = field(
        default_factory=lambda: PlannerSettings(samples=128, elites=16, iterations=10, horizon=5)
    )
    graph: GraphSettings = field(default_factory=GraphSettings)
    guide: GuidedConfig = field(default_factory=GuidedConfig)

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of gymnasium.make for this protocol's environment."""
        return {"success_radius": self.success_radius, "layout_seed": self.layout_seed}


TRAJECTORY_SUCCESS: dict[str, dict[str, Any]] = {
    # (cos, sin, angular velocity): angle and speed, L2 within 0.5. One image shows no speed, so
    # the goal is two frames a model step apart (version 3; version 2 gave one image). A swinging
    # pendulum passes through such a goal, so the planner's cost takes the nearest step of the
    # horizon (version 4): with the true dynamics (benchmarks/pendulum_oracle.py) the end-of-horizon
    # cost succeeded in 0.34-0.36 of the 50 episodes, as random actions (0.34), the nearest 1.00.
    # Nor does one observed frame show the speed the predictor needs: it sees three (version 5;
    # one checkpoint planned 0.82 from three, 0.36 from one, README)
    "Pendulum-v1": {
        "state_dims": 3,
        "tolerance": 0.5,
        "goal_frames": 2,
        "version": "5",
        "planner": PlannerSettings(horizon=5, goal_at="any", history=3),
    },
    # (x, y) of the ball; 0.45 is gymnasium-robotics' own radius. 25 random steps move the ball a
    # median 0.36 (300 collected episodes): under version 2 (goal 25 steps ahead) 30 of the 50
    # starts were already within the radius, and random actions succeeded in 0.80. Version 3: the
    # goal 100 steps ahead (a median 1.37 from the start over its 50 episodes), 200 steps to reach
    # it. Version 4: frames from straight above with the env's own goal marker hidden
    # (envs/gym_adapter.py `maze_view`), where its default camera hid much of the ball
    "PointMaze_UMaze-v3": {
        "state_dims": 2,
        "tolerance": 0.45,
        "goal_steps": 100,
        "budget": 200,
        "version": "4",
    },
    # DINO-WM's criterion on (agent xy, block xy, block angle); goals from the scripted pusher,
    # as stable-worldmodel's come from its expert dataset
    "jepaworld/PushT-v0": {
        "name": "pusht-goal",
        "version": "1",
        "state_dims": 4,
        "tolerance": 20.0,
        "angle_dim": 4,
        "angle_tolerance": math.pi / 9,
        "policy": "scripted",
    },
}
"""Environments with a trajectory-goal success criterion: the TrajectoryProtocol fields they set."""


def require_goal_image(env_id: str, goal_frames: int) -> None:
    """Memory-guided planning takes one goal image: a named error for a goal clip."""
    require(
        goal_frames == 1,
        "memory",
        f"{env_id}'s protocol plans toward goal clips of {goal_frames} frames; memory-guided "
        "planning takes one goal image",
    )


@dataclass(frozen=True)
class TrajectoryProtocol(EpisodicProtocol):
    """Reach the state `goal_steps` ahead on a held-out exploration trajectory (the LeWM /
    stable-worldmodel protocol), for any environment with a known success criterion.

    Episode i resets the environment with `seed + i`; the goal is the frame after `goal_steps`
    steps of the collection policy (persistent random actions, its own RNG [seed + i, 1]) from that
    same start. Success: the first `state_dims` entries of the env's own observation within
    `tolerance` (L2) of the goal's (and the `angle_dim` entry within `angle_tolerance`, when
    set), within `budget` steps. PushT's protocol is this one under the name pusht-goal.
    With `goal_frames` G > 1 the goal is a clip: the trajectory's frames at goal_steps - (G-1) *
    frame_stride .. goal_steps, one model step apart, which the planner's last G predicted
    embeddings must match (a goal that shows velocity).
    """

    env_id: str
    state_dims: int
    tolerance: float
    angle_dim: int | None = None
    """Index of a state entry that is an angle and must also be within `angle_tolerance` (wrapped);
    None: no angle condition."""
    angle_tolerance: float = 0.0
    policy: str = "random"
    """The held-out trajectories' policy: 'random' (persistent random, `persistence`, `noise`) or
    'scripted' (the world's own collection policy with `noise`), as `jepaworld collect --policy`."""
    name: str = "trajectory-goal"
    # 2: lock-step batches of `chunk`; Pendulum-v1's 3: two-frame goal clips, its 4: goal_at any,
    # its 5: history 3; PointMaze_UMaze-v3's 3: the goal 100 steps ahead, a budget of 200, its
    # 4: frames from above
    version: str = "2"
    episodes: int = 50
    seed: int = 1_000_000
    chunk: int = 10
    goal_steps: int = 25
    budget: int = 50
    persistence: float = 0.9
    noise: float = 0.1
    goal_frames: int = 1
    """G: frames of the goal, one model step (`planner.frame_stride` env steps) apart, ending at
    `goal_steps`; 1: a goal image."""
    planner: PlannerSettings = field(default_factory=lambda: PlannerSettings(horizon=5))
    graph: GraphSettings = field(default_factory=GraphSettings)
    """How remembered states become a graph, with `jepaworld plan --memory` (maze-goal's
    defaults; unused without a memory)."""
    guide: GuidedConfig = field(default_factory=GuidedConfig)
    """How the memory's path guides MPC, with `jepaworld plan --memory` (unused without one)."""

    def __post_init__(self) -> None:
        require(self.goal_steps >= 1, "goal_steps", f"must be >= 1, got {self.goal_steps}")
        h, span = self.planner.horizon, (self.goal_frames - 1) * self.planner.frame_stride
        require(
            1 <= self.goal_frames <= h,
            "goal_frames",
            f"must be in [1, planner horizon {h}], got {self.goal_frames}",
        )
        require(
            span < self.goal_steps,
            "goal_frames",
            f"{self.goal_frames} frames span {span} env steps, must be < goal_steps "
            f"{self.goal_steps}",
        )

    @classmethod
    def for_env(cls, env_id: str) -> TrajectoryProtocol:
        if env_id not in TRAJECTORY_SUCCESS:
            raise ValueError(
                f"env: no success criterion for {env_id!r}; known: {', '.join(TRAJECTORY_SUCCESS)}"
            )
        return cls(env_id=env_id, **TRAJECTORY_SUCCESS[env_id])
