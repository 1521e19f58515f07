from __future__ import annotations

import pytest
import torch

from jepaworld.bench.probe import ProbeConfig
from jepaworld.envs.physics_scenes import BALL_RGBS
from jepaworld.physics.look_probe import (
    look_probe,
    look_samples,
    pixel_references,
    token_under_ball,
)

PALETTE = torch.tensor(BALL_RGBS, dtype=torch.uint8)  # (7, 3)


def palette_counts(frames: torch.Tensor) -> torch.Tensor:
    """An encoder that holds the ball's colour: pixels of each ball colour. (B,T,H,W,3) -> (B,T,7)"""
    hits = (frames[..., None, :] == PALETTE).all(dim=-1)  # (B, T, H, W, 7)
    return hits.flatten(2, 3).sum(dim=2).float()


def noise(frames: torch.Tensor) -> torch.Tensor:
    g = torch.Generator().manual_seed(int(frames.sum()) % 1000)
    return torch.randn(*frames.shape[:2], 7, generator=g)


@pytest.fixture(scope="module")
def samples():
    return look_samples(40)


def test_samples_are_frames_with_the_ball_in_view_and_its_true_look(samples) -> None:
    assert len(samples.colour) > 200 and samples.square.unique().tolist() == [0, 1]
    assert samples.colour.unique().numel() == len(BALL_RGBS)
    for (v, t), c, xy in zip(samples.index, samples.colour, samples.xy, strict=True):
        centre = samples.videos[v, t, int(xy[1]), int(xy[0])]  # (3,): the ball covers its centre
        assert torch.equal(centre, PALETTE[c])


def test_a_probe_reads_a_colour_the_embedding_holds_and_not_one_it_lacks(samples) -> None:
    cfg = ProbeConfig(steps=300, hidden=64)
    result = look_probe({"palette": palette_counts, "noise": noise}, samples, cfg)
    assert result["palette"]["colour"] > 0.9
    assert result["noise"]["colour"] < result["majority"]["colour"] + 0.2
    assert result["samples"]["fit"] > result["samples"]["held_out"] > 0
    assert "palette_token" not in result
    assert set(result["pixels"]) == set(result["ball_crop"]) == {"colour", "shape"}


def test_the_probe_reads_the_look_from_the_window_on_the_ball_not_from_the_whole_frame() -> None:
    result = look_probe({}, look_samples(80), ProbeConfig(steps=1000, hidden=64))
    crop, frame, majority = result["ball_crop"], result["pixels"], result["majority"]
    assert crop["colour"] > 0.9 and crop["shape"] > majority["shape"] + 0.1
    assert frame["shape"] < crop["shape"] - 0.1  # measured: 0.62 against 0.81


def test_pixel_references_hold_the_frame_and_the_window_on_the_ball(samples) -> None:
    refs = pixel_references(samples, pool=4, crop=12)
    N = len(samples.colour)
    assert refs["pixels"].shape == (N, 3 * 16 * 16) and refs["ball_crop"].shape == (N, 3 * 12 * 12)
    window = refs["ball_crop"].reshape(N, 12, 12, 3)
    colour = PALETTE[samples.colour].float() / 255  # (N, 3)
    assert torch.equal(window[:, 6, 6], colour)  # the window's middle pixel: the ball's centre
    v, t = samples.index[0]
    frame = samples.videos[v, t].float() / 255  # (H, W, 3)
    assert torch.allclose(refs["pixels"][0].reshape(3, 16, 16)[:, 0, 0], frame[:4, :4].mean((0, 1)))


def test_token_under_ball_picks_the_cell_of_the_ball_centre() -> None:
    z = torch.arange(2 * 16 * 3, dtype=torch.float32).reshape(2, 48)  # 16 tokens of 3 channels
    xy = torch.tensor([[5.0, 5.0], [40.0, 20.0]])  # cells (0, 0) and column 2, row 1 (16 px cells)
    tok = token_under_ball(z, xy, tokens=16, size=64)
    assert torch.equal(tok[0], z[0, 0:3]) and torch.equal(tok[1], z[1, 18:21])  # token 1*4 + 2
    with pytest.raises(ValueError, match="tokens"):
        token_under_ball(z, xy, tokens=12, size=64)


def test_too_few_videos_is_refused() -> None:
    with pytest.raises(ValueError, match="videos"):
        look_samples(1)


def test_an_encoder_named_like_a_reference_is_refused(samples) -> None:
    with pytest.raises(ValueError, match="encoders"):
        look_probe({"pixels": noise}, samples, ProbeConfig(steps=1))
