from __future__ import annotations

import torch

from jepaworld.models.losses import effective_rank, epps_pulley, sigreg, vicreg


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
