"""How fast a checkpoint's model trains and plans on this machine, measured in the running process.

Used by `jepaworld bench` (the report's `performance` section) and benchmarks/perf.py.

- **matmul peak**: float32 GFLOP/s of square n x n matmuls (2 n^3 FLOPs each) for a fixed wall time
  after a warm-up, at the current torch thread count: the machine's reference peak, measured in the
  same run, so a busy machine lowers the peak and the measurements alike.
- **training**: `train_step` (lr schedule, loss, backward, clipping, AdamW) on one synthetic uint8
  batch shaped like the run's (batch_size clips of clip_frames frames), reused. FLOPs per step are
  counted once by `torch.utils.flop_counter.FlopCounterMode` over forward + backward of the loss
  (matmuls, convolutions and their gradients; elementwise ops, norms and the optimizer step are not
  counted), so achieved GFLOP/s, and its fraction of the peak, are lower bounds on the work done.
  On CPU, glibc malloc is first set to keep freed memory, as `jepaworld train` does
  (`jepaworld/allocator.py`); `malloc_keeps_freed_memory` records whether it was.
  A run trained with --encoder-dtype bfloat16 is timed that way (`encoder_dtype` says which), and
  its fraction is still of the float32 peak: bfloat16 matmuls peak several times higher.
- **plan latency**: one cold-started plan of the Two-Room protocol's CEM + MPC for one problem
  (E=1): the current frame is encoded inside the timing, the goal once outside.
- **memory query latency**: exact nearest-neighbour queries (one query, k=10) on a memory file.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from jepaworld.allocator import keep_freed_memory, keeping_freed_memory
from jepaworld.bench import plan_eval
from jepaworld.bench.protocols import TwoRoomProtocol
from jepaworld.memory.store import MemoryStore
from jepaworld.models.world_model import WorldModel
from jepaworld.train import (
    LossFn,
    TrainConfig,
    autocast_dtype,
    make_optimizer,
    resolve_encoder_dtype,
    train_step,
)

Batch = dict[str, torch.Tensor]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    """Wall seconds of fn(), synchronising CUDA before and after."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def percentiles(seconds: list[float]) -> dict[str, float]:
    a = np.asarray(seconds, float)
    return {
        "repeats": len(a),
        "p50_s": float(np.percentile(a, 50)),
        "p95_s": float(np.percentile(a, 95)),
        "mean_s": float(a.mean()),
    }


def matmul_peak(
    size: int, seconds: float, device: torch.device, dtype: torch.dtype = torch.float32
) -> dict[str, Any]:
    """GFLOP/s of size x size matmuls in `dtype`, repeated for `seconds` after a warm-up."""
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(size, size, generator=g).to(device, dtype) for _ in range(2))
    for _ in range(2):
        a @ b
    sync(device)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
        sync(device)
    elapsed = time.perf_counter() - t0
    return {
        "size": size,
        "dtype": str(dtype).removeprefix("torch."),
        "repeats": reps,
        "seconds": elapsed,
        "gflops": 2 * size**3 * reps / elapsed / 1e9,
    }


def synthetic_batch(cfg: TrainConfig, device: torch.device) -> Batch:
    """Random uint8 frames (B,T,H,W,3) and actions (B,T-1,k*A) shaped like a real batch."""
    m, g = cfg.model, torch.Generator().manual_seed(cfg.seed)
    B, T, S = cfg.batch_size, cfg.clip_frames, m.image_size
    frames = torch.randint(0, 256, (B, T, S, S, 3), generator=g, dtype=torch.uint8)
    actions = torch.rand(B, T - 1, m.frame_stride * m.action_dim, generator=g) * 2 - 1
    batch = {"frames": frames.to(device), "actions": actions.to(device)}
    if m.proprio:  # state vectors wide enough for the entries the model reads
        batch["states"] = torch.randn(B, T, max(m.proprio) + 1, generator=g).to(device)
    return batch


def count_step_flops(model: WorldModel, batch: Batch) -> int:
    """FLOPs of one forward + backward of the training loss (gradients are discarded)."""
    with FlopCounterMode(display=False) as counter:
        loss, _ = model.loss(batch["frames"], batch["actions"], proprio=batch.get("states"))
        loss.backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def new_model(cfg: TrainConfig, device: torch.device) -> tuple[WorldModel, torch.optim.Optimizer]:
    torch.manual_seed(cfg.seed)
    model = WorldModel(cfg.model).to(device).train()
    model.encoder_autocast = autocast_dtype(resolve_encoder_dtype(cfg.encoder_dtype, device))
    opt = make_optimizer(model.parameters(), cfg, device)
    return model, opt


def run_steps(
    model: WorldModel,
    opt: torch.optim.Optimizer,
    batches: Iterator[Batch],
    cfg: TrainConfig,
    warmup: int,
    steps: int,
    device: torch.device,
    loss_fn: LossFn | None = None,
) -> float:
    """Seconds for `steps` train_steps after `warmup` untimed ones; metrics are read every
    `cfg.log_every` steps, as `jepaworld train` reads them. `loss_fn`: see `train_step`."""
    for step in range(warmup):
        train_step(model, opt, next(batches), step, cfg, loss_fn=loss_fn)
    sync(device)
    t0 = time.perf_counter()
    for step in range(warmup, warmup + steps):
        log = (step + 1) % cfg.log_every == 0
        train_step(model, opt, next(batches), step, cfg, log, loss_fn)
    sync(device)
    return time.perf_counter() - t0


def throughput(
    seconds: float, cfg: TrainConfig, steps: int, flops: int, peak: float
) -> dict[str, Any]:
    per_step = seconds / steps
    gflops = flops / per_step / 1e9
    return {
        "steps": steps,
        "seconds_per_step": per_step,
        "samples_per_s": cfg.batch_size / per_step,
        "frames_per_s": cfg.batch_size * cfg.clip_frames / per_step,
        "gflops": gflops,
        "fraction_of_peak": gflops / peak,
    }


def train_throughput(
    cfg: TrainConfig, device: torch.device, peak_gflops: float, warmup: int, steps: int
) -> dict[str, Any]:
    """Model-only training speed of cfg.model at cfg's batch shape (a fresh model: the weights do
    not change the cost)."""
    batch = synthetic_batch(cfg, device)
    model, opt = new_model(cfg, device)
    flops = count_step_flops(model, batch)
    seconds = run_steps(model, opt, itertools.repeat(batch), cfg, warmup, steps, device)
    return {
        "batch_size": cfg.batch_size,
        "clip_frames": cfg.clip_frames,
        "encoder_dtype": resolve_encoder_dtype(cfg.encoder_dtype, device),
        "malloc_keeps_freed_memory": keeping_freed_memory(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "flops_per_step": flops,
        "warmup_steps": warmup,
        **throughput(seconds, cfg, steps, flops, peak_gflops),
    }


@torch.inference_mode()
def plan_seconds(
    model: WorldModel, problems: int, repeats: int, device: torch.device, horizon: int
) -> list[float]:
    """Seconds of `repeats` cold-started Two-Room protocol plans for `problems` random start
    frames and goals (the goals encoded once, outside the timing)."""
    g = torch.Generator().manual_seed(problems)
    S = model.config.image_size
    frames, goals = (
        torch.randint(0, 256, (problems, S, S, 3), generator=g, dtype=torch.uint8).to(device)
        for _ in range(2)
    )
    proprio = model.config.proprio
    states = (
        [torch.randn(problems, max(proprio) + 1, generator=g).to(device) for _ in range(2)]
        if proprio
        else [None, None]
    )  # (E, S) each, for a model that reads proprioception
    mpc = plan_eval.make_mpc(TwoRoomProtocol(), model, model.config.action_dim, horizon)
    z_goal = mpc.encode_frames(goals, states[1])  # (E, D)

    def once() -> None:
        mpc.reset()
        mpc.plan(frames, z_goal, g, proprio=states[0])

    return [timed(once, device) for _ in range(repeats)]


def memory_query_latency(path: Path, sha: str, queries: int, k: int = 10) -> dict[str, Any]:
    """p50/p95 seconds of one-query `nearest` on the memory at `path` (model `sha`), the queries
    being stored embeddings plus small noise; the first query (which loads the cache) is untimed."""
    with MemoryStore.open(path, readonly=True) as store:
        emb = store.states(sha)["embedding"].numpy()  # (N, D)
        rng = np.random.default_rng(2)
        picked = emb[rng.integers(0, len(emb), queries)]
        qs = torch.from_numpy(picked + 0.05 * rng.standard_normal(picked.shape, np.float32))
        store.nearest(sha, qs[:1], k)
        seconds = []
        for q in qs.split(1):  # (1, D)
            t0 = time.perf_counter()
            store.nearest(sha, q, k)
            seconds.append(time.perf_counter() - t0)
    return {"entries": len(emb), "k": k, **percentiles(seconds)}


# ---- the report's performance section -----------------------------------------------------------

PEAK_SIZE, PEAK_SECONDS = 2048, 1.5
TRAIN_WARMUP, TRAIN_STEPS = 2, 5
PLAN_REPEATS, MEMORY_QUERIES, SYNTHETIC_ENTRIES = 10, 200, 10_000


def measure_performance(
    record: dict[str, Any], ckpt: Path, device: torch.device, maze_dir: Path
) -> dict[str, Any]:
    """The bench report's `performance` section for the run's model (see the module docstring).

    Memory latency is measured on the maze suite's memory when it ran (maze_dir), otherwise on a
    temporary memory of SYNTHETIC_ENTRIES random embeddings of the model's width."""
    from jepaworld.config import from_dict

    train_cfg = from_dict(TrainConfig, {**record["train"], "resume": False}, "run config.train")
    if device.type == "cpu":
        keep_freed_memory()  # as `jepaworld train` does on CPU
    peak = matmul_peak(PEAK_SIZE, PEAK_SECONDS, device)
    section: dict[str, Any] = {"matmul": peak, "threads": torch.get_num_threads()}
    section["train"] = train_throughput(
        train_cfg, device, peak["gflops"], TRAIN_WARMUP, TRAIN_STEPS
    )
    section["train"]["target_fraction_of_peak"] = 0.40
    model = WorldModel.from_pretrained(ckpt, map_location=device).eval()
    if model.config.action_dim > 0:
        horizon = TwoRoomProtocol().planner.horizon
        plan_seconds(model, 1, 1, device, horizon)  # warm-up
        single = plan_seconds(model, 1, PLAN_REPEATS, device, horizon)
        section["plan"] = {"horizon": horizon, "problems": 1, **percentiles(single)}
    else:
        section["plan"] = {"not_applicable": "the model takes no actions"}
    section["memory_query"] = _memory_latency(model, ckpt, maze_dir)
    return section


def _memory_latency(model: WorldModel, ckpt: Path, maze_dir: Path) -> dict[str, Any]:
    from jepaworld.bench.suites import MEMORY_FILE
    from jepaworld.data.episodes import sha256_file

    sha = sha256_file(ckpt / "model.safetensors")
    real = maze_dir / MEMORY_FILE
    if real.is_file():
        return {"memory": "maze suite", **memory_query_latency(real, sha, MEMORY_QUERIES)}
    with tempfile.TemporaryDirectory(prefix="jepaworld-perf-") as tmp:
        path = Path(tmp) / "memory.sqlite"
        D = model.config.latent_dim
        emb = np.random.default_rng(0).standard_normal((SYNTHETIC_ENTRIES, D), np.float32)
        ids = np.arange(SYNTHETIC_ENTRIES)
        with MemoryStore.open(path) as store:
            store.insert(sha, emb, ids // 100, ids % 100)
        return {"memory": "synthetic", **memory_query_latency(path, sha, MEMORY_QUERIES)}
