#' magmap: noise-robust cell and gene networks and robust parametric UMAP
#'
#' magmap learns a cell network and a gene network at once with MED-MAGMA (robust to per-cell and
#' per-gene multiplicative noise), embeds cells with a CROWN-regularised parametric UMAP, and
#' measures network robustness as the robin package does. The numerical core is the Python package
#' `magmap`; this R package converts SingleCellExperiment and Seurat objects, calls the core through
#' reticulate, and stores results in `colPair`, `rowPair`, `reducedDim` and `metadata`.
#'
#' Which Python is used is described in [magmapPython()]; [installMagmapPython()] creates it.
#'
#' @section Why numbers cross as bytes:
#' Debian's reticulate 1.28 cannot use numpy 2's C API, so automatic matrix conversion fails or
#' silently returns Python objects. magmap therefore sends numeric data as raw vectors (a
#' `dgCMatrix` as its `x`, `i` and `p` slots) and rebuilds them in Python with `numpy.frombuffer`.
#' A genes x cells `dgCMatrix` is, byte for byte, a cells x genes CSR matrix, so nothing is
#' densified or transposed on the way.
#'
#' @keywords internal
#' @importFrom methods as is new setGeneric setMethod
#' @importClassesFrom Matrix dgCMatrix
#' @importFrom S4Vectors metadata metadata<-
#' @importFrom SummarizedExperiment assay assayNames rowData rowData<- colData colData<-
#' @importFrom SingleCellExperiment reducedDim reducedDim<- reducedDimNames colPair colPair<- rowPair rowPair<-
"_PACKAGE"
