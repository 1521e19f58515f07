"""Planning on an environment nobody here wrote: Pendulum-v1 under protocol trajectory-goal."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from jepaworld.bench.evaluate import PlanConfig
from jepaworld.bench.image_goal import image_goal_protocol, plan_to_image
from jepaworld.bench.plan_eval import EpisodeSpec
from jepaworld.bench.protocols import PlannerSettings, TrajectoryProtocol
from jepaworld.bench.trajectory_eval import evaluate_trajectory, goal_env_factory, held_out_goal
from jepaworld.cli import main
from jepaworld.data.collect import CollectConfig, PersistentRandomPolicy, collect
from jepaworld.data.episodes import manifest_sha256
from jepaworld.envs.gym_adapter import make_pixel_env
from jepaworld.memory.commands import MemoryBuildConfig, build_memory
from jepaworld.memory.guided import GraphSettings
from jepaworld.train import check_view, train
from tests.conftest import assert_guided_results, tiny_model, tiny_train

pytest.importorskip("pygame", reason="Pendulum renders with pygame (the [classic] extra)")
TINY = TrajectoryProtocol.for_env("Pendulum-v1")


def test_replaying_the_held_out_actions_reaches_the_goal() -> None:
    protocol = TrajectoryProtocol.for_env("Pendulum-v1")
    assert protocol.goal_frames == 2 and protocol.version == "5"  # a goal that shows speed,
    assert protocol.planner.goal_at == "any"  # passed through on a swing, not waited at,
    assert protocol.planner.history == 3  # from frames that show it
    seed = 1_000_003
    start, goal = held_out_goal(protocol, seed, 32)
    env, obs, info = goal_env_factory(protocol, {seed: goal}, 32)(EpisodeSpec(seed, (), (), 25.0))
    assert np.allclose(info["state"], start) and not info["success"]
    assert info["goal"].shape == (32, 32, 3) and np.array_equal(info["goal"], goal[0][-1])
    assert info["goal_clip"].shape == (2, 32, 32, 3)
    policy = PersistentRandomPolicy(env.action_space, 0.9, 0.1, np.random.default_rng([seed, 1]))
    stride = protocol.planner.frame_stride
    for step in range(1, protocol.goal_steps + 1):
        obs, _, terminated, _, info = env.step(policy())
        if step == protocol.goal_steps - stride:  # the clip's first frame, a model step before
            assert np.array_equal(obs, goal[0][0]) and not np.array_equal(obs, goal[0][1])
    assert info["success"] and terminated and info["distance"] < 1e-5
    env.close()


def test_goal_clips_longer_than_the_horizon_or_the_trajectory_are_refused() -> None:
    with pytest.raises(ValueError, match="goal_frames: must be in"):
        dataclasses.replace(TINY, goal_frames=TINY.planner.horizon + 1, goal_steps=100)
    with pytest.raises(ValueError, match="goal_frames: 3 frames span 10 env steps"):
        dataclasses.replace(TINY, goal_frames=3, goal_steps=10)
    with pytest.raises(ValueError, match="goal_frames: must be in"):
        dataclasses.replace(TINY, goal_frames=0)
    with pytest.raises(ValueError, match="goal_steps: must be >= 1"):
        dataclasses.replace(TINY, goal_steps=0)


SMALL = TrajectoryProtocol(
    env_id="Pendulum-v1", state_dims=2, tolerance=0.2, budget=10, goal_frames=2,
    planner=PlannerSettings(samples=16, elites=4, iterations=2, horizon=2),
)  # fmt: skip


@pytest.fixture(scope="module")
def pendulum_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pendulum")
    collect(CollectConfig(out=root / "d", env="Pendulum-v1", episodes=3, episode_length=30))
    train(tiny_train(root / "d", root / "run", steps=2, model=tiny_model(action_dim=1)))
    return root / "d", root / "run"


def test_plan_on_pendulum_reports_the_planner_and_random_on_the_same_episodes(
    pendulum_run: tuple[Path, Path], tmp_path: Path
) -> None:
    cfg = PlanConfig(
        run=pendulum_run[1], out=tmp_path / "e", env="Pendulum-v1", episodes=2, media=1
    )
    r = evaluate_trajectory(cfg, SMALL)
    assert json.loads((tmp_path / "e" / "results.json").read_text())["episodes"] == 2
    assert r["protocol"]["name"] == "trajectory-goal" and r["protocol"]["env_id"] == "Pendulum-v1"
    assert r["protocol"]["goal_frames"] == 2  # planned toward two-frame goal clips
    seeds = [e["seed"] for e in r["per_episode"]]
    assert seeds == [1_000_000, 1_000_001]
    assert [e["seed"] for e in r["baselines"]["random"]["per_episode"]] == seeds
    assert all(e["steps"] <= 10 for e in r["per_episode"])
    assert all(len(e["final_state"]) == 3 for e in r["per_episode"])  # Pendulum's (cos, sin, w)


def test_plan_with_memory_leads_with_guided_mpc_and_keeps_flat_mpc_and_random_as_baselines(
    tmp_path: Path,
) -> None:
    pytest.importorskip("gymnasium_robotics", reason="the [mujoco] extra")
    env = "PointMaze_UMaze-v3"
    collect(CollectConfig(out=tmp_path / "d", env=env, episodes=3, episode_length=30))
    run = tmp_path / "run"
    train(tiny_train(tmp_path / "d", run, steps=2, model=tiny_model(action_dim=2)))
    db = tmp_path / "memory.db"
    build_memory(MemoryBuildConfig(run=run, data=tmp_path / "d", db=db, every=5))
    small = TrajectoryProtocol(
        env_id=env, state_dims=2, tolerance=0.45, budget=10,
        planner=PlannerSettings(samples=16, elites=4, iterations=2, horizon=2),
        graph=GraphSettings(verify_samples=8, verify_iterations=2),
    )  # fmt: skip
    cfg = PlanConfig(run, tmp_path / "m", env=env, episodes=2, media=1, memory=db)
    r = evaluate_trajectory(cfg, small)
    assert json.loads((tmp_path / "m" / "results.json").read_text())["memory"] == r["memory"]
    assert r["controller"] == "memory_guided"
    assert_guided_results(r, memory_episodes=3, entries_per_episode=6)  # steps 0, 5, ..., 25
    assert r["protocol"]["graph"]["verify_samples"] == 8  # the graph's settings are recorded
    # the same episodes without memory give flat MPC's result again: the baseline is flat MPC
    flat = evaluate_trajectory(dataclasses.replace(cfg, memory=None, out=tmp_path / "f"), small)
    assert flat["per_episode"] == r["baselines"]["flat_mpc"]["per_episode"]
    assert flat["controller"] == "flat_mpc" and "memory" not in flat
    assert set(flat["baselines"]) == {"random"}

    clips = dataclasses.replace(small, goal_frames=2)
    with pytest.raises(ValueError, match=f"memory: {env}'s protocol plans toward goal clips"):
        evaluate_trajectory(dataclasses.replace(cfg, out=tmp_path / "c"), clips)
    assert not (tmp_path / "c").exists()


def test_a_run_whose_frames_came_from_another_camera_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "d"
    data.mkdir()
    (data / "manifest.json").write_text(json.dumps({"env_config": {}}))  # the old 45-degree view
    source = {"env_id": "PointMaze_UMaze-v3", "path": str(data), "manifest_sha256": ""}
    source = {**source, "manifest_sha256": manifest_sha256(data)}  # as the run recorded it
    record = {"data_sources": [source]}
    refused = r"run: trained on .*/d, whose .* view None, while the environment now .* 'top-down'"
    with pytest.raises(ValueError, match=refused):
        check_view(record, "PointMaze_UMaze-v3", "top-down", Path("run"))
    check_view(record, "PointMaze_UMaze-v3", None, Path("run"))  # the same camera: accepted
    check_view(record, "Pendulum-v1", "top-down", Path("run"))  # not this env's data
    # collected again at the same path: not the manifest the run was trained on, so not judged
    (data / "manifest.json").write_text(json.dumps({"env_config": {"view": "top-down"}}))
    check_view(record, "PointMaze_UMaze-v3", "top-down", Path("run"))
    assert "has changed since training" in caplog.text
    moved = {"data_sources": [{**source, "path": str(tmp_path / "gone")}]}
    check_view(moved, "PointMaze_UMaze-v3", "top-down", Path("run"))  # unreadable: a warning
    assert "cannot read" in caplog.text and "gone" in caplog.text


def test_memory_is_refused_where_no_protocol_uses_it(capsys: pytest.CaptureFixture[str]) -> None:
    for extra in (
        ["--env", "jepaworld/TwoRoom-v0"],
        ["--env", "PointMaze_UMaze-v3", "--goal", "g"],
    ):
        with pytest.raises(SystemExit):
            main(["plan", "--run", "r", "--out", "o", "--memory", "m.db", *extra])
        assert "--memory: is used by jepaworld/Maze-v0's protocol" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a goal clip: refused before any model is loaded
        main(["plan", "--run", "r", "--out", "o", "--memory", "m.db", "--env", "Pendulum-v1"])
    assert "--memory: Pendulum-v1's protocol plans toward goal clips" in capsys.readouterr().err


def test_plan_with_memory_on_a_trajectory_goal_env_goes_to_the_trajectory_evaluator(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import jepaworld.bench.maze_eval as maze_eval
    import jepaworld.bench.trajectory_eval as trajectory_eval

    seen: list[tuple[str, PlanConfig]] = []

    def fake(name: str):
        def evaluate(cfg: PlanConfig) -> dict:
            seen.append((name, cfg))
            return {"success_rate": 1.0, "episodes": 1, "baselines": {}}

        return evaluate

    monkeypatch.setattr(trajectory_eval, "evaluate_trajectory", fake("trajectory"))
    monkeypatch.setattr(maze_eval, "evaluate_maze", fake("maze"))
    for env, name in (("PointMaze_UMaze-v3", "trajectory"), ("jepaworld/Maze-v0", "maze")):
        args = ["plan", "--run", "r", "--out", str(tmp_path), "--memory", "m.db", "--env", env]
        assert main(args) == 0
        assert seen[-1][0] == name and seen[-1][1].memory == Path("m.db")


def test_an_env_without_a_success_criterion_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["plan", "--run", "r", "--out", "o", "--env", "MountainCarContinuous-v0"])
    assert "no planning protocol for 'MountainCarContinuous-v0'" in capsys.readouterr().err


def test_plan_toward_a_png_goal_in_any_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    collect(CollectConfig(out=tmp_path / "d", env="Pendulum-v1", episodes=2, episode_length=20))
    train(tiny_train(tmp_path / "d", tmp_path / "run", steps=2, model=tiny_model(action_dim=1)))
    env = make_pixel_env("Pendulum-v1", 96)  # a larger image than the model's: resized down
    frame, _ = env.reset(seed=5)
    env.close()
    png = tmp_path / "goal.png"
    Image.fromarray(frame).save(png)
    small = dataclasses.replace(
        image_goal_protocol("Pendulum-v1"),
        budget=6,
        planner=PlannerSettings(samples=8, elites=2, iterations=2, horizon=2),
    )
    cfg = PlanConfig(run=tmp_path / "run", out=tmp_path / "g", env="Pendulum-v1", goal=png)
    r = plan_to_image(cfg, small)
    assert r["steps"] == 6 and r["protocol"]["name"] == "image-goal"
    assert r["latent_distance_start"] > 0 and len(r["final_state"]) == 3
    assert json.loads((tmp_path / "g" / "results.json").read_text())["goal_sha256"]
    assert (tmp_path / "g" / r["media"][0]).exists()

    (tmp_path / "bad.png").write_bytes(b"not an image")
    args = ["plan", "--run", str(tmp_path / "run"), "--env", "Pendulum-v1"]
    assert main([*args, "--out", str(tmp_path / "b"), "--goal", str(tmp_path / "bad.png")]) == 2
    assert f"--goal {tmp_path / 'bad.png'}: not a readable image" in capsys.readouterr().err
    assert not (tmp_path / "b" / "results.json").exists()


def test_the_lockstep_runner_hands_goal_clips_to_the_controller() -> None:
    from jepaworld.bench.plan_eval import _Live, run_lockstep

    class Still:
        """An env that stays put: every step returns the same frame and info."""

        def __init__(self, info: dict) -> None:
            self.info = info

        def step(self, action: np.ndarray) -> tuple:
            return np.zeros((8, 8, 3), np.uint8), 0.0, False, False, self.info

    class Recorder:
        goals: tuple[int, ...] = ()
        states: list[torch.Tensor | None] = []

        def start(
            self,
            frames: torch.Tensor,
            goals: torch.Tensor,
            proprio: torch.Tensor | None = None,
            goal_proprio: torch.Tensor | None = None,
        ) -> None:
            self.goals, self.states = tuple(goals.shape), [proprio, goal_proprio]

        def plan(
            self,
            frames: torch.Tensor,
            generator: torch.Generator,
            keep: object,
            proprio: torch.Tensor | None = None,
        ) -> torch.Tensor:
            self.states.append(proprio)
            return torch.zeros(len(frames), 1, 1)  # (E, n, A)

    frame = np.zeros((8, 8, 3), np.uint8)
    for info, shape in (
        ({"goal": frame, "success": False}, (2, 8, 8, 3)),
        ({"goal": frame, "goal_clip": np.stack([frame] * 3), "success": False}, (2, 3, 8, 8, 3)),
    ):
        live = [_Live(EpisodeSpec(s, (), (), 1.0), Still(info), frame, info, []) for s in (0, 1)]
        recorder = Recorder()
        run_lockstep(live, recorder, budget=1, device=torch.device("cpu"))
        assert recorder.goals == shape and all(ep.steps == 1 for ep in live)
        assert recorder.states == [None, None, None]  # no state in the env's info
    # where the env gives its state and the goal's, they go with the frames (proprioception)
    info = {"goal": frame, "success": False, "state": [1.0, 2.0], "goal_state": [3.0, 4.0]}
    live = [_Live(EpisodeSpec(s, (), (), 1.0), Still(info), frame, info, []) for s in (0, 1)]
    recorder = Recorder()
    run_lockstep(live, recorder, budget=1, device=torch.device("cpu"))
    now, goal, planned = recorder.states
    assert now is not None and goal is not None and planned is not None
    assert (
        now.tolist() == planned.tolist() == [[1.0, 2.0]] * 2 and goal.tolist() == [[3.0, 4.0]] * 2
    )
