"""Evaluation protocols: frozen, versioned dataclasses. A result always names its protocol.

Changing any field's meaning or default bumps `version`; results with the same name and version
are comparable.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


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


@dataclass(frozen=True)
class TwoRoomProtocol:
    """Goal reaching in Two-Room (facts: PLDM; stable-worldmodel).

    Episode i starts from `seed + i`: start and goal are drawn uniformly among free positions until
    the goal is at least `min_goal_steps` steps of shortest path away (path length / speed: steps at
    axis speed; a diagonal action moves up to sqrt(2) times farther). Success = the agent's centre
    within `success_radius` px of the goal within `budget` environment steps. Seeds start far above
    any collection seed (`jepaworld collect` uses seed..seed+episodes, default from 0).
    """

    name: str = "tworoom-goal"
    version: str = "2"  # 2: horizon 10 (was 5), held actions, every planner setting frozen here
    env_id: str = "jepaworld/TwoRoom-v0"
    episodes: int = 50
    seed: int = 1_000_000
    min_goal_steps: float = 25.0
    budget: int = 50
    success_radius: float = 4.5
    planner: PlannerSettings = field(default_factory=PlannerSettings)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def seeds(self) -> range:
        return range(self.seed, self.seed + self.episodes)

    def with_episodes(self, episodes: int) -> TwoRoomProtocol:
        """Same protocol on fewer/more episodes (recorded in the result's protocol block)."""
        if episodes < 1:
            raise ValueError(f"episodes: must be >= 1, got {episodes}")
        return dataclasses.replace(self, episodes=episodes)
