"""Episodes on disk: compressed shards plus a manifest that names and hashes every shard.

Layout of a dataset directory::

    DATA/manifest.json        format version, env id and config, policy, seeds, shapes, shards
    DATA/shard_00000.npz      episodes 0..n-1: arrays frames_i (T,H,W,3) uint8, actions_i (T,A)
                              float32, states_i (T,S) float32 (true state: for evaluation,
                              and the entries a model reads as proprioception, --model.proprio)

Action t is taken after frame t. Shards are written to a temporary name and renamed, the manifest
is written last, so a reader never sees a half-written dataset. Reading is lazy: one episode is
decompressed when asked for, and a bounded LRU cache keeps recently used episodes in RAM. Its default
budget is a quarter of the machine's memory (or of the container's limit, where a cgroup sets one):
training draws clips from random episodes, so a cache smaller than the decompressed dataset
decompresses most episodes again and again (PushT's 1000 episodes are 1.2 GiB: with a 512 MiB cache
1000 training steps took 134 s on two cores, with them all cached 96 s, the loader's worker no
longer taking CPU from the model).
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jepaworld.config import read_json_object

FORMAT = "jepaworld.episodes"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CACHE_FRACTION = 0.25  # of `memory_bytes()`, the default budget of an EpisodeStore's cache
FALLBACK_CACHE_MB = 512.0  # where the memory size cannot be read


class DataError(ValueError):
    """A dataset file is missing, corrupt or inconsistent; the message names the file."""


@dataclass
class Episode:
    """One episode in memory. frames (T,H,W,3) uint8, actions (T,A) float32, states (T,S)."""

    frames: np.ndarray
    actions: np.ndarray
    states: np.ndarray

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
            raise DataError(
                f"frames must be uint8 (T,H,W,3), got {self.frames.dtype} {self.frames.shape}"
            )
        if self.actions.ndim != 2 or len(self.actions) != len(self.frames):
            raise DataError(
                f"actions must be (T,A) with T={len(self.frames)}, got {self.actions.shape}"
            )

    @property
    def nbytes(self) -> int:
        return self.frames.nbytes + self.actions.nbytes + self.states.nbytes


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """Write through a temporary file, fsync, then rename: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A compressed .npz written atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write(path, buffer.getvalue())


def write_shard(path: Path, episodes: list[Episode]) -> dict[str, Any]:
    """Write episodes to one compressed shard atomically; return its manifest entry."""
    arrays: dict[str, np.ndarray] = {}
    for i, ep in enumerate(episodes):
        arrays[f"frames_{i}"] = ep.frames
        arrays[f"actions_{i}"] = ep.actions.astype(np.float32)
        arrays[f"states_{i}"] = ep.states.astype(np.float32)
    write_npz(path, arrays)
    return {
        "file": path.name,
        "episodes": len(episodes),
        "lengths": [len(ep.frames) for ep in episodes],
        "sha256": sha256_file(path),
    }


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Write manifest.json last, atomically: its presence marks a complete dataset."""
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest}
    atomic_write(root / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())


def manifest_sha256(root: Path) -> str:
    """Identity of a dataset: the sha256 of its manifest (which holds every shard's sha256)."""
    return sha256_file(Path(root) / MANIFEST)


def read_versioned_manifest(
    path: Path, fmt: str, version: int, missing_hint: str
) -> dict[str, Any]:
    """A manifest.json of format `fmt` at `version`, or a DataError naming the file."""
    manifest = read_json_object(path, DataError, "manifest", missing_hint)
    if manifest.get("format") != fmt:
        raise DataError(f"{path}: not a {fmt} manifest")
    if manifest.get("format_version") != version:
        raise DataError(
            f"{path}: format_version {manifest.get('format_version')} is not supported "
            f"(this jepaworld reads {version})"
        )
    return manifest


def load_manifest(root: Path) -> dict[str, Any]:
    """Read and validate a dataset manifest, with errors that name the file."""
    path = Path(root) / MANIFEST
    if not Path(root).is_dir():
        raise DataError(f"{root}: dataset directory does not exist")
    hint = "not a jepaworld dataset, or collection died"
    manifest = read_versioned_manifest(path, FORMAT, FORMAT_VERSION, hint)
    for key in ("shards", "frame_shape", "action_dim", "env_id", "seeds"):
        if key not in manifest:
            raise DataError(f"{path}: manifest lacks the field {key!r}")
    for i, shard in enumerate(manifest["shards"]):
        if not (isinstance(shard, dict) and {"file", "lengths", "sha256"} <= set(shard)):
            raise DataError(f"{path}: shard entry {i} lacks file, lengths or sha256")
    return manifest


CGROUP_LIMITS = (
    Path("/sys/fs/cgroup/memory.max"),  # cgroup v2
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),  # cgroup v1
)


def memory_bytes() -> int | None:
    """The memory this process may use: the machine's physical memory, or the container's cgroup
    limit where that is lower (Docker, Kubernetes, Slurm). None where neither can be read."""
    try:
        total: int | None = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        total = None
    for path in CGROUP_LIMITS:
        try:
            limit = int(path.read_text().strip())  # "max" (no limit) fails here
        except (OSError, ValueError):
            continue
        total = limit if total is None or total <= 0 else min(total, limit)
    return total if total is not None and total > 0 else None


def frames_nbytes(manifest: dict[str, Any]) -> int:
    """Bytes of a dataset's frames once decompressed (what its episodes take in a cache)."""
    frames = sum(int(n) for shard in manifest["shards"] for n in shard["lengths"])
    return frames * int(np.prod(manifest["frame_shape"]))  # uint8


def default_cache_mb() -> float:
    """CACHE_FRACTION of `memory_bytes()` in MiB (FALLBACK_CACHE_MB where it is unknown)."""
    total = memory_bytes()
    return FALLBACK_CACHE_MB if total is None else CACHE_FRACTION * total / 2**20


class EpisodeStore:
    """Lazy, verified read access to a dataset directory.

    Args:
        root: the dataset directory.
        verify: check every shard's sha256 against the manifest when opening (fast: one pass).
        cache_mb: budget of the per-process LRU cache of decompressed episodes, in MiB (None:
            `default_cache_mb()`, a quarter of the machine's memory). Memory is taken only as
            episodes are read, so a small dataset takes only its own size.
    """

    def __init__(
        self, root: Path | str, verify: bool = True, cache_mb: float | None = None
    ) -> None:
        self.root = Path(root)
        self.manifest = load_manifest(self.root)
        self.frame_shape = tuple(self.manifest["frame_shape"])
        self.action_dim = int(self.manifest["action_dim"])
        self._index: list[tuple[int, int]] = []  # episode -> (shard, position in shard)
        self.lengths: list[int] = []
        for s, shard in enumerate(self.manifest["shards"]):
            path = self.root / shard["file"]
            if not path.is_file():
                raise DataError(f"{path}: shard listed in the manifest is missing")
            if verify and sha256_file(path) != shard["sha256"]:
                raise DataError(f"{path}: sha256 does not match the manifest (corrupt or replaced)")
            for i, length in enumerate(shard["lengths"]):
                self._index.append((s, i))
                self.lengths.append(int(length))
        self._cache: collections.OrderedDict[int, Episode] = collections.OrderedDict()
        self._cache_bytes = 0
        self._cache_limit = int((default_cache_mb() if cache_mb is None else cache_mb) * 2**20)
        self._handles: dict[int, Any] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self._index)

    def _shard(self, s: int) -> Any:
        if self._pid != os.getpid():  # forked into a DataLoader worker: reopen files
            self._handles, self._pid = {}, os.getpid()
        if s not in self._handles:
            path = self.root / self.manifest["shards"][s]["file"]
            try:
                self._handles[s] = np.load(path, allow_pickle=False)
            except (OSError, ValueError, zipfile.BadZipFile) as e:
                raise DataError(f"{path}: cannot open shard ({e})") from e
        return self._handles[s]

    def _read(self, e: int) -> Episode:
        s, i = self._index[e]
        shard = self._shard(s)
        path = self.root / self.manifest["shards"][s]["file"]
        try:
            ep = Episode(shard[f"frames_{i}"], shard[f"actions_{i}"], shard[f"states_{i}"])
        except (KeyError, OSError, ValueError, zipfile.BadZipFile, EOFError) as e_:
            raise DataError(f"{path}: cannot read episode {i} ({e_})") from e_
        if ep.frames.shape[1:] != self.frame_shape or ep.actions.shape[1] != self.action_dim:
            raise DataError(f"{path}: episode {i} shapes disagree with the manifest")
        return ep

    def states(self, e: int) -> np.ndarray:
        """Episode `e`'s state vectors (T, S) float32, read alone (its frames stay on disk)."""
        if not 0 <= e < len(self):
            raise IndexError(f"episode {e} out of range (dataset has {len(self)})")
        if e in self._cache:
            return self._cache[e].states.astype(np.float32, copy=False)
        s, i = self._index[e]
        try:
            return np.asarray(self._shard(s)[f"states_{i}"], dtype=np.float32)
        except (KeyError, OSError, ValueError, zipfile.BadZipFile, EOFError) as e_:
            path = self.root / self.manifest["shards"][s]["file"]
            raise DataError(f"{path}: cannot read episode {i}'s states ({e_})") from e_

    def episode(self, e: int) -> Episode:
        """Return episode `e` (0-based over the whole dataset), through the LRU cache."""
        if not 0 <= e < len(self):
            raise IndexError(f"episode {e} out of range (dataset has {len(self)})")
        if e in self._cache:
            self._cache.move_to_end(e)
            return self._cache[e]
        ep = self._read(e)
        self._cache[e] = ep
        self._cache_bytes += ep.nbytes
        while self._cache_bytes > self._cache_limit and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cache_bytes -= old.nbytes
        return ep

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handles"] = {}
        return state
