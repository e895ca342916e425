"""MED-MAGMA's real-data gene selection: the top highly variable genes, then the expression cut that makes
the cells × genes matrix closest to square."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._validation import check_matrix

__all__ = ["square_gene_subset"]


def square_gene_subset(X: Any, *, n_top_genes: int = 2000, n_steps: int = 101) -> tuple[np.ndarray, dict[str, Any]]:
    """Genes chosen as MED-MAGMA's evaluation chose them for every real dataset.

    1. ``log1p`` of the counts, then scanpy's default highly-variable-gene selection
       (``flavor="seurat"``) of the top ``n_top_genes``;
    2. for each fraction ``p`` in ``linspace(0, 1, n_steps)``, keep the highly variable genes expressed
       (count > 0) in more than ``p × n_cells`` cells; the first ``p`` whose gene count is closest to
       the number of cells wins.

    Parameters
    ----------
    X
        Cells × genes counts (dense or sparse, non-negative).
    n_top_genes
        Highly variable genes considered (capped at the number of expressed genes).
    n_steps
        Number of expression fractions tried between 0 and 1 (101: steps of 1 %).

    Returns
    -------
    mask
        Boolean mask over the genes of ``X``.
    info
        ``n_hvg`` (highly variable genes found), ``expressed_fraction`` (the chosen ``p``), ``n_genes``
        (genes kept), ``n_cells``, ``n_top_genes``, ``n_steps``, ``hvg_flavor`` (``"seurat"``).
    """
    import anndata as ad
    import scanpy as sc

    M = check_matrix(X, name="X", nonnegative=True, allow_empty_genes=True, sparse="csr")
    n_cells, n_genes = M.shape
    expressed = np.asarray((M > 0).sum(axis=0)).ravel()
    candidates = np.flatnonzero(expressed > 0)
    logged = M[:, candidates].copy()
    logged.data = np.log1p(logged.data)
    a = ad.AnnData(sp.csr_matrix(logged, dtype=np.float32))
    with warnings.catch_warnings():
        # scanpy warns about non-log data heuristics and pandas categoricals; the input is log1p by construction
        warnings.simplefilter("ignore")
        hv = sc.pp.highly_variable_genes(a, n_top_genes=min(int(n_top_genes), len(candidates)), inplace=False)
    hvg = np.zeros(n_genes, dtype=bool)
    hvg[candidates[hv["highly_variable"].to_numpy(dtype=bool)]] = True
    best, best_p = None, 0.0
    for p in np.linspace(0.0, 1.0, int(n_steps)):
        genes = hvg & (expressed > p * n_cells)
        if best is None or abs(int(genes.sum()) - n_cells) < abs(int(best.sum()) - n_cells):
            best, best_p = genes, float(p)
    assert best is not None
    return best, {"n_hvg": int(hvg.sum()), "expressed_fraction": best_p, "n_genes": int(best.sum()),
                  "n_cells": int(n_cells), "n_top_genes": int(n_top_genes), "n_steps": int(n_steps),
                  "hvg_flavor": "seurat"}
