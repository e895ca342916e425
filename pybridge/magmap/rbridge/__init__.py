"""Everything that crosses between R and Python, in one place.

Two directions, two mechanisms:

- **R calls Python** (the R package ``magmap``, through reticulate): :mod:`magmap.rbridge.api` is the
  module R imports; its functions take keyword arguments, decode R's values with
  :mod:`magmap.rbridge.codec`, call the array-level core and encode the result for R.
  :mod:`magmap.rbridge.blocks` projects a DelayedArray block by block for ``projectRobustUMAP()``.
- **Python calls R** (through rpy2, optional): :mod:`magmap.rbridge.rds` converts SingleCellExperiment /
  Seurat ``.rds`` files ↔ AnnData (re-exported as :func:`magmap.io.read_rds` and friends), and
  :mod:`magmap.rbridge.robin` runs the CRAN package robin (``backend="robin"``) through
  ``robin_driver.R``, the driver the R package sources too.

Importing this package is cheap: nothing here imports rpy2, reticulate or torch at module level.
"""
