"""Speed of the persistent memory (jepaworld.memory.store) on this machine, in one process.

What is measured, on random float32 embeddings (D=64 by default, actions A=2):

1. **insert rate** - entries/s of `MemoryStore.insert` in batches (one transaction and one WAL
   fsync per batch, synchronous=FULL), into a fresh file, up to `--entries` (100k); and the same
   with a 32x32 PNG thumbnail per entry, on at most 10k entries (PNG encoding not timed).
2. **open** - seconds to reopen the full file (the open runs PRAGMA quick_check).
3. **cache load** - the first `nearest` of a fresh store reads the model's matrix with one SELECT.
4. **single queries** - p50 / p95 seconds of `nearest(k=10)` for one query, over `--queries` (200)
   noisy copies of stored embeddings, after the cache is warm.
5. **batched queries** - seconds per query when Q=64 queries go in one call (median of repeats).
6. **file size** - bytes of the database file after close (WAL checkpointed into it).

Targets (issue: Persistent memory and long-horizon planning): query p50 <= 10 ms at 100k entries,
inserts >= 10k entries/s batched.

Usage::

    python benchmarks/memory.py            # writes benchmarks/results/memory.json
    python benchmarks/memory.py --quick    # 10k entries, 50 queries (a few seconds)
    python benchmarks/memory.py --threads 1

On a CPU shared with other jobs, two torch threads can make a 1 ms query take 8-16 ms (each small
op waits for a descheduled OpenMP thread); `--threads 1` shows the cost of the work itself.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jepaworld.bench.machine import environment, peak_rss_mib
from jepaworld.memory.store import MemoryStore, encode_thumbnail

SHA = "0" * 64
TARGET_P50_S, TARGET_INSERTS_PER_S = 0.010, 10_000.0


def measure_inserts(
    path: Path, emb: np.ndarray, batch: int, thumbnails: list[bytes] | None = None
) -> float:
    """Entries per second of batched inserts of emb (N, D) into a fresh memory at `path`."""
    n = len(emb)
    actions = np.random.default_rng(1).standard_normal((n, 2)).astype(np.float32)  # (N, A)
    ids = np.arange(n)
    with MemoryStore.open(path) as store:
        start = time.perf_counter()
        for i in range(0, n, batch):
            sl = slice(i, i + batch)
            thumbs = None if thumbnails is None else thumbnails[sl]
            store.insert(SHA, emb[sl], ids[sl] // 100, ids[sl] % 100, actions[sl], thumbs)
        return n / (time.perf_counter() - start)


def measure_queries(path: Path, emb: np.ndarray, queries: int, k: int = 10) -> dict[str, Any]:
    """Open time, cache load, single-query p50/p95 and batched per-query cost on the file."""
    rng = np.random.default_rng(2)
    pick = rng.integers(0, len(emb), queries)
    qs = torch.from_numpy(emb[pick] + 0.05 * rng.standard_normal(emb[pick].shape, np.float32))
    start = time.perf_counter()
    store = MemoryStore.open(path)
    opened = time.perf_counter() - start
    with store:
        start = time.perf_counter()
        store.nearest(SHA, qs[:1], k)
        load = time.perf_counter() - start
        single = []
        for q in qs.split(1):  # (1, D)
            start = time.perf_counter()
            store.nearest(SHA, q, k)
            single.append(time.perf_counter() - start)
        batched = []
        q64 = qs.repeat(1 + 64 // len(qs), 1)[:64]  # (64, D)
        for _ in range(max(5, queries // 20)):
            start = time.perf_counter()
            store.nearest(SHA, q64, k)
            batched.append(time.perf_counter() - start)
    p50, p95 = np.percentile(single, [50, 95])
    return {
        "open_s": opened,
        "cache_load_s": load,
        "k": k,
        "single": {"queries": queries, "p50_s": float(p50), "p95_s": float(p95)},
        "batch": {"q": 64, "seconds_per_query": float(np.median(batched)) / 64},
    }


def format_table(r: dict[str, Any]) -> str:
    q = r["query"]
    rows = [
        ("entries", f"{r['entries']:,} x D={r['dim']}"),
        ("torch threads", str(r["environment"]["threads"])),
        ("insert (batched)", f"{r['insert']['entries_per_s']:,.0f} entries/s"),
        ("insert + 32px PNG", f"{r['insert_thumbnails']['entries_per_s']:,.0f} entries/s"),
        ("open (quick_check)", f"{q['open_s'] * 1e3:.1f} ms"),
        ("cache load", f"{q['cache_load_s'] * 1e3:.1f} ms"),
        ("nearest Q=1 p50", f"{q['single']['p50_s'] * 1e3:.2f} ms"),
        ("nearest Q=1 p95", f"{q['single']['p95_s'] * 1e3:.2f} ms"),
        ("nearest Q=64 / query", f"{q['batch']['seconds_per_query'] * 1e3:.3f} ms"),
        ("file size", f"{r['file_bytes'] / 2**20:.1f} MiB"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/memory.json"))
    parser.add_argument("--quick", action="store_true", help="10k entries, 50 queries")
    parser.add_argument("--entries", type=int, default=None, help="default 100k (quick: 10k)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1000, help="entries per insert call")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's choice)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    n = args.entries or (10_000 if args.quick else 100_000)
    queries = 50 if args.quick else 200
    env = environment(torch.device("cpu"))
    emb = np.random.default_rng(0).standard_normal((n, args.dim)).astype(np.float32)  # (N, D)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "memory.db"
        rate = measure_inserts(path, emb, args.batch)
        query = measure_queries(path, emb, queries)
        file_bytes = path.stat().st_size
        m = min(n, 10_000)
        frames = np.random.default_rng(3).integers(0, 256, (m, 64, 64, 3), dtype=np.uint8)
        thumbs = [encode_thumbnail(f) for f in frames]
        thumb_path = Path(tmp) / "thumbs.db"
        thumb_rate = measure_inserts(thumb_path, emb[:m], args.batch, thumbs)
        thumb_bytes = thumb_path.stat().st_size
    p50 = query["single"]["p50_s"]
    result = {
        "environment": env,
        "quick": args.quick,
        "entries": n,
        "dim": args.dim,
        "insert": {"batch": args.batch, "entries_per_s": rate},
        "insert_thumbnails": {"entries": m, "entries_per_s": thumb_rate, "file_bytes": thumb_bytes},
        "query": query,
        "file_bytes": file_bytes,
        "targets": {
            "query_p50_s": {"target": TARGET_P50_S, "pass": p50 <= TARGET_P50_S},
            "inserts_per_s": {"target": TARGET_INSERTS_PER_S, "pass": rate >= TARGET_INSERTS_PER_S},
        },
        "peak_rss_mib": peak_rss_mib(),
    }
    print(format_table(result))
    if env["machine_busy"]:
        print("warning: other processes were busy when this started; timings are disturbed")
    for name, t in result["targets"].items():
        print(f"target {name} {t['target']}: {'PASS' if t['pass'] else 'FAIL'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
