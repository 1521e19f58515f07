"""Pixel environments following the Gymnasium API; importing this package registers them.

Registration is guarded so that importing twice (or reloading) does not raise.
"""

import gymnasium

from jepaworld.envs.maze import MazeConfig, MazeEnv
from jepaworld.envs.two_room import TwoRoomConfig, TwoRoomEnv

TWO_ROOM_ID = "jepaworld/TwoRoom-v0"
MAZE_ID = "jepaworld/Maze-v0"
PUSHT_ID = "jepaworld/PushT-v0"

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
    "MAZE_ID",
    "PUSHT_ID",
    "TWO_ROOM_ID",
    "MazeConfig",
    "MazeEnv",
    "TwoRoomConfig",
    "TwoRoomEnv",
]
