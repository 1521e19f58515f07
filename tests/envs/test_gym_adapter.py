"""Any Gymnasium environment as pixels: Pendulum-v1 through the adapter and `jepaworld collect`."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from jepaworld.cli import main
from jepaworld.data.collect import CollectConfig, collect
from jepaworld.data.episodes import EpisodeStore
from jepaworld.envs.gym_adapter import make_pixel_env, square_resize

pytest.importorskip("pygame", reason="Pendulum renders with pygame (gymnasium[classic-control])")


def test_pendulum_observes_square_frames_and_keeps_its_state_in_info() -> None:
    env = make_pixel_env("Pendulum-v1", 48)
    obs, info = env.reset(seed=0)
    assert (
        obs.shape == (48, 48, 3) and obs.dtype == np.uint8 and env.observation_space.contains(obs)
    )
    assert info["state"].shape == (3,)  # cos, sin, angular velocity
    obs2, _, _, _, info2 = env.step(np.array([2.0], dtype=np.float32))
    assert obs2.shape == (48, 48, 3) and not np.array_equal(info["state"], info2["state"])
    assert obs.std() > 0  # a drawn pendulum, not a blank frame
    env.close()


def test_collect_and_train_data_from_pendulum(tmp_path: Path) -> None:
    manifest = collect(
        CollectConfig(out=tmp_path / "d", env="Pendulum-v1", episodes=2, episode_length=12)
    )
    assert manifest["frame_shape"] == [64, 64, 3] and manifest["action_dim"] == 1
    assert manifest["action_low"] == [-2.0] and manifest["action_high"] == [2.0]
    store = EpisodeStore(tmp_path / "d")
    ep = store.episode(0)
    assert ep.frames.shape == (12, 64, 64, 3) and ep.actions.shape == (12, 1)
    assert ep.states.shape == (12, 3)


def test_square_resize_crops_the_centre() -> None:
    frame = np.zeros((40, 80, 3), dtype=np.uint8)
    frame[:, 20:60] = 255  # the centre square is white, the sides black
    assert (square_resize(frame, 10) == 255).all()


def test_unusable_environments_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="--env CartPole-v1: needs a Box action space"):
        make_pixel_env("CartPole-v1", 64)
    with pytest.raises(ValueError, match="--env Nope-v0: not a registered"):
        make_pixel_env("Nope-v0", 64)
    assert main(["collect", "--env", "CartPole-v1", "--out", str(tmp_path / "c")]) == 2
    assert "CartPole-v1: needs a Box action space" in capsys.readouterr().err
    assert not (tmp_path / "c" / "manifest.json").exists()


def test_an_environment_without_rgb_array_is_refused() -> None:
    class StateOnly(gym.Env):
        metadata = {"render_modes": []}
        observation_space = gym.spaces.Box(-1, 1, (2,))
        action_space = gym.spaces.Box(-1, 1, (1,))

        def __init__(self, render_mode: str | None = None) -> None:
            self.render_mode = render_mode

    gym.register("jepaworld-test/StateOnly-v0", entry_point=StateOnly)
    try:
        with pytest.raises(ValueError, match="StateOnly-v0: cannot render rgb_array"):
            make_pixel_env("jepaworld-test/StateOnly-v0", 64)
    finally:
        gym.registry.pop("jepaworld-test/StateOnly-v0")


def test_pointmaze_renders_headless_with_the_slow_effects_off() -> None:
    pytest.importorskip("gymnasium_robotics", reason="the [mujoco] extra")
    import mujoco

    env = make_pixel_env("PointMaze_UMaze-v3", 64)
    obs, info = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.std() > 0
    assert info["state"].shape == (8,)  # observation (4) + achieved goal (2) + desired goal (2)
    assert env.fast_mujoco and env.unwrapped.point_env.model.vis.quality.offsamples == 0
    scene = env.unwrapped.point_env.mujoco_renderer._get_viewer("rgb_array").scn
    assert scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] == 0
    assert scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] == 0
    obs2, *_ = env.step(np.ones(2, dtype=np.float32))
    assert obs2.shape == (64, 64, 3)
    env.close()


def test_pointmaze_leaves_no_model_file_in_the_temp_directory() -> None:
    pytest.importorskip("gymnasium_robotics", reason="the [mujoco] extra")
    env = make_pixel_env("PointMaze_UMaze-v3", 64)
    written = Path(env.unwrapped.tmp_xml_file_path)  # gymnasium-robotics' maze model file
    assert written.parent == Path(tempfile.gettempdir()) and not written.exists()
    obs, info = env.reset(seed=0)  # the model was loaded before the file went
    for _ in range(10):
        obs2, *_, info2 = env.step(np.ones(2, dtype=np.float32))
    assert obs.shape == obs2.shape == (64, 64, 3) and not np.array_equal(obs, obs2)
    assert not np.allclose(info["state"][:2], info2["state"][:2])  # the ball moved
    env.close()


def test_pointmaze_is_seen_from_above_with_the_ball_where_its_state_says(tmp_path: Path) -> None:
    pytest.importorskip("gymnasium_robotics", reason="the [mujoco] extra")
    env = make_pixel_env("PointMaze_UMaze-v3", 64)
    assert env.view == "top-down"
    inner = env.unwrapped
    assert inner.point_env.model.site_rgba[inner.target_site_id, 3] == 0  # its own goal hidden
    px = 64 / 3.5  # px per maze unit: the 3 x 3 inside and a quarter of a wall on each side
    for seed in range(4):  # the view survives reset
        obs, info = env.reset(seed=seed)
        rgb = obs.astype(int)
        ball = (rgb[..., 1] > rgb[..., 0] + 40) & (rgb[..., 1] > rgb[..., 2] + 40)  # green
        rows, cols = np.nonzero(ball)
        x, y = info["state"][:2]  # the ball's achieved_goal
        assert ball.sum() >= 20  # a disc, not a speck
        assert abs(cols.mean() - (32 + px * x)) < 3 and abs(rows.mean() - (32 - px * y)) < 3
    env.close()
    manifest = collect(
        CollectConfig(out=tmp_path / "d", env="PointMaze_UMaze-v3", episodes=1, episode_length=3)
    )
    assert manifest["env_config"] == {"view": "top-down"}  # the data says how it was drawn


def test_a_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gymnasium_robotics", None)  # as if not installed
    monkeypatch.setattr(
        gym, "registry", {k: v for k, v in gym.registry.items() if "Maze_" not in k}
    )
    with pytest.raises(
        ImportError, match=r"PointMaze_UMaze-v3: needs gymnasium_robotics.*\[mujoco\]"
    ):
        make_pixel_env("PointMaze_UMaze-v3", 64)


def test_jepaworld_worlds_keep_their_size_unless_one_is_given() -> None:
    native = make_pixel_env("jepaworld/Maze-v0", None)
    small = make_pixel_env("jepaworld/Maze-v0", 64)
    big, _ = native.reset(seed=3)
    little, _ = small.reset(seed=3)
    assert big.shape == (128, 128, 3) and little.shape == (64, 64, 3)
    assert small.observation_space.shape == (64, 64, 3)
    # the same scene, area-averaged: mean colour is kept
    assert abs(float(big.mean()) - float(little.mean())) < 1.0
    native.close()
    small.close()
