from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from jepaworld.bench.probe import (
    ProbeConfig,
    regression_targets,
    state_errors,
    state_probe,
    summarize_errors,
    targets_to_states,
)
from jepaworld.data.episodes import EpisodeStore

FAST = ProbeConfig(steps=400, hidden=64, every=1, held_out=0.34)


class Standardize(torch.nn.Module):
    def __init__(self, mu: torch.Tensor, sd: torch.Tensor) -> None:
        super().__init__()
        self.mu, self.sd = mu.float(), sd.float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mu) / self.sd


def state_lookup_encoder(store: EpisodeStore, features: torch.nn.Module | None):
    """An encoder that knows each frame's true state (by its bytes) and returns `features` of it,
    or pure noise when `features` is None: embeddings that hold the state, or nothing of it."""
    table = {}
    for e in range(len(store)):
        ep = store.episode(e)
        for frame, state in zip(ep.frames, ep.states, strict=True):
            table[frame.tobytes()] = torch.from_numpy(state).float()
    g = torch.Generator().manual_seed(1)

    def encode(frames: torch.Tensor) -> torch.Tensor:  # (1, T, H, W, 3) -> (1, T, 16)
        if features is None:
            return torch.randn(1, frames.shape[1], 16, generator=g)
        states = torch.stack([table[f.numpy().tobytes()] for f in frames[0]])  # (T, S)
        with torch.no_grad():
            return features(states).unsqueeze(0)

    return encode


def test_probe_reads_the_state_an_embedding_holds_and_not_from_noise(tiny_data: Path) -> None:
    store = EpisodeStore(tiny_data)
    torch.manual_seed(0)
    all_states = torch.cat([torch.from_numpy(store.episode(e).states) for e in range(len(store))])
    S, mu, sd = all_states.shape[1], all_states.mean(0), all_states.std(0)
    features = torch.nn.Sequential(Standardize(mu, sd), torch.nn.Linear(S, 16), torch.nn.Tanh())
    held = state_probe(state_lookup_encoder(store, features), store, FAST, groups={"xy": [0, 1]})
    noise = state_probe(state_lookup_encoder(store, None), store, FAST, groups={"xy": [0, 1]})
    chance = held["mean"]["groups"]["xy"]["median"]
    assert held["episodes"] == {"train": 4, "held_out": 2}
    frames = [len(store.episode(e).frames) for e in range(len(store))]
    assert held["samples"] == {"train": sum(frames[:4]), "held_out": sum(frames[4:])}
    assert held["mlp"]["groups"]["xy"]["median"] < 0.25 * chance
    assert noise["mlp"]["groups"]["xy"]["median"] > 0.7 * noise["mean"]["groups"]["xy"]["median"]
    assert set(held["linear"]["dims"]) == {str(d) for d in range(S)}


def test_angles_are_regressed_as_sin_cos_and_scored_wrapped() -> None:
    states = torch.tensor([[3.0, 0.1], [5.0, 2 * math.pi - 0.1]])  # dim 1 is an angle
    y = regression_targets(states, [1])
    assert y.shape == (2, 3)
    back = targets_to_states(y, 2, [1])
    assert torch.allclose(torch.remainder(back[:, 1], 2 * math.pi), states[:, 1], atol=1e-5)
    err = state_errors(torch.tensor([[4.0, 2 * math.pi - 0.05]]), torch.tensor([[3.0, 0.05]]), [1])
    assert err[0, 0] == pytest.approx(1.0)
    assert err[0, 1] == pytest.approx(0.1, abs=1e-5)  # not 2 pi - 0.1
    summary = summarize_errors(torch.tensor([[3.0, math.pi / 2]]), [1], {"a": [0]})
    assert summary["dims"]["1"] == {"median": 90.0, "mean": 90.0, "unit": "deg"}
    assert summary["dims"]["0"]["unit"] == "state units" and summary["groups"]["a"]["median"] == 3.0


def test_bad_probe_input_is_named(tiny_data: Path) -> None:
    store = EpisodeStore(tiny_data)
    encode = state_lookup_encoder(store, None)
    with pytest.raises(ValueError, match="angle_dims"):
        state_probe(encode, store, FAST, angle_dims=[7])
    with pytest.raises(ValueError, match="group 'g'"):
        state_probe(encode, store, FAST, groups={"g": [0, 7]})
    with pytest.raises(ValueError, match="holds an angle"):
        state_probe(encode, store, FAST, angle_dims=[1], groups={"g": [0, 1]})
    with pytest.raises(ValueError, match="episodes"):
        ProbeConfig(episodes=1)
    with pytest.raises(ValueError, match="held_out"):
        ProbeConfig(held_out=1.0)
