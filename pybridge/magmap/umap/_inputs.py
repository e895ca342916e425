"""Query handling shared by transform, certification and gene impact: unpacking AnnData, aligning genes
by name, streaming row blocks (scipy, dask), cheap value checks and the z-scored model inputs."""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from .._validation import check_choice, check_matrix, matrix_from_adata
from .preprocess import MISSING_GENES

__all__ = ["is_anndata", "is_dask", "unpack", "row_blocks", "query_columns", "check_values", "aligned_chunks",
           "model_inputs"]


def is_anndata(X: Any) -> bool:
    return hasattr(X, "obs") and hasattr(X, "var_names") and hasattr(X, "X")


def is_dask(X: Any) -> bool:
    return type(X).__module__.startswith("dask") and hasattr(X, "compute")


def unpack(X: Any, layer: str | None) -> tuple[Any, list[str] | None]:
    """The matrix and its gene names (``None`` for a bare matrix, whose genes are positional)."""
    if is_anndata(X):
        return matrix_from_adata(X, layer), [str(g) for g in X.var_names]
    if layer is not None:
        raise ValueError("`layer` applies only to AnnData input; pass the matrix itself instead.")
    return X, None


def row_blocks(M: Any, chunk_size: int):
    """Row blocks of ``M``: CSR views for scipy CSR input (no copy), computed blocks for dask arrays, CSR for
    other sparse formats, arrays otherwise."""
    n = M.shape[0]
    if sp.issparse(M) and M.format == "csr":
        indptr, indices, data = M.indptr, M.indices, M.data
        for s in range(0, n, chunk_size):
            e = min(s + chunk_size, n)
            p0, p1 = int(indptr[s]), int(indptr[e])
            yield sp.csr_matrix((data[p0:p1], indices[p0:p1], indptr[s:e + 1] - p0), shape=(e - s, M.shape[1]),
                                copy=False)
        return
    for s in range(0, n, chunk_size):
        block = M[s:s + chunk_size]
        if is_dask(block):
            block = block.compute()
        yield sp.csr_matrix(block) if sp.issparse(block) else np.asarray(block)


def query_columns(model: Any, X: Any, layer: str | None, missing_genes: str) -> tuple[Any, np.ndarray, np.ndarray, int]:
    """The query matrix, the query columns ``src`` holding model genes, their model positions ``dst``, and the
    number of model genes."""
    model._check_fitted()
    check_choice(missing_genes, "missing_genes", MISSING_GENES)
    M, names = unpack(X, layer)
    if not (sp.issparse(M) or is_dask(M) or isinstance(M, np.ndarray)):
        M = np.asarray(M)
    if M.ndim != 2:
        raise ValueError(f"`X` must be 2-D (cells × genes), got shape {M.shape}.")
    if model.features_positional_:
        names = None
    cols = model.preprocessor_.column_map(names, M.shape[1], model.n_features_in_, missing_genes)
    present = cols >= 0
    return M, cols[present], np.flatnonzero(present), cols.size


def check_values(vals: np.ndarray | torch.Tensor, sub: Any, *, counts: bool, finite: bool | None = None) -> None:
    """Cheap check of a chunk's values (NaN/Inf, negative counts); on failure ``check_matrix`` raises its
    standard message about ``sub`` (a matrix, or a callable returning it). ``finite``: finiteness already
    known (``None``: scan for it)."""
    tensor = isinstance(vals, torch.Tensor)
    if not (vals.numel() if tensor else vals.size):
        return
    if finite is None:
        finite = bool(torch.isfinite(vals).all()) if tensor else bool(np.isfinite(vals).all())
    if not finite or (counts and not bool(vals.min() >= 0)):  # NaN compares False too
        check_matrix(sub() if callable(sub) else sub, name="X", nonnegative=counts, min_cells=1,
                     min_genes=0, allow_empty_cells=True, allow_empty_genes=True)  # raises the standard message


def aligned_chunks(model: Any, X: Any, layer: str | None, missing_genes: str, chunk_size: int):
    """Yield count chunks with exactly the model genes as columns (missing genes as zero columns)."""
    M, src, dst, n_model = query_columns(model, X, layer, missing_genes)
    counts = model.preprocessor_.counts
    complete = dst.size == n_model
    identity = complete and n_model == M.shape[1] and np.array_equal(src, np.arange(n_model))
    for block in row_blocks(M, chunk_size):
        if sp.issparse(block):
            sub = block if identity else block[:, src]
            if not complete:
                sub = sp.csr_matrix((sub.data, dst[sub.indices], sub.indptr), shape=(sub.shape[0], n_model))
            check_values(sub.data, sub, counts=counts)
        else:
            sub = block if identity else block[:, src]
            if not complete:
                full = np.zeros((sub.shape[0], n_model), dtype=sub.dtype)
                full[:, dst] = sub
                sub = full
            check_values(sub, sub, counts=counts)
        yield sub


def model_inputs(model: Any, X: Any, layer: str | None, missing_genes: str, chunk_size: int):
    """Yield the z-scored float32 model inputs of ``X``, chunk by chunk."""
    ident = np.arange(len(model.preprocessor_.genes))
    for sub in aligned_chunks(model, X, layer, missing_genes, chunk_size):
        yield model.preprocessor_.transform_chunk(sub, ident)
