"""Pretrain on video, then learn actions (the V-JEPA 2 recipe), against training from scratch.

On Two-Room: one model is pretrained on the frames of all `--episodes` exploration episodes with
their actions dropped (`train --drop-actions`: every clip gets the null action). Then, for each
fraction of the action-labelled episodes (default 1%, 10%, 100%: the first N episodes, seeds
0..N-1), three runs with the same budget of `--steps` steps: from the pretrained weights with
the encoder frozen (`train --init --freeze-encoder`, V-JEPA 2-AC's recipe: only the predictor
learns), from the pretrained weights with every weight trained (`--init`), and from scratch. Each is planned with under
protocol tworoom-goal (50 episodes, CEM, same seeds), random actions beside. Prints one table and
saves it with every run's seconds and checkpoint hash.

Usage::

    python benchmarks/transfer.py --workdir /tmp/transfer [--reuse]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from targets import (  # benchmarks/targets.py, beside this script
    Stages,
    report_and_save,
    stage_arguments,
    success_summary,
)

from jepaworld.bench.evaluate import PlanConfig, evaluate
from jepaworld.bench.machine import environment, peak_rss_mib
from jepaworld.data.collect import CollectConfig, collect
from jepaworld.train import TrainConfig, resolve_device, train


def labelled_data(stages: Stages, episodes: int) -> Path:
    """The first `episodes` exploration episodes (seeds 0..episodes-1), with their actions."""
    out = stages.work / f"data{episodes}"
    stages(
        f"collect{episodes}",
        out / "manifest.json",
        lambda: collect(CollectConfig(out=out, episodes=episodes)),
    )
    return out


def arm(
    stages: Stages, data: Path, name: str, steps: int, init: Path | None, freeze: bool = False
) -> dict[str, Any]:
    """Train one run on `data` (from `init`, maybe with its encoder frozen, then on its cached
    embeddings, or from scratch) and plan with it."""
    run = stages.work / name
    cfg = TrainConfig(
        out=run, data=data, steps=steps, init=init, freeze_encoder=freeze, cache_latents=freeze
    )
    stages(f"train_{name}", run / "checkpoints", lambda: train(cfg))
    result = {}
    plan = PlanConfig(run=run, out=stages.work / f"eval_{name}", latency_repeats=0, media=0)
    stages(f"plan_{name}", None, lambda: result.update(evaluate(plan)))
    return success_summary(result)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    stage_arguments(parser, "benchmarks/results/transfer.json")
    parser.add_argument("--episodes", type=int, default=300, help="100%% of the labelled episodes")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    parser.add_argument("--pretrain-steps", type=int, default=1500)
    parser.add_argument("--steps", type=int, default=1000, help="action training steps, each arm")
    args = parser.parse_args(argv)
    env = environment(resolve_device("auto"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        stages = Stages(args.workdir or Path(tmp), args.reuse)
        frames = labelled_data(stages, args.episodes)
        pre = stages.work / "pretrain"
        cfg = TrainConfig(out=pre, data=frames, steps=args.pretrain_steps, drop_actions=True)
        stages("pretrain", pre / "checkpoints", lambda: train(cfg))
        for fraction in args.fractions:
            n = max(1, round(fraction * args.episodes))
            data = frames if n == args.episodes else labelled_data(stages, n)
            row = {"fraction": fraction, "labelled_episodes": n}
            row["frozen"] = arm(stages, data, f"frozen{n}", args.steps, pre, freeze=True)
            row["pretrained"] = arm(stages, data, f"pre{n}", args.steps, pre)
            row["scratch"] = arm(stages, data, f"scratch{n}", args.steps, None)
            rows.append(row)
            cells = [
                f"{name} {row[name]['success_rate']:.2f} {row[name]['success_ci95']}"
                for name in ("frozen", "pretrained", "scratch")
            ]
            print(
                f"{fraction:>5.0%} ({n:>3} episodes): {', '.join(cells)}, "
                f"random {row['scratch']['random_success_rate']:.2f}"
            )
        seconds = stages.seconds
    result = {
        "environment": env,
        "protocol": "tworoom-goal",
        "pretrain": {"episodes": args.episodes, "steps": args.pretrain_steps, "actions": False},
        "steps": args.steps,
        "rows": rows,
        "seconds": seconds,
        "peak_rss_mib": peak_rss_mib(),
    }
    print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))
    report_and_save(result, args.out)
    return result


if __name__ == "__main__":
    main()
