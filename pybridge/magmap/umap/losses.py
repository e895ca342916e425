"""UMAP losses of the seed paper (Zhang & Xu, Eq. 3 and 4), negative sampling, a/b curve fit.

Numerics follow ``pumap_spec.md`` §1.11: ``d^{2b}`` is computed as ``(‖Δz‖² + δ)^b`` (finite gradient
at coincident points), ``log q = −log1p(a·s^b)``, ``log(1−q) = log(a·s^b) − log1p(a·s^b)`` clamped at
``log(1e-4)`` (the clip of the original parametric UMAP), and terms are averaged, not summed.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["find_ab_params", "log_q_terms", "umap_loss", "LOSSES"]

LOSSES = ("probability", "graph")
_LOG_EPS = float(np.log(1e-4))
_DELTA = 1e-12


def find_ab_params(spread: float = 1.0, min_dist: float = 0.1) -> tuple[float, float]:
    """Fit ``a, b`` of ``q = 1 / (1 + a d^{2b})`` to UMAP's target curve (as umap-learn does).

    (spread=1, min_dist=0.1) gives a ≈ 1.577, b ≈ 0.895.
    """
    from scipy.optimize import curve_fit

    if spread <= 0:
        raise ValueError(f"`spread` must be positive, got {spread}.")
    if min_dist < 0 or min_dist > spread:
        raise ValueError(f"`min_dist` must be in [0, spread={spread}], got {min_dist}.")

    def curve(x, a, b):
        return 1.0 / (1.0 + a * x ** (2 * b))

    xv = np.linspace(0, spread * 3, 300)
    yv = np.where(xv < min_dist, 1.0, np.exp(-(xv - min_dist) / spread))
    params, _ = curve_fit(curve, xv, yv)
    return float(params[0]), float(params[1])


def log_q_terms(z_i: torch.Tensor, z_j: torch.Tensor, a: float, b: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log q_ij, log(1 − q_ij))`` for paired rows, numerically safe at ``z_i == z_j``."""
    s = ((z_i - z_j) ** 2).sum(dim=1) + _DELTA
    asb = a * s ** b
    log1p = torch.log1p(asb)
    log_q = -log1p
    log_1mq = torch.clamp(torch.log(asb) - log1p, min=_LOG_EPS)
    return torch.clamp(log_q, min=_LOG_EPS), log_1mq


def umap_loss(
    z_head: torch.Tensor, z_tail: torch.Tensor, p: torch.Tensor, *, a: float, b: float,
    loss: str = "probability", negative_sample_rate: int = 5, repulsion_strength: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """UMAP cross-entropy on a batch of positive edges plus permutation negatives.

    Parameters
    ----------
    z_head, z_tail
        Embeddings of the two endpoints of each sampled edge, shape ``(B, d)``.
    p
        Edge memberships ``p_ij`` in (0, 1], shape ``(B,)``.
    loss
        ``"probability"`` (paper Eq. 3): positives contribute ``−[p log q + (1 − p) log(1 − q)]``;
        ``"graph"`` (Eq. 4): ``p`` set to 1, positives contribute ``−log q``.
    negative_sample_rate
        Negatives per edge: each head is paired with ``negative_sample_rate`` tails drawn by permuting
        the batch's tails (paper §2.1, umap-learn ParametricUMAP). Their term is ``−η log(1 − q)``.
    repulsion_strength
        η, the negative-sample strength.

    Returns
    -------
    Scalar loss: (sum of positive terms + η · sum of negative terms) / (number of positive edges).
    """
    n = z_head.shape[0]
    log_q, log_1mq = log_q_terms(z_head, z_tail, a, b)
    if loss == "graph":
        pos = -log_q
    else:
        pos = -(p * log_q + (1.0 - p) * log_1mq)
    total = pos.sum()
    if negative_sample_rate > 0:
        heads = z_head.repeat(negative_sample_rate, 1)
        perm = torch.randperm(n * negative_sample_rate, generator=generator, device=z_head.device)
        tails = z_tail.repeat(negative_sample_rate, 1)[perm]
        _, neg_log_1mq = log_q_terms(heads, tails, a, b)
        total = total + repulsion_strength * (-neg_log_1mq).sum()
    return total / n
