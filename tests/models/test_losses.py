from __future__ import annotations

import pytest
import torch

from jepaworld.models.losses import (
    effective_rank,
    epps_pulley,
    prediction_loss,
    sigreg,
    vicreg,
)
from jepaworld.models.world_model import ModelConfig


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_epps_pulley_accepts_gaussian_and_rejects_shifted_or_uniform() -> None:
    g = _gen()
    gauss = torch.randn(2048, 1, generator=g)
    shifted = gauss + 1.0
    uniform = (torch.rand(2048, 1, generator=g) - 0.5) * 2 * 3**0.5  # unit variance, not Gaussian
    ep_gauss = float(epps_pulley(gauss))
    assert ep_gauss < 1.0
    assert float(epps_pulley(shifted)) > 20 * ep_gauss
    assert float(epps_pulley(uniform)) > 2 * ep_gauss


def test_sigreg_is_larger_on_collapsed_than_on_gaussian_embeddings() -> None:
    g = _gen(1)
    gaussian = torch.randn(1024, 32, generator=g)
    collapsed = torch.randn(1, 32, generator=g).expand(1024, 32) + 0.01 * torch.randn(
        1024, 32, generator=g
    )
    low_rank = torch.randn(1024, 2, generator=g) @ torch.randn(2, 32, generator=g) / 2**0.5
    s_gauss = float(sigreg(gaussian, generator=_gen(2)))
    assert float(sigreg(collapsed, generator=_gen(2))) > 50 * s_gauss
    assert float(sigreg(low_rank, generator=_gen(2))) > 5 * s_gauss


def test_pooled_sigreg_penalises_features_that_hold_still_and_per_step_does_not() -> None:
    """A clip's static feature (one value per clip, held over its T steps) shows only B distinct
    values to a test that pools the T*B frames yet is scaled by T*B samples: its statistic is
    about T times that of features drawn afresh per frame. Tested per step, each step's B values
    are as Gaussian either way."""
    g = _gen(6)
    T, B, D = 16, 64, 16
    static = torch.randn(1, B, D, generator=g).expand(T, B, D)  # (T, B, D): held over time
    fresh = torch.randn(T, B, D, generator=g)  # (T, B, D)

    def pooled(z: torch.Tensor) -> float:
        return float(sigreg(z.reshape(T * B, D), 64, generator=_gen(7)))

    def per_step(z: torch.Tensor) -> float:
        return float(sigreg(z, 64, generator=_gen(7)))

    assert pooled(static) > 5 * pooled(fresh)
    assert per_step(static) < 2 * per_step(fresh)


def test_sigreg_of_groups_is_the_mean_of_each_group_alone() -> None:
    g = _gen(8)
    first, second = torch.randn(64, 16, generator=g), torch.randn(64, 16, generator=g) + 1.0
    both = float(sigreg(torch.stack([first, second]), 64, generator=_gen(7)))  # (2, 64, 16)
    alone = [float(sigreg(x, 64, generator=_gen(7))) for x in (first, second)]
    assert both == pytest.approx(sum(alone) / 2, rel=1e-5)


def test_sigreg_gradient_spreads_a_narrow_cloud() -> None:
    z = (0.1 * torch.randn(512, 8, generator=_gen(3))).requires_grad_()
    opt = torch.optim.SGD([z], lr=0.5)
    before = float(z.detach().std())
    for _ in range(50):
        opt.zero_grad()
        sigreg(z, 64, generator=_gen(4)).backward()
        opt.step()
    assert float(z.std()) > 2 * before


def test_vicreg_penalises_collapse_and_correlation() -> None:
    g = _gen(5)
    gaussian = torch.randn(1024, 16, generator=g)
    collapsed = torch.zeros(1024, 16) + 0.001 * torch.randn(1024, 16, generator=g)
    x = torch.randn(1024, 1, generator=g)
    correlated = x.expand(1024, 16) + 0.1 * torch.randn(1024, 16, generator=g)
    assert float(vicreg(collapsed)) > 10 * float(vicreg(gaussian)) + 1
    assert float(vicreg(correlated)) > 10 * float(vicreg(gaussian))


def test_effective_rank_tracks_dimension() -> None:
    g = _gen(6)
    assert effective_rank(torch.randn(2048, 16, generator=g)) > 14
    rank2 = torch.randn(2048, 2, generator=g) @ torch.randn(2, 16, generator=g)
    assert effective_rank(rank2) < 2.5


@pytest.mark.parametrize("kind, fitted", [("mse", 26.5), ("l1", 2.0)])
def test_prediction_loss_fits_the_mean_or_the_median(kind: str, fitted: float) -> None:
    # one constant prediction fitted to targets 1, 2, 3 and 100: squared error settles on their
    # mean, 26.5, pulled up by the outlier; absolute error on a median, any value in [2, 3] (the
    # gradient is zero there), which descent from 0 reaches at 2
    target = torch.tensor([1.0, 2.0, 3.0, 100.0])[:, None].expand(4, 2)  # (N, D)
    pred = torch.zeros(1, 2, requires_grad=True)  # (1, D)
    opt = torch.optim.SGD([pred], lr=0.05)
    for _ in range(1000):
        opt.zero_grad()
        prediction_loss(pred.expand(4, 2), target, kind).backward()
        opt.step()
    assert pred.detach().sub(fitted).abs().max() < 0.1


def test_prediction_loss_and_config_refuse_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind must be 'mse' or 'l1'"):
        prediction_loss(torch.zeros(2, 3), torch.zeros(2, 3), "huber")
    with pytest.raises(ValueError, match="pred_loss: must be mse or l1"):
        ModelConfig(pred_loss="huber")
