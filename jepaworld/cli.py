"""The `jepaworld` command: parses arguments and dispatches. No logic lives here."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from jepaworld.config import add_dataclass_arguments, dataclass_from_namespace, missing_required


def _collect(cfg: Any) -> None:
    from jepaworld.data.collect import collect

    manifest = collect(cfg)
    print(f"wrote {manifest['episodes']} episodes to {cfg.out}")


def _train(cfg: Any) -> None:
    from jepaworld.train import train

    print(f"final checkpoint: {train(cfg)}")


def _plan(cfg: Any) -> None:
    if cfg.goal is not None:
        from jepaworld.bench.image_goal import plan_to_image

        r = plan_to_image(cfg)
        print(
            f"latent distance to {cfg.goal}: {r['latent_distance_start']:.3f} -> "
            f"{r['latent_distance_final']:.3f} after {r['steps']} steps; "
            f"results in {cfg.out / 'results.json'}"
        )
        return
    if cfg.env == "jepaworld/Maze-v0":
        from jepaworld.bench.maze_eval import evaluate_maze as evaluate
    elif cfg.env != "jepaworld/TwoRoom-v0":  # trajectory goals
        from jepaworld.bench.trajectory_eval import evaluate_trajectory as evaluate
    else:
        from jepaworld.bench.evaluate import evaluate

    r = evaluate(cfg)
    base = ", ".join(f"{k} {v['success_rate']:.2f}" for k, v in r["baselines"].items())
    print(
        f"success {r['success_rate']:.2f} over {r['episodes']} episodes (baselines: {base}); "
        f"results in {cfg.out / 'results.json'}"
    )


def _demo(cfg: Any) -> None:
    from jepaworld.demo import format_table, run_demo

    print(format_table(run_demo(cfg)))


def _physics_make(cfg: Any) -> None:
    from jepaworld.physics.make import make_physics_data

    made = make_physics_data(cfg)
    videos = made.get("train", {}).get("episodes", 0)
    print(f"wrote {videos} training videos and {cfg.pairs} pairs x 5 properties to {cfg.out}")


def _physics_pretrain(cfg: Any) -> None:
    from jepaworld.physics.pretrain import pretrain

    print(f"final checkpoint: {pretrain(cfg)}")


def _physics_eval(cfg: Any) -> None:
    from jepaworld.physics.evaluate import evaluate_voe

    r = evaluate_voe(cfg)
    for name, row in r["summary"].items():
        cells = ", ".join(f"{p} {v:.2f}" for p, v in row.items())
        print(f"{name:>9}: relative accuracy {cells}")
    print(f"results in {cfg.out / 'voe.json'}")


def _physics_surprise(cfg: Any) -> None:
    from jepaworld.physics.video_surprise import score_video

    r = score_video(cfg)
    print(
        f"{r['frames']} frames scored; peak surprise {r['peak_surprise']:.4f} at frame "
        f"{r['peak_file_frame']} of {cfg.video}; results in {cfg.out / 'surprise.json'}"
    )


def _bench(cfg: Any) -> None:
    from jepaworld.bench.run import failed_suites, format_report, run_bench
    from jepaworld.bench.suites import SuiteError

    report = run_bench(cfg)
    print(format_report(report, cfg.out))
    failed = failed_suites(report)
    if failed:
        raise SuiteError(f"{len(failed)} suite(s) did not run: " + "; ".join(failed))


def _bench_verify(cfg: Any) -> None:
    from jepaworld.bench.run import verify

    result = verify(cfg)
    reruns = ", ".join(f"{k} {v}" for k, v in result["rerun"].items()) or "skipped"
    print(
        f"{result['report']}: digest, metrics and checkpoint "
        f"{result['checkpoint_sha256'][:16]}... check out; re-runs: {reruns}"
    )


def _bench_table(cfg: Any) -> None:
    from jepaworld.bench.run import table

    print(table(cfg))


def _memory_build(cfg: Any) -> None:
    from jepaworld.memory.commands import build_memory, format_build

    print(format_build(build_memory(cfg)))


def _memory_query(cfg: Any) -> None:
    from jepaworld.memory.commands import format_matches, query_memory

    print(format_matches(query_memory(cfg)))


def _memory_stats(cfg: Any) -> None:
    from jepaworld.memory.commands import format_stats, memory_stats

    print(format_stats(memory_stats(cfg), as_json=cfg.json))


def _commands() -> dict[str, tuple[type, Callable[[Any], None]]]:
    from jepaworld.bench.evaluate import PlanConfig
    from jepaworld.bench.run import BenchConfig, TableConfig, VerifyConfig
    from jepaworld.data.collect import CollectConfig
    from jepaworld.demo import DemoConfig
    from jepaworld.memory.commands import MemoryBuildConfig, MemoryQueryConfig, MemoryStatsConfig
    from jepaworld.physics.evaluate import PhysicsEvalConfig
    from jepaworld.physics.make import PhysicsMakeConfig
    from jepaworld.physics.pretrain import PhysicsPretrainConfig
    from jepaworld.physics.video_surprise import PhysicsSurpriseConfig
    from jepaworld.train import TrainConfig

    return {
        "collect": (CollectConfig, _collect),
        "train": (TrainConfig, _train),
        "plan": (PlanConfig, _plan),
        "demo": (DemoConfig, _demo),
        "physics make": (PhysicsMakeConfig, _physics_make),
        "physics pretrain": (PhysicsPretrainConfig, _physics_pretrain),
        "physics eval": (PhysicsEvalConfig, _physics_eval),
        "physics surprise": (PhysicsSurpriseConfig, _physics_surprise),
        "memory build": (MemoryBuildConfig, _memory_build),
        "memory query": (MemoryQueryConfig, _memory_query),
        "memory stats": (MemoryStatsConfig, _memory_stats),
        "bench": (BenchConfig, _bench),
        "bench verify": (VerifyConfig, _bench_verify),
        "bench table": (TableConfig, _bench_table),
    }


def build_parser(
    commands: dict[str, tuple[type, Callable[[Any], None]]],
) -> argparse.ArgumentParser:
    """One subcommand per entry; a two-word name ("physics make") becomes a group and its command.
    A name that is both a command and a group ("bench", "bench verify") runs the command when no
    subcommand follows; its options without a default are then checked by `main`."""
    parser = argparse.ArgumentParser(
        prog="jepaworld", description="JEPA world models: learn, plan, evaluate."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    groups: dict[str, Any] = {}
    for name, (cls, _) in commands.items():
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        group, _, leaf = name.rpartition(" ")
        if group and group not in groups:
            own = commands.get(group)
            holder = sub.add_parser(group, help=f"{group} commands")
            if own is not None:  # the group is a command too: its options, no subcommand needed
                holder.description = (own[0].__doc__ or "").strip().splitlines()[0]
                holder.set_defaults(command_name=group)
                add_dataclass_arguments(holder, own[0], enforce_required=False)
            groups[group] = holder.add_subparsers(
                dest=f"{group}_command", required=own is None, metavar="{subcommand}"
            )
        if not group and any(n.startswith(f"{name} ") for n in commands):
            continue  # made above, as the group's own parser
        target = groups[group] if group else sub
        command = target.add_parser(leaf, help=doc, description=doc)
        command.set_defaults(command_name=name)
        add_dataclass_arguments(command, cls)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    commands = _commands()
    parser = build_parser(commands)
    ns = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if ns.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    cls, run = commands[ns.command_name]
    missing = missing_required(cls, ns)
    if missing:
        parser.error(
            f"{ns.command_name}: the following arguments are required: {', '.join(missing)}"
        )
    try:
        cfg = dataclass_from_namespace(cls, ns)
    except ValueError as e:  # __post_init__ validation names the field
        field, _, msg = str(e).partition(": ")
        parser.error(f"argument --{field.replace('_', '-')}: {msg}" if msg else str(e))
    from jepaworld.bench.report import ReportError
    from jepaworld.bench.suites import SuiteError
    from jepaworld.data.episodes import DataError
    from jepaworld.memory.store import MemoryFormatError, UnknownModelError
    from jepaworld.models.world_model import CheckpointError
    from jepaworld.train import TrainingDiverged

    try:
        run(cfg)
    except (
        DataError,
        CheckpointError,
        TrainingDiverged,
        MemoryFormatError,
        ReportError,
        SuiteError,
        UnknownModelError,
        FileExistsError,
        FileNotFoundError,
        ValueError,
        ImportError,
    ) as e:
        print(f"jepaworld {ns.command_name}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
