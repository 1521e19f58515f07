"""The command line: invalid values name the argument; a tiny demo runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jepaworld.cli import main
from tests.conftest import tiny_model_args


def test_invalid_values_name_the_argument(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["train", "--data", "d", "--out", "o", "--steps", "0"])
    assert e.value.code == 2
    assert "argument --steps: must be >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["collect", "--out", "o", "--episodes", "many"])
    assert "--episodes" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--data", "d", "--out", "o", "--model.encoder", "mlp"])
    assert "--model.encoder" in capsys.readouterr().err


def test_missing_inputs_are_named_before_work_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]) == 2
    assert "nope: dataset directory does not exist" in capsys.readouterr().err
    (tmp_path / "empty_run").mkdir()
    (tmp_path / "empty_run" / "config.json").write_text(
        json.dumps(
            {
                "train": {},
                "data_env_id": "jepaworld/TwoRoom-v0",
                "data_seeds": {"first": 0, "count": 1},
            }
        )
    )
    assert main(["plan", "--run", str(tmp_path / "empty_run"), "--out", str(tmp_path / "e")]) == 2
    assert "no checkpoint found" in capsys.readouterr().err
    assert (
        main(["collect", "--env", "NoSuchEnv-v9", "--out", str(tmp_path / "d"), "--episodes", "1"])
        == 2
    )
    assert "--env NoSuchEnv-v9" in capsys.readouterr().err


def test_collect_refuses_to_overwrite_a_dataset(
    tiny_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (tiny_data / "manifest.json").read_text()
    assert main(["collect", "--out", str(tiny_data), "--episodes", "1"]) == 2
    assert "already holds a dataset" in capsys.readouterr().err
    assert (tiny_data / "manifest.json").read_text() == before


def test_tiny_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    code = main(
        [
            "demo",
            "--out",
            str(out),
            "--episodes",
            "4",
            "--steps",
            "4",
            "--batch-size",
            "4",
            "--eval-episodes",
            "2",
            "--workers",
            "0",
            *tiny_model_args(),
        ]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "success_rate",
        "episodes",
        "protocol",
        "checkpoint_sha256",
        "wall_seconds",
        "stage_seconds",
        "plan_seconds_mean",
        "baselines",
    ):
        assert key in summary
    assert set(summary["stage_seconds"]) == {"collect", "train", "plan"}
    assert set(summary["baselines"]) == {"random", "straight_line"}
    assert summary["episodes"] == 2 and 0.0 <= summary["success_rate"] <= 1.0
    results = json.loads((out / "eval" / "results.json").read_text())
    assert results["protocol"]["name"] == "tworoom-goal" and results["protocol"]["version"] == "3"
    assert len(results["per_episode"]) == 2 and len(results["checkpoint_sha256"]) == 64
    assert all((out / "eval" / m).is_file() for m in results["media"])
    assert "Two-Room goal reaching" in capsys.readouterr().out


def test_nested_option_errors_name_the_nested_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--data", "d", "--out", "o", "--model.max-len", "1"])
    assert "argument --model.max-len: must be >= 2" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--data", "d", "--out", "o", "--model.pred-heads", "0"])
    assert "argument --model.pred-heads" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--out", "o", "--seed", "999990"])
    assert "argument --seed: collection seeds" in capsys.readouterr().err


def test_physics_make_writes_videos_and_pairs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from jepaworld.data.episodes import EpisodeStore
    from jepaworld.data.voe import load_pairs

    out = tmp_path / "phys"
    assert main(["physics", "make", "--out", str(out), "--pairs", "1", "--videos", "3"]) == 0
    assert len(EpisodeStore(out / "train")) == 3
    pairs = load_pairs(out / "pairs")
    assert len(pairs) == 5 and {p.prop for p in pairs} == {
        "permanence",
        "continuity",
        "solidity",
        "gravity",
        "constancy",
    }
    assert "wrote 3 training videos" in capsys.readouterr().out
    assert main(["physics", "make", "--out", str(out), "--pairs", "1", "--videos", "3"]) == 2
    assert "manifest.json" in capsys.readouterr().err  # nothing already written is overwritten
    with pytest.raises(SystemExit):
        main(["physics", "make", "--out", str(out), "--pair-seed", "5"])
    assert "argument --pair-seed" in capsys.readouterr().err
