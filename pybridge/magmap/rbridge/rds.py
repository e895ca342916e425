"""SingleCellExperiment ↔ AnnData through rpy2 + anndata2ri, with the slots anndata2ri drops.

anndata2ri 2.0 converts ``X``/layers ↔ assays, ``obs``/``var`` ↔ colData/rowData and ``obsm`` ↔
reducedDims, but silently drops ``obsp``/``varp`` (Python → R) and ``colPairs``/``rowPairs``
(R → Python). magmap's graphs live exactly there, so this module carries them by hand as
``dgCMatrix`` ↔ CSR, value for value. rpy2 is optional: importing this module is cheap, and the first
call says how to install it when it is missing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._embedded_r import robjects

__all__ = ["adata_to_sce", "sce_to_adata", "read_rds", "write_rds"]

_R_PACKAGES = ("SingleCellExperiment",)


def _rpy2() -> tuple[Any, Any, Any]:
    """Import rpy2 and anndata2ri lazily; load SingleCellExperiment in the embedded R."""
    try:
        ro = robjects()
        import anndata2ri
        from rpy2.robjects.conversion import localconverter
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise ImportError(
            "reading and writing .rds files needs R plus the Python packages rpy2 and anndata2ri: "
            "`pip install 'magmap[r]'` (rpy2==3.5.17 for R 4.2) and, in R, the SingleCellExperiment package."
        ) from err
    for pkg in _R_PACKAGES:
        ok = ro.r(f'isTRUE(requireNamespace("{pkg}", quietly = TRUE))')[0]
        if not ok:
            raise ImportError(f"the R package {pkg} is not installed (Debian: r-bioc-singlecellexperiment).")
    ro.r('suppressPackageStartupMessages(library("SingleCellExperiment"))')
    return ro, anndata2ri, localconverter


def _to_dgc(ro: Any, M: Any) -> Any:
    from rpy2.robjects import FloatVector, IntVector

    csc = sp.csc_matrix(M, dtype=np.float64)
    csc.sum_duplicates()
    return ro.r["new"]("dgCMatrix", x=FloatVector(csc.data), i=IntVector(csc.indices.astype(np.int32)),
                       p=IntVector(csc.indptr.astype(np.int32)), Dim=IntVector(list(csc.shape)))


def _from_r_matrix(ro: Any, m: Any) -> sp.csr_matrix:
    m = ro.r("function(m) as(as(as(m, 'CsparseMatrix'), 'generalMatrix'), 'dMatrix')")(m)
    slot = ro.r["slot"]
    dims = [int(v) for v in slot(m, "Dim")]
    x, i, p = (np.asarray(slot(m, s)) for s in ("x", "i", "p"))
    return sp.csc_matrix((x.astype(np.float64), i.astype(np.int64), p.astype(np.int64)), shape=dims).tocsr()


def adata_to_sce(adata: Any, *, X_name: str = "X") -> Any:
    """Convert an AnnData to an R SingleCellExperiment (an rpy2 object).

    ``X`` → assay ``X_name``, layers → assays, ``obs``/``var`` → colData/rowData, ``obsm`` →
    reducedDims, ``obsp`` → colPairs and ``varp`` → rowPairs (both by hand; anndata2ri drops them).
    """
    ro, anndata2ri, localconverter = _rpy2()
    stripped = adata.copy()
    obsp, varp = dict(stripped.obsp), dict(stripped.varp)
    for key in list(stripped.obsp.keys()):
        del stripped.obsp[key]
    for key in list(stripped.varp.keys()):
        del stripped.varp[key]
    with localconverter(anndata2ri.converter):
        sce = ro.conversion.get_conversion().py2rpy(stripped)
    if X_name != "X":
        sce = ro.r("function(x, nm) { names(SummarizedExperiment::assays(x))[names(SummarizedExperiment::assays(x)) == 'X'] <- nm; x }")(sce, X_name)
    set_col = ro.r("function(x, nm, m) { SingleCellExperiment::colPair(x, nm) <- m; x }")
    set_row = ro.r("function(x, nm, m) { SingleCellExperiment::rowPair(x, nm) <- m; x }")
    for key, M in obsp.items():
        sce = set_col(sce, key, _to_dgc(ro, M))
    for key, M in varp.items():
        sce = set_row(sce, key, _to_dgc(ro, M))
    return sce


def sce_to_adata(sce: Any, *, X_name: str | None = None) -> Any:
    """Convert an R SingleCellExperiment (rpy2 object) to AnnData.

    Assays → ``X`` (``X_name``, default the first assay as anndata2ri does) and layers, colData/
    rowData → ``obs``/``var``, reducedDims → ``obsm``, colPairs → ``obsp``, rowPairs → ``varp``.
    """
    ro, anndata2ri, localconverter = _rpy2()
    pair_names = ro.r("function(x) list(col = SingleCellExperiment::colPairNames(x), row = SingleCellExperiment::rowPairNames(x))")(sce)
    col_names, row_names = list(pair_names[0]), list(pair_names[1])
    get_col = ro.r("function(x, nm) SingleCellExperiment::colPair(x, nm, asSparse = TRUE)")
    get_row = ro.r("function(x, nm) SingleCellExperiment::rowPair(x, nm, asSparse = TRUE)")
    col_pairs = {nm: _from_r_matrix(ro, get_col(sce, nm)) for nm in col_names}
    row_pairs = {nm: _from_r_matrix(ro, get_row(sce, nm)) for nm in row_names}
    if X_name is not None:
        # anndata2ri puts the first assay in X: move the requested one first
        sce = ro.r("""function(x, nm) {
            a <- SummarizedExperiment::assays(x)
            if (!nm %in% names(a)) stop(sprintf("no assay named '%s' (have: %s)", nm, paste(names(a), collapse = ", ")))
            SummarizedExperiment::assays(x) <- a[c(nm, setdiff(names(a), nm))]
            x }""")(sce, X_name)
    with localconverter(anndata2ri.converter):
        adata = ro.conversion.get_conversion().rpy2py(sce)
    for nm, M in col_pairs.items():
        adata.obsp[nm] = M
    for nm, M in row_pairs.items():
        adata.varp[nm] = M
    # anndata2ri hands back numpy string keys; plain str keeps h5ad writing and lookups simple
    adata.uns = {str(k): v for k, v in adata.uns.items()}
    # and pandas' nullable strings for names and text columns, which anndata refuses to write to .h5ad
    for frame in (adata.obs, adata.var):
        frame.index = pd.Index(frame.index.astype(str), dtype=object)
        for col in frame.columns:
            if isinstance(frame[col].dtype, pd.StringDtype):
                frame[col] = frame[col].astype(object)
    return adata


def read_rds(path: str | Path, *, X_name: str | None = None) -> Any:
    """Read an ``.rds`` file holding a SingleCellExperiment (or a Seurat object) as AnnData.

    Seurat objects are converted with ``Seurat::as.SingleCellExperiment`` first (its ``Graphs``
    become colPairs). See :func:`sce_to_adata` for the mapping.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"rds file {str(path)!r} does not exist.")
    ro, _, _ = _rpy2()
    obj = ro.r["readRDS"](str(path))
    cls = list(ro.r["class"](obj))
    if "Seurat" in cls:
        obj = ro.r("function(x) { sce <- Seurat::as.SingleCellExperiment(x); "
                   "for (g in names(x@graphs)) SingleCellExperiment::colPair(sce, g) <- as(x@graphs[[g]], 'dgCMatrix'); sce }")(obj)
    elif not ro.r["is"](obj, "SingleCellExperiment")[0]:
        if ro.r["is"](obj, "SummarizedExperiment")[0]:
            obj = ro.r("function(x) as(x, 'SingleCellExperiment')")(obj)
        else:
            raise TypeError(f"{str(path)!r} holds an R object of class {cls}, not a SingleCellExperiment or Seurat object.")
    return sce_to_adata(obj, X_name=X_name)


def write_rds(adata: Any, path: str | Path, *, X_name: str = "X") -> None:
    """Write an AnnData as a SingleCellExperiment ``.rds`` file (see :func:`adata_to_sce`)."""
    ro, _, _ = _rpy2()
    sce = adata_to_sce(adata, X_name=X_name)
    ro.r["saveRDS"](sce, str(Path(path).expanduser()))
