"""Tiny end to end: physics make -> physics pretrain (scenes or a video folder) -> physics eval."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from jepaworld.bench.plan_eval import checkpoint_sha256
from jepaworld.bench.protocols import VoEProtocol
from jepaworld.cli import main
from jepaworld.envs.physics_scenes import PROPERTIES, make_video
from jepaworld.models.world_model import CheckpointError
from jepaworld.physics.evaluate import PhysicsEvalConfig, evaluate_voe, load_video_model
from jepaworld.physics.make import PhysicsMakeConfig, make_physics_data
from jepaworld.train import latest_checkpoint
from tests.conftest import tiny_model_args, write_video

TINY = VoEProtocol(context=4, pixel_videos=4, pixel_steps=3, bootstrap_resamples=50)


def pretrain_args(out: Path, *source: str) -> list[str]:
    return [
        "physics", "pretrain", *source, "--out", str(out), "--steps", "3", "--batch-size", "2",
        "--clip-frames", "6", "--workers", "0", "--checkpoint-every", "3", "--log-every", "1",
        *tiny_model_args(), "--model.max-len", "8",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("physics") / "scenes"
    make_physics_data(PhysicsMakeConfig(out=out, pairs=2, videos=6))
    return out


@pytest.fixture(scope="module")
def video_run(scenes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "video"
    assert main(pretrain_args(run, "--data", str(scenes))) == 0  # DIR of physics make: uses train/
    return run


def test_pretrain_on_generated_scenes_writes_an_action_free_run(video_run: Path) -> None:
    record = json.loads((video_run / "config.json").read_text())
    assert record["data_env_id"] == "jepaworld/PhysicsScenes-v0"
    assert record["model"]["action_dim"] == 0 and record["model"]["frame_stride"] == 1
    assert record["model"]["rollout_context"] == 4 and record["model"]["max_len"] == 8
    assert latest_checkpoint(video_run).name == "step_00000003"


def test_eval_writes_metrics_baselines_and_plots_for_every_property(
    video_run: Path, scenes: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eval"
    results = evaluate_voe(PhysicsEvalConfig(video_run, out, pairs_dir=scenes), TINY)
    assert json.loads((out / "voe.json").read_text()) == results
    assert results["checkpoint_sha256"] == checkpoint_sha256(latest_checkpoint(video_run))
    assert results["protocol"]["name"] == "physics-voe" and results["pairs_source"].endswith(
        "pairs"
    )
    assert results["protocol"]["pairs"] == 2  # what the directory held, not the default 50
    assert set(results["properties"]) == set(PROPERTIES)
    for prop, entry in results["properties"].items():
        for metrics in (entry, *entry["baselines"].values()):
            assert 0.0 <= metrics["relative_accuracy"] <= 1.0 and metrics["pairs"] == 2
            lo, hi = metrics["ci95"]
            assert lo <= hi and 0.0 <= metrics["auroc"] <= 1.0
            assert len(metrics["scores"]["possible"]) == 2
        assert set(entry["baselines"]) == {"untrained", "pixel"}
        image = np.asarray(Image.open(out / entry["plot"]))
        assert image.ndim == 3 and image.shape[0] > 100, prop
    assert set(results["summary"]) == {"model", "untrained", "pixel"}
    assert results["protocol"]["flip"] and results["protocol"]["version"] == "5"
    assert results["protocol"]["shifts"] == [-6, -3, 0, 3, 6]


def test_eval_looks_average_each_scorers_surprise_over_flip_and_shifts(
    video_run: Path, scenes: Path
) -> None:
    """Every scorer's surprise with the flip is the mean of its surprise on the video and on the
    video flipped left to right, with shifts the mean over the moved videos; `flip=False` and
    shifts (0,) (version 3's scoring) is the video alone."""
    from jepaworld.envs.physics_scenes import make_pair
    from jepaworld.physics.evaluate import make_scorers
    from jepaworld.physics.surprise import shift_x

    model, _ = load_video_model(video_run, "cpu", TINY)
    video = torch.from_numpy(make_pair("constancy", 7).impossible)
    plain = make_scorers(model, replace(TINY, flip=False, shifts=(0,)))
    flipped = make_scorers(model, replace(TINY, flip=True, shifts=(0,)))
    moved = make_scorers(model, replace(TINY, flip=False, shifts=(-2, 1)))
    for who in ("model", "untrained", "pixel"):
        alone, of_flip = plain[who](video), plain[who](torch.flip(video, dims=[2]))
        assert not np.allclose(alone, of_flip), who  # the scenes are not symmetric themselves
        assert np.allclose(flipped[who](video), (alone + of_flip) / 2, atol=1e-6), who
        left, right = plain[who](shift_x(video, -2)), plain[who](shift_x(video, 1))
        assert not np.allclose(left, alone), who  # the scorers see where things are
        assert np.allclose(moved[who](video), (left + right) / 2, atol=1e-6), who


def test_eval_refuses_a_model_whose_window_is_too_short(video_run: Path) -> None:
    with pytest.raises(CheckpointError, match=r"max_len 8 < 10 \(protocol context 8"):
        load_video_model(video_run, "cpu", VoEProtocol(context=8, horizon=3))


def test_pretrain_on_a_video_folder_skips_and_records_a_corrupt_file(tmp_path: Path) -> None:
    folder = tmp_path / "videos"
    for seed in range(2):  # any size: frames are scaled and cropped to the model's 64 px
        frames = np.stack(
            [np.asarray(Image.fromarray(f).resize((80, 72))) for f in make_video(seed)]
        )
        write_video(folder / f"clip{seed}.mp4", torch.from_numpy(frames))
    (folder / "broken.webm").write_bytes(b"not a video at all")
    run = tmp_path / "run"
    assert main(pretrain_args(run, "--videos", str(folder))) == 0
    record = json.loads((run / "config.json").read_text())
    index = json.loads((run / "videos.json").read_text())
    assert record["data_env_id"] == "video-folder"
    assert [v["path"] for v in index["videos"]] == ["clip0.mp4", "clip1.mp4"]
    assert "unreadable" in index["skipped"]["broken.webm"]
    before = (run / "videos.json").read_text()
    write_video(folder / "new.mp4", torch.from_numpy(make_video(9)))  # the folder changed
    assert main([*pretrain_args(run, "--videos", str(folder)), "--resume"]) == 2
    assert (run / "videos.json").read_text() == before  # the run's own index is kept


def test_an_empty_folder_is_an_error_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    assert main(pretrain_args(tmp_path / "run", "--videos", str(tmp_path / "empty"))) == 2
    assert "empty: no video files" in capsys.readouterr().err
    assert not (tmp_path / "run" / "checkpoints").exists()
    with pytest.raises(SystemExit):
        main(pretrain_args(tmp_path / "r2", "--videos", "v", "--data", "d"))
    assert "give --data or --videos, not both" in capsys.readouterr().err


def test_make_sets_how_often_training_videos_have_a_screen_and_leaves_the_pairs_alone(
    tmp_path: Path,
) -> None:
    from jepaworld.data.episodes import EpisodeStore
    from jepaworld.envs.physics_scenes import SCREEN_RGBS, SceneConfig

    def with_screen(prob: float) -> int:
        out = tmp_path / f"p{prob}"
        make_physics_data(PhysicsMakeConfig(out=out, pairs=1, videos=8, screen_prob=prob))
        manifest = json.loads((out / "train" / "manifest.json").read_text())
        assert manifest["env_config"]["screen_prob"] == prob
        store = EpisodeStore(out / "train")
        first = [store.episode(i).frames[0] for i in range(8)]  # (H, W, 3) each
        screen = [sum((f == rgb).all(-1).sum() for rgb in SCREEN_RGBS) >= 18 * 24 for f in first]
        return sum(screen)

    assert with_screen(0.0) == 0 and with_screen(1.0) >= 5
    pairs = [(tmp_path / f"p{p}" / "pairs" / "manifest.json").read_bytes() for p in (0.0, 1.0)]
    assert pairs[0] == pairs[1]  # the evaluation pairs are the protocol's either way
    assert json.loads(pairs[0])["config"]["screen_prob"] == SceneConfig().screen_prob
    with pytest.raises(ValueError, match="screen_prob: must be in"):
        PhysicsMakeConfig(out=tmp_path / "bad", screen_prob=1.5)


def test_surprise_on_a_video_file_writes_the_curve_and_its_plot(
    video_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from jepaworld.data.video_folder import read_strided
    from jepaworld.physics.surprise import surprise

    clip = write_video(tmp_path / "mine.mp4", torch.from_numpy(make_video(3)))  # 24 frames
    out = tmp_path / "s"
    args = ["physics", "surprise", "--run", str(video_run), "--video", str(clip), "--out", str(out)]
    assert main(args) == 0
    r = json.loads((out / "surprise.json").read_text())
    assert r["frames"] == 24 and len(r["surprise"]) == 24 and r["surprise"][0] == 0.0
    assert r["context"] == 8  # the protocol's 15 does not fit this checkpoint's max_len 8
    model, _ = load_video_model(video_run, "cpu", TINY)
    frames = torch.from_numpy(read_strided(clip, 64)[0])
    assert np.allclose(r["surprise"], surprise(model, frames, 8).numpy(), atol=1e-6)
    assert r["peak_frame"] == int(np.argmax(r["surprise"])) and r["flip"] is False
    assert np.asarray(Image.open(out / "surprise.png")).ndim == 3
    assert f"peak surprise {r['peak_surprise']:.4f} at frame {r['peak_frame']}" in (
        capsys.readouterr().out
    )
    assert r["shifts"] == [0]
    moved = ["--stride", "2", "--flip", "--shifts", "-1", "0", "1"]
    assert main([*args[:-1], str(tmp_path / "s2"), *moved]) == 0
    r2 = json.loads((tmp_path / "s2" / "surprise.json").read_text())
    assert r2["frames"] == 12 and r2["peak_file_frame"] == 2 * r2["peak_frame"] and r2["flip"]
    assert r2["shifts"] == [-1, 0, 1]
    want = surprise(model, frames[::2], 8, flip=True, shifts=(-1, 0, 1)).numpy()
    assert np.allclose(r2["surprise"], want, atol=1e-6)
    every_other, cut = read_strided(clip, 64, stride=2)
    assert np.array_equal(every_other, frames.numpy()[::2]) and not cut
    first, cut = read_strided(clip, 64, max_frames=5)
    assert np.array_equal(first, frames.numpy()[:5]) and cut and not r["cut_at_max_frames"]


def test_surprise_on_a_bad_video_file_names_it_and_writes_nothing(
    video_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    short = write_video(tmp_path / "short.mp4", torch.from_numpy(make_video(3)[:1]))
    base = ["physics", "surprise", "--run", str(video_run), "--out", str(tmp_path / "out")]
    cases = [
        (["--video", str(tmp_path / "nowhere.mp4")], "nowhere.mp4: no such video file"),
        (["--video", str(broken)], "broken.mp4: cannot read this video"),
        (["--video", str(short)], "short.mp4: 1 frame(s) kept at stride 1, surprise needs"),
        (["--video", str(short), "--context", "9"], "takes a context of at most 8 frames"),
    ]
    for extra, message in cases:
        assert main([*base, *extra]) == 2, extra
        assert message in capsys.readouterr().err, extra
    assert not (tmp_path / "out").exists()
