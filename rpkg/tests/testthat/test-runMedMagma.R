# runMedMagma / calculateMedMagma / runGmGM: slots, subsets, seeds, Seurat, errors.

small_sce <- local({
    cache <- NULL
    function() {
        if (is.null(cache)) {
            set.seed(42)
            sce <- scuttle::mockSCE(ncells = 40, ngenes = 60)
            cache <<- sce[Matrix::rowSums(SingleCellExperiment::counts(sce)) > 0, ]
        }
        cache
    }
})

test_that("runMedMagma stores both graphs, the genes used and the parameters", {
    skip_if_no_python()
    sce <- small_sce()
    sub <- rownames(sce)[5:34]
    out <- runMedMagma(sce, subset.row = sub, k = c(5, 4), seed = 7, max.iter = 20)
    cells <- colPair(out, "MedMagma", asSparse = TRUE)
    genes <- rowPair(out, "MedMagma", asSparse = TRUE)
    expect_equal(dim(cells), c(ncol(sce), ncol(sce)))
    expect_equal(dim(genes), c(nrow(sce), nrow(sce)))
    expect_true(Matrix::isSymmetric(cells))
    expect_true(Matrix::isSymmetric(genes))
    expect_true(all(Matrix::rowSums(cells > 0) >= 5))          # top-5 per cell, symmetrised
    used <- rowData(out)$MedMagma.used
    expect_identical(used, rownames(sce) %in% sub)
    expect_true(all(Matrix::rowSums(genes[!used, ] != 0) == 0))   # genes outside the subset have no edges
    expect_true(all(Matrix::rowSums(genes[used, ] != 0) >= 4))
    p <- metadata(out)$MedMagma
    expect_identical(p$seed, 7L)
    expect_identical(p$n_genes_used, 30L)
    expect_true("magmap" %in% names(p$versions))
    expect_true(is.logical(p$converged))
})

test_that("the same seed gives the same graphs; set.seed() controls seed = NULL", {
    skip_if_no_python()
    sce <- small_sce()
    a <- calculateMedMagma(sce, subset.row = 1:30, seed = 3, max.iter = 15)
    b <- calculateMedMagma(sce, subset.row = 1:30, seed = 3, max.iter = 15)
    expect_identical(a$cells, b$cells)
    set.seed(99); c1 <- calculateMedMagma(sce, subset.row = 1:30, max.iter = 15)
    set.seed(99); c2 <- calculateMedMagma(sce, subset.row = 1:30, max.iter = 15)
    expect_identical(c1$params$seed, c2$params$seed)
    expect_identical(c1$genes, c2$genes)
    expect_identical(dimnames(a$cells), list(colnames(sce), colnames(sce)))
})

test_that("R and Python give the same graphs for the same data and seed", {
    skip_if_no_python()
    sce <- small_sce()
    r <- calculateMedMagma(SingleCellExperiment::counts(sce)[1:30, ], seed = 11, max.iter = 15, k = 5)
    py <- reticulate::py_run_string(paste(
        "import numpy as np, scipy.sparse as sp, magmap",
        "def fit(raw, ng, nc):",
        "    X = np.frombuffer(bytes(raw), dtype='<f8').reshape(nc, ng)",
        "    m = magmap.MedMagma(random_state=11, max_iter=15).fit(X)",
        "    g = sp.coo_matrix(m.cell_graph(5))",
        "    return [g.row.tolist(), g.col.tolist(), g.data.tolist()]", sep = "\n"))
    m <- as.matrix(SingleCellExperiment::counts(sce)[1:30, ])
    trip <- py$fit(writeBin(as.double(m), raw()), nrow(m),
        ncol(m))   # column-major genes x cells = row-major cells x genes
    ref <- Matrix::sparseMatrix(i = unlist(trip[[1]]) + 1L, j = unlist(trip[[2]]) + 1L, x = unlist(trip[[3]]),
        dims = dim(r$cells))
    expect_equal(unname(r$cells), ref, tolerance = 1e-12)
})

test_that("runGmGM writes its own name and works on a real dataset", {
    skip_if_no_python()
    sce <- example_sce()
    sce <- scuttle::logNormCounts(sce)
    lc <- SingleCellExperiment::logcounts(sce)
    top <- order(-(Matrix::rowMeans(lc^2) - Matrix::rowMeans(lc)^2))[1:200]   # most variable genes
    out <- runGmGM(sce, subset.row = top, k = 10, seed = 1)
    g <- colPair(out, "GmGM", asSparse = TRUE)
    expect_equal(dim(g), c(328L, 328L))
    # cells of the same type should be linked more than chance (5 types, ~20% by chance)
    s <- Matrix::summary(g)
    same <- mean(sce$cell_type[s$i] == sce$cell_type[s$j])
    expect_gt(same, 0.5)
    expect_identical(metadata(out)$GmGM$mode, "paper")
})

test_that("runMedMagma works on a Seurat object", {
    skip_if_no_python()
    skip_if_not_installed("SeuratObject")
    sce <- small_sce()
    counts <- SingleCellExperiment::counts(sce)
    seu <- suppressWarnings(SeuratObject::CreateSeuratObject(counts = counts))
    seu <- runMedMagma(seu, subset.row = 1:30, k = 5, seed = 2, max.iter = 10)
    expect_true("RNA_MedMagma" %in% names(seu@graphs))
    expect_s4_class(seu@graphs[["RNA_MedMagma"]], "Graph")
    expect_equal(dim(SeuratObject::Misc(seu, "MedMagma_gene_graph")), c(nrow(sce), nrow(sce)))
    expect_identical(SeuratObject::Misc(seu, "MedMagma_params")$seed, 2L)
    # a result without cell names (as other callers of the store step produce) is named from the object
    res <- calculateMedMagma(counts, subset.row = 1:30, k = 5, seed = 2, max.iter = 10)
    unnamed <- res
    dimnames(unnamed$cells) <- NULL
    stored <- magmap:::.store_graphs_seurat(seu, unnamed, "Unnamed", NULL)
    expect_identical(rownames(stored@graphs[["RNA_Unnamed"]]), colnames(seu))
    expect_equal(unname(as.matrix(stored@graphs[["RNA_Unnamed"]])), unname(as.matrix(res$cells)))
})

test_that("bad input gives errors naming the argument", {
    skip_if_no_python()
    sce <- small_sce()
    expect_error(runMedMagma(sce, assay.type = "nope"), "`assay.type` = 'nope' is not an assay")
    expect_error(calculateMedMagma(sce, subset.row = c("nope", "x")), "`subset.row` names genes that are not in")
    expect_error(calculateMedMagma(sce, subset.row = 1:2), "Only 2 gene\\(s\\) selected; at least 3 are needed")
    # k is split in R, its numbers checked in Python; the message names `k`
    expect_error(calculateMedMagma(sce, k = 0), "`k` must be at least 1, got 0")
    expect_error(calculateMedMagma(sce, k = c(5, 2.5)), "`k` must be an integer, got 2.5")
    expect_error(calculateMedMagma(sce, k = 1:3), "`k` must be one number, or two \\(cells, genes\\)")
    expect_error(calculateMedMagma(sce[, 1:2]), "at least 3 are needed")
    expect_error(calculateMedMagma(matrix(letters[1:9], 3)), "must be numeric")
    neg <- SingleCellExperiment::counts(sce)[1:10, ]
    neg[1, 1] <- -1
    expect_error(calculateMedMagma(neg, k = 3), "negative values")
    expect_error(calculateMedMagma(sce, mode = "slow"), "`mode` must be one of \\['fast', 'reference'\\], got 'slow'")
    expect_error(calculateMedMagma(sce, max.iter = 0), "`max_iter` must be at least 1")
    expect_error(calculateGmGM(sce, mode = "fast", assay.type = "counts"),
        "`mode` must be one of \\['paper', 'exact'\\]")
    expect_error(calculateMedMagma(sce, subset.row = 1:30, k = c(40, 3)),
        "`k` \\(40\\) must be smaller than the number of cells \\(40\\)")
    expect_error(runMedMagma(SingleCellExperiment::counts(sce)), "must be a SingleCellExperiment or a Seurat")
})

test_that("arguments left NULL take Python's defaults, recorded in the parameters", {
    skip_if_no_python()
    sce <- small_sce()
    res <- calculateMedMagma(sce, subset.row = 1:30, seed = 1, max.iter = 5)
    p <- res$params
    expect_identical(p$n_neighbors, 10L)
    expect_identical(p$n_gene_neighbors, 10L)
    expect_identical(p$mode, "fast")
    expect_identical(p$zero_handling, "one-pass")
    expect_identical(p$max_iter, 5L)
    expect_true(all(Matrix::rowSums(res$cells != 0) >= 10))
    g <- calculateGmGM(sce, subset.row = 1:30, seed = 1, assay.type = "counts")$params
    expect_identical(g$mode, "paper")
    expect_false(g$skeptic)
})

test_that("the many-cells path is reached through python.args and gives the dense path's graph", {
    skip_if_no_python()
    sce <- small_sce()
    fit <- function(solver) {
        calculateMedMagma(sce, subset.row = 1:20, k = 5, seed = 1, max.iter = 20,
            python.args = list(solver = solver, acceleration = "none"))
    }
    low <- fit("lowrank")
    dense <- fit("dense")
    expect_identical(low$params$solver_used, "lowrank")
    expect_identical(dense$params$solver_used, "dense")
    expect_identical(calculateMedMagma(sce, subset.row = 1:20, k = 5, seed = 1, max.iter = 2)$params$solver_used,
        "dense")
    expect_identical(which(as.matrix(low$cells) != 0), which(as.matrix(dense$cells) != 0))
    expect_equal(as.matrix(low$cells), as.matrix(dense$cells), tolerance = 1e-6)
    expect_error(fit("sparse"), "`solver` must be one of \\['auto', 'dense', 'lowrank'\\]")
})

test_that("progress messages are shown when verbose and silent otherwise", {
    skip_if_no_python()
    sce <- small_sce()
    expect_message(calculateMedMagma(sce, subset.row = 1:30, seed = 1, max.iter = 5, verbose = TRUE),
        "magmap: MED-MAGMA on 40 cells x 30 genes \\(seed 1\\)")
    expect_silent(calculateGmGM(sce, subset.row = 1:30, seed = 1, mode = "exact", assay.type = "counts"))
    withr::local_options(magmap.verbose = FALSE)
    expect_silent(calculateMedMagma(sce, subset.row = 1:30, seed = 1, max.iter = 5))
})
