# Which BLAS/LAPACK R uses, and a once-per-session warning when it is the slow reference one.

# The BLAS and LAPACK libraries of this R session, symlinks resolved (Debian's alternatives links
# otherwise hide which implementation is behind libblas.so.3).
.blas_libraries <- function() {
    resolve <- function(p) {
        p <- if (length(p) && !is.na(p[1])) as.character(p[1]) else ""
        if (nzchar(p) && file.exists(p)) normalizePath(p) else p
    }
    list(blas = resolve(extSoftVersion()[["BLAS"]]), lapack = resolve(La_library()))
}

# Classify a BLAS or LAPACK library path: "openblas", "mkl", "accelerate", "blis", "atlas",
# "flexiblas" (back end chosen at run time), "reference" (netlib, or R's own libRblas/libRlapack)
# or "unknown" (including an empty path, e.g. a statically linked BLAS).
.blas_kind <- function(path) {
    p <- tolower(if (length(path) && !is.na(path[1])) path[1] else "")
    if (!nzchar(p)) return("unknown")
    base <- basename(p)
    if (grepl("mkl", p, fixed = TRUE)) return("mkl")
    if (grepl("openblas", p, fixed = TRUE)) return("openblas")
    if (grepl("accelerate|veclib", p)) return("accelerate")
    if (grepl("blis", p, fixed = TRUE)) return("blis")
    if (grepl("atlas", p, fixed = TRUE)) return("atlas")
    if (grepl("flexiblas", p, fixed = TRUE)) return("flexiblas")
    if (grepl("^(lib)?r(blas|lapack)[.]", base)) return("reference")
    if (grepl("^lib(blas|lapack)[.](so|dylib|dll)", base)) return("reference")
    "unknown"
}

# The Debian multiarch triplet in a library path (for the update-alternatives link names).
.blas_triplet <- function(paths) {
    hit <- regmatches(paths, regexpr("[a-z0-9_]+-linux-gnu[a-z]*", paths))
    if (length(hit)) hit[[1]] else "x86_64-linux-gnu"
}

.reference_blas_message <- function(libs) {
    triplet <- .blas_triplet(unlist(libs))
    sprintf(paste0(
        "R uses the reference (unoptimised) BLAS/LAPACK (BLAS: %s; LAPACK: %s). Matrix algebra in R, ",
        "and in Python libraries that bind to R's BLAS, runs many times slower than with an optimised one. ",
        "Fix: install OpenBLAS and restart R; on Debian/Ubuntu `sudo apt-get install libopenblas0-pthread` ",
        "(it then becomes R's BLAS and LAPACK), or choose an installed BLAS with ",
        "`sudo update-alternatives --config libblas.so.3-%s` and ",
        "`sudo update-alternatives --config liblapack.so.3-%s`; check with extSoftVersion()[\"BLAS\"] and ",
        "La_library(). See 'Python inside R' in magmap's README. magmap keeps working; this warning is ",
        "given once per session (options(magmap.check.blas = FALSE) turns it off)."),
        if (nzchar(libs$blas)) libs$blas else "unknown", if (nzchar(libs$lapack)) libs$lapack else "unknown",
        triplet, triplet)
}

# Warn (once per session, recorded in `state`) when R's BLAS or LAPACK is the reference one.
# Returns TRUE when it warned. `libs` and `state` are arguments so tests can mock them.
.check_blas <- function(libs = .blas_libraries(), state = .magmap_state) {
    if (isTRUE(state$blas_checked) || identical(getOption("magmap.check.blas"), FALSE)) return(invisible(FALSE))
    state$blas_checked <- TRUE
    kinds <- vapply(libs[c("blas", "lapack")], .blas_kind, "")
    if (!any(kinds == "reference")) return(invisible(FALSE))
    warning(structure(class = c("magmapReferenceBlasWarning", "warning", "condition"),
        list(message = .reference_blas_message(libs), call = NULL)))
    invisible(TRUE)
}

# Warn (once per session) when torch could not be isolated from R's BLAS because something imported
# it before magmap started Python (see .import_torch_isolated()).
.check_torch_isolated <- function(status, state = .magmap_state) {
    if (!identical(status, "already-imported") || isTRUE(state$torch_warned)) return(invisible(FALSE))
    state$torch_warned <- TRUE
    warning(structure(class = c("magmapTorchBlasWarning", "warning", "condition"), list(message = paste0(
        "torch was imported in this R session before magmap started Python, so its matrix products run on ",
        "R's BLAS (", .blas_libraries()$blas, ") instead of its own: magmap can be several times slower than ",
        "in Python. Restart R and call a magmap function (e.g. magmapConfig()) before anything imports torch ",
        "through reticulate."), call = NULL)))
    invisible(TRUE)
}
