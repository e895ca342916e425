# projectRobustUMAP on DelayedArray / HDF5-backed assays: blocks of cells are streamed, never realised,
# and the results equal the in-memory projection.

delayed_ref <- local({
    cache <- NULL
    function() {
        if (is.null(cache)) {
            cache <<- runRobustUMAP(example_sce()[, 1:200], seed = 3, n_neighbors = 10, ntop = 300L, n_epochs = 20L,
                python.args = list(robust_epochs = 2L, robust_cells = 16L))
        }
        cache
    }
})

expect_same_projection <- function(streamed, in_memory) {
    expect_equal(reducedDim(streamed, "RobustUMAP"), reducedDim(in_memory, "RobustUMAP"), tolerance = 1e-6)
    expect_equal(streamed$RobustUMAP.certified_radius, in_memory$RobustUMAP.certified_radius, tolerance = 1e-6)
    expect_equal(streamed$RobustUMAP.certified_box, in_memory$RobustUMAP.certified_box, tolerance = 1e-6)
}

test_that("a DelayedArray assay is projected block by block with the in-memory results", {
    skip_if_no_python()
    skip_if_not_installed("DelayedArray")
    ref <- delayed_ref()
    query <- example_sce()[, 201:328]
    lazy <- query
    assay(lazy, "counts", withDimnames = FALSE) <- DelayedArray::DelayedArray(counts(query))
    in_memory <- projectRobustUMAP(query, model = ref, top.genes = 3)
    streamed <- projectRobustUMAP(lazy, model = ref, top.genes = 3, block.cells = 30)
    expect_same_projection(streamed, in_memory)
    expect_identical(streamed$RobustUMAP.top_gene, in_memory$RobustUMAP.top_gene)
    expect_identical(streamed$RobustUMAP.top_genes$gene_3, in_memory$RobustUMAP.top_genes$gene_3)
    # the plain result: 128 cells in blocks of 30 are 5 blocks; the summary is over all cells
    res <- projectRobustUMAP(DelayedArray::DelayedArray(counts(query)), model = ref, block.cells = 30)
    expect_identical(res$n.blocks, 5L)
    expect_identical(rownames(res$embedding), colnames(query))
    whole <- projectRobustUMAP(counts(query), model = ref)
    expect_equal(res$certificate$radius_median, whole$certificate$radius_median, tolerance = 1e-9)
    expect_equal(res$certificate$n_cells, 128)
})

test_that("refine = TRUE block by block refines each cell as in memory", {
    skip_if_no_python()
    skip_if_not_installed("DelayedArray")
    ref <- delayed_ref()
    query <- counts(example_sce()[, 201:328])
    in_memory <- projectRobustUMAP(query, model = ref, certify = FALSE, refine = TRUE)$embedding
    streamed <- projectRobustUMAP(DelayedArray::DelayedArray(query), model = ref, certify = FALSE, refine = TRUE,
        block.cells = 30)
    expect_identical(streamed$n.blocks, 5L)
    diag <- sqrt(sum((apply(in_memory, 2, max) - apply(in_memory, 2, min))^2))
    moved <- sqrt(rowSums((streamed$embedding - in_memory)^2)) / diag
    # each cell's optimisation depends on that cell alone; only a cell at a tipping point between two
    # populations could settle differently from a rounding difference of its start (none measured)
    expect_lt(median(moved), 1e-5)
    expect_lte(mean(moved > 1e-3), 0.1)
    expect_false(isTRUE(all.equal(in_memory, projectRobustUMAP(query, model = ref, certify = FALSE)$embedding)))
})

test_that("an HDF5-backed assay streams with DelayedArray's automatic block size", {
    skip_if_no_python()
    skip_if_not_installed("HDF5Array")
    ref <- delayed_ref()
    query <- example_sce()[, 201:328]
    h5 <- HDF5Array::writeHDF5Array(counts(query), filepath = tempfile(fileext = ".h5"), name = "counts",
        chunkdim = c(nrow(query), 16L))
    expect_s4_class(h5, "HDF5Matrix")
    lazy <- query
    assay(lazy, "counts", withDimnames = FALSE) <- h5
    # a block of at most 2 MB: 12,474 genes x 8-byte doubles is ~100 kB per cell, so ~20 cells per block
    old <- DelayedArray::getAutoBlockSize()
    suppressMessages(DelayedArray::setAutoBlockSize(2e6))
    on.exit(suppressMessages(DelayedArray::setAutoBlockSize(old)), add = TRUE)
    res <- projectRobustUMAP(h5, model = ref, certify = FALSE)
    expect_gt(res$n.blocks, 3L)
    expect_same_projection(projectRobustUMAP(lazy, model = ref), projectRobustUMAP(query, model = ref))
})

test_that("streamed projection reports bad input with the in-memory messages", {
    skip_if_no_python()
    skip_if_not_installed("DelayedArray")
    ref <- delayed_ref()
    query <- counts(example_sce()[, 201:240])
    gene <- metadata(ref)$RobustUMAP$model$manifest$preprocess$genes[1]
    lacking <- DelayedArray::DelayedArray(query[rownames(query) != gene, ])
    expect_error(projectRobustUMAP(lacking, model = ref, block.cells = 10),
        sprintf("lacks 1 of the 300 genes.*'%s'.*missing_genes='zero'", gene))
    zero <- projectRobustUMAP(lacking, model = ref, block.cells = 10, missing.genes = "zero", certify = FALSE)
    expect_equal(zero$embedding, projectRobustUMAP(query[rownames(query) != gene, ], model = ref,
        missing.genes = "zero", certify = FALSE)$embedding, tolerance = 1e-6)
    expect_error(projectRobustUMAP(DelayedArray::DelayedArray(query), model = ref, block.cells = 0),
        "`block.cells` must be a single whole number >= 1, got 0.")
    expect_error(projectRobustUMAP(DelayedArray::DelayedArray(query), model = ref, fraction = -1),
        "`fraction` \\(largest box diagonal.*must be a positive number")
})
