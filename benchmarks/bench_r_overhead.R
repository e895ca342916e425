# What running magmap from R costs beyond running it from Python: the same data, parameters and seed
# through the R verbs and through the Python calls a Python user makes. The Python half
# (bench_r_overhead.py) is a separate Python process that runs one call when asked, so the two languages
# take turns: for each method, one untimed call in each (imports, first-call set-up), then `repeats`
# timed rounds, Python first in odd rounds and R first in even ones, so that load from other processes
# falls on both alike. Timed: wall, and user and system CPU of the whole process (all threads).
# Prints every R/Python ratio of the median wall time and writes benchmarks/results/r_overhead.json.
#
#   flock /tmp/magmap-cpu.lock Rscript benchmarks/bench_r_overhead.R [--repeats 3] [--out PATH]
#
# Data: the bundled Baron et al. (2016) pancreas subset (328 cells x 12,474 genes) for runMedMagma
# (300 most variable genes), runRobustUMAP (short fit) and robinRobustness; projectRobustUMAP projects
# 2 copies of it (656 cells). `matmul` is torch's 512 x 2000 x 512 float32 product, the operation that
# R's BLAS slowed down when torch bound to it.
suppressPackageStartupMessages({
    library(magmap)
    library(SingleCellExperiment)
})
if (!requireNamespace("processx", quietly = TRUE)) stop("this benchmark needs the processx package (r-cran-processx).")

args <- commandArgs(trailingOnly = TRUE)
arg <- function(name, default) {
    i <- match(paste0("--", name), args)
    if (is.na(i)) default else args[[i + 1L]]
}
script <- sub("^--file=", "", grep("^--file=", commandArgs(), value = TRUE))
root <- normalizePath(file.path(dirname(script), ".."))
cfg <- list(seed = 1L, repeats = as.integer(arg("repeats", 3L)), k = 10L, n_hvg = 300L, n_epochs = 100L,
    robust_epochs = 10L, query_copies = 2L, robin_method = "louvain", robin_repeats = 20L,
    matmul_shape = c(512L, 2000L, 512L), matmul_repeats = 20L)
out_path <- arg("out", file.path(root, "benchmarks", "results", "r_overhead.json"))
options(magmap.verbose = FALSE)

loadavg <- function() as.numeric(strsplit(readLines("/proc/loadavg"), " ")[[1]][1:3])
load_start <- loadavg()

sce <- magmapExampleData()
# the most variable genes of the log-normalised counts; the same indices go to Python
lc <- log1p(t(t(as.matrix(counts(sce))) / Matrix::colSums(counts(sce))) * 1e4)
hvg <- order(-apply(lc, 1, stats::var))[seq_len(cfg$n_hvg)]
query <- do.call(cbind, rep(list(sce), cfg$query_copies))
colnames(query) <- paste0(colnames(query), "-", rep(seq_len(cfg$query_copies), each = ncol(sce)))

# ---- Python: the calls a Python user makes, in their own process ---------------------------------
config_file <- tempfile(fileext = ".json")
jsonlite::write_json(c(cfg, list(hvg = hvg - 1L)), config_file, auto_unbox = TRUE)
py_proc <- processx::process$new(magmapPython(), c(file.path(root, "benchmarks", "bench_r_overhead.py"),
    config_file), stdin = "|", stdout = "|", stderr = "")
py_ask <- function(command) {
    if (!is.null(command)) py_proc$write_input(paste0(command, "\n"))
    repeat {
        if (!py_proc$is_alive() && !py_proc$is_incomplete_output()) {
            stop("the Python half of the benchmark stopped (status ", py_proc$get_exit_status(), ")")
        }
        py_proc$poll_io(-1)
        line <- py_proc$read_output_lines(n = 1)
        if (length(line)) return(jsonlite::fromJSON(line, simplifyVector = TRUE))
    }
}
invisible(py_ask(NULL))

# ---- R: the verbs --------------------------------------------------------------------------------
torch <- NULL
state <- list()
r_calls <- list(
    matmul = function() {
        for (i in seq_len(cfg$matmul_repeats)) prod <- state$a$matmul(state$b)
        state$matmul <<- list(abs_sum = reticulate::py_to_r(prod$abs()$sum()$item()))
    },
    medmagma = function() {
        state$graphs <<- runMedMagma(sce, subset.row = hvg, k = cfg$k, seed = cfg$seed)
    },
    robust_umap = function() {
        state$umap <<- runRobustUMAP(sce, seed = cfg$seed, n_epochs = cfg$n_epochs,
            python.args = list(robust_epochs = cfg$robust_epochs))
    },
    project = function() state$project <<- projectRobustUMAP(query, model = state$umap),
    robin = function() {
        state$robin <<- robinRobustness(state$graphs, name = "MedMagma", method = cfg$robin_method,
            n.repeats = cfg$robin_repeats, seed = cfg$seed, backend = "python")
    })
r_timed <- function(call) {
    t <- system.time(call())
    list(wall = t[["elapsed"]], user = t[["user.self"]], system = t[["sys.self"]])
}

# magmap starts Python (and isolates torch from R's BLAS) before torch is used from R
config <- magmapConfig()
torch <- reticulate::import("torch", convert = FALSE)
gen <- torch$Generator()$manual_seed(cfg$seed)
state$a <- torch$randn(cfg$matmul_shape[1], cfg$matmul_shape[2], generator = gen)
state$b <- torch$randn(cfg$matmul_shape[2], cfg$matmul_shape[3], generator = gen)

load_before <- loadavg()
runs <- list()
for (m in names(r_calls)) {
    py_ask(paste("run", m))
    r_calls[[m]]()
    runs[[m]] <- list(r = list(), python = list())
    for (i in seq_len(cfg$repeats)) {
        order <- if (i %% 2 == 1) c("python", "r") else c("r", "python")
        for (who in order) {
            runs[[m]][[who]][[i]] <- if (who == "python") py_ask(paste("run", m)) else r_timed(r_calls[[m]])
        }
    }
    cat(sprintf("%s: done (load %.2f)\n", m, loadavg()[1]))
}
load_after <- loadavg()
py <- py_ask("results")
py_proc$write_input("quit\n")
py_proc$wait(10000)

cells <- colPair(state$graphs, "MedMagma", asSparse = TRUE)
r_results <- list(
    matmul = state$matmul,
    medmagma = list(cell_edges = Matrix::nnzero(cells), cell_weight_sum = sum(cells)),
    robust_umap = list(embedding_abs_mean = mean(abs(reducedDim(state$umap, "RobustUMAP")))),
    project = list(embedding_abs_mean = mean(abs(reducedDim(state$project, "RobustUMAP")))),
    robin = list(bayes_factor = state$robin$bayes_factor, auc = unname(state$robin$auc)))

# ---- summary -------------------------------------------------------------------------------------
med <- function(x, what) stats::median(vapply(x, function(r) r[[what]], 0))
methods <- c(matmul = "torch matmul from R vs from Python", medmagma = "runMedMagma vs tl.med_magma",
    robust_umap = "runRobustUMAP vs tl.robust_umap", project = "projectRobustUMAP vs tl.robust_umap_transform",
    robin = "robinRobustness vs robustness.robin")
summary <- lapply(names(methods), function(m) {
    s <- list(comparison = methods[[m]])
    for (who in c("r", "python")) {
        s[[paste0(who, "_median")]] <- list(wall = med(runs[[m]][[who]], "wall"), user = med(runs[[m]][[who]], "user"),
            system = med(runs[[m]][[who]], "system"))
    }
    s$ratio_wall <- s$r_median$wall / s$python_median$wall
    s$r_system_over_user <- s$r_median$system / s$r_median$user
    s$python_system_over_user <- s$python_median$system / s$python_median$user
    c(s, list(r_runs = runs[[m]]$r, python_runs = runs[[m]]$python, r_result = r_results[[m]],
        python_result = py$results[[m]]))
})
names(summary) <- names(methods)

cat(sprintf("\n%-46s %8s %8s %6s   %s\n", "", "R wall", "Py wall", "ratio", "user/system s (R | Python)"))
for (m in names(summary)) {
    s <- summary[[m]]
    cat(sprintf("%-46s %7.2fs %7.2fs %6.2f   %.2f/%.2f | %.2f/%.2f\n", s$comparison, s$r_median$wall,
        s$python_median$wall, s$ratio_wall, s$r_median$user, s$r_median$system, s$python_median$user,
        s$python_median$system))
}
cat(sprintf("load average: start %.2f, before %.2f, after %.2f\n", load_start[1], load_before[1], load_after[1]))

git <- function(...) tryCatch(system2("git", c("-C", shQuote(root), ...), stdout = TRUE, stderr = FALSE),
    error = function(e) NA_character_, warning = function(w) NA_character_)
report <- list(
    benchmark = "R verbs vs the Python calls for the same work (median wall time; R and Python take turns)",
    command = "flock /tmp/magmap-cpu.lock Rscript benchmarks/bench_r_overhead.R",
    date = format(Sys.time(), "%Y-%m-%dT%H:%M:%S%z"),
    git_commit = git("rev-parse", "HEAD"),
    git_dirty_files = length(git("status", "--porcelain", "--untracked-files=no")),
    ratios_wall = lapply(summary, `[[`, "ratio_wall"),
    max_ratio_wall = max(vapply(summary, `[[`, 0, "ratio_wall")),
    methods = summary,
    parameters = c(cfg, list(hvg = hvg)),
    data = list(dataset = "Baron et al. (2016) pancreas subset bundled with magmap", cells = ncol(sce),
        genes = nrow(sce), genes_medmagma = length(hvg), query_cells = ncol(query)),
    load_average = list(start = load_start, before = load_before, after = load_after),
    machine = list(cores = parallel::detectCores(), omp_num_threads = Sys.getenv("OMP_NUM_THREADS"),
        cpu = sub("^model name\\s*:\\s*", "", grep("^model name", readLines("/proc/cpuinfo"), value = TRUE)[1])),
    r = list(version = R.version.string, magmap = as.character(utils::packageVersion("magmap")),
        reticulate = as.character(utils::packageVersion("reticulate")), blas = config$r_blas,
        lapack = config$r_lapack, torch_isolation = config$torch_isolation),
    python = list(executable = py$executable, versions = py$versions))
dir.create(dirname(out_path), recursive = TRUE, showWarnings = FALSE)
jsonlite::write_json(report, out_path, auto_unbox = TRUE, pretty = TRUE, digits = NA)
cat("wrote", out_path, "\n")
