"""Files and interchange: readers for single-cell files (:mod:`magmap.io.readers`: ``.h5ad``, 10x folder or
``.h5``, CSV/TSV, and :func:`read`, which picks one by the path), and R ``.rds`` SingleCellExperiment files
(through rpy2 + anndata2ri, implemented in :mod:`magmap.rbridge.rds` with the rest of the R boundary)."""
from ..rbridge.rds import adata_to_sce, read_rds, sce_to_adata, write_rds
from .readers import read, read_10x_h5, read_10x_mtx, read_csv, read_h5ad

__all__ = ["read", "read_h5ad", "read_10x_mtx", "read_10x_h5", "read_csv",
           "adata_to_sce", "read_rds", "sce_to_adata", "write_rds"]
