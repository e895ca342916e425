"""Byte-level codec for the R ↔ Python boundary.

Why bytes: Debian's reticulate 1.28 cannot use numpy 2's C API (matrices fail to convert, ndarray and
pandas results come back as Python objects or corrupt data.frames). Plain Python values (int, float,
str, None, list, dict, bytearray) do convert reliably, so numeric data crosses as raw bytes and is
rebuilt with ``np.frombuffer`` (no copy on the Python side, about 0.01 s per million non-zeros).

R sends tagged lists (``{"__kind__": ..., ...}``) built by ``rpkg/R/convert.R``; Python answers with
the same tags, which ``convert.R`` turns back into ``dgCMatrix``, ``matrix``, ``data.frame`` or
vectors. Both ends are tested against each other (``rpkg/tests/testthat/test-boundary.R``).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["decode", "encode"]

KIND = "__kind__"


def _buf(raw: Any, dtype: type, n: int | None = None) -> np.ndarray:
    arr = np.frombuffer(bytes(raw) if not isinstance(raw, (bytes, bytearray, memoryview)) else raw, dtype=dtype)
    if n is not None and arr.size != n:
        raise ValueError(f"corrupt transfer from R: expected {n} values, got {arr.size}")
    return arr


def decode(obj: Any) -> Any:
    """Turn a tagged value from R into numpy / scipy / pandas objects (recursively for lists/dicts)."""
    if isinstance(obj, dict):
        kind = obj.get(KIND)
        if kind is None:
            return {k: decode(v) for k, v in obj.items()}
        if kind == "double":
            return _buf(obj["data"], "<f8", int(obj["n"])).copy()
        if kind == "integer":
            return _buf(obj["data"], "<i4", int(obj["n"])).copy()
        if kind == "logical":
            return _buf(obj["data"], "<i4", int(obj["n"])).astype(bool)
        if kind == "matrix":
            nrow, ncol = int(obj["nrow"]), int(obj["ncol"])
            # R stores column-major; reshape in Fortran order, then make it C-contiguous for BLAS-friendly use
            flat = _buf(obj["data"], "<f8", nrow * ncol)
            return np.ascontiguousarray(flat.reshape((nrow, ncol), order="F"))
        if kind == "dgCMatrix_t":
            # a genes × cells dgCMatrix (CSC) is exactly a cells × genes CSR matrix: no copy, no densifying
            n_genes, n_cells = int(obj["nrow"]), int(obj["ncol"])
            x = _buf(obj["x"], "<f8")
            i = _buf(obj["i"], "<i4", x.size)
            p = _buf(obj["p"], "<i4", n_cells + 1)
            return sp.csr_matrix((x, i, p), shape=(n_cells, n_genes))
        if kind == "dgCMatrix":
            nrow, ncol = int(obj["nrow"]), int(obj["ncol"])
            x = _buf(obj["x"], "<f8")
            return sp.csc_matrix((x, _buf(obj["i"], "<i4", x.size), _buf(obj["p"], "<i4", ncol + 1)), shape=(nrow, ncol))
        raise ValueError(f"unknown transfer kind {kind!r} from R")
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    return obj


def _bytes(arr: np.ndarray, dtype: str) -> bytearray:
    # bytearray, not bytes: reticulate turns bytearray into an R raw vector
    return bytearray(np.ascontiguousarray(arr, dtype=dtype).tobytes())


def encode(obj: Any) -> Any:
    """Turn Python results into values reticulate converts faithfully (tags for numeric data)."""
    if sp.issparse(obj):
        csc = sp.csc_matrix(obj)
        csc.sum_duplicates()
        return {KIND: "dgCMatrix", "x": _bytes(csc.data, "<f8"), "i": _bytes(csc.indices, "<i4"),
                "p": _bytes(csc.indptr, "<i4"), "nrow": int(csc.shape[0]), "ncol": int(csc.shape[1])}
    if isinstance(obj, pd.DataFrame):
        return {KIND: "data.frame", "columns": {str(c): encode(obj[c]) for c in obj.columns},
                "row_names": [str(i) for i in obj.index], "nrow": int(obj.shape[0])}
    if isinstance(obj, pd.Series):
        if isinstance(obj.dtype, pd.CategoricalDtype):
            # R factor: 1-based codes, NA for missing (pandas code -1)
            codes = obj.cat.codes.to_numpy().astype(np.int64) + 1
            return {KIND: "factor", "codes": _bytes(np.where(codes == 0, np.iinfo(np.int32).min, codes), "<i4"),
                    "n": int(codes.size), "levels": [str(v) for v in obj.cat.categories]}
        if obj.dtype == object or pd.api.types.is_string_dtype(obj):
            return [None if pd.isna(v) else str(v) for v in obj.tolist()]
        return encode(obj.to_numpy())
    if isinstance(obj, np.ndarray):
        if obj.dtype == bool:
            return {KIND: "logical", "data": _bytes(obj.ravel(), "<i4"), "n": int(obj.size)}
        if obj.dtype.kind in "US" or obj.dtype == object:
            return [str(v) for v in obj.ravel().tolist()]
        if obj.ndim == 2:
            return {KIND: "matrix", "data": _bytes(obj.ravel(order="F"), "<f8"), "nrow": int(obj.shape[0]),
                    "ncol": int(obj.shape[1])}
        if obj.dtype.kind in "iu":
            return {KIND: "integer", "data": _bytes(obj.ravel(), "<i4"), "n": int(obj.size)}
        return {KIND: "double", "data": _bytes(obj.ravel(), "<f8"), "n": int(obj.size)}
    if isinstance(obj, dict):
        return {str(k): encode(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [encode(v) for v in obj]
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, (bytes, memoryview)):
        return bytearray(obj)
    return obj
