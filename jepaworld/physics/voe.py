"""Violation-of-expectation metrics over matched possible/impossible pairs.

- `relative_accuracy`: the fraction of pairs whose impossible video is the more surprising
  (Garrido et al. 2025's pairwise relative accuracy; ties count half). Chance is 0.5.
- `auroc`: the area under the ROC curve for telling impossible from possible videos by their
  scores alone, pairs ignored (Mann-Whitney U / (n_pos * n_neg), ties half).
- `bootstrap_ci`: a percentile bootstrap interval of any of these, resampling pairs.
A video's score is its surprise reduced over frames (`video_score`: max by default, since a
violation is a brief spike).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def video_score(surprise: np.ndarray, reduce: str = "max") -> float:
    """One number per video from its per-frame surprise (T,). Both reductions are exact whatever
    the order of the frames (the mean sums with `math.fsum`), so equal multisets tie."""
    if reduce == "max":
        return float(np.max(surprise))
    if reduce == "mean":
        values = np.asarray(surprise, np.float64).ravel()
        return math.fsum(values) / len(values)
    raise ValueError(f"reduce must be 'max' or 'mean', got {reduce!r}")


def relative_accuracy(possible: np.ndarray, impossible: np.ndarray) -> float:
    """Fraction of pairs i with possible[i] < impossible[i]; ties count 0.5."""
    possible, impossible = np.asarray(possible, float), np.asarray(impossible, float)
    if possible.shape != impossible.shape or possible.ndim != 1 or len(possible) == 0:
        raise ValueError(
            f"need two equal, non-empty 1-D score arrays, got {possible.shape}, {impossible.shape}"
        )
    return float(np.mean((possible < impossible) + 0.5 * (possible == impossible)))


def auroc(possible: np.ndarray, impossible: np.ndarray) -> float:
    """P(score of a random impossible video > that of a random possible one); ties count 0.5."""
    neg, pos = np.asarray(possible, float), np.asarray(impossible, float)
    if len(neg) == 0 or len(pos) == 0:
        raise ValueError("auroc needs at least one possible and one impossible score")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def bootstrap_ci(
    possible: np.ndarray,
    impossible: np.ndarray,
    metric: Callable[[np.ndarray, np.ndarray], float],
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `metric`, resampling pairs with replacement."""
    possible, impossible = np.asarray(possible, float), np.asarray(impossible, float)
    rng = np.random.default_rng(seed)
    n = len(possible)
    idx = rng.integers(0, n, size=(resamples, n))  # (R, n)
    stats = np.array([metric(possible[i], impossible[i]) for i in idx])
    alpha = (1 - level) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))
