# Finding Python: the documented order, and clear errors.

test_that("option magmap.python wins and a wrong path is a clear error", {
    withr::local_options(magmap.python = "/no/such/python")
    expect_error(magmapPython(), "option magmap.python points to '/no/such/python'")
})

test_that("MAGMAP_PYTHON is used when the option is unset", {
    withr::local_options(magmap.python = NULL)
    withr::local_envvar(MAGMAP_PYTHON = "/no/such/python3")
    expect_error(magmapPython(), "MAGMAP_PYTHON points to")
})

test_that("the development .venv is found from inside a checkout", {
    root <- tempfile("checkout")
    dir.create(file.path(root, ".venv", "bin"), recursive = TRUE)
    dir.create(file.path(root, "pybridge", "magmap"), recursive = TRUE)
    dir.create(file.path(root, "rpkg", "tests"), recursive = TRUE)
    file.create(file.path(root, ".venv", "bin", "python"))
    found <- magmap:::.dev_venv(file.path(root, "rpkg", "tests"))
    expect_identical(normalizePath(found), normalizePath(file.path(root, ".venv", "bin", "python")))
    expect_identical(magmap:::.dev_venv(tempdir()), "")
})

test_that("magmapConfig reports the interpreter and versions", {
    skip_if_no_python()
    cfg <- magmapConfig()
    expect_true(file.exists(cfg$executable))
    expect_true(all(c("magmap", "numpy", "torch") %in% names(cfg$versions)))
    expect_true(cfg$device %in% c("cpu", "cuda"))
})

test_that("the R and Python packages must be the same version", {
    expect_true(.check_versions("0.1.0", "0.1.0", "/usr/bin/python3"))
    expect_error(.check_versions("0.2.0", "0.1.0", "/opt/py/bin/python"),
        "R package is version 0.2.0 but the Python package it found at '/opt/py/bin/python' is version 0.1.0")
    expect_error(.check_versions("0.2.0", "0.1.0", "/opt/py/bin/python"), "installMagmapPython\\(\\)")
    skip_if_no_python()
    # the session's own pair passed the handshake (the package is usable at all)
    expect_identical(magmapConfig()$versions$magmap, as.character(utils::packageVersion("magmap")))
})
