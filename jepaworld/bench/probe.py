"""What an embedding knows about the world: probes of the true state from frame embeddings.

A probe is a small regressor trained on (embedding, true state) pairs of some episodes and scored on
held-out episodes; its error says how well the state can be read from the embedding, which is what
latent planning toward a goal needs. Each probe is reported beside `mean`, the error of always
answering the training states' mean, so a figure has its chance level next to it.

Angles (state dims named in `angle_dims`) are regressed as (sin, cos) and scored as the wrapped
absolute angle error. `groups` name dims scored together as one Euclidean error (e.g. PushT's
pusher x, y), in the state's own units.

Shape letters: N samples, D embedding dim, S state dims, Y regression targets.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from jepaworld.config import require
from jepaworld.data.episodes import EpisodeStore

Encode = Callable[[torch.Tensor], torch.Tensor]  # uint8 frames (B, T, H, W, 3) -> (B, T, D)


@dataclass
class ProbeConfig:
    """How probes are fitted and scored."""

    hidden: int = 256
    """Width of the MLP probe's two hidden layers (the linear probe is always fitted too)."""
    steps: int = 2500
    """Adam steps per probe."""
    batch_size: int = 256
    """Samples per step."""
    lr: float = 1e-3
    """Adam learning rate."""
    held_out: float = 0.2
    """Share of the episodes (the last ones) scored, never trained on."""
    every: int = 3
    """Use every k-th frame of an episode."""
    episodes: int = 0
    """Episodes read from the dataset (0: all)."""
    seed: int = 0
    """Seed of the probes' initialisation and batches."""

    def __post_init__(self) -> None:
        require(self.hidden >= 1, "hidden", "must be >= 1")
        require(self.steps >= 1, "steps", "must be >= 1")
        require(self.batch_size >= 1, "batch_size", "must be >= 1")
        require(0 < self.held_out < 1, "held_out", "must be in (0, 1)")
        require(self.every >= 1, "every", "must be >= 1")
        require(self.episodes != 1 and self.episodes >= 0, "episodes", "must be 0 (all) or >= 2")


@torch.no_grad()
def embed_episodes(
    encode: Encode, store: EpisodeStore, every: int, episodes: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Embeddings (N, D), true states (N, S) and episode index (N,) of every `every`-th frame."""
    count = len(store) if episodes == 0 else min(episodes, len(store))
    zs, states, index = [], [], []
    for e in range(count):
        ep = store.episode(e)
        frames = torch.from_numpy(np.ascontiguousarray(ep.frames[::every]))  # (T', H, W, 3)
        zs.append(encode(frames.unsqueeze(0))[0].float().cpu())  # (T', D)
        states.append(torch.from_numpy(ep.states[::every]).float())  # (T', S)
        index.append(torch.full((len(frames),), e))
    return torch.cat(zs), torch.cat(states), torch.cat(index)


def regression_targets(states: torch.Tensor, angle_dims: Sequence[int]) -> torch.Tensor:
    """States (N, S) -> targets (N, Y): plain dims as they are, each angle as (sin, cos)."""
    cols = [
        torch.stack([states[:, d].sin(), states[:, d].cos()], 1)
        if d in angle_dims
        else states[:, d : d + 1]
        for d in range(states.shape[1])
    ]
    return torch.cat(cols, dim=1)


def targets_to_states(y: torch.Tensor, num_dims: int, angle_dims: Sequence[int]) -> torch.Tensor:
    """Inverse of `regression_targets`: (N, Y) -> (N, S), angles by atan2."""
    out, i = [], 0
    for d in range(num_dims):
        if d in angle_dims:
            out.append(torch.atan2(y[:, i], y[:, i + 1]))
            i += 2
        else:
            out.append(y[:, i])
            i += 1
    return torch.stack(out, 1)


def state_errors(pred: torch.Tensor, true: torch.Tensor, angle_dims: Sequence[int]) -> torch.Tensor:
    """Absolute error per dim (N, S); an angle's is wrapped to [0, pi]."""
    diff = pred - true
    for d in angle_dims:
        diff[:, d] = torch.remainder(diff[:, d] + math.pi, 2 * math.pi) - math.pi
    return diff.abs()


def safe_std(x: torch.Tensor) -> torch.Tensor:
    """Per-column std of x (N, C); 1 where a column is constant, so that a held-out sample off
    a constant training value is not divided by ~0."""
    sd = x.std(0)
    return torch.where(sd > 1e-6, sd, torch.ones_like(sd))


def check_dims(
    store: EpisodeStore, angle_dims: Sequence[int], groups: dict[str, Sequence[int]]
) -> None:
    """Angle and group dims must exist in the dataset's states; a group mixes no angle (its L2
    is in the state's units). Checked before any frame is embedded."""
    if len(store) < 2:
        raise ValueError(f"{store.root}: a probe needs >= 2 episodes, the dataset has {len(store)}")
    S = store.episode(0).states.shape[1]
    bad = [d for d in angle_dims if not 0 <= d < S]
    if bad:
        raise ValueError(f"angle_dims {bad}: the states of {store.root} have {S} dims")
    for name, dims in groups.items():
        if not dims or any(not 0 <= d < S for d in dims):
            raise ValueError(
                f"group {name!r} {list(dims)}: the states of {store.root} have {S} dims"
            )
        if set(dims) & set(angle_dims):
            raise ValueError(f"group {name!r} {list(dims)} holds an angle dim {list(angle_dims)}")


def fit_probe(
    x: torch.Tensor, y: torch.Tensor, hidden: int, cfg: ProbeConfig
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Fit a probe x (N, D) -> y (N, Y) by Adam on the mean squared error of standardised
    targets; hidden 0 is linear. Returns the fitted map (inputs and outputs in original units)."""
    g = torch.Generator().manual_seed(cfg.seed)
    x_mu, x_sd = x.mean(0), safe_std(x)
    y_mu, y_sd = y.mean(0), safe_std(y)
    D, Y = x.shape[1], y.shape[1]
    widths = [D, hidden, hidden, Y] if hidden else [D, Y]
    layers: list[nn.Module] = []
    with torch.random.fork_rng():  # the init is seeded without touching the caller's RNG
        torch.manual_seed(cfg.seed)
        for w_in, w_out in zip(widths, widths[1:], strict=False):
            layers += [nn.Linear(w_in, w_out), nn.GELU()]
    net = nn.Sequential(*layers[:-1])  # no activation after the last layer
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    xn, yn = (x - x_mu) / x_sd, (y - y_mu) / y_sd
    for _ in range(cfg.steps):
        idx = torch.randint(0, len(x), (cfg.batch_size,), generator=g)
        loss = (net(xn[idx]) - yn[idx]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()

    @torch.no_grad()
    def apply(z: torch.Tensor) -> torch.Tensor:
        return net((z - x_mu) / x_sd) * y_sd + y_mu  # (N, Y)

    return apply


def summarize_errors(
    err: torch.Tensor, angle_dims: Sequence[int], groups: dict[str, Sequence[int]]
) -> dict[str, Any]:
    """Median and mean absolute error per dim (angles in degrees) and per named group (L2)."""

    def stats(e: torch.Tensor) -> dict[str, float]:
        return {"median": round(float(e.median()), 3), "mean": round(float(e.mean()), 3)}

    out: dict[str, Any] = {"dims": {}, "groups": {}}
    for d in range(err.shape[1]):
        angle = d in angle_dims
        e = err[:, d] * (180 / math.pi if angle else 1.0)
        out["dims"][str(d)] = {**stats(e), "unit": "deg" if angle else "state units"}
    for name, dims in groups.items():
        out["groups"][name] = stats(err[:, list(dims)].norm(dim=1))  # L2 over the group's dims
    return out


def first_held_out(episodes: int, held_out: float) -> int:
    """Index of the first of the last `held_out` share of `episodes` episodes (at least one
    episode on each side)."""
    return max(1, min(episodes - 1, round(episodes * (1 - held_out))))


def state_probe(
    encode: Encode,
    store: EpisodeStore,
    cfg: ProbeConfig,
    angle_dims: Sequence[int] = (),
    groups: dict[str, Sequence[int]] | None = None,
) -> dict[str, Any]:
    """Linear and MLP probes of the true state from `encode`'s embeddings of `store`'s frames,
    scored on the held-out episodes, beside the train-mean answer."""
    groups = groups or {}
    check_dims(store, angle_dims, groups)
    z, states, episode = embed_episodes(encode, store, cfg.every, cfg.episodes)
    episodes = int(episode.max()) + 1
    first_held = first_held_out(episodes, cfg.held_out)
    train, test = episode < first_held, episode >= first_held
    S = states.shape[1]
    y = regression_targets(states, angle_dims)
    mean_pred = y[train].mean(0, keepdim=True).expand(int(test.sum()), -1)
    result: dict[str, Any] = {
        "samples": {"train": int(train.sum()), "held_out": int(test.sum())},
        "episodes": {"train": first_held, "held_out": episodes - first_held},
        "embed_dim": int(z.shape[1]),
    }
    answers = {
        "mean": mean_pred,
        "linear": fit_probe(z[train], y[train], 0, cfg)(z[test]),
        "mlp": fit_probe(z[train], y[train], cfg.hidden, cfg)(z[test]),
    }
    for name, y_hat in answers.items():
        pred = targets_to_states(y_hat, S, angle_dims)
        err = state_errors(pred, states[test], angle_dims)
        result[name] = summarize_errors(err, angle_dims, groups)
    return result
