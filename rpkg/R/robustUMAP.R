#' Robust parametric UMAP
#'
#' Trains a neural-network encoder (3 hidden ReLU layers) with UMAP's fuzzy cross-entropy on a kNN
#' graph of the cells, then (unless `robust = FALSE`) continues training with a penalty on CROWN
#' bounds so that perturbing a cell's (normalised) expression moves its embedding little. The fitted
#' model projects new cells without refitting ([projectRobustUMAP()]) and certifies each cell:
#'
#' * its **certified radius**: the largest perturbation (L-infinity, in the model's input units:
#'   z-scores of the training statistics when the model scales genes) for which the embedding
#'   provably stays inside a box whose diagonal is at most `fraction` (default 5 %) of the diagonal
#'   of the whole training embedding. Larger is more stable; it is found by bisection on the CROWN
#'   bound.
#' * its **certified box** at `epsilon`: the region its embedding provably stays in when the
#'   expression is perturbed by up to `epsilon`, reported as the box diagonal relative to the
#'   embedding's diagonal (it is at most `fraction` exactly when the radius is at least `epsilon`).
#'
#' With `top.genes`, it also names, for every cell, the genes that move its embedding most (the
#' gradient of the embedding per input unit, i.e. per training standard deviation of the gene for
#' z-scored input).
#'
#' By default the model is trained on counts: it selects highly variable genes (seurat_v3),
#' normalises library sizes, optionally log-transforms and z-scores, storing these statistics in the
#' model so new cells are processed identically (genes are matched by name). With `dimred`, it
#' trains on existing coordinates (e.g. PCA) instead, used as given.
#'
#' Arguments left `NULL` take the default of the Python class `magmap.RobustUMAP`, so both
#' languages always share one set of defaults; the values used are recorded in
#' `metadata(x)[[name]]$params` (and printed with the model).
#'
#' @param x A genes x cells count matrix (dense or sparse), a SummarizedExperiment /
#'   SingleCellExperiment, or (for `runRobustUMAP`) a Seurat object.
#' @param ncomponents Number of embedding dimensions (`NULL`: Python's default).
#' @param n_neighbors Number of neighbours of the kNN graph (`NULL`: Python's default).
#' @param min_dist UMAP's `min_dist` (`NULL`: Python's default).
#' @param epsilon Radius (L-infinity, model input units) of the certified boxes and gene impact
#'   (`NULL`: Python's default, 0.02). The robust phase trains at its own radius, a multiple of the
#'   phase-1 network's median certified radius.
#' @param robust Run the robust (CROWN-regularised) phase after UMAP training (`NULL`: Python's
#'   default, `TRUE`). It aims at a 3-fold larger median certified radius: 3.1- to 3.4-fold on the
#'   benchmark sets, where it changed 15-nearest-neighbour label accuracy by -0.012 to +0.005 per
#'   seed (median -0.001 on pancreas); where it costs accuracy, small populations pay most (pancreas:
#'   Delta and Epsilon cells); `robust = FALSE` keeps the UMAP-trained map: with the same `seed`,
#'   exactly the map the robust phase starts from.
#' @param ntop Number of highly variable genes used for counts input (`NULL`: Python's default;
#'   `Inf`: all genes).
#' @param log1p Log-transform after library-size normalisation (`NULL`: Python's default).
#' @param n_epochs Training epochs (`NULL`: Python's default, a budget chosen by data size).
#' @param certify Compute the per-cell certified radius and box.
#' @param fraction Largest certified-box diagonal, as a fraction of the training embedding's
#'   diagonal, that defines the certified radius (`NULL`: Python's default, 0.05).
#' @param top.genes Number of genes to report per cell that move its embedding most, or `NULL`
#'   (default) for none.
#' @param transposed `x` is already cells x features (used as given, no count preprocessing).
#' @param seed Seed; `NULL` draws one from R's RNG, so `set.seed()` controls the result.
#' @param device `"auto"` (GPU when present), `"cpu"` or `"cuda"` (`NULL`: Python's default).
#' @param verbose Show progress (R messages and Python progress bars); default: the option
#'   `magmap.verbose`, else `TRUE` in interactive sessions.
#' @param python.args A named list of further arguments of the Python `magmap.RobustUMAP`
#'   (e.g. `robust_weight`, `bound_method`, `hidden_layers`, `batch_size`).
#' @param assay.type Assay with the counts.
#' @param dimred Name of a `reducedDim` to train on instead of an assay.
#' @param n_dimred Number of leading dimensions of `dimred` to use (`NULL`: all).
#' @param name Name of the stored embedding and metadata entry.
#' @param ... Arguments passed to the method for the underlying matrix.
#' @return `calculateRobustUMAP()`: a list with `embedding` (cells x `ncomponents` matrix),
#'   `certified.radius` (per-cell radius), `certified.box` (per-cell box diagonal at `epsilon`
#'   relative to the embedding's diagonal), `box.lower` and `box.upper` (cells x `ncomponents`
#'   corners of the boxes), `certificate` (a summary: radius quantiles, box sizes, `epsilon`,
#'   `fraction`) -- these five `NULL` when `certify = FALSE` --, `top.genes` (a data.frame with one
#'   row per cell and rank: `cell`, `rank`, `gene`, `impact`; `NULL` without `top.genes`) and
#'   `model` (a `RobustUMAPModel`). `runRobustUMAP()` returns `x` with `reducedDim(x, name)`,
#'   `colData(x)[[paste0(name, ".certified_radius")]]`,
#'   `colData(x)[[paste0(name, ".certified_box")]]`, with `top.genes` also
#'   `colData(x)[[paste0(name, ".top_gene")]]` (the gene moving each cell most) and
#'   `colData(x)[[paste0(name, ".top_genes")]]` (a nested `DataFrame` with columns `gene_1`, ...,
#'   `impact_1`, ...), and `metadata(x)[[name]]` = `list(model, params, certificate)`; the model is
#'   stored as raw bytes, so `saveRDS(x)` keeps a working model. For Seurat: a `DimReduc` named
#'   `name` holding the model, certificate and top-gene table in its `misc`, and `meta.data`
#'   columns `name.certified_radius`, `name.certified_box` (and `name.top_gene`).
#' @examples
#' if (magmapAvailable()) {
#'     # a short training budget keeps the example quick; the defaults train longer
#'     sce <- runRobustUMAP(magmapExampleData(), seed = 1, ntop = 300, n_epochs = 30,
#'         top.genes = 3, python.args = list(robust_epochs = 3L))
#'     summary(sce$RobustUMAP.certified_radius)
#'     head(sce$RobustUMAP.top_gene)
#'     scater::plotReducedDim(sce, "RobustUMAP", colour_by = "RobustUMAP.certified_radius")
#' }
#' @seealso [projectRobustUMAP()], [saveRobustUMAP()]
#' @name runRobustUMAP
NULL

#' @rdname runRobustUMAP
#' @export
setGeneric("calculateRobustUMAP", function(x, ...) standardGeneric("calculateRobustUMAP"))

# Arguments R sets, in Python's names; NULL ones are left out so Python's defaults apply. Python checks
# them and its messages name the R arguments (magmap.rbridge.api).
.umap_options <- function(ncomponents, n_neighbors, min_dist, epsilon, robust, ntop, log1p, n_epochs,
    device, verbose, python.args) {
    opts <- list(n_components = .whole(ncomponents), n_neighbors = .whole(n_neighbors), min_dist = min_dist,
        epsilon = epsilon, robust = robust, log1p = log1p, n_epochs = .whole(n_epochs), device = device,
        verbose = isTRUE(verbose))
    opts <- Filter(Negate(is.null), opts)
    if (!is.null(ntop)) {
        # Inf asks for every gene: Python's None, sent as an explicit list element
        opts["n_top_genes"] <- list(if (is.numeric(ntop) && identical(as.double(ntop), Inf)) NULL else .whole(ntop))
    }
    c(opts, python.args)
}

.fit_umap <- function(cells_by_features, feature_names, input_type, seed, certify, fraction, top.genes, options) {
    n_cells <- if (input_type == "counts") ncol(cells_by_features) else nrow(cells_by_features)
    seed <- .resolve_seed(seed)
    .progress(options$verbose, "magmap: robust UMAP on %d cells (%s input, seed %d)", n_cells, input_type, seed)
    x_py <- if (input_type == "counts") {
        .assay_to_py(cells_by_features)
    } else {
        .to_py_matrix(.numeric_matrix(cells_by_features, "dimred"))
    }
    out <- .py_call("robust_umap", x = x_py,
        feature_names = if (is.null(feature_names)) NULL else as.list(feature_names), input_type = input_type,
        seed = seed, certify = isTRUE(certify), options = .to_py(options), fraction = fraction,
        top_genes = top.genes)
    model <- .new_model(out$model, jsonlite::fromJSON(out$manifest_json, simplifyVector = TRUE))
    c(.umap_outputs(out), list(model = model, seed = seed))
}

# The per-cell results of robust_umap / robust_umap_project, under their R names.
.umap_outputs <- function(out) {
    list(embedding = out$embedding, certified.radius = out$certified_radius, certified.box = out$certified_box,
        box.lower = out$box_lower, box.upper = out$box_upper, certificate = out$certificate,
        top.genes = out$top_genes)
}

.numeric_matrix <- function(m, arg) {
    m <- as.matrix(m)
    if (!is.numeric(m)) stop(sprintf("`%s` must be numeric.", arg), call. = FALSE)
    m
}

.finish_embedding <- function(res, cells) {
    dims <- paste0("RobustUMAP", seq_len(ncol(res$embedding)))
    colnames(res$embedding) <- dims
    rownames(res$embedding) <- cells
    for (nm in c("certified.radius", "certified.box")) if (!is.null(res[[nm]])) names(res[[nm]]) <- cells
    for (nm in c("box.lower", "box.upper")) if (!is.null(res[[nm]])) dimnames(res[[nm]]) <- list(cells, dims)
    if (!is.null(res$top.genes) && !is.null(cells)) res$top.genes$cell <- cells[res$top.genes$cell]
    res
}

#' @rdname runRobustUMAP
#' @export
setMethod("calculateRobustUMAP", "ANY", function(x, ncomponents = NULL, n_neighbors = NULL, min_dist = NULL,
    epsilon = NULL, robust = NULL, ntop = NULL, log1p = NULL, n_epochs = NULL, certify = TRUE, fraction = NULL,
    top.genes = NULL, transposed = FALSE, seed = NULL, device = NULL,
    verbose = getOption("magmap.verbose", interactive()), python.args = list()) {
    opts <- .umap_options(ncomponents, n_neighbors, min_dist, epsilon, robust, ntop, log1p, n_epochs,
        device, verbose, python.args)
    if (isTRUE(transposed)) {
        opts$n_top_genes <- NULL
        opts$log1p <- NULL
        res <- .fit_umap(x, colnames(x), "features", seed, certify, fraction, top.genes, opts)
        cells <- rownames(x)
    } else {
        if (anyDuplicated(rownames(x))) stop("`x` has duplicated gene names; make them unique first.", call. = FALSE)
        res <- .fit_umap(x, rownames(x), "counts", seed, certify, fraction, top.genes, opts)
        cells <- colnames(x)
    }
    .finish_embedding(res, cells)
})

#' @rdname runRobustUMAP
#' @export
setMethod("calculateRobustUMAP", "SummarizedExperiment", function(x, ..., assay.type = "counts") {
    calculateRobustUMAP(assay(x, .check_assay(x, assay.type)), ...)
})

.get_dimred <- function(x, dimred, n_dimred) {
    if (!dimred %in% reducedDimNames(x)) {
        stop(sprintf("`dimred` = '%s' is not a reducedDim of `x` (have: %s).", dimred,
            if (length(reducedDimNames(x))) paste(reducedDimNames(x), collapse = ", ") else "none"), call. = FALSE)
    }
    m <- reducedDim(x, dimred)
    if (!is.null(n_dimred)) {
        n_dimred <- .check_count(n_dimred, "n_dimred", 2L)
        if (n_dimred > ncol(m)) stop(sprintf("`n_dimred` = %d but '%s' has %d dimensions.", n_dimred, dimred,
            ncol(m)), call. = FALSE)
        m <- m[, seq_len(n_dimred), drop = FALSE]
    }
    if (is.null(colnames(m))) colnames(m) <- paste0(dimred, seq_len(ncol(m)))
    rownames(m) <- colnames(x)
    m
}

#' @rdname runRobustUMAP
#' @export
setMethod("calculateRobustUMAP", "SingleCellExperiment", function(x, ..., assay.type = "counts", dimred = NULL,
    n_dimred = NULL) {
    if (!is.null(dimred)) {
        return(calculateRobustUMAP(.get_dimred(x, dimred, n_dimred), ..., transposed = TRUE))
    }
    calculateRobustUMAP(assay(x, .check_assay(x, assay.type)), ...)
})

#' @rdname runRobustUMAP
#' @export
runRobustUMAP <- function(x, ..., assay.type = "counts", dimred = NULL, n_dimred = NULL, name = "RobustUMAP") {
    if (inherits(x, "Seurat")) {
        if (!is.null(dimred)) {
            emb <- SeuratObject::Embeddings(x, reduction = dimred)
            if (!is.null(n_dimred)) emb <- emb[, seq_len(.check_count(n_dimred, "n_dimred", 2L)), drop = FALSE]
            res <- calculateRobustUMAP(emb, ..., transposed = TRUE)
        } else {
            res <- calculateRobustUMAP(.seurat_counts(x, assay.type), ...)
        }
        return(.store_umap_seurat(x, res, name))
    }
    if (!is(x, "SingleCellExperiment")) {
        stop("`x` must be a SingleCellExperiment or a Seurat object; use calculateRobustUMAP() for matrices.",
            call. = FALSE)
    }
    res <- calculateRobustUMAP(x, ..., assay.type = assay.type, dimred = dimred, n_dimred = n_dimred)
    input <- if (is.null(dimred)) list(assay.type = assay.type) else list(dimred = dimred, n_dimred = n_dimred)
    .store_umap(x, res, name, input = input)
}

# The tidy top-gene table (cells in order, ranks 1..k) as one row per cell: gene_1..k, impact_1..k.
.top_genes_wide <- function(top, cells) {
    k <- max(top$rank)
    genes <- matrix(top$gene, ncol = k, byrow = TRUE)
    impact <- matrix(top$impact, ncol = k, byrow = TRUE)
    colnames(genes) <- paste0("gene_", seq_len(k))
    colnames(impact) <- paste0("impact_", seq_len(k))
    out <- S4Vectors::DataFrame(genes, impact, check.names = FALSE)
    rownames(out) <- cells
    out
}

# Per-cell results into colData of a SingleCellExperiment (shared by runRobustUMAP and projectRobustUMAP).
.store_cells <- function(x, res, name) {
    reducedDim(x, name) <- res$embedding
    if (!is.null(res$certified.radius)) {
        colData(x)[[paste0(name, ".certified_radius")]] <- unname(res$certified.radius)
        colData(x)[[paste0(name, ".certified_box")]] <- unname(res$certified.box)
    }
    if (!is.null(res$top.genes)) {
        wide <- .top_genes_wide(res$top.genes, colnames(x))
        colData(x)[[paste0(name, ".top_gene")]] <- wide$gene_1
        colData(x)[[paste0(name, ".top_genes")]] <- wide
    }
    x
}

.store_umap <- function(x, res, name, input) {
    x <- .store_cells(x, res, name)
    metadata(x)[[name]] <- list(model = res$model, params = c(res$model$manifest$params, input, list(seed = res$seed)),
        certificate = res$certificate)
    x
}

.store_umap_seurat <- function(x, res, name) {
    assay <- SeuratObject::DefaultAssay(x)
    emb <- res$embedding
    colnames(emb) <- paste0(name, "_", seq_len(ncol(emb)))
    dr <- SeuratObject::CreateDimReducObject(embeddings = emb, key = paste0(name, "_"), assay = assay,
        misc = list(model = res$model, certificate = res$certificate, seed = res$seed, top.genes = res$top.genes))
    x[[name]] <- dr
    if (!is.null(res$certified.radius)) {
        x[[paste0(name, ".certified_radius")]] <- unname(res$certified.radius)
        x[[paste0(name, ".certified_box")]] <- unname(res$certified.box)
    }
    if (!is.null(res$top.genes)) x[[paste0(name, ".top_gene")]] <- res$top.genes$gene[res$top.genes$rank == 1L]
    x
}

# ---- models -----------------------------------------------------------------------------------

.new_model <- function(bytes, manifest) {
    structure(list(bytes = bytes, manifest = manifest), class = "RobustUMAPModel")
}

#' @export
print.RobustUMAPModel <- function(x, ...) {
    m <- x$manifest
    cat(sprintf("RobustUMAPModel (magmap %s): %d inputs -> %d dimensions, %s\n", m$versions$magmap,
        length(m$preprocess$genes), as.integer(m$params$n_components),
        if (isTRUE(m$params$robust)) sprintf("robust (epsilon %.3g)", m$params$epsilon) else "not robust"))
    cat(sprintf("  trained on %s; seed %s; %s bytes\n",
        if (isTRUE(m$preprocess$counts %||% TRUE)) sprintf("counts (%s)", m$preprocess$hvg_flavor) else "features",
        format(m$random_state), format(length(x$bytes), big.mark = ",")))
    invisible(x)
}

`%||%` <- function(a, b) if (is.null(a)) b else a

.as_model <- function(model, name) {
    if (inherits(model, "RobustUMAPModel")) return(model)
    if (is(model, "SingleCellExperiment")) {
        entry <- metadata(model)[[name]]
        if (is.null(entry) || !inherits(entry$model, "RobustUMAPModel")) {
            stop(sprintf(paste0("`model` is a SingleCellExperiment without a RobustUMAP model in ",
                "metadata(model)$%s; run runRobustUMAP() on it first or pass `name`."), name), call. = FALSE)
        }
        return(entry$model)
    }
    if (inherits(model, "Seurat")) {
        m <- SeuratObject::Misc(model[[name]], "model")
        if (!inherits(m, "RobustUMAPModel")) stop(sprintf("the Seurat reduction '%s' holds no RobustUMAP model.",
            name), call. = FALSE)
        return(m)
    }
    stop("`model` must be a RobustUMAPModel, or a SingleCellExperiment/Seurat object that holds one.", call. = FALSE)
}

#' Project new cells with a fitted robust UMAP; save and load models
#'
#' `projectRobustUMAP()` embeds new cells with a model from [runRobustUMAP()] (or from Python's
#' `magmap.RobustUMAP`) without refitting: counts are processed with the training statistics, genes
#' matched by name. `saveRobustUMAP()` and `loadRobustUMAP()` write and read the model file, the
#' same file Python's `RobustUMAP.save()` / `RobustUMAP.load()` use (a zip of a JSON manifest and
#' safetensors weights; loading executes no code).
#'
#' @param x Cells to project: a genes x cells count matrix, a SingleCellExperiment, or a cells x
#'   features matrix with `transposed = TRUE` (for models trained on a `dimred`).
#' @param model A `RobustUMAPModel`, or a SingleCellExperiment / Seurat object holding one under `name`.
#' @param assay.type Assay with the counts of `x`.
#' @param dimred For models trained on coordinates: the `reducedDim` of `x` with the same features.
#' @param n_dimred Number of leading dimensions of `dimred` to use.
#' @param transposed `x` is cells x features.
#' @param missing.genes `"error"` (default) when `x` lacks genes the model uses, or `"zero"` to
#'   treat them as unobserved.
#' @param refine After the network's projection, optimise each cell's position against the frozen
#'   training map as umap-learn's `transform` does (attraction to its nearest training cells,
#'   repulsion from random ones): cells between two populations settle in one, so labels transfer
#'   more accurately, at the cost of a neighbour search and the optimisation. The certified radius
#'   and box still describe the network's output (the starting point), not the refined position.
#'   Each cell's optimisation depends only on that cell, so a `DelayedArray` projected block by block
#'   is refined as it would be in memory.
#' @param certify Compute the certified radius and box of each projected cell.
#' @param epsilon Radius of the certified boxes (`NULL`: the model's `epsilon`).
#' @param fraction,top.genes As in [runRobustUMAP()].
#' @param name Name of the reducedDim / metadata entry (for reading the model from an object, and
#'   for storing the projection).
#' @param block.cells For a `DelayedArray` assay (e.g. HDF5-backed): cells per block. The matrix is
#'   never realised: blocks of cells are read with DelayedArray's block processing ([DelayedArray::colAutoGrid()],
#'   [DelayedArray::blockApply()]) and projected one at a time, with the same results as in memory.
#'   `NULL`: blocks of DelayedArray's automatic block size ([DelayedArray::getAutoBlockSize()]).
#' @param path File path.
#' @return `projectRobustUMAP()`: for a SingleCellExperiment, `x` with `reducedDim(x, name)`,
#'   `colData(x)[[paste0(name, ".certified_radius")]]`, `colData(x)[[paste0(name, ".certified_box")]]`
#'   and (with `top.genes`) `colData(x)[[paste0(name, ".top_gene")]]` and
#'   `colData(x)[[paste0(name, ".top_genes")]]`, as [runRobustUMAP()] stores them; otherwise the list
#'   [calculateRobustUMAP()] returns, without `model` (for a `DelayedArray`, with `n.blocks`, the
#'   number of blocks streamed). `saveRobustUMAP()`: the path, invisibly.
#'   `loadRobustUMAP()`: a `RobustUMAPModel`.
#' @examples
#' if (magmapAvailable()) {
#'     sce <- magmapExampleData()
#'     ref <- runRobustUMAP(sce[, 1:200], seed = 1, ntop = 300, n_epochs = 30,
#'         python.args = list(robust_epochs = 3L))
#'     query <- projectRobustUMAP(sce[, 201:328], model = ref)
#'     path <- tempfile(fileext = ".magmap")
#'     saveRobustUMAP(ref, path)
#'     loadRobustUMAP(path)
#' }
#' @export
projectRobustUMAP <- function(x, model, assay.type = "counts", dimred = NULL, n_dimred = NULL, transposed = FALSE,
    missing.genes = c("error", "zero"), refine = FALSE, certify = TRUE, epsilon = NULL, fraction = NULL,
    top.genes = NULL, name = "RobustUMAP", block.cells = NULL) {
    missing.genes <- match.arg(missing.genes)
    if (!is.null(block.cells)) block.cells <- .check_count(block.cells, "block.cells")
    model <- .as_model(model, name)
    counts_model <- isTRUE(model$manifest$preprocess$counts %||% TRUE)
    is_sce <- is(x, "SingleCellExperiment")
    if (is_sce && !is.null(dimred)) {
        feats <- .get_dimred(x, dimred, n_dimred)
        transposed <- TRUE
    } else if (is(x, "SummarizedExperiment")) {
        feats <- assay(x, .check_assay(x, assay.type))
    } else {
        feats <- x
    }
    if (counts_model == isTRUE(transposed)) {
        stop(if (counts_model) paste("the model was trained on counts: pass a genes x cells count matrix or an",
                "object with `assay.type`, not features.")
            else paste("the model was trained on coordinates (a dimred): pass `dimred` or a cells x features",
                "matrix with transposed = TRUE."),
            call. = FALSE)
    }
    if (isTRUE(transposed)) {
        x_py <- .to_py_matrix(.numeric_matrix(feats, "x"))
        names_py <- if (is.null(colnames(feats))) NULL else as.list(colnames(feats))
        cells <- rownames(feats)
    } else if (is(feats, "DelayedArray")) {
        names_py <- if (is.null(rownames(feats))) NULL else as.list(rownames(feats))
        out <- .project_blocks(feats, model, names_py, certify, missing.genes, epsilon, fraction, top.genes,
            block.cells, refine)
        res <- c(.finish_embedding(.umap_outputs(out), colnames(feats)), list(n.blocks = out$n_blocks))
        return(if (is_sce) .store_cells(x, res, name) else res)
    } else {
        x_py <- .assay_to_py(feats)
        names_py <- if (is.null(rownames(feats))) NULL else as.list(rownames(feats))
        cells <- colnames(feats)
    }
    out <- .py_call("robust_umap_project", model = model$bytes, x = x_py, feature_names = names_py,
        certify = isTRUE(certify), missing_genes = missing.genes, epsilon = epsilon, fraction = fraction,
        top_genes = top.genes, refine = refine)
    res <- .finish_embedding(.umap_outputs(out), cells)
    if (!is_sce) return(res)
    .store_cells(x, res, name)
}

# Project a genes x cells DelayedArray block by block of cells: each block is read (sparse when the
# array is), sent to Python and projected there at once; Python keeps only the per-cell results.
.project_blocks <- function(feats, model, names_py, certify, missing.genes, epsilon, fraction, top.genes, block.cells,
    refine = FALSE) {
    .r_api()  # starts Python and checks versions
    blocks <- tryCatch(reticulate::import("magmap.rbridge.blocks"), error = function(e) {
        stop(sprintf(paste("this magmap Python has no block-wise projection (%s); update it with",
            "magmap::installMagmapPython()."),
            .python_message(e)), call. = FALSE)
    })
    grid <- if (is.null(block.cells)) {
        DelayedArray::colAutoGrid(feats)
    } else {
        DelayedArray::colAutoGrid(feats, ncol = block.cells)
    }
    proj <- tryCatch(blocks$BlockProjector(model$bytes, isTRUE(certify), missing.genes, epsilon, fraction, top.genes,
        refine = isTRUE(refine), n_cells = ncol(feats)), error = function(e) {
        stop(simpleError(.python_message(e), call = quote(projectRobustUMAP())))
    })
    add <- function(block) {
        if (!is.matrix(block)) block <- as(block, "dgCMatrix")  # a sparse block (SparseArraySeed)
        tryCatch(proj$add(.assay_to_py(block), names_py), error = function(e) {
            stop(simpleError(.python_message(e), call = quote(projectRobustUMAP())))
        })
        NULL
    }
    # serially and in order: the blocks are appended in grid order
    DelayedArray::blockApply(feats, add, grid = grid, as.sparse = NA, BPPARAM = NULL)
    .from_py(proj$result())
}

#' @rdname projectRobustUMAP
#' @export
saveRobustUMAP <- function(model, path, name = "RobustUMAP") {
    model <- .as_model(model, name)
    writeBin(model$bytes, path)
    invisible(path)
}

#' @rdname projectRobustUMAP
#' @export
loadRobustUMAP <- function(path) {
    if (!is.character(path) || length(path) != 1L || !file.exists(path)) {
        stop(sprintf("`path` '%s' does not exist.", paste(path, collapse = ",")), call. = FALSE)
    }
    bytes <- readBin(path, "raw", n = file.size(path))
    # Python's model reader parses the manifest: one set of rules (format, format version) for both languages
    manifest <- .py_call("robust_umap_manifest", model = bytes)
    .new_model(bytes, jsonlite::fromJSON(manifest, simplifyVector = TRUE))
}
