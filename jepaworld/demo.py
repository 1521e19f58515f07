"""`jepaworld demo`: collect -> train -> plan in one command, with a summary on screen and on disk."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jepaworld.bench.evaluate import PlanConfig, evaluate
from jepaworld.bench.plan_eval import write_json
from jepaworld.bench.protocols import TwoRoomProtocol
from jepaworld.config import require, to_dict
from jepaworld.data.collect import CollectConfig, collect
from jepaworld.envs.two_room import TwoRoomConfig
from jepaworld.models.world_model import ModelConfig
from jepaworld.train import TrainConfig, train


@dataclass
class DemoConfig:
    """Collect Two-Room data, train a JEPA world model, plan toward goal images, report."""

    out: Path
    """Output directory (data/, run/, eval/, summary.json)."""
    episodes: int = 300
    """Episodes of exploration data to collect."""
    steps: int = 2500
    """Training steps."""
    batch_size: int = 64
    """Training clips per step."""
    eval_episodes: int = 50
    """Evaluation episodes (the protocol's default is 50)."""
    seed: int = 0
    """Seed for data collection, training and planning."""
    workers: int = 1
    """DataLoader workers during training."""
    device: str = "auto"
    """Device: auto, cpu, cuda."""
    model: ModelConfig = field(default_factory=ModelConfig)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        for name in ("episodes", "steps", "batch_size", "eval_episodes"):
            require(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
        protocol = TwoRoomProtocol().with_episodes(self.eval_episodes)
        eval_seeds = protocol.seeds()
        require(
            self.seed + self.episodes <= eval_seeds.start or self.seed >= eval_seeds.stop,
            "seed",
            f"collection seeds {self.seed}..{self.seed + self.episodes - 1} would overlap the "
            f"evaluation seeds {eval_seeds.start}..{eval_seeds.stop - 1}",
        )
        require(
            self.model.image_size == TwoRoomConfig().size,
            "model.image_size",
            f"must be {TwoRoomConfig().size}, the size Two-Room renders",
        )
        require(
            not (self.out / "summary.json").exists(),
            "out",
            f"{self.out} already holds a demo; choose another",
        )


def _summary(
    cfg: DemoConfig, results: dict[str, Any], stages: dict[str, float], wall: float
) -> dict[str, Any]:
    return {
        "success_rate": results["success_rate"],
        "episodes": results["episodes"],
        "protocol": {
            "name": results["protocol"]["name"],
            "version": results["protocol"]["version"],
        },
        "checkpoint_sha256": results["checkpoint_sha256"],
        "wall_seconds": wall,
        "stage_seconds": stages,
        "plan_seconds_mean": results["plan_seconds_mean"],
        "plan_latency_seconds": results["plan_latency_seconds"],
        "baselines": {
            k: {"success_rate": v["success_rate"]} for k, v in results["baselines"].items()
        },
        "results": "eval/results.json",
        "config": to_dict(cfg),
    }


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run the three stages; returns (and writes) the summary."""
    t_start = time.perf_counter()
    stages: dict[str, float] = {}
    t = time.perf_counter()
    collect(CollectConfig(out=cfg.out / "data", episodes=cfg.episodes, seed=cfg.seed))
    stages["collect"] = time.perf_counter() - t
    t = time.perf_counter()
    train(
        TrainConfig(
            data=cfg.out / "data",
            out=cfg.out / "run",
            steps=cfg.steps,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            workers=cfg.workers,
            device=cfg.device,
            model=cfg.model,
        )
    )
    stages["train"] = time.perf_counter() - t
    t = time.perf_counter()
    plan_cfg = PlanConfig(
        run=cfg.out / "run",
        out=cfg.out / "eval",
        episodes=cfg.eval_episodes,
        seed=cfg.seed,
        device=cfg.device,
    )
    results = evaluate(plan_cfg)
    stages["plan"] = time.perf_counter() - t
    summary = _summary(cfg, results, stages, time.perf_counter() - t_start)
    write_json(cfg.out / "summary.json", summary)
    return summary


def format_table(summary: dict[str, Any]) -> str:
    """A short on-screen table of the demo's outcome."""
    rows = [("world model + CEM", summary["success_rate"])]
    rows += [
        (name.replace("_", " "), b["success_rate"]) for name, b in summary["baselines"].items()
    ]
    proto = summary["protocol"]
    lines = [
        f"Two-Room goal reaching ({proto['name']} v{proto['version']}, {summary['episodes']} episodes)",
        f"{'policy':<22}{'success':>8}",
    ]
    lines += [f"{name:<22}{rate:>8.2f}" for name, rate in rows]
    st = summary["stage_seconds"]
    lines.append(
        f"time: collect {st['collect']:.0f}s, train {st['train']:.0f}s, plan {st['plan']:.0f}s, "
        f"total {summary['wall_seconds']:.0f}s; {summary['plan_seconds_mean']:.3f}s per plan (batched)"
    )
    lines.append(f"checkpoint sha256 {summary['checkpoint_sha256'][:16]}...")
    return "\n".join(lines)
