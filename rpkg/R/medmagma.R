#' MED-MAGMA and GmGM cell and gene networks
#'
#' Learn a cell network and a gene network at once. MED-MAGMA models the counts as a Kronecker-sum
#' (bigraphical) normal matrix multiplied by arbitrary positive per-cell and per-gene factors
#' (library size, capture or GC bias), and fits it by EM on the quotient that removes those factors;
#' GmGM is the noise-unaware baseline (`skeptic = TRUE`: nonparanormal skeptic). Each network keeps
#' the `k` strongest partial correlations per vertex (absolute precision entries), symmetrised.
#'
#' `calculateMedMagma()` returns the graphs; `runMedMagma()` stores them in the object. For a
#' SingleCellExperiment: cell graph in `colPair(x, name)`, gene graph in `rowPair(x, name)` (all
#' genes; genes outside `subset.row` have no edges), the genes used in
#' `rowData(x)[[paste0(name, ".used")]]` and the parameters (seed, versions, iterations) in
#' `metadata(x)[[name]]`. For a Seurat object: the cell graph as a `Graph` in
#' `x@graphs[[paste0(assay, "_", name)]]`, the gene graph and parameters in `Misc(x)`.
#'
#' MED-MAGMA picks its path by shape: with 2,000 cells or more and at least twice as many cells as
#' genes, the cell precision is kept in factored form (memory grows with cells x genes; no cells x cells
#' matrix is formed); otherwise both precisions are dense (memory grows with the square of each
#' number). `python.args = list(solver = "dense")` or `"lowrank"` forces a path. GmGM is always dense:
#' select genes with `subset.row` (e.g. highly variable genes). An error names the path and the memory
#' needed when it exceeds what is available.
#'
#' Arguments left `NULL` take the Python package's defaults (shown in brackets), and Python checks
#' every value, so R and Python give the same results and the same error messages.
#'
#' @param x A genes x cells matrix (dense or sparse) of counts, a SummarizedExperiment /
#'   SingleCellExperiment, or (for `runMedMagma`/`runGmGM`) a Seurat object.
#' @param subset.row Genes to use: indices, names or a logical vector; `NULL` uses all genes.
#' @param k Edges kept per vertex: one number for both networks, or `c(cells, genes)` \[10\].
#' @param mode MED-MAGMA: `"fast"` \[default\] or `"reference"` (the published implementation's
#'   behaviour, for parity). GmGM: `"paper"` \[default\] (the published baseline) or `"exact"`
#'   (unregularised MLE).
#' @param zero.handling `"one-pass"` \[default\] (the published quotient) or `"iterated"` (exactly
#'   invariant to the noise when there are zeros).
#' @param max.iter Maximum EM iterations \[100\].
#' @param skeptic GmGM only: use the nonparanormal skeptic \[`FALSE`\].
#' @param seed Seed; `NULL` draws one from R's RNG, so `set.seed()` controls the result.
#' @param device `"auto"` \[default\] (GPU when present), `"cpu"` or `"cuda"`.
#' @param verbose Show progress (R messages and Python progress bars); default: the option
#'   `magmap.verbose`, else `TRUE` in interactive sessions. `suppressMessages()` silences the R part.
#' @param python.args A named list of further arguments for the Python estimator (`magmap.MedMagma`,
#'   `magmap.GmGM`), passed through `magmap.medmagma.learn_graphs()`, e.g. `list(laplace_weight = 0)`.
#' @param assay.type Assay to use (raw or normalised counts, not log-transformed).
#' @param name Name of the stored graphs and metadata entry.
#' @param ... Arguments passed to the method for the underlying matrix.
#' @return `calculateMedMagma()` and `calculateGmGM()`: a list with `cells` (a cells x cells
#'   `dgCMatrix`), `genes` (a genes x genes `dgCMatrix` over all genes), `genes.used` (logical) and
#'   `params`. `runMedMagma()` and `runGmGM()`: `x` with the slots described above.
#' @examples
#' if (magmapAvailable()) {
#'     sce <- scuttle::logNormCounts(magmapExampleData())
#'     hvg <- order(-apply(logcounts(sce), 1, var))[1:200]
#'     sce <- runMedMagma(sce, subset.row = hvg, k = 10, seed = 1)
#'     colPair(sce, "MedMagma")
#'     sce <- runGmGM(sce, subset.row = hvg, seed = 1)
#'     metadata(sce)$GmGM$n_genes_used
#' }
#' @name runMedMagma
NULL

#' @rdname runMedMagma
#' @export
setGeneric("calculateMedMagma", function(x, ...) standardGeneric("calculateMedMagma"))

#' @rdname runMedMagma
#' @export
setGeneric("calculateGmGM", function(x, ...) standardGeneric("calculateGmGM"))

# subset.row (indices, names or logical) as a logical mask over the rows of x; how many genes a fit
# needs is checked in Python.
.subset_mask <- function(subset.row, n, gene_names) {
    if (is.null(subset.row)) return(NULL)
    mask <- logical(n)
    if (is.logical(subset.row)) {
        if (length(subset.row) != n) stop(sprintf("`subset.row` is logical of length %d but there are %d genes.",
            length(subset.row), n), call. = FALSE)
        mask <- subset.row & !is.na(subset.row)
    } else if (is.character(subset.row)) {
        idx <- match(subset.row, gene_names)
        if (anyNA(idx)) stop(sprintf("`subset.row` names genes that are not in `x`, e.g. '%s'.",
            subset.row[is.na(idx)][1]), call. = FALSE)
        mask[idx] <- TRUE
    } else if (is.numeric(subset.row)) {
        if (any(subset.row < 1 | subset.row > n)) stop(sprintf("`subset.row` indices must be between 1 and %d.", n),
            call. = FALSE)
        mask[subset.row] <- TRUE
    } else {
        stop("`subset.row` must be NULL, or gene indices, names or a logical vector.", call. = FALSE)
    }
    mask
}

# k is R's own argument (one number, or one per network), split here; Python checks the numbers and names
# `k` in its messages. NULL leaves both to Python.
.split_k <- function(k) {
    if (is.null(k)) return(NULL)
    if (!length(k) %in% 1:2 || anyNA(k)) stop("`k` must be one number, or two (cells, genes).", call. = FALSE)
    lapply(rep_len(k, 2L), .whole)
}

.calculate_graphs <- function(x, method, subset.row, k, seed, options, verbose = isTRUE(options$verbose)) {
    k <- .split_k(k)
    seed <- .resolve_seed(seed)
    mask <- .subset_mask(subset.row, nrow(x), rownames(x))
    .progress(verbose, "magmap: %s on %d cells x %d genes (seed %d)", if (method == "gmgm") "GmGM" else "MED-MAGMA",
        ncol(x), if (is.null(mask)) nrow(x) else sum(mask), seed)
    out <- .py_call("med_magma", x = .assay_to_py(x), method = method, genes = .to_py(mask), n_neighbors = k[[1]],
        n_gene_neighbors = k[[2]], seed = seed, options = .to_py(options))
    dimnames(out$cells) <- list(colnames(x), colnames(x))
    dimnames(out$genes) <- list(rownames(x), rownames(x))
    out$params$seed <- seed
    list(cells = out$cells, genes = out$genes, genes.used = out$genes_used, params = out$params)
}

.medmagma_options <- function(mode, zero.handling, max.iter, device, verbose, python.args) {
    c(list(mode = mode, zero_handling = zero.handling, max_iter = .whole(max.iter), device = device,
        verbose = isTRUE(verbose)), python.args)
}

#' @rdname runMedMagma
#' @export
setMethod("calculateMedMagma", "ANY", function(x, subset.row = NULL, k = NULL, mode = NULL,
    zero.handling = NULL, max.iter = NULL, seed = NULL, device = NULL,
    verbose = getOption("magmap.verbose", interactive()), python.args = list()) {
    opts <- .medmagma_options(mode, zero.handling, max.iter, device, verbose, python.args)
    .calculate_graphs(x, "medmagma", subset.row, k, seed, opts)
})

#' @rdname runMedMagma
#' @export
setMethod("calculateMedMagma", "SummarizedExperiment", function(x, ..., assay.type = "counts") {
    calculateMedMagma(assay(x, .check_assay(x, assay.type)), ...)
})

#' @rdname runMedMagma
#' @export
setMethod("calculateGmGM", "ANY", function(x, subset.row = NULL, k = NULL, mode = NULL,
    skeptic = NULL, seed = NULL, python.args = list()) {
    opts <- c(list(mode = mode, skeptic = skeptic), python.args)
    .calculate_graphs(x, "gmgm", subset.row, k, seed, opts)
})

#' @rdname runMedMagma
#' @export
setMethod("calculateGmGM", "SummarizedExperiment", function(x, ..., assay.type = "logcounts") {
    calculateGmGM(assay(x, .check_assay(x, assay.type)), ...)
})

.check_container <- function(x, calculate) {
    if (!inherits(x, "Seurat") && !is(x, "SingleCellExperiment")) {
        stop(sprintf("`x` must be a SingleCellExperiment or a Seurat object; use %s() for matrices.", calculate),
            call. = FALSE)
    }
}

.store_graphs <- function(x, res, name, assay.type) {
    if (inherits(x, "Seurat")) return(.store_graphs_seurat(x, res, name, assay.type))
    # SingleCellExperiment (1.20) cannot build its SelfHits from a matrix carrying dimnames
    cells <- res$cells
    genes <- res$genes
    dimnames(cells) <- dimnames(genes) <- list(NULL, NULL)
    colPair(x, name) <- cells
    rowPair(x, name) <- genes
    rowData(x)[[paste0(name, ".used")]] <- res$genes.used
    metadata(x)[[name]] <- res$params
    x
}

.seurat_counts <- function(x, assay.type) {
    if (!requireNamespace("SeuratObject", quietly = TRUE)) {
        stop("the SeuratObject package is needed for Seurat input.", call. = FALSE)
    }
    assay <- SeuratObject::DefaultAssay(x)
    slot <- if (is.null(assay.type)) "counts" else assay.type
    if (!slot %in% c("counts", "data", "scale.data")) {
        stop(sprintf("`assay.type` = '%s' must be one of 'counts', 'data', 'scale.data' for a Seurat object.", slot),
            call. = FALSE)
    }
    SeuratObject::GetAssayData(x, slot = slot, assay = assay)
}

.store_graphs_seurat <- function(x, res, name, assay.type) {
    assay <- SeuratObject::DefaultAssay(x)
    cells <- res$cells
    # a Seurat Graph needs cell names; graphs computed elsewhere may come without them
    if (is.null(rownames(cells))) dimnames(cells) <- list(colnames(x), colnames(x))
    graph <- SeuratObject::as.Graph(cells)
    SeuratObject::DefaultAssay(graph) <- assay
    x@graphs[[paste0(assay, "_", name)]] <- graph
    SeuratObject::Misc(x, slot = paste0(name, "_gene_graph")) <- res$genes
    SeuratObject::Misc(x, slot = paste0(name, "_genes_used")) <- res$genes.used
    SeuratObject::Misc(x, slot = paste0(name, "_params")) <- res$params
    x
}

#' @rdname runMedMagma
#' @export
runMedMagma <- function(x, ..., assay.type = "counts", name = "MedMagma") {
    .check_container(x, "calculateMedMagma")
    if (inherits(x, "Seurat")) {
        res <- calculateMedMagma(.seurat_counts(x, assay.type), ...)
    } else {
        res <- calculateMedMagma(x, ..., assay.type = assay.type)
    }
    .store_graphs(x, res, name, assay.type)
}

#' @rdname runMedMagma
#' @export
runGmGM <- function(x, ..., assay.type = "logcounts", name = "GmGM") {
    .check_container(x, "calculateGmGM")
    if (inherits(x, "Seurat")) {
        res <- calculateGmGM(.seurat_counts(x, if (identical(assay.type, "logcounts")) "data" else assay.type), ...)
    } else {
        res <- calculateGmGM(x, ..., assay.type = assay.type)
    }
    .store_graphs(x, res, name, assay.type)
}
