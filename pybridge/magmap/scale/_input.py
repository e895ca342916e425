"""Lazy query input for out-of-core projection: a dask array of cells × genes, row-chunked, with the
gene names, from an ``.h5ad``/``.zarr`` path (anndata's lazy reader), an AnnData, or an array."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["DEFAULT_CHUNK_ROWS", "LazyInput", "open_input"]

#: Cells per task: large enough that per-task overhead is small, small enough that one chunk of a
#: 30,000-gene CSR matrix and its model inputs stay in the tens of MB.
DEFAULT_CHUNK_ROWS = 16384


@dataclass
class LazyInput:
    """A row-chunked dask array ``X`` (cells × genes, one column chunk), its gene names (``None``:
    positional columns) and a short description of where it came from (recorded with the results)."""

    X: Any
    var_names: list[str] | None
    source: str

    @property
    def n_obs(self) -> int:
        return int(self.X.shape[0])

    @property
    def chunk_rows(self) -> int:
        return int(self.X.chunks[0][0])

    @property
    def n_chunks(self) -> int:
        return len(self.X.chunks[0])


def _is_dask(X: Any) -> bool:
    return type(X).__module__.startswith("dask") and hasattr(X, "compute")


def _read_path(path: Path, layer: str | None, chunk_rows: int) -> LazyInput:
    import anndata as ad

    if not path.exists():
        raise FileNotFoundError(f"input `{path}` does not exist; pass an .h5ad file or a .zarr folder written by "
                                "anndata (AnnData.write_h5ad / write_zarr).")
    if path.is_dir():
        import zarr

        store = zarr.open_group(str(path), mode="r")
    elif path.suffix == ".h5ad":
        import h5py

        store = h5py.File(path, "r")
    else:
        raise ValueError(f"input `{path}` is neither an .h5ad file nor a .zarr folder; convert it with "
                         "anndata (e.g. magmap.io.read(path).write_h5ad('cells.h5ad')).")
    try:
        key = "X" if layer is None else f"layers/{layer}"
        if key not in store:
            have = sorted(store["layers"].keys()) if "layers" in store else []
            raise KeyError(f"`layer={layer!r}` is not in {path} (layers: {have}); use layer=None for X.")
        var_names = [str(g) for g in ad.io.read_elem(store["var"]).index]
        X = ad.experimental.read_elem_lazy(store[key], chunks=(chunk_rows, len(var_names)))
    finally:
        if hasattr(store, "close"):
            store.close()  # the lazy array reopens the file in each task
    return LazyInput(X, var_names, str(path))


def open_input(data: Any, *, layer: str | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> LazyInput:
    """Row-chunked lazy view of ``data`` (nothing is read yet).

    Parameters
    ----------
    data
        Path of an ``.h5ad`` file or ``.zarr`` folder (read with ``anndata.experimental.read_elem_lazy``:
        each task reads only its rows), an AnnData (its ``X``/``layer`` may be a dask array, e.g. from
        ``anndata.experimental.read_lazy``, or in memory), a dask array, or a NumPy/SciPy matrix.
    layer
        Layer holding the counts (``None``: ``X``).
    chunk_rows
        Cells per chunk (the unit of work, of output writes and of resumption).
    """
    import dask.array as da

    from .._validation import check_positive_int, matrix_from_adata

    chunk_rows = check_positive_int(chunk_rows, "chunk_rows")
    if isinstance(data, (str, Path)):
        return _read_path(Path(data), layer, chunk_rows)
    if hasattr(data, "obs") and hasattr(data, "var_names"):
        M, names, source = matrix_from_adata(data, layer), [str(g) for g in data.var_names], "AnnData"
    else:
        if layer is not None:
            raise ValueError("`layer` applies only to AnnData or file input; pass the matrix itself instead.")
        M, names, source = data, None, type(data).__name__
    if not _is_dask(M):
        if sp.issparse(M):
            M = sp.csr_matrix(M)
        elif not isinstance(M, np.ndarray):
            M = np.asarray(M)
        M = da.from_array(M, chunks=(chunk_rows, M.shape[1]), asarray=False)
    if M.ndim != 2:
        raise ValueError(f"the input must be 2-D (cells × genes), got shape {M.shape}.")
    # one column chunk and equal row chunks: chunk i is always rows [i·chunk_rows, (i+1)·chunk_rows)
    if M.numblocks[1] != 1 or any(c != chunk_rows for c in M.chunks[0][:-1]) or M.chunks[0][0] != min(chunk_rows, M.shape[0]):
        M = M.rechunk((chunk_rows, M.shape[1]))
    return LazyInput(M, names, source)
