#' Robustness of a network's community structure, as robin measures it
#'
#' Perturbs the graph (degree-preserving rewiring of 5, 10, ..., 60 % of its edges, 10 independent
#' repeats per level), re-detects communities and measures how far they move from the unperturbed
#' partition; does the same for a rewired null graph; then compares the two curves with robin's
#' Gaussian-process Bayes factor and the areas under the curves. When the CRAN package robin is
#' installed (and `backend` is `"auto"` or `"robin"`), robin itself runs; otherwise magmap's Python
#' implementation, which reproduces robin's numbers (golden-value tests) and, unlike robin, is
#' reproducible with a seed. Which one ran is recorded in `backend`.
#'
#' @param x An igraph graph, a square sparse or dense adjacency matrix, or a SingleCellExperiment
#'   holding the graph in `colPair(x, name)` (cells) or `rowPair(x, name)` (genes).
#' @param name For a SingleCellExperiment, the name of the `colPair`/`rowPair` (e.g. `"MedMagma"`).
#' @param axis For a SingleCellExperiment, `"cells"` (colPair) or `"genes"` (rowPair).
#' @param method Community detection method: `"louvain"`, `"leiden"` (modularity objective),
#'   `"walktrap"`, `"fastGreedy"`, `"infomap"`, `"labelProp"`, ...
#' @param measure Stability measure: `"vi"`, `"nmi"`, `"split.join"` or `"adjusted.rand"`.
#' @param method2 If given, compare `method` with `method2` on the same graph (robin's
#'   `robinCompare`) instead of the graph with a null model.
#' @param n.repeats Repeats per perturbation level, at least 2 (`NULL`: the Python default, currently 10, as
#'   robin; the robin backend always uses 10).
#' @param weighted Use edge weights (`TRUE`, rewiring that carries weights) or not (`FALSE`).
#' @param seed Seed; `NULL` draws one from R's RNG, so `set.seed()` makes the Python backend reproducible.
#' @param backend `"auto"` (robin if installed, else Python), `"python"` or `"robin"`.
#' @param BPPARAM A BiocParallel parameter object; its number of workers parallelises the repeats.
#' @param verbose Show progress (R messages and a Python progress bar); default: the option
#'   `magmap.verbose`, else `TRUE` in interactive sessions.
#' @param ... Further arguments for the community detection function (Python backend).
#' @return An object of class `magmapRobin`: a list with `curve_real` and `curve_null` (repeats x
#'   levels matrices, columns `"0"`, `"5"`, ..., `"60"`), `bayes_factor` (the number robin's
#'   `robinGPTest` reports: a natural-log marginal-likelihood ratio), `auc` (areas under the two
#'   mean curves, lower = more stable), `labels`, `levels`, `backend` (`"python"` or `"robin"`) and
#'   `params` (seed, method, measure, versions). `plot()` draws the two mean curves.
#' @examples
#' if (magmapAvailable()) {
#'     sce <- scuttle::logNormCounts(magmapExampleData())
#'     hvg <- order(-apply(logcounts(sce), 1, var))[1:200]
#'     sce <- runMedMagma(sce, subset.row = hvg, seed = 1)
#'     res <- robinRobustness(sce, name = "MedMagma", axis = "cells", method = "leiden", seed = 1)
#'     res
#'     plot(res)
#' }
#' @export
robinRobustness <- function(x, name = NULL, axis = c("cells", "genes"), method = "louvain",
    measure = c("vi", "nmi", "split.join", "adjusted.rand"), method2 = NULL, n.repeats = NULL,
    weighted = FALSE, seed = NULL, backend = c("auto", "python", "robin"), BPPARAM = NULL,
    verbose = getOption("magmap.verbose", interactive()), ...) {
    axis <- match.arg(axis)
    measure <- match.arg(measure)
    backend <- match.arg(backend)
    adj <- .graph_adjacency(x, name, axis, weighted)
    seed <- .resolve_seed(seed)
    n_jobs <- if (is.null(BPPARAM)) 1L else as.integer(BiocParallel::bpnworkers(BPPARAM))
    .progress(verbose, "magmap: robustness of a %d-vertex graph (%s, %s)", nrow(adj), method, measure)
    use_robin <- backend == "robin" || (backend == "auto" && requireNamespace("robin", quietly = TRUE))
    if (use_robin) {
        if (!requireNamespace("robin", quietly = TRUE)) {
            stop("backend = \"robin\" needs the robin package (CRAN); use backend = \"python\".", call. = FALSE)
        }
        out <- .robin_in_r(adj, method, measure, method2, weighted, seed, BPPARAM)
    } else {
        out <- .py_call("robin", graph = .to_py(adj), method = method, measure = measure,
            n_repeats = n.repeats, weighted = if (isTRUE(weighted)) TRUE else NULL, seed = seed,
            n_jobs = n_jobs, verbose = isTRUE(verbose), method_args = .to_py(list(...)), method2 = method2)
        out$levels <- as.numeric(out$levels)
    }
    .new_robin(out, seed)
}

# One structure whichever backend ran; backend-specific details go into params.
.new_robin <- function(out, seed) {
    cols <- as.character(out$levels)
    colnames(out$curve_real) <- colnames(out$curve_null) <- cols
    labels <- unlist(out$labels)
    core <- c("curve_real", "curve_null", "levels", "bayes_factor", "auc", "labels", "methods", "measure",
        "backend", "params")
    params <- c(out$params, out[setdiff(names(out), core)])
    params$seed <- seed
    structure(list(curve_real = out$curve_real, curve_null = out$curve_null, levels = as.numeric(out$levels),
        bayes_factor = as.numeric(out$bayes_factor),
        auc = stats::setNames(as.numeric(unlist(out$auc)), paste("Area", labels)), labels = labels,
        methods = unlist(out$methods), measure = out$measure, backend = out$backend, params = params),
        class = "magmapRobin")
}

.graph_adjacency <- function(x, name, axis, weighted) {
    if (is(x, "SingleCellExperiment")) {
        getter <- if (axis == "cells") SingleCellExperiment::colPairNames else SingleCellExperiment::rowPairNames
        have <- getter(x)
        if (is.null(name) || !name %in% have) {
            stop(sprintf("`name` must name a %s of `x` (have: %s).",
                if (axis == "cells") "colPair" else "rowPair",
                if (length(have)) paste(have, collapse = ", ") else "none"), call. = FALSE)
        }
        adj <- if (axis == "cells") colPair(x, name, asSparse = TRUE) else rowPair(x, name, asSparse = TRUE)
    } else if (is(x, "igraph")) {
        if (!requireNamespace("igraph", quietly = TRUE)) stop("the igraph package is needed for igraph input.",
            call. = FALSE)
        if (igraph::is_directed(x)) stop("`x` is a directed graph; robustness needs an undirected graph.",
            call. = FALSE)
        attr <- if (isTRUE(weighted) && "weight" %in% igraph::edge_attr_names(x)) "weight" else NULL
        adj <- igraph::as_adjacency_matrix(x, attr = attr, sparse = TRUE)
    } else if (is.matrix(x) || is(x, "Matrix")) {
        adj <- x
    } else {
        stop("`x` must be an igraph graph, an adjacency matrix or a SingleCellExperiment.", call. = FALSE)
    }
    if (nrow(adj) != ncol(adj)) stop(sprintf("the adjacency matrix must be square, got %d x %d.", nrow(adj),
        ncol(adj)), call. = FALSE)
    adj <- as(as(as(adj, "CsparseMatrix"), "generalMatrix"), "dMatrix")
    if (!isTRUE(weighted)) adj@x[] <- 1
    adj
}

# The real robin, when installed, through the one driver shared with the Python package
# (pybridge/magmap/rbridge/robin_driver.R, carried in inst/python).
.robin_in_r <- function(adj, method, measure, method2, weighted, seed, BPPARAM) {
    upper <- Matrix::summary(Matrix::triu(adj))
    run <- .robin_driver()
    run(edges = cbind(upper$i, upper$j), n = nrow(adj), weights = if (isTRUE(weighted)) upper$x else NULL,
        method = method, measure = measure, method2 = method2, seed = seed, BPPARAM = BPPARAM)
}

.robin_driver <- function() {
    if (is.null(.magmap_state$robin_driver)) {
        path <- system.file("python", "pybridge", "magmap", "rbridge", "robin_driver.R", package = "magmap")
        if (!nzchar(path)) {
            stop("the robin driver is missing from the installed magmap package; reinstall magmap.", call. = FALSE)
        }
        env <- new.env(parent = baseenv())
        sys.source(path, envir = env)
        .magmap_state$robin_driver <- env$magmap_robin_run
    }
    .magmap_state$robin_driver
}

#' @rdname robinRobustness
#' @param y Ignored.
#' @export
plot.magmapRobin <- function(x, y, ...) {
    m1 <- colMeans(x$curve_real)
    m2 <- colMeans(x$curve_null)
    lv <- x$levels
    graphics::matplot(lv, cbind(m1, m2), type = "b", pch = 19, lty = 1, col = c("#1b9e77", "#d95f02"),
        xlab = "Percentage of perturbation", ylab = "Measure", ylim = range(0, 1, m1, m2),
        main = sprintf("Robin plot (%s); Bayes factor %.1f", x$backend, x$bayes_factor), ...)
    graphics::legend("topleft", legend = x$labels, col = c("#1b9e77", "#d95f02"), lty = 1, pch = 19, bty = "n")
    invisible(x)
}

#' @export
print.magmapRobin <- function(x, ...) {
    cat(sprintf("magmap robustness (%s backend): %s, measure %s\n", x$backend,
        paste(unlist(x$methods), collapse = " vs "), x$measure))
    cat(sprintf("  Bayes factor (ln scale, as robin): %.3f\n", x$bayes_factor))
    cat(sprintf("  %s: %.4f\n", names(x$auc), x$auc), sep = "")
    invisible(x)
}
