# robinRobustness: Python backend on the MED-MAGMA paper's graph and planted/random graphs; the robin
# backend's plumbing with a test double of robin installed in a temporary library.

planted_adjacency <- function(n = 60, p_in = 0.5, p_out = 0.02, seed = 1) {
    set.seed(seed)
    lab <- rep(1:2, each = n / 2)
    p <- ifelse(outer(lab, lab, "=="), p_in, p_out)
    a <- matrix(runif(n * n) < p, n)
    a[lower.tri(a, diag = TRUE)] <- FALSE
    a <- a | t(a)
    Matrix::Matrix(a * 1, sparse = TRUE)
}

test_that("the Python backend separates a planted partition from its null model, reproducibly", {
    skip_if_no_python()
    adj <- planted_adjacency()
    res <- robinRobustness(adj, method = "louvain", seed = 3, backend = "python")
    expect_s3_class(res, "magmapRobin")
    expect_identical(res$backend, "python")
    expect_equal(dim(res$curve_real), c(10L, 13L))
    expect_identical(colnames(res$curve_real), as.character(seq(0, 60, 5)))
    expect_true(all(res$curve_real[, 1] == 0))
    expect_gt(res$bayes_factor, 20)
    expect_lt(res$auc[["Area real data"]], res$auc[["Area null model"]])
    again <- robinRobustness(adj, method = "louvain", seed = 3, backend = "python")
    expect_identical(again$curve_real, res$curve_real)
    set.seed(11); a <- robinRobustness(adj, backend = "python")
    set.seed(11); b <- robinRobustness(adj, backend = "python")
    expect_identical(a$bayes_factor, b$bayes_factor)
    expect_identical(a$params$seed, b$params$seed)
})

test_that("an Erdos-Renyi graph has a Bayes factor near 0", {
    skip_if_no_python()
    skip_if_not_installed("igraph")
    set.seed(5)
    g <- igraph::sample_gnp(80, 0.08)
    res <- robinRobustness(g, method = "louvain", seed = 5, backend = "python")
    expect_lt(res$bayes_factor, 10)
})

test_that("the MED-MAGMA paper's cell graph gives a Bayes factor in robin's own range", {
    skip_if_no_python()
    skip_if_not_installed("igraph")
    path <- file.path(dirname(shared_data("baron2016_pancreas_cider328")), "..", "robin", "graphs",
        "median_cell_graph.graphml")
    g <- igraph::as.undirected(igraph::read_graph(path, format = "graphml"), mode = "collapse")
    res <- robinRobustness(g, method = "leiden", seed = 1, backend = "python")
    # robin's 10 runs on this graph: 84.6-122.4 (../shared/robin/reference_runs)
    expect_gt(res$bayes_factor, 80)
    expect_lt(res$bayes_factor, 130)
})

test_that("graphs stored in a SingleCellExperiment are found by name and axis", {
    skip_if_no_python()
    sce <- scuttle::mockSCE(ncells = 60, ngenes = 60)
    SingleCellExperiment::colPair(sce, "g") <- planted_adjacency()
    res <- robinRobustness(sce, name = "g", axis = "cells", seed = 2, backend = "python", n.repeats = 3)
    expect_equal(nrow(res$curve_real), 3L)
    expect_error(robinRobustness(sce, name = "nope", backend = "python"), "`name` must name a colPair")
    expect_error(robinRobustness(sce, name = "g", axis = "genes", backend = "python"),
        "rowPair of `x` \\(have: none\\)")
    expect_error(robinRobustness(matrix(1, 2, 3), backend = "python"), "must be square")
    expect_error(robinRobustness(planted_adjacency(), method = "nosuch", backend = "python"), "nosuch")
    expect_error(robinRobustness(planted_adjacency(), n.repeats = 1, backend = "python"),
        "`n.repeats` must be at least 2, got 1")
    expect_error(robinRobustness(planted_adjacency(), backend = "robin"), "needs the robin package")
})

test_that("with robin installed, the robin backend runs it and returns the same structure", {
    skip_if_no_python()
    skip_if_not_installed("igraph")
    skip_if(requireNamespace("robin", quietly = TRUE) && packageVersion("robin") >= "1.0.0", "real robin installed")
    lib <- tempfile("lib")
    dir.create(lib)
    install.packages(test_path("fixtures", "fakerobin"), lib = lib, repos = NULL, type = "source", quiet = TRUE)
    withr::local_libpaths(lib, action = "prefix")
    on.exit(try(unloadNamespace("robin"), silent = TRUE), add = TRUE)
    adj <- planted_adjacency()
    res <- robinRobustness(adj, method = "leiden", seed = 4)   # backend = "auto" picks robin
    expect_identical(res$backend, "robin")
    call <- robin::lastCall()
    expect_identical(call$method, "leiden")
    expect_identical(call$dots$objective_function, "modularity")
    expect_false(call$directed)
    expect_equal(call$n_edges, Matrix::nnzero(adj) / 2)
    # robin sees exactly the input's edges (the driver is the one the Python backend sources too)
    upper <- Matrix::summary(Matrix::triu(adj))
    seen <- t(apply(call$edges, 1, sort))
    expect_equal(seen[order(seen[, 1], seen[, 2]), ], unname(as.matrix(upper[order(upper$i, upper$j), c("i", "j")])))
    expect_equal(unname(res$curve_real[2, 2]), Matrix::nnzero(adj) / 2 / 1000)
    expect_equal(res$bayes_factor, sum(res$curve_null) - sum(res$curve_real))
    expect_identical(names(res$auc), c("Area real data", "Area null model"))
    py <- robinRobustness(adj, method = "leiden", seed = 4, backend = "python")
    expect_identical(names(py), names(res))
    expect_identical(names(res), c("curve_real", "curve_null", "levels", "bayes_factor", "auc", "labels",
        "methods", "measure", "backend", "params"))
    cmp <- robinRobustness(adj, method = "louvain", method2 = "walktrap", seed = 4)
    expect_identical(robin::lastCall()$method2, "walktrap")
    expect_identical(cmp$labels, c("louvain", "walktrap"))
    w <- adj
    w@x <- seq_along(w@x) * 0 + 2.5
    robinRobustness(w, method = "louvain", seed = 4, weighted = TRUE)
    expect_equal(robin::lastCall()$weights, rep(2.5, Matrix::nnzero(adj) / 2))
})
