"""DIR/report.html: the bench report for a person, in one self-contained file.

Every image is an inline PNG (data URI) and there is no script, font or style sheet from elsewhere,
so the file opens offline and can be mailed as it is. It shows a summary table (model against
baselines per suite), success against step budget, surprise over time with the violation frame
marked, the training loss and effective-rank curves, filmstrips of planned rollouts, and the
performance section. Figures are drawn from the report itself (and the run's metrics.jsonl), not
from anything the report does not record.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from jepaworld.bench.plot import line_chart

HTML_FILE = "report.html"
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
code { font-size: 90%; }
img { max-width: 100%; margin: 4px 0; }
.muted { color: #777; }
"""


def png_data_uri(image: np.ndarray | bytes) -> str:
    """An RGB array (H, W, 3) uint8 or PNG bytes as a data: URI."""
    if isinstance(image, np.ndarray):
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG")
        image = buf.getvalue()
    return "data:image/png;base64," + base64.b64encode(image).decode()


def img(image: np.ndarray | bytes, alt: str) -> str:
    return f'<img src="{png_data_uri(image)}" alt="{html.escape(alt)}">'


def success_curves(suite: dict[str, Any]) -> dict[str, np.ndarray]:
    """Fraction of episodes solved within each step budget b = 0..budget, per controller."""
    budget = int(suite["budget"])
    curves = {}
    for who, episodes in suite["per_episode"].items():
        steps = np.array([e["steps"] if e["success"] else budget + 1 for e in episodes])
        curves[who] = np.array([(steps <= b).mean() for b in range(budget + 1)])
    return curves


def training_curves(run: Path) -> list[str]:
    """Loss and effective-rank charts from RUN/metrics.jsonl (nothing when it is missing)."""
    path = Path(run) / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a torn last line
    if len(rows) < 2:
        return []
    every = rows[1]["step"] - rows[0]["step"]
    charts = []
    for key, title in (("loss", "training loss"), ("eff_rank", "effective rank of embeddings")):
        values = np.array([r.get(key, np.nan) for r in rows], float)
        chart = line_chart(
            {key: values}, title, x_label="step", x_scale=every, x_start=rows[0]["step"]
        )
        charts.append(img(chart, title))
    return charts


def _cell(metric: dict[str, Any]) -> str:
    lo, hi = metric["ci95"]
    return f"{metric['value']:.2f} <span class='muted'>[{lo:.2f}, {hi:.2f}]</span>"


def summary_table(report: dict[str, Any]) -> str:
    rows = ["<tr><th>suite</th><th>status</th><th>metric</th><th>model</th><th>baselines</th></tr>"]
    for name, s in report["suites"].items():
        title = html.escape(f"{s.get('title', name)} ({name})")
        if s["status"] != "ok":
            why = s.get("error") or s.get("reason") or ""
            if s["status"] == "not_trained":
                why = "no data of " + s["domain"] + " in the checkpoint's training data"
            rows.append(
                f"<tr><td>{title}</td><td>{s['status']}</td><td colspan=3>"
                f"{html.escape(why)}</td></tr>"
            )
            continue
        for i, (metric, m) in enumerate(s["metrics"].items()):
            base = "<br>".join(
                f"{html.escape(who)}: {_cell(b[metric])}" for who, b in s["baselines"].items()
            )
            head = (
                f"<td>{title}</td><td>ok ({s['seconds']:.0f} s)</td>" if i == 0 else "<td></td>" * 2
            )
            rows.append(
                f"<tr>{head}<td>{html.escape(metric)}</td><td>{_cell(m)}</td><td>{base}</td></tr>"
            )
    return "<table>" + "".join(rows) + "</table>"


def suite_section(name: str, s: dict[str, Any], root: Path) -> str:
    if s["status"] != "ok":
        return ""
    proto = s["protocol"]
    parts = [
        f"<h2>{html.escape(s.get('title', name))}</h2>",
        f"<p>protocol <code>{html.escape(proto['name'])} v{html.escape(str(proto['version']))}"
        f"</code>; full results in <code>suites/{name}/{html.escape(s['details'])}</code></p>",
    ]
    if "per_episode" in s:
        chart = line_chart(
            success_curves(s), f"{name}: success within a step budget", x_label="step budget"
        )
        parts.append(img(chart, f"{name} success against step budget"))
    for media in s.get("media", []):
        path = root / "suites" / name / media
        if path.is_file():
            parts.append(f"<p class='muted'>{html.escape(media)}</p>")
            parts.append(img(path.read_bytes(), f"{name} {media}"))
    return "\n".join(parts)


def performance_table(perf: dict[str, Any] | None) -> str:
    if not perf:
        return "<p class='muted'>not measured</p>"
    tr, mm = perf["train"], perf["matmul"]
    rows = [
        (
            "matmul peak",
            f"{mm['gflops']:.1f} GFLOP/s ({mm['size']}^2 fp32, {perf['threads']} threads)",
        ),
        (
            "training",
            f"{tr['samples_per_s']:.1f} clips/s, {tr['gflops']:.1f} GFLOP/s = "
            f"{100 * tr['fraction_of_peak']:.1f}% of peak (goal {100 * tr['target_fraction_of_peak']:.0f}%)",
        ),
    ]
    plan = perf["plan"]
    if "p50_s" in plan:
        rows.append(("CEM plan (E=1)", f"p50 {plan['p50_s']:.3f} s, p95 {plan['p95_s']:.3f} s"))
    else:
        rows.append(("CEM plan", plan.get("not_applicable", "")))
    mq = perf["memory_query"]
    rows.append(
        (
            "memory query (k=10)",
            f"p50 {1e3 * mq['p50_s']:.2f} ms, p95 {1e3 * mq['p95_s']:.2f} ms "
            f"on {mq['entries']} entries ({mq['memory']})",
        )
    )
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def render_html(report: dict[str, Any], root: Path, run: Path) -> str:
    ck, m = report["checkpoint"], report["machine"]
    head = (
        f"<p>checkpoint <code>{ck['sha256']}</code> (step {ck['step']}, "
        f"<code>{html.escape(ck['path'])}</code>)<br>"
        f"jepaworld {html.escape(report['package']['version'])}, commit "
        f"<code>{html.escape(str(report['package']['git_commit']))}</code><br>"
        f"{html.escape(m['cpu_model'])}, {m['threads']} threads, torch "
        f"{html.escape(m['torch'])}, device {html.escape(m['device'])}<br>"
        f"{report['started_at']} to {report['finished_at']} ({report['seconds']:.0f} s); "
        f"digest <code>{report['digest']['value']}</code></p>"
    )
    sections = [suite_section(n, s, root) for n, s in report["suites"].items()]
    training = training_curves(run)
    body = [
        "<h1>jepaworld bench report</h1>",
        head,
        "<h2>Summary</h2>",
        "<p>Every number comes from the one checkpoint above; baselines ran in the same process "
        "on the same seeds. Brackets: 95% intervals (Wilson for success rates, bootstrap for "
        "relative accuracies).</p>",
        summary_table(report),
        *[s for s in sections if s],
        "<h2>Training</h2>",
        *(training or ["<p class='muted'>the run has no metrics.jsonl</p>"]),
        "<h2>Performance</h2>",
        performance_table(report.get("performance")),
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<link rel='icon' href='data:,'><title>jepaworld report {ck['sha256'][:12]}</title><style>{STYLE}</style></head>"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_html(report: dict[str, Any], root: Path, run: Path) -> Path:
    path = Path(root) / HTML_FILE
    path.write_text(render_html(report, Path(root), run))
    return path
