# plotMagmaNetwork draws what is stored, coloured by the requested column.

test_that("cell and gene networks are drawn with the right vertices and colours", {
    skip_if_no_python()
    skip_if_not_installed("ggplot2")
    skip_if_not_installed("igraph")
    sce <- scuttle::logNormCounts(example_sce())
    lc <- SingleCellExperiment::logcounts(sce)
    top <- order(-(Matrix::rowMeans(lc^2) - Matrix::rowMeans(lc)^2))[1:60]
    sce <- runGmGM(sce, subset.row = top, k = 5, seed = 1)
    p <- plotMagmaNetwork(sce, "GmGM", colour_by = "cell_type")
    expect_s3_class(p, "ggplot")
    built <- ggplot2::ggplot_build(p)
    points <- built$data[[2]]
    expect_equal(nrow(points), ncol(sce))
    expect_equal(length(unique(points$colour)), length(unique(sce$cell_type)))
    expect_equal(nrow(built$data[[1]]), Matrix::nnzero(colPair(sce, "GmGM", asSparse = TRUE)) / 2)
    pg <- plotMagmaNetwork(sce, "GmGM", axis = "genes", label = TRUE)
    expect_equal(nrow(ggplot2::ggplot_build(pg)$data[[2]]), 60L)    # only the genes used
    expect_error(plotMagmaNetwork(sce, "GmGM", colour_by = "nope"), "`colour_by` = 'nope' is not a colData column")
    expect_error(plotMagmaNetwork(sce, "Missing"), "`name` must name a colPair")
})
