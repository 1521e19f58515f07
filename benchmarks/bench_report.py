"""`jepaworld bench` then `jepaworld bench verify` on existing runs: what each suite measured, how
long the bench and the verification took, and whether verification passed.

Each run gets its own report (its own checkpoint); the table puts one checkpoint per row. The runs
are made by the other benchmarks (benchmarks/demo.py for Two-Room, maze.py, physics.py) or by hand.

Usage::

    python benchmarks/bench_report.py --run /tmp/tr/run --run /tmp/maze_run --workdir /tmp/bench
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from jepaworld.bench import report as rp
from jepaworld.bench.run import BenchConfig, VerifyConfig, format_report, run_bench, verify

ROOT = Path(__file__).resolve().parents[1]


def bench_and_verify(run: Path, out: Path, threads: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    report = run_bench(BenchConfig(run=run, out=out, threads=threads))
    bench_s = time.perf_counter() - t0
    print(format_report(report, out), flush=True)
    t0 = time.perf_counter()
    try:
        checked = verify(VerifyConfig(report=out, run=run))
        verdict: Any = checked["rerun"]
    except rp.ReportError as e:
        verdict = f"FAILED: {e}"
    verify_s = time.perf_counter() - t0
    suites = {
        name: (
            {
                "status": "ok",
                "protocol": f"{s['protocol']['name']} v{s['protocol']['version']}",
                "metrics": {k: [m["value"], m["ci95"]] for k, m in s["metrics"].items()},
                "baselines": {
                    who: {k: m["value"] for k, m in b.items()} for who, b in s["baselines"].items()
                },
                "seconds": s["seconds"],
            }
            if s["status"] == "ok"
            else {"status": s["status"]}
        )
        for name, s in report["suites"].items()
    }
    perf = report["performance"]
    return {
        "run": str(run),
        "report": str(out / rp.REPORT_FILE),
        "checkpoint_sha256": report["checkpoint"]["sha256"],
        "suites": suites,
        "performance": {
            "matmul_gflops": perf["matmul"]["gflops"],
            "train_samples_per_s": perf["train"]["samples_per_s"],
            "train_fraction_of_peak": perf["train"]["fraction_of_peak"],
            "plan_p50_s": perf["plan"].get("p50_s"),
            "memory_query_p50_s": perf["memory_query"]["p50_s"],
        },
        "peak_rss_mib": report["machine"]["peak_rss_mib"],
        "machine": {k: report["machine"][k] for k in ("cpu_model", "threads", "torch", "device")},
        "bench_seconds": bench_s,
        "verify_seconds": verify_s,
        "verify": verdict,
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--run", type=Path, action="append", required=True, help="a run (repeatable)")
    p.add_argument("--workdir", type=Path, required=True, help="reports go to WORKDIR/<i>/")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench.json")
    args = p.parse_args(argv)
    results = [
        bench_and_verify(run, args.workdir / str(i), args.threads) for i, run in enumerate(args.run)
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    reports = [rp.read_report(Path(r["report"])) for r in results]
    print(rp.markdown_table(rp.table_rows(reports)))
    for r in results:
        print(
            f"{r['run']}: bench {r['bench_seconds']:.0f} s, verify {r['verify_seconds']:.0f} s: {r['verify']}"
        )
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
