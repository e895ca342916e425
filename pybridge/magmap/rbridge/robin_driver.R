# The one R driver for the CRAN package robin, used by both front doors: magmap's Python code sources it
# through rpy2 (backend = "robin"), and the R package sources the copy it carries in inst/python.
# It takes a plain edge list so neither side needs the other's graph objects.

# An undirected igraph graph from 1-based vertex pairs, given as an m x 2 matrix or as a vector of
# consecutive pairs (from1, to1, from2, to2, ...).
magmap_robin_graph <- function(edges, n, weights = NULL) {
    g <- igraph::make_empty_graph(n = n, directed = FALSE)
    pairs <- if (is.matrix(edges)) as.vector(t(edges)) else as.vector(edges)
    if (length(pairs)) g <- igraph::add_edges(g, as.integer(pairs))
    if (!is.null(weights)) igraph::E(g)$weight <- as.numeric(weights)
    g
}

# random() + robinRobust() (or robinCompare() when method2 is given) + robinGPTest() + robinAUC(),
# returned in the structure both front doors report.
magmap_robin_run <- function(edges, n, weights, method, measure, method2 = NULL, type = "independent",
                             seed = NULL, BPPARAM = NULL) {
    g <- magmap_robin_graph(edges, n, weights)
    if (!is.null(seed)) set.seed(seed)
    extra <- if (identical(method, "leiden")) list(objective_function = "modularity") else list()
    if (!is.null(BPPARAM)) extra$BPPARAM <- BPPARAM
    if (is.null(method2)) {
        res <- do.call(robin::robinRobust, c(list(graph = g, graphRandom = robin::random(graph = g),
            method = method, measure = measure, type = type), extra))
        real <- res$Mean
        null <- res$MeanRandom
        labels <- c("real data", "null model")
    } else {
        extra$objective_function <- NULL
        res <- do.call(robin::robinCompare, c(list(graph = g, method1 = method, method2 = method2,
            measure = measure, type = type), extra))
        real <- res$Mean1
        null <- res$Mean2
        labels <- c(method, method2)
    }
    list(curve_real = unname(as.matrix(real)), curve_null = unname(as.matrix(null)),
        levels = seq(0, 60, by = 5), bayes_factor = as.numeric(robin::robinGPTest(res)),
        auc = as.numeric(unlist(robin::robinAUC(res))), labels = labels, backend = "robin",
        methods = c(method, method2), measure = measure,
        params = list(robin = as.character(utils::packageVersion("robin"))))
}
