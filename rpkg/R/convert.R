# R -> Python and Python -> R conversion of numeric data as raw bytes (see ?magmap, "Why numbers cross as bytes").
# The Python half is magmap/rbridge/codec.py; test-boundary.R checks both halves against each other.

.raw_double <- function(x) writeBin(as.double(x), raw(), size = 8L, endian = "little")
.raw_int <- function(x) writeBin(as.integer(x), raw(), size = 4L, endian = "little")

# A genes x cells assay (as stored in a SingleCellExperiment) to a cells x genes matrix in Python.
# Sparse input stays sparse: the dgCMatrix slots are the CSR arrays of the transpose.
.assay_to_py <- function(x, arg = "x") {
    if (is(x, "DelayedArray")) x <- as(x, "dgCMatrix")
    if (is(x, "sparseMatrix") || is(x, "Matrix")) {
        if (!is(x, "dgCMatrix")) x <- as(as(x, "CsparseMatrix"), "generalMatrix")
        if (!is(x, "dgCMatrix")) x <- as(x, "dMatrix")
        return(list(`__kind__` = "dgCMatrix_t", x = .raw_double(x@x), i = .raw_int(x@i), p = .raw_int(x@p),
            nrow = as.integer(nrow(x)), ncol = as.integer(ncol(x))))
    }
    if (is.data.frame(x)) x <- as.matrix(x)
    if (!is.matrix(x)) {
        stop(sprintf("`%s` must be a matrix or sparse matrix (genes x cells), not a %s.", arg, class(x)[1]),
            call. = FALSE)
    }
    if (!is.numeric(x) && !is.logical(x)) {
        stop(sprintf("`%s` must be numeric, but it holds %s values; convert it with storage.mode(%s) <- \"double\".",
            arg, typeof(x), arg), call. = FALSE)
    }
    # t() here is one pass in R; Python then receives C-ordered cells x genes data
    .to_py_matrix(t(x))
}

.to_py_matrix <- function(x) {
    list(`__kind__` = "matrix", data = .raw_double(x), nrow = as.integer(nrow(x)), ncol = as.integer(ncol(x)))
}

# Explicit coercion of any other argument. A length-1 atomic vector becomes a Python scalar (int,
# float, bool, str; NA -> None) unless wrapped in I(), which keeps it a length-1 array. Longer
# numeric/logical vectors travel as bytes (numpy arrays); character vectors become lists of str.
.to_py <- function(x) {
    if (is.null(x)) return(NULL)
    if (is.atomic(x) && length(x) == 1L && is.null(dim(x)) && !inherits(x, "AsIs") && !is.factor(x)) {
        if (is.na(x)) return(NULL)
        if (is.integer(x)) return(x)
        if (is.double(x)) return(x)
        if (is.logical(x) || is.character(x)) return(x)
    }
    if (inherits(x, "AsIs")) x <- unclass(x)
    if (is(x, "sparseMatrix")) {
        x <- as(as(x, "CsparseMatrix"), "generalMatrix")
        return(list(`__kind__` = "dgCMatrix", x = .raw_double(x@x), i = .raw_int(x@i), p = .raw_int(x@p),
            nrow = as.integer(nrow(x)), ncol = as.integer(ncol(x))))
    }
    if (is.matrix(x) && (is.numeric(x) || is.logical(x))) return(.to_py_matrix(x))
    if (is.factor(x)) return(as.list(as.character(x)))
    if (is.logical(x)) return(list(`__kind__` = "logical", data = .raw_int(x), n = length(x)))
    if (is.integer(x)) return(list(`__kind__` = "integer", data = .raw_int(x), n = length(x)))
    if (is.double(x)) return(list(`__kind__` = "double", data = .raw_double(x), n = length(x)))
    if (is.character(x)) return(as.list(x))
    if (is.list(x)) return(lapply(x, .to_py))
    stop(sprintf("cannot send an object of class %s to Python.", class(x)[1]), call. = FALSE)
}

# Python results (tagged lists from magmap.rbridge.codec.encode) to R objects.
.from_py <- function(x) {
    if (is.list(x)) {
        kind <- x[["__kind__"]]
        if (is.null(kind)) return(lapply(x, .from_py))
        return(switch(kind,
            double = readBin(x$data, "double", n = x$n, size = 8L, endian = "little"),
            integer = readBin(x$data, "integer", n = x$n, size = 4L, endian = "little"),
            factor = {
                codes <- readBin(x$codes, "integer", n = x$n, size = 4L, endian = "little")
                factor(unlist(x$levels)[codes], levels = unlist(x$levels))
            },
            logical = readBin(x$data, "integer", n = x$n, size = 4L, endian = "little") != 0L,
            matrix = matrix(readBin(x$data, "double", n = x$nrow * x$ncol, size = 8L, endian = "little"),
                nrow = x$nrow, ncol = x$ncol),
            dgCMatrix = {
                nnz <- length(x$x) %/% 8L
                new("dgCMatrix", x = readBin(x$x, "double", n = nnz, size = 8L, endian = "little"),
                    i = readBin(x$i, "integer", n = nnz, size = 4L, endian = "little"),
                    p = readBin(x$p, "integer", n = x$ncol + 1L, size = 4L, endian = "little"),
                    Dim = c(as.integer(x$nrow), as.integer(x$ncol)))
            },
            data.frame = {
                cols <- lapply(x$columns, function(col) {
                    v <- .from_py(col)
                    if (is.list(v)) v <- vapply(v, function(e) if (is.null(e)) NA_character_ else e, "")
                    v
                })
                df <- as.data.frame(cols, stringsAsFactors = FALSE, optional = TRUE)
                if (length(x$row_names) == nrow(df)) rownames(df) <- unlist(x$row_names)
                df
            },
            stop("unknown object kind '", kind, "' from Python", call. = FALSE)))
    }
    x
}
