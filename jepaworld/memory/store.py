"""The persistent experience store: embeddings of observed frames in one SQLite file.

SQLite gives one file, atomic transactions, crash recovery and one writer beside many readers (WAL)
from the standard library. Search does not run in SQL: a store keeps one model's embedding matrix in
RAM as a contiguous float32 tensor and scans it exactly in torch (a few ms at 1e5 entries, D=64).

Schema version 1 (PRAGMA user_version; PRAGMA application_id 0x4A574D45 "JWME" and a meta row
format = "jepaworld.memory" mark the file as ours)::

    models(id INTEGER PRIMARY KEY, sha256 TEXT UNIQUE, dim INTEGER, created REAL)
    entries(id INTEGER PRIMARY KEY, model -> models.id, source TEXT, episode, step,
            action BLOB (A float32 LE), embedding BLOB (D float32 LE), thumbnail BLOB (PNG))
        UNIQUE (model, source, episode, step); INDEX (model)

Entries name their model by a small integer, not the 64-character sha256 in every row and index
(smaller file, faster inserts); the API speaks sha256 only. `source` is in the unique key so two
datasets with the same episode numbers can share a memory. The index on `model` ends in the rowid,
so `MAX(id) WHERE model = ?` is one b-tree seek (~2 us): how a reader notices new entries.

Durability: WAL with synchronous=FULL. NORMAL already survives a killed process (a commit sits in
the OS page cache) but a power cut may roll back the last commits; FULL fsyncs the WAL at every
commit, and since one `insert` call is one transaction the fsync is paid per batch, not per entry.
Entries are append-only (no update or delete), so a cached matrix stays valid and a reader refreshes
it by loading only ids above the largest one it holds.
"""

from __future__ import annotations

import io
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from jepaworld.config import require

FORMAT = "jepaworld.memory"
SCHEMA_VERSION = 1
APPLICATION_ID = 0x4A574D45  # "JWME" in the SQLite header, so a memory is recognisable as one
SQLITE_MAGIC = b"SQLite format 3\x00"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BUSY_TIMEOUT_S = 30.0  # a reader or a second writer waits this long for the write lock
REFINE = 16  # extra candidates re-ranked with exact differences (the fast expansion rounds)
BLOCK = 1 << 24  # float32 elements of one (queries, entries) score block: 64 MiB
_SYNC = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
_ENTRY_KEYS = (
    "id",
    "model_sha256",
    "source",
    "episode",
    "step",
    "action",
    "embedding",
    "thumbnail",
)

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE models (id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL UNIQUE,"
    " dim INTEGER NOT NULL, created REAL NOT NULL)",
    "CREATE TABLE entries (id INTEGER PRIMARY KEY, model INTEGER NOT NULL REFERENCES models(id),"
    " source TEXT NOT NULL, episode INTEGER NOT NULL, step INTEGER NOT NULL, action BLOB,"
    " embedding BLOB NOT NULL, thumbnail BLOB, UNIQUE (model, source, episode, step))",
    "CREATE INDEX entries_model ON entries (model)",
)


class MemoryFormatError(ValueError):
    """A file is not a jepaworld memory this code can read (foreign, corrupt or newer).

    The message names the file. Opening never turns such a file into an empty memory."""


class UnknownModelError(LookupError):
    """The memory holds no embeddings of the asked model; the message lists the models it holds.

    Embeddings of different checkpoints live in different spaces, so there is no fallback: the
    caller must re-embed the stored observations with the model it has."""


def encode_thumbnail(frame: np.ndarray, size: int = 32) -> bytes:
    """uint8 frame (H, W, 3) -> PNG bytes of a (size, size, 3) thumbnail (~1-3 KB at 32 px)."""
    from PIL import Image

    require(
        frame.ndim == 3 and frame.shape[-1] == 3 and frame.dtype == np.uint8,
        "frame",
        f"must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}",
    )
    buf = io.BytesIO()
    Image.fromarray(frame).resize((size, size), Image.BILINEAR).save(buf, format="PNG")
    return buf.getvalue()


def decode_thumbnail(data: bytes) -> np.ndarray:
    """PNG bytes -> uint8 image (h, w, 3)."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@dataclass
class _Cache:
    """One model's embeddings in RAM; buffers grow geometrically so appending costs O(new)."""

    emb: torch.Tensor  # (cap, D) float32
    sqnorm: torch.Tensor  # (cap,) squared norms, computed once per entry
    ids: torch.Tensor  # (cap,) int64
    n: int = 0
    max_id: int = 0

    @classmethod
    def empty(cls, dim: int) -> _Cache:
        return cls(torch.empty(0, dim), torch.empty(0), torch.empty(0, dtype=torch.int64))

    def append(self, ids: np.ndarray, emb: np.ndarray) -> None:
        """ids (M,) increasing, emb (M, D) float32."""
        m = len(ids)
        if self.n + m > len(self.ids):
            cap = max(2 * len(self.ids), self.n + m, 1024)
            self.emb = _grown(self.emb, cap, self.n)
            self.sqnorm = _grown(self.sqnorm, cap, self.n)
            self.ids = _grown(self.ids, cap, self.n)
        new = self.emb[self.n : self.n + m]  # (M, D) view of the buffer
        new.numpy()[:] = emb  # via numpy: emb may be a read-only view of SQLite's bytes
        self.sqnorm[self.n : self.n + m] = new.square().sum(1)
        self.ids[self.n : self.n + m].numpy()[:] = ids
        self.n += m
        self.max_id = int(ids[-1])


def _grown(t: torch.Tensor, cap: int, n: int) -> torch.Tensor:
    out = torch.empty((cap, *t.shape[1:]), dtype=t.dtype)
    out[:n] = t[:n]
    return out


def knn(
    emb: torch.Tensor, sqnorm: torch.Tensor, queries: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact L2 k nearest rows of emb (M, D) for queries (Q, D) -> distances, rows: (Q, k).

    Ranks by ||e||^2 - 2 q.e (one matmul; ||q||^2 is the same for every row of a query), keeps
    k + REFINE candidates, and re-ranks those by exact differences: the expansion loses digits
    when ||e|| is large, the difference does not, so a stored vector is at distance 0 from itself.
    """
    m = emb.shape[0]
    c = min(m, k + REFINE)
    dists, rows = [], []
    for q in queries.split(max(1, BLOCK // m)):  # bound the (Q, M) score block in memory
        score = torch.addmm(sqnorm, q, emb.T, alpha=-2.0)  # (q, M)
        cand = score.topk(c, dim=1, largest=False, sorted=False).indices  # (q, c)
        exact = (q[:, None, :] - emb[cand]).square().sum(-1)  # (q, c)
        d2, order = exact.topk(k, dim=1, largest=False)  # ascending
        dists.append(d2.sqrt())
        rows.append(cand.gather(1, order))
    return torch.cat(dists), torch.cat(rows)


def _float_matrix(x: Any, name: str, rows: int | None = None) -> np.ndarray:
    """Tensor or array (N, D) -> contiguous little-endian float32 numpy, finite."""
    a = x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)
    a = np.ascontiguousarray(a, dtype="<f4")
    require(a.ndim == 2, name, f"must be 2-D (N, D), got shape {a.shape}")
    require(rows is None or a.shape[0] == rows, name, f"must have {rows} rows, got {a.shape[0]}")
    require(bool(np.isfinite(a).all()), name, "contains NaN or inf")
    return a


def _int_vector(x: Any, n: int, name: str) -> list[int]:
    a = x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)
    require(a.shape == (n,), name, f"must have shape ({n},), got {a.shape}")
    require(n == 0 or np.issubdtype(a.dtype, np.integer), name, f"must be integers, got {a.dtype}")
    return a.astype(np.int64).tolist()


def _is_busy(e: sqlite3.Error) -> bool:
    """Lock contention is not a format problem: let it surface as itself."""
    return "locked" in str(e) or "busy" in str(e)


def _blobs(a: np.ndarray | None, n: int) -> list[bytes | None]:
    """Rows of a float32 (N, X) matrix as N byte strings; None -> N NULLs."""
    return [None] * n if a is None else [row.tobytes() for row in a]


def _checked_thumbnails(thumbnails: Sequence[bytes] | None, n: int) -> Sequence[bytes | None]:
    if thumbnails is None:
        return [None] * n
    require(len(thumbnails) == n, "thumbnails", f"must be {n} PNGs, got {len(thumbnails)}")
    require(
        all(isinstance(t, bytes) and t.startswith(PNG_MAGIC) for t in thumbnails),
        "thumbnails",
        "must be PNG bytes (encode_thumbnail makes them)",
    )
    return thumbnails


class MemoryStore:
    """Embeddings of observed frames, per model sha256, in one SQLite file (WAL mode).

    One writer process and any number of reader processes may hold the same file open; readers see
    every committed `insert`. Open with `MemoryStore.open(path)`; use as a context manager.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, readonly: bool) -> None:
        self._conn = conn
        self.path = path
        self.readonly = readonly
        self._caches: dict[str, _Cache] = {}

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        create: bool = True,
        readonly: bool = False,
        integrity: Literal["quick", "full"] = "quick",
    ) -> MemoryStore:
        """Open (or create, when `create` and not `readonly`) the memory at `path`.

        Raises FileNotFoundError when there is nothing to open, and MemoryFormatError (naming the
        file) for random bytes, another SQLite database, a newer schema or a failed integrity check.
        `integrity="full"` runs PRAGMA integrity_check instead of the faster quick_check.
        """
        path = Path(path)
        exists = path.is_file() and path.stat().st_size > 0
        if not exists and (readonly or not create):
            raise FileNotFoundError(f"{path}: no jepaworld memory here")
        if exists:
            with open(path, "rb") as f:
                if f.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                    raise MemoryFormatError(f"{path}: not a jepaworld memory (not an SQLite file)")
        conn = _connect(path, readonly)
        try:
            _check_integrity(conn, path, full=integrity == "full")
            if not readonly:
                _initialize_if_blank(conn)
            _verify_format(conn, path)
            conn.execute("PRAGMA synchronous=FULL")
            if not readonly and conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as e:
            conn.close()
            if _is_busy(e):
                raise
            raise MemoryFormatError(f"{path}: cannot be read as a jepaworld memory ({e})") from e
        except BaseException:
            conn.close()
            raise
        return cls(conn, path, readonly)

    def close(self) -> None:
        """Close the connection (the last one to close checkpoints the WAL into the file)."""
        self._conn.close()
        self._caches.clear()

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self, full: bool = True) -> None:
        """Run PRAGMA integrity_check (or quick_check); raise MemoryFormatError on a problem."""
        _check_integrity(self._conn, self.path, full)

    def insert(
        self,
        model_sha256: str,
        embeddings: torch.Tensor | np.ndarray,
        episode: torch.Tensor | np.ndarray | Sequence[int],
        step: torch.Tensor | np.ndarray | Sequence[int],
        actions: torch.Tensor | np.ndarray | None = None,
        thumbnails: Sequence[bytes] | None = None,
        source: str = "",
    ) -> int:
        """Store N entries of one model in one transaction; returns N.

        embeddings (N, D) float, episode (N,) and step (N,) integers, actions (N, A) or None,
        thumbnails: N PNG byte strings (see `encode_thumbnail`) or None. The first insert of a sha
        registers its D; a later insert with another D raises ValueError, as does an entry whose
        (model, source, episode, step) is already stored (nothing of that call is kept).
        """
        if self.readonly:
            raise PermissionError(f"{self.path}: memory opened read-only")
        require(_is_sha256(model_sha256), "model_sha256", "must be 64 lowercase hex characters")
        emb = _float_matrix(embeddings, "embeddings")  # (N, D)
        n = emb.shape[0]
        columns = [
            [source] * n,
            _int_vector(episode, n, "episode"),
            _int_vector(step, n, "step"),
            _blobs(None if actions is None else _float_matrix(actions, "actions", rows=n), n),
            _blobs(emb, n),
            _checked_thumbnails(thumbnails, n),
        ]
        if n == 0:
            return 0
        with self._transaction():
            model = self._register(model_sha256, emb.shape[1])
            sql = (
                "INSERT INTO entries (model, source, episode, step, action, embedding, thumbnail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
            )
            try:
                self._conn.executemany(sql, zip([model] * n, *columns, strict=True))
            except sqlite3.IntegrityError as e:
                raise ValueError(
                    f"{self.path}: an entry with the same (model, source={source!r}, episode, step)"
                    f" is already stored ({e}); nothing of this batch was written"
                ) from e
        return n

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock at BEGIN, so a busy writer waits (busy_timeout) up front
        # instead of failing when a read transaction tries to upgrade
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _register(self, sha: str, dim: int) -> int:
        row = self._conn.execute("SELECT id, dim FROM models WHERE sha256 = ?", (sha,)).fetchone()
        if row is None:
            cur = self._conn.execute(
                "INSERT INTO models (sha256, dim, created) VALUES (?, ?, ?)",
                (sha, dim, time.time()),
            )
            return int(cur.lastrowid)
        if row[1] != dim:
            raise ValueError(
                f"{self.path}: model {sha} is stored with embedding dim {row[1]}, got D={dim}"
            )
        return int(row[0])

    def models(self) -> dict[str, int]:
        """sha256 -> embedding dim D of every model with entries."""
        return dict(self._conn.execute("SELECT sha256, dim FROM models ORDER BY id").fetchall())

    def count(self, model_sha256: str | None = None) -> int:
        """Entries stored, of one model or of all."""
        if model_sha256 is None:
            return int(self._conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0])
        sql = "SELECT COUNT(*) FROM entries JOIN models ON models.id = model WHERE sha256 = ?"
        return int(self._conn.execute(sql, (model_sha256,)).fetchone()[0])

    def keys(self, model_sha256: str, source: str | None = None) -> set[tuple[str, int, int]]:
        """(source, episode, step) of every entry of one model (of one source, when given);
        empty for a model the memory does not hold."""
        sql = (
            "SELECT source, episode, step FROM entries JOIN models ON models.id = model"
            " WHERE sha256 = ?"
        )
        args: tuple[str, ...] = (model_sha256,)
        if source is not None:
            sql, args = sql + " AND source = ?", (model_sha256, source)
        return set(self._conn.execute(sql, args).fetchall())

    def states(self, model_sha256: str) -> dict[str, Any]:
        """Every entry of one model, for building a graph: ids, episode, step (N,) int64, source
        (N,) str, embedding (N, D) float32 tensor, in id order. UnknownModelError if none."""
        cache = self._refresh(model_sha256)
        sql = (
            "SELECT entries.id, source, episode, step FROM entries JOIN models"
            " ON models.id = model WHERE sha256 = ? AND entries.id <= ? ORDER BY entries.id"
        )
        rows = self._conn.execute(sql, (model_sha256, int(cache.max_id))).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        if not np.array_equal(ids, cache.ids[: cache.n].numpy()):
            raise MemoryFormatError(
                f"{self.path}: entries of model {model_sha256} changed while read"
            )
        return {
            "ids": ids,
            "source": [r[1] for r in rows],
            "episode": np.array([r[2] for r in rows], dtype=np.int64),
            "step": np.array([r[3] for r in rows], dtype=np.int64),
            "embedding": cache.emb[: cache.n].clone(),
        }

    def stats(self) -> dict[str, Any]:
        """Entries and dim per model, file size (with the WAL), schema version, journal mode."""
        per_model = self._conn.execute(
            "SELECT sha256, dim, created, (SELECT COUNT(*) FROM entries WHERE model = models.id)"
            " FROM models ORDER BY id"
        ).fetchall()
        wal = self.path.with_name(self.path.name + "-wal")
        pragma = lambda name: self._conn.execute(f"PRAGMA {name}").fetchone()[0]  # noqa: E731
        return {
            "path": str(self.path),
            "format": FORMAT,
            "schema_version": pragma("user_version"),
            "journal_mode": pragma("journal_mode"),
            "synchronous": _SYNC.get(pragma("synchronous"), "?"),
            "file_bytes": self.path.stat().st_size + (wal.stat().st_size if wal.exists() else 0),
            "entries": sum(r[3] for r in per_model),
            "models": {s: {"dim": d, "entries": n, "created": c} for s, d, c, n in per_model},
        }

    def nearest(
        self, model_sha256: str, queries: torch.Tensor | np.ndarray, k: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact L2 nearest entries of one model: queries (Q, D) -> distances, ids: (Q, k').

        k' = min(k, entries of that model); distances ascending, float32; ids int64 (see `get`).
        Only that model's embeddings are searched. Raises UnknownModelError when it has none.
        """
        require(k >= 1, "k", f"must be >= 1, got {k}")
        cache = self._refresh(model_sha256)
        dim = cache.emb.shape[1]
        q = torch.from_numpy(_float_matrix(queries, "queries"))  # (Q, D)
        require(q.shape[1] == dim, "queries", f"model {model_sha256} has D={dim}, got {q.shape}")
        with torch.inference_mode():
            emb, sq = cache.emb[: cache.n], cache.sqnorm[: cache.n]
            dists, rows = knn(emb, sq, q, min(k, cache.n))  # (Q, k')
            return dists, cache.ids[rows]

    def _refresh(self, sha: str) -> _Cache:
        """The cached matrix of `sha`, after loading entries committed since the last call."""
        row = self._conn.execute("SELECT id, dim FROM models WHERE sha256 = ?", (sha,)).fetchone()
        if row is None:
            raise UnknownModelError(
                f"{self.path}: the memory holds embeddings of models {list(self.models())}, none of"
                f" model {sha}; embeddings of different checkpoints are not comparable, so re-embed"
                " the stored observations with this model"
            )
        model, dim = row
        cache = self._caches.setdefault(sha, _Cache.empty(dim))
        (latest,) = self._conn.execute(
            "SELECT MAX(id) FROM entries WHERE model = ?", (model,)
        ).fetchone()
        if latest is not None and latest > cache.max_id:
            rows = self._conn.execute(
                "SELECT id, embedding FROM entries WHERE model = ? AND id > ? ORDER BY id",
                (model, cache.max_id),
            ).fetchall()
            blob = b"".join(r[1] for r in rows)
            if len(blob) != 4 * dim * len(rows):
                raise MemoryFormatError(f"{self.path}: embeddings of model {sha} are not {dim}-D")
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            cache.append(ids, np.frombuffer(blob, dtype="<f4").reshape(len(rows), dim))
        if cache.n == 0:
            raise UnknownModelError(f"{self.path}: model {sha} has no entries; re-embed")
        return cache

    def get(self, ids: torch.Tensor | np.ndarray | Sequence[int]) -> list[dict[str, Any]]:
        """Entries by id (any shape, flattened), in that order.

        Each: id, model_sha256, source, episode, step, action (A,) float32 or None,
        embedding (D,) float32, thumbnail PNG bytes or None. A missing id raises KeyError.
        """
        flat = ids.reshape(-1).tolist() if hasattr(ids, "reshape") else list(ids)
        wanted = [int(i) for i in flat]
        found: dict[int, dict[str, Any]] = {}
        unique = sorted(set(wanted))
        for start in range(0, len(unique), 500):  # stay under SQLite's bound-parameter limit
            chunk = unique[start : start + 500]
            sql = (
                "SELECT entries.id, sha256, source, episode, step, action, embedding, thumbnail"
                " FROM entries JOIN models ON models.id = model"
                f" WHERE entries.id IN ({','.join('?' * len(chunk))})"
            )
            for row in self._conn.execute(sql, chunk):
                entry = dict(zip(_ENTRY_KEYS, row, strict=True))
                for key in ("action", "embedding"):  # float32 blobs -> (A,), (D,) arrays
                    blob = entry[key]
                    entry[key] = None if blob is None else np.frombuffer(blob, dtype="<f4").copy()
                found[entry["id"]] = entry
        missing = [i for i in unique if i not in found]
        if missing:
            raise KeyError(f"{self.path}: no entries with ids {missing[:10]}")
        return [found[i] for i in wanted]


def _is_sha256(s: object) -> bool:
    return isinstance(s, str) and len(s) == 64 and all(c in "0123456789abcdef" for c in s)


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    # isolation_level=None: no implicit BEGIN; writes use explicit BEGIN IMMEDIATE / COMMIT
    if readonly:
        target, uri = path.resolve().as_uri() + "?mode=ro", True
    else:
        target, uri = str(path), False
    conn = sqlite3.connect(target, uri=uri, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    return conn


def _check_integrity(conn: sqlite3.Connection, path: Path, full: bool) -> None:
    rows = conn.execute("PRAGMA integrity_check" if full else "PRAGMA quick_check").fetchall()
    if [r[0] for r in rows] != ["ok"]:
        problems = "; ".join(str(r[0]) for r in rows[:5])
        raise MemoryFormatError(f"{path}: the memory file is damaged ({problems})")


def _initialize_if_blank(conn: sqlite3.Connection) -> None:
    """Create the schema in a new (or zero-length) database, in one transaction, so a crash leaves
    nothing or all of it. Anything else is left untouched for `_verify_format` to judge; a second
    process creating the same file at once re-checks under the write lock."""
    pragma = lambda name: conn.execute(f"PRAGMA {name}").fetchone()[0]  # noqa: E731
    objects = "SELECT COUNT(*) FROM sqlite_master"
    if conn.execute(objects).fetchone()[0] or pragma("user_version") or pragma("application_id"):
        return
    conn.execute("PRAGMA journal_mode=WAL")  # cannot change inside a transaction
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute(objects).fetchone()[0] == 0:
            for sql in _SCHEMA:
                conn.execute(sql)
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [("format", FORMAT), ("schema_version", str(SCHEMA_VERSION))],
            )
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _verify_format(conn: sqlite3.Connection, path: Path) -> None:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    app = conn.execute("PRAGMA application_id").fetchone()[0]
    mark = None
    if "meta" in tables:
        row = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        mark = row and row[0]
    if app != APPLICATION_ID or mark != FORMAT:
        raise MemoryFormatError(
            f"{path}: not a jepaworld memory (an SQLite database without the {FORMAT!r} format"
            f" mark; its tables: {sorted(tables)})"
        )
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise MemoryFormatError(
            f"{path}: memory schema version {version} is newer than this jepaworld reads"
            f" ({SCHEMA_VERSION}); upgrade jepaworld to open it"
        )
    if version != SCHEMA_VERSION:
        raise MemoryFormatError(f"{path}: unknown memory schema version {version}")
