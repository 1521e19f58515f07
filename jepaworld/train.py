"""Train a world model on an episode dataset.

A run directory holds::

    RUN/config.json                   resolved RunConfig (train + model) and the data identity
    RUN/metrics.jsonl                 one JSON line per logged step
    RUN/checkpoints/step_00001000/    config.json, model.safetensors, train_state.pt

A checkpoint is written into a hidden temporary directory, fsynced, then renamed into place, so a
kill -9 at any moment leaves the previous checkpoint whole. `--resume` restores weights, optimizer,
step and RNG, and the data order is a pure function of (seed, step): the resumed run continues
exactly as the uninterrupted one would have.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

import numpy as np
import torch
from tqdm.auto import tqdm

from jepaworld.allocator import keep_freed_memory
from jepaworld.config import from_dict, read_json_object, require, to_dict
from jepaworld.data.augment import augment_batch, element_matrix
from jepaworld.data.episodes import (
    DataError,
    EpisodeStore,
    atomic_write,
    default_cache_mb,
    frames_nbytes,
    load_manifest,
    manifest_sha256,
    sha256_file,
)
from jepaworld.data.latents import LatentClips
from jepaworld.data.loader import (
    ActionFreeClips,
    ClipDataset,
    MixtureDataset,
    StepBatchSampler,
    make_loader,
)
from jepaworld.data.video_folder import VideoClipDataset, index_videos
from jepaworld.envs import DIHEDRAL_ENVS, StateTurn
from jepaworld.models.world_model import (
    CheckpointError,
    ModelConfig,
    WorldModel,
    load_weights_strict,
)

log = logging.getLogger(__name__)
CHECKPOINTS = "checkpoints"
DEFAULT_STEPS = 3000
TRAIN_STATE = "train_state.pt"
METRICS = "metrics.jsonl"
VIDEO_INDEX = "videos.json"
VIDEO_FOLDER_ID = "video-folder"
"""data_env_id of a run trained on --videos."""
CompileMode = Literal["off", "default", "reduce-overhead"]
COMPILE_MODES: tuple[str, ...] = get_args(CompileMode)
LossFn = Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]
"""`WorldModel.loss`'s signature: (frames, actions, has_actions, rank=, [proprio=]) ->
(loss, metrics); `WorldModel.latent_loss`'s is the same with embeddings (B, T, D) in place of
frames and hidden= in place of proprio=."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainConfig:
    """Train a JEPA world model on a dataset of episodes."""

    out: Path
    """Run directory (config, metrics, checkpoints)."""
    data: Path | None = None
    """Dataset directory written by `jepaworld collect` or `physics make` (this or --videos is
    required, except with --resume)."""
    mix: tuple[Path, ...] = ()
    """More datasets (from `collect` or `physics make`) trained on with --data: each clip of a
    batch comes from one dataset, chosen with probability --mix-weights; frames of another size are
    area-resized to the model's, action-free datasets get the null action."""
    mix_weights: tuple[float, ...] = ()
    """Sampling weight of --data, then of each --mix dataset (default: equal)."""
    video_stride: int = 1
    """Frame stride of the action-free datasets of a mixture (the model's frame_stride spans the
    actions of the others)."""
    drop_actions: bool = False
    """Train on --data's frames alone, as action-free video (every clip gets the null action):
    the V-JEPA 2 recipe's pretraining stage on an environment's own frames."""
    init: Path | None = None
    """Start from the latest weights of this run (e.g. one trained with --drop-actions), with a
    fresh optimizer and schedule; its model config must equal this one's."""
    freeze_encoder: bool = False
    """Keep the encoder as --init left it (no gradient, and in eval mode, so its output norm uses the
    running statistics it learned) and train the predictor alone: V-JEPA 2-AC's recipe, a frozen
    video encoder with an action-conditioned predictor learned on top. Needs --init."""
    cache_latents: bool = False
    """With --freeze-encoder: encode every frame of --data once, before the first step, as
    evaluation encodes it (float32, whatever --encoder-dtype), and train the predictor on those
    embeddings (kept in memory on the training device, N frames x D floats) instead of reading
    and encoding each batch's frames again: the same clips and the same prediction losses,
    without the encoder's terms (a frozen encoder's do not train).
    --data alone (no --mix, --videos, --drop-actions or --augment), a model without a pixel
    decoder (--model.recon-weight 0)."""
    hide_frames: float = 0.0
    """With --cache-latents: the probability that a clip's predictor inputs lose a run of 1 to
    --hide-span frames (set to zeros; the first frame is always kept), while the targets keep
    them, so the predictor learns to predict on past frames it did not see. The open-loop
    rollout term starts from the first --model.rollout-context inputs, hidden ones included,
    and does not read the later ones. 0: every frame seen. In the physics recipe's stage, 0.5
    raised shape/colour constancy on the validation sets on three seeds of five and on the
    protocol's on two, lowered gravity, and made no more seeds pass, one run each (README:
    "Where constancy is lost")."""
    hide_span: int = 8
    """With --hide-frames: the longest run of hidden frames."""
    videos: Path | None = None
    """Instead of --data: a folder of video files (.mp4 .mkv .webm .avi .mov, searched
    recursively), decoded with PyAV as action-free clips; unreadable files are skipped and logged."""
    steps: int | None = None
    """Total optimizer steps; the LR schedule is defined in steps, so short runs still anneal
    (default 3000; with --resume, the run's own unless given)."""
    batch_size: int = 64
    """Clips per step."""
    clip_frames: int = 4
    """Model steps per training clip (T); the rollout loss predicts T-1 steps open-loop."""
    lr: float = 2e-3
    """Peak learning rate (AdamW)."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    warmup_steps: int = 100
    """Linear warm-up steps, then cosine decay to min_lr_ratio * lr."""
    min_lr_ratio: float = 0.05
    """Final learning rate as a fraction of lr."""
    grad_clip: float = 1.0
    """Gradient-norm clipping (0 disables)."""
    seed: int = 0
    """Seed for initialisation, data order and SIGReg directions."""
    workers: int = 1
    """DataLoader worker processes (0 loads in the training process)."""
    data_cache_mb: float = 0.0
    """RAM for decompressed episodes of --data (and --mix, shared out by dataset size), in MiB,
    in each process that reads them (each DataLoader worker has its own); 0: a quarter of the
    machine's memory (or of the container's limit) shared out among the workers. Clips come from
    random episodes, so a cache smaller than the decompressed dataset decompresses them over and
    over (PushT, 1000 episodes, 2 cores: 1000 steps took 134 s with 512 MiB, 96 s with all
    1.2 GiB cached)."""
    checkpoint_every: int = 500
    """Write a checkpoint every this many steps (and at the end)."""
    keep_checkpoints: int = 2
    """How many most recent checkpoints to keep."""
    norm_calibration_batches: int = 8
    """Before each checkpoint, re-estimate the encoder's BatchNorm running statistics over the
    run's first this-many batches with the weights being saved (0: keep training's running
    averages, which lag the weights; on Pendulum-v1 they made evaluation's embeddings wrong).
    Their frames are read once, by the training process, and kept in RAM on the CPU; a frozen
    encoder (--freeze-encoder) keeps the statistics of --init."""
    log_every: int = 25
    """Append a metrics line every this many steps."""
    stop_at: int = 0
    """Stop after this step, keeping the schedule of `steps` (split a run across sessions; 0 = end)."""
    resume: bool = False
    """Continue the run in `out` from its latest checkpoint (its saved config is used)."""
    tensorboard: bool = False
    """Also write TensorBoard events to RUN/tb (needs the tensorboard package)."""
    device: str = "auto"
    """Device: auto (CUDA when available), cpu, cuda, cuda:N."""
    threads: int = 0
    """torch CPU threads (0 keeps torch's default)."""
    encoder_dtype: Literal["float32", "bfloat16", "auto"] = "float32"
    """Precision of the encoder's feature layers in training (torch.autocast): bfloat16 runs them
    about twice as fast on CPUs with AMX or AVX512-BF16 and on recent GPUs, and far slower on CPUs
    without; auto picks bfloat16 where the device has it natively. Embeddings, predictor and losses
    stay float32, and evaluation runs in float32. The run's config records the dtype chosen."""
    compile: CompileMode = "off"
    """torch.compile the loss (forward and backward; the optimizer step stays eager): default
    fuses kernels; reduce-overhead also replays each step as CUDA graphs, for a GPU, where a small
    model's step is bound by kernel launches. The first steps compile (tens of seconds, again for
    the steps that log metrics); benchmarks/compile_speed.py measures each mode on a machine."""
    augment: Literal["none", "dihedral"] = "none"
    """dihedral: turn each training clip by one of the square's 8 symmetries (turns by 90 degrees,
    mirror images; the identity among them), its 2-D actions with it: seven more clips the world
    could have given, for a world whose physics looks the same turned or mirrored and whose actions
    are displacements in the frame's axes (jepaworld.envs.DIHEDRAL_ENVS: PushT, whose fixed goal
    outline turns with the frame). The state vectors --model.proprio reads turn with them, by the
    world's rule (their standardisation stays the recorded data's). --data alone."""
    model: ModelConfig = field(default_factory=ModelConfig)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.data = None if self.data is None else Path(self.data)
        self.videos = None if self.videos is None else Path(self.videos)
        self.init = None if self.init is None else Path(self.init)
        require(
            not (self.drop_actions and (self.mix or self.videos)),
            "drop_actions",
            "applies to --data alone (mixtures and --videos already mark action-free clips)",
        )
        self.mix = tuple(Path(p) for p in self.mix)
        self.mix_weights = tuple(float(w) for w in self.mix_weights)
        require(
            self.data is None or self.videos is None, "videos", "give --data or --videos, not both"
        )
        require(not self.mix or self.data is not None, "mix", "needs --data (the first dataset)")
        require(
            not self.freeze_encoder or self.init is not None or self.resume,
            "freeze_encoder",
            "needs --init RUN (a fresh encoder would stay random)",
        )
        if not self.resume:  # on --resume, checked against the run's saved config
            self.check_cache_latents()
        require(0 <= self.hide_frames <= 1, "hide_frames", "must be in [0, 1]")
        require(self.hide_span >= 1, "hide_span", "must be >= 1")
        require(
            not self.mix_weights or len(self.mix_weights) == len(self.mix) + 1,
            "mix_weights",
            f"one weight for --data and one per --mix dataset ({len(self.mix) + 1}), "
            f"got {len(self.mix_weights)}",
        )
        require(all(w > 0 for w in self.mix_weights), "mix_weights", "must be positive")
        require(self.video_stride >= 1, "video_stride", "must be >= 1")
        if not self.resume:
            require(
                self.data is not None or self.videos is not None,
                "data",
                "--data or --videos is required (unless --resume)",
            )
            self.steps = DEFAULT_STEPS if self.steps is None else self.steps
        if self.steps is None:  # resolved from the run's config by prepare_config
            return
        for name in ("steps", "batch_size", "checkpoint_every", "log_every", "keep_checkpoints"):
            require(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
        require(self.clip_frames >= 2, "clip_frames", f"must be >= 2, got {self.clip_frames}")
        require(self.clip_frames <= self.model.max_len, "clip_frames", "must be <= model.max_len")
        require(
            self.lr > 0 and math.isfinite(self.lr),
            "lr",
            f"must be a positive number, got {self.lr}",
        )
        require(self.workers >= 0, "workers", "must be >= 0")
        require(
            self.norm_calibration_batches >= 0,
            "norm_calibration_batches",
            f"must be >= 0, got {self.norm_calibration_batches}",
        )
        require(
            0 <= self.data_cache_mb < math.inf,
            "data_cache_mb",
            f"must be a finite number >= 0 (0: automatic), got {self.data_cache_mb}",
        )
        require(self.warmup_steps >= 0, "warmup_steps", "must be >= 0")
        require(0 <= self.min_lr_ratio <= 1, "min_lr_ratio", "must be in [0, 1]")
        require(self.threads >= 0, "threads", "must be >= 0")
        require(
            self.compile in COMPILE_MODES,
            "compile",
            f"must be one of {', '.join(COMPILE_MODES)}, got {self.compile!r}",
        )
        require(0 <= self.stop_at <= self.steps, "stop_at", "must be in [0, steps]")
        require(
            not self.model.proprio or not (self.mix or self.videos or self.drop_actions),
            "model.proprio",
            "reads the episodes' state vectors: --data alone (no --mix, --videos or "
            "--drop-actions, whose clips have no states)",
        )
        require(
            self.augment in ("none", "dihedral"),
            "augment",
            f"must be none or dihedral, got {self.augment!r}",
        )
        require(
            self.augment == "none" or not (self.mix or self.videos),
            "augment",
            "turns --data's clips alone (no --mix or --videos)",
        )

    def check_cache_latents(self) -> None:
        """Refuses --cache-latents where the encoder trains or the clips are not --data's, and
        --hide-frames without --cache-latents."""
        require(
            not self.cache_latents
            or (
                self.freeze_encoder
                and not (self.mix or self.videos or self.drop_actions)
                and self.augment == "none"
                and self.model.recon_weight == 0
            ),
            "cache_latents",
            "needs --freeze-encoder and --data alone (no --mix, --videos, --drop-actions or "
            "--augment), and a model without a pixel decoder (--model.recon-weight 0), whose "
            "decoder would not train",
        )
        require(
            not self.hide_frames or self.cache_latents,
            "hide_frames",
            "hides the cached embeddings of the predictor's inputs: needs --cache-latents",
        )


def native_bfloat16(device: torch.device) -> bool:
    """Whether the device computes bfloat16 convolutions and matmuls natively (CPU: oneDNN with
    AVX512-BF16 or AMX; CUDA: compute capability 8.0 or newer)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type != "cpu":
        return False
    # oneDNN also runs bfloat16 on plain AVX512, by conversion: slower than float32, so not native
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def resolve_encoder_dtype(name: str, device: torch.device) -> str:
    """--encoder-dtype auto -> "bfloat16" where `native_bfloat16(device)`, else "float32"."""
    if name != "auto":
        return name
    return "bfloat16" if native_bfloat16(device) else "float32"


def autocast_dtype(encoder_dtype: str) -> torch.dtype | None:
    """A resolved --encoder-dtype -> WorldModel.encoder_autocast (None: plain float32)."""
    return torch.bfloat16 if encoder_dtype == "bfloat16" else None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {name} requested but CUDA is not available")
    return device


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up then cosine decay, a function of the step alone."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def ema_momentum_at(step: int, cfg: TrainConfig) -> float:
    """EMA target momentum after optimizer step `step`: model.ema_momentum rising linearly to 1
    at the last step (I-JEPA's schedule), a function of the step alone so a resumed run agrees."""
    m0 = cfg.model.ema_momentum
    return m0 + (1.0 - m0) * min(1.0, (step + 1) / cfg.steps)


# ---- checkpoints ------------------------------------------------------------------------------


def checkpoint_dirs(run: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (temporary dirs are ignored)."""
    root = Path(run) / CHECKPOINTS
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_"))


def latest_checkpoint(run: Path) -> Path:
    """The newest complete checkpoint of RUN, or a CheckpointError naming RUN."""
    dirs = checkpoint_dirs(run)
    if not dirs:
        raise CheckpointError(f"{run}: no checkpoint found (expected {run}/{CHECKPOINTS}/step_*)")
    return dirs[-1]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(
    run: Path,
    model: WorldModel,
    opt: torch.optim.Optimizer,
    step: int,
    cfg: TrainConfig,
    data_sha: str,
) -> Path:
    """Write RUN/checkpoints/step_N atomically and prune old ones."""
    root = run / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:08d}"
    for stale in root.glob(".tmp-step_*"):  # left by a run killed mid-write
        shutil.rmtree(stale, ignore_errors=True)
    tmp = root / f".tmp-step_{step:08d}-{os.getpid()}"
    model.save(
        tmp, extra_config={"train": to_dict(cfg), "data_manifest_sha256": data_sha, "step": step}
    )
    state = {"step": step, "optimizer": opt.state_dict(), "torch_rng": torch.get_rng_state()}
    if model.device.type == "cuda":  # SIGReg draws its directions there
        state["cuda_rng"] = torch.cuda.get_rng_state(model.device)
    torch.save(state, tmp / TRAIN_STATE)
    if (run / METRICS).is_file():  # the curve up to this step travels with the checkpoint
        shutil.copyfile(run / METRICS, tmp / METRICS)
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    _fsync_dir(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_dir(root)
    for old in checkpoint_dirs(run)[: -cfg.keep_checkpoints]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_train_state(ckpt: Path) -> dict[str, Any]:
    path = ckpt / TRAIN_STATE
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for corrupt or unsafe files
        raise CheckpointError(f"{path}: cannot load train state ({type(e).__name__}: {e})") from e


# ---- set-up -----------------------------------------------------------------------------------


def prepare_config(cfg: TrainConfig) -> TrainConfig:
    """On --resume, take the run's saved config (keeping the new steps, workers, device, threads,
    data cache and compile mode: how this machine runs it, not what is trained)."""
    if not cfg.resume:
        if checkpoint_dirs(cfg.out):
            raise FileExistsError(
                f"{cfg.out}: already holds checkpoints; pass --resume or another --out"
            )
        return cfg
    record = read_run_record(cfg.out)
    path = cfg.out / "config.json"
    try:
        train_dict = {**record["train"], "resume": True, "stop_at": cfg.stop_at}
        train_dict.update(workers=cfg.workers, device=cfg.device, threads=cfg.threads)
        train_dict["compile"] = cfg.compile
        train_dict["data_cache_mb"] = cfg.data_cache_mb
        if cfg.steps is not None:
            train_dict["steps"] = cfg.steps
        saved = from_dict(TrainConfig, train_dict, source=str(path))
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: not a run config ({e!r})") from e
    saved.check_cache_latents()
    for name in ("data", "videos"):
        given, trained = getattr(cfg, name), getattr(saved, name)
        if given is not None and given != trained:
            raise ValueError(f"{name}: the run was trained on {trained}, not {given}")
    return saved


def read_run_record(run: Path) -> dict[str, Any]:
    """RUN/config.json as written by `train`, with errors that name the file."""
    path = Path(run) / "config.json"
    hint = f"is {run} a run directory from `jepaworld train`?"
    record = read_json_object(path, CheckpointError, "run config", hint)
    if "train" not in record:
        raise CheckpointError(f"{path}: not a jepaworld run config")
    return record


@dataclass
class TrainingData:
    """A dataset of clips and what identifies it in the run record."""

    dataset: ClipDataset | ActionFreeClips | VideoClipDataset | MixtureDataset
    sha256: str
    env_id: str
    seeds: Any
    source: Path
    video_index: dict[str, Any] | None = None
    """For --videos: the index (usable files, skipped files and why), saved as RUN/videos.json."""
    sources: list[dict[str, Any]] | None = None
    """For a mixture: each dataset's identity, stride and weight (the record's data_sources)."""


MIXTURE_ID = "mixture"
"""data_env_id of a run trained on several datasets (each named in data_sources)."""


def data_sources(record: dict[str, Any]) -> list[dict[str, Any]]:
    """What a run was trained on, one entry per dataset: env_id, manifest_sha256, seeds, path
    (a run record from before mixtures has one, built from its data_* fields)."""
    sources = record.get("data_sources")
    if isinstance(sources, list) and sources:
        return sources
    train_cfg = record.get("train", {})
    return [
        {
            "env_id": record.get("data_env_id"),
            "manifest_sha256": record.get("data_manifest_sha256"),
            "seeds": record.get("data_seeds"),
            "path": train_cfg.get("data") or train_cfg.get("videos"),
        }
    ]


def check_view(
    record: dict[str, Any],
    env_id: str,
    view: str | None,
    run: Path,
    other: str = "the environment now renders",
) -> None:
    """The run's `env_id` datasets were rendered from camera `view` (`PixelObservation.view`, in
    each manifest's env_config; None: the environment's own), where their manifests can be read
    and are still the ones the run was trained on (a warning otherwise). `other` names what
    `view` belongs to, for the error: the environment as `plan` renders it, or a dataset.

    Raises:
        ValueError: naming the training dataset, its view and the other, when they differ.
    """
    for source in data_sources(record):
        if source.get("env_id") != env_id or not source.get("path"):
            continue
        root = Path(source["path"])
        try:
            env_config = json.loads((root / "manifest.json").read_text()).get("env_config") or {}
            trained_on = manifest_sha256(root) == source.get("manifest_sha256")
        except (OSError, ValueError) as e:
            log.warning("%s: cannot read %s to check its camera (%s)", run, root, e)
            continue
        if not trained_on:
            log.warning("%s: %s has changed since training; its camera is not checked", run, root)
        elif env_config.get("view") != view:
            raise ValueError(
                f"{run}: trained on {root}, whose {env_id} frames were rendered with view "
                f"{env_config.get('view')!r}, while {other} with view {view!r} (frames from "
                "another camera: collect the data again and retrain)"
            )


def check_action_dim(store: EpisodeStore, model: ModelConfig) -> None:
    """The dataset's actions are the model's size, or absent (action-free video: null action)."""
    if store.action_dim not in (0, model.action_dim):
        raise DataError(
            f"{store.root}/manifest.json: action_dim {store.action_dim} != --model.action-dim {model.action_dim}"
        )


def check_proprio(store: EpisodeStore, model: ModelConfig) -> None:
    """The episodes' state vectors hold every entry --model.proprio reads."""
    if not model.proprio:
        return
    width = store.states(0).shape[-1] if len(store) else 0
    if width <= max(model.proprio):
        raise DataError(
            f"{store.root}: its episodes' state vectors have {width} entries, but --model.proprio "
            f"reads entry {max(model.proprio)}"
        )


def check_augment(store: EpisodeStore, augment: str, proprio: bool = False) -> None:
    """--augment dihedral only on a world that declares the symmetry, with 2-D actions; with
    proprioception, the world's rule for state vectors is tried on the first one stored."""
    if augment == "none":
        return
    env_id = store.manifest.get("env_id")
    if env_id not in DIHEDRAL_ENVS:
        raise DataError(
            f"{store.root}/manifest.json: --augment dihedral needs a world whose physics looks the "
            f"same turned or mirrored (jepaworld.envs.DIHEDRAL_ENVS: {', '.join(sorted(DIHEDRAL_ENVS))}), "
            f"got env {env_id!r}"
        )
    if store.action_dim != 2:
        raise DataError(
            f"{store.root}/manifest.json: --augment dihedral turns 2-D actions, got action_dim "
            f"{store.action_dim}"
        )
    if proprio and len(store):
        first = store.states(0)[:1]  # (1, S)
        try:
            turned = DIHEDRAL_ENVS[env_id](first, element_matrix(1).double().numpy())
            fits = np.shape(turned) == first.shape
        except (IndexError, ValueError):  # a rule written for another width
            fits = False
        if not fits:
            raise DataError(
                f"{store.root}: --augment dihedral with --model.proprio turns the state vectors "
                f"by {env_id}'s rule, which does not fit their {first.shape[1]} entries"
            )


def proprio_states(store: EpisodeStore) -> torch.Tensor:
    """Every state vector of the dataset's episodes (N, S), for the model's proprioception
    statistics (WorldModel.set_proprio_stats): small, and read without the frames."""
    return torch.from_numpy(np.concatenate([store.states(e) for e in range(len(store))]))


def episode_cache_mb(cfg: TrainConfig) -> float:
    """Episode cache budget of one reading process: --data-cache-mb, or a quarter of the
    machine's memory shared out among the DataLoader workers."""
    return cfg.data_cache_mb or default_cache_mb() / max(1, cfg.workers)


def mixture_cache_mb(cfg: TrainConfig, paths: list[Path]) -> list[float]:
    """`episode_cache_mb` shared out among the datasets at `paths` by their decompressed size,
    so that each holds the same share of its episodes."""
    sizes = [frames_nbytes(load_manifest(path)) for path in paths]
    total = sum(sizes) or 1
    return [episode_cache_mb(cfg) * size / total for size in sizes]


def open_dataset(cfg: TrainConfig) -> TrainingData:
    """Open and check the data against the model config before any training starts."""
    if cfg.videos is not None:
        return _open_videos(cfg)
    if cfg.mix:
        return _open_mixture(cfg)
    store = EpisodeStore(cfg.data, cache_mb=episode_cache_mb(cfg))
    h, w, _ = store.frame_shape
    if h != w or h != cfg.model.image_size:
        raise DataError(
            f"{cfg.data}/manifest.json: frames are {h}x{w} but --model.image-size is {cfg.model.image_size}"
        )
    check_action_dim(store, cfg.model)
    check_proprio(store, cfg.model)
    check_augment(store, cfg.augment, bool(cfg.model.proprio))
    dataset = ClipDataset(store, cfg.clip_frames, cfg.model.frame_stride, bool(cfg.model.proprio))
    if cfg.drop_actions:
        dataset = ActionFreeClips(dataset)
    manifest = store.manifest
    return TrainingData(
        dataset, manifest_sha256(cfg.data), manifest["env_id"], manifest.get("seeds"), cfg.data
    )


def _open_mixture(cfg: TrainConfig) -> TrainingData:
    """--data plus every --mix dataset, checked before training: square frames at least the
    model's size, actions of the model's size or none."""
    m = cfg.model
    paths = [cfg.data, *cfg.mix]
    weights = cfg.mix_weights or (1.0,) * len(paths)
    datasets, sources = [], []
    budgets = mixture_cache_mb(cfg, paths)
    for path, weight, cache_mb in zip(paths, weights, budgets, strict=True):
        store = EpisodeStore(path, cache_mb=cache_mb)
        h, w, _ = store.frame_shape
        if h != w or h < m.image_size:
            raise DataError(
                f"{path}/manifest.json: frames are {h}x{w}; a mixture needs square frames of at "
                f"least --model.image-size {m.image_size}"
            )
        check_action_dim(store, m)
        stride = m.frame_stride if store.action_dim else cfg.video_stride
        datasets.append(ClipDataset(store, cfg.clip_frames, stride))
        manifest = store.manifest
        sources.append(
            {
                "env_id": manifest["env_id"],
                "manifest_sha256": manifest_sha256(path),
                "seeds": manifest.get("seeds"),
                "path": str(path),
                "frame_size": h,
                "stride": stride,
                "weight": weight,
            }
        )
    joined = "".join(s["manifest_sha256"] for s in sources).encode()
    return TrainingData(
        MixtureDataset(datasets, weights, m.image_size, m.frame_stride * m.action_dim),
        hashlib.sha256(joined).hexdigest(),
        MIXTURE_ID,
        None,
        cfg.data,  # type: ignore[arg-type]
        sources=sources,
    )


def _open_videos(cfg: TrainConfig) -> TrainingData:
    """Index the video folder, skipping bad files (the index is saved with a new run's config)."""
    index = index_videos(cfg.videos, min_frames=(cfg.clip_frames - 1) * cfg.model.frame_stride + 1)
    dataset = VideoClipDataset(index, cfg.clip_frames, cfg.model.frame_stride, cfg.model.image_size)
    if index.skipped:
        log.warning(
            "%d of %d video files skipped",
            len(index.skipped),
            len(index.skipped) + len(index.entries),
        )
    return TrainingData(dataset, index.sha256(), VIDEO_FOLDER_ID, None, cfg.videos, index.to_json())


def init_weights(model: WorldModel, cfg: TrainConfig) -> dict[str, Any]:
    """Load --init's latest weights into `model` (same model config required); returns what
    the run record keeps of them: the checkpoint and its sha256."""
    assert cfg.init is not None
    record = read_run_record(cfg.init)
    if not isinstance(record.get("model"), dict):
        raise ValueError(f"--init {cfg.init}: its config.json has no model section")
    # their config with today's defaults for the fields added since it was written
    theirs = to_dict(from_dict(ModelConfig, record["model"], f"--init {cfg.init}"))
    ours = to_dict(cfg.model)
    if theirs != ours:
        differ = sorted(k for k in {*theirs, *ours} if theirs.get(k) != ours.get(k))
        raise ValueError(f"--init {cfg.init}: its model config differs in {', '.join(differ)}")
    ckpt = latest_checkpoint(cfg.init)
    load_weights_strict(model, ckpt / "model.safetensors")
    log.info("initialised from %s", ckpt)
    return {"checkpoint": str(ckpt), "sha256": sha256_file(ckpt / "model.safetensors")}


def _write_run_config(
    cfg: TrainConfig, data: TrainingData, init: dict[str, Any] | None = None
) -> None:
    cfg.out.mkdir(parents=True, exist_ok=True)
    record = {
        "train": to_dict(cfg),
        "model": to_dict(cfg.model),
        "data_manifest_sha256": data.sha256,
        "data_env_id": data.env_id,
        "data_seeds": data.seeds,
    }
    if init is not None:
        record["init"] = init
    if data.sources is not None:
        record["data_sources"] = data.sources
    (cfg.out / "config.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    if data.video_index is not None:  # a new run only: a resumed run keeps its own
        text = json.dumps(data.video_index, indent=2) + "\n"
        atomic_write(cfg.out / VIDEO_INDEX, text.encode())


def _truncate_metrics(path: Path, step: int) -> None:
    """On resume, drop metric lines logged after the checkpoint we restart from."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line torn by a kill mid-write
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(ln + "\n" for ln in keep))
    os.replace(tmp, path)


class MetricsSink:
    """Appends metrics to RUN/metrics.jsonl and, optionally, TensorBoard."""

    def __init__(self, run: Path, tensorboard: bool) -> None:
        self.path = run / METRICS
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise ImportError(
                    "--tensorboard needs the tensorboard package: pip install tensorboard"
                ) from e
            self.tb = SummaryWriter(str(run / "tb"))

    def write(self, step: int, metrics: dict[str, float]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")
        if self.tb is not None:
            for k, v in metrics.items():
                self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


# ---- the loop ---------------------------------------------------------------------------------


def make_optimizer(
    params: Iterable[torch.nn.Parameter], cfg: TrainConfig, device: torch.device
) -> torch.optim.AdamW:
    """AdamW with the run's lr and weight decay; on CUDA the fused kernel (one launch for all
    parameters: a step of the default model is launch-bound on a GPU)."""
    fused = True if device.type == "cuda" else None
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)


def check_finite(loss: torch.Tensor, grad_norm: torch.Tensor, step: int) -> None:
    """Raise TrainingDiverged naming the loss or the gradient norm if either is NaN or infinite;
    one host sync for both."""
    finite = torch.isfinite(torch.stack([loss.detach().float(), grad_norm.float()])).tolist()
    if not finite[0]:
        raise TrainingDiverged(f"loss is {float(loss)} at step {step}")
    if not finite[1]:
        raise TrainingDiverged(f"gradient norm is {float(grad_norm)} at step {step}")


def train_step(
    model: WorldModel,
    opt: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    step: int,
    cfg: TrainConfig,
    log: bool = True,
    loss_fn: LossFn | None = None,
) -> dict[str, float] | None:
    """One optimizer step; raises TrainingDiverged on a non-finite loss or gradient norm (before
    updating). Returns the step's metrics when `log`, else None: reading them is a host sync on a
    GPU, and the effective rank an SVD, so the loop asks only on the steps it logs. `loss_fn`
    stands in for `model.loss`, or `model.latent_loss` for a batch of cached embeddings
    ("latents" in place of "frames"): the compiled one of `loss_function`."""
    for group in opt.param_groups:
        group["lr"] = lr_at(step, cfg)
    if "latents" in batch:  # a frozen encoder's embeddings (--cache-latents)
        z = batch["latents"]  # (B, T, D)
        hidden = hidden_runs(z.shape[0], z.shape[1], cfg.hide_frames, cfg.hide_span, z.device)
        loss, metrics = (loss_fn or model.latent_loss)(
            z, batch["actions"], batch.get("has_actions"), rank=log, hidden=hidden
        )
    else:
        extra = {"proprio": batch["states"]} if "states" in batch else {}  # proprioception's
        loss, metrics = (loss_fn or model.loss)(
            batch["frames"], batch["actions"], batch.get("has_actions"), rank=log, **extra
        )
    opt.zero_grad(set_to_none=True)
    loss.backward()
    max_norm = cfg.grad_clip if cfg.grad_clip > 0 else float("inf")
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    check_finite(loss, grad_norm, step)
    opt.step()
    model.update_target(ema_momentum_at(step, cfg))
    if not log:
        return None
    out = {name: float(value) for name, value in metrics.items()}
    out["grad_norm"] = float(grad_norm)
    out["lr"] = opt.param_groups[0]["lr"]
    return out


def hidden_runs(
    B: int, T: int, share: float, span: int, device: torch.device | str = "cpu"
) -> torch.Tensor | None:
    """Which frames' inputs to hide, (B, T) bool, or None when `share` is 0: each clip, with
    probability `share`, one run of 1..`span` frames (uniform) starting at a uniform frame
    from 1 on, cut at the clip's end; frame 0 is never hidden. Draws from torch's global RNG."""
    if share <= 0 or T < 2:
        return None
    chosen = torch.rand(B, device=device) < share  # (B,)
    length = torch.randint(1, span + 1, (B, 1), device=device)  # (B, 1)
    start = torch.randint(1, T, (B, 1), device=device)  # (B, 1)
    t = torch.arange(T, device=device)  # (T,)
    return chosen[:, None] & (t >= start) & (t < start + length)  # (B, T)


def loss_function(model: WorldModel, mode: CompileMode, latents: bool = False) -> LossFn:
    """`model.loss` (`model.latent_loss` with `latents`, for batches of cached embeddings),
    compiled with torch.compile in `mode` unless it is "off" (TrainConfig.compile). Compiling is
    lazy: the first call of each kind (with and without the rank metric) pays it."""
    fn = cast(LossFn, model.latent_loss if latents else model.loss)
    if mode == "off":
        return fn
    return cast(LossFn, torch.compile(fn, mode=mode))


def _restore(cfg: TrainConfig, model: WorldModel, opt: torch.optim.Optimizer) -> int:
    """Load the latest checkpoint into model and optimizer; return the step to continue from."""
    ckpt = latest_checkpoint(cfg.out)
    load_weights_strict(model, ckpt / "model.safetensors")
    state = load_train_state(ckpt)
    # the saved groups carry the device they were made on (fused AdamW on CUDA); resume with this
    # device's choice, so a CPU resume of a GPU run uses the same optimizer as a CPU run
    for saved, current in zip(state["optimizer"]["param_groups"], opt.param_groups, strict=True):
        saved["fused"] = current["fused"]
    opt.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and model.device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"], model.device)
    log.info("resumed from %s", ckpt)
    return int(state["step"])


def batches_on(
    loader: Iterable[dict[str, torch.Tensor]], device: torch.device
) -> Iterable[dict[str, torch.Tensor]]:
    for batch in loader:
        yield {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@dataclass
class _Session:
    """Everything one invocation of `train` works with, built by `_setup`."""

    cfg: TrainConfig
    dataset: ClipDataset | ActionFreeClips | VideoClipDataset | MixtureDataset | LatentClips
    data_sha: str
    device: torch.device
    model: WorldModel
    opt: torch.optim.Optimizer
    start: int
    last: Path | None
    loss_fn: LossFn
    """model.loss, compiled or not (TrainConfig.compile)."""
    turn: StateTurn | None = None
    """With --augment dihedral: the world's rule for turning its state vectors (DIHEDRAL_ENVS)."""
    calibration: list[torch.Tensor] | None = None
    """Frames of the norm calibration batches, read at the first checkpoint."""


def _setup(cfg: TrainConfig) -> _Session:
    """Validate inputs (before any long work), build or restore model and optimizer."""
    cfg = prepare_config(cfg)
    data = open_dataset(cfg)
    if cfg.resume and read_run_record(cfg.out).get("data_manifest_sha256") != data.sha256:
        raise DataError(f"{data.source}: not the data this run was trained on (sha256 differs)")
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if device.type == "cpu":
        keep_freed_memory()
    torch.manual_seed(cfg.seed)
    model = WorldModel(cfg.model).to(device)
    cfg.encoder_dtype = resolve_encoder_dtype(cfg.encoder_dtype, device)  # recorded resolved
    model.encoder_autocast = autocast_dtype(cfg.encoder_dtype)
    log.info("encoder dtype in training: %s", cfg.encoder_dtype)
    model.encoder.requires_grad_(not cfg.freeze_encoder)
    opt = make_optimizer([p for p in model.parameters() if p.requires_grad], cfg, device)
    if cfg.resume:
        start, last = _restore(cfg, model, opt), latest_checkpoint(cfg.out)
    else:
        start, last = 0, None
        if cfg.model.proprio and cfg.init is None:  # --init's weights bring their own
            assert isinstance(data.dataset, ClipDataset)  # TrainConfig refuses the others
            model.set_proprio_stats(proprio_states(data.dataset.store))
        init = None if cfg.init is None else init_weights(model, cfg)
        _write_run_config(cfg, data, init)
    if cfg.compile == "reduce-overhead" and device.type != "cuda":
        log.warning("--compile reduce-overhead: CUDA graphs need a CUDA device, not %s", device)
    loss_fn = loss_function(model, cfg.compile, cfg.cache_latents)
    dataset = data.dataset
    if cfg.cache_latents:  # the model now holds the frozen weights it trains on
        if not isinstance(dataset, ClipDataset):  # TrainConfig refuses the others
            raise ValueError(f"cache_latents: --data's clips only, not {type(dataset).__name__}")
        dataset = encode_clips(model, dataset)
    turn = DIHEDRAL_ENVS[data.env_id] if cfg.augment == "dihedral" else None  # checked there
    return _Session(cfg, dataset, data.sha256, device, model, opt, start, last, loss_fn, turn)


@torch.no_grad()
def encode_clips(model: WorldModel, clips: ClipDataset, chunk: int = 256) -> LatentClips:
    """Every frame of `clips`' episodes through the model's encoder as evaluation encodes it: in
    eval mode (the frozen encoder's running statistics) and float32 whatever --encoder-dtype,
    `chunk` frames at a time, with proprioception for a model that reads it. The same clips, as
    embeddings on the model's device. The encoder is left in eval mode (a frozen encoder stays
    there)."""
    store, t0 = clips.store, time.perf_counter()
    model.encoder.eval()
    autocast, model.encoder_autocast = model.encoder_autocast, None
    try:
        latents, actions = _encode_episodes(model, store, chunk)
    finally:
        model.encoder_autocast = autocast
    cached = LatentClips(latents, actions, clips.frames, clips.stride, str(store.root))
    log.info(
        "encoded %d frames of %d episodes in %.1f s (%.1f MiB of embeddings)",
        cached.z.shape[0],
        len(latents),
        time.perf_counter() - t0,
        cached.z.numel() * cached.z.element_size() / 2**20,
    )
    return cached


def _encode_episodes(
    model: WorldModel, store: EpisodeStore, chunk: int
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Each episode's embeddings (T_e, D) and actions (T_e, A), `chunk` frames a forward pass."""
    latents, actions = [], []
    for e in range(len(store)):
        ep = store.episode(e)
        z = []
        for i in range(0, len(ep.frames), chunk):
            frames = torch.from_numpy(ep.frames[i : i + chunk])[None]  # (1, n, H, W, 3)
            states = None
            if model.config.proprio:
                states = torch.from_numpy(ep.states[i : i + chunk].astype(np.float32))[None]
            z.append(model.encode(frames, states)[0])  # (n, D)
        latents.append(torch.cat(z))  # (T_e, D)
        actions.append(torch.from_numpy(ep.actions))  # (T_e, A)
    return latents, actions


def calibration_batches(s: _Session) -> list[torch.Tensor]:
    """Frames (B, T, H, W, 3) of the run's first `norm_calibration_batches` batches, on the CPU:
    the same clips before every checkpoint, read on the first call."""
    if s.calibration is None:
        cfg = s.cfg
        n = cfg.norm_calibration_batches
        s.calibration = [
            b["frames"] for b in make_loader(s.dataset, cfg.batch_size, cfg.seed, 0, n, 0)
        ]
    return s.calibration


def calibrate_norms(s: _Session) -> None:
    """The encoder's BatchNorm statistics for the weights about to be saved (WorldModel.
    calibrate_norms); a frozen encoder keeps those of --init. Training itself never reads them
    (train mode normalises by the batch), so the weights of later steps are unchanged."""
    if s.cfg.norm_calibration_batches and not s.cfg.freeze_encoder:
        s.model.calibrate_norms(calibration_batches(s))


def augment_generator(seed: int, step: int) -> torch.Generator:
    """The generator of step `step`'s augmentation draws: a function of the run's seed and the
    step alone, so a resumed run turns its clips as an uninterrupted one would."""
    return torch.Generator().manual_seed(seed * 1_000_033 + step + 7_919)


def _run_steps(s: _Session, sink: MetricsSink, bar: Any) -> Path | None:
    """The loop: one optimizer step per batch, metrics, progress, checkpoints."""
    cfg, last = s.cfg, s.last
    end = cfg.stop_at or cfg.steps
    if isinstance(s.dataset, LatentClips):  # indexed in place, on the device: no loader
        keys = StepBatchSampler(s.dataset.starts, cfg.batch_size, cfg.seed, s.start, end)
        batches: Iterable[dict[str, torch.Tensor]] = (s.dataset.batch(k) for k in keys)
    else:
        loader = make_loader(s.dataset, cfg.batch_size, cfg.seed, s.start, end, cfg.workers)
        batches = batches_on(loader, s.device)
    t0, seen = time.perf_counter(), 0
    for step, batch in enumerate(batches, start=s.start):
        seen, done = seen + cfg.batch_size, step + 1
        if cfg.augment == "dihedral":
            batch = augment_batch(batch, augment_generator(cfg.seed, step), s.turn)
        try:
            log_now = done % cfg.log_every == 0 or done == end
            metrics = train_step(s.model, s.opt, batch, step, cfg, log_now, s.loss_fn)
        except TrainingDiverged as e:
            where = f"; last good checkpoint: {last}" if last else "; no checkpoint was written"
            raise TrainingDiverged(f"{e}{where}. Try a lower --lr.") from None
        if metrics is not None:
            rate = seen / (time.perf_counter() - t0)
            sink.write(
                done, {**metrics, "samples_per_s": rate, "elapsed_s": time.perf_counter() - t0}
            )
            bar.set_postfix(
                loss=f"{metrics['loss']:.4f}", rank=f"{metrics['eff_rank']:.1f}", sps=f"{rate:.0f}"
            )
        bar.update(1)
        if done % cfg.checkpoint_every == 0 or done == end:
            calibrate_norms(s)
            last = save_checkpoint(cfg.out, s.model, s.opt, done, cfg, s.data_sha)
    return last


def train(cfg: TrainConfig) -> Path:
    """Train (or resume) a run; returns the final checkpoint directory."""
    s = _setup(cfg)
    sink = MetricsSink(s.cfg.out, s.cfg.tensorboard)
    _truncate_metrics(sink.path, s.start)
    s.model.train()
    if s.cfg.freeze_encoder:
        s.model.encoder.eval()  # its BatchNorm keeps the running statistics of --init
        if s.model.target_encoder is not None:  # targets are the frozen encoder's own
            s.model.target_encoder.load_state_dict(s.model.encoder.state_dict())
            s.model.target_encoder.eval()
    bar = tqdm(
        total=s.cfg.steps,
        initial=s.start,
        desc="train",
        unit="step",
        dynamic_ncols=True,
        mininterval=1.0,
    )
    try:
        last = _run_steps(s, sink, bar)
    finally:
        bar.close()
        sink.close()
    return last or latest_checkpoint(s.cfg.out)  # None: resumed a run that was already complete
