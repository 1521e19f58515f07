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


def test_tiny_demo_trains_one_model_on_every_domain_and_benches_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from jepaworld.bench.protocols import VoEProtocol
    from jepaworld.bench.report import content_digest
    from jepaworld.physics import evaluate as physics_evaluate

    tiny_voe = VoEProtocol(context=4, pixel_videos=4, pixel_steps=3, bootstrap_resamples=50)
    monkeypatch.setattr(physics_evaluate, "VoEProtocol", lambda: tiny_voe)
    out = tmp_path / "demo"
    args = [
        "demo", "--out", str(out), "--episodes", "4", "--maze-episodes", "3", "--videos", "4",
        "--steps", "6", "--batch-size", "4", "--clip-frames", "3", "--eval-episodes", "1",
        "--workers", "0", "--performance", "false", *tiny_model_args(),
    ]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert json.loads((out / "run" / "config.json").read_text())["train"]["clip_frames"] == 3
    assert summary["domains"] == ["two_room", "maze", "physics"]
    assert set(summary["stage_seconds"]) == {
        "collect_two_room", "collect_maze", "collect_physics", "train", "bench",
    }  # fmt: skip
    report = json.loads((out / "bench" / "report.json").read_text())
    assert report["digest"]["value"] == content_digest(report)
    assert report["checkpoint"]["sha256"] == summary["checkpoint_sha256"]
    # one checkpoint, every suite of the demo's domains evaluated; PushT is not in the demo
    assert report["suites"].pop("pusht")["status"] == "not_trained"
    for name, suite in report["suites"].items():
        assert suite["status"] == "ok", (name, suite)
        assert summary["suites"][name]["metrics"] == {
            k: m["value"] for k, m in suite["metrics"].items()
        }
    assert report["suites"]["two_room"]["protocol"]["version"] == "3"
    assert set(report["suites"]["maze"]["baselines"]) == {"flat_mpc", "random"}
    assert (out / "bench" / "report.html").is_file()
    assert "trained on two_room, maze, physics" in capsys.readouterr().out


def test_demo_on_one_domain_reports_the_others_as_not_trained(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    args = [
        "demo", "--out", str(out), "--domains", "two_room", "--episodes", "4", "--steps", "4",
        "--batch-size", "4", "--eval-episodes", "1", "--workers", "0", "--performance", "false",
        *tiny_model_args(),
    ]  # fmt: skip
    assert main(args) == 0
    suites = json.loads((out / "summary.json").read_text())["suites"]
    assert suites["two_room"]["status"] == "ok"
    assert suites["maze"]["status"] == suites["physics"]["status"] == "not_trained"


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


def test_physics_shifts_take_negative_pixels_and_name_a_bad_set(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--shifts -6 -3 0` parses as pixels (not as options); a repeated or too wide shift is an
    error naming --shifts, before any run is read."""
    for bad, why in ((["-6", "0", "-6"], "must be distinct"), (["-64", "0"], "must be narrower")):
        with pytest.raises(SystemExit):
            main(["physics", "eval", "--run", "r", "--out", "o", "--shifts", *bad])
        assert f"argument --shifts: {why}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(
            [
                "physics",
                "surprise",
                "--run",
                "r",
                "--video",
                "v",
                "--out",
                "o",
                "--shifts",
                "1",
                "1",
            ]
        )
    assert "argument --shifts: must be distinct" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # before any data is collected
        main(["demo", "--out", "o", "--clip-frames", "1"])
    assert "argument --clip-frames: must be in [2, model.max_len=16]" in capsys.readouterr().err


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
