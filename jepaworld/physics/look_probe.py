"""What a video model sees of an object's look: probes of a ball's colour and shape from embeddings.

Constancy (a ball that changes colour, or turns from disc to square, while hidden) can only surprise
a model whose embedding holds the ball's look. This measures how much it holds: one-ball scenes
from seeds that neither training (`data.voe.TRAINING_SEED_LIMIT`) nor the VoE protocol's pairs use,
the frames in which the ball is wholly in view, and an MLP probe (`bench.probe.fit_probe`, least
squares on one-hot targets, the highest output wins) fitted on the first videos' frames and scored on
the last ones'. For a grid latent (`ModelConfig.latent`), the token of the cell under the ball's
centre is probed too, alone. The majority answer of the fitting frames is scored beside it.

Shape letters: V videos, N samples, D embedding dim, K classes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from jepaworld.bench.probe import Encode, ProbeConfig, fit_probe
from jepaworld.config import require
from jepaworld.envs.physics_scenes import (
    BALL_RGBS,
    SceneConfig,
    in_view,
    render,
    sample_scene,
    simulate,
)

FIRST_SEED = 9_000_000
"""Seed of the first probe scene: above every training seed and every protocol pair's."""


@dataclass
class LookSamples:
    """Frames with one ball wholly in view, and what that ball looks like in each."""

    videos: torch.Tensor
    """(V, T, H, W, 3) uint8."""
    index: torch.Tensor
    """(N, 2) long: (video, frame) of each sample."""
    colour: torch.Tensor
    """(N,) long: index of the ball's colour in `BALL_RGBS`."""
    square: torch.Tensor
    """(N,) long: 1 for a square, 0 for a disc."""
    xy: torch.Tensor
    """(N, 2) float: the ball's centre, px."""


def look_samples(videos: int, first_seed: int = FIRST_SEED) -> LookSamples:
    """`videos` one-ball scenes (seeds first_seed, first_seed + 1, ...) with their labels."""
    require(videos >= 2, "videos", f"must be >= 2, got {videos}")
    config = replace(SceneConfig(), min_balls=1, max_balls=1)
    clips, index, colour, square, xy = [], [], [], [], []
    for v in range(videos):
        scene = sample_scene(np.random.default_rng(first_seed + v), config)
        track, ball = simulate(scene, config), scene.balls[0]
        clips.append(torch.from_numpy(render(scene, track, config)))
        for t in range(len(track.xy)):
            if track.visible[t, 0] and in_view(scene, track.xy[t, 0], ball.radius):
                index.append((v, t))
                colour.append(BALL_RGBS.index(tuple(int(c) for c in track.rgb[t, 0])))
                square.append(int(track.square[t, 0]))
                xy.append(track.xy[t, 0])
    return LookSamples(
        torch.stack(clips),
        torch.tensor(index),
        torch.tensor(colour),
        torch.tensor(square),
        torch.tensor(np.array(xy), dtype=torch.float32),
    )


@torch.no_grad()
def sample_embeddings(encode: Encode, samples: LookSamples, batch: int = 16) -> torch.Tensor:
    """Embeddings of the sampled frames: (N, D) float."""
    z = torch.cat([encode(v).float().cpu() for v in samples.videos.split(batch)])  # (V, T, D)
    return z[samples.index[:, 0], samples.index[:, 1]]  # (N, D)


def token_under_ball(z: torch.Tensor, xy: torch.Tensor, tokens: int, size: int) -> torch.Tensor:
    """The grid token of the cell under each ball's centre. z (N, D) of `tokens` row-major
    tokens, xy (N, 2) px (x the column) in frames of `size` px -> (N, D / tokens)."""
    side = round(tokens**0.5)
    require(side * side == tokens, "tokens", f"must be a square grid, got {tokens}")
    cell = (xy * side / size).long().clamp(0, side - 1)  # (N, 2): column, row
    grid = z.reshape(len(z), tokens, -1)  # (N, tokens, D/tokens)
    return grid[torch.arange(len(z)), cell[:, 1] * side + cell[:, 0]]


def probe_accuracy(
    x: torch.Tensor, labels: torch.Tensor, classes: int, fit: torch.Tensor, cfg: ProbeConfig
) -> float:
    """Held-out accuracy of an MLP probe x (N, D) -> one of `classes` (N,), fitted where `fit`."""
    one_hot = torch.nn.functional.one_hot(labels, classes).float()  # (N, K)
    probe = fit_probe(x[fit], one_hot[fit], cfg.hidden, cfg)
    guess = probe(x[~fit]).argmax(dim=-1)  # (N_held,)
    return float((guess == labels[~fit]).float().mean())


def majority_accuracy(labels: torch.Tensor, fit: torch.Tensor) -> float:
    """Held-out accuracy of always answering the fitting samples' most common label."""
    return float((labels[~fit] == labels[fit].mode().values).float().mean())


def look_probe(
    encoders: dict[str, Encode],
    samples: LookSamples,
    cfg: ProbeConfig,
    grid_tokens: int = 1,
) -> dict[str, Any]:
    """Colour and shape accuracy per encoder (and per encoder's token under the ball when
    grid_tokens > 1), beside the majority answer. The last `cfg.held_out` of the videos are scored."""
    videos, size = len(samples.videos), samples.videos.shape[2]
    fit = samples.index[:, 0] < videos - max(1, round(videos * cfg.held_out))  # (N,)
    require(bool(fit.any()) and not bool(fit.all()), "videos", "too few to fit and score a probe")
    labels = {"colour": (samples.colour, len(BALL_RGBS)), "shape": (samples.square, 2)}
    result: dict[str, Any] = {
        "samples": {"fit": int(fit.sum()), "held_out": int((~fit).sum())},
        "majority": {k: majority_accuracy(y, fit) for k, (y, _) in labels.items()},
    }
    for name, encode in encoders.items():
        z = sample_embeddings(encode, samples)  # (N, D)
        features = {name: z}
        if grid_tokens > 1:
            features[f"{name}_token"] = token_under_ball(z, samples.xy, grid_tokens, size)
        for label, x in features.items():
            result[label] = {k: probe_accuracy(x, y, n, fit, cfg) for k, (y, n) in labels.items()}
    return result
