"""Tiny end to end on the maze: collect -> train -> memory build -> plan with memory and baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jepaworld.bench.evaluate import PlanConfig
from jepaworld.bench.maze_eval import evaluate_maze
from jepaworld.bench.plan_eval import checkpoint_sha256
from jepaworld.bench.protocols import MazeProtocol, PlannerSettings
from jepaworld.cli import main
from jepaworld.data.collect import CollectConfig, collect
from jepaworld.memory.commands import MemoryBuildConfig, build_memory
from jepaworld.memory.guided import GraphSettings
from jepaworld.memory.store import UnknownModelError
from jepaworld.train import latest_checkpoint, train
from tests.conftest import assert_guided_results, tiny_model, tiny_train

TINY = MazeProtocol(
    episodes=2,
    budget=15,
    planner=PlannerSettings(samples=16, elites=4, iterations=2, horizon=3),
    graph=GraphSettings(verify_samples=8, verify_iterations=2),
)


@pytest.fixture(scope="module")
def maze_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("maze")
    collect(
        CollectConfig(out=root / "data", env="jepaworld/Maze-v0", episodes=3, episode_length=30)
    )
    train(tiny_train(root / "data", root / "run", steps=2, model=tiny_model(image_size=128)))
    return root / "data", root / "run"


def test_plan_with_memory_reports_memory_flat_and_random_on_the_same_episodes(
    maze_run: tuple[Path, Path], tmp_path: Path
) -> None:
    data, run = maze_run
    db = tmp_path / "memory.db"
    build_memory(MemoryBuildConfig(run=run, data=data, db=db, every=5))
    out = tmp_path / "eval"
    r = evaluate_maze(
        PlanConfig(run, out, env="jepaworld/Maze-v0", memory=db, media=1, episodes=2), TINY
    )
    assert json.loads((out / "results.json").read_text())["success_rate"] == r["success_rate"]
    assert r["protocol"]["name"] == "maze-goal" and r["episodes"] == 2
    assert r["checkpoint_sha256"] == checkpoint_sha256(latest_checkpoint(run))
    assert_guided_results(r, memory_episodes=3, entries_per_episode=6)  # steps 0, 5, ..., 25
    assert all(e["shortest_path_steps"] >= 100 for e in r["per_episode"])
    assert (out / r["media"][0]).is_file()


def test_a_memory_of_another_checkpoint_is_refused(
    maze_run: tuple[Path, Path], tiny_data: Path, tiny_run: Path, tmp_path: Path
) -> None:
    data, run = maze_run
    db = tmp_path / "other.db"
    build_memory(MemoryBuildConfig(run=tiny_run, data=tiny_data, db=db))
    with pytest.raises(UnknownModelError, match="re-embed"):
        evaluate_maze(PlanConfig(run, tmp_path / "e", env="jepaworld/Maze-v0", memory=db), TINY)


def test_the_maze_needs_a_memory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["plan", "--run", "r", "--out", "o", "--env", "jepaworld/Maze-v0"])
    assert "--memory: is required for jepaworld/Maze-v0" in capsys.readouterr().err


def test_a_model_that_reads_proprioception_is_refused_before_the_memory_is_read(
    maze_run: tuple[Path, Path], tmp_path: Path
) -> None:
    data, _ = maze_run
    run = tmp_path / "prun"
    model = tiny_model(image_size=128, proprio=(0, 1))
    train(tiny_train(data, run, steps=1, checkpoint_every=1, model=model))
    cfg = PlanConfig(run, tmp_path / "e", env="jepaworld/Maze-v0", memory=tmp_path / "none.db")
    with pytest.raises(ValueError, match="prun: its model reads proprioception.*memory"):
        evaluate_maze(cfg, TINY)
    assert not (tmp_path / "e").exists()
