# Run the R package's testthat suite against the installed package and print a closing count line.
# Usage: Rscript scripts/run-r-tests.R [rpkg/tests/testthat]
args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args)) args[[1]] else "rpkg/tests/testthat"
suppressPackageStartupMessages(library(testthat))
res <- testthat::test_dir(dir, package = "magmap", load_package = "installed",
    reporter = testthat::ProgressReporter$new(show_praise = FALSE), stop_on_failure = FALSE)
df <- as.data.frame(res)
n_failed <- sum(df$failed > 0 | df$error)
n_skipped <- sum(df$skipped & !(df$failed > 0 | df$error))
n_passed <- nrow(df) - n_failed - n_skipped
cat(sprintf("R tests: %d passed, %d failed, %d skipped\n", n_passed, n_failed, n_skipped))
quit(status = if (n_failed > 0) 1L else 0L)
