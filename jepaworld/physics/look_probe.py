"""What a video model sees of an object's look: probes of a ball's colour and shape from embeddings.

Constancy (a ball that changes colour, or turns from disc to square, while hidden) can only surprise
a model whose embedding holds the ball's look. This measures how much it holds: one-ball scenes
from seeds that neither training (`data.voe.TRAINING_SEED_LIMIT`) nor the VoE protocol's pairs use,
the frames in which the ball is wholly in view, and an MLP probe (`bench.probe.fit_probe`, least
squares on one-hot targets, the highest output wins) fitted on the first videos' frames and scored on
the last ones'. For a grid latent (`ModelConfig.latent`), the token of the cell under the ball's
centre is probed too, alone. The majority answer of the fitting frames is scored beside it, and two
references read from the frames themselves, probed the same way: `pixels`, the whole frame averaged
over 4 x 4 blocks, and `ball_crop`, a 12 x 12 window centred on the ball. The crop shows the look is
there to be read (the probe scores 1.00 on colour and 0.995 on shape from it); the whole frame shows
what the probe finds in raw pixels where the ball is anywhere: colour 0.59, shape 0.71, the majority
answer (300 videos). An embedding can do better than raw pixels (a trained one reads colour up to
0.90), so this is a floor, not a ceiling; but a shape score at the majority answer is then weak
evidence either way: the probe does not find shape in the frame's own pixels either.

Shape letters: V videos, N samples, D embedding dim, K classes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

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
POOL = 4
"""The `pixels` reference averages the frame over POOL x POOL blocks."""
CROP = 12
"""Side of the `ball_crop` reference's window, px (a ball is at most 10 px across)."""


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


def pixel_references(
    samples: LookSamples, pool: int = POOL, crop: int = CROP
) -> dict[str, torch.Tensor]:
    """Features read from the sampled frames themselves: "pixels", the frame averaged over
    pool x pool blocks, (N, 3 H W / pool^2); "ball_crop", the crop x crop window centred on the
    ball (zeros beyond the frame), (N, 3 crop^2). Values in [0, 1]."""
    require(pool >= 1 and samples.videos.shape[2] % pool == 0, "pool", "must divide the frame size")
    require(crop >= 2, "crop", f"must be >= 2 px, got {crop}")
    frames = samples.videos[samples.index[:, 0], samples.index[:, 1]]  # (N, H, W, 3)
    x = rearrange(frames, "n h w c -> n c h w").float() / 255  # (N, 3, H, W)
    half = crop // 2
    padded = F.pad(x, (half, half, half, half))  # (N, 3, H + 2 half, W + 2 half)
    centre = samples.xy.round().long() + half  # (N, 2): column, row in the padded frame
    offsets = torch.arange(-half, crop - half)  # (crop,)
    rows = (centre[:, 1, None] + offsets)[:, :, None]  # (N, crop, 1)
    cols = (centre[:, 0, None] + offsets)[:, None, :]  # (N, 1, crop)
    n = torch.arange(len(x))[:, None, None]  # (N, 1, 1)
    window = padded[n, :, rows, cols]  # (N, crop, crop, 3)
    return {"pixels": F.avg_pool2d(x, pool).flatten(1), "ball_crop": window.flatten(1)}


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
    grid_tokens > 1), beside the majority answer and the `pixel_references`. The last
    `cfg.held_out` of the videos are scored."""
    videos, size = len(samples.videos), samples.videos.shape[2]
    fit = samples.index[:, 0] < videos - max(1, round(videos * cfg.held_out))  # (N,)
    require(bool(fit.any()) and not bool(fit.all()), "videos", "too few to fit and score a probe")
    labels = {"colour": (samples.colour, len(BALL_RGBS)), "shape": (samples.square, 2)}
    result: dict[str, Any] = {
        "samples": {"fit": int(fit.sum()), "held_out": int((~fit).sum())},
        "majority": {k: majority_accuracy(y, fit) for k, (y, _) in labels.items()},
    }
    features: dict[str, torch.Tensor] = {}
    references = pixel_references(samples)
    taken = set(references) | {"samples", "majority"}
    require(not taken & set(encoders), "encoders", f"names {sorted(taken)} are the probe's own")
    for name, encode in encoders.items():
        z = sample_embeddings(encode, samples)  # (N, D)
        features[name] = z
        if grid_tokens > 1:
            features[f"{name}_token"] = token_under_ball(z, samples.xy, grid_tokens, size)
    features.update(references)
    for label, x in features.items():
        result[label] = {k: probe_accuracy(x, y, n, fit, cfg) for k, (y, n) in labels.items()}
    return result
