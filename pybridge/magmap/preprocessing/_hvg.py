"""Highly variable genes on counts (scanpy's seurat_v3), with fallbacks for small data where loess fails:
the gene choice of the robust UMAP's preprocessing and of the ``magmap demo`` networks."""
from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger("magmap")

__all__ = ["select_hvg"]


def select_hvg(X: np.ndarray | sp.csr_matrix, n_top_genes: int | None) -> tuple[np.ndarray, str]:
    """Indices of the top ``n_top_genes`` genes by scanpy's seurat_v3 HVG on counts.

    Returns the sorted indices and the flavor actually used: ``"all"`` when ``n_top_genes`` is None or
    not smaller than the number of genes, ``"seurat_v3"``, ``"seurat_v3 (span=1.0)"`` after a loess
    failure retried with a wider span, or ``"dispersion (log-normalised)"`` (variance/mean ranking on
    library-size-normalised log1p data) when loess fails twice. Callers record the flavor beside their
    results (RobustUMAP in its model manifest).
    """
    n_genes = X.shape[1]
    if n_top_genes is None or n_top_genes >= n_genes:
        return np.arange(n_genes), "all"
    import anndata as ad
    import scanpy as sc

    adata = ad.AnnData(sp.csr_matrix(X, dtype=np.float32))
    for span, flavor in ((0.3, "seurat_v3"), (1.0, "seurat_v3 (span=1.0)")):
        try:
            df = sc.pp.highly_variable_genes(adata, n_top_genes=n_top_genes, flavor="seurat_v3", span=span,
                                             inplace=False)
            return np.sort(np.flatnonzero(df["highly_variable"].to_numpy())), flavor
        except Exception as err:  # skmisc loess raises ValueError/RuntimeError on small data
            logger.warning("seurat_v3 HVG selection failed with span=%s (%s); retrying.", span, err)
    # last resort: dispersion of log-normalised data
    Xn = sp.csr_matrix(X, dtype=np.float64)
    lib = np.asarray(Xn.sum(axis=1)).ravel()
    lib[lib == 0] = 1.0
    Xn = sp.diags(1e4 / lib) @ Xn
    Xn.data = np.log1p(Xn.data)
    mean = np.asarray(Xn.mean(axis=0)).ravel()
    var = np.asarray(Xn.multiply(Xn).mean(axis=0)).ravel() - mean ** 2
    disp = var / np.maximum(mean, 1e-12)
    return np.sort(np.argsort(-disp, kind="stable")[:n_top_genes]), "dispersion (log-normalised)"
