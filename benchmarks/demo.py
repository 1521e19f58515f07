"""The foundation's headline numbers, measured by running the demo exactly as a user would.

Runs `jepaworld demo` (collect -> train -> plan under the Two-Room protocol, baselines in the same
run) into a fresh directory, then prints a table and writes JSON with the machine facts beside the
demo's summary. Targets (issue: Foundation): success >= 0.95 under the protocol, whole demo <= 600 s
on a 2-core CPU.

Usage::

    python benchmarks/demo.py                      # writes benchmarks/results/demo.json
    python benchmarks/demo.py --out DIR --steps N  # other settings are the demo's defaults
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from targets import report_and_save  # benchmarks/targets.py, beside this script

from jepaworld.bench.machine import environment, peak_rss_mib
from jepaworld.demo import DemoConfig, format_table, run_demo
from jepaworld.train import resolve_device

TARGET_SUCCESS, TARGET_SECONDS = 0.95, 600.0


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/demo.json"))
    parser.add_argument("--workdir", type=Path, default=None, help="keep the demo's files here")
    parser.add_argument(
        "--steps", type=int, default=None, help="training steps (default: the demo's)"
    )
    args = parser.parse_args(argv)
    env = environment(resolve_device("auto"))
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp) / "demo"
        cfg = DemoConfig(out=work) if args.steps is None else DemoConfig(out=work, steps=args.steps)
        summary = run_demo(cfg)
    result = {
        "environment": env,
        "summary": summary,
        "targets": {
            "success_rate": {
                "target": TARGET_SUCCESS,
                "pass": summary["success_rate"] >= TARGET_SUCCESS,
            },
            "wall_seconds": {
                "target": TARGET_SECONDS,
                "pass": summary["wall_seconds"] <= TARGET_SECONDS,
            },
        },
        "peak_rss_mib": peak_rss_mib(),
    }
    print(format_table(summary))
    report_and_save(result, args.out)
    return result


if __name__ == "__main__":
    main()
