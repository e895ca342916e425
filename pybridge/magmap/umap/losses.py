"""UMAP losses (Zhang & Xu, Eq. 3 and 4), their gradient as umap-learn applies it, a/b curve fit.

``umap_loss`` is the cross-entropy written with autograd-friendly numerics: ``d^{2b}`` as
``(‖Δz‖² + δ)^b`` (finite gradient at coincident points), ``log q = −log1p(a·s^b)``,
``log(1−q) = log(a·s^b) − log1p(a·s^b)`` clamped at ``log(1e-4)``, terms averaged. ``umap_forces`` gives
the gradient of the same cross-entropy with respect to the embedding in closed form, as umap-learn's
SGD computes it (its 0.001 in the repulsion denominator, each coordinate clipped at ±4), accumulated per
cell; training back-propagates it through the encoder (``Z.backward(forces)``).
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["find_ab_params", "log_q_terms", "umap_loss", "umap_forces", "LOSSES"]

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


def umap_forces(
    z: torch.Tensor, heads: torch.Tensor, tails: torch.Tensor, negatives: torch.Tensor, *, a: float, b: float,
    repulsion_strength: float = 1.0, weights: torch.Tensor | None = None, other: torch.Tensor | None = None,
    clip: float = 4.0, reduction: str = "mean",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of the UMAP cross-entropy with respect to the embedding, and the loss value.

    Parameters
    ----------
    z
        Embedding ``(n, d)`` (no gradient is taken through it here).
    heads, tails
        Rows of the sampled positive edges: ``z[heads]`` and ``other[tails]``.
    negatives
        Rows of ``other`` used as negatives, ``negative_sample_rate`` per edge: the first ``len(heads)``
        belong to edges ``0..B−1``, the next ``len(heads)`` again to edges ``0..B−1``, and so on.
    weights
        Optional per-edge factors: attraction weighted by ``w`` and an extra repulsion on the edge itself
        weighted by ``1 − w`` (the paper's probability loss, Eq. 3); ``None``: umap-learn's targets 1/0.
    other
        Positions of tails and negatives (default ``z``: both endpoints move, as in umap-learn's ``fit``).
        When given (e.g. a frozen reference embedding), only the heads receive gradient, as in umap-learn's
        ``transform``.
    clip
        Per-coordinate clip of each pair's force (umap-learn: 4).
    reduction
        ``"mean"``: ``grad`` and the loss divided by the number of positive edges; ``"sum"``: not divided
        (each row's gradient then depends only on its own pairs, not on how many others are in the batch).

    Returns
    -------
    grad
        ``(n, d)``: the sum over pairs of each pair's force on its rows, **negated** (so ``z − lr·grad``
        moves as umap-learn's SGD would), divided by the number of positive edges (``reduction="mean"``).
    loss
        Mean over positive edges of ``−log q`` (attraction) plus ``−log(1 − q)`` of its negatives (and,
        with ``weights``, the paper's per-edge terms), a 0-d tensor.
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"`reduction` must be 'mean' or 'sum', got {reduction!r}.")
    anchored = other is not None
    other = z if other is None else other
    n_pos = max(1, heads.numel()) if reduction == "mean" else 1
    grad = torch.zeros_like(z)
    diff = z[heads] - other[tails]
    d2 = (diff * diff).sum(1, keepdim=True)
    d2b = d2.pow(b)
    attract = (-2.0 * a * b) * torch.where(d2 > 0, d2b / d2.clamp_min(1e-30), torch.zeros_like(d2)) / (a * d2b + 1.0)
    log1p_asb = torch.log1p(a * d2b)
    if weights is not None:
        w = weights.reshape(-1, 1)
        rep_edge = (2.0 * repulsion_strength * b) / ((0.001 + d2) * (a * d2b + 1.0))
        coeff = w * attract + (1.0 - w) * torch.where(d2 > 0, rep_edge, torch.zeros_like(d2))
        loss = (w * log1p_asb).sum() - ((1.0 - w) * _log_1mq(a * d2b, log1p_asb)).sum()
    else:
        coeff = attract
        loss = log1p_asb.sum()
    force = (coeff * diff).clamp_(-clip, clip)  # on the head, towards the tail when coeff < 0
    grad.index_add_(0, heads, force.neg_())
    if not anchored:
        grad.index_add_(0, tails, -force)  # force was negated in place: the tail moves the other way
    if negatives.numel():
        reps = negatives.numel() // max(1, heads.numel())
        nh = heads.repeat(reps)
        dn = z[nh] - other[negatives]
        d2n = (dn * dn).sum(1, keepdim=True)
        d2nb = d2n.pow(b)
        rep = (2.0 * repulsion_strength * b) / ((0.001 + d2n) * (a * d2nb + 1.0))
        fn = torch.where(d2n > 0, rep * dn, torch.zeros_like(dn)).clamp_(-clip, clip)
        grad.index_add_(0, nh, fn.neg_())
        loss = loss - repulsion_strength * _log_1mq(a * d2nb, torch.log1p(a * d2nb)).sum()
    if n_pos != 1:
        grad.div_(n_pos)
    return grad, loss / n_pos


def _log_1mq(asb: torch.Tensor, log1p_asb: torch.Tensor) -> torch.Tensor:
    """``log(1 − q)`` with ``q = 1/(1 + a·s^b)``, clamped at ``log(1e-4)``."""
    return torch.clamp(torch.log(asb.clamp_min(1e-30)) - log1p_asb, min=_LOG_EPS)
