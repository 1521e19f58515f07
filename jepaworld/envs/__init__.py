"""Pixel environments following the Gymnasium API; importing this package registers them.

Registration is guarded so that importing twice (or reloading) does not raise.
"""

from collections.abc import Callable, Mapping
from types import MappingProxyType

import gymnasium
from numpy.typing import ArrayLike, NDArray

from jepaworld.envs.maze import MazeConfig, MazeEnv
from jepaworld.envs.pusht import turn_state as turn_pusht_state
from jepaworld.envs.two_room import TwoRoomConfig, TwoRoomEnv

TWO_ROOM_ID = "jepaworld/TwoRoom-v0"
MAZE_ID = "jepaworld/Maze-v0"
PUSHT_ID = "jepaworld/PushT-v0"

StateTurn = Callable[[ArrayLike, ArrayLike], NDArray]
"""(states (..., S), a (2, 2) signed permutation m of (x, y)) -> the states of the world turned by m
(`jepaworld.data.augment.element_matrix`), as float64."""

DIHEDRAL_ENVS: Mapping[str, StateTurn] = MappingProxyType({PUSHT_ID: turn_pusht_state})
"""Worlds whose physics looks the same turned by a multiple of 90 degrees or mirrored, and whose
2-D actions are displacements in the frame's axes (x along the columns, y down the rows), each with
the function that turns its state vectors: `jepaworld train --augment dihedral` accepts their
datasets, and turns the state vectors a model reads as proprioception with the frames. PushT's
physics qualifies: no gravity, a square arena (its walls half a canvas px off centre), a pusher and
a T symmetric about an axis. Its frames do not quite: gym-pusht draws the goal T at a fixed pose on
every frame, and 6 of the 7 non-identity turns turn that outline into a pose no real frame shows."""

if TWO_ROOM_ID not in gymnasium.registry:
    gymnasium.register(
        id=TWO_ROOM_ID,
        entry_point="jepaworld.envs.two_room:TwoRoomEnv",
        max_episode_steps=None,  # the env truncates itself at TwoRoomConfig.max_episode_steps
    )

if MAZE_ID not in gymnasium.registry:
    gymnasium.register(
        id=MAZE_ID,
        entry_point="jepaworld.envs.maze:MazeEnv",
        max_episode_steps=None,  # the env truncates itself at MazeConfig.max_episode_steps
    )

if PUSHT_ID not in gymnasium.registry:  # needs the [pusht] extra, imported when made
    gymnasium.register(
        id=PUSHT_ID,
        entry_point="jepaworld.envs.pusht:PushTEnv",
        max_episode_steps=None,  # the env truncates itself at PushTConfig.max_episode_steps
    )

__all__ = [
    "DIHEDRAL_ENVS",
    "MAZE_ID",
    "PUSHT_ID",
    "TWO_ROOM_ID",
    "MazeConfig",
    "MazeEnv",
    "StateTurn",
    "TwoRoomConfig",
    "TwoRoomEnv",
]
