"""What benchmark scripts share: stages that can be skipped when done, targets, JSON output."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from jepaworld.bench.suites import wilson_interval


class Stages:
    """Runs named stages of a benchmark in `work` and keeps their seconds; with `reuse`, a stage
    whose output path exists is skipped (0 s). A stage with no output path always runs."""

    def __init__(self, work: Path, reuse: bool) -> None:
        self.work, self.reuse = work, reuse
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str, output: Path | None, fn: Any) -> Any:
        t0 = time.perf_counter()
        skip = self.reuse and output is not None and output.exists()
        result = None if skip else fn()
        self.seconds[name] = round(time.perf_counter() - t0, 1)
        return result


def stage_arguments(parser: argparse.ArgumentParser, out: str) -> None:
    """--out (default `out`), --workdir and --reuse: the options of a script built on `Stages`."""
    parser.add_argument("--out", type=Path, default=Path(out))
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--reuse", action="store_true", help="skip stages already done in workdir")


def success_summary(result: dict[str, Any]) -> dict[str, Any]:
    """Success rate with its Wilson interval, random actions' rate and the checkpoint's sha256,
    from an evaluation's results."""
    return {
        "success_rate": result["success_rate"],
        "success_ci95": wilson_interval(result["successes"], result["episodes"]),
        "random_success_rate": result["baselines"]["random"]["success_rate"],
        "checkpoint_sha256": result["checkpoint_sha256"],
    }


def report_and_save(result: dict[str, Any], out: Path) -> None:
    """Print one line per target (PASS/FAIL, or per-item results) and write `result` to `out`."""
    for name, t in result.get("targets", {}).items():
        verdict = t["pass"]
        shown = verdict if isinstance(verdict, dict) else ("PASS" if verdict else "FAIL")
        print(f"target {name} {t['target']}: {shown}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
