"""A validated summary of a count matrix: what a biologist checks before running anything."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._validation import check_matrix

__all__ = ["summarize_counts"]


def summarize_counts(X: Any, labels: Any = None, *, name: str = "X") -> tuple[dict[str, Any], pd.DataFrame]:
    """Validate a cells × genes count matrix and summarise it.

    Parameters
    ----------
    X
        Cells × genes counts (dense or sparse). Must be finite and non-negative.
    labels
        Optional per-cell labels (length = number of cells).
    name
        Argument name used in error messages.

    Returns
    -------
    summary
        ``n_cells``, ``n_genes``, ``n_nonzero``, ``sparsity`` (fraction of zeros), ``is_integer``,
        ``library_size`` (min/median/max), ``genes_per_cell`` (min/median/max), ``empty_genes``
        (genes never detected) and ``label_counts`` (when ``labels`` is given).
    per_cell
        Data frame with ``library_size`` and ``n_genes_detected`` per cell.
    """
    M = check_matrix(X, name=name, nonnegative=True, allow_empty_genes=True, sparse="csr")
    n_cells, n_genes = M.shape
    lib = np.asarray(M.sum(axis=1)).ravel()
    detected = np.diff(M.indptr) if sp.isspmatrix_csr(M) else np.asarray((M != 0).sum(axis=1)).ravel()
    gene_nnz = np.bincount(M.indices, minlength=n_genes)
    summary: dict[str, Any] = {
        "n_cells": int(n_cells),
        "n_genes": int(n_genes),
        "n_nonzero": int(M.nnz),
        "sparsity": float(1.0 - M.nnz / (n_cells * n_genes)),
        "is_integer": bool(np.all(np.mod(M.data, 1) == 0)),
        "library_size": {"min": float(lib.min()), "median": float(np.median(lib)), "max": float(lib.max())},
        "genes_per_cell": {"min": int(detected.min()), "median": float(np.median(detected)), "max": int(detected.max())},
        "empty_genes": int(np.sum(gene_nnz == 0)),
    }
    if labels is not None:
        lab = pd.Series(np.asarray(labels, dtype=object)).astype(str)
        if len(lab) != n_cells:
            raise ValueError(f"`labels` has {len(lab)} entries but `{name}` has {n_cells} cells; pass one label per cell.")
        summary["label_counts"] = {str(k): int(v) for k, v in lab.value_counts().sort_index().items()}
    per_cell = pd.DataFrame({"library_size": lib, "n_genes_detected": detected.astype(np.int64)})
    return summary, per_cell
