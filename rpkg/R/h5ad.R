#' Read an h5ad file into a SingleCellExperiment (no zellkonverter needed)
#'
#' Reads an AnnData `.h5ad` file with the magmap Python core and builds a SingleCellExperiment:
#' `X` and every layer become assays (genes x cells; sparse stays sparse), `obs` becomes `colData`
#' (categorical columns as factors), `var` becomes `rowData`, `obsm` becomes `reducedDims`, and
#' `obsp`/`varp` become `colPairs`/`rowPairs`. Use it when zellkonverter is not installed; with
#' zellkonverter, `zellkonverter::readH5AD()` gives the same slots.
#'
#' @param path Path to an `.h5ad` file.
#' @param X.name Assay name for AnnData's `X` (zellkonverter's convention is `"X"`; raw counts
#'   are often better called `"counts"`).
#' @return A SingleCellExperiment; `metadata()$uns` holds the scalar entries of `uns`.
#' @examples
#' if (magmapAvailable()) {
#'     sce <- h5adToSCE(magmapExampleData(path = TRUE), X.name = "counts")
#'     sce
#' }
#' @export
h5adToSCE <- function(path, X.name = "X") {
    if (!is.character(path) || length(path) != 1L) stop("`path` must be a single file path.", call. = FALSE)
    if (!file.exists(path)) stop(sprintf("`path` '%s' does not exist.", path), call. = FALSE)
    parts <- .py_call("read_h5ad", path = normalizePath(path))
    genes <- unlist(parts$gene_names)
    cells <- unlist(parts$cell_names)
    assays <- lapply(parts$assays, function(a) {
        dimnames(a) <- list(genes, cells)
        a
    })
    names(assays)[names(assays) == "X"] <- X.name
    col_data <- S4Vectors::DataFrame(parts$col_data, check.names = FALSE, row.names = cells)
    row_data <- S4Vectors::DataFrame(parts$row_data, check.names = FALSE, row.names = genes)
    reduced <- lapply(parts$reduced_dims, function(m) {
        rownames(m) <- cells
        m
    })
    sce <- SingleCellExperiment::SingleCellExperiment(assays = assays, colData = col_data, rowData = row_data,
        reducedDims = reduced)
    for (nm in names(parts$col_pairs)) colPair(sce, nm) <- parts$col_pairs[[nm]]
    for (nm in names(parts$row_pairs)) rowPair(sce, nm) <- parts$row_pairs[[nm]]
    metadata(sce)$uns <- jsonlite::fromJSON(parts$metadata)
    sce
}

#' The small real dataset shipped with magmap
#'
#' Baron et al. (2016) pancreas, a balanced subset of 328 cells (human and mouse donors, inDrop,
#' GEO GSE84133) x 12,474 genes with raw UMI counts, built by the CIDER authors (MIT licence).
#' `colData` has `cell_type` (alpha, beta, delta, macrophage, activated_stellate), `species`,
#' `donor` and `initial_cluster`.
#'
#' @param path If `TRUE`, return the path of the `.h5ad` file instead of the object.
#' @return A SingleCellExperiment with a sparse `counts` assay, or a file path.
#' @examples
#' if (magmapAvailable()) {
#'     sce <- magmapExampleData()
#'     table(sce$cell_type)
#' }
#' @export
magmapExampleData <- function(path = FALSE) {
    file <- .py_call("bundled_dataset_path")
    if (isTRUE(path)) return(file)
    sce <- h5adToSCE(file, X.name = "counts")
    metadata(sce)$uns <- NULL
    sce
}
