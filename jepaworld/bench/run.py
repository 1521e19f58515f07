"""`jepaworld bench`: one checkpoint through every suite, baselines alongside; `bench verify`; `bench table`.

DIR/report.json holds the checkpoint's sha256, the data it was trained on, its config, the package
and git commit, the machine, start and end times, every suite's protocol, seeds, metrics with 95%
intervals, baselines and time, and a performance section, sealed by a content digest. DIR/report.html
shows the same for a person. DIR/suites/<name>/ keeps each evaluation's full results and media.
"""

from __future__ import annotations

import datetime
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import jepaworld
from jepaworld.bench import report as rp
from jepaworld.bench.machine import (
    cpu_model,
    environment,
    git_commit,
    load_average,
    peak_rss_mib,
)
from jepaworld.bench.plan_eval import checkpoint_sha256, write_json
from jepaworld.bench.suites import SUITES, SuiteError, SuiteRun, trained_domains
from jepaworld.config import require, to_dict
from jepaworld.models.world_model import CheckpointError
from jepaworld.train import data_sources, latest_checkpoint, read_run_record, resolve_device

log = logging.getLogger(__name__)
SUITE_DIR = "suites"


@dataclass
class BenchConfig:
    """Evaluate one run's latest checkpoint on every suite, with baselines; write a verifiable report."""

    run: Path
    """Run directory from `jepaworld train` (its latest checkpoint is evaluated)."""
    out: Path
    """Output directory: report.json, report.html, suites/<name>/ (must not hold a report yet)."""
    suites: tuple[str, ...] = tuple(SUITES)
    """Suites to run; one the checkpoint was not trained for is reported as not_trained."""
    episodes: int | None = None
    """Episodes per planning suite and pairs per physics property (default: each protocol's
    own, 50); another count is recorded in each suite's protocol."""
    seed: int = 0
    """Seed of the planners' sampling generators."""
    media: int = 4
    """Filmstrips per planning suite."""
    performance: bool = True
    """Measure the performance section (matmul peak, training speed, plan and memory latency)."""
    device: str = "auto"
    """Device: auto, cpu, cuda."""
    threads: int = 0
    """torch CPU threads (0 keeps torch's default; recorded, and used again by `bench verify`)."""

    def __post_init__(self) -> None:
        self.run, self.out = Path(self.run), Path(self.out)
        self.suites = tuple(self.suites)
        unknown = sorted(set(self.suites) - set(SUITES))
        require(not unknown, "suites", f"unknown {unknown}; known: {', '.join(SUITES)}")
        require(bool(self.suites), "suites", "give at least one")
        require(self.episodes is None or self.episodes >= 1, "episodes", "must be >= 1")
        require(self.media >= 0, "media", "must be >= 0")
        require(self.threads >= 0, "threads", "must be >= 0")


@dataclass
class VerifyConfig:
    """Check a bench report: its digest, its metrics, the checkpoint, and a few re-run episodes."""

    report: Path = field(metadata={"positional": True})
    """report.json written by `jepaworld bench` (or its directory)."""
    run: Path
    """The run directory the report claims to evaluate."""
    rerun: bool = True
    """Re-run the first batch of episodes (pairs, for physics) of each suite and compare."""
    device: str = "auto"
    """Device: auto, cpu, cuda."""

    def __post_init__(self) -> None:
        self.report, self.run = Path(self.report), Path(self.run)


@dataclass
class TableConfig:
    """Put several bench reports in one table, one row per checkpoint."""

    reports: tuple[Path, ...] = field(metadata={"positional": True})
    """report.json files (or their directories)."""
    row: bool = False
    """Put every report in a single row (refused unless they all evaluated one checkpoint)."""

    def __post_init__(self) -> None:
        self.reports = tuple(Path(p) for p in self.reports)
        require(bool(self.reports), "reports", "give at least one report")


# ---- bench ------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def run_suite(name: str, ctx: SuiteRun, domains: set[str]) -> dict[str, Any]:
    """One suite's report entry: ok, not_trained, not_run (missing dependency) or failed."""
    suite = SUITES[name]
    base = {"title": suite.title, "domain": suite.domain}
    if suite.domain not in domains:
        return {**base, "status": "not_trained", "trained_on": sorted(domains)}
    t0 = time.perf_counter()
    try:
        entry = suite.run(ctx)
    except ImportError as e:
        return {**base, "status": "not_run", "reason": f"missing dependency: {e}"}
    except (SuiteError, CheckpointError, ValueError, FileNotFoundError) as e:
        log.error("suite %s failed: %s", name, e)
        return {**base, "status": "failed", "error": str(e)}
    return {**base, "status": "ok", **entry, "seconds": time.perf_counter() - t0}


def run_bench(cfg: BenchConfig) -> dict[str, Any]:
    """Every suite on the run's latest checkpoint; writes and returns the sealed report."""
    if (cfg.out / rp.REPORT_FILE).exists():
        raise FileExistsError(f"{cfg.out}: already holds a report; choose another --out")
    record = read_run_record(cfg.run)
    ckpt = latest_checkpoint(cfg.run)  # a run without a checkpoint fails here, before any work
    sha = checkpoint_sha256(ckpt)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    started, t0 = _now(), time.perf_counter()
    machine = environment(device)
    domains = trained_domains(record)
    suites = {}
    for name in cfg.suites:
        ctx = SuiteRun(
            cfg.run, cfg.out / SUITE_DIR / name, record, cfg.device, cfg.seed, cfg.episodes,
            cfg.media,
        )  # fmt: skip
        suites[name] = run_suite(name, ctx, domains)
    if checkpoint_sha256(ckpt) != sha or latest_checkpoint(cfg.run) != ckpt:
        raise CheckpointError(f"{ckpt}: the checkpoint changed while the bench ran")
    performance = None
    if cfg.performance:
        from jepaworld.bench.performance import measure_performance

        performance = measure_performance(record, ckpt, device, cfg.out / SUITE_DIR / "maze")
    machine["load_average_end"] = load_average()
    machine["peak_rss_mib"] = peak_rss_mib()
    report = rp.sealed(
        {
            "checkpoint": {"path": str(ckpt), "sha256": sha, "step": _step(ckpt)},
            "run": {"path": str(cfg.run), "config": record, "data": data_sources(record)},
            "package": {
                "name": "jepaworld",
                "version": jepaworld.__version__,
                "git_commit": git_commit(),
            },
            "machine": machine,
            "settings": to_dict(cfg),
            "started_at": started,
            "finished_at": _now(),
            "seconds": time.perf_counter() - t0,
            "suites": suites,
            "performance": performance,
        }
    )
    write_json(cfg.out / rp.REPORT_FILE, report)
    from jepaworld.bench.html import write_html

    write_html(report, cfg.out, cfg.run)
    return report


def _step(ckpt: Path) -> int | None:
    try:
        return int(ckpt.name.removeprefix("step_"))
    except ValueError:
        return None


def failed_suites(report: dict[str, Any]) -> list[str]:
    return [
        f"{name}: {s.get('error') or s.get('reason')}"
        for name, s in report["suites"].items()
        if s["status"] in ("failed", "not_run")
    ]


def format_report(report: dict[str, Any], out: Path) -> str:
    """A few lines on screen: each suite's headline against its baselines."""
    lines = [
        f"checkpoint {report['checkpoint']['sha256'][:16]}... ({report['checkpoint']['path']})"
    ]
    for name, s in report["suites"].items():
        cell = rp.suite_summary(s)
        if s["status"] == "ok":
            base = "; ".join(
                f"{who}: " + ", ".join(f"{k} {m['value']:.2f}" for k, m in b.items())
                for who, b in s["baselines"].items()
            )
            cell += f"  (baselines: {base}; {s['seconds']:.0f} s)"
        elif s["status"] != "not_trained":
            cell += f": {s.get('error') or s.get('reason')}"
        lines.append(f"{name:>9}: {cell}")
    perf = report.get("performance")
    if perf:
        tr = perf["train"]
        lines.append(
            f"performance: train {tr['samples_per_s']:.0f} clips/s, "
            f"{100 * tr['fraction_of_peak']:.0f}% of a {perf['matmul']['gflops']:.0f} GFLOP/s "
            f"matmul peak; peak RSS {report['machine']['peak_rss_mib']:.0f} MiB"
        )
    lines.append(f"report: {out / rp.REPORT_FILE} and {out / 'report.html'}")
    return "\n".join(lines)


# ---- verify -----------------------------------------------------------------------------------


def verify(cfg: VerifyConfig) -> dict[str, Any]:
    """Check the report; raises ReportError listing every mismatch.

    Order: format, digest, metrics against the per-episode outcomes, the checkpoint's sha256, then
    (with rerun) the first batch of each suite re-run with the report's thread count."""
    path = rp.report_path(cfg.report)
    report = rp.read_report(path)
    problems = rp.digest_problems(report, path) + rp.metric_problems(report)
    ckpt = latest_checkpoint(cfg.run)
    sha = checkpoint_sha256(ckpt)
    if sha != report["checkpoint"]["sha256"]:
        problems.append(
            f"{ckpt}: sha256 {sha[:16]}... is not the checkpoint the report evaluated "
            f"({report['checkpoint']['sha256'][:16]}...)"
        )
    checked: dict[str, Any] = {"digest": True, "metrics": True, "checkpoint": True, "rerun": {}}
    if problems:
        raise rp.ReportError("; ".join(problems))
    if cfg.rerun:
        checked["rerun"] = _rerun(report, path.parent, cfg)
    return {"report": str(path), "checkpoint_sha256": sha, **checked}


def _rerun(report: dict[str, Any], root: Path, cfg: VerifyConfig) -> dict[str, str]:
    threads = report["machine"].get("threads")
    if threads and threads != torch.get_num_threads():
        torch.set_num_threads(int(threads))  # reductions are exact only at the same thread count
    record = read_run_record(cfg.run)
    seed = int(report["settings"].get("seed", 0))
    problems, done = [], {}
    for name, suite in report["suites"].items():
        if suite["status"] != "ok":
            done[name] = suite["status"]
            continue
        with tempfile.TemporaryDirectory(prefix="jepaworld-verify-") as tmp:
            ctx = SuiteRun(
                cfg.run, Path(tmp), record, cfg.device, seed, None, 0,
                reported=root / SUITE_DIR / name,
            )  # fmt: skip
            found = SUITES[name].reproduce(ctx, suite)
        problems += found
        done[name] = "reproduced" if not found else "differs"
    if problems:
        same = report["machine"].get("cpu_model") == cpu_model()
        hint = "" if same else " (the report was made on another CPU: re-runs can differ there)"
        raise rp.ReportError("; ".join(problems) + hint)
    return done


# ---- table ------------------------------------------------------------------------------------


def table(cfg: TableConfig) -> str:
    reports = [rp.read_report(p) for p in cfg.reports]
    rows = [rp.merge_row(reports)] if cfg.row else rp.table_rows(reports)
    return rp.markdown_table(rows)
