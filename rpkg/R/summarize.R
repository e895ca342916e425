#' Validate and summarise a count matrix
#'
#' Checks the counts (finite, non-negative, no empty cells) in the magmap Python core and reports
#' the numbers a biologist looks at before running MED-MAGMA or a robust UMAP: cells, genes,
#' sparsity, library sizes, genes detected per cell and, optionally, how many cells carry each label.
#'
#' @param x A genes x cells matrix (dense or sparse) or a SingleCellExperiment.
#' @param assay.type For a SingleCellExperiment, the assay to summarise.
#' @param labels Optional cell labels: a vector with one entry per cell, or for a
#'   SingleCellExperiment the name of a `colData` column.
#' @return A list with `summary` (a list: `n_cells`, `n_genes`, `n_nonzero`, `sparsity`,
#'   `is_integer`, `library_size`, `genes_per_cell`, `empty_genes` and `label_counts`) and
#'   `per_cell`, a data.frame with `library_size` and `n_genes_detected` per cell.
#' @examples
#' if (magmapAvailable()) {
#'     sce <- scuttle::mockSCE()
#'     summarizeCounts(sce, labels = "Treatment")$summary$sparsity
#' }
#' @export
summarizeCounts <- function(x, assay.type = "counts", labels = NULL) {
    if (is(x, "SummarizedExperiment")) {
        assay.type <- .check_assay(x, assay.type)
        if (is.character(labels) && length(labels) == 1L && ncol(x) != 1L) {
            if (!labels %in% colnames(colData(x))) {
                stop(sprintf("`labels` = '%s' is not a colData column (have: %s).", labels,
                    paste(colnames(colData(x)), collapse = ", ")), call. = FALSE)
            }
            labels <- colData(x)[[labels]]
        }
        cell_names <- colnames(x)
        x <- assay(x, assay.type, withDimnames = FALSE)
    } else {
        cell_names <- colnames(x)
    }
    if (!is.null(labels) && length(labels) != ncol(x)) {
        stop(sprintf("`labels` has %d entries but there are %d cells.", length(labels), ncol(x)), call. = FALSE)
    }
    out <- .py_call("summarize_counts", x = .assay_to_py(x),
        labels = if (is.null(labels)) NULL else as.list(as.character(labels)))
    if (!is.null(cell_names)) rownames(out$per_cell) <- cell_names
    out
}
