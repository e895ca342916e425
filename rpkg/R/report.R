#' The main job: networks, robust embedding, robustness verdicts and an HTML report
#'
#' Runs the same job as the command `magmap run` on the counts of a SingleCellExperiment or a Seurat
#' object, through the Python core: MED-MAGMA and GmGM cell and gene networks on the genes the
#' MED-MAGMA evaluation used (the 2000 most variable, then those expressed in enough cells to make
#' the matrix closest to square), Leiden communities of both cell networks compared with `label`
#' (adjusted mutual information, assortativity), Leiden modules of the MED-MAGMA gene network with a
#' one-way ANOVA of each module's share of the counts across the `label` groups, the robin-style
#' robustness (Bayes factor, AUC) of both MED-MAGMA networks, and a RobustUMAP embedding with
#' certified radii and gene impact. It writes `report.html` (self-contained, opens offline),
#' `summary.json` (every number, parameter, seed, version and timing), `results.h5ad`, the embedding
#' model `robust_umap.magmap` (readable with [loadRobustUMAP()]) and CSV edge lists into `dir`.
#'
#' The files are written into a temporary folder beside `dir` and moved into place at the end, so a
#' failed run leaves no folder that looks complete. Cells without counts are left out, and objects
#' with more than `max.cells` cells are subsampled (with `seed`); the returned object then holds the
#' cells analysed only (a message says so).
#'
#' @param x A SingleCellExperiment or Seurat object with raw counts.
#' @param label Name of a `colData` (Seurat: `meta.data`) column with cell groups, e.g. cell types;
#'   `NULL` runs the label-free parts only.
#' @param dir Output folder; it must not exist or be empty, unless `overwrite = TRUE`.
#' @param assay.type Assay (Seurat: slot of the default assay) holding raw counts.
#' @param seed Seed of every random step; `NULL` draws one from R's RNG, so `set.seed()` controls it.
#' @param max.cells Largest number of cells analysed (more are subsampled), at least 20 (`NULL`: the Python
#'   default, currently 1000).
#' @param robin.repeats Repeats per perturbation level of the robustness test, at least 2 (`NULL`: the Python
#'   default, currently 10).
#' @param overwrite Replace a non-empty `dir` once the new results are complete.
#' @param python.args A named list of further settings of the Python job (fields of
#'   `magmap.pipeline.RunSettings`, e.g. `list(umap = list(n_epochs = 50))`).
#' @param verbose Show progress messages.
#' @return `x` (restricted to the cells analysed) with, for a SingleCellExperiment,
#'   the networks as [runMedMagma()] and [runGmGM()] store them (`colPair(x, "MedMagma")`,
#'   `rowPair(x, "MedMagma")`, `rowData(x)$MedMagma.used`, `metadata(x)$MedMagma`, and the same for
#'   `"GmGM"`), their Leiden communities `colData(x)$MedMagma.cluster` and `colData(x)$GmGM.cluster`,
#'   the gene modules `rowData(x)$MedMagma.module` (`NA` for genes outside the network) and each
#'   cell's share of counts per module `reducedDim(x, "MedMagmaModuleShare")` (percent), the embedding
#'   as [runRobustUMAP()] stores it (`reducedDim(x, "RobustUMAP")`,
#'   `colData(x)$RobustUMAP.certified_radius`, `colData(x)$RobustUMAP.certified_box`,
#'   `colData(x)$RobustUMAP.top_gene`, `colData(x)$RobustUMAP.top_genes`, `metadata(x)$RobustUMAP`
#'   with the model), each gene's impact on it `rowData(x)$RobustUMAP.gene_impact`, and
#'   `metadata(x)$magmapReport`: `summary` (the content of `summary.json`), `robustness` (`cells`
#'   and `genes`, `magmapRobin` objects as [robinRobustness()] returns), `dir` and `files`.
#'   For a Seurat object: graphs as `Graph` objects and the embedding as a `DimReduc` (as the
#'   `run*` verbs store them), communities, certified radius and box in `meta.data`, gene results
#'   and the report's summary and robustness in `Misc(x)`.
#' @examples
#' if (magmapAvailable()) {
#'     sce <- magmapExampleData()
#'     sce <- sce[, seq(1, ncol(sce), by = 4)]
#'     sce <- magmapReport(sce, label = "cell_type", dir = tempfile("report"), robin.repeats = 3)
#'     metadata(sce)$magmapReport$summary$clusters$medmagma$ami
#'     table(sce$MedMagma.cluster, sce$cell_type)
#' }
#' @export
magmapReport <- function(x, label = NULL, dir, assay.type = "counts", seed = 0, max.cells = NULL,
    robin.repeats = NULL, overwrite = FALSE, python.args = list(),
    verbose = getOption("magmap.verbose", interactive())) {
    if (!inherits(x, "Seurat") && !is(x, "SingleCellExperiment")) {
        stop("`x` must be a SingleCellExperiment or a Seurat object; wrap a count matrix with ",
            "SingleCellExperiment(assays = list(counts = m)).", call. = FALSE)
    }
    if (missing(dir) || !is.character(dir) || length(dir) != 1L || is.na(dir) || !nzchar(dir)) {
        stop("`dir` must be one folder path for the report and results, e.g. dir = \"magmap_results\".", call. = FALSE)
    }
    seurat <- inherits(x, "Seurat")
    counts <- if (seurat) .seurat_counts(x, if (identical(assay.type, "counts")) "counts" else assay.type) else
        assay(x, .check_assay(x, assay.type))
    labels <- NULL
    if (!is.null(label)) {
        meta <- if (seurat) x@meta.data else colData(x)
        if (!is.character(label) || length(label) != 1L || !label %in% colnames(meta)) {
            stop(sprintf("`label` = '%s' is not a column of %s (have: %s); pass one of them, or label = NULL.",
                paste(label, collapse = ","), if (seurat) "meta.data" else "colData",
                paste(utils::head(colnames(meta), 12), collapse = ", ")), call. = FALSE)
        }
        labels <- as.character(meta[[label]])
    }
    seed <- .resolve_seed(seed)
    dir <- normalizePath(dir, mustWork = FALSE)
    cells <- colnames(x)
    if (is.null(cells)) cells <- as.character(seq_len(ncol(x)))
    genes <- rownames(x)
    if (is.null(genes)) genes <- as.character(seq_len(nrow(x)))
    .progress(verbose, "magmap: report on %d cells x %d genes into %s (seed %d)", ncol(x), nrow(x), dir, seed)
    out <- .py_call("run_report", x = .assay_to_py(counts), gene_names = as.list(genes), cell_names = as.list(cells),
        labels = .to_py(labels), label = label, out = dir, seed = seed, max_cells = max.cells,
        robin_repeats = robin.repeats, overwrite = isTRUE(overwrite), options = .to_py(python.args))
    used <- out$cells_used
    if (length(used) < ncol(x)) {
        message(sprintf("magmapReport: %d of %d cells were analysed (%s); the object returned holds those cells.",
            length(used), ncol(x), "cells without counts are left out, and at most `max.cells` are kept"))
        x <- x[, used]
    }
    .store_report(x, out, seed, dir)
}

.report_graphs <- function(g) list(cells = g$cells, genes = g$genes, genes.used = g$genes_used, params = g$params)

.report_umap <- function(out, seed, cells) {
    res <- c(.umap_outputs(out), list(seed = seed,
        model = .new_model(out$model, jsonlite::fromJSON(out$manifest_json, simplifyVector = TRUE))))
    .finish_embedding(res, cells)
}

.report_robin <- function(r, seed) {
    r$curve_real <- as.matrix(r$curve_real)
    r$curve_null <- as.matrix(r$curve_null)
    .new_robin(c(r, list(labels = list("real data", "null model"), methods = list(r$method), backend = "python",
        bayes_factor = if (is.null(r$bayes_factor_ln)) NA_real_ else r$bayes_factor_ln,
        levels = as.numeric(unlist(r$levels)), params = list(n_repeats = r$n_repeats, seed = r$seed))),
        r$seed %||% seed)
}

.store_report <- function(x, out, seed, dir) {
    summary <- jsonlite::fromJSON(out$summary_json, simplifyVector = TRUE)
    robustness <- list(cells = .report_robin(out$robustness$cells, seed),
        genes = .report_robin(out$robustness$genes, seed))
    report <- list(summary = summary, robustness = robustness, dir = dir, files = file.path(dir, unlist(summary$files)))
    share <- out$module_share
    dimnames(share) <- list(colnames(x), unlist(out$module_names))
    umap <- .report_umap(out, seed, colnames(x))
    if (inherits(x, "Seurat")) {
        x <- .store_graphs_seurat(x, .report_graphs(out$medmagma), "MedMagma", NULL)
        x <- .store_graphs_seurat(x, .report_graphs(out$gmgm), "GmGM", NULL)
        x <- .store_umap_seurat(x, umap, "RobustUMAP")
        x[["MedMagma.cluster"]] <- out$medmagma$clusters
        x[["GmGM.cluster"]] <- out$gmgm$clusters
        SeuratObject::Misc(x, slot = "MedMagma_modules") <- stats::setNames(out$modules, rownames(x))
        SeuratObject::Misc(x, slot = "MedMagma_module_share") <- share
        SeuratObject::Misc(x, slot = "RobustUMAP_gene_impact") <- stats::setNames(out$gene_impact, rownames(x))
        SeuratObject::Misc(x, slot = "magmapReport") <- report
        return(x)
    }
    x <- .store_graphs(x, .report_graphs(out$medmagma), "MedMagma", NULL)
    x <- .store_graphs(x, .report_graphs(out$gmgm), "GmGM", NULL)
    x <- .store_umap(x, umap, "RobustUMAP", list(assay.type = "counts"))
    colData(x)$MedMagma.cluster <- out$medmagma$clusters
    colData(x)$GmGM.cluster <- out$gmgm$clusters
    rowData(x)$MedMagma.module <- out$modules
    rowData(x)$RobustUMAP.gene_impact <- out$gene_impact
    reducedDim(x, "MedMagmaModuleShare") <- share
    metadata(x)$magmapReport <- report
    x
}
