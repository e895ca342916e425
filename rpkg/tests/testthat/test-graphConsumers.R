# R consumers of the cell graphs: igraph on colPair(sce, name), Seurat::FindClusters on the Graph that
# runMedMagma/runGmGM store in a Seurat object.
#
# Agreement floors (adjusted Rand index with the cell types, chance ~0): measured on these graphs and on
# 10 copies with 3 % of their edges removed at random, clustered by igraph's Louvain and Leiden and by
# Seurat's Louvain (minima MedMagma 0.46, GmGM 0.41), less a margin, so that small differences of the
# graph on other CPUs and BLAS libraries still pass.
ari_floor <- c(MedMagma = 0.40, GmGM = 0.35)

# a sparse matrix without dimnames (Matrix's unname() prints a message for every call)
bare <- function(m) {
    m <- as(m, "generalMatrix")
    dimnames(m) <- list(NULL, NULL)
    m
}

adjusted_rand <- function(a, b) {
    igraph::compare(as.integer(factor(a)), as.integer(factor(b)), method = "adjusted.rand")
}

consumer_data <- local({
    cache <- NULL
    function() {
        if (is.null(cache)) {
            sce <- scuttle::logNormCounts(example_sce())
            lc <- SingleCellExperiment::logcounts(sce)
            hvg <- order(-(Matrix::rowMeans(lc^2) - Matrix::rowMeans(lc)^2))[1:300]
            sce <- runMedMagma(sce, subset.row = hvg, k = 10, seed = 1, verbose = FALSE)
            sce <- runGmGM(sce, subset.row = hvg, k = 10, seed = 1)
            cache <<- list(sce = sce, hvg = hvg)
        }
        cache
    }
})

test_that("igraph reads colPair(sce, name) as a weighted graph and its communities follow the cell types", {
    skip_if_no_python()
    skip_if_not_installed("igraph")
    d <- consumer_data()
    for (nm in names(ari_floor)) {
        A <- colPair(d$sce, nm, asSparse = TRUE)
        expect_true(Matrix::isSymmetric(A))
        expect_true(all(Matrix::diag(A) == 0))
        g <- igraph::graph_from_adjacency_matrix(A, mode = "undirected", weighted = TRUE)
        expect_equal(igraph::vcount(g), ncol(d$sce))
        expect_equal(igraph::ecount(g), Matrix::nnzero(A) / 2)
        # every weight comes back unchanged
        back <- igraph::as_adjacency_matrix(g, attr = "weight", sparse = TRUE)
        expect_equal(bare(back), bare(A), tolerance = 0)
        set.seed(1)
        louvain <- igraph::membership(igraph::cluster_louvain(g))
        set.seed(1)
        leiden <- igraph::membership(igraph::cluster_leiden(g, objective_function = "modularity", n_iterations = -1))
        expect_gt(adjusted_rand(louvain, d$sce$cell_type), ari_floor[[nm]])
        expect_gt(adjusted_rand(leiden, d$sce$cell_type), ari_floor[[nm]])
    }
})

test_that("Seurat::FindClusters(graph.name =) clusters the MedMagma and GmGM graphs of a Seurat object", {
    skip_if_no_python()
    skip_if_not_installed("Seurat")
    d <- consumer_data()
    counts <- SingleCellExperiment::counts(d$sce)
    seu <- suppressWarnings(SeuratObject::CreateSeuratObject(counts = counts))
    seu <- Seurat::NormalizeData(seu, verbose = FALSE)
    seu <- runMedMagma(seu, subset.row = d$hvg, k = 10, seed = 1, verbose = FALSE)
    seu <- runGmGM(seu, subset.row = d$hvg, k = 10, seed = 1)
    # the Seurat Graph holds exactly the graph a SingleCellExperiment gets from the same counts and seed
    expect_equal(bare(as(seu@graphs[["RNA_MedMagma"]], "dgCMatrix")), bare(colPair(d$sce, "MedMagma", asSparse = TRUE)),
        tolerance = 0)
    for (nm in names(ari_floor)) {
        graph <- paste0("RNA_", nm)
        expect_identical(colnames(seu@graphs[[graph]]), colnames(seu))
        clustered <- Seurat::FindClusters(seu, graph.name = graph, random.seed = 1, verbose = FALSE)
        cl <- clustered[[paste0(graph, "_res.0.8"), drop = TRUE]]
        expect_length(cl, ncol(seu))
        expect_false(anyNA(cl))
        expect_identical(unname(Seurat::Idents(clustered)), unname(cl))
        expect_gt(nlevels(cl), 1L)
        expect_gt(adjusted_rand(cl, d$sce$cell_type), ari_floor[[nm]])
    }
})
