"""`jepaworld memory build | query | stats`: fill a memory from a dataset, search it, describe it.

A memory entry is one dataset frame embedded by one checkpoint. The checkpoint is identified by the
sha256 of its `model.safetensors` and the dataset by the sha256 of its manifest (the entry's
`source`), so moving either directory changes nothing, and a rebuild of the same pair is noticed.
The memory file does not record where a checkpoint lives: `query` is given the run again and
checks that its latest checkpoint is one whose embeddings the memory holds.

Unlike `store.py` and `graph.py`, which see a model only through `WorldModelLike`, this module is a
command: like `physics/evaluate.py`, it loads checkpoints and datasets and composes the pieces.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from jepaworld.config import require
from jepaworld.data.episodes import DataError, EpisodeStore, manifest_sha256, sha256_file
from jepaworld.data.loader import resize_frames
from jepaworld.envs.gym_adapter import square_resize
from jepaworld.memory.store import (
    MemoryStore,
    UnknownModelError,
    decode_thumbnail,
    encode_thumbnail,
)
from jepaworld.models.world_model import WEIGHTS, WorldModel
from jepaworld.planning.protocols import WorldModelLike, refuse_proprio
from jepaworld.train import check_view, latest_checkpoint, read_run_record, resolve_device

log = logging.getLogger(__name__)
SHORT = 12  # characters of a sha256 shown to people
TILE = 64  # side of one picture in a contact sheet, in pixels


@dataclass
class MemoryBuildConfig:
    """Embed every frame of a dataset with a run's latest checkpoint and store it in a memory."""

    run: Path
    """Run directory from `jepaworld train`; its latest checkpoint embeds the frames."""
    data: Path
    """Dataset directory from `jepaworld collect` whose frames are remembered."""
    db: Path
    """Memory file (SQLite); created if missing."""
    batch_size: int = 256
    """Frames encoded per forward pass and stored per transaction."""
    every: int = 1
    """Keep every k-th frame of each episode (steps 0, k, 2k, ...)."""
    thumbnail_size: int = 32
    """Side of the PNG thumbnail stored with each entry, in pixels (0 stores none)."""
    append: bool = False
    """Add to a memory that already holds this checkpoint's entries of this dataset, storing only
    the frames it lacks (after an interrupted build, or with another --every); without it such a
    memory is refused."""
    device: str = "auto"
    """Device: auto (CUDA when available), cpu, cuda, cuda:N."""

    def __post_init__(self) -> None:
        self.run, self.data, self.db = Path(self.run), Path(self.data), Path(self.db)
        require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        require(self.every >= 1, "every", f"must be >= 1, got {self.every}")
        require(self.thumbnail_size >= 0, "thumbnail_size", "must be >= 0 (0: no thumbnails)")


@dataclass
class MemoryQueryConfig:
    """Show the remembered frames nearest to a picture, in the latent space of the memory's model."""

    db: Path
    """Memory file written by `jepaworld memory build`."""
    image: Path
    """The query picture (PNG or any format Pillow reads); scaled and centre-cropped to the
    model's image size when it differs."""
    run: Path
    """Run directory whose latest checkpoint built the memory (its sha256 must be in the memory)."""
    k: int = 5
    """How many nearest entries to show."""
    out: Path | None = None
    """Write a contact sheet PNG here: the query, then the k nearest thumbnails, nearest first."""
    device: str = "cpu"
    """Device for embedding the query: auto, cpu, cuda, cuda:N."""

    def __post_init__(self) -> None:
        self.db, self.image, self.run = Path(self.db), Path(self.image), Path(self.run)
        self.out = None if self.out is None else Path(self.out)
        require(self.k >= 1, "k", f"must be >= 1, got {self.k}")


@dataclass
class MemoryStatsConfig:
    """Describe a memory: entries, checkpoints, episodes, size on disk, integrity."""

    db: Path
    """Memory file written by `jepaworld memory build`."""
    json: bool = False
    """Print the statistics as JSON instead of a table."""

    def __post_init__(self) -> None:
        self.db = Path(self.db)


# ---- pieces -----------------------------------------------------------------------------------


def load_checkpoint(run: Path, device: str) -> tuple[WorldModel, Path, str]:
    """The latest checkpoint of RUN: (model in eval mode, its directory, sha256 of its weights)."""
    ckpt = latest_checkpoint(run)
    model = WorldModel.from_pretrained(ckpt, map_location=resolve_device(device))
    refuse_proprio(model, run, "a memory holds frames alone")
    return model, ckpt, sha256_file(ckpt / WEIGHTS)


def embed_frames(model: WorldModelLike, frames: np.ndarray) -> torch.Tensor:
    """uint8 frames (N, H, W, 3) -> embeddings (N, D) float32 on the CPU."""
    clips = torch.from_numpy(np.ascontiguousarray(frames))[:, None]  # (N, 1, H, W, 3)
    with torch.inference_mode():
        z = model.encode(clips)  # (N, 1, D)
    return z[:, 0].float().cpu()  # (N, D)


def wanted_frames(
    lengths: list[int], every: int, stored: set[tuple[int, int]]
) -> list[tuple[int, int]]:
    """(episode, step) of every `every`-th frame of each episode, less those already stored."""
    return [
        (e, t) for e, n in enumerate(lengths) for t in range(0, n, every) if (e, t) not in stored
    ]


def read_image(path: Path, size: int) -> np.ndarray:
    """A picture file -> uint8 (size, size, 3); a ValueError naming the file if it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            rgb = im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot be read as an image ({e})") from e
    return square_resize(np.asarray(rgb), size)


def contact_sheet(
    query: np.ndarray, thumbnails: list[bytes | None], tile: int = TILE
) -> np.ndarray:
    """The query, an 8 px gap, then the thumbnails 2 px apart, each scaled to tile x tile:
    uint8 (tile, W, 3). A missing thumbnail is a grey tile."""
    from PIL import Image

    def fit(img: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(img).resize((tile, tile), Image.NEAREST))

    grey = np.full((tile, tile, 3), 128, dtype=np.uint8)
    tiles = [fit(decode_thumbnail(t)) if t is not None else grey for t in thumbnails]
    width = tile + 8 + len(tiles) * (tile + 2) - (2 if tiles else 8)
    sheet = np.full((tile, width, 3), 255, dtype=np.uint8)
    sheet[:, :tile] = fit(query)
    for i, t in enumerate(tiles):
        x = tile + 8 + i * (tile + 2)
        sheet[:, x : x + tile] = t
    return sheet


def _check_frame_size(episodes: EpisodeStore, size: int, ckpt: Path) -> None:
    """Square frames of the model's size or larger (those are area-resized down to it)."""
    h, w, _ = episodes.frame_shape
    if h != w or h < size:
        raise DataError(
            f"{episodes.root}: frames are {h}x{w} but checkpoint {ckpt} expects {size}x{size} "
            "(or larger square frames, resized down)"
        )


def _refuse_rebuild(db: Path, stored: int, sha: str, data: Path) -> None:
    raise FileExistsError(
        f"{db}: already holds {stored} entries of checkpoint {sha[:SHORT]} from dataset {data};"
        " pass --append to store only the frames it lacks, or choose another --db"
    )


# ---- commands ---------------------------------------------------------------------------------


def build_memory(cfg: MemoryBuildConfig) -> dict[str, Any]:
    """Embed the dataset's frames into cfg.db; returns what was stored and what was skipped."""
    model, ckpt, sha = load_checkpoint(cfg.run, cfg.device)
    episodes = EpisodeStore(cfg.data)
    _check_frame_size(episodes, model.config.image_size, ckpt)
    manifest = episodes.manifest
    view = (manifest.get("env_config") or {}).get("view")
    check_view(read_run_record(cfg.run), manifest["env_id"], view, cfg.run, f"{cfg.data} was")
    source = manifest_sha256(cfg.data)
    if cfg.db.is_dir():
        raise ValueError(f"{cfg.db}: is a directory, not a memory file")
    cfg.db.parent.mkdir(parents=True, exist_ok=True)
    with MemoryStore.open(cfg.db) as store:
        stored = {(e, t) for _, e, t in store.keys(sha, source)}
        if stored and not cfg.append:
            _refuse_rebuild(cfg.db, len(stored), sha, cfg.data)
        todo = wanted_frames(episodes.lengths, cfg.every, stored)
        log.info("embedding %d frames with %s into %s", len(todo), ckpt, cfg.db)
        inserted = _insert_frames(store, model, episodes, todo, sha, source, cfg)
        total = store.count(sha)
    return {
        "db": str(cfg.db),
        "checkpoint": str(ckpt),
        "model_sha256": sha,
        "source": source,
        "episodes": len(episodes),
        "inserted": inserted,
        "already_stored": len(stored),
        "entries": total,
    }


def _insert_frames(
    store: MemoryStore,
    model: WorldModel,
    episodes: EpisodeStore,
    todo: list[tuple[int, int]],
    sha: str,
    source: str,
    cfg: MemoryBuildConfig,
) -> int:
    """Embed and store the (episode, step) frames of `todo`, one transaction per batch."""
    inserted = 0
    bar = tqdm(total=len(todo), desc="memory", unit="frame", dynamic_ncols=True, mininterval=1.0)
    try:
        for start in range(0, len(todo), cfg.batch_size):
            chunk = todo[start : start + cfg.batch_size]
            ep_ids, steps = (np.array(col, dtype=np.int64) for col in zip(*chunk, strict=True))
            frames = np.stack([episodes.episode(e).frames[t] for e, t in chunk])  # (N, H, W, 3)
            actions = np.stack([episodes.episode(e).actions[t] for e, t in chunk])  # (N, A)
            thumbs = (
                [encode_thumbnail(f, cfg.thumbnail_size) for f in frames]
                if cfg.thumbnail_size
                else None
            )
            size = model.config.image_size
            z = embed_frames(model, resize_frames(torch.from_numpy(frames), size).numpy())  # (N, D)
            inserted += store.insert(sha, z, ep_ids, steps, actions, thumbs, source=source)
            bar.update(len(chunk))
    finally:
        bar.close()
    return inserted


def query_memory(cfg: MemoryQueryConfig) -> dict[str, Any]:
    """The k entries nearest to cfg.image (distance, episode, step, ...), nearest first; writes the
    contact sheet when cfg.out is given."""
    with MemoryStore.open(cfg.db, readonly=True) as store:
        model, ckpt, sha = load_checkpoint(cfg.run, cfg.device)
        held = store.models()
        if sha not in held:
            raise UnknownModelError(
                f"{cfg.db}: holds embeddings of checkpoints"
                f" {[s[:SHORT] for s in held] or 'none'}, not of {ckpt} (sha256 {sha[:SHORT]});"
                " pass the run that built it, or build the memory again with this run"
            )
        image = read_image(cfg.image, model.config.image_size)  # (S, S, 3)
        z = embed_frames(model, image[None])  # (1, D)
        dists, ids = store.nearest(sha, z, cfg.k)  # (1, k'), (1, k')
        entries = store.get(ids[0])
        searched = store.count(sha)
    matches = [
        {
            "distance": float(d),
            "episode": e["episode"],
            "step": e["step"],
            "source": e["source"],
            "id": e["id"],
        }
        for d, e in zip(dists[0].tolist(), entries, strict=True)
    ]
    if cfg.out is not None:
        _write_png(contact_sheet(image, [e["thumbnail"] for e in entries]), cfg.out)
    return {
        "image": str(cfg.image),
        "model_sha256": sha,
        "searched": searched,
        "matches": matches,
        "contact_sheet": None if cfg.out is None else str(cfg.out),
    }


def _write_png(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="PNG")


def memory_stats(cfg: MemoryStatsConfig) -> dict[str, Any]:
    """The store's stats, with episodes and datasets per checkpoint, after a full integrity check
    (a damaged file raises MemoryFormatError instead)."""
    with MemoryStore.open(cfg.db, readonly=True, integrity="full") as store:
        stats = store.stats()
        for sha, row in stats["models"].items():
            keys = store.keys(sha)  # {(source, episode, step)}
            row["datasets"] = len({s for s, _, _ in keys})
            row["episodes"] = len({(s, e) for s, e, _ in keys})
    stats["integrity"] = "ok"
    return stats


# ---- text for people --------------------------------------------------------------------------


def format_build(result: dict[str, Any]) -> str:
    return (
        f"stored {result['inserted']} frames of {result['episodes']} episodes"
        f" ({result['already_stored']} already there) with checkpoint"
        f" {result['model_sha256'][:SHORT]}; {result['db']} holds {result['entries']} entries of it"
    )


def format_matches(result: dict[str, Any]) -> str:
    lines = [
        f"{len(result['matches'])} nearest of {result['searched']} entries"
        f" (checkpoint {result['model_sha256'][:SHORT]}) to {result['image']}:",
        f"{'distance':>10}  {'episode':>7}  {'step':>5}  dataset",
    ]
    for m in result["matches"]:
        lines.append(
            f"{m['distance']:>10.4f}  {m['episode']:>7}  {m['step']:>5}  {m['source'][:SHORT]}"
        )
    if result["contact_sheet"]:
        lines.append(f"contact sheet: {result['contact_sheet']}")
    return "\n".join(lines)


def format_stats(stats: dict[str, Any], as_json: bool = False) -> str:
    if as_json:
        return json.dumps(stats, indent=2)
    lines = [
        f"{stats['path']}: {stats['format']} schema {stats['schema_version']},"
        f" journal {stats['journal_mode']}, synchronous {stats['synchronous']}",
        f"entries {stats['entries']}, {stats['file_bytes'] / 2**20:.2f} MiB on disk,"
        f" integrity {stats['integrity']}",
    ]
    for sha, row in stats["models"].items():
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(row["created"]))
        lines.append(
            f"checkpoint {sha[:SHORT]}  D={row['dim']}  {row['entries']} entries"
            f"  {row['episodes']} episodes  {row['datasets']} dataset(s)  since {created}"
        )
    if not stats["models"]:
        lines.append("no checkpoints")
    return "\n".join(lines)
