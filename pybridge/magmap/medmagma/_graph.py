"""Graphs from precision matrices: the top-k entries of |Ψ| per vertex, symmetrised.

One implementation serves the fitted estimators (``cell_graph``/``gene_graph``, scanpy neighbours
graphs) and the paper's evaluation protocol (:func:`magmap.metrics.topk_graph`). Rows are scored in
blocks, so a dense n × n array is never copied whole and a factored precision
(:class:`LowRankPrecision`) is never formed at all.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

from .._utils import check_memory
from .._validation import check_choice, check_positive_int

__all__ = ["GraphMixin", "LowRankPrecision", "precision_graph"]

#: Bytes of one block of scored rows (the only n-wide temporary of the top-k search).
BLOCK_BYTES = 1 << 25


@dataclass
class LowRankPrecision:
    """A precision matrix ``Ψ = identity·I + basis · Diag(weights) · basisᵀ`` kept in factored form.

    This is the exact form of the cell precision when the cell statistic has rank at most the number
    of genes (see ``docs/medmagma.md``): memory O(n·r) instead of O(n²). ``np.asarray(psi)`` and
    :meth:`toarray` build the dense matrix (after a memory check); :meth:`rows` gives a block of rows.

    Attributes
    ----------
    identity
        The eigenvalue shared by every direction orthogonal to ``basis``.
    basis
        n × r matrix with orthonormal columns.
    weights
        The other eigenvalues minus ``identity`` (length r).
    """

    identity: float
    basis: np.ndarray
    weights: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        n = self.basis.shape[0]
        return n, n

    @property
    def ndim(self) -> int:
        return 2

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Dense rows ``start:stop`` of Ψ (a BLAS-3 product over the factors)."""
        block = (self.basis[start:stop] * self.weights) @ self.basis.T
        idx = np.arange(stop - start)
        block[idx, start + idx] += self.identity
        return block

    def diagonal(self) -> np.ndarray:
        """The diagonal of Ψ, in O(n·r)."""
        return self.identity + (self.basis**2) @ self.weights

    def eigenvalues(self) -> np.ndarray:
        """All n eigenvalues (the shared one repeated), ascending."""
        n, r = self.basis.shape
        return np.sort(np.r_[self.identity + self.weights, np.full(n - r, self.identity)])

    def matvec(self, x: np.ndarray) -> np.ndarray:
        """Ψ x in O(n·r)."""
        return self.identity * x + self.basis @ (self.weights * (self.basis.T @ x))

    def toarray(self) -> np.ndarray:
        """The dense n × n matrix (refused when it does not fit in memory)."""
        n = self.shape[0]
        check_memory(8.0 * n * n, f"a dense {n} × {n} precision matrix",
                     fix="Use the graph methods (cell_graph(k)) or the factors (rows(), matvec()) instead.")
        return self.rows(0, n)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.toarray()
        return out if dtype is None else out.astype(dtype)


def _row_source(precision: Any) -> tuple[int, Any]:
    """Number of vertices and a ``rows(start, stop)`` function for a dense, sparse or factored matrix."""
    if isinstance(precision, LowRankPrecision):
        return precision.shape[0], precision.rows
    if sp.issparse(precision):
        m = sp.csr_matrix(precision)
        getter = lambda a, b: m[a:b].toarray()  # noqa: E731 - tiny adapter
    else:
        m = np.asarray(precision)
        getter = lambda a, b: np.asarray(m[a:b], dtype=np.float64)  # noqa: E731
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"`precision` must be a square matrix, got shape {m.shape}.")
    return m.shape[0], getter


def precision_graph(
    precision: Any,
    k: int,
    *,
    weighted: bool = True,
    symmetrize: str = "sum",
    diagonal: str = "exclude",
    zeros: str = "keep",
) -> sp.csr_matrix:
    """Symmetric sparse adjacency keeping the ``k`` largest ``|Ψ_ij|`` of every row.

    Parameters
    ----------
    precision
        Square matrix: dense array, scipy sparse, or :class:`LowRankPrecision`.
    k
        Entries kept per row (1 ≤ k < n; k ≤ n when the diagonal competes).
    weighted
        Edge weights |Ψ_ij| (else 1).
    symmetrize
        ``"sum"``: M + Mᵀ (the paper's convention: an edge chosen by both endpoints gets twice the
        weight, a vertex can end with more than k neighbours); ``"max"``: union, weight once;
        ``"min"``: only edges chosen by both endpoints (mutual kNN).
    diagonal
        ``"exclude"``: the diagonal is never chosen (graphs, the paper's real-data protocol);
        ``"compete"``: it is ranked with the rest and becomes a self-loop when chosen (the paper's
        synthetic protocol).
    zeros
        What a chosen entry that is exactly 0 becomes (a row with fewer than k nonzeros): ``"keep"``
        an edge of weight ``tiny`` (every vertex keeps k neighbours, as a scanpy neighbours graph
        expects), ``"drop"`` no edge (the paper's protocol, where the rest of the row is zeroed).

    Returns
    -------
    scipy.sparse.csr_matrix
        n × n, symmetric.
    """
    check_choice(symmetrize, "symmetrize", ("sum", "max", "min"))
    check_choice(diagonal, "diagonal", ("exclude", "compete"))
    check_choice(zeros, "zeros", ("keep", "drop"))
    n, rows_of = _row_source(precision)
    k = check_positive_int(k, "k")
    limit = n if diagonal == "compete" else n - 1
    if k > limit:
        raise ValueError(f"`k` must be at most {limit} here (the number of vertices is {n}), got {k}.")
    block = max(1, min(n, BLOCK_BYTES // (8 * max(n, 1))))
    all_rows, all_cols, all_vals = [], [], []
    for start in range(0, n, block):
        stop = min(n, start + block)
        a = np.abs(rows_of(start, stop))
        local = np.arange(stop - start)
        if diagonal == "exclude":
            a[local, start + local] = -np.inf
        idx = np.argpartition(-a, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(a, idx, axis=1).ravel()
        rows = np.repeat(start + local, k)
        cols = idx.ravel()
        if zeros == "drop":
            keep = vals != 0
            rows, cols, vals = rows[keep], cols[keep], vals[keep]
        if not weighted:
            vals = np.ones(vals.size)
        elif zeros == "keep":
            vals = np.where(vals == 0, np.finfo(float).tiny, vals)
        all_rows.append(rows)
        all_cols.append(cols)
        all_vals.append(vals)
    m = sp.csr_matrix((np.concatenate(all_vals), (np.concatenate(all_rows), np.concatenate(all_cols))),
                      shape=(n, n))
    if symmetrize == "sum":
        out = m + m.T
    elif symmetrize == "max":
        out = m.maximum(m.T)
    else:
        out = m.minimum(m.T)
    out = out.tocsr()
    out.eliminate_zeros()
    return out


class GraphMixin:
    """``cell_graph(k)`` / ``gene_graph(k)`` from the learned ``cell_precision_`` / ``gene_precision_``."""

    def cell_graph(self, k: int = 10, *, weighted: bool = True, symmetrize: str = "sum") -> sp.csr_matrix:
        """Cell graph: top-``k`` off-diagonal |Ψ_cells| entries per cell, symmetrised (see
        :func:`precision_graph`). Returns a symmetric ``scipy.sparse.csr_matrix`` (cells × cells)."""
        check_is_fitted(self, "cell_precision_")
        return precision_graph(self.cell_precision_, k, weighted=weighted, symmetrize=symmetrize)

    def gene_graph(self, k: int = 10, *, weighted: bool = True, symmetrize: str = "sum") -> sp.csr_matrix:
        """Gene graph: top-``k`` off-diagonal |Ψ_genes| entries per gene, symmetrised (see
        :func:`precision_graph`). Returns a symmetric ``scipy.sparse.csr_matrix`` (genes × genes)."""
        check_is_fitted(self, "gene_precision_")
        return precision_graph(self.gene_precision_, k, weighted=weighted, symmetrize=symmetrize)
