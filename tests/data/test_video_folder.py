from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from jepaworld.data.episodes import DataError
from jepaworld.data.video_folder import VideoClipDataset, index_videos, read_frames
from tests.conftest import frame_number, numbered_frames, write_video


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "videos"
    write_video(root / "a.mp4", numbered_frames(30))
    write_video(root / "sub" / "b.mkv", numbered_frames(20, 40, 40), codec="libvpx")
    write_video(root / "short.avi", numbered_frames(2))
    (root / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    (root / "notes.txt").write_text("not a video")
    return root


def test_index_keeps_good_videos_and_names_each_skipped_file(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        index = index_videos(folder, min_frames=4)
    assert [(e.path, e.frames) for e in index.entries] == [("a.mp4", 30), ("sub/b.mkv", 20)]
    assert set(index.skipped) == {"corrupt.mp4", "short.avi"}
    assert "unreadable" in index.skipped["corrupt.mp4"]
    assert "too short (2 frames" in index.skipped["short.avi"]
    assert "corrupt.mp4" in caplog.text and "short.avi" in caplog.text
    assert len(index.sha256()) == 64


def test_an_empty_or_useless_folder_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no video files"):
        index_videos(tmp_path)
    (tmp_path / "bad.webm").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"none of the 1 video files is usable \(bad.webm"):
        index_videos(tmp_path)
    with pytest.raises(DataError, match="not a directory"):
        index_videos(tmp_path / "missing")


def test_read_frames_resizes_crops_and_seeks_to_the_right_frames(tmp_path: Path) -> None:
    path = write_video(tmp_path / "long.mp4", numbered_frames(150, 48, 96))
    near = read_frames(path, np.array([0, 3, 6]), size=32)
    assert near.shape == (3, 32, 32, 3) and near.dtype == np.uint8
    assert [frame_number(torch.from_numpy(f)) for f in near] == [0, 3, 6]
    far = read_frames(path, np.array([100, 113, 140]), size=32)  # past _SEEK_AFTER: seeks
    assert [frame_number(torch.from_numpy(f)) for f in far] == [100, 113, 140]
    with pytest.raises(ValueError, match="ended before frame 160"):
        read_frames(path, np.array([150, 160]), size=32)


def test_dataset_serves_action_free_clips_and_survives_a_file_broken_after_indexing(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    index = index_videos(folder, min_frames=4)
    data = VideoClipDataset(index, frames=4, stride=2, size=16)
    assert data.starts.tolist() == [30 - 6, 20 - 6]
    clip = data[(0, 5)]
    assert clip["frames"].shape == (4, 16, 16, 3) and clip["actions"].shape == (3, 0)
    assert [frame_number(f) for f in clip["frames"]] == [5, 7, 9, 11]
    (folder / "a.mp4").write_bytes(b"broken since")
    with caplog.at_level(logging.WARNING):
        clip = data[(0, 5)]  # served from the next video instead
    assert [frame_number(f) for f in clip["frames"]] == [5, 7, 9, 11]
    assert "a.mp4" in data.failed and "a.mp4" in caplog.text
    (folder / "sub" / "b.mkv").write_bytes(b"broken too")
    with pytest.raises(DataError, match="every video failed"):
        data[(1, 0)]


def test_clips_longer_than_every_video_are_refused(folder: Path) -> None:
    index = index_videos(folder, min_frames=4)
    with pytest.raises(DataError, match="too short for clips of 16 frames at stride 2"):
        VideoClipDataset(index, frames=16, stride=2, size=16)
