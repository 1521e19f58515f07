"""Pixel environments following the Gymnasium API; importing this package registers them.

Registration is guarded so that importing twice (or reloading) does not raise.
"""

import gymnasium

from jepaworld.envs.two_room import TwoRoomConfig, TwoRoomEnv

TWO_ROOM_ID = "jepaworld/TwoRoom-v0"

if TWO_ROOM_ID not in gymnasium.registry:
    gymnasium.register(
        id=TWO_ROOM_ID,
        entry_point="jepaworld.envs.two_room:TwoRoomEnv",
        max_episode_steps=None,  # the env truncates itself at TwoRoomConfig.max_episode_steps
    )

__all__ = ["TWO_ROOM_ID", "TwoRoomConfig", "TwoRoomEnv"]
