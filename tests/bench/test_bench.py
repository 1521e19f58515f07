"""`jepaworld bench`, `bench verify`, `bench table`: one checkpoint, every suite, verifiable reports."""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from jepaworld.bench import report as rp
from jepaworld.bench.html import success_curves
from jepaworld.bench.plan_eval import checkpoint_sha256
from jepaworld.bench.protocols import VoEProtocol
from jepaworld.bench.run import (
    BenchConfig,
    TableConfig,
    VerifyConfig,
    run_bench,
    run_suite,
    table,
    verify,
)
from jepaworld.bench.suites import MAZE, SuiteRun, rate_metric, wilson_interval
from jepaworld.cli import main
from jepaworld.physics import evaluate as physics_evaluate
from jepaworld.physics.make import PhysicsMakeConfig, make_physics_data
from jepaworld.train import latest_checkpoint, train
from tests.conftest import tiny_model_args, tiny_train


@pytest.fixture(scope="module")
def bench_dir(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "report"
    run_bench(BenchConfig(run=tiny_run, out=out, episodes=2, media=1))
    return out


def load(out: Path) -> dict[str, Any]:
    return json.loads((out / rp.REPORT_FILE).read_text())


def write(report: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(report))
    return path


def test_report_holds_one_checkpoint_every_suite_and_baselines(
    bench_dir: Path, tiny_run: Path
) -> None:
    r = load(bench_dir)
    assert r["format"] == rp.FORMAT and r["format_version"] == rp.FORMAT_VERSION
    assert r["digest"]["value"] == rp.content_digest(r)
    assert r["checkpoint"]["sha256"] == checkpoint_sha256(latest_checkpoint(tiny_run))
    assert r["run"]["data"][0]["env_id"] == "jepaworld/TwoRoom-v0"
    assert r["run"]["data"][0]["manifest_sha256"] == r["run"]["config"]["data_manifest_sha256"]
    assert r["package"]["version"] and r["machine"]["threads"] >= 1
    assert r["started_at"] <= r["finished_at"]
    two = r["suites"]["two_room"]
    assert two["status"] == "ok" and two["protocol"]["name"] == "tworoom-goal"
    assert two["seeds"] == {"first": 1_000_000, "count": 2}
    assert set(two["baselines"]) == {"random", "straight_line"}
    for metric in (two["metrics"]["success_rate"], *(b["success_rate"] for b in two["baselines"].values())):  # fmt: skip
        assert metric["n"] == 2 and metric["interval"] == "wilson"
        lo, hi = metric["ci95"]
        assert lo <= metric["value"] <= hi
    assert all(len(v) == 2 for v in two["per_episode"].values()) and two["seconds"] > 0
    # the checkpoint was trained on Two-Room only: the other suites are never run with it
    for name in ("physics", "maze", "pusht"):
        assert r["suites"][name]["status"] == "not_trained"
        assert r["suites"][name]["trained_on"] == ["jepaworld/TwoRoom-v0"]
    perf = r["performance"]
    assert perf["matmul"]["gflops"] > 0 and 0 < perf["train"]["fraction_of_peak"] < 5
    assert perf["plan"]["p50_s"] > 0 and perf["memory_query"]["memory"] == "synthetic"
    assert (bench_dir / "suites" / "two_room" / "results.json").is_file()


def test_verify_passes_on_an_untouched_report_and_reproduces_episodes(
    bench_dir: Path, tiny_run: Path
) -> None:
    assert (
        main(["bench", "verify", str(bench_dir), "--run", str(tiny_run), "--rerun", "false"]) == 0
    )
    result = verify(VerifyConfig(report=bench_dir / rp.REPORT_FILE, run=tiny_run))
    assert result["rerun"] == {
        "two_room": "reproduced",
        "physics": "not_trained",
        "maze": "not_trained",
        "pusht": "not_trained",
    }


def test_verify_catches_a_tampered_metric(bench_dir: Path, tiny_run: Path, tmp_path: Path) -> None:
    r = load(bench_dir)
    r["suites"]["two_room"]["baselines"]["random"]["success_rate"]["value"] = 0.5
    path = write(r, tmp_path / "report.json")
    with pytest.raises(rp.ReportError, match="digest does not match") as e:
        verify(VerifyConfig(report=path, run=tiny_run, rerun=False))
    assert "random success_rate is 0.5" in str(e.value)
    # a forger who also recomputes the digest is caught by the per-episode outcomes
    write(rp.sealed(r), path)
    with pytest.raises(rp.ReportError, match="random success_rate is 0.5") as e:
        verify(VerifyConfig(report=path, run=tiny_run, rerun=False))
    assert "digest" not in str(e.value)


def test_verify_catches_forged_episodes_by_re_running_them(
    bench_dir: Path, tiny_run: Path, tmp_path: Path
) -> None:
    r = load(bench_dir)
    two = r["suites"]["two_room"]
    episode = two["per_episode"]["straight_line"][0]
    episode["success"] = not episode["success"]
    two["baselines"]["straight_line"]["success_rate"] = rate_metric(
        two["per_episode"]["straight_line"]
    )
    path = write(rp.sealed(r), tmp_path / "report.json")
    with pytest.raises(rp.ReportError, match=f"straight_line episode seed {episode['seed']}"):
        verify(VerifyConfig(report=path, run=tiny_run))


def test_verify_catches_a_swapped_checkpoint(
    bench_dir: Path, tiny_data: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    train(tiny_train(tiny_data, other, seed=1, steps=3))
    with pytest.raises(rp.ReportError, match="is not the checkpoint the report evaluated"):
        verify(VerifyConfig(report=bench_dir, run=other, rerun=False))


def test_an_older_report_format_is_refused_by_name(bench_dir: Path, tmp_path: Path) -> None:
    r = load(bench_dir)
    r["format_version"] = 0
    path = write(r, tmp_path / "old.json")
    with pytest.raises(rp.ReportError, match=r"old\.json: report format version 0 is an older"):
        rp.read_report(path)
    with pytest.raises(rp.ReportError, match="not a jepaworld bench report"):
        rp.read_report(write({"suites": {}}, tmp_path / "x.json"))


def test_tables_never_put_two_checkpoints_in_one_row(bench_dir: Path, tmp_path: Path) -> None:
    mine = load(bench_dir)
    theirs = copy.deepcopy(mine)
    theirs["checkpoint"]["sha256"] = "f" * 64
    with pytest.raises(rp.MixedCheckpointsError, match="different checkpoints"):
        rp.merge_row([mine, theirs])
    rows = rp.table_rows([mine, theirs])
    assert [row["checkpoint"] for row in rows] == [mine["checkpoint"]["sha256"], "f" * 64]
    # reports of one checkpoint share its row, each suite once
    part = copy.deepcopy(mine)
    del part["suites"]["two_room"]
    row = rp.merge_row([part, mine])
    assert row["checkpoint"] == mine["checkpoint"]["sha256"]
    assert row["suites"]["two_room"].startswith("success_rate")
    with pytest.raises(rp.ReportError, match="both have suite 'two_room'"):
        rp.merge_row([mine, copy.deepcopy(mine)])
    b = write(rp.sealed(theirs), tmp_path / "b.json")
    text = table(TableConfig(reports=(bench_dir / rp.REPORT_FILE, b)))
    assert mine["checkpoint"]["sha256"][:12] in text and "ffffffffffff" in text
    assert main(["bench", "table", str(bench_dir), str(b), "--row"]) == 2


def test_bench_refuses_a_run_without_checkpoint_and_an_existing_report(
    bench_dir: Path, tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "run"
    empty.mkdir()
    shutil.copy(tiny_run / "config.json", empty / "config.json")
    assert main(["bench", "--run", str(empty), "--out", str(tmp_path / "b")]) == 2
    assert f"{empty}: no checkpoint found" in capsys.readouterr().err
    before = (bench_dir / rp.REPORT_FILE).read_bytes()
    assert main(["bench", "--run", str(tiny_run), "--out", str(bench_dir)]) == 2
    assert "already holds a report" in capsys.readouterr().err
    assert (bench_dir / rp.REPORT_FILE).read_bytes() == before


def test_a_suite_whose_dependency_is_missing_fails_by_name(tiny_run: Path, tmp_path: Path) -> None:
    record = {"data_env_id": MAZE, "train": {"data": str(tmp_path / "gone")}}
    ctx = SuiteRun(tiny_run, tmp_path / "maze", record, "cpu", 0, 2, 0)
    entry = run_suite("maze", ctx, {MAZE})
    assert entry["status"] == "failed" and str(tmp_path / "gone") in entry["error"]


def test_bench_cli_needs_run_and_out(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "--out", "x"])
    assert "required: --run" in capsys.readouterr().err


def test_wilson_interval_known_values() -> None:
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(49, 50)
    assert lo == pytest.approx(0.8950, abs=1e-4) and hi == pytest.approx(0.9965, abs=1e-4)


def test_success_curves_count_episodes_solved_within_each_budget() -> None:
    suite = {
        "budget": 4,
        "per_episode": {
            "model": [{"success": True, "steps": 1}, {"success": True, "steps": 3}],
            "random": [{"success": False, "steps": 4}, {"success": True, "steps": 4}],
        },
    }
    curves = success_curves(suite)
    assert curves["model"].tolist() == [0, 0.5, 0.5, 1, 1]
    assert curves["random"].tolist() == [0, 0, 0, 0, 0.5]


# ---- physics suite on a tiny video run -----------------------------------------------------

TINY_VOE = VoEProtocol(context=4, pixel_videos=4, pixel_steps=3, bootstrap_resamples=50)


def test_physics_suite_reports_and_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenes = tmp_path / "scenes"
    make_physics_data(PhysicsMakeConfig(out=scenes, pairs=1, videos=6))
    run = tmp_path / "video"
    args = [
        "physics", "pretrain", "--data", str(scenes), "--out", str(run), "--steps", "2",
        "--batch-size", "2", "--clip-frames", "6", "--workers", "0", *tiny_model_args(),
        "--model.max-len", "8",
    ]  # fmt: skip
    assert main(args) == 0
    monkeypatch.setattr(physics_evaluate, "VoEProtocol", lambda: TINY_VOE)
    out = tmp_path / "bench"
    r = run_bench(BenchConfig(run=run, out=out, episodes=2, performance=False))
    phys = r["suites"]["physics"]
    assert phys["status"] == "ok" and phys["protocol"]["pixel_steps"] == 3
    assert set(phys["baselines"]) == {"untrained", "pixel"}
    assert all(m["interval"] == "bootstrap" and m["n"] == 2 for m in phys["metrics"].values())
    assert r["suites"]["two_room"]["status"] == "not_trained" and r["performance"] is None
    assert verify(VerifyConfig(report=out, run=run))["rerun"]["physics"] == "reproduced"
    bad = load(out)
    bad["suites"]["physics"]["per_pair"]["model"]["gravity"]["possible"][0] *= 1.5
    path = write(rp.sealed(bad), tmp_path / "forged.json")
    with pytest.raises(rp.ReportError, match="physics: model scores of the first 2 gravity"):
        verify(VerifyConfig(report=path, run=run))


# ---- the HTML, in a real browser ---------------------------------------------------------------

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def test_report_html_renders_in_headless_chromium(bench_dir: Path) -> None:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium and chromium-driver (.ci/run does)")
        pytest.skip("needs Debian's chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.get((bench_dir / "report.html").resolve().as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])"
        )
        text = driver.execute_script("return document.body.innerText")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        driver.quit()
    # success curve, one filmstrip, loss and effective rank: every one decoded
    assert len(images) >= 4 and all(done and width > 0 for done, width, _ in images), images
    assert not errors, errors
    assert "not_trained" in text and "success_rate" in text and "matmul peak" in text


def test_verify_refuses_a_physics_report_from_another_protocol_version(tmp_path: Path) -> None:
    from jepaworld.bench.suites import reproduce_physics

    old = {**VoEProtocol().to_dict(), "version": "2"}
    ctx = SuiteRun(tmp_path / "no-run", tmp_path, {}, "cpu", 0, None, 0)
    (problem,) = reproduce_physics(ctx, {"protocol": old})  # before any checkpoint is read
    assert "physics-voe v2" in problem and f"v{VoEProtocol.version}" in problem
