"""Train on any folder of videos: index the files, stream clips with PyAV, never hold a video in RAM.

`index_videos(FOLDER)` finds every .mp4/.mkv/.webm/.avi/.mov below FOLDER, probes each (its frame
count from the container header, or by counting packets where the header has none, and one decoded
frame), and keeps the usable ones. A file PyAV cannot open or decode, one without a video stream,
or one too short for a clip is skipped with a warning that names it, and listed with the reason in
the index: one bad file never stops a run. No usable file at all is a `DataError` before training.

`VideoClipDataset` then serves clips exactly as `ClipDataset` does for episodes (keys (video, t0),
frames uint8 (T, S, S, 3), zero-width actions: action-free), decoding only the frames a clip needs:
it seeks to the keyframe before t0 and decodes forward. Frames are scaled so the short side is S
(area interpolation) and centre-cropped to S x S, so any resolution and aspect ratio works.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from jepaworld.data.episodes import DataError
from jepaworld.data.loader import clip_starts

log = logging.getLogger(__name__)
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov")
INDEX_FORMAT = "jepaworld.video_index"
_SEEK_AFTER = 64  # clips starting later than this frame seek instead of decoding from the start


def _av() -> Any:
    try:
        import av
    except ImportError as e:  # a core dependency, so only a broken install gets here
        raise ImportError("reading videos needs PyAV: pip install av") from e
    return av


@dataclass(frozen=True)
class VideoEntry:
    """One usable video: its path relative to the folder, size in bytes, and frame count."""

    path: str
    bytes: int
    frames: int


@dataclass
class VideoIndex:
    """The usable videos of a folder, and the files skipped with the reason for each."""

    root: Path
    entries: list[VideoEntry]
    skipped: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": INDEX_FORMAT,
            "root": str(self.root),
            "videos": [asdict(e) for e in self.entries],
            "skipped": self.skipped,
        }

    def sha256(self) -> str:
        """Identity of the data: names, sizes and frame counts of the usable videos."""
        text = json.dumps([asdict(e) for e in self.entries], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def _probe(path: Path) -> int:
    """Frame count of the first video stream; raises ValueError or PyAV's errors if unusable."""
    av = _av()
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        frames = int(stream.frames or 0)
        if next(container.decode(stream), None) is None:
            raise ValueError("no decodable frame")
        if frames == 0:  # mkv/webm headers often leave the count out: count packets instead
            container.seek(0)
            frames = sum(1 for p in container.demux(stream) if p.size)
    return frames


def index_videos(root: Path, min_frames: int = 2) -> VideoIndex:
    """Probe every video file below `root` (sorted by path); see the module docstring.

    Raises:
        DataError: if `root` is not a directory, holds no video files, or none is usable.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a directory (--videos expects a folder of video files)")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"{root}: no video files ({', '.join(VIDEO_SUFFIXES)}) found")
    av = _av()
    index = VideoIndex(root, [])
    for path in files:
        name = str(path.relative_to(root))
        try:
            frames = _probe(path)
        except (av.FFmpegError, ValueError, OSError, StopIteration) as e:
            reason = f"unreadable ({type(e).__name__}: {e})"
        else:
            if frames >= min_frames:
                index.entries.append(VideoEntry(name, path.stat().st_size, frames))
                continue
            reason = f"too short ({frames} frames, a clip needs {min_frames})"
        index.skipped[name] = reason
        log.warning("skipping video %s: %s", path, reason)
    if not index.entries:
        first = "; ".join(f"{k}: {v}" for k, v in list(index.skipped.items())[:3])
        raise DataError(f"{root}: none of the {len(files)} video files is usable ({first})")
    return index


def _to_square(frame: Any, size: int) -> np.ndarray:
    """A decoded frame -> (size, size, 3) uint8: short side scaled to `size`, centre-cropped."""
    scale = size / min(frame.width, frame.height)
    w, h = max(size, round(frame.width * scale)), max(size, round(frame.height * scale))
    rgb = frame.to_ndarray(width=w, height=h, format="rgb24", interpolation="AREA")  # (h, w, 3)
    y0, x0 = (h - size) // 2, (w - size) // 2
    return rgb[y0 : y0 + size, x0 : x0 + size]


def read_frames(path: Path, indices: np.ndarray, size: int) -> np.ndarray:
    """Frames `indices` (increasing) of a video as (len(indices), size, size, 3) uint8.

    Clips starting after frame `_SEEK_AFTER` seek to the keyframe before them and number frames by
    their timestamps; a stream without timestamps is decoded from the start instead.

    Raises:
        ValueError: if the video ends before the last index (e.g. a truncated file).
    """
    out = np.empty((len(indices), size, size, 3), dtype=np.uint8)
    try:
        found = _decode_into(out, path, indices, size, seek=int(indices[0]) > _SEEK_AFTER)
    except _NoTimestamps:
        found = _decode_into(out, path, indices, size, seek=False)
    if found < len(indices):
        raise ValueError(
            f"{path}: ended before frame {int(indices[-1])} ({found} of {len(indices)} read)"
        )
    return out


def read_strided(
    path: Path, size: int, stride: int = 1, max_frames: int | None = None
) -> tuple[np.ndarray, bool]:
    """Every `stride`-th frame of a video from its start, at most `max_frames`, as
    (T, size, size, 3) uint8, decoding forward without trusting the header's frame count; and
    whether the video goes on past the frames kept (cut at `max_frames`).

    Raises:
        DataError: the file cannot be opened or decoded, or has no video stream (names it).
    """
    av, kept, cut = _av(), [], False
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError("no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for n, frame in enumerate(container.decode(stream)):
                if max_frames is not None and len(kept) >= max_frames:
                    cut = True
                    break
                if n % stride == 0:
                    kept.append(_to_square(frame, size))
    except (av.FFmpegError, ValueError, OSError) as e:
        raise DataError(f"{path}: cannot read this video ({type(e).__name__}: {e})") from e
    frames = np.stack(kept) if kept else np.empty((0, size, size, 3), np.uint8)
    return frames, cut


class _NoTimestamps(Exception):
    """A sought stream's frames carry no timestamps, so their numbers are unknown."""


def _decode_into(out: np.ndarray, path: Path, indices: np.ndarray, size: int, seek: bool) -> int:
    """Decode the wanted frames into `out`; returns how many were found."""
    av = _av()
    want = {int(i): k for k, i in enumerate(indices)}
    found = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate, base = stream.average_rate or stream.guessed_rate, stream.time_base
        start = stream.start_time or 0
        if seek and not (rate and base):
            raise _NoTimestamps
        if seek:  # to the keyframe at or before the first wanted frame
            container.seek(start + int(Fraction(int(indices[0])) / rate / base), stream=stream)
        for n, frame in enumerate(container.decode(stream)):
            if seek and frame.pts is None:
                raise _NoTimestamps
            # after a seek the frame number comes from the timestamp; from the start, by counting
            i = round(float((frame.pts - start) * base * rate)) if seek else n
            if i in want:
                out[want[i]] = _to_square(frame, size)
                found += 1
            if i >= int(indices[-1]):
                break
    return found


class VideoClipDataset(Dataset):
    """Clips of `frames` frames at `stride` from indexed videos; keys (video, t0) like ClipDataset.

    A video that fails while training (changed or truncated on disk since it was indexed) is logged
    once, counted in `failed`, and its clips are served from the next readable video instead.
    """

    def __init__(self, index: VideoIndex, frames: int, stride: int, size: int) -> None:
        self.index, self.frames, self.stride, self.size = index, frames, stride, size
        lengths = [e.frames for e in index.entries]
        self.starts = clip_starts(
            lengths, frames, stride, lambda n: f"{index.root}: videos of at most {n} frames"
        )
        self.failed: dict[str, str] = {}

    def __len__(self) -> int:
        return int(self.starts.sum())

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        e, t0 = key
        n = len(self.index.entries)
        for k in range(n):
            i = (e + k) % n
            entry = self.index.entries[i]
            if entry.path in self.failed or self.starts[i] == 0:
                continue
            start = t0 if k == 0 else min(t0, int(self.starts[i]) - 1)
            try:
                clip = read_frames(
                    self.index.root / entry.path,
                    start + self.stride * np.arange(self.frames),
                    self.size,
                )
            except (_av().FFmpegError, ValueError, OSError) as err:
                self.failed[entry.path] = str(err)
                log.warning("video %s failed while training, skipping it: %s", entry.path, err)
                continue
            actions = torch.zeros(self.frames - 1, 0)  # (T-1, 0): action-free
            return {"frames": torch.from_numpy(clip), "actions": actions}
        raise DataError(f"{self.index.root}: every video failed while training")
