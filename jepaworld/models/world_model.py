"""The JEPA world model: an encoder, an action-conditioned predictor, and their training loss.

Contract (DESIGN.md): `encode(frames (B,T,H,W,3) uint8) -> z (B,T,D)` (a model with
proprioception, `ModelConfig.proprio`, also takes the frames' state vectors (B,T,S));
`rollout(z_hist (B,T,D), actions (B,L,A')) -> z_pred (B,L,D)`; `save(dir)`; `from_pretrained(dir)`.
A' = frame_stride * action_dim: one model step spans `frame_stride` environment steps and takes
their actions concatenated (DINO-WM's frameskip).

On disk a model is `config.json` (with a "model" section) and `model.safetensors`; loading is
strict and never unpickles anything.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from jepaworld.config import from_dict, require, to_dict
from jepaworld.models.decoder import PixelDecoder
from jepaworld.models.encoder import ConvEncoder, ViTEncoder, to_float_images
from jepaworld.models.losses import effective_rank_tensor, prediction_loss, sigreg, vicreg
from jepaworld.models.predictor import Predictor

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt or does not fit the model; the message names what."""


@dataclass
class ModelConfig:
    """Architecture and loss of the world model."""

    image_size: int = 64
    """Side of the square input frames, in pixels."""
    action_dim: int = 2
    """Dimension of one environment action (0: an action-free model, for video only)."""
    frame_stride: int = 5
    """Environment steps per model step; their actions are concatenated."""
    embed_dim: int = 64
    """D: size of a frame's embedding."""
    encoder: Literal["conv", "vit"] = "conv"
    """Encoder architecture."""
    latent: Literal["vector", "grid"] = "vector"
    """What a frame's embedding is: "vector", one vector pooled from the whole image, or "grid",
    the encoder's last feature map kept as tokens (conv: its (image_size / 2**len(conv_channels))^2
    cells; vit: its patches), each of embed_dim / tokens channels, concatenated; the predictor
    attends over the tokens of every frame so far (DINO-WM and V-JEPA predict patch tokens)."""
    conv_channels: tuple[int, ...] = (16, 32, 64, 64)
    """Channels of the strided conv layers (each halves the image)."""
    conv_head: Literal["flatten", "flatten-max"] = "flatten"
    """How the conv encoder maps its last feature map to the embedding: a linear map of the
    flattened map, or of the flattened map and each channel's maximum over the map's cells
    ("flatten-max": features that say what is in view wherever it is, as a ball's colour or
    shape). Vector latent only."""
    vit_patch: int = 8
    """ViT patch size."""
    vit_dim: int = 128
    """ViT token width."""
    vit_depth: int = 4
    """ViT blocks."""
    vit_heads: int = 4
    """ViT attention heads."""
    pred_dim: int = 64
    """Predictor token width."""
    pred_depth: int = 2
    """Predictor transformer blocks."""
    pred_heads: int = 4
    """Predictor attention heads."""
    max_len: int = 16
    """Longest sequence (model steps) the predictor accepts."""
    regularizer: Literal["sigreg", "vicreg"] = "sigreg"
    """Anti-collapse term: SIGReg (LeJEPA) or VICReg."""
    reg_weight: float = 0.1
    """Weight of the anti-collapse term (LeWM uses ~0.1 for SIGReg)."""
    sigreg_directions: int = 256
    """Random directions per SIGReg evaluation."""
    sigreg_over: Literal["frames", "time"] = "frames"
    """What SIGReg tests against an isotropic Gaussian: "frames", all B*T frames of a batch
    pooled; "time", each time step's B embeddings alone, the statistics averaged over the T
    steps (as LeWM). Pooled, a feature a clip holds still (a ball's colour) shows B distinct
    values under a statistic scaled by B*T samples, so it costs about T times what it costs per
    step. On the physics videos "time" did not keep more of a ball's colour, though (seed 2,
    one run; README). VICReg pools the frames either way."""
    smooth_weight: float = 0.1
    """Weight of a temporal-smoothness term, mean ||z_t+1 - z_t||^2 (as PLDM's time-similarity term):
    it favours slowly varying features, so that latent distance keeps growing with distance in the world."""
    pred_loss: Literal["mse", "l1"] = "mse"
    """Error between predicted and target embeddings in both prediction terms: mean squared (LeWM,
    DINO-WM) or mean absolute (V-JEPA; the error `physics.surprise` scores)."""
    proprio: tuple[int, ...] = ()
    """Entries of the environment's state vector (`info["state"]`, the episodes' `states`) the
    model reads as proprioception beside each frame, as DINO-WM feeds the agent's position
    (PushT: 0 1, the pusher's x and y). Only what an agent senses of itself: the state may also
    hold what it must see (PushT's block). Each entry, standardised by the training data's mean
    and spread, is appended to the frame's embedding, so the predictor reads and predicts it and
    the planner's latent distance counts it. (): frames only. Vector latent only."""
    proprio_weight: float = 1.0
    """Scale of the standardised proprioception in the embedding: its share of the prediction
    loss and of the planner's latent distance (each of the embed_dim image features has about
    unit spread)."""
    rollout_weight: float = 1.0
    """Weight of the open-loop multi-step rollout loss beside the teacher-forced one."""
    rollout_context: int = 1
    """Observed frames the rollout loss starts from (1 suits action-conditioned data; action-free
    video needs several, since one frame shows no velocity)."""
    target: Literal["online", "ema"] = "online"
    """Where prediction targets come from: "online", the encoder itself (gradients reach the
    targets; the anti-collapse term keeps them apart, as in LeWM), or "ema", a copy of the encoder
    that follows its weights by an exponential moving average and gets no gradient (BYOL, I-JEPA,
    V-JEPA). The anti-collapse term still applies to the online embeddings unless --reg-weight 0."""
    ema_momentum: float = 0.996
    """With target "ema": the EMA momentum at the first step; it rises linearly to 1 at the last
    (I-JEPA's schedule)."""
    recon_weight: float = 0.0
    """Weight of a pixel-reconstruction auxiliary: a conv decoder (models/decoder.py) redraws the
    first frame of each training clip from its embedding (mean squared error in [-1, 1] pixels),
    and its gradient reaches the encoder, so the embedding keeps what the actions rarely move
    (PushT's block). 0: no decoder (the model has none)."""
    recon_rollout_weight: float = 0.0
    """Weight of the same pixel term on the rollout loss's last open-loop prediction, redrawn by
    the decoder against the clip's last frame: it asks the predictor to carry what the decoder
    draws, where the latent rollout loss weighs each feature by its share of the embedding. Its
    gradient reaches the predictor, the encoder (through the observed frames the rollout starts
    from) and the decoder, which so learns to redraw predictions too. Needs recon_weight > 0 and
    rollout_weight > 0."""

    def __post_init__(self) -> None:
        self.conv_channels = tuple(self.conv_channels)
        self.proprio = tuple(self.proprio)
        require(
            self.action_dim >= 0,
            "action_dim",
            f"must be >= 0 (0: action-free), got {self.action_dim}",
        )
        for name in (
            "image_size",
            "frame_stride",
            "embed_dim",
            "pred_dim",
            "max_len",
        ):
            require(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
        require(
            self.pred_heads >= 1 and self.pred_dim % self.pred_heads == 0,
            "pred_heads",
            "must divide pred_dim",
        )
        require(
            self.vit_heads >= 1 and self.vit_dim % self.vit_heads == 0,
            "vit_heads",
            "must divide vit_dim",
        )
        require(
            self.vit_patch >= 1 and self.image_size % self.vit_patch == 0,
            "vit_patch",
            "must divide image_size",
        )
        require(
            len(self.conv_channels) >= 1 and self.image_size % 2 ** len(self.conv_channels) == 0,
            "conv_channels",
            f"image_size {self.image_size} must be divisible by 2**len(conv_channels)",
        )
        require(
            self.latent in ("vector", "grid"),
            "latent",
            f"must be vector or grid, got {self.latent!r}",
        )
        require(
            self.embed_dim % self.grid_tokens == 0,
            "embed_dim",
            f"must be divisible by the {self.grid_tokens} grid tokens of latent grid",
        )
        require(
            self.conv_head in ("flatten", "flatten-max"),
            "conv_head",
            f"must be flatten or flatten-max, got {self.conv_head!r}",
        )
        require(
            self.conv_head == "flatten" or (self.latent == "vector" and self.encoder == "conv"),
            "conv_head",
            f"{self.conv_head} needs the conv encoder and the vector latent",
        )
        require(
            all(isinstance(i, int) and i >= 0 for i in self.proprio)
            and len(set(self.proprio)) == len(self.proprio),
            "proprio",
            f"must be distinct state entries >= 0, got {self.proprio}",
        )
        require(
            not self.proprio or self.latent == "vector",
            "proprio",
            "needs the vector latent (--model.latent vector)",
        )
        require(self.proprio_weight > 0, "proprio_weight", "must be > 0")
        require(self.sigreg_directions >= 1, "sigreg_directions", "must be >= 1")
        require(
            self.sigreg_over in ("frames", "time"),
            "sigreg_over",
            f"must be frames or time, got {self.sigreg_over!r}",
        )
        require(self.smooth_weight >= 0, "smooth_weight", "must be >= 0")
        require(self.reg_weight >= 0, "reg_weight", "must be >= 0")
        require(self.rollout_weight >= 0, "rollout_weight", "must be >= 0")
        require(
            self.pred_loss in ("mse", "l1"),
            "pred_loss",
            f"must be mse or l1, got {self.pred_loss!r}",
        )
        require(self.max_len >= 2, "max_len", "must be >= 2")
        require(self.rollout_context >= 1, "rollout_context", "must be >= 1")
        require(
            self.target in ("online", "ema"),
            "target",
            f"must be online or ema, got {self.target!r}",
        )
        require(0 <= self.ema_momentum <= 1, "ema_momentum", "must be in [0, 1]")
        require(self.recon_weight >= 0, "recon_weight", "must be >= 0")
        require(
            self.recon_rollout_weight == 0
            or (
                self.recon_rollout_weight > 0 and self.recon_weight > 0 and self.rollout_weight > 0
            ),
            "recon_rollout_weight",
            "must be >= 0, and > 0 needs recon_weight > 0 (the decoder) and rollout_weight > 0",
        )
        require(
            not self.recon_weight or self.encoder == "conv",
            "recon_weight",
            "the pixel decoder mirrors the conv encoder (--model.encoder conv)",
        )

    @property
    def latent_dim(self) -> int:
        """D: size of the embedding the predictor and planners see, embed_dim image features
        and then the len(proprio) proprioception entries."""
        return self.embed_dim + len(self.proprio)

    @property
    def grid_tokens(self) -> int:
        """Tokens per frame: 1 for latent "vector", else the encoder's grid cells."""
        if self.latent == "vector":
            return 1
        cell = self.vit_patch if self.encoder == "vit" else 2 ** len(self.conv_channels)
        return (self.image_size // cell) ** 2


class WorldModel(nn.Module):
    """Encoder + predictor. See the module docstring for the contract."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        grid = c.latent == "grid"
        if c.encoder == "conv":
            self.encoder: nn.Module = ConvEncoder(
                c.image_size, c.conv_channels, c.embed_dim, grid, c.conv_head
            )
        else:
            self.encoder = ViTEncoder(
                c.image_size, c.vit_patch, c.vit_dim, c.vit_depth, c.vit_heads, c.embed_dim, grid
            )
        self.predictor = Predictor(
            c.latent_dim,
            c.frame_stride * c.action_dim,
            c.pred_dim,
            c.pred_depth,
            c.pred_heads,
            c.max_len,
            c.grid_tokens,
        )
        # the EMA target: same architecture, no gradient; `update_target` moves it
        self.target_encoder: nn.Module | None = None
        if c.target == "ema":
            self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.decoder: PixelDecoder | None = None
        if c.recon_weight:
            self.decoder = PixelDecoder(c.embed_dim, c.image_size, c.conv_channels)
        if c.proprio:  # the training data's statistics (`set_proprio_stats`), saved as weights
            self.register_buffer("proprio_mean", torch.zeros(len(c.proprio)))
            self.register_buffer("proprio_std", torch.ones(len(c.proprio)))
        self.encoder_autocast: torch.dtype | None = None
        """A run-time choice, not part of the config: when set (training with --encoder-dtype
        bfloat16), the encoders' feature layers run under torch.autocast to this dtype; their
        embeddings stay float32 (`encoder.embed_in_float32`)."""

    @property
    def step_action_dim(self) -> int:
        """A': size of one model-step action (frame_stride raw actions concatenated)."""
        return self.config.frame_stride * self.config.action_dim

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encode(self, frames: torch.Tensor, proprio: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 frames (B, T, H, W, 3) -> embeddings (B, T, D). A model with `config.proprio`
        also needs `proprio`, the environment's state vectors (B, T, S) of those frames; it reads
        its entries (`with_proprio`). Other models ignore it."""
        return self.with_proprio(self.encode_image(frames), proprio)

    def with_proprio(self, z: torch.Tensor, proprio: torch.Tensor | None) -> torch.Tensor:
        """Image embeddings (B, T, embed_dim) -> (B, T, D): the `config.proprio` entries of the
        state vectors `proprio` (B, T, S), standardised and scaled by `proprio_weight`, appended.
        z unchanged for a model without proprioception."""
        idx = self.config.proprio
        if not idx:
            return z
        if proprio is None:
            raise ValueError(
                f"this model reads proprioception (state entries {list(idx)}, --model.proprio): "
                "pass the frames' state vectors as proprio"
            )
        if proprio.shape[:2] != z.shape[:2] or proprio.ndim != 3 or proprio.shape[-1] <= max(idx):
            raise ValueError(
                f"proprio must be state vectors (B, T, S) with S > {max(idx)} for frames "
                f"{tuple(z.shape[:2])}, got {tuple(proprio.shape)}"
            )
        p = proprio.to(device=z.device, dtype=torch.float32)[..., list(idx)]  # (B, T, P)
        p = (p - self.proprio_mean) / self.proprio_std * self.config.proprio_weight  # (B, T, P)
        return torch.cat([z, p.to(z.dtype)], dim=-1)  # (B, T, D)

    @torch.no_grad()
    def set_proprio_stats(self, states: torch.Tensor) -> None:
        """Standardise proprioception by the mean and spread of `states` (N, S), the training
        data's state vectors (a spread under 1e-6, a constant entry, counts as 1)."""
        idx = list(self.config.proprio)
        if not idx:
            raise ValueError("set_proprio_stats: this model reads no proprioception")
        if states.ndim != 2 or states.shape[0] < 2 or states.shape[1] <= max(idx):
            raise ValueError(
                f"states must be (N >= 2, S > {max(idx)}) state vectors, got {tuple(states.shape)}"
            )
        p = states[:, idx].double()  # (N, P)
        std = p.std(dim=0)
        self.proprio_mean.copy_(p.mean(dim=0))
        self.proprio_std.copy_(torch.where(std < 1e-6, torch.ones_like(std), std))

    def image_part(self, z: torch.Tensor) -> torch.Tensor:
        """(..., D) embeddings -> their image features (..., embed_dim), without proprioception
        (z itself for a model without it)."""
        return z[..., : self.config.embed_dim] if self.config.proprio else z

    def encode_image(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames (B, T, H, W, 3) -> the image features alone (B, T, embed_dim): `encode`
        without proprioception, for any model (what a probe of the frames should read)."""
        if frames.ndim != 5:
            raise ValueError(f"frames must be (B, T, H, W, 3), got {tuple(frames.shape)}")
        return self._embed(self.encoder, frames)

    def _embed(self, encoder: nn.Module, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames (B, T, H, W, 3) through `encoder` -> (B, T, D) float32."""
        B, dtype = frames.shape[0], self.encoder_autocast
        images = self._images(frames)  # (B*T, 3, H, W)
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            z = encoder(images)  # (B*T, D)
        return rearrange(z, "(b t) d -> b t d", b=B)  # (B, T, D)

    def _images(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames (B, T, H, W, 3) -> float (B*T, 3, H, W) in [-1, 1] on the model's device."""
        flat = rearrange(frames.to(self.device), "b t h w c -> (b t) h w c")  # (B*T, H, W, 3)
        return to_float_images(flat, self.config.image_size)

    def _redraw(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, D) -> the decoder's float images (N, 3, H, W), under the encoder's autocast."""
        if self.decoder is None:
            raise ValueError(
                "this model has no pixel decoder (trained with --model.recon-weight 0)"
            )
        dtype = self.encoder_autocast
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            return self.decoder(z).float()

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Embeddings (B, T, D), observed or predicted -> the decoder's uint8 frames (B, T, H, W, 3):
        what the model thinks the frames look like. Only for a model trained with recon_weight > 0."""
        if z.ndim != 3:
            raise ValueError(f"z must be (B, T, D), got {tuple(z.shape)}")
        B = z.shape[0]
        x = self._redraw(rearrange(self.image_part(z), "b t d -> (b t) d"))  # (B*T, 3, H, W)
        x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return rearrange(x, "(b t) c h w -> b t h w c", b=B)  # (B, T, H, W, 3)

    @torch.no_grad()
    def encode_targets(
        self, frames: torch.Tensor, proprio: torch.Tensor | None = None
    ) -> torch.Tensor:
        """uint8 frames (B, T, H, W, 3) -> the EMA target encoder's embeddings (B, T, D), with no
        gradient (and proprioception as `encode`). Only for a model with target "ema"."""
        if self.target_encoder is None:
            raise ValueError('encode_targets needs a model with target "ema"')
        return self.with_proprio(self._embed(self.target_encoder, frames), proprio)

    @torch.no_grad()
    def calibrate_norms(self, batches: list[torch.Tensor]) -> int:
        """Re-estimate the encoder's BatchNorm running statistics with its current weights: the
        plain average over `batches` of uint8 frames (B, T, H, W, 3) (on any device; each is
        moved to the model's in turn), encoded in float32 as evaluation encodes them. Returns the
        number of frames; on an error the statistics are left as they were.

        Training normalises each batch by its own statistics; evaluation by the running ones, an
        exponential average over the last ~10 steps, whose weights differ from the final ones.
        Where the features entering the norm vary little against their mean, that average sits
        off by about their spread, and evaluation shifts every embedding as far (Pendulum-v1: the
        predictor's error in eval mode was 58x its training error, until this). The target
        encoder (target "ema") gets the same statistics, as `update_target` gives it."""
        for i, b in enumerate(batches):
            if b.ndim != 5:
                raise ValueError(
                    f"batches[{i}]: frames must be (B, T, H, W, 3), got {tuple(b.shape)}"
                )
        frames = sum(b.shape[0] * b.shape[1] for b in batches)
        if frames == 0:
            raise ValueError("batches: no frames given")
        norms = [m for m in self.encoder.modules() if isinstance(m, nn.BatchNorm1d)]
        saved = [(m, m.momentum, m.training, copy.deepcopy(m.state_dict())) for m in norms]
        autocast, self.encoder_autocast = self.encoder_autocast, None
        try:
            for m in norms:
                m.reset_running_stats()
                m.momentum = None  # a cumulative average over the batches
                m.train()
            for clip in batches:
                self._embed(self.encoder, clip)
        except BaseException:
            for m, *_, stats in saved:
                m.load_state_dict(stats)
            raise
        finally:
            for m, momentum, training, _ in saved:
                m.momentum = momentum
                m.train(training)
            self.encoder_autocast = autocast
        self._copy_buffers_to_target()
        return frames

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """target <- momentum * target + (1 - momentum) * encoder, parameter by parameter; the
        BatchNorm running statistics are copied. No-op for a model with target "online"."""
        if self.target_encoder is None:
            return
        for t, o in zip(self.target_encoder.parameters(), self.encoder.parameters(), strict=True):
            t.lerp_(o, 1.0 - momentum)
        self._copy_buffers_to_target()

    @torch.no_grad()
    def _copy_buffers_to_target(self) -> None:
        """The encoder's buffers (BatchNorm running statistics) into the target encoder's, if any."""
        if self.target_encoder is None:
            return
        for t, o in zip(self.target_encoder.buffers(), self.encoder.buffers(), strict=True):
            t.copy_(o)

    def predict(
        self, z: torch.Tensor, actions: torch.Tensor, has_actions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Teacher-forced one-step predictions: z (B,T,D), actions (B,T,A') -> z_{t+1} (B,T,D).
        has_actions (B,) bool: clips without actions get the null action (see the predictor)."""
        return self.predictor(z, actions, has_actions=has_actions)

    def rollout(
        self,
        z_hist: torch.Tensor,
        actions: torch.Tensor,
        past_actions: torch.Tensor | None = None,
        has_actions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Open-loop prediction of L future embeddings.

        Args:
            z_hist: (B, T, D) embeddings of observed frames. Without `past_actions` only the last
                one is used (the actions between earlier frames are unknown).
            actions: (B, L, A') actions to apply after the last observed frame.
            past_actions: optional (B, T-1, A') actions taken between the observed frames.
            has_actions: optional (B,) bool; False rows are action-free (the null action).
        Returns:
            (B, L, D) predicted embeddings after each action.
        """
        if actions.shape[-1] not in (0, self.step_action_dim):  # 0: action-free, null action
            raise ValueError(
                f"actions have size {actions.shape[-1]}, model expects {self.step_action_dim}"
            )
        if past_actions is None:
            z_hist, past_actions = z_hist[:, -1:], actions[:, :0]  # (B, 1, D), (B, 0, A')
        T0, L = z_hist.shape[1], actions.shape[1]
        if self.config.max_len < T0 + L - 1:
            raise ValueError(
                f"history {T0} + horizon {L} exceeds model.max_len {self.config.max_len}"
            )
        caches = self.predictor.new_caches()
        # feed the history (with its actions and the first planned one), then one frame per step
        hist_acts = torch.cat([past_actions, actions[:, :1]], dim=1)  # (B, T0, A')
        nxt = self.predictor(z_hist, hist_acts, caches, has_actions=has_actions)[:, -1:]  # (B,1,D)
        preds = [nxt]
        for step in range(1, L):
            act = actions[:, step : step + 1]  # (B, 1, A')
            nxt = self.predictor(nxt, act, caches, T0 + step - 1, has_actions)
            preds.append(nxt)
        return torch.cat(preds, dim=1)  # (B, L, D)

    def loss(
        self,
        frames: torch.Tensor,
        actions: torch.Tensor,
        has_actions: torch.Tensor | None = None,
        rank: bool = True,
        proprio: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Training loss on a clip batch: frames (B,T,H,W,3) uint8, actions (B,T-1,A'), and for a
        batch mixing clips with and without actions, has_actions (B,) bool; for a model with
        proprioception, the frames' state vectors proprio (B,T,S). The anti-collapse,
        smoothness and reconstruction terms see the image features alone (proprioception
        cannot collapse: it is read, not learnt).

        Metrics are detached 0-dim tensors on the model's device, so that a training loop reads
        them (a host sync on a GPU) only when it logs; `rank` False leaves out "eff_rank", whose
        SVD is the costliest of them."""
        c = self.config
        z = self.encode(frames, proprio)  # (B, T, D)
        targets = (
            z if self.target_encoder is None else self.encode_targets(frames, proprio)
        )  # (B, T, D)
        teacher, rollout, z_roll = self._prediction_terms(z, targets, actions, has_actions)
        image = self.image_part(z)  # (B, T, embed_dim)
        flat = rearrange(image, "b t d -> (b t) d")  # (B*T, embed_dim)
        reg = self._anti_collapse(image, flat)
        smooth = (
            (image[:, 1:] - image[:, :-1]).pow(2).sum(-1).mean()
            if c.smooth_weight
            else z.new_zeros(())
        )
        total = teacher + c.rollout_weight * rollout + c.reg_weight * reg + c.smooth_weight * smooth
        metrics = {
            "loss": total.detach(),
            "pred": teacher.detach(),
            "rollout": rollout.detach(),
            "reg": reg.detach(),
            "smooth": smooth.detach(),
        }
        if self.decoder is not None:
            # one frame per clip (the first) keeps the cost a T-th of redrawing every frame
            redrawn = self._redraw(image[:, 0])  # (B, 3, H, W)
            recon = F.mse_loss(redrawn, self._images(frames[:, :1]))
            total = total + c.recon_weight * recon
            metrics["loss"], metrics["recon"] = total.detach(), recon.detach()
        if self.decoder is not None and z_roll is not None and c.recon_rollout_weight:
            # the last open-loop prediction, redrawn, against the clip's last frame
            imagined = self._redraw(self.image_part(z_roll[:, -1]))  # (B, 3, H, W)
            recon_roll = F.mse_loss(imagined, self._images(frames[:, -1:]))
            total = total + c.recon_rollout_weight * recon_roll
            metrics["loss"], metrics["recon_rollout"] = total.detach(), recon_roll.detach()
        if rank:
            metrics["eff_rank"] = effective_rank_tensor(flat.detach())
        return total, metrics

    def _anti_collapse(self, image: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
        """The anti-collapse term of image embeddings (B, T, embed_dim), given also as (B*T, ...)."""
        c = self.config
        if c.regularizer == "vicreg":
            return vicreg(flat)
        if c.sigreg_over == "time":
            return sigreg(image.transpose(0, 1), c.sigreg_directions)  # (T, B, embed_dim)
        return sigreg(flat, c.sigreg_directions)

    def latent_loss(
        self,
        z: torch.Tensor,
        actions: torch.Tensor,
        has_actions: torch.Tensor | None = None,
        rank: bool = True,
        hidden: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The training loss of a predictor on a frozen encoder, from embeddings given, z (B,T,D)
        (a frozen encoder's, read once and kept: `TrainConfig.cache_latents`), each frame's its
        own target: the teacher-forced and rollout terms of `loss`. The anti-collapse, smoothness
        and reconstruction terms, which train the encoder or the decoder, are left out. Metrics
        as `loss`'s ("pred", "rollout", "loss", with `rank` "eff_rank").

        hidden (B, T) bool, optional: frames whose embeddings the predictor's inputs do not show
        (zeros in their place), while the targets keep them (`TrainConfig.hide_frames`). The
        rollout term starts from the first `rollout_context` inputs, hidden ones included."""
        inputs = z if hidden is None else z.masked_fill(hidden[..., None], 0.0)  # (B, T, D)
        teacher, rollout, _ = self._prediction_terms(inputs, z, actions, has_actions)
        total = teacher + self.config.rollout_weight * rollout
        metrics = {"loss": total.detach(), "pred": teacher.detach(), "rollout": rollout.detach()}
        if rank:
            flat = rearrange(self.image_part(z), "b t d -> (b t) d")  # (B*T, embed_dim)
            metrics["eff_rank"] = effective_rank_tensor(flat.detach())
        return total, metrics

    def _prediction_terms(
        self,
        z: torch.Tensor,
        targets: torch.Tensor,
        actions: torch.Tensor,
        has_actions: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The teacher-forced loss, the rollout loss (0 without rollout_weight) and the rollout's
        predictions (None without) for embeddings z and targets (B, T, D)."""
        c = self.config
        actions = actions.to(z.device)
        # sliced before predicting: autograd sums z's gradients in the order the graph was built,
        # and this order keeps an online float32 run bit-identical to the code before EMA targets
        target = targets[:, 1:]  # (B, T-1, D)
        teacher = prediction_loss(
            self.predict(z[:, :-1], actions, has_actions), target, c.pred_loss
        )
        rollout, z_roll = (
            self._rollout_loss(z, targets, actions, has_actions)
            if c.rollout_weight
            else (z.new_zeros(()), None)
        )
        return teacher, rollout, z_roll

    def _rollout_loss(
        self,
        z: torch.Tensor,
        targets: torch.Tensor,
        actions: torch.Tensor,
        has_actions: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Open-loop error from the first `rollout_context` frames of z (fewer if the clip is
        short) against the targets of the frames after them, and the predictions (B, T-c0, D).
        z, targets (B, T, D)."""
        c0 = min(self.config.rollout_context, z.shape[1] - 1)
        past, future = actions[:, : c0 - 1], actions[:, c0 - 1 :]  # (B, c0-1, A'), (B, T-c0, A')
        pred = self.rollout(z[:, :c0], future, past, has_actions)  # (B, T-c0, D)
        return prediction_loss(pred, targets[:, c0:], self.config.pred_loss), pred

    # ---- persistence -------------------------------------------------------------------------

    def save(self, directory: Path | str, extra_config: dict[str, Any] | None = None) -> Path:
        """Write config.json and model.safetensors into `directory` (created if needed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {"model": to_dict(self.config), **(extra_config or {})}
        (directory / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS))
        return directory / WEIGHTS

    @classmethod
    def from_pretrained(
        cls, directory: Path | str, map_location: str | torch.device = "cpu"
    ) -> WorldModel:
        """Load a model saved by `save` (or a training checkpoint), strictly."""
        directory = Path(directory)
        config = read_model_config(directory)
        model = cls(config)
        load_weights_strict(model, directory / WEIGHTS)
        return model.to(map_location).eval()


def read_model_config(directory: Path) -> ModelConfig:
    path = Path(directory) / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (not a jepaworld checkpoint directory)")
    try:
        data = json.loads(path.read_text())
        return from_dict(ModelConfig, data["model"], source=str(path))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: invalid model config ({e})") from e


def load_weights_strict(model: nn.Module, path: Path) -> None:
    """Load safetensors weights; a missing, unexpected or mis-shaped key is an error naming it."""
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file missing")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path}: cannot read weights ({e})") from e
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing:
        raise CheckpointError(
            f"{path}: missing key(s) {missing[:5]} (checkpoint from another config?)"
        )
    if unexpected:
        raise CheckpointError(
            f"{path}: unexpected key(s) {unexpected[:5]} (checkpoint from another config?)"
        )
    for key, value in state.items():
        if value.shape != own[key].shape:
            raise CheckpointError(
                f"{path}: key {key!r} has shape {tuple(value.shape)}, model expects {tuple(own[key].shape)}"
            )
    model.load_state_dict(state, strict=True)
