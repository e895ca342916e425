"""Files and interchange: R ``.rds`` SingleCellExperiment files (through rpy2 + anndata2ri, implemented in
:mod:`magmap.rbridge.rds` with the rest of the R boundary)."""
from ..rbridge.rds import adata_to_sce, read_rds, sce_to_adata, write_rds

__all__ = ["adata_to_sce", "read_rds", "sce_to_adata", "write_rds"]
