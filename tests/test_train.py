from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from jepaworld.data.collect import CollectConfig, collect
from jepaworld.data.episodes import DataError, EpisodeStore, default_cache_mb
from jepaworld.data.loader import ClipDataset
from jepaworld.models.world_model import WorldModel
from jepaworld.train import (
    TrainConfig,
    TrainingDiverged,
    _setup,
    calibrate_norms,
    checkpoint_dirs,
    ema_momentum_at,
    encode_clips,
    episode_cache_mb,
    hidden_runs,
    latest_checkpoint,
    load_train_state,
    loss_function,
    lr_at,
    make_optimizer,
    mixture_cache_mb,
    native_bfloat16,
    open_dataset,
    prepare_config,
    train,
    train_step,
)
from tests.conftest import tiny_model, tiny_model_args, tiny_train


def _weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return load_file(str(ckpt / "model.safetensors"))


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_run_directory_layout(tiny_run: Path) -> None:
    record = json.loads((tiny_run / "config.json").read_text())
    assert record["train"]["steps"] == 6 and record["model"]["embed_dim"] == 16
    assert len(record["data_manifest_sha256"]) == 64
    assert [d.name for d in checkpoint_dirs(tiny_run)] == ["step_00000003", "step_00000006"]
    ckpt = latest_checkpoint(tiny_run)
    assert {p.name for p in ckpt.iterdir()} == {
        "config.json",
        "model.safetensors",
        "train_state.pt",
        "metrics.jsonl",
    }
    assert load_train_state(ckpt)["step"] == 6
    lines = [json.loads(x) for x in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3, 4, 5, 6]
    assert {"loss", "pred", "rollout", "reg", "eff_rank", "lr", "samples_per_s"} <= set(lines[0])
    WorldModel.from_pretrained(ckpt)  # loads strictly


def test_same_seed_same_weights(tiny_data: Path, tiny_run: Path, tmp_path: Path) -> None:
    train(tiny_train(tiny_data, tmp_path / "again"))
    assert _same(
        _weights(latest_checkpoint(tiny_run)), _weights(latest_checkpoint(tmp_path / "again"))
    )


def test_resume_continues_exactly(tiny_data: Path, tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "split"
    train(tiny_train(tiny_data, out, stop_at=4))  # checkpoints at 3 and 4
    assert latest_checkpoint(out).name == "step_00000004"
    train(tiny_train(tiny_data, out, resume=True))
    assert _same(_weights(latest_checkpoint(tiny_run)), _weights(latest_checkpoint(out)))
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_resume_on_cuda_restores_the_cuda_rng(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGReg draws its directions from the CUDA generator on a GPU, so an exact resume needs
    the checkpoint's CUDA RNG; without it (set_rng_state made a no-op, so the resumed steps redraw
    the first steps' directions from the run's seed) the weights part far more than GPU kernels'
    nondeterminism moves them."""
    whole = tmp_path / "whole"
    train(tiny_train(tiny_data, whole, device="cuda"))
    reference = _weights(latest_checkpoint(whole))

    def gap_after_resume(out: Path) -> float:
        train(tiny_train(tiny_data, out, device="cuda", stop_at=4))
        assert "cuda_rng" in load_train_state(latest_checkpoint(out))
        train(tiny_train(tiny_data, out, device="cuda", resume=True))
        resumed = _weights(latest_checkpoint(out))
        return max((reference[k] - resumed[k]).abs().max().item() for k in reference)

    restored = gap_after_resume(tmp_path / "split")
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda *args, **kwargs: None)
    unrestored = gap_after_resume(tmp_path / "unrestored")
    assert restored < 1e-5 and unrestored > 100 * max(restored, 1e-7), (restored, unrestored)


def test_existing_run_is_not_overwritten(tiny_data: Path, tiny_run: Path) -> None:
    with pytest.raises(FileExistsError, match="already holds checkpoints"):
        train(tiny_train(tiny_data, tiny_run))


def test_data_that_does_not_fit_the_model_fails_before_training(
    tiny_data: Path, tmp_path: Path
) -> None:
    cfg = tiny_train(tiny_data, tmp_path / "r", model=tiny_model(image_size=32))
    with pytest.raises(
        DataError, match=r"manifest.json: frames are 64x64 but --model.image-size is 32"
    ):
        train(cfg)
    assert not (tmp_path / "r").exists()


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_loss = WorldModel.loss
    calls = {"n": 0}

    def poisoned(self, frames, actions, has_actions=None, rank=True):
        loss, metrics = real_loss(self, frames, actions, has_actions, rank)
        calls["n"] += 1
        return (loss * float("nan"), metrics) if calls["n"] > 4 else (loss, metrics)

    monkeypatch.setattr(WorldModel, "loss", poisoned)
    out = tmp_path / "nan"
    with pytest.raises(
        TrainingDiverged, match=r"loss is nan at step 4; last good checkpoint: .*step_00000003"
    ):
        train(tiny_train(tiny_data, out))
    assert [d.name for d in checkpoint_dirs(out)] == ["step_00000003"]
    WorldModel.from_pretrained(latest_checkpoint(out))


def test_lr_schedule_warms_up_then_decays() -> None:
    cfg = tiny_train(Path("d"), Path("o"), steps=100, warmup_steps=10, lr=1.0, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(99, cfg) == pytest.approx(0.1, abs=1e-3)
    assert lr_at(50, cfg) < lr_at(20, cfg)


def test_kill_9_loses_only_steps_since_the_last_checkpoint(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    args = [
        sys.executable,
        "-m",
        "jepaworld.cli",
        "train",
        "--data",
        str(tiny_data),
        "--out",
        str(out),
        "--steps",
        "400",
        "--batch-size",
        "4",
        "--clip-frames",
        "3",
        "--workers",
        "0",
        "--checkpoint-every",
        "2",
        *tiny_model_args(),
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.time() + 120
        while len(checkpoint_dirs(out)) < 2 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(0.3)  # let it get into the middle of a later checkpoint write
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    ckpt = latest_checkpoint(out)
    step = load_train_state(ckpt)["step"]
    assert 2 <= step < 400
    WorldModel.from_pretrained(ckpt)  # whole, loads strictly
    done = subprocess.run(
        args[:9] + ["8" if step < 8 else str(step + 2)] + args[10:] + ["--resume"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert load_train_state(latest_checkpoint(out))["step"] == max(8, step + 2)


def test_checkpoint_carries_the_metrics_up_to_its_step(tiny_run: Path) -> None:
    first = checkpoint_dirs(tiny_run)[0]
    steps = [json.loads(x)["step"] for x in (first / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


def test_resume_keeps_the_runs_schedule_unless_steps_is_given(
    tiny_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r"
    train(tiny_train(tiny_data, out, stop_at=3))
    train(TrainConfig(out=out, resume=True, workers=0))  # no --data, no --steps
    assert load_train_state(latest_checkpoint(out))["step"] == 6
    record = json.loads((latest_checkpoint(out) / "config.json").read_text())
    assert record["train"]["steps"] == 6


def test_resume_on_other_data_is_refused(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    train(tiny_train(tiny_data, out, stop_at=3))
    other = tmp_path / "other"
    shutil.copytree(tiny_data, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["policy"]["noise"] = 0.5
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="the run was trained on"):
        train(tiny_train(other, out, resume=True))
    shutil.move(str(tiny_data / "manifest.json"), str(tmp_path / "saved_manifest.json"))
    try:
        shutil.copyfile(other / "manifest.json", tiny_data / "manifest.json")
        with pytest.raises(DataError, match="not the data this run was trained on"):
            train(tiny_train(tiny_data, out, resume=True))
    finally:
        shutil.move(str(tmp_path / "saved_manifest.json"), str(tiny_data / "manifest.json"))


def test_non_finite_gradients_stop_training(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_loss = WorldModel.loss

    def inf_grad(self, frames, actions, has_actions=None, rank=True):  # finite loss, inf gradient
        self.predictor.out.bias.register_hook(lambda g: g * float("inf"))
        return real_loss(self, frames, actions, has_actions, rank)

    monkeypatch.setattr(WorldModel, "loss", inf_grad)
    with pytest.raises(TrainingDiverged, match="gradient norm is"):
        train(tiny_train(tiny_data, tmp_path / "g"))
    assert checkpoint_dirs(tmp_path / "g") == []


def test_a_torn_metrics_line_does_not_block_resume(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    train(tiny_train(tiny_data, out, stop_at=3))
    with open(out / "metrics.jsonl", "a") as f:
        f.write('{"step": 4, "loss": 1.2')  # a kill mid-write
    train(tiny_train(tiny_data, out, resume=True))
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_training_on_action_free_video(tmp_path: Path) -> None:
    from jepaworld.data.voe import write_training_videos

    data = tmp_path / "videos"
    write_training_videos(data, count=4, seed=0)
    cfg = tiny_train(data, tmp_path / "run", model=tiny_model(frame_stride=2))
    ckpt = train(cfg)
    assert load_train_state(ckpt)["step"] == 6
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(x["loss"]) for x in lines)


def test_init_starts_from_another_runs_weights_and_records_them(
    tiny_data: Path, tiny_run: Path, tmp_path: Path
) -> None:
    ckpt = latest_checkpoint(tiny_run)
    # zero steps of learning (lr ~0): the weights stay the --init run's, not a fresh init's
    cfg = tiny_train(tiny_data, tmp_path / "ft", steps=1, init=tiny_run, lr=1e-12, warmup_steps=0)
    train(cfg)
    new = latest_checkpoint(tmp_path / "ft")
    before, after = load_file(ckpt / "model.safetensors"), load_file(new / "model.safetensors")
    learned = [k for k in before if "running_" not in k and "num_batches" not in k]  # not BN stats
    assert learned and all(torch.allclose(before[k], after[k], atol=1e-6) for k in learned)
    record = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert record["init"]["checkpoint"] == str(ckpt) and len(record["init"]["sha256"]) == 64
    wider = tiny_train(tiny_data, tmp_path / "w", init=tiny_run, model=tiny_model(embed_dim=24))
    with pytest.raises(
        ValueError, match=rf"--init {tiny_run}: its model config differs in embed_dim"
    ):
        train(wider)
    assert not (tmp_path / "w").exists()


def test_freeze_encoder_trains_the_predictor_alone(
    tiny_data: Path, tiny_run: Path, tmp_path: Path
) -> None:
    before = load_file(latest_checkpoint(tiny_run) / "model.safetensors")
    train(tiny_train(tiny_data, tmp_path / "fz", steps=3, init=tiny_run, freeze_encoder=True))
    after = load_file(latest_checkpoint(tmp_path / "fz") / "model.safetensors")
    encoder = [k for k in before if k.startswith("encoder.")]
    predictor = [k for k in before if k.startswith("predictor.")]
    assert encoder and predictor
    assert all(torch.equal(before[k], after[k]) for k in encoder)  # BN statistics included
    assert any(not torch.allclose(before[k], after[k]) for k in predictor)
    with pytest.raises(ValueError, match="freeze_encoder: needs --init"):
        tiny_train(tiny_data, tmp_path / "nz", freeze_encoder=True)


def _metric(run: Path, name: str) -> list[float]:
    return [json.loads(x)[name] for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_cached_latents_train_the_predictor_as_the_frames_do(
    tiny_data: Path, tiny_run: Path, tmp_path: Path
) -> None:
    frozen = dict(steps=4, init=tiny_run, freeze_encoder=True)
    train(tiny_train(tiny_data, tmp_path / "frames", **frozen))
    train(tiny_train(tiny_data, tmp_path / "cached", cache_latents=True, **frozen))
    for name in ("pred", "rollout"):  # the same clips, the same embeddings, the same losses
        assert _metric(tmp_path / "cached", name) == pytest.approx(
            _metric(tmp_path / "frames", name), rel=1e-4
        )
    before = _weights(latest_checkpoint(tiny_run))
    via_frames = _weights(latest_checkpoint(tmp_path / "frames"))
    cached = _weights(latest_checkpoint(tmp_path / "cached"))
    encoder = [k for k in before if k.startswith("encoder.")]
    assert all(torch.equal(before[k], cached[k]) for k in encoder)
    predictor = [k for k in before if k.startswith("predictor.")]
    assert any(not torch.allclose(before[k], cached[k]) for k in predictor)
    assert all(torch.allclose(via_frames[k], cached[k], atol=1e-4) for k in predictor)


def test_cached_latents_are_the_embeddings_evaluation_sees(tiny_data: Path, tiny_run: Path) -> None:
    model = WorldModel.from_pretrained(latest_checkpoint(tiny_run)).train()
    model.encoder_autocast = torch.bfloat16  # a bfloat16 training run's encoder
    clips = ClipDataset(EpisodeStore(tiny_data), 3, model.config.frame_stride)
    cached = encode_clips(model, clips, chunk=7)  # episodes of 30 frames: chunks of 7 and 2
    assert model.encoder_autocast == torch.bfloat16  # given back
    model.eval().encoder_autocast = None  # as evaluation encodes: eval mode, float32
    first, second = (torch.from_numpy(clips.store.episode(e).frames) for e in (0, 1))
    want = model.encode(second[None])[0]  # (T, D)
    got = cached.z[len(first) : len(first) + len(second)]
    assert (got - want).abs().max() < 1e-4  # other batch sizes round a little differently
    model.encoder_autocast = torch.bfloat16
    assert (model.encode(second[None])[0] - want).abs().max() > 1e-3  # what the check tells apart


def test_a_cached_latent_run_resumes_exactly(
    tiny_data: Path, tiny_run: Path, tmp_path: Path
) -> None:
    cached = dict(init=tiny_run, freeze_encoder=True, cache_latents=True)
    train(tiny_train(tiny_data, tmp_path / "whole", **cached))
    split = tmp_path / "split"
    train(tiny_train(tiny_data, split, stop_at=4, **cached))
    train(tiny_train(tiny_data, split, resume=True))  # the run's own choice: cached
    assert _same(
        _weights(latest_checkpoint(tmp_path / "whole")), _weights(latest_checkpoint(split))
    )
    lines = [json.loads(x) for x in (split / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3, 4, 5, 6]
    assert not any("reg" in x for x in lines)  # no step read frames (whose loss has SIGReg)


def test_hidden_frames_change_what_the_predictor_learns_and_resume_exactly(
    tiny_data: Path, tiny_run: Path, tmp_path: Path
) -> None:
    cached = dict(init=tiny_run, freeze_encoder=True, cache_latents=True)
    train(tiny_train(tiny_data, tmp_path / "seen", **cached))
    hiding = dict(cached, hide_frames=1.0, hide_span=2)
    train(tiny_train(tiny_data, tmp_path / "whole", **hiding))
    split = tmp_path / "split"
    train(tiny_train(tiny_data, split, stop_at=4, **hiding))
    train(tiny_train(tiny_data, split, resume=True))  # the run's own hiding, its RNG restored
    hidden = _weights(latest_checkpoint(tmp_path / "whole"))
    assert _same(hidden, _weights(latest_checkpoint(split)))
    assert not _same(hidden, _weights(latest_checkpoint(tmp_path / "seen")))


@pytest.mark.parametrize("world", ["ema_target_and_proprioception", "action_free_video"])
def test_cached_latents_serve_every_kind_of_frozen_run(world: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    if world == "action_free_video":
        from jepaworld.data.voe import write_training_videos

        write_training_videos(data, count=4, seed=0)
        model = tiny_model(frame_stride=2, target="ema", ema_momentum=0.5)
    else:
        collect(CollectConfig(out=data, episodes=3, episode_length=20))
        model = tiny_model(proprio=(1, 0), target="ema", ema_momentum=0.5)
    train(tiny_train(data, tmp_path / "init", model=model))
    frozen = dict(steps=3, init=tmp_path / "init", freeze_encoder=True, model=model)
    train(tiny_train(data, tmp_path / "frames", **frozen))
    train(tiny_train(data, tmp_path / "cached", cache_latents=True, **frozen))
    for name in ("pred", "rollout"):  # EMA targets: the frozen encoder's own, cached or not
        assert _metric(tmp_path / "cached", name) == pytest.approx(
            _metric(tmp_path / "frames", name), rel=1e-4
        )


def test_cache_latents_is_refused_where_the_encoder_trains_or_the_clips_differ(
    tiny_data: Path, tiny_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r"
    with pytest.raises(ValueError, match="cache_latents: needs --freeze-encoder"):
        tiny_train(tiny_data, out, init=tiny_run, cache_latents=True)
    frozen = dict(init=tiny_run, freeze_encoder=True, cache_latents=True)
    for bad in (dict(drop_actions=True), dict(mix=(tiny_data,)), dict(augment="dihedral")):
        with pytest.raises(ValueError, match="cache_latents: needs --freeze-encoder"):
            tiny_train(tiny_data, out, **frozen, **bad)
    with pytest.raises(ValueError, match="pixel decoder"):
        tiny_train(tiny_data, out, **frozen, model=tiny_model(recon_weight=1.0))
    assert not out.exists()


def test_drop_actions_trains_on_frames_alone(tiny_data: Path, tmp_path: Path) -> None:
    from jepaworld.data.loader import ActionFreeClips
    from jepaworld.train import open_dataset

    cfg = tiny_train(tiny_data, tmp_path / "v", drop_actions=True)
    dataset = open_dataset(cfg).dataset
    item = dataset[(0, 0)]
    assert isinstance(dataset, ActionFreeClips) and not item["has_actions"]
    assert item["actions"].abs().sum() == 0 and item["actions"].shape[-1] > 0
    train(cfg)
    assert latest_checkpoint(tmp_path / "v").exists()
    with pytest.raises(ValueError, match="drop_actions: applies to --data alone"):
        tiny_train(tiny_data, tmp_path / "m", drop_actions=True, mix=(tiny_data,))


def test_ema_target_run_moves_the_target_towards_the_encoder(
    tiny_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ema"
    train(tiny_train(tiny_data, out, model=tiny_model(target="ema", ema_momentum=0.5)))
    w = _weights(latest_checkpoint(out))
    target = {k.removeprefix("target_encoder."): v for k, v in w.items() if "target_" in k}
    online = {k.removeprefix("encoder."): v for k, v in w.items() if k.startswith("encoder.")}
    assert target.keys() == online.keys()
    init = WorldModel(tiny_model(target="ema")).state_dict()  # the seed's initial weights
    moved = [k for k in target if not torch.equal(target[k], init[f"target_encoder.{k}"])]
    assert moved and any(not torch.equal(target[k], online[k]) for k in moved)


def test_ema_momentum_rises_to_one_at_the_last_step() -> None:
    cfg = TrainConfig(data=Path("d"), out=Path("o"), steps=10, model=tiny_model(target="ema"))
    m = [ema_momentum_at(s, cfg) for s in range(10)]
    assert m[0] == pytest.approx(0.996 + 0.004 / 10) and m[-1] == 1.0
    assert all(a < b for a, b in zip(m, m[1:], strict=False))


def test_bfloat16_encoder_run_records_its_dtype_and_trains(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "bf16"
    train(tiny_train(tiny_data, out, encoder_dtype="bfloat16"))
    record = json.loads((out / "config.json").read_text())
    assert record["train"]["encoder_dtype"] == "bfloat16"
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(x["loss"]) for x in lines)
    auto = tmp_path / "auto"
    train(tiny_train(tiny_data, auto, encoder_dtype="auto", steps=1, checkpoint_every=1))
    chosen = json.loads((auto / "config.json").read_text())["train"]["encoder_dtype"]
    assert chosen == ("bfloat16" if native_bfloat16(torch.device("cpu")) else "float32")


def test_init_accepts_a_run_recorded_before_newer_model_fields(
    tiny_data: Path, tiny_run: Path, tmp_path: Path
) -> None:
    """A run whose config.json predates a model field (here target, ema_momentum) has that
    field's default: --init from it works, and a real difference is still refused."""
    old = tmp_path / "old"
    shutil.copytree(tiny_run, old)
    record = json.loads((old / "config.json").read_text())
    del record["model"]["target"], record["model"]["ema_momentum"]
    (old / "config.json").write_text(json.dumps(record))
    train(tiny_train(tiny_data, tmp_path / "fz", steps=1, checkpoint_every=1, init=old))
    with pytest.raises(ValueError, match="differs in target"):
        train(tiny_train(tiny_data, tmp_path / "x", init=old, model=tiny_model(target="ema")))


def test_frozen_encoder_with_an_ema_target_predicts_the_frozen_encoders_embeddings(
    tiny_data: Path, tmp_path: Path
) -> None:
    ema = tmp_path / "ema"
    model = tiny_model(target="ema", ema_momentum=0.5)
    train(tiny_train(tiny_data, ema, model=model))
    fz = tmp_path / "fz"
    train(tiny_train(tiny_data, fz, steps=3, init=ema, freeze_encoder=True, model=model))
    w = _weights(latest_checkpoint(fz))
    encoder = {k.removeprefix("encoder."): v for k, v in w.items() if k.startswith("encoder.")}
    target = {k.removeprefix("target_encoder."): v for k, v in w.items() if "target_" in k}
    assert encoder.keys() == target.keys()
    assert all(torch.equal(encoder[k], target[k]) for k in encoder)


def test_episode_cache_budget_is_shared_out(tiny_data: Path, tmp_path: Path) -> None:
    given = TrainConfig(data=tiny_data, out=tmp_path / "a", data_cache_mb=300, workers=2)
    assert episode_cache_mb(given) == 300
    auto = TrainConfig(data=tiny_data, out=tmp_path / "b", workers=2)
    assert episode_cache_mb(auto) == default_cache_mb() / 2
    assert open_dataset(given).dataset.store._cache_limit == 300 * 2**20
    # a mixture shares it by decompressed size: 6 episodes of 30 frames against 2 of 30
    small = tmp_path / "small"
    collect(CollectConfig(out=small, episodes=2, episode_length=30))
    assert mixture_cache_mb(given, [tiny_data, small]) == [225, 75]
    for bad in (-1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="data_cache_mb"):
            TrainConfig(data=tiny_data, out=tmp_path / "c", data_cache_mb=bad)


def test_resume_takes_the_data_cache_given_now(tiny_run: Path) -> None:
    again = prepare_config(TrainConfig(out=tiny_run, resume=True, data_cache_mb=77))
    assert again.data_cache_mb == 77 and again.data is not None


def _clip_batch(cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """A random batch of 4 clips of 3 frames shaped for cfg.model."""
    g, S = torch.Generator().manual_seed(0), cfg.model.image_size
    return {
        "frames": torch.randint(0, 256, (4, 3, S, S, 3), generator=g, dtype=torch.uint8),
        "actions": torch.randn(4, 2, cfg.model.frame_stride * cfg.model.action_dim, generator=g),
    }


def test_a_step_trains_through_the_loss_function_it_is_given() -> None:
    """`--compile` hands train_step a compiled model.loss: the step must take its loss and metrics
    from that function (asking for the rank metric only when it logs), and "off" is model.loss."""
    cfg = tiny_train(Path("d"), Path("o"))
    model = WorldModel(cfg.model).train()
    assert loss_function(model, "off") == model.loss
    opt = make_optimizer(model.parameters(), cfg, torch.device("cpu"))
    ranks: list[bool] = []
    returned: list[float] = []

    def loss_fn(*args: Any, rank: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        ranks.append(rank)
        loss, metrics = model.loss(*args, rank=rank)
        returned.append(1000.0 + float(loss))
        return loss, {**metrics, "loss": metrics["loss"] + 1000.0}

    before = {k: v.clone() for k, v in model.state_dict().items()}
    logged = train_step(model, opt, _clip_batch(cfg), 0, cfg, True, loss_fn)
    assert train_step(model, opt, _clip_batch(cfg), 1, cfg, False, loss_fn) is None
    assert ranks == [True, False] and logged is not None
    assert logged["loss"] == pytest.approx(returned[0])  # the metrics are the function's
    assert not _same(before, model.state_dict())


def test_resume_takes_the_compile_mode_given_now(tiny_run: Path) -> None:
    """How this machine runs a run, as --device: a GPU run resumed on a CPU need not compile."""
    assert prepare_config(TrainConfig(out=tiny_run, resume=True, compile="default")).compile == (
        "default"
    )
    assert prepare_config(TrainConfig(out=tiny_run, resume=True)).compile == "off"
    with pytest.raises(ValueError, match="compile: must be one of off, default, reduce-overhead"):
        tiny_train(Path("d"), Path("o"), compile="max-autotune")


def test_a_step_without_metrics_trains_exactly_as_one_with_them() -> None:
    """The loop reads metrics (a host sync, and an SVD for the effective rank) only on the steps it
    logs; steps that skip them update the weights, the EMA target, the optimizer and the RNG
    identically, and return None."""
    cfg = tiny_train(Path("d"), Path("o"))
    cfg.model = tiny_model(target="ema")
    batch = _clip_batch(cfg)
    after, metrics, opt_states, rng = [], [], [], []
    for log in (True, False):
        torch.manual_seed(0)  # same init and SIGReg directions
        model = WorldModel(cfg.model).train()
        opt = make_optimizer(model.parameters(), cfg, torch.device("cpu"))
        metrics += [train_step(model, opt, batch, step, cfg, log=log) for step in (0, 1)]
        after.append({k: v.clone() for k, v in model.state_dict().items()})
        opt_states.append(opt.state_dict()["state"])
        rng.append(torch.get_rng_state())
    assert metrics[2] is None and metrics[3] is None
    assert {"loss", "eff_rank", "grad_norm", "lr"} <= set(metrics[0])
    assert _same(*after) and torch.equal(*rng)
    for p, state in opt_states[0].items():
        assert all(torch.equal(v, opt_states[1][p][k]) for k, v in state.items())


def test_metrics_are_written_only_on_logged_steps(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "logged"
    train(tiny_train(tiny_data, out, log_every=4))
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [4, 6]  # every 4th step and the last


def test_resume_uses_this_devices_optimizer(tiny_data: Path, tmp_path: Path) -> None:
    """A checkpoint made with fused AdamW (as on CUDA) resumes on the CPU with the CPU's choice."""
    out = tmp_path / "fused"
    train(tiny_train(tiny_data, out, stop_at=3))
    ckpt = latest_checkpoint(out)
    state = load_train_state(ckpt)
    for group in state["optimizer"]["param_groups"]:
        group["fused"] = True
    torch.save(state, ckpt / "train_state.pt")
    cfg = tiny_train(tiny_data, out, resume=True)
    s = _setup(cfg)
    assert all(group["fused"] is None for group in s.opt.param_groups)


def _is_norm_stat(key: str) -> bool:
    return key.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked")


def _norm_stats(model: WorldModel) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.encoder.state_dict().items() if _is_norm_stat(k)}


def test_checkpoints_hold_the_norm_statistics_of_their_own_weights(
    tiny_data: Path, tiny_run: Path, tmp_path: Path
) -> None:
    """Each checkpoint's BatchNorm statistics are those of its own weights over the run's
    calibration batches (calibrating the restored model again changes nothing); a run without
    calibration keeps training's lagging averages, and identical weights: training never reads
    the statistics."""
    session = _setup(tiny_train(tiny_data, tiny_run, resume=True))  # restores the last checkpoint
    saved = _norm_stats(session.model)
    calibrate_norms(session)
    again = _norm_stats(session.model)
    assert all(torch.allclose(saved[k], again[k], rtol=1e-4, atol=1e-6) for k in saved)

    plain = tmp_path / "plain"
    train(tiny_train(tiny_data, plain, norm_calibration_batches=0))
    lagging = _norm_stats(WorldModel.from_pretrained(latest_checkpoint(plain)))
    assert not torch.allclose(lagging["norm.running_mean"], saved["norm.running_mean"], atol=1e-3)
    a, b = _weights(latest_checkpoint(tiny_run)), _weights(latest_checkpoint(plain))
    assert _same(*({k: v for k, v in w.items() if not _is_norm_stat(k)} for w in (a, b)))


def test_a_proprio_run_reads_its_episodes_states_and_refuses_what_it_cannot_read(
    tiny_data: Path, tmp_path: Path
) -> None:
    from jepaworld.data.episodes import EpisodeStore

    cfg = tiny_train(tiny_data, tmp_path / "p", model=tiny_model(proprio=(1, 0)))
    store = EpisodeStore(tiny_data)
    item = open_dataset(cfg).dataset[(1, 2)]  # episode 1, clip from frame 2
    stride = cfg.model.frame_stride
    want = store.episode(1).states[2 : 2 + stride * cfg.clip_frames : stride]  # (T, S)
    assert torch.equal(item["states"], torch.from_numpy(want))
    train(cfg)
    model = WorldModel.from_pretrained(latest_checkpoint(tmp_path / "p"))
    every = np.concatenate([store.episode(e).states for e in range(len(store))])[:, [1, 0]]
    assert np.allclose(model.proprio_mean.numpy(), every.mean(0), rtol=1e-5)
    assert np.allclose(model.proprio_std.numpy(), every.std(0, ddof=1), rtol=1e-4)
    width = store.states(0).shape[1]
    with pytest.raises(DataError, match=f"state vectors have {width} entries.*reads entry 5"):
        train(tiny_train(tiny_data, tmp_path / "q", model=tiny_model(proprio=(5,))))
    assert not (tmp_path / "q").exists()
    with pytest.raises(ValueError, match="model.proprio: reads the episodes' state vectors"):
        tiny_train(tiny_data, tmp_path / "m", model=tiny_model(proprio=(0,)), mix=(tiny_data,))


def test_dihedral_augmentation_trains_reproducibly_and_only_on_a_symmetric_world(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(DataError, match="augment dihedral needs a world.*'jepaworld/TwoRoom-v0'"):
        train(tiny_train(tiny_data, tmp_path / "refused", augment="dihedral"))
    assert not (tmp_path / "refused").exists()
    with pytest.raises(ValueError, match="augment: turns --data's clips alone"):
        tiny_train(tiny_data, tmp_path / "m", augment="dihedral", mix=(tiny_data,))
    # Two-Room's walls are not symmetric; declared so here only to train a few steps, with a rule
    # that turns its state's entries 0 and 1 about the middle of the room
    turned: list[np.ndarray] = []

    def turn(states: np.ndarray, m: np.ndarray) -> np.ndarray:
        turned.append(states)
        xy = (states[..., :2] - 32.0) @ m.T + 32.0
        return np.concatenate([xy, states[..., 2:]], axis=-1)

    monkeypatch.setattr("jepaworld.train.DIHEDRAL_ENVS", {"jepaworld/TwoRoom-v0": turn})
    runs = {}
    for name, augment in (("a", "dihedral"), ("b", "dihedral"), ("plain", "none")):
        train(tiny_train(tiny_data, tmp_path / name, steps=3, augment=augment))
        runs[name] = _weights(latest_checkpoint(tmp_path / name))
    assert _same(runs["a"], runs["b"])
    assert not _same(runs["a"], runs["plain"])
    split = tmp_path / "split"  # stopped after step 2 and resumed: the same turns, the same weights
    train(tiny_train(tiny_data, split, steps=3, augment="dihedral", stop_at=2, checkpoint_every=2))
    train(tiny_train(tiny_data, split, steps=3, resume=True))
    assert _same(runs["a"], _weights(latest_checkpoint(split)))
    record = json.loads((tmp_path / "a" / "config.json").read_text())
    assert record["train"]["augment"] == "dihedral"
    assert not turned  # no state vectors without proprioception
    proprio = tiny_model(proprio=(0, 1))
    for name in ("pa", "pb"):  # proprioception turns with the frames, by the world's rule
        train(tiny_train(tiny_data, tmp_path / name, steps=3, augment="dihedral", model=proprio))
    assert turned and all(t.shape[-1] == 2 for t in turned)
    turned_weights = _weights(latest_checkpoint(tmp_path / "pa"))
    assert _same(turned_weights, _weights(latest_checkpoint(tmp_path / "pb")))
    # the turned states reach the model: a rule that leaves them as they are trains otherwise
    keep = {"jepaworld/TwoRoom-v0": lambda states, m: np.asarray(states, np.float64)}
    monkeypatch.setattr("jepaworld.train.DIHEDRAL_ENVS", keep)
    train(tiny_train(tiny_data, tmp_path / "pk", steps=3, augment="dihedral", model=proprio))
    assert not _same(turned_weights, _weights(latest_checkpoint(tmp_path / "pk")))
    # a rule that does not fit the stored states is refused before training, naming the data
    narrow = {"jepaworld/TwoRoom-v0": lambda states, m: states[..., 5]}
    monkeypatch.setattr("jepaworld.train.DIHEDRAL_ENVS", narrow)
    with pytest.raises(DataError, match="TwoRoom-v0's rule, which does not fit their 2 entries"):
        train(tiny_train(tiny_data, tmp_path / "pn", augment="dihedral", model=proprio))
    assert not (tmp_path / "pn").exists()


def test_hidden_runs_hide_one_run_per_chosen_clip_and_never_the_first_frame() -> None:
    torch.manual_seed(0)
    before = torch.get_rng_state()
    assert hidden_runs(8, 10, 0.0, 4) is None
    assert torch.equal(before, torch.get_rng_state())  # no draw: runs without hiding unchanged
    hidden = hidden_runs(4000, 10, 0.5, 4)
    assert hidden is not None and hidden.shape == (4000, 10) and not hidden[:, 0].any()
    per_clip = hidden.sum(dim=1)  # (B,)
    assert 0.45 < float((per_clip > 0).float().mean()) < 0.55
    assert int(per_clip.max()) == 4
    starts = hidden.float().argmax(dim=1)  # first hidden frame of each clip
    runs = per_clip[per_clip > 0]
    ends = starts[per_clip > 0] + runs  # one contiguous run: hidden exactly from start to end
    t = torch.arange(10)
    rebuilt = (t >= starts[per_clip > 0, None]) & (t < ends[:, None])
    assert torch.equal(rebuilt, hidden[per_clip > 0])


def test_latent_loss_with_hidden_frames_predicts_the_true_embeddings_from_zeros() -> None:
    torch.manual_seed(0)
    model = WorldModel(tiny_model(action_dim=0, rollout_context=2)).train()
    z = torch.randn(3, 6, model.config.latent_dim)
    acts = torch.zeros(3, 5, 0)
    hidden = torch.zeros(3, 6, dtype=torch.bool)
    hidden[1, 2:4] = True  # after the rollout's 2 context frames
    hidden[2, 1] = True  # inside them: the rollout starts from a zero
    shown = z.clone()
    shown[1, 2:4] = 0.0
    shown[2, 1] = 0.0
    with_hidden = model.latent_loss(z, acts, hidden=hidden)[0]
    teacher, rollout, _ = model._prediction_terms(shown, z, acts, None)
    assert torch.allclose(with_hidden, teacher + model.config.rollout_weight * rollout)
    assert not torch.allclose(with_hidden, model.latent_loss(z, acts)[0])
    nothing_hidden = model.latent_loss(z, acts, hidden=torch.zeros_like(hidden))[0]
    assert torch.allclose(nothing_hidden, model.latent_loss(z, acts)[0])


def test_hide_frames_needs_cached_latents_and_a_share_and_span_in_range() -> None:
    with pytest.raises(ValueError, match="hide_frames.*cache-latents"):
        TrainConfig(out=Path("x"), data=Path("d"), hide_frames=0.5)
    with pytest.raises(ValueError, match="hide_frames"):
        TrainConfig(out=Path("x"), data=Path("d"), hide_frames=1.5)
    with pytest.raises(ValueError, match="hide_span"):
        TrainConfig(out=Path("x"), data=Path("d"), hide_span=0)
