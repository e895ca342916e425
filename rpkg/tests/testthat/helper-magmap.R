# Shared fixtures for the magmap tests. Re-run one file interactively with
#   testthat::test_file("tests/testthat/test-boundary.R")  (from rpkg/, with MAGMAP_PYTHON set).

# The Python side must be found; on CI (CI=true) a missing Python is a failure, not a skip.
skip_if_no_python <- function() {
    ok <- tryCatch({
        magmap:::.r_api()
        TRUE
    }, error = function(e) conditionMessage(e))
    if (!isTRUE(ok)) {
        if (identical(Sys.getenv("CI"), "true")) stop("Python for magmap not available on CI: ", ok)
        skip(paste("Python for magmap not available:", ok))
    }
}

# ../shared/data of a magmap checkout (tests use real datasets from it when present).
shared_data <- function(...) {
    roots <- c(Sys.getenv("MAGMAP_SHARED"), file.path(c("../../..", "../../../..", "../../../../.."), "shared"))
    for (r in roots[nzchar(roots)]) {
        p <- file.path(r, "data", ...)
        if (file.exists(p)) return(normalizePath(p))
    }
    if (identical(Sys.getenv("CI"), "true")) stop("shared data not found: ", file.path(...))
    skip(paste("shared data not found:", file.path(...)))
}

example_sce <- local({
    cache <- NULL
    function() {
        if (is.null(cache)) cache <<- magmapExampleData()
        cache
    }
})
