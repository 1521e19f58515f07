"""The suites `jepaworld bench` runs on one checkpoint, and how each re-runs a few of its episodes.

A suite evaluates the run's latest checkpoint under its own versioned protocol, with the
protocol's baselines in the same process on the same seeds, and condenses the evaluation's full
results (kept beside the report) into a report entry: metrics with 95% intervals (Wilson for rates,
bootstrap for accuracies), baselines, per-episode outcomes and the time taken. A suite whose domain
is absent from the run's training data is `not_trained`: it is never evaluated with another model.

`reproduce` re-runs the first lock-step batch of a planning suite (a batch re-run alone gives the
same episodes: see `EpisodicProtocol`), or re-scores the first pairs of each physics property, and
returns what does not match the report.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jepaworld.bench.protocols import MazeProtocol, TrajectoryProtocol, TwoRoomProtocol, VoEProtocol
from jepaworld.config import from_dict

log = logging.getLogger(__name__)

TWO_ROOM, PHYSICS, MAZE = "jepaworld/TwoRoom-v0", "jepaworld/PhysicsScenes-v0", "jepaworld/Maze-v0"
PUSHT = "jepaworld/PushT-v0"
DISTANCE_TOLERANCE = 1e-3
"""Largest difference in final distance (px) that still counts as the same episode."""
SCORE_RTOL = 1e-4
"""Largest relative difference of a surprise score that still counts as the same."""


class SuiteError(RuntimeError):
    """A suite cannot run on this checkpoint (a missing dependency, an unfit model); names it."""


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> list[float]:
    """95% Wilson score interval of a success rate (Wilson 1927)."""
    if n == 0:
        return [0.0, 1.0]
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def rate_metric(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """Success rate of per-episode outcomes with its Wilson interval."""
    wins, n = sum(bool(o["success"]) for o in outcomes), len(outcomes)
    return {
        "value": wins / n if n else 0.0,
        "ci95": wilson_interval(wins, n),
        "interval": "wilson",
        "successes": wins,
        "n": n,
    }


def slim(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the report keeps of each episode."""
    keys = ("seed", "success", "steps", "final_distance")
    return [{k: o[k] for k in keys} for o in outcomes]


def trained_domains(record: dict[str, Any]) -> set[str]:
    """Environment ids of the data a run was trained on (its config.json record)."""
    from jepaworld.train import data_sources

    return {s["env_id"] for s in data_sources(record) if isinstance(s.get("env_id"), str)}


@dataclass
class SuiteRun:
    """What a suite needs: the run, where to write, and the bench's settings."""

    run: Path
    out: Path
    """This suite's directory (full results, media)."""
    record: dict[str, Any]
    device: str
    seed: int
    episodes: int | None
    """Override of the protocol's episode (or pair) count; None keeps the protocol's."""
    media: int
    reported: Path | None = None
    """For `reproduce`: the suite's directory beside the report (its memory file, for the maze)."""


@dataclass(frozen=True)
class Suite:
    """One benchmark suite: its training domain, how to run it, how to re-run part of it."""

    name: str
    title: str
    domain: str
    run: Callable[[SuiteRun], dict[str, Any]]
    reproduce: Callable[[SuiteRun, dict[str, Any]], list[str]]


# ---- planning suites (Two-Room, maze) -------------------------------------------------------


def planning_entry(results: dict[str, Any], details: str) -> dict[str, Any]:
    """A report entry from a planning evaluation's results.json."""
    protocol = results["protocol"]
    entry = {
        "protocol": protocol,
        "seeds": {"first": protocol["seed"], "count": protocol["episodes"]},
        "metrics": {"success_rate": rate_metric(results["per_episode"])},
        "baselines": {
            name: {"success_rate": rate_metric(b["per_episode"])}
            for name, b in results["baselines"].items()
        },
        "per_episode": {
            "model": slim(results["per_episode"]),
            **{name: slim(b["per_episode"]) for name, b in results["baselines"].items()},
        },
        "budget": protocol["budget"],
        "planner": results["planner"],
        "plan_seconds_mean": results["plan_seconds_mean"],
        "details": details,
        "media": [m for m in results.get("media", []) if m.endswith(".png")],
    }
    return entry


def compare_episodes(
    suite: str, who: str, reported: list[dict[str, Any]], again: list[dict[str, Any]]
) -> list[str]:
    """Mismatches between reported episodes and the same episodes re-run (same seeds, in order)."""
    problems = []
    for old, new in zip(reported, again, strict=False):
        same = (
            old["seed"] == new["seed"]
            and bool(old["success"]) == bool(new["success"])
            and old["steps"] == new["steps"]
            and abs(old["final_distance"] - new["final_distance"]) <= DISTANCE_TOLERANCE
        )
        if not same:
            problems.append(
                f"{suite}: {who} episode seed {old['seed']} reported success={old['success']} "
                f"steps={old['steps']} distance={old['final_distance']}, re-run gives "
                f"success={new['success']} steps={new['steps']} distance={new['final_distance']}"
            )
    return problems


def reproduce_planning(
    suite: str, reported: dict[str, Any], again: dict[str, Any], count: int
) -> list[str]:
    """Compare the first `count` episodes of every controller with a re-run's."""
    rerun = {"model": again["per_episode"]}
    rerun |= {name: b["per_episode"] for name, b in again["baselines"].items()}
    problems = []
    for who, episodes in reported["per_episode"].items():
        if who not in rerun:
            problems.append(f"{suite}: the re-run has no {who!r} to compare")
            continue
        problems += compare_episodes(suite, who, episodes[:count], rerun[who][:count])
    return problems


def run_two_room(ctx: SuiteRun) -> dict[str, Any]:
    from jepaworld.bench.evaluate import PlanConfig, evaluate

    protocol = TwoRoomProtocol()
    cfg = PlanConfig(
        run=ctx.run,
        out=ctx.out,
        episodes=ctx.episodes or protocol.episodes,
        seed=ctx.seed,
        media=ctx.media,
        device=ctx.device,
    )
    results = evaluate(cfg)
    entry = planning_entry(results, "results.json")
    latency = results["plan_latency_seconds"]
    if latency:
        entry["plan_latency_p50_s"] = float(np.percentile(latency, 50))
    return entry


def reproduce_two_room(ctx: SuiteRun, reported: dict[str, Any]) -> list[str]:
    from jepaworld.bench.evaluate import PlanConfig, evaluate

    protocol = from_dict(TwoRoomProtocol, reported["protocol"], "two_room")
    count = min(protocol.chunk, protocol.episodes)
    cfg = PlanConfig(
        run=ctx.run, out=ctx.out, episodes=count, seed=ctx.seed, media=0, latency_repeats=0,
        device=ctx.device,
    )  # fmt: skip
    again = evaluate(cfg, protocol)
    return reproduce_planning("two_room", reported, again, count)


def run_pusht(ctx: SuiteRun) -> dict[str, Any]:
    from jepaworld.bench.evaluate import PlanConfig
    from jepaworld.bench.trajectory_eval import evaluate_trajectory

    protocol = TrajectoryProtocol.for_env(PUSHT)
    cfg = PlanConfig(
        run=ctx.run, out=ctx.out, env=PUSHT, episodes=ctx.episodes or protocol.episodes,
        seed=ctx.seed, media=ctx.media, device=ctx.device,
    )  # fmt: skip
    results = evaluate_trajectory(cfg)
    entry = planning_entry(results, "results.json")
    if results["plan_latency_seconds"]:
        entry["plan_latency_p50_s"] = float(np.percentile(results["plan_latency_seconds"], 50))
    return entry


def reproduce_pusht(ctx: SuiteRun, reported: dict[str, Any]) -> list[str]:
    from jepaworld.bench.evaluate import PlanConfig
    from jepaworld.bench.trajectory_eval import evaluate_trajectory

    protocol = from_dict(TrajectoryProtocol, reported["protocol"], "pusht")
    count = min(protocol.chunk, protocol.episodes)
    cfg = PlanConfig(
        run=ctx.run, out=ctx.out, env=PUSHT, episodes=count, seed=ctx.seed, media=0,
        latency_repeats=0, device=ctx.device,
    )  # fmt: skip
    again = evaluate_trajectory(cfg, protocol)
    return reproduce_planning("pusht", reported, again, count)


MAZE_MEMORY_EVERY = 5
"""The maze suite remembers every 5th frame of the run's training data (as benchmarks/maze.py)."""
MEMORY_FILE = "memory.sqlite"


def _maze_data(ctx: SuiteRun) -> Path:
    from jepaworld.train import data_sources

    data = next((s.get("path") for s in data_sources(ctx.record) if s["env_id"] == MAZE), None)
    if not data or not (Path(data) / "manifest.json").is_file():
        raise SuiteError(
            f"maze: the memory is built from the run's training data, {data!r}, which is not "
            "there any more (give the data back at that path or train again)"
        )
    return Path(data)


def run_maze(ctx: SuiteRun) -> dict[str, Any]:
    from jepaworld.bench.evaluate import PlanConfig
    from jepaworld.bench.maze_eval import evaluate_maze
    from jepaworld.memory.commands import MemoryBuildConfig, build_memory

    db = ctx.out / MEMORY_FILE
    build_memory(
        MemoryBuildConfig(
            run=ctx.run, data=_maze_data(ctx), db=db, every=MAZE_MEMORY_EVERY, device=ctx.device
        )
    )
    cfg = PlanConfig(
        run=ctx.run,
        out=ctx.out,
        env=MAZE,
        episodes=ctx.episodes or MazeProtocol().episodes,
        seed=ctx.seed,
        media=ctx.media,
        device=ctx.device,
        memory=db,
    )
    results = evaluate_maze(cfg)
    entry = planning_entry(results, "results.json")
    memory = results["memory"]
    entry["memory"] = {
        "file": MEMORY_FILE,
        "sha256": memory["sha256"],
        "entries": memory["entries"],
        "every": MAZE_MEMORY_EVERY,
        "graph": memory["graph"],
    }
    return entry


def reproduce_maze(ctx: SuiteRun, reported: dict[str, Any]) -> list[str]:
    from jepaworld.bench.evaluate import PlanConfig
    from jepaworld.bench.maze_eval import evaluate_maze
    from jepaworld.data.episodes import sha256_file

    db = (ctx.reported or ctx.out) / reported["memory"]["file"]
    if not db.is_file():
        return [f"maze: the memory the report used, {db}, is missing"]
    if sha256_file(db) != reported["memory"]["sha256"]:
        return [f"maze: {db} is not the memory the report used (sha256 differs)"]
    protocol = from_dict(MazeProtocol, reported["protocol"], "maze")
    count = min(protocol.chunk, protocol.episodes)
    cfg = PlanConfig(
        run=ctx.run, out=ctx.out, env=MAZE, episodes=count, seed=ctx.seed, media=0,
        device=ctx.device, memory=db,
    )  # fmt: skip
    again = evaluate_maze(cfg, protocol)
    return reproduce_planning("maze", reported, again, count)


# ---- physics ---------------------------------------------------------------------------------


def accuracy_metric(block: dict[str, Any]) -> dict[str, Any]:
    return {
        "value": block["relative_accuracy"],
        "ci95": block["ci95"],
        "interval": "bootstrap",
        "auroc": block["auroc"],
        "n": block["pairs"],
    }


def run_physics(ctx: SuiteRun) -> dict[str, Any]:
    from jepaworld.physics.evaluate import PhysicsEvalConfig, evaluate_voe

    pairs = ctx.episodes or VoEProtocol().pairs
    results = evaluate_voe(
        PhysicsEvalConfig(run=ctx.run, out=ctx.out, pairs=pairs, device=ctx.device)
    )
    props = results["properties"]
    scorers = ["model", *next(iter(props.values()))["baselines"]]

    def block(prop: dict[str, Any], who: str) -> dict[str, Any]:
        return prop if who == "model" else prop["baselines"][who]

    return {
        "protocol": results["protocol"],
        "seeds": {name: p["seeds"] for name, p in props.items()},
        "metrics": {name: accuracy_metric(p) for name, p in props.items()},
        "baselines": {
            who: {name: accuracy_metric(block(p, who)) for name, p in props.items()}
            for who in scorers[1:]
        },
        "per_pair": {
            who: {name: block(p, who)["scores"] for name, p in props.items()} for who in scorers
        },
        "violation_frames": {name: p["violation_frames"] for name, p in props.items()},
        "details": "voe.json",
        "media": [p["plot"] for p in props.values()],
    }


VERIFY_PAIRS = 2
"""Pairs per property that `bench verify` re-scores (model and untrained encoder)."""


def reproduce_physics(ctx: SuiteRun, reported: dict[str, Any]) -> list[str]:
    from jepaworld.envs.physics_scenes import make_pair
    from jepaworld.physics.evaluate import latent_scorers, load_video_model, score_pairs

    protocol = from_dict(VoEProtocol, reported["protocol"], "physics")
    # an older report lacks later fields (v4: shifts), which from_dict fills with today's
    # defaults: only a report of this version can be re-scored as it was scored
    if protocol.version != VoEProtocol.version:
        return [
            f"physics: the report was scored under {protocol.name} v{protocol.version}, this "
            f"jepaworld scores v{VoEProtocol.version} (other pairs or other scoring) and cannot "
            "re-run it; verify with the jepaworld version that made the report"
        ]
    model, _ = load_video_model(ctx.run, ctx.device, protocol)
    scorers = latent_scorers(model, protocol)
    pairs = [
        make_pair(prop, seed)
        for prop, seeds in reported["seeds"].items()
        for seed in seeds[:VERIFY_PAIRS]
    ]
    problems = []
    for prop, per in score_pairs(pairs, scorers, protocol).items():
        for who, scores in per.items():
            old = reported["per_pair"][who][prop]
            want = np.stack([old["possible"], old["impossible"]], axis=1)[: len(scores)]
            if not np.allclose(scores, want, rtol=SCORE_RTOL, atol=1e-7):
                problems.append(
                    f"physics: {who} scores of the first {len(scores)} {prop} pairs are "
                    f"{scores.round(6).tolist()}, the report says {want.round(6).tolist()}"
                )
    return problems


# ---- registry --------------------------------------------------------------------------------

SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite("two_room", "Two-Room goal reaching", TWO_ROOM, run_two_room, reproduce_two_room),
        Suite("physics", "Intuitive physics (VoE)", PHYSICS, run_physics, reproduce_physics),
        Suite("maze", "Maze, long horizon, with memory", MAZE, run_maze, reproduce_maze),
        Suite("pusht", "PushT manipulation", PUSHT, run_pusht, reproduce_pusht),
    )
}
