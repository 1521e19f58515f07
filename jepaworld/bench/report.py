"""The bench report: its format, its content digest, the checks `bench verify` makes, and tables.

DIR/report.json is one JSON object. Its `digest` is the sha256 of the canonical JSON (sorted keys,
no whitespace) of every other field, so any edit after writing shows. A digest alone proves
nothing against someone who recomputes it, so `verify` also recomputes each metric from the
per-episode outcomes the report carries, checks the checkpoint's sha256, and re-runs a few
episodes of each suite.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from jepaworld.bench.suites import rate_metric
from jepaworld.config import read_json_object

FORMAT = "jepaworld-report"
FORMAT_VERSION = 1
REPORT_FILE = "report.json"
RATE_TOLERANCE = 1e-9


class ReportError(ValueError):
    """A report that cannot be read, is of another format, or does not check out; names it."""


class MixedCheckpointsError(ReportError):
    """Numbers from different checkpoints were asked to share one row."""


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def content_digest(report: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of every field but `digest`."""
    body = {k: v for k, v in report.items() if k != "digest"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def sealed(report: dict[str, Any]) -> dict[str, Any]:
    """The report with its format fields and digest set."""
    out = {"format": FORMAT, "format_version": FORMAT_VERSION, **report}
    out.pop("digest", None)
    out["digest"] = {"algorithm": "sha256", "value": content_digest(out)}
    return out


def report_path(path: Path) -> Path:
    """`path` itself, or the report.json inside it when it is a directory."""
    path = Path(path)
    return path / REPORT_FILE if path.is_dir() else path


def read_report(path: Path) -> dict[str, Any]:
    """A report.json (or the directory holding one), its format checked.

    Raises:
        ReportError: missing, not JSON, not a jepaworld report, or another format version.
    """
    path = report_path(path)
    hint = "run `jepaworld bench --run RUN --out DIR` to write one"
    report = read_json_object(path, ReportError, "bench report", hint)
    if report.get("format") != FORMAT:
        raise ReportError(f"{path}: not a jepaworld bench report (no format {FORMAT!r})")
    version = report.get("format_version")
    if version != FORMAT_VERSION:
        age = "an older" if isinstance(version, int) and version < FORMAT_VERSION else "another"
        raise ReportError(
            f"{path}: report format version {version} is {age} format than this jepaworld "
            f"reads ({FORMAT_VERSION}); run `jepaworld bench` again to get a current report"
        )
    return report


def digest_problems(report: dict[str, Any], path: Path) -> list[str]:
    stated = (report.get("digest") or {}).get("value")
    if stated != content_digest(report):
        return [f"{path}: content digest does not match (the report was edited after writing)"]
    return []


def metric_problems(report: dict[str, Any]) -> list[str]:
    """Every planning suite's success rates recomputed from the per-episode outcomes it carries."""
    problems = []
    for name, suite in report.get("suites", {}).items():
        if suite.get("status") != "ok" or "per_episode" not in suite:
            continue
        stated = {"model": suite["metrics"]["success_rate"]}
        stated |= {who: b["success_rate"] for who, b in suite["baselines"].items()}
        for who, metric in stated.items():
            again = rate_metric(suite["per_episode"].get(who, []))
            if abs(again["value"] - metric["value"]) > RATE_TOLERANCE or again["n"] != metric["n"]:
                problems.append(
                    f"{name}: {who} success_rate is {metric['value']} in the report but its "
                    f"{again['n']} episodes give {again['value']}"
                )
    return problems


def suite_summary(suite: dict[str, Any]) -> str:
    """One table cell: the headline metric, or the status."""
    if suite.get("status") != "ok":
        return suite.get("status", "?")
    cells = [f"{k} {m['value']:.2f}" for k, m in suite["metrics"].items()]
    return ", ".join(cells)


def table_rows(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per checkpoint: {checkpoint, suites: {name: cell}}; reports of the same checkpoint
    share its row, a suite reported twice for one checkpoint is refused."""
    rows: dict[str, dict[str, Any]] = {}
    for report in reports:
        sha = report["checkpoint"]["sha256"]
        row = rows.setdefault(sha, {"checkpoint": sha, "suites": {}})
        for name, suite in report["suites"].items():
            if suite.get("status") != "ok":
                row["suites"].setdefault(name, suite_summary(suite))
                continue
            if name in row["suites"] and row["suites"][name] not in ("not_trained", "not_run"):
                raise ReportError(
                    f"two reports of checkpoint {sha[:12]} both have suite {name!r}; give one"
                )
            row["suites"][name] = suite_summary(suite)
    return list(rows.values())


def merge_row(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from several reports: only when they all evaluated the same checkpoint."""
    shas = {r["checkpoint"]["sha256"] for r in reports}
    if len(shas) > 1:
        named = ", ".join(sorted(s[:12] for s in shas))
        raise MixedCheckpointsError(
            f"these reports evaluated different checkpoints ({named}); their numbers cannot "
            "share a row"
        )
    return table_rows(reports)[0]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    names = sorted({n for r in rows for n in r["suites"]})
    lines = [
        "| checkpoint | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for r in rows:
        cells = [r["suites"].get(n, "not_run") for n in names]
        lines.append(f"| {r['checkpoint'][:12]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
