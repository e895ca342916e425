# R's BLAS/LAPACK: classification of library paths, the once-per-session warning, torch isolation.

test_that("BLAS and LAPACK paths are classified", {
    kind <- magmap:::.blas_kind
    # Debian/Ubuntu: the reference alternatives and OpenBLAS (its libblas.so.3 sits in openblas-pthread/)
    expect_identical(kind("/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0"), "reference")
    expect_identical(kind("/usr/lib/x86_64-linux-gnu/lapack/liblapack.so.3.11.0"), "reference")
    expect_identical(kind("/usr/lib/aarch64-linux-gnu/blas/libblas.so.3"), "reference")
    expect_identical(kind("/usr/lib64/libblas.so.3.9.0"), "reference")
    expect_identical(kind("/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3"), "openblas")
    expect_identical(kind("/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so"), "openblas")
    expect_identical(kind("/usr/lib/x86_64-linux-gnu/openblas-openmp/liblapack.so.3"), "openblas")
    # R's own reference BLAS (R built without an external one; macOS and Windows CRAN builds)
    expect_identical(kind("/usr/lib/R/lib/libRblas.so"), "reference")
    expect_identical(kind("/Library/Frameworks/R.framework/Versions/4.3/Resources/lib/libRblas.0.dylib"), "reference")
    expect_identical(kind("C:/Program Files/R/R-4.3.1/bin/x64/Rlapack.dll"), "reference")
    # optimised ones
    expect_identical(kind("/Library/Frameworks/R.framework/Versions/4.3/Resources/lib/libRblas.vecLib.dylib"),
        "accelerate")
    veclib <- "/System/Library/Frameworks/Accelerate.framework/Versions/A/Frameworks/vecLib.framework/Versions/A"
    expect_identical(kind(file.path(veclib, "libBLAS.dylib")),
        "accelerate")
    expect_identical(kind("/opt/intel/oneapi/mkl/latest/lib/intel64/libmkl_rt.so.2"), "mkl")
    expect_identical(kind("/usr/lib/x86_64-linux-gnu/libmkl_rt.so"), "mkl")
    expect_identical(kind("/usr/lib/x86_64-linux-gnu/blis-pthread/libblas.so.3"), "blis")
    expect_identical(kind("/usr/lib/x86_64-linux-gnu/atlas/libblas.so.3"), "atlas")
    expect_identical(kind("/usr/lib64/libflexiblas.so.3"), "flexiblas")
    # nothing to go on: not reported as reference
    expect_identical(kind(""), "unknown")
    expect_identical(kind(NA_character_), "unknown")
    expect_identical(kind(character()), "unknown")
    expect_identical(kind("/opt/vendor/libsomething.so"), "unknown")
})

test_that("a reference BLAS or LAPACK is warned about once per session, with the fix", {
    ref <- list(blas = "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0",
        lapack = "/usr/lib/x86_64-linux-gnu/lapack/liblapack.so.3.11.0")
    state <- new.env()
    withr::local_options(magmap.check.blas = NULL)
    w <- expect_warning(warned <- magmap:::.check_blas(ref, state), class = "magmapReferenceBlasWarning")
    expect_true(warned)
    msg <- conditionMessage(w)
    expect_match(msg, "reference (unoptimised) BLAS/LAPACK", fixed = TRUE)
    expect_match(msg, ref$blas, fixed = TRUE)
    expect_match(msg, "apt-get install libopenblas0-pthread", fixed = TRUE)
    expect_match(msg, "update-alternatives --config libblas.so.3-x86_64-linux-gnu", fixed = TRUE)
    expect_match(msg, "update-alternatives --config liblapack.so.3-x86_64-linux-gnu", fixed = TRUE)
    expect_match(msg, "'Python inside R' in magmap's README", fixed = TRUE)
    # second call in the same session: silent
    expect_silent(expect_false(magmap:::.check_blas(ref, state)))
    # only LAPACK reference (an optimised BLAS beside netlib LAPACK) still warns; the triplet follows the path
    arm <- list(blas = "/usr/lib/aarch64-linux-gnu/openblas-pthread/libblas.so.3",
        lapack = "/usr/lib/aarch64-linux-gnu/lapack/liblapack.so.3")
    w <- expect_warning(magmap:::.check_blas(arm, new.env()), class = "magmapReferenceBlasWarning")
    expect_match(conditionMessage(w), "libblas.so.3-aarch64-linux-gnu", fixed = TRUE)
})

test_that("optimised, unknown or empty BLAS paths give no warning, and the option turns it off", {
    withr::local_options(magmap.check.blas = NULL)
    cases <- list(
        openblas = list(blas = "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3",
            lapack = "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so"),
        mkl = list(blas = "/opt/intel/mkl/lib/intel64/libmkl_rt.so",
            lapack = "/opt/intel/mkl/lib/intel64/libmkl_rt.so"),
        accelerate = list(blas = "/Library/Frameworks/R.framework/Resources/lib/libRblas.vecLib.dylib",
            lapack = file.path("/System/Library/Frameworks/Accelerate.framework/Versions/A/Frameworks",
                "vecLib.framework/Versions/A/libLAPACK.dylib")),
        empty = list(blas = "", lapack = ""))
    for (libs in cases) expect_silent(expect_false(magmap:::.check_blas(libs, new.env())))
    withr::local_options(magmap.check.blas = FALSE)
    ref <- list(blas = "/usr/lib/R/lib/libRblas.so", lapack = "/usr/lib/R/lib/libRlapack.so")
    expect_silent(expect_false(magmap:::.check_blas(ref, new.env())))
})

test_that("this session's BLAS is reported and torch uses its own BLAS, not R's", {
    skip_if_no_python()
    cfg <- magmapConfig()
    libs <- magmap:::.blas_libraries()
    expect_identical(cfg$r_blas, libs$blas)
    expect_identical(cfg$r_blas_kind, magmap:::.blas_kind(libs$blas))
    # on glibc, magmap imported torch with RTLD_DEEPBIND before anything else could
    skip_if_not(reticulate::py_has_attr(reticulate::import("os"), "RTLD_DEEPBIND"), "no RTLD_DEEPBIND here")
    expect_identical(cfg$torch_isolation, "isolated")
    # same bits as in a plain Python process: torch's own BLAS served the product (with R's OpenBLAS or
    # reference BLAS interposed, the float32 rounding differs and so does the hash)
    code <- paste("import hashlib, torch",
        "g = torch.Generator().manual_seed(0)",
        "a = torch.randn(256, 1000, generator=g); b = torch.randn(1000, 128, generator=g)",
        "fp = hashlib.sha1((a @ b).numpy().tobytes()).hexdigest()", sep = "\n")
    in_r <- reticulate::py_run_string(code, local = TRUE)$fp
    in_python <- system2(magmapPython(), c("-c", shQuote(paste0(code, "\nprint(fp)"))), stdout = TRUE)
    expect_identical(in_r, tail(in_python, 1L))
})

test_that("a warning says how to fix torch imported before magmap, once", {
    state <- new.env()
    w <- expect_warning(magmap:::.check_torch_isolated("already-imported", state), class = "magmapTorchBlasWarning")
    expect_match(conditionMessage(w), "Restart R and call a magmap function", fixed = TRUE)
    expect_silent(magmap:::.check_torch_isolated("already-imported", state))
    expect_silent(magmap:::.check_torch_isolated("isolated", new.env()))
    expect_silent(magmap:::.check_torch_isolated("unsupported", new.env()))
})
