# Finding, configuring and installing the Python side of magmap.

.magmap_state <- new.env(parent = emptyenv())

#' The Python interpreter magmap uses
#'
#' magmap looks for Python in this order and uses the first one found:
#' 1. the R option `magmap.python` (a path to a `python` executable);
#' 2. the environment variable `MAGMAP_PYTHON`;
#' 3. the reticulate virtual environment named `r-magmap` (created by [installMagmapPython()]);
#' 4. during development, the `.venv` of a magmap source checkout found by walking up from the
#'    working directory (a folder holding both `.venv/bin/python` and `pybridge/magmap`).
#'
#' The chosen Python must have the `magmap` Python package installed. Python can only be chosen
#' once per R session (a reticulate restriction): change it, then restart R.
#'
#' @return `magmapPython()` returns the path to the Python executable (a string), or raises an
#'   error explaining how to install one. `magmapConfig()` returns a list with the executable,
#'   the versions of magmap and its Python dependencies, the device (`"cpu"` or `"cuda"`)
#'   that `device = "auto"` selects, R's BLAS and LAPACK libraries (`r_blas`, `r_lapack`,
#'   `r_blas_kind`: `"openblas"`, `"mkl"`, `"accelerate"`, `"reference"`, ...) and
#'   `torch_isolation`: `"isolated"` when torch uses its own BLAS rather than R's (see
#'   "Python inside R" below), `"already-imported"` when something imported torch first.
#'
#' @section Python inside R:
#' R's BLAS and LAPACK symbols are visible to every library loaded into the R process, so torch,
#' started through reticulate, would call R's BLAS instead of its own (with Debian's reference BLAS,
#' 10-25 times slower; with a threaded BLAS, R's BLAS threads compete with torch's). magmap therefore
#' imports torch itself, with `RTLD_DEEPBIND` (Linux), before anything else uses it. If torch was
#' already imported in the session, magmap warns: restart R and call magmap first. magmap also warns
#' once per session when R itself uses the reference BLAS (slow for R's own matrix algebra) and says
#' how to install OpenBLAS; `options(magmap.check.blas = FALSE)` turns that warning off.
#' @examples
#' if (magmapAvailable()) {
#'     magmapPython()
#'     magmapConfig()$versions$magmap
#' }
#' @seealso [installMagmapPython()]
#' @export
magmapPython <- function() {
    candidates <- .python_candidates()
    for (cand in candidates) {
        if (nzchar(cand$path) && file.exists(cand$path)) {
            # resolve the folder only: a venv's python is a symlink whose target is the base interpreter
            return(file.path(normalizePath(dirname(cand$path)), basename(cand$path)))
        }
        if (cand$explicit) {
            stop(sprintf("%s points to '%s', which does not exist; fix the path or unset it.",
                cand$source, cand$path), call. = FALSE)
        }
    }
    stop("no Python for magmap was found. Run magmap::installMagmapPython() once, or set ",
        "options(magmap.python = '/path/to/python') or the MAGMAP_PYTHON environment variable ",
        "to a Python that has the 'magmap' package installed.", call. = FALSE)
}

.python_candidates <- function() {
    out <- list()
    opt <- getOption("magmap.python")
    if (!is.null(opt)) out[[length(out) + 1L]] <- list(path = opt, source = "option magmap.python", explicit = TRUE)
    env <- Sys.getenv("MAGMAP_PYTHON")
    if (nzchar(env)) out[[length(out) + 1L]] <- list(path = env, source = "MAGMAP_PYTHON", explicit = TRUE)
    venv <- tryCatch(
        if (reticulate::virtualenv_exists("r-magmap")) reticulate::virtualenv_python("r-magmap") else "",
        error = function(e) "")
    out[[length(out) + 1L]] <- list(path = venv, source = "virtualenv r-magmap", explicit = FALSE)
    out[[length(out) + 1L]] <- list(path = .dev_venv(), source = "development .venv", explicit = FALSE)
    out
}

.dev_venv <- function(start = getwd()) {
    dir <- normalizePath(start, mustWork = FALSE)
    repeat {
        py <- file.path(dir, ".venv", "bin", "python")
        if (file.exists(py) && dir.exists(file.path(dir, "pybridge", "magmap"))) return(py)
        parent <- dirname(dir)
        if (identical(parent, dir)) return("")
        dir <- parent
    }
}

# The magmap.rbridge.api module, imported once per session into the chosen Python.
.r_api <- function() {
    if (!is.null(.magmap_state$api)) return(.magmap_state$api)
    .check_blas()
    python <- magmapPython()
    if (reticulate::py_available(initialize = FALSE)) {
        current <- reticulate::py_config()$python
        if (!identical(normalizePath(current, mustWork = FALSE), normalizePath(python, mustWork = FALSE))) {
            stop(sprintf(paste0("reticulate is already using Python '%s' in this R session, but magmap ",
                "is configured for '%s'. Restart R and load magmap before anything else starts Python ",
                "(or point options(magmap.python) at '%s')."), current, python, current), call. = FALSE)
        }
    } else {
        reticulate::use_python(python, required = TRUE)
        .start_python(python)
    }
    .magmap_state$torch <- .import_torch_isolated()
    .check_torch_isolated(.magmap_state$torch)
    api <- tryCatch(reticulate::import("magmap.rbridge.api"), error = function(e) {
        stop(sprintf(paste0("the Python at '%s' cannot import magmap (%s). Install it with ",
            "magmap::installMagmapPython(), or `pip install magmap` into that Python."),
            python, .python_message(e)), call. = FALSE)
    })
    .check_versions(as.character(utils::packageVersion("magmap")),
        reticulate::import("magmap")$`__version__`, python)
    .magmap_state$api <- api
    api
}

# The R package and the Python package it drives are released together; a mismatch means calls and
# results no longer agree, so it is refused with both versions and the fix.
.check_versions <- function(r_version, py_version, python) {
    if (!identical(as.character(r_version), as.character(py_version))) {
        stop(sprintf(paste0("magmap's R package is version %s but the Python package it found at '%s' is ",
            "version %s; they must be the same. Update the Python side with magmap::installMagmapPython() ",
            "(or `pip install magmap==%s` into that Python), or point options(magmap.python) at a Python ",
            "with magmap %s."), r_version, python, py_version, r_version, r_version), call. = FALSE)
    }
    invisible(TRUE)
}

# Start the chosen Python. reticulate 1.28 reads a pyproject.toml in the working directory before it
# honours use_python() and warns about Poetry when the file has any [tool] table (any Python project's
# checkout); RETICULATE_PYTHON, set only while Python starts, takes precedence over that lookup.
.start_python <- function(python) {
    old <- Sys.getenv("RETICULATE_PYTHON", unset = NA)
    Sys.setenv(RETICULATE_PYTHON = python)
    on.exit(if (is.na(old)) Sys.unsetenv("RETICULATE_PYTHON") else Sys.setenv(RETICULATE_PYTHON = old), add = TRUE)
    reticulate::py_config()
    invisible(python)
}

# R's BLAS/LAPACK symbols are global in the R process, so a library loaded later that calls sgemm_ and
# friends through its dynamic symbol table binds to R's copies instead of its own: torch then bypasses
# its MKL (10-25x slower with the reference BLAS) and runs on R's BLAS threads, which compete with
# torch's OpenMP threads. Loading torch with RTLD_DEEPBIND makes its libraries use their own symbols
# first. That is only possible before torch is first imported in the session (and only on glibc).
# Returns "isolated", "already-imported", "unsupported" or "failed: <message>".
.import_torch_isolated <- function() {
    tryCatch(.deepbind_import("torch"), error = function(e) paste("failed:", .python_message(e)))
}

.deepbind_import <- function(module) {
    sys <- reticulate::import("sys", convert = TRUE)
    os <- reticulate::import("os", convert = TRUE)
    # the marker on sys outlives a reload of the R package (devtools::load_all) within one Python session
    marker <- paste0("_magmap_deepbind_", module)
    if (reticulate::py_has_attr(sys, marker)) return("isolated")
    if (reticulate::py_eval(sprintf("'%s' in __import__('sys').modules", module))) return("already-imported")
    if (!reticulate::py_has_attr(os, "RTLD_DEEPBIND") || !reticulate::py_has_attr(sys, "setdlopenflags")) {
        return("unsupported")
    }
    flags <- sys$getdlopenflags()
    sys$setdlopenflags(bitwOr(flags, os$RTLD_DEEPBIND))
    on.exit(sys$setdlopenflags(flags), add = TRUE)
    reticulate::import(module, convert = FALSE)
    reticulate::py_set_attr(sys, marker, TRUE)
    "isolated"
}

# Turn a reticulate error into the Python exception's own message (no R call stack, no traceback).
.python_message <- function(e) {
    msg <- conditionMessage(e)
    msg <- sub("\n*Detailed traceback:.*$", "", msg)
    msg <- sub("^Error in py_call_impl\\(.*?\\) *:\\s*", "", msg)
    trimws(msg)
}

# Call a function of magmap.rbridge.api; Python exceptions become R errors with the Python message.
.py_call <- function(fun, ...) {
    api <- .r_api()
    result <- tryCatch(api[[fun]](...), error = function(e) e)
    if (inherits(result, "error")) {
        stop(simpleError(.python_message(result), call = sys.call(-1L)))
    }
    .from_py(result)
}

#' @rdname magmapPython
#' @return `magmapAvailable()` returns `TRUE` when the Python side can be used (it is imported on
#'   the first call), `FALSE` otherwise, without an error.
#' @export
magmapAvailable <- function() {
    isTRUE(tryCatch({
        .r_api()
        TRUE
    }, error = function(e) FALSE))
}

#' @rdname magmapPython
#' @export
magmapConfig <- function() {
    cfg <- .py_call("python_info")
    libs <- .blas_libraries()
    c(cfg, list(r_blas = libs$blas, r_lapack = libs$lapack, r_blas_kind = .blas_kind(libs$blas),
        torch_isolation = .magmap_state$torch))
}

#' Install the Python side of magmap into a reticulate virtual environment
#'
#' Creates (or updates) the virtual environment `envname` with `torch` (the CPU build, installed
#' first so that no CUDA wheels are pulled), then the `magmap` Python package carried inside this
#' R package, with its dependencies from PyPI. Afterwards [magmapPython()] finds it without any
#' configuration. Needs network access to PyPI.
#'
#' @param envname Name of the reticulate virtual environment.
#' @param python Python executable used to create the environment (default: reticulate's choice
#'   of a Python >= 3.10 on the PATH).
#' @param torch Version of torch to install; `NULL` keeps an existing torch.
#' @param extras pip extras of the magmap Python package, e.g. `"r"` for rpy2/anndata2ri.
#' @return The path to the environment's Python executable, invisibly.
#' @examples
#' \dontrun{
#' installMagmapPython()
#' }
#' @export
installMagmapPython <- function(envname = "r-magmap", python = NULL, torch = "2.13.0", extras = character()) {
    src <- system.file("python", package = "magmap")
    if (!nzchar(src) || !file.exists(file.path(src, "pyproject.toml"))) {
        stop("this installation of magmap does not carry its Python sources (inst/python); ",
            "reinstall the R package from a source tarball built with `make rpkg-build`.", call. = FALSE)
    }
    if (!reticulate::virtualenv_exists(envname)) {
        if (is.null(python)) {
            reticulate::virtualenv_create(envname)
        } else {
            reticulate::virtualenv_create(envname, python = python)
        }
    }
    py <- reticulate::virtualenv_python(envname)
    pip <- function(...) {
        status <- system2(py, c("-m", "pip", "install", ...))
        if (status != 0) stop("pip install ", paste(..., collapse = " "), " failed (status ", status, ").",
            call. = FALSE)
    }
    if (!is.null(torch)) pip(shQuote(paste0("torch==", torch)))
    target <- if (length(extras)) sprintf("%s[%s]", src, paste(extras, collapse = ",")) else src
    pip(shQuote(target))
    invisible(py)
}
