"""The quotient map f of MED-MAGMA (the published map and its zero-aware variant).

f removes multiplicative row/column noise exactly: in log space it is the two-way ANOVA residual
(double centering) of ``log|D|``. Everything here works on log-magnitudes ``w`` so that data with a
huge dynamic range cannot overflow, and costs O(cells·genes) (O(nnz) for sparse input).
"""
from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from .._validation import check_choice

logger = logging.getLogger("magmap")

__all__ = ["log_quotient", "quotient", "ZERO_HANDLING"]

ZERO_HANDLING = ("one-pass", "iterated")


def _nz_means(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int]):
    """Row and column means of ``vals`` over the observed (nonzero) pattern; empty → 0."""
    n_r = np.bincount(rows, minlength=shape[0])
    n_c = np.bincount(cols, minlength=shape[1])
    s_r = np.bincount(rows, weights=vals, minlength=shape[0])
    s_c = np.bincount(cols, weights=vals, minlength=shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        m_r = np.where(n_r > 0, s_r / np.maximum(n_r, 1), 0.0)
        m_c = np.where(n_c > 0, s_c / np.maximum(n_c, 1), 0.0)
    return m_r, m_c


def log_quotient(
    D: np.ndarray | sp.spmatrix,
    *,
    zero_handling: str = "one-pass",
    max_iter: int = 1000,
    tol: float = 1e-12,
) -> tuple[np.ndarray, np.ndarray]:
    """Log-magnitude and sign of the quotient representative ``Y = f(D)``.

    Parameters
    ----------
    D
        Cells × genes matrix (dense or sparse). Zeros stay zeros; signs are kept.
    zero_handling
        ``"one-pass"`` — the published zero-aware formula (means over nonzeros; reference parity). Exact
        noise removal only when ``D`` has no zeros. ``"iterated"`` — alternate row/column centering
        over the nonzero pattern until convergence: the least-squares two-way ANOVA residual, which is
        exactly invariant to positive row/column scaling also with zeros (``docs/medmagma.md``).
    max_iter, tol
        Alternation limits for ``"iterated"`` (tolerance on the largest mean removed in a sweep).

    Returns
    -------
    w, sign
        Dense ``float64`` arrays of the shape of ``D``: ``Y = sign * exp(w)``; ``w = 0`` and
        ``sign = 0`` where ``D`` is zero.
    """
    check_choice(zero_handling, "zero_handling", ZERO_HANDLING)
    shape = D.shape
    if sp.issparse(D):
        coo = sp.coo_matrix(D)
        keep = coo.data != 0
        rows, cols, vals = coo.row[keep], coo.col[keep], coo.data[keep]
    else:
        D = np.asarray(D, dtype=np.float64)
        rows, cols = np.nonzero(D)
        vals = D[rows, cols]
    L = np.log(np.abs(vals))
    if zero_handling == "one-pass" or L.size == np.prod(shape):
        # Without zeros one pass of double centering is already the exact projection.
        m_r, m_c = _nz_means(rows, cols, L, shape)
        L = L - m_r[rows] - m_c[cols] + (L.mean() if L.size else 0.0)
    else:
        L = L - L.mean()
        for it in range(max_iter):
            m_r, _ = _nz_means(rows, cols, L, shape)
            L = L - m_r[rows]
            _, m_c = _nz_means(rows, cols, L, shape)
            L = L - m_c[cols]
            change = max(np.abs(m_r).max(initial=0.0), np.abs(m_c).max(initial=0.0))
            if change < tol:
                break
        else:
            logger.warning(
                "iterated quotient did not converge in %d sweeps (last change %.2e); the bipartite "
                "nonzero pattern may be disconnected", max_iter, change)
    w = np.zeros(shape)
    sign = np.zeros(shape)
    w[rows, cols] = L
    sign[rows, cols] = np.sign(vals)
    return w, sign


def quotient(D: np.ndarray | sp.spmatrix, *, zero_handling: str = "one-pass") -> np.ndarray:
    """The quotient representative ``f(D)`` (dense), ``sign(D) * exp(double-centred log|D|)``.

    See :func:`log_quotient` for the parameters. Rows and columns of the result have geometric mean
    1 over their nonzeros (exactly for ``"iterated"`` or without zeros).
    """
    w, sign = log_quotient(D, zero_handling=zero_handling)
    return sign * np.exp(w)
