# R -> Python -> R conversions (the byte codec) on real data and on every argument type.

test_that("a genes x cells dgCMatrix reaches Python as a cells x genes CSR matrix without densifying", {
    skip_if_no_python()
    sce <- example_sce()
    m <- SingleCellExperiment::counts(sce)
    expect_s4_class(m, "dgCMatrix")
    back <- magmap:::.py_call("roundtrip", list(m = magmap:::.assay_to_py(m)))
    expect_identical(back$types$m, sprintf("csr_matrix[%d, %d]", ncol(m), nrow(m)))
    # what comes back is the cells x genes matrix, i.e. the transpose, with every value intact
    expect_s4_class(back$value$m, "dgCMatrix")
    expect_equal(back$value$m, Matrix::t(unname(m)))
})

test_that("library sizes computed in Python equal colSums in R (orientation and values)", {
    skip_if_no_python()
    sce <- example_sce()
    s <- summarizeCounts(sce, labels = "cell_type")
    expect_equal(s$per_cell$library_size, unname(Matrix::colSums(SingleCellExperiment::counts(sce))))
    expect_equal(s$per_cell$n_genes_detected, unname(Matrix::colSums(SingleCellExperiment::counts(sce) > 0)))
    expect_equal(rownames(s$per_cell), colnames(sce))
    expect_identical(unlist(s$summary$label_counts), c(activated_stellate = 48L, alpha = 70L, beta = 70L,
        delta = 70L, macrophage = 70L))
    expect_equal(s$summary$sparsity, mean(as.matrix(SingleCellExperiment::counts(sce)) == 0))
    expect_s3_class(s$per_cell, "data.frame")
})

test_that("dense matrices, vectors, NULL, characters and lists are coerced explicitly", {
    skip_if_no_python()
    set.seed(1)
    dense <- matrix(rnorm(12), 3, 4)
    args <- list(dense = dense, int = 1:5, dbl = c(0.5, NA, Inf), one_int = 7L, one_dbl = 2.5, kept = I(3L),
        one_na = NA_real_, flag = TRUE,
        lgl = c(TRUE, FALSE, NA), chr = c("a", "b"), one_chr = "x", null = NULL,
        nested = list(a = 1L, b = list(c = "deep", d = c(1.5, 2.5))),
        sparse = Matrix::rsparsematrix(5, 3, 0.5))
    back <- magmap:::.py_call("roundtrip", magmap:::.to_py(args))
    expect_identical(back$types$dense, "ndarray[float64][3, 4]")
    expect_identical(back$types$int, "ndarray[int32][5]")
    expect_identical(back$types$one_int, "int")
    expect_identical(back$types$one_dbl, "float")
    expect_identical(back$types$flag, "bool")
    expect_identical(back$types$one_chr, "str")
    expect_identical(back$types$one_na, "NoneType")
    expect_identical(back$types$kept, "ndarray[int32][1]")
    expect_identical(back$types$chr, c("str", "str"))
    expect_identical(back$types$sparse, "csc_matrix[5, 3]")
    expect_equal(back$value$dense, dense)
    expect_identical(back$value$int, 1:5)
    expect_identical(back$value$one_int, 7L)
    expect_equal(back$value$dbl, c(0.5, NA, Inf))
    expect_identical(back$value$lgl, c(TRUE, FALSE, TRUE)) # NA logical is sent as a true (non-zero) int
    expect_identical(unlist(back$value$chr), c("a", "b"))
    expect_identical(back$value$one_chr, "x")
    expect_identical(back$value$kept, 3L)
    expect_identical(back$value$nested$b$c, "deep")
    expect_equal(back$value$nested$b$d, c(1.5, 2.5))
    expect_equal(back$value$sparse, as(args$sparse, "generalMatrix"))
    expect_false("null" %in% names(back$value) && !is.null(back$value$null))
})

test_that("dense assays and data.frames cross in the right orientation", {
    skip_if_no_python()
    m <- matrix(c(1, 0, 2, 3, 4, 0, 5, 0, 6), nrow = 3, dimnames = list(c("g1", "g2", "g3"), c("c1", "c2", "c3")))
    s <- summarizeCounts(m)
    expect_equal(s$per_cell$library_size, c(3, 7, 11))
    expect_equal(s$per_cell$n_genes_detected, c(2, 2, 2))
    expect_identical(rownames(s$per_cell), c("c1", "c2", "c3"))
    expect_error(magmap:::.assay_to_py(matrix(letters[1:6], 2)), "must be numeric")
})

test_that("a Python exception reaches R as an R error carrying the Python message", {
    skip_if_no_python()
    bad <- matrix(c(1, NA, 3, 4, 5, 6, 7, 8, 9), 3)
    expect_error(summarizeCounts(bad), "NaN or infinite", class = "simpleError")
    neg <- matrix(1:9, 3)
    neg[2, 2] <- -1L
    err <- tryCatch(summarizeCounts(neg), error = identity)
    expect_s3_class(err, "error")
    expect_match(conditionMessage(err), "negative values")
    expect_false(grepl("Traceback|py_call_impl", conditionMessage(err)))
    expect_error(summarizeCounts(diag(3), labels = c("a", "b")), "`labels` has 2 entries")
})

test_that("h5adToSCE reads a real shared dataset with every slot", {
    skip_if_no_python()
    path <- shared_data("cellbench_celseq2_3cl", "cellbench_celseq2_3celllines_counts.h5ad")
    sce <- h5adToSCE(path, X.name = "counts")
    expect_s4_class(sce, "SingleCellExperiment")
    expect_equal(dim(sce), c(28204L, 274L))
    expect_true(is.factor(sce$cell_line_demuxlet))
    expect_setequal(levels(sce$cell_line_demuxlet), c("H1975", "H2228", "HCC827"))
    expect_error(h5adToSCE("no/such/file.h5ad"), "does not exist")
})
