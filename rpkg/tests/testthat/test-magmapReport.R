# magmapReport(): the main job from R writes the same files as `magmap run` and places every result
# where the run* verbs place them.

small_sce <- function(by = 4) {
    sce <- example_sce()
    sce[, seq(1, ncol(sce), by = by)]  # 82 (41) cells of the 5 types
}

fast <- list(umap = list(n_epochs = 30L, robust_epochs = 2L))

# Python's main job on every `by`-th cell of the bundled data (the cells small_sce() keeps), as a Python user
# runs it: the AnnData read in Python, not the matrix R sends.
py_report_run <- function(dir, by, robin_repeats, umap) {
    magmap_py <- reticulate::import("magmap", convert = FALSE)
    pipeline <- reticulate::import("magmap.pipeline", convert = FALSE)
    every <- reticulate::import_builtins(convert = FALSE)$slice(0L, NULL, by)
    cells <- magmap_py$datasets$baron2016_pancreas()$`__getitem__`(every)$copy()
    pipeline$run(cells, out = dir, label = "cell_type",
        settings = pipeline$RunSettings(robin_repeats = robin_repeats, umap = umap))
    invisible(dir)
}

test_that("magmapReport places every result in a SingleCellExperiment and writes the files", {
    skip_if_no_python()
    sce <- small_sce()
    dir <- file.path(withr::local_tempdir(), "report")
    out <- magmapReport(sce, label = "cell_type", dir = dir, robin.repeats = 3, python.args = fast, verbose = FALSE)
    expect_setequal(list.files(dir), c("report.html", "summary.json", "results.h5ad", "robust_umap.magmap",
        "cells.csv", "genes.csv", "medmagma_cell_edges.csv", "medmagma_gene_edges.csv", "gmgm_cell_edges.csv",
        "gmgm_gene_edges.csv"))
    expect_equal(ncol(out), ncol(sce))
    rep <- metadata(out)$magmapReport
    summary <- jsonlite::fromJSON(file.path(dir, "summary.json"))
    expect_equal(rep$summary$clusters$medmagma$ami, summary$clusters$medmagma$ami)
    expect_equal(summary$input$n_cells, ncol(sce))

    # networks as runMedMagma/runGmGM store them, equal to the edge lists on disk
    cells <- colPair(out, "MedMagma", asSparse = TRUE)
    expect_equal(dim(cells), c(ncol(sce), ncol(sce)))
    expect_equal(max(abs(cells - Matrix::t(cells))), 0)
    edges <- utils::read.csv(file.path(dir, "medmagma_cell_edges.csv"))
    expect_equal(nrow(edges), Matrix::nnzero(Matrix::triu(cells, k = 1)))
    i <- match(edges$source, colnames(sce)); j <- match(edges$target, colnames(sce))
    expect_equal(cells[cbind(i, j)], edges$weight, tolerance = 1e-10)
    expect_equal(sum(rowData(out)$MedMagma.used), summary$preprocessing$n_genes)
    expect_equal(metadata(out)$GmGM$method, "gmgm")
    expect_s4_class(rowPair(out, "GmGM", asSparse = TRUE), "dgCMatrix")

    # communities and their agreement with the labels, recomputed in R
    expect_equal(nlevels(out$MedMagma.cluster), summary$clusters$medmagma$n_clusters)
    mods <- rowData(out)$MedMagma.module
    expect_equal(sum(!is.na(mods)), sum(rowData(out)$MedMagma.used))
    share <- reducedDim(out, "MedMagmaModuleShare")
    m1 <- colnames(share)[1]
    counts <- counts(out)
    direct <- 100 * Matrix::colSums(counts[which(mods == m1), , drop = FALSE]) / Matrix::colSums(counts)
    expect_equal(unname(share[, m1]), unname(direct), tolerance = 1e-8)
    fit <- stats::oneway.test(share[, m1] ~ out$cell_type, var.equal = TRUE)
    row <- summary$modules$modules[summary$modules$modules$module == m1, ]
    expect_equal(unname(fit$statistic), row$anova_F, tolerance = 1e-6)

    # embedding as runRobustUMAP stores it; the model file reproduces it
    expect_equal(dim(reducedDim(out, "RobustUMAP")), c(ncol(sce), 2L))
    expect_true(all(out$RobustUMAP.certified_radius >= 0))
    expect_s3_class(metadata(out)$RobustUMAP$model, "RobustUMAPModel")
    proj <- projectRobustUMAP(out, model = loadRobustUMAP(file.path(dir, "robust_umap.magmap")), certify = FALSE)
    expect_equal(unname(reducedDim(proj, "RobustUMAP")), unname(reducedDim(out, "RobustUMAP")), tolerance = 1e-4)
    expect_equal(sum(!is.na(rowData(out)$RobustUMAP.gene_impact)),
        length(metadata(out)$RobustUMAP$model$manifest$preprocess$genes))

    # robustness as robinRobustness returns it
    rob <- rep$robustness$cells
    expect_s3_class(rob, "magmapRobin")
    expect_equal(rob$bayes_factor, summary$robustness$cells$bayes_factor_ln)
    expect_equal(dim(rob$curve_real), c(3L, length(rob$levels)))

    # the same cells, settings and seed through Python's magmap.pipeline.run give the same results
    py_dir <- file.path(withr::local_tempdir(), "python")
    py_report_run(py_dir, by = 4L, robin_repeats = 3L, umap = fast$umap)
    py_summary <- jsonlite::fromJSON(file.path(py_dir, "summary.json"))
    expect_equal(summary$input$n_genes_expressed, py_summary$input$n_genes_expressed)
    expect_equal(summary$preprocessing, py_summary$preprocessing)
    expect_equal(summary$networks, py_summary$networks)
    expect_equal(summary$clusters, py_summary$clusters, tolerance = 1e-12)
    for (f in c("medmagma_cell_edges.csv", "medmagma_gene_edges.csv", "gmgm_cell_edges.csv", "gmgm_gene_edges.csv")) {
        expect_equal(utils::read.csv(file.path(dir, f)), utils::read.csv(file.path(py_dir, f)), tolerance = 1e-12,
            label = f)
    }
    emb <- utils::read.csv(file.path(dir, "cells.csv"))
    py_emb <- utils::read.csv(file.path(py_dir, "cells.csv"))
    expect_equal(emb$cell, py_emb$cell)
    expect_equal(emb$robust_umap_1, py_emb$robust_umap_1, tolerance = 1e-4)
    expect_equal(emb$medmagma_community, py_emb$medmagma_community)
})

test_that("magmapReport works on a Seurat object and without labels", {
    skip_if_no_python()
    skip_if_not_installed("SeuratObject")
    sce <- small_sce(by = 8)
    so <- suppressWarnings(SeuratObject::CreateSeuratObject(counts = counts(sce)))
    dir <- file.path(withr::local_tempdir(), "seurat")
    out <- magmapReport(so, dir = dir, robin.repeats = 3, python.args = fast, verbose = FALSE)
    expect_true(file.exists(file.path(dir, "report.html")))
    expect_true(all(c("RNA_MedMagma", "RNA_GmGM") %in% names(out@graphs)))
    expect_equal(dim(SeuratObject::Embeddings(out[["RobustUMAP"]])), c(ncol(sce), 2L))
    expect_true(is.factor(out$MedMagma.cluster))
    summary <- SeuratObject::Misc(out, "magmapReport")$summary
    expect_null(summary$input$label)
    expect_null(summary$clusters$medmagma$ami)
})

test_that("magmapReport refuses bad input with the fix", {
    skip_if_no_python()
    sce <- small_sce()
    expect_error(magmapReport(sce, label = "nope", dir = tempfile()), "`label` = 'nope' is not a column of colData")
    expect_error(magmapReport(counts(sce), dir = tempfile()), "must be a SingleCellExperiment or a Seurat object")
    expect_error(magmapReport(sce), "`dir` must be one folder path")
    # checked in Python (RunSettings) before any work; the messages name the R arguments
    expect_error(magmapReport(sce, dir = tempfile(), max.cells = 10), "`max.cells` must be at least 20, got 10")
    expect_error(magmapReport(sce, dir = tempfile(), robin.repeats = 2.5),
        "`robin.repeats` must be an integer, got 2.5")
    dir <- withr::local_tempdir()
    writeLines("mine", file.path(dir, "keep.txt"))
    expect_error(magmapReport(sce, dir = dir),
        "already exists and is not empty; choose a new folder or pass --overwrite")
    expect_equal(list.files(dir), "keep.txt")
    logged <- sce
    assay(logged, "counts") <- log1p(counts(sce))
    expect_error(magmapReport(logged, dir = tempfile()), "looks log-transformed")
})
