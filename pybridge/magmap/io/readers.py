"""Readers for single-cell files into AnnData: ``.h5ad``, 10x Genomics (matrix folder or ``.h5``), CSV/TSV
tables, and :func:`read`, which picks one by what the path is (``.rds`` through :func:`magmap.io.read_rds`)."""
from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["read", "read_h5ad", "read_10x_mtx", "read_10x_h5", "read_csv", "SUPPORTED"]

#: What :func:`read` accepts, as error messages name it.
SUPPORTED = ".h5ad, .rds (SingleCellExperiment or Seurat), a 10x folder or .h5 file, CSV/TSV (cells in rows)"

_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")


def _check_file(path: str | Path, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist; check the path (cwd is {Path.cwd()}).")
    return path


def read_h5ad(path: str | Path) -> ad.AnnData:
    """Read an ``.h5ad`` file, with an error naming the file when it is missing or not an AnnData file."""
    path = _check_file(path, "h5ad file")
    try:
        return ad.read_h5ad(path)
    except Exception as err:  # h5py/anndata raise many types for a broken file
        raise ValueError(f"could not read {str(path)!r} as an .h5ad (AnnData) file: {err}") from err


def read_10x_h5(path: str | Path) -> ad.AnnData:
    """Read a 10x Genomics ``.h5`` matrix (Cell Ranger's ``filtered_feature_bc_matrix.h5``) with scanpy;
    gene names are made unique."""
    import scanpy as sc

    path = _check_file(path, "10x .h5 file")
    try:
        adata = sc.read_10x_h5(str(path))
    except Exception as err:  # h5py/scanpy raise many types for a broken file
        raise ValueError(f"could not read {str(path)!r} as a 10x Genomics .h5 matrix: {err}") from err
    adata.var_names_make_unique()
    return adata


def read_10x_mtx(path: str | Path) -> ad.AnnData:
    """Read a 10x Genomics matrix folder (``matrix.mtx[.gz]``, ``features.tsv[.gz]``/``genes.tsv``,
    ``barcodes.tsv[.gz]``) into a cells × genes AnnData with CSR counts."""
    import scipy.io

    folder = _check_file(path, "10x matrix folder")
    if not folder.is_dir():
        raise ValueError(f"{str(folder)!r} is not a folder; read_10x_mtx expects the folder holding matrix.mtx.")

    def find(*names: str) -> Path:
        for n in names:
            for cand in (folder / n, folder / (n + ".gz")):
                if cand.exists():
                    return cand
        raise FileNotFoundError(f"{str(folder)!r} has none of {list(names)} (optionally .gz); is it a 10x folder?")

    mtx, feats, barcodes = find("matrix.mtx"), find("features.tsv", "genes.tsv"), find("barcodes.tsv")
    try:
        counts = sp.csr_matrix(scipy.io.mmread(str(mtx)).T)
        var = pd.read_csv(feats, sep="\t", header=None)
        obs = pd.read_csv(barcodes, sep="\t", header=None)
    except Exception as err:
        raise ValueError(f"could not parse the 10x folder {str(folder)!r}: {err}") from err
    if counts.shape != (len(obs), len(var)):
        raise ValueError(
            f"10x folder {str(folder)!r} is inconsistent: matrix is {counts.shape[1]} × {counts.shape[0]} "
            f"(genes × cells) but there are {len(var)} features and {len(obs)} barcodes."
        )
    gene_names = var[1] if var.shape[1] > 1 else var[0]
    adata = ad.AnnData(
        X=counts.astype(np.float32),
        obs=pd.DataFrame(index=obs[0].astype(str).to_numpy()),
        var=pd.DataFrame({"gene_ids": var[0].astype(str).to_numpy()}, index=gene_names.astype(str).to_numpy()),
    )
    adata.var_names_make_unique()
    return adata


def read_csv(path: str | Path, *, genes_in_rows: bool = False, sep: str | None = None) -> ad.AnnData:
    """Read a delimited text matrix with names in the first row and column.

    By default rows are cells and columns genes; ``genes_in_rows=True`` reads a genes × cells table
    (the usual orientation of R exports). ``sep=None`` picks a tab for ``.tsv``/``.txt`` names, else a comma.
    """
    path = _check_file(path, "CSV file")
    if sep is None:
        sep = "\t" if path.suffix.lower() in (".tsv", ".txt") or path.name.endswith((".tsv.gz", ".txt.gz")) else ","
    try:
        frame = pd.read_csv(path, sep=sep, index_col=0)
    except Exception as err:
        raise ValueError(f"could not read {str(path)!r} as a delimited table: {err}") from err
    if genes_in_rows:
        frame = frame.T
    non_numeric = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise ValueError(
            f"{str(path)!r} has non-numeric column(s) {non_numeric[:5]}; the table must hold only numbers "
            f"besides the first column of names (use genes_in_rows=True if genes are rows)."
        )
    return ad.AnnData(X=frame.to_numpy(dtype=np.float32), obs=pd.DataFrame(index=frame.index.astype(str)),
                      var=pd.DataFrame(index=frame.columns.astype(str)))


def read(path: str | Path) -> ad.AnnData:
    """Read a single-cell file into an AnnData, the reader chosen by what ``path`` is.

    A folder: :func:`read_10x_mtx`; ``.h5``: :func:`read_10x_h5`; ``.h5ad``: :func:`read_h5ad`; ``.rds``:
    :func:`magmap.io.read_rds` (needs R with rpy2 and anndata2ri, and raises ImportError without them);
    ``.csv``/``.tsv``/``.txt`` (optionally ``.gz``): :func:`read_csv` with cells in rows.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        The file cannot be read, or its kind is not one of the above.
    """
    p = _check_file(path, "input")
    if p.is_dir():
        return read_10x_mtx(p)
    name = p.name.lower()
    if name.endswith(".h5ad"):
        return read_h5ad(p)
    if name.endswith(".h5"):
        return read_10x_h5(p)
    if name.endswith(".rds"):
        from ..rbridge.rds import read_rds

        return read_rds(p)
    if name.endswith(_TABLE_SUFFIXES):
        return read_csv(p)
    raise ValueError(f"do not know how to read {str(p)!r}: expected {SUPPORTED}.")
