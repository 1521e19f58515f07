"""MemoryStore: exact search, model isolation, durability under SIGKILL, refusal of foreign files,
one writer beside readers."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from jepaworld.memory.store import (
    MemoryFormatError,
    MemoryStore,
    UnknownModelError,
    decode_thumbnail,
    encode_thumbnail,
)

ROOT = Path(__file__).resolve().parents[2]
SHA_A, SHA_B = "a" * 64, "b" * 64


def fill(store: MemoryStore, sha: str, emb: np.ndarray, source: str = "") -> None:
    n = len(emb)
    store.insert(sha, emb, np.arange(n) // 10, np.arange(n) % 10, source=source)


def child(script: str, *args: str) -> subprocess.Popen:
    """A Python child with the repo importable; its stdout is a line-buffered pipe."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    code = textwrap.dedent(script)
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], env=env, stdout=subprocess.PIPE, text=True
    )


# a writer that inserts batches of 200 and reports each commit; argv: path, seconds (0 = forever)
WRITER = """
    import sys, time
    import numpy as np
    from jepaworld.memory.store import MemoryStore
    path, seconds = sys.argv[1], float(sys.argv[2])
    rng = np.random.default_rng(0)
    end = time.monotonic() + seconds if seconds else float("inf")
    with MemoryStore.open(path) as store:
        total, batch = 0, 0
        while time.monotonic() < end:
            store.insert("a" * 64, rng.standard_normal((200, 16)), np.full(200, batch),
                         np.arange(200), actions=rng.standard_normal((200, 2)))
            total, batch = total + 200, batch + 1
            print(total, flush=True)
    print("done", total, flush=True)
"""


def test_nearest_of_a_stored_embedding_is_itself(tmp_path: Path) -> None:
    # far from the origin: the ||e||^2 - 2 q.e expansion alone would not give exactly 0
    emb = np.random.default_rng(0).standard_normal((500, 32)).astype(np.float32) + 100.0
    with MemoryStore.open(tmp_path / "m.db") as store:
        fill(store, SHA_A, emb)
        dist, ids = store.nearest(SHA_A, torch.from_numpy(emb), k=3)
        assert dist.shape == ids.shape == (500, 3)
        assert torch.all(dist[:, 0] == 0)
        rows = store.get(ids[:, 0])
        assert np.array_equal(np.stack([r["embedding"] for r in rows]), emb)
        assert [(r["episode"], r["step"]) for r in rows[:12]] == [
            (i // 10, i % 10) for i in range(12)
        ]


def test_nearest_agrees_with_brute_force(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((3000, 16)).astype(np.float32)
    queries = rng.standard_normal((40, 16)).astype(np.float32)
    with MemoryStore.open(tmp_path / "m.db") as store:
        fill(store, SHA_A, emb[:1000])
        store.nearest(SHA_A, queries, k=1)  # builds the cache; later inserts must refresh it
        fill(store, SHA_A, emb[1000:], source="second")
        dist, ids = store.nearest(SHA_A, queries, k=10)
        too_many = store.nearest(SHA_A, queries[:1], k=10_000)[1]
    d = np.sqrt(((queries[:, None, :].astype(np.float64) - emb[None]) ** 2).sum(-1))  # (Q, M)
    order = np.argsort(d, axis=1)[:, :10]
    assert np.array_equal(ids.numpy() - 1, order)  # ids count from 1 in insertion order
    np.testing.assert_allclose(dist.numpy(), np.take_along_axis(d, order, 1), rtol=1e-5)
    assert too_many.shape == (1, 3000)


def test_models_are_isolated_and_unknown_model_names_the_known(tmp_path: Path) -> None:
    emb = np.random.default_rng(2).standard_normal((100, 8)).astype(np.float32)
    with MemoryStore.open(tmp_path / "m.db") as store:
        fill(store, SHA_A, emb)
        fill(store, SHA_B, emb + 0.5)  # B's entries are the nearest ones to A's queries + 0.5
        a_ids = {r["id"] for r in store.get(range(1, 101))}
        _, ids = store.nearest(SHA_A, emb + 0.5, k=100)
        assert set(ids.flatten().tolist()) == a_ids
        _, ids = store.nearest(SHA_B, emb, k=100)
        assert not set(ids.flatten().tolist()) & a_ids
        assert {r["model_sha256"] for r in store.get(ids)} == {SHA_B}
        assert store.models() == {SHA_A: 8, SHA_B: 8}
        assert store.count(SHA_A) == store.count(SHA_B) == 100 and store.count() == 200
        with pytest.raises(UnknownModelError, match="re-embed") as err:
            store.nearest("c" * 64, emb[:1], k=1)
        assert SHA_A in str(err.value) and SHA_B in str(err.value)


def test_dim_mismatch_duplicates_and_readonly_writes_are_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    with MemoryStore.open(tmp_path / "m.db") as store:
        fill(store, SHA_A, rng.standard_normal((20, 8)))
        with pytest.raises(ValueError, match="dim 8"):
            store.insert(SHA_A, rng.standard_normal((5, 16)), np.arange(5), np.full(5, 99))
        with pytest.raises(ValueError, match="already stored"):  # (episode 1, step 0) exists
            store.insert(SHA_A, rng.standard_normal((2, 8)), [1, 50], [0, 0])
        assert store.count() == 20  # nothing of either refused batch was written
    with MemoryStore.open(tmp_path / "m.db", readonly=True) as store:
        with pytest.raises(PermissionError):
            fill(store, SHA_B, rng.standard_normal((2, 8)))
        assert store.stats()["models"][SHA_A]["entries"] == 20


def test_thumbnails_and_actions_roundtrip(tmp_path: Path) -> None:
    frames = np.random.default_rng(4).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    thumbs = [encode_thumbnail(f) for f in frames]
    with MemoryStore.open(tmp_path / "m.db") as store:
        store.insert(SHA_A, np.eye(3, 4), [0, 0, 0], [0, 1, 2], np.ones((3, 2)), thumbs, "live")
        rows = store.get([3, 1])
        stats = store.stats()
    assert [r["step"] for r in rows] == [2, 0] and rows[0]["source"] == "live"
    assert rows[0]["thumbnail"] == thumbs[2] and decode_thumbnail(thumbs[2]).shape == (32, 32, 3)
    assert np.array_equal(rows[1]["action"], np.ones(2, np.float32))
    assert stats["journal_mode"] == "wal" and stats["synchronous"] == "FULL"
    assert stats["schema_version"] == 1 and stats["file_bytes"] > 0


def test_random_bytes_and_foreign_sqlite_are_refused_untouched(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(np.random.default_rng(5).bytes(8192))
    before = junk.read_bytes()
    with pytest.raises(MemoryFormatError, match=str(junk)):
        MemoryStore.open(junk)
    assert junk.read_bytes() == before

    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    with pytest.raises(MemoryFormatError, match=f"{foreign}.*users"):
        MemoryStore.open(foreign)
    with sqlite3.connect(foreign) as conn:  # not switched to WAL, no tables added
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("users",)]


def test_newer_schema_and_damaged_pages_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with MemoryStore.open(path) as store:
        fill(store, SHA_A, np.random.default_rng(6).standard_normal((2000, 16)))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 2")
    with pytest.raises(MemoryFormatError, match=f"{path}.*newer"):
        MemoryStore.open(path)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 1")
    MemoryStore.open(path).close()

    data = bytearray(path.read_bytes())
    page = 4096
    data[3 * page : 6 * page] = np.random.default_rng(7).bytes(3 * page)  # b-tree pages
    path.write_bytes(bytes(data))
    with pytest.raises(MemoryFormatError, match=str(path)):
        MemoryStore.open(path)
    with pytest.raises(FileNotFoundError):
        MemoryStore.open(tmp_path / "absent.db", create=False)


def test_committed_entries_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    proc = child(WRITER, str(path), "0")
    try:
        reported = [int(proc.stdout.readline()) for _ in range(8)]  # committed counts
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    with MemoryStore.open(path, integrity="full") as store:
        n = store.count(SHA_A)
        assert n >= reported[-1] and n % 200 == 0  # every reported commit, no partial batch
        assert store.nearest(SHA_A, np.zeros((1, 16)), k=5)[1].shape == (1, 5)


def test_readers_see_commits_while_a_process_writes(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    proc = child(WRITER, str(path), "2")
    try:
        assert int(proc.stdout.readline()) == 200  # the first commit exists
        seen, queries = [], np.random.default_rng(8).standard_normal((4, 16))
        with MemoryStore.open(path, readonly=True) as reader:
            while proc.poll() is None:
                seen.append(reader.count(SHA_A))
                dist, ids = reader.nearest(SHA_A, queries, k=3)
                assert torch.all(dist[:, :-1] <= dist[:, 1:])
                assert len(reader.get(ids)) == 12
                time.sleep(0.01)
            final = int(proc.stdout.read().split()[-1])
            assert reader.count(SHA_A) == final
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == 0
    assert len(seen) > 10 and seen == sorted(seen) and seen[-1] > seen[0]
