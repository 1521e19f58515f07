"""Losses and diagnostics for joint-embedding predictive training.

- `prediction_loss`: mean squared (or, as V-JEPA trains, mean absolute) error between predicted and
  target embeddings.
- `sigreg`: Sketched Isotropic Gaussian Regularisation (LeJEPA, Balestriero & LeCun 2025). Project
  the embeddings on random unit directions and test each 1-D projection against N(0, 1) with the
  Epps-Pulley statistic. Collapsed or low-rank embeddings are far from an isotropic Gaussian in
  some direction, so the statistic is large. With it, targets can be the online encoder's own
  embeddings (as in LeWM); an EMA target encoder (I-JEPA, V-JEPA) is the model's other option
  (`ModelConfig.target`).
- `vicreg`: the variance and covariance terms of VICReg (Bardes et al. 2022), as an alternative.
- `effective_rank`: exp of the entropy of the normalised singular values (Roy & Vetterli 2007);
  it falls towards 1 when embeddings collapse, so it is logged during training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def prediction_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Mean error over all leading dims: squared ("mse") or absolute ("l1"). pred, target: (..., D)."""
    if kind == "mse":
        return F.mse_loss(pred, target)
    if kind == "l1":
        return F.l1_loss(pred, target)
    raise ValueError(f"kind must be 'mse' or 'l1', got {kind!r}")


def epps_pulley(x: torch.Tensor, knots: int = 17, t_max: float = 3.0) -> torch.Tensor:
    """Epps-Pulley statistic of each column of x against a standard normal.

    EP = N * integral over t of |phi_N(t) - exp(-t^2/2)|^2 * exp(-t^2/2) dt, where phi_N is the
    empirical characteristic function; the integrand is even in t, so we integrate on [0, t_max]
    with the trapezoid rule and double it.

    Args:
        x: (..., N, M) samples of M one-dimensional variables, in groups of N along the leading
            dims (each group tested alone).
    Returns:
        (..., M) statistics; about O(1) for Gaussian columns, growing with N for non-Gaussian ones.
    """
    N = x.shape[-2]
    t = torch.linspace(0.0, t_max, knots, device=x.device, dtype=x.dtype)  # (K,)
    xt = x.unsqueeze(-1) * t  # (..., N, M, K)
    real = torch.cos(xt).mean(dim=-3)  # (..., M, K)
    imag = torch.sin(xt).mean(dim=-3)  # (..., M, K)
    gauss = torch.exp(-0.5 * t**2)  # (K,)
    err = (real - gauss) ** 2 + imag**2  # (..., M, K)
    return 2.0 * N * torch.trapezoid(err * gauss, t, dim=-1)  # (..., M)


def sigreg(
    z: torch.Tensor, num_directions: int = 256, generator: torch.Generator | None = None
) -> torch.Tensor:
    """SIGReg: mean Epps-Pulley statistic of z projected on random unit directions.

    Args:
        z: (N, D) embeddings, or (G, N, D): G groups of N, each tested alone against N(0, I) on
            the same directions and the statistics averaged (LeWM tests each time step's
            embeddings across the batch: z as (T, B, D)).
        num_directions: M random directions, drawn afresh each call.
        generator: optional explicit RNG for the directions (else torch's global RNG).
    Returns:
        a scalar; large for collapsed embeddings, small for N(0, I) ones.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> bool(sigreg(torch.zeros(512, 16) + 1.0) > sigreg(torch.randn(512, 16, generator=g)))
        True
    """
    D = z.shape[-1]
    # drawn on z's device (or the generator's): no host-to-device copy in a step, so a compiled
    # step can be captured whole as a CUDA graph (on the CPU the draw is unchanged)
    where = z.device if generator is None else generator.device
    shape = (D, num_directions)  # (D, M)
    dirs = torch.randn(shape, generator=generator, dtype=z.dtype, device=where)
    dirs = F.normalize(dirs.to(z.device), dim=0)
    return epps_pulley(z @ dirs).mean()  # (..., N, M) -> (..., M) -> scalar


def vicreg(z: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """VICReg variance + covariance terms on (N, D) embeddings (weights 25:1 as in the paper)."""
    N, D = z.shape
    z = z - z.mean(dim=0)
    std = torch.sqrt(z.var(dim=0) + eps)
    variance = F.relu(1.0 - std).mean()
    cov = (z.T @ z) / (N - 1)  # (D, D)
    off_diag = cov - torch.diag(torch.diag(cov))
    covariance = off_diag.pow(2).sum() / D
    return 25.0 * variance + covariance


@torch.compiler.disable  # eager inside a compiled loss: an SVD cannot be captured in a CUDA graph
@torch.no_grad()
def effective_rank_tensor(z: torch.Tensor) -> torch.Tensor:
    """`effective_rank` as a 0-dim tensor on z's device (no host sync)."""
    z = z.float() - z.float().mean(dim=0)
    s = torch.linalg.svdvals(z)
    p = s / s.sum().clamp_min(1e-12)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
    return torch.exp(entropy)


def effective_rank(z: torch.Tensor) -> float:
    """exp(entropy) of the normalised singular values of centred (N, D) embeddings, in [1, D]."""
    return float(effective_rank_tensor(z))
