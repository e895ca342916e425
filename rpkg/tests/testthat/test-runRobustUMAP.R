# runRobustUMAP / projectRobustUMAP / saveRobustUMAP / loadRobustUMAP, and models crossing languages.

# Small, fast settings: the quality of the embedding is tested in Python (tests/test_umap_quality.py).
fast_args <- list(ntop = 300L, n_epochs = 30L, python.args = list(robust_epochs = 3L, robust_cells = 16L))

umap_ref <- local({
    cache <- NULL
    function() {
        if (is.null(cache)) {
            sce <- example_sce()
            cache <<- do.call(runRobustUMAP, c(list(sce[, 1:250], seed = 5, n_neighbors = 10), fast_args))
        }
        cache
    }
})

test_that("runRobustUMAP stores the embedding, certified boxes and a model that survives saveRDS", {
    skip_if_no_python()
    ref <- umap_ref()
    emb <- reducedDim(ref, "RobustUMAP")
    expect_equal(dim(emb), c(250L, 2L))
    expect_identical(rownames(emb), colnames(ref))
    box <- ref$RobustUMAP.certified_box
    expect_true(all(is.finite(box) & box > 0))
    radius <- ref$RobustUMAP.certified_radius
    expect_true(all(is.finite(radius) & radius > 0))
    # the box at epsilon is within 5 % of the embedding's diagonal exactly when the radius reaches epsilon
    eps <- metadata(ref)$RobustUMAP$model$manifest$params$epsilon
    expect_identical(radius >= eps * (1 - 1e-6), box <= 0.05)
    cert <- metadata(ref)$RobustUMAP$certificate
    expect_equal(cert$radius_median, median(radius), tolerance = 1e-12)
    expect_identical(cert$fraction, 0.05)
    entry <- metadata(ref)$RobustUMAP
    expect_s3_class(entry$model, "RobustUMAPModel")
    expect_identical(entry$params$seed, 5L)
    expect_identical(as.integer(entry$params$n_neighbors), 10L)
    expect_identical(entry$model$manifest$format, "magmap.RobustUMAP")
    f <- tempfile(fileext = ".rds")
    saveRDS(ref, f)
    restored <- readRDS(f)
    q1 <- projectRobustUMAP(example_sce()[, 251:300], model = ref)
    q2 <- projectRobustUMAP(example_sce()[, 251:300], model = restored)
    expect_identical(reducedDim(q1, "RobustUMAP"), reducedDim(q2, "RobustUMAP"))
    # projecting the training cells gives back the training embedding
    back <- projectRobustUMAP(ref, model = ref, certify = FALSE)
    expect_equal(reducedDim(back, "RobustUMAP"), emb, tolerance = 1e-4)
})

test_that("the same seed gives the same embedding; set.seed() controls seed = NULL", {
    skip_if_no_python()
    sce <- example_sce()[, 1:120]
    a <- do.call(calculateRobustUMAP, c(list(sce, seed = 9, n_neighbors = 8, certify = FALSE), fast_args))
    b <- do.call(calculateRobustUMAP, c(list(sce, seed = 9, n_neighbors = 8, certify = FALSE), fast_args))
    expect_identical(a$embedding, b$embedding)
    set.seed(3); c1 <- do.call(calculateRobustUMAP, c(list(sce, n_neighbors = 8, certify = FALSE), fast_args))
    set.seed(3); c2 <- do.call(calculateRobustUMAP, c(list(sce, n_neighbors = 8, certify = FALSE), fast_args))
    expect_identical(c1$embedding, c2$embedding)
    expect_identical(c1$model$manifest$random_state, c2$model$manifest$random_state)
})

test_that("a model saved in R loads in Python and projects the same embedding, and the other way round", {
    skip_if_no_python()
    ref <- umap_ref()
    query <- example_sce()[, 251:328]
    f <- tempfile(fileext = ".magmap")
    saveRobustUMAP(ref, f)
    expect_identical(readBin(f, "raw", file.size(f)), metadata(ref)$RobustUMAP$model$bytes)
    py <- reticulate::py_run_string(paste(
        "import numpy as np, anndata as ad, pandas as pd, scipy.sparse as sp, magmap",
        "def project(path, x, i, p, nrow, ncol, genes, out_path, refine=False):",
        "    m = magmap.RobustUMAP.load(path)",
        "    X = sp.csc_matrix((np.frombuffer(bytes(x), '<f8'), np.frombuffer(bytes(i), '<i4'),",
        "                       np.frombuffer(bytes(p), '<i4')), shape=(nrow, ncol)).T.tocsr()",
        "    a = ad.AnnData(X=X, var=pd.DataFrame(index=list(genes)))",
        "    m.save(out_path)",
        "    return bytearray(np.ascontiguousarray(m.transform(a, refine=refine), dtype='<f8').tobytes())",
        sep = "\n"))
    counts <- SingleCellExperiment::counts(query)
    g <- tempfile(fileext = ".magmap")
    raw_emb <- py$project(f, writeBin(counts@x, raw()), writeBin(counts@i, raw()), writeBin(counts@p, raw()),
        nrow(counts), ncol(counts), as.list(rownames(counts)), g)
    py_emb <- matrix(readBin(raw_emb, "double", n = 2 * ncol(counts)), ncol = 2, byrow = TRUE)
    r_emb <- reducedDim(projectRobustUMAP(query, model = ref, certify = FALSE), "RobustUMAP")
    expect_equal(unname(r_emb), py_emb, tolerance = 1e-6)
    # the file Python wrote back (Python save of an R-trained model) projects identically in R
    m2 <- loadRobustUMAP(g)
    expect_identical(m2$bytes, metadata(ref)$RobustUMAP$model$bytes)
    expect_equal(reducedDim(projectRobustUMAP(query, model = m2, certify = FALSE), "RobustUMAP"), r_emb)
    # refine = TRUE: the same optimisation on the training map from either language
    raw_ref <- py$project(f, writeBin(counts@x, raw()), writeBin(counts@i, raw()), writeBin(counts@p, raw()),
        nrow(counts), ncol(counts), as.list(rownames(counts)), g, refine = TRUE)
    r_ref <- reducedDim(projectRobustUMAP(query, model = ref, certify = FALSE, refine = TRUE), "RobustUMAP")
    expect_equal(unname(r_ref), matrix(readBin(raw_ref, "double", n = 2 * ncol(counts)), ncol = 2, byrow = TRUE),
        tolerance = 1e-6)
    expect_false(isTRUE(all.equal(r_ref, r_emb)))
})

test_that("a model trained on a reducedDim projects cells given the same coordinates", {
    skip_if_no_python()
    sce <- example_sce()
    set.seed(1)
    pcs <- matrix(rnorm(ncol(sce) * 10), ncol = 10, dimnames = list(NULL, paste0("PC", 1:10)))
    pcs[, 1] <- pcs[, 1] + 4 * as.integer(factor(sce$cell_type))
    reducedDim(sce, "PCA") <- pcs
    out <- runRobustUMAP(sce, dimred = "PCA", n_dimred = 5, seed = 2, n_epochs = 30L,
        python.args = list(robust_epochs = 3L))
    expect_equal(dim(reducedDim(out, "RobustUMAP")), c(ncol(sce), 2L))
    expect_identical(metadata(out)$RobustUMAP$params$dimred, "PCA")
    m <- metadata(out)$RobustUMAP$model
    expect_false(m$manifest$preprocess$counts)
    proj <- projectRobustUMAP(sce, model = m, dimred = "PCA", n_dimred = 5, certify = FALSE)
    expect_equal(reducedDim(proj, "RobustUMAP"), reducedDim(out, "RobustUMAP"), tolerance = 1e-4)
    expect_error(projectRobustUMAP(sce, model = m), "trained on coordinates")
    expect_error(runRobustUMAP(sce, dimred = "TSNE"), "`dimred` = 'TSNE' is not a reducedDim")
    expect_error(runRobustUMAP(sce, dimred = "PCA", n_dimred = 50), "`n_dimred` = 50")
})

test_that("the embedding works with scater::plotReducedDim", {
    skip_if_no_python()
    skip_if_not_installed("scater")
    p <- scater::plotReducedDim(umap_ref(), "RobustUMAP", colour_by = "cell_type")
    expect_s3_class(p, "ggplot")
})

test_that("runRobustUMAP works on a Seurat object", {
    skip_if_no_python()
    skip_if_not_installed("SeuratObject")
    sce <- example_sce()[, 1:120]
    seu <- suppressWarnings(SeuratObject::CreateSeuratObject(counts = SingleCellExperiment::counts(sce)))
    seu <- do.call(runRobustUMAP, c(list(seu, seed = 1, n_neighbors = 8, top.genes = 2), fast_args))
    expect_s4_class(seu[["RobustUMAP"]], "DimReduc")
    expect_equal(dim(SeuratObject::Embeddings(seu, "RobustUMAP")), c(120L, 2L))
    expect_s3_class(SeuratObject::Misc(seu[["RobustUMAP"]], "model"), "RobustUMAPModel")
    expect_true(all(c("RobustUMAP.certified_box", "RobustUMAP.certified_radius") %in% colnames(seu[[]])))
    misc <- SeuratObject::Misc(seu[["RobustUMAP"]])
    expect_identical(unname(seu$RobustUMAP.top_gene), misc$top.genes$gene[misc$top.genes$rank == 1L])
    expect_identical(misc$certificate$n_radius_zero, 0)
    proj <- projectRobustUMAP(example_sce()[, 121:140], model = seu)
    expect_equal(dim(reducedDim(proj, "RobustUMAP")), c(20L, 2L))
})

test_that("bad input and mismatched genes give errors naming the argument", {
    skip_if_no_python()
    ref <- umap_ref()
    sce <- example_sce()
    expect_error(runRobustUMAP(sce, assay.type = "logcounts"), "`assay.type` = 'logcounts' is not an assay")
    expect_error(runRobustUMAP(sce[, 1:10], n_neighbors = 15), "has 10 cells but `n_neighbors=15` needs at least 16")
    # Python checks these; its messages name the R arguments (ncomponents, ntop, top.genes)
    expect_error(runRobustUMAP(sce, fraction = 0), "`fraction` \\(largest box diagonal.*must be a positive number")
    expect_error(runRobustUMAP(sce, top.genes = 0), "`top.genes` must be at least 1, got 0")
    expect_error(runRobustUMAP(sce, top.genes = 2.5), "`top.genes` must be an integer, got 2.5")
    expect_error(runRobustUMAP(sce, log1p = "yes"), "`log1p` must be True or False, got 'yes'")
    expect_error(runRobustUMAP(sce, robust = NA), "`robust` must be True or False")
    expect_error(runRobustUMAP(sce, min_dist = -1), "`min_dist` must be a finite number")
    expect_error(runRobustUMAP(sce, epsilon = c(0.1, 0.2)), "`epsilon` must be a single number")
    expect_error(projectRobustUMAP(sce[, 1:5], model = ref, epsilon = -1), "`epsilon` must be a finite number")
    expect_error(projectRobustUMAP(sce[, 1:5], model = ref, top.genes = 0), "`top.genes` must be at least 1")
    expect_error(runRobustUMAP(sce, ncomponents = 0), "`ncomponents` must be at least 1, got 0")
    expect_error(runRobustUMAP(sce, ntop = 1), "`ntop` must be at least 2, got 1")
    expect_error(runRobustUMAP(sce, n_epochs = 1.5), "`n_epochs` must be an integer, got 1.5")
    expect_error(runRobustUMAP(SingleCellExperiment::counts(sce)), "use calculateRobustUMAP\\(\\) for matrices")
    renamed <- sce[, 251:260]
    rownames(renamed) <- paste0("x", rownames(renamed))
    expect_error(projectRobustUMAP(renamed, model = ref), "lacks .* genes the model was trained on")
    ok <- projectRobustUMAP(renamed, model = ref, missing.genes = "zero", certify = FALSE)
    expect_equal(dim(reducedDim(ok, "RobustUMAP")), c(10L, 2L))
    expect_error(projectRobustUMAP(sce, model = sce), "without a RobustUMAP model")
    bad <- tempfile()
    writeLines("not a model", bad)
    expect_error(loadRobustUMAP(bad), "not a magmap RobustUMAP model")
    expect_error(loadRobustUMAP("/no/such/file"), "does not exist")
    neg <- SingleCellExperiment::counts(sce)[, 1:50]
    neg[1, 1] <- -3
    expect_error(calculateRobustUMAP(neg, n_neighbors = 5), "negative values")
})

test_that("a model trained in Python projects cells in R exactly as Python does", {
    skip_if_no_python()
    sce <- example_sce()
    counts <- SingleCellExperiment::counts(sce)
    f <- tempfile(fileext = ".magmap")
    py <- reticulate::py_run_string(paste(
        "import numpy as np, magmap",
        "def train_and_project(path):",
        "    a = magmap.datasets.baron2016_pancreas()",
        "    m = magmap.RobustUMAP(random_state=3, n_top_genes=300, n_epochs=30, robust_epochs=3, robust_cells=16,",
        "                          n_neighbors=10, verbose=False)",
        "    m.fit(a[:200])",
        "    m.save(path)",
        "    return bytearray(np.ascontiguousarray(m.transform(a[200:]), dtype='<f8').tobytes())", sep = "\n"))
    raw_emb <- py$train_and_project(f)
    py_emb <- matrix(readBin(raw_emb, "double", n = 2 * 128), ncol = 2, byrow = TRUE)
    model <- loadRobustUMAP(f)
    expect_identical(as.integer(model$manifest$random_state), 3L)
    r_emb <- projectRobustUMAP(sce[, 201:328], model = model, certify = FALSE)
    expect_equal(unname(reducedDim(r_emb, "RobustUMAP")), py_emb, tolerance = 1e-6)
})

test_that("arguments left NULL take Python's defaults", {
    skip_if_no_python()
    py_defaults <- reticulate::import("magmap")$RobustUMAP()$get_params()
    params <- metadata(umap_ref())$RobustUMAP$model$manifest$params
    for (nm in c("n_components", "min_dist", "epsilon", "log1p", "robust", "spread", "loss", "bound_method")) {
        expect_identical(params[[nm]], py_defaults[[nm]], label = nm)
    }
    expect_identical(as.integer(params$n_top_genes), 300L)  # set in fast_args
    for (arg in c("ncomponents", "n_neighbors", "min_dist", "epsilon", "robust", "ntop", "log1p", "fraction",
        "device")) {
        expect_null(formals(getMethod("calculateRobustUMAP", "ANY"))[[arg]], label = arg)
    }
    # ntop = Inf keeps every gene
    all_genes <- do.call(calculateRobustUMAP, c(list(example_sce()[1:200, 1:60], seed = 1, n_neighbors = 5,
        certify = FALSE, ntop = Inf), fast_args[-1]))
    expect_length(all_genes$model$manifest$preprocess$genes, 200L)
})

test_that("the certified radius is the same in R and Python, for the same model and for the same data and seed", {
    skip_if_no_python()
    ref <- umap_ref()
    counts <- SingleCellExperiment::counts(example_sce())
    py <- reticulate::py_run_string(paste(
        "import numpy as np, anndata as ad, pandas as pd, scipy.sparse as sp, magmap",
        "def radius(blob, x, i, p, nrow, ncol, genes):",
        "    m = magmap.RobustUMAP.from_bytes(bytes(blob))",
        "    X = sp.csc_matrix((np.frombuffer(bytes(x), '<f8'), np.frombuffer(bytes(i), '<i4'),",
        "                       np.frombuffer(bytes(p), '<i4')), shape=(nrow, ncol)).T.tocsr()",
        "    a = ad.AnnData(X=X, var=pd.DataFrame(index=list(genes)))",
        "    return bytearray(np.ascontiguousarray(m.certify(a).radius, dtype='<f8').tobytes())",
        "def fit_radius(n_cells, seed):",
        "    a = magmap.datasets.baron2016_pancreas()[:n_cells]",
        "    m = magmap.RobustUMAP(random_state=seed, n_top_genes=300, n_epochs=30, robust_epochs=3,",
        "                          robust_cells=16, n_neighbors=8, verbose=False).fit(a)",
        "    return bytearray(np.ascontiguousarray(m.certify(a).radius, dtype='<f8').tobytes())", sep = "\n"))
    sub <- counts[, 1:250]
    raw <- py$radius(metadata(ref)$RobustUMAP$model$bytes, writeBin(sub@x, raw()), writeBin(sub@i, raw()),
        writeBin(sub@p, raw()), nrow(sub), ncol(sub), as.list(rownames(sub)))
    expect_equal(unname(ref$RobustUMAP.certified_radius), readBin(raw, "double", n = 250L), tolerance = 1e-12)
    # the same cells and seed, fitted once from R and once in Python; both sides take certify()'s radii
    # (its bisection starts at the box radius, so certified_radius() agrees only to its rtol)
    r_fit <- do.call(calculateRobustUMAP, c(list(example_sce()[, 1:120], seed = 9, n_neighbors = 8), fast_args))
    py_radius <- readBin(py$fit_radius(120L, 9L), "double", n = 120L)
    expect_equal(unname(r_fit$certified.radius), py_radius, tolerance = 1e-6)
})

test_that("top genes per cell are returned, stored and projected", {
    skip_if_no_python()
    sce <- example_sce()
    res <- do.call(calculateRobustUMAP, c(list(sce[, 1:120], seed = 2, n_neighbors = 8, top.genes = 4), fast_args))
    top <- res$top.genes
    expect_identical(colnames(top), c("cell", "rank", "gene", "impact"))
    expect_identical(nrow(top), 120L * 4L)
    expect_identical(top$cell[1:4], rep(colnames(sce)[1], 4))
    expect_identical(top$rank[1:4], 1:4)
    expect_true(all(top$gene %in% res$model$manifest$preprocess$genes))
    expect_true(all(diff(matrix(top$impact, nrow = 4)) <= 0))  # ranked by impact within each cell
    expect_equal(dim(res$box.lower), c(120L, 2L))
    expect_true(all(res$box.lower <= res$embedding + 1e-5 & res$embedding <= res$box.upper + 1e-5))
    ref <- umap_ref()
    q <- projectRobustUMAP(sce[, 251:270], model = ref, top.genes = 2, epsilon = 0.01, fraction = 0.1)
    wide <- q$RobustUMAP.top_genes
    expect_s4_class(wide, "DataFrame")
    expect_identical(colnames(wide), c("gene_1", "gene_2", "impact_1", "impact_2"))
    expect_identical(q$RobustUMAP.top_gene, wide$gene_1)
    expect_true(all(wide$impact_1 >= wide$impact_2))
    expect_identical(rownames(wide), colnames(q))
    # a box at epsilon within 10 % of the diagonal exactly when the radius (for 10 %) reaches epsilon
    expect_identical(q$RobustUMAP.certified_radius >= 0.01 * (1 - 1e-6), q$RobustUMAP.certified_box <= 0.1)
    # projecting the training cells gives back the stored certificates
    back <- projectRobustUMAP(ref, model = ref)
    expect_equal(back$RobustUMAP.certified_radius, ref$RobustUMAP.certified_radius, tolerance = 1e-6)
    plain <- projectRobustUMAP(sce[, 251:260], model = ref, certify = FALSE, transposed = FALSE)
    expect_null(plain$RobustUMAP.certified_radius)
    listed <- projectRobustUMAP(SingleCellExperiment::counts(sce)[, 251:260], model = ref, top.genes = 1)
    expect_identical(names(listed$certified.radius), colnames(sce)[251:260])
    expect_identical(listed$top.genes$cell, colnames(sce)[251:260])
})

test_that("loadRobustUMAP reads the manifest through Python's reader, format version included", {
    skip_if_no_python()
    f <- tempfile(fileext = ".magmap")
    saveRobustUMAP(umap_ref(), f)
    newer <- tempfile(fileext = ".magmap")
    py <- reticulate::py_run_string(paste(
        "import json, zipfile",
        "def bump(src, dst):",
        "    with zipfile.ZipFile(src) as zi, zipfile.ZipFile(dst, 'w') as zo:",
        "        for name in zi.namelist():",
        "            data = zi.read(name)",
        "            if name == 'manifest.json':",
        "                m = json.loads(data)",
        "                m['format_version'] = 99",
        "                data = json.dumps(m).encode()",
        "            zo.writestr(name, data)", sep = "\n"))
    py$bump(f, newer)
    expect_error(loadRobustUMAP(newer), "format version 99 is newer than this magmap supports")
    expect_identical(loadRobustUMAP(f)$manifest$format, "magmap.RobustUMAP")
})
