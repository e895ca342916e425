"""Input checks shared by every method: clear errors that name the argument and the fix.

Nothing here mutates its input; checks return a validated *view or copy* in a canonical form
(float64 dense array or CSR matrix, cells × genes).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["check_matrix", "matrix_from_adata", "check_positive_int", "check_number", "check_flag", "check_choice"]


def _values(X: np.ndarray | sp.spmatrix) -> np.ndarray:
    return X.data if sp.issparse(X) else np.asarray(X).ravel()


def check_matrix(
    X: Any,
    *,
    name: str = "X",
    nonnegative: bool = False,
    min_cells: int = 3,
    min_genes: int = 3,
    allow_empty_cells: bool = False,
    allow_empty_genes: bool = False,
    sparse: str = "keep",
    dtype: type = np.float64,
    copy: bool = True,
) -> np.ndarray | sp.csr_matrix:
    """Validate a cells × genes matrix and return it as float64 (dense array or CSR).

    Parameters
    ----------
    X
        Dense array-like or scipy sparse matrix, cells in rows and genes in columns.
    name
        Argument name used in error messages.
    nonnegative
        Reject negative values (count data).
    min_cells, min_genes
        Minimum number of rows and columns.
    allow_empty_cells, allow_empty_genes
        Whether all-zero rows (cells) / columns (genes) are allowed.
    sparse
        ``"keep"`` returns CSR for sparse input and ndarray otherwise; ``"dense"`` always densifies;
        ``"csr"`` always returns CSR.
    copy
        ``False`` skips the copy when ``X`` already has the right type (for callers that made their own
        copy, e.g. a gene subset, and never write to it).

    Raises
    ------
    TypeError
        For non-numeric data.
    ValueError
        For NaN/Inf, negative values (when ``nonnegative``), too few cells or genes, all-zero cells
        or genes, or non-2-D input. Every message names ``name`` and says how to fix it.
    """
    if hasattr(X, "compute") and not isinstance(X, np.ndarray) and not sp.issparse(X):
        X = X.compute()  # dask arrays: materialise here, callers chunk before when it matters
    if sp.issparse(X):
        if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
            raise TypeError(f"`{name}` must hold real numbers, got dtype {X.dtype}.")
        out = sp.csr_matrix(X, dtype=dtype, copy=copy)
        if not out.has_canonical_format:
            out = out.copy() if not copy else out  # never sort the caller's arrays in place
            out.sum_duplicates()
    else:
        arr = np.asarray(X)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.issubdtype(
            arr.dtype, np.complexfloating
        ):
            raise TypeError(
                f"`{name}` must be a numeric matrix, got dtype {arr.dtype}; convert it with "
                f"np.asarray({name}, dtype=float) after removing text columns."
            )
        if arr.ndim != 2:
            raise ValueError(f"`{name}` must be 2-D (cells × genes), got an array with shape {arr.shape}.")
        out = np.array(arr, dtype=dtype, copy=True) if copy else np.asarray(arr, dtype=dtype)
    n_cells, n_genes = out.shape
    vals = _values(out)
    if not np.all(np.isfinite(vals)):
        n_bad = int(np.size(vals) - np.isfinite(vals).sum())
        raise ValueError(
            f"`{name}` contains {n_bad} NaN or infinite value(s); remove or impute them before calling "
            f"(e.g. np.nan_to_num({name}) if missing means zero)."
        )
    if nonnegative and vals.size and vals.min() < 0:
        raise ValueError(
            f"`{name}` contains negative values (min {vals.min():g}); this method expects counts "
            f"(raw or normalised, not scaled/centred data). Pass the counts layer instead."
        )
    if n_cells < min_cells:
        raise ValueError(f"`{name}` has {n_cells} cell(s) (rows); at least {min_cells} are needed.")
    if n_genes < min_genes:
        raise ValueError(f"`{name}` has {n_genes} gene(s) (columns); at least {min_genes} are needed.")
    nz = out != 0 if sp.issparse(out) else (out != 0)
    for axis, allowed, what, fix in ((1, allow_empty_cells, "cell(s) (rows", "filter_cells(adata, min_genes=1)"),
                                     (0, allow_empty_genes, "gene(s) (columns", "filter_genes(adata, min_cells=1)")):
        if allowed:
            continue
        empty = np.flatnonzero(np.asarray(nz.sum(axis=axis)).ravel() == 0)
        if empty.size:
            raise ValueError(f"`{name}` has {empty.size} all-zero {what}, first at index {empty[0]}); filter "
                             f"them first, e.g. sc.pp.{fix}.")
    if sparse == "dense" and sp.issparse(out):
        out = out.toarray()
    elif sparse == "csr" and not sp.issparse(out):
        out = sp.csr_matrix(out)
    return out


def matrix_from_adata(adata: Any, layer: str | None = None) -> Any:
    """Return ``adata.layers[layer]`` (or ``adata.X``) with a clear error for an unknown layer."""
    if layer is None:
        if adata.X is None:
            raise ValueError("`adata.X` is empty; pass `layer=` naming the layer that holds the data.")
        return adata.X
    if layer not in adata.layers:
        raise KeyError(
            f"`layer={layer!r}` is not in adata.layers (available: {sorted(adata.layers.keys())}); "
            f"use layer=None for adata.X."
        )
    return adata.layers[layer]


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as int, or raise naming ``name`` when it is not an integer ≥ ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) and not (
        isinstance(value, float) and float(value).is_integer()
    ):
        raise TypeError(f"`{name}` must be an integer, got {value!r}.")
    value = int(value)
    if value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}, got {value}.")
    return value


def check_number(value: Any, name: str, *, minimum: float = 0.0) -> float:
    """Return ``value`` as float, or raise naming ``name`` when it is not one finite number ≥ ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"`{name}` must be a single number, got {value!r}.")
    if not (np.isfinite(value) and value >= minimum):
        raise ValueError(f"`{name}` must be a finite number ≥ {minimum:g}, got {value}.")
    return float(value)


def check_flag(value: Any, name: str) -> bool:
    """Return ``value`` if it is ``True`` or ``False``, else raise naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False, got {value!r}.")
    return bool(value)


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ValueError listing them."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}, got {value!r}.")
    return value


@contextmanager
def renamed_arguments(**names: str) -> Iterator[None]:
    """Rewrite the argument names in the messages of checks raised inside the block (``max_cells`` →
    ``--max-cells`` for the command line, ``max.cells`` for R), so that the message names what the user
    typed. Errors that name none of them pass unchanged."""
    try:
        yield
    except (TypeError, ValueError) as e:
        msg = str(e)
        for py_name, user_name in names.items():
            msg = msg.replace(f"`{py_name}`", f"`{user_name}`")
        if msg == str(e):
            raise
        raise type(e)(msg) from e
