from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from jepaworld.bench import plan_eval
from jepaworld.bench.evaluate import PlanConfig, check_seeds_disjoint, evaluate
from jepaworld.bench.media import filmstrip
from jepaworld.bench.protocols import EpisodicProtocol, TwoRoomProtocol
from jepaworld.envs import two_room
from jepaworld.models.world_model import CheckpointError, WorldModel


def test_protocol_episodes_meet_the_goal_distance() -> None:
    protocol = TwoRoomProtocol().with_episodes(20)
    specs = plan_eval.sample_specs(protocol, two_room.TwoRoomConfig())
    assert [s.seed for s in specs] == list(protocol.seeds())
    assert all(s.path_steps >= 25 for s in specs)
    # reproducible: the same protocol gives the same episodes
    assert specs == plan_eval.sample_specs(protocol, two_room.TwoRoomConfig())


def test_baselines_behave_as_expected_on_the_protocol() -> None:
    protocol = TwoRoomProtocol().with_episodes(10)
    cfg = two_room.TwoRoomConfig()
    specs = plan_eval.sample_specs(protocol, cfg)
    straight = plan_eval.run_policy(protocol, specs, plan_eval.straight_line_policy(cfg))
    # straight-line succeeds exactly when the straight segment is not blocked by the wall
    for spec, out in zip(specs, straight, strict=True):
        same_room = (spec.start[0] < cfg.wall_x) == (spec.goal[0] < cfg.wall_x)
        if same_room:
            assert out["success"], out
    assert all(o["steps"] <= protocol.budget for o in straight)


def test_evaluation_seeds_never_overlap_training_seeds(tmp_path: Path) -> None:
    protocol = TwoRoomProtocol().with_episodes(5)
    check_seeds_disjoint(protocol, {"data_seeds": {"first": 0, "count": 300}}, tmp_path)
    with pytest.raises(ValueError, match="overlap the evaluation seeds"):
        check_seeds_disjoint(protocol, {"data_seeds": {"first": 999_990, "count": 20}}, tmp_path)


def test_plan_writes_results_with_baselines_and_media(tiny_run: Path, tmp_path: Path) -> None:
    res = evaluate(
        PlanConfig(run=tiny_run, out=tmp_path / "eval", episodes=2, media=1, latency_repeats=1)
    )
    saved = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert saved["success_rate"] == res["success_rate"] and saved["episodes"] == 2
    assert saved["protocol"]["name"] == "tworoom-goal" and saved["protocol"]["episodes"] == 2
    assert set(saved["baselines"]) == {"random", "straight_line"}
    assert len(saved["plan_latency_seconds"]) == 1 and saved["plan_seconds_mean"] > 0
    assert saved["checkpoint_sha256"] == plan_eval.checkpoint_sha256(Path(saved["checkpoint"]))
    assert {o["seed"] for o in saved["per_episode"]} == {1_000_000, 1_000_001}
    png = tmp_path / "eval" / saved["media"][0]
    assert png.suffix == ".png" and png.stat().st_size > 0


def test_plan_refuses_a_run_trained_on_evaluation_seeds(tiny_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    record = json.loads((run / "config.json").read_text())
    record["data_seeds"] = {"first": 1_000_000, "count": 10}
    (run / "config.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="overlap"):
        evaluate(PlanConfig(run=run, out=tmp_path / "eval", episodes=2))


def test_filmstrip_layout() -> None:
    frames = [np.full((4, 4, 3), i, dtype=np.uint8) for i in range(11)]
    strip = filmstrip(frames, np.zeros((4, 4, 3), np.uint8), every=5, scale=1)
    assert strip.shape == (4, 4 * 4 + 3 * 2, 3)  # frames 0, 5, 10 and the goal


def test_each_planner_drives_the_same_evaluation_and_is_recorded(
    tiny_run: Path, tmp_path: Path
) -> None:
    for name in plan_eval.PLANNERS:
        cfg = PlanConfig(
            run=tiny_run, out=tmp_path / name, episodes=1, media=0, latency_repeats=0, planner=name
        )
        res = evaluate(cfg, TwoRoomProtocol(budget=10))
        assert res["planner"] == name and res["per_episode"][0]["steps"] >= 1
    with pytest.raises(ValueError, match="planner: must be one of cem, mppi, gradient"):
        PlanConfig(run=tiny_run, out=tmp_path, planner="random")


def test_plan_history_is_recorded_and_checked_against_the_model(
    tiny_run: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = PlanConfig(run=tiny_run, out=tmp_path / "h", episodes=1, media=0, latency_repeats=0)
    small = TwoRoomProtocol(budget=10)
    assert evaluate(cfg, small)["protocol"]["planner"]["history"] == 1  # the protocol's
    seen: list[int] = []  # frames each rollout was given, 0 when only the last one is used
    rollout = WorldModel.rollout

    def spy(
        self: WorldModel,
        z_hist: torch.Tensor,
        actions: torch.Tensor,
        past_actions: torch.Tensor | None = None,
        has_actions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        seen.append(0 if past_actions is None else z_hist.shape[1])
        return rollout(self, z_hist, actions, past_actions, has_actions)

    monkeypatch.setattr(WorldModel, "rollout", spy)
    res = evaluate(dataclasses.replace(cfg, history=2, latency_repeats=1), small)
    assert res["protocol"]["planner"]["history"] == 2 and res["per_episode"][0]["steps"] >= 1
    assert seen[0] == 0 and 2 in seen  # the first decision has no past; later ones see 2 frames
    assert "exceed the 3-frame clips" in caplog.text  # tiny_run trained on 3-frame clips
    max_len = json.loads((tiny_run / "config.json").read_text())["model"]["max_len"]
    with pytest.raises(CheckpointError, match="horizon 10 \\+ history"):
        evaluate(dataclasses.replace(cfg, history=max_len), small)
    with pytest.raises(ValueError, match="history: must be >= 0"):
        PlanConfig(run=tiny_run, out=tmp_path, history=-1)


def test_with_history_replaces_only_the_planners_history() -> None:
    base = TwoRoomProtocol()
    assert base.with_history(0) is base  # 0 keeps the protocol's
    three = base.with_history(3)
    assert three.planner.history == 3
    assert dataclasses.replace(three.planner, history=1) == base.planner
    with pytest.raises(ValueError, match="history: must be >= 0"):
        base.with_history(-1)

    @dataclasses.dataclass(frozen=True)
    class NoPlanner(EpisodicProtocol):
        episodes: int = 1
        seed: int = 0
        chunk: int = 1

    with pytest.raises(ValueError, match="history: NoPlanner has no planner"):
        NoPlanner().with_history(2)


def test_plan_goal_at_reaches_the_cost_and_is_recorded(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jepaworld.planning import mpc

    seen: list[str] = []
    init = mpc.LatentGoalCost.__init__

    def spy(self: mpc.LatentGoalCost, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        seen.append(self.goal_at)

    monkeypatch.setattr(mpc.LatentGoalCost, "__init__", spy)
    cfg = PlanConfig(run=tiny_run, out=tmp_path / "g", episodes=1, media=0, latency_repeats=0)
    small = TwoRoomProtocol(budget=5)
    assert evaluate(cfg, small)["protocol"]["planner"]["goal_at"] == "end"  # the protocol's
    assert seen and set(seen) == {"end"}
    seen.clear()
    res = evaluate(dataclasses.replace(cfg, goal_at="any"), small)
    assert res["protocol"]["planner"]["goal_at"] == "any" and set(seen) == {"any"}

    base = TwoRoomProtocol()
    assert base.with_goal_at(None) is base
    assert dataclasses.replace(base.with_goal_at("any").planner, goal_at="end") == base.planner
    with pytest.raises(ValueError, match="goal_at: must be end or any"):
        base.with_goal_at("nearest")


def test_plan_execute_replans_after_each_env_step_and_is_recorded(
    tiny_run: Path, tmp_path: Path
) -> None:
    cfg = PlanConfig(run=tiny_run, out=tmp_path / "e", episodes=1, media=0, latency_repeats=0)
    small = TwoRoomProtocol(budget=5)  # one held model step of frame_stride 5 env steps
    whole = evaluate(cfg, small)
    assert whole["protocol"]["planner"]["execute"] == 0 and whole["plan_calls"] == 1
    every = evaluate(dataclasses.replace(cfg, out=tmp_path / "e1", execute=1), small)
    assert every["protocol"]["planner"]["execute"] == 1
    assert every["plan_calls"] == 5 and every["per_episode"][0]["steps"] == 5
    base = TwoRoomProtocol()
    assert base.with_execute(0) is base
    assert dataclasses.replace(base.with_execute(2).planner, execute=0) == base.planner
    with pytest.raises(ValueError, match="execute: must be >= 0"):
        PlanConfig(run=tiny_run, out=tmp_path, execute=-1)
    with pytest.raises(ValueError, match="execute: must be at most 5 env steps"):
        base.with_execute(6)  # refused when the protocol is configured, before any planning
    with pytest.raises(ValueError, match="execute: needs history 1"):
        base.with_history(3).with_execute(1)


def test_a_proprio_model_plans_from_the_envs_state_and_the_goals(
    tiny_data: Path, tmp_path: Path
) -> None:
    """Two-Room's info gives the agent's position and the goal's: a model trained to read them
    plans with them, and one without them to read is refused by name."""
    from jepaworld.train import latest_checkpoint, train
    from tests.conftest import tiny_model, tiny_train

    train(tiny_train(tiny_data, tmp_path / "run", model=tiny_model(proprio=(0, 1))))
    cfg = PlanConfig(run=tmp_path / "run", out=tmp_path / "eval", episodes=2, latency_repeats=1)
    res = evaluate(cfg, TwoRoomProtocol(budget=10))
    assert len(res["per_episode"]) == 2 and len(res["plan_latency_seconds"]) == 1
    model = WorldModel.from_pretrained(latest_checkpoint(tmp_path / "run"))
    mpc = plan_eval.make_mpc(TwoRoomProtocol(), model, 2)
    frame = torch.zeros(1, 64, 64, 3, dtype=torch.uint8)
    near, far = (
        mpc.encode_goal(frame, torch.tensor([[10.0, 10.0]])),
        mpc.encode_goal(frame, torch.tensor([[50.0, 10.0]])),
    )
    assert torch.equal(near[:, :16], far[:, :16]) and not torch.equal(near[:, 16:], far[:, 16:])
    with pytest.raises(ValueError, match="reads proprioception"):
        mpc.encode_goal(frame)
