#' Plot a cell or gene network
#'
#' Draws a graph stored by [runMedMagma()] / [runGmGM()] (or any `colPair`/`rowPair`) with a
#' force-directed layout, vertices coloured by a `colData` (cells) or `rowData` (genes) column.
#'
#' @param x A SingleCellExperiment holding the graph.
#' @param name Name of the `colPair` / `rowPair`.
#' @param axis `"cells"` (colPair) or `"genes"` (rowPair).
#' @param colour_by Name of a `colData` (cells) or `rowData` (genes) column, or `NULL`.
#' @param used.only For gene graphs, draw only the genes the network was learnt on
#'   (`rowData(x)[[paste0(name, ".used")]]`) when that column exists.
#' @param label For gene graphs, label the vertices with the gene names.
#' @param seed Seed of the layout.
#' @return A ggplot object.
#' @examples
#' if (magmapAvailable()) {
#'     sce <- scuttle::logNormCounts(magmapExampleData())
#'     hvg <- order(-apply(logcounts(sce), 1, var))[1:200]
#'     sce <- runGmGM(sce, subset.row = hvg, seed = 1)
#'     plotMagmaNetwork(sce, "GmGM", colour_by = "cell_type")
#' }
#' @export
plotMagmaNetwork <- function(x, name = "MedMagma", axis = c("cells", "genes"), colour_by = NULL,
    used.only = TRUE, label = FALSE, seed = 1L) {
    axis <- match.arg(axis)
    for (pkg in c("igraph", "ggplot2")) {
        if (!requireNamespace(pkg, quietly = TRUE)) stop(sprintf("plotMagmaNetwork() needs the %s package.", pkg),
            call. = FALSE)
    }
    adj <- .graph_adjacency(x, name, axis, weighted = TRUE)
    info <- if (axis == "cells") colData(x) else rowData(x)
    ids <- if (axis == "cells") colnames(x) else rownames(x)
    if (is.null(ids)) ids <- as.character(seq_len(nrow(adj)))
    keep <- rep(TRUE, nrow(adj))
    used_col <- paste0(name, ".used")
    if (axis == "genes" && isTRUE(used.only) && used_col %in% colnames(info)) keep <- as.logical(info[[used_col]])
    adj <- adj[keep, keep, drop = FALSE]
    colour <- NULL
    if (!is.null(colour_by)) {
        if (!colour_by %in% colnames(info)) {
            stop(sprintf("`colour_by` = '%s' is not a %s column (have: %s).", colour_by,
                if (axis == "cells") "colData" else "rowData", paste(colnames(info), collapse = ", ")), call. = FALSE)
        }
        colour <- info[[colour_by]][keep]
    }
    g <- igraph::graph_from_adjacency_matrix(adj, mode = "undirected", weighted = TRUE, diag = FALSE)
    set.seed(seed)
    xy <- igraph::layout_with_fr(g, weights = igraph::E(g)$weight / max(igraph::E(g)$weight))
    nodes <- data.frame(x = xy[, 1], y = xy[, 2], id = ids[keep])
    if (!is.null(colour)) nodes$colour <- colour
    ends <- igraph::ends(g, igraph::E(g), names = FALSE)
    edges <- data.frame(x = xy[ends[, 1], 1], y = xy[ends[, 1], 2], xend = xy[ends[, 2], 1], yend = xy[ends[, 2], 2])
    p <- ggplot2::ggplot() +
        ggplot2::geom_segment(data = edges, ggplot2::aes(x = .data$x, y = .data$y, xend = .data$xend,
            yend = .data$yend),
            colour = "grey60", alpha = 0.25, linewidth = 0.3) +
        ggplot2::theme_void() +
        ggplot2::ggtitle(sprintf("%s %s network (%d vertices, %d edges)", name, sub("s$", "", axis),
            igraph::vcount(g), igraph::ecount(g)))
    if (is.null(colour)) {
        p <- p + ggplot2::geom_point(data = nodes, ggplot2::aes(x = .data$x, y = .data$y), size = 1.2)
    } else {
        p <- p + ggplot2::geom_point(data = nodes, ggplot2::aes(x = .data$x, y = .data$y, colour = .data$colour),
            size = 1.2) +
            ggplot2::labs(colour = colour_by)
    }
    if (isTRUE(label)) p <- p + ggplot2::geom_text(data = nodes, ggplot2::aes(x = .data$x, y = .data$y,
        label = .data$id), size = 2, vjust = -0.6)
    p
}

# ggplot2's .data pronoun, used in aes() above
utils::globalVariables(".data")
