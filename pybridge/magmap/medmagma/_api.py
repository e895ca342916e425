"""The array-level entry of the graph methods: :func:`learn_graphs` (NumPy/SciPy in, a
:class:`GraphResult` out). ``magmap.tl.med_magma``/``tl.gmgm`` select data from an AnnData and write
keys around it; ``magmap.rbridge.api.med_magma`` decodes R's matrix and encodes the result."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._utils import versions
from .._validation import check_choice, check_positive_int
from .baselines import GmGM
from .estimators import MedMagma

__all__ = ["GraphResult", "learn_graphs", "gene_mask", "METHODS", "MIN_GENES"]

METHODS = {"medmagma": MedMagma, "gmgm": GmGM}
#: Fewest genes (and cells) a fit accepts.
MIN_GENES = 3


@dataclass
class GraphResult:
    """Cell and gene graphs of one fit.

    Attributes
    ----------
    cells
        cells × cells symmetric ``csr_matrix``: top-``n_neighbors`` |Ψ_cells| per cell, M + Mᵀ.
    genes
        genes × genes over *all* genes of the input (genes outside the subset have no edges).
    genes_used
        Boolean mask of the genes the model was fitted on.
    params
        Every hyper-parameter, ``n_neighbors``, ``n_gene_neighbors``, ``n_genes_used``, the method, what
        the fit did (``n_iter``, ``converged``, …) and library ``versions``.
    model
        The fitted estimator (:class:`~magmap.MedMagma` or :class:`~magmap.GmGM`).
    data
        The validated cells × used-genes matrix the model was fitted on.
    """

    cells: sp.csr_matrix
    genes: sp.csr_matrix
    genes_used: np.ndarray
    params: dict[str, Any]
    model: Any
    data: Any


def gene_mask(genes: Any, n_genes: int) -> np.ndarray:
    """Boolean mask over ``n_genes`` from ``None`` (all), a boolean mask, or integer positions (0-based).

    Raises
    ------
    ValueError
        Wrong mask length, positions out of range, or fewer than 3 genes selected.
    """
    if genes is None:
        mask = np.ones(n_genes, dtype=bool)
    else:
        g = np.asarray(genes)
        if g.dtype == bool:
            if g.shape != (n_genes,):
                raise ValueError(f"`genes` as a boolean mask must have one value per gene ({n_genes}), got "
                                 f"shape {g.shape}.")
            mask = g.copy()
        elif g.dtype.kind in "iu" or (g.dtype.kind == "f" and np.all(g == np.round(g))):
            idx = g.astype(np.int64).ravel()
            if idx.size and (idx.min() < 0 or idx.max() >= n_genes):
                raise ValueError(f"`genes` positions must be between 0 and {n_genes - 1}, got "
                                 f"{int(idx.min())}..{int(idx.max())}.")
            mask = np.zeros(n_genes, dtype=bool)
            mask[idx] = True
        else:
            raise TypeError(f"`genes` must be None, a boolean mask or integer positions, got dtype {g.dtype}; "
                            "gene names are resolved by magmap.tl (AnnData var_names).")
    if mask.sum() < MIN_GENES:
        raise ValueError(f"Only {int(mask.sum())} gene(s) selected; at least {MIN_GENES} are needed.")
    return mask


def _scatter_genes(graph: sp.spmatrix, mask: np.ndarray) -> sp.csr_matrix:
    """Place a graph on the selected genes into an all-genes × all-genes matrix (zeros elsewhere)."""
    if mask.all():
        return sp.csr_matrix(graph)
    idx = np.flatnonzero(mask)
    coo = sp.coo_matrix(graph)
    n = mask.size
    return sp.csr_matrix((coo.data, (idx[coo.row], idx[coo.col])), shape=(n, n))


def _check_k(k: Any, name: str, n: int, what: str) -> int:
    k = check_positive_int(k, name)
    if n >= MIN_GENES and k >= n:
        raise ValueError(f"`{name}` ({k}) must be smaller than the number of {what} ({n}).")
    return k


def learn_graphs(
    X: Any,
    *,
    method: str = "medmagma",
    genes: Any = None,
    n_neighbors: int = 10,
    n_gene_neighbors: int = 10,
    allow_negative: bool = False,
    name: str = "X",
    copy: bool = True,
    **params: Any,
) -> GraphResult:
    """Fit MED-MAGMA (or the GmGM baseline) on a cells × genes matrix and draw both graphs.

    Parameters
    ----------
    X
        Cells × genes, dense array-like or scipy sparse. MED-MAGMA expects counts (raw or normalised,
        not log); GmGM was run on log1p values in the published comparison.
    method
        ``"medmagma"`` (:class:`~magmap.MedMagma`) or ``"gmgm"`` (:class:`~magmap.GmGM`).
    genes
        Genes to fit on: ``None`` (all), a boolean mask, or integer positions (0-based).
    n_neighbors, n_gene_neighbors
        k of the top-k-per-vertex cell and gene graphs.
    allow_negative
        MED-MAGMA only: accept negative values (signed data; by default they are refused because they
        usually mean scaled data was passed instead of counts).
    name
        What error messages call ``X`` (e.g. ``"adata.X"``).
    copy
        ``False`` when ``X`` is a fresh array that the caller does not use again (the R entry's decoded
        matrix): a float64 ``X`` is then fitted on as it is, not copied.
    **params
        Hyper-parameters of the estimator (see :class:`~magmap.MedMagma`, :class:`~magmap.GmGM`).

    Returns
    -------
    GraphResult

    Notes
    -----
    ``X`` is validated and copied at most once (a gene subset is the copy); the estimator fits on that
    matrix without checking it again.
    """
    check_choice(method, "method", tuple(METHODS))
    model = METHODS[method](**params)
    shape = getattr(X, "shape", None) or np.shape(X)
    if len(shape) != 2:
        raise ValueError(f"`{name}` must be 2-D (cells × genes), got shape {tuple(shape)}.")
    mask = gene_mask(genes, int(shape[1]))
    n_neighbors = _check_k(n_neighbors, "n_neighbors", int(shape[0]), "cells")
    n_gene_neighbors = _check_k(n_gene_neighbors, "n_gene_neighbors", int(mask.sum()), "genes used")
    model._guard((int(shape[0]), int(mask.sum())))  # before the subset copies anything
    if not mask.all():
        X = X[:, mask] if sp.issparse(X) or isinstance(X, np.ndarray) else np.asarray(X)[:, mask]
    data = model._check_input(X, name=name, nonnegative=method == "medmagma" and not allow_negative,
                              copy=copy and mask.all())
    model._fit_checked(data)
    info = model._fit_info() if hasattr(model, "_fit_info") else {}
    out_params = {**model.get_params(), **info, "method": method, "n_neighbors": n_neighbors,
                  "n_gene_neighbors": n_gene_neighbors, "n_genes_used": int(mask.sum()),
                  "n_iter": int(model.n_iter_), "converged": bool(model.converged_), "versions": versions()}
    return GraphResult(cells=model.cell_graph(n_neighbors), genes=_scatter_genes(model.gene_graph(n_gene_neighbors), mask),
                       genes_used=mask, params=out_params, model=model, data=data)
