"""`jepaworld demo`: the whole product in one command.

Collect data in every chosen domain (Two-Room and the maze by exploration, physics videos by the
scene generator), train **one** world model on the mixture, then `bench` that checkpoint on every
suite. With one domain it is the foundation's demo (collect -> train -> bench). DIR holds data/<domain>/,
run/, bench/ (report.json, report.html, suites/) and summary.json.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jepaworld.bench.plan_eval import write_json
from jepaworld.bench.protocols import MazeProtocol, TwoRoomProtocol
from jepaworld.bench.run import BenchConfig, run_bench
from jepaworld.config import require, to_dict
from jepaworld.data.collect import CollectConfig, collect
from jepaworld.envs.two_room import TwoRoomConfig
from jepaworld.models.world_model import ModelConfig
from jepaworld.train import TrainConfig, train

DOMAINS = ("two_room", "maze", "physics")


@dataclass
class DemoConfig:
    """Collect data in each domain, train one world model on all of it, bench it on every suite."""

    out: Path
    """Output directory (data/, run/, bench/, summary.json)."""
    domains: tuple[str, ...] = DOMAINS
    """Domains to collect and train on: two_room, maze, physics (one model for all)."""
    episodes: int = 300
    """Two-Room exploration episodes."""
    maze_episodes: int = 400
    """Maze exploration episodes."""
    videos: int = 1000
    """Physics training videos."""
    steps: int = 2500
    """Training steps (each clip of a batch from a domain drawn by weight)."""
    batch_size: int = 64
    """Training clips per step."""
    clip_frames: int = 4
    """Model steps per training clip, in every domain."""
    weights: tuple[float, ...] = ()
    """Sampling weight of each domain, in --domains order (default: equal)."""
    eval_episodes: int = 50
    """Episodes per planning suite and pairs per physics property (the protocols' default: 50)."""
    performance: bool = True
    """Measure the report's performance section."""
    seed: int = 0
    """Seed for data collection, training and planning."""
    workers: int = 1
    """DataLoader workers during training."""
    device: str = "auto"
    """Device: auto, cpu, cuda."""
    model: ModelConfig = field(default_factory=ModelConfig)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.domains, self.weights = tuple(self.domains), tuple(self.weights)
        unknown = sorted(set(self.domains) - set(DOMAINS))
        require(not unknown, "domains", f"unknown {unknown}; known: {', '.join(DOMAINS)}")
        require(len(set(self.domains)) == len(self.domains) > 0, "domains", "give each once")
        require(
            not self.weights or len(self.weights) == len(self.domains),
            "weights",
            f"one per domain ({len(self.domains)}), got {len(self.weights)}",
        )
        for name in ("episodes", "maze_episodes", "videos", "steps", "batch_size", "eval_episodes"):
            require(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
        # TrainConfig checks this too, but only after every domain's data has been collected
        require(
            2 <= self.clip_frames <= self.model.max_len,
            "clip_frames",
            f"must be in [2, model.max_len={self.model.max_len}], got {self.clip_frames}",
        )
        for count, protocol in ((self.episodes, TwoRoomProtocol()), (self.maze_episodes, MazeProtocol())):  # fmt: skip
            seeds = protocol.with_episodes(self.eval_episodes).seeds()
            require(
                self.seed + count <= seeds.start or self.seed >= seeds.stop,
                "seed",
                f"collection seeds {self.seed}..{self.seed + count - 1} would overlap the "
                f"evaluation seeds {seeds.start}..{seeds.stop - 1}",
            )
        size = TwoRoomConfig().size
        require(
            self.model.image_size == size,
            "model.image_size",
            f"must be {size}, the size Two-Room and the physics scenes render",
        )
        require(
            not (self.out / "summary.json").exists(),
            "out",
            f"{self.out} already holds a demo; choose another",
        )


def collect_domain(name: str, cfg: DemoConfig) -> Path:
    """Collect (or generate) one domain's training data; returns its dataset directory."""
    out = cfg.out / "data" / name
    if name == "two_room":
        collect(CollectConfig(out=out, episodes=cfg.episodes, seed=cfg.seed))
        return out
    if name == "maze":  # stored at the model's size: 128 px frames would overflow the cache
        maze = CollectConfig(
            out=out,
            env="jepaworld/Maze-v0",
            episodes=cfg.maze_episodes,
            seed=cfg.seed,
            image_size=cfg.model.image_size,
        )
        collect(maze)
        return out
    from jepaworld.physics.make import PhysicsMakeConfig, make_physics_data

    make_physics_data(PhysicsMakeConfig(out=out, videos=cfg.videos, pairs=1, seed=cfg.seed))
    return out / "train"


def _summary(
    cfg: DemoConfig, report: dict[str, Any], stages: dict[str, float], wall: float
) -> dict[str, Any]:
    suites = {}
    for name, s in report["suites"].items():
        entry: dict[str, Any] = {"status": s["status"]}
        if s["status"] == "ok":
            entry["protocol"] = f"{s['protocol']['name']} v{s['protocol']['version']}"
            entry["metrics"] = {k: m["value"] for k, m in s["metrics"].items()}
            entry["baselines"] = {
                who: {k: m["value"] for k, m in b.items()} for who, b in s["baselines"].items()
            }
        suites[name] = entry
    return {
        "domains": list(cfg.domains),
        "checkpoint_sha256": report["checkpoint"]["sha256"],
        "wall_seconds": wall,
        "stage_seconds": stages,
        "suites": suites,
        "report": "bench/report.json",
        "config": to_dict(cfg),
    }


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Collect, train, bench; returns (and writes) the summary."""
    t_start = time.perf_counter()
    stages: dict[str, float] = {}
    data = []
    for name in cfg.domains:
        t = time.perf_counter()
        data.append(collect_domain(name, cfg))
        stages[f"collect_{name}"] = time.perf_counter() - t
    t = time.perf_counter()
    train(
        TrainConfig(
            data=data[0],
            mix=tuple(data[1:]),
            mix_weights=cfg.weights if len(data) > 1 else (),
            out=cfg.out / "run",
            steps=cfg.steps,
            batch_size=cfg.batch_size,
            clip_frames=cfg.clip_frames,
            seed=cfg.seed,
            workers=cfg.workers,
            device=cfg.device,
            model=cfg.model,
        )
    )
    stages["train"] = time.perf_counter() - t
    t = time.perf_counter()
    report = run_bench(
        BenchConfig(
            run=cfg.out / "run",
            out=cfg.out / "bench",
            episodes=cfg.eval_episodes,
            seed=cfg.seed,
            performance=cfg.performance,
            device=cfg.device,
        )
    )
    stages["bench"] = time.perf_counter() - t
    summary = _summary(cfg, report, stages, time.perf_counter() - t_start)
    write_json(cfg.out / "summary.json", summary)
    return summary


def format_table(summary: dict[str, Any]) -> str:
    """A short on-screen table: each suite's model metrics against its baselines."""
    lines = [
        f"one checkpoint ({summary['checkpoint_sha256'][:16]}...) trained on {', '.join(summary['domains'])}"
    ]
    for name, s in summary["suites"].items():
        if s["status"] != "ok":
            lines.append(f"{name:>9}: {s['status']}")
            continue
        cells = ", ".join(f"{k} {v:.2f}" for k, v in s["metrics"].items())
        base = "; ".join(
            f"{who} " + ", ".join(f"{v:.2f}" for v in b.values())
            for who, b in s["baselines"].items()
        )
        lines.append(f"{name:>9}: {cells}  [{s['protocol']}; baselines: {base}]")
    st = summary["stage_seconds"]
    lines.append(
        "time: "
        + ", ".join(f"{k} {v:.0f}s" for k, v in st.items())
        + f"; total {summary['wall_seconds']:.0f}s"
    )
    lines.append(f"report: {summary['report']} (and report.html beside it)")
    return "\n".join(lines)
