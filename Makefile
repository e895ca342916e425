# magmap: the two commands of the README, and a few helpers.
#   make demo   set everything up, run the main job on the bundled dataset -> demo_results/
#   make test   set everything up, run every Python and R test, and R CMD check
SHELL := /bin/bash
PY := .venv/bin/python
export MAGMAP_PYTHON := $(CURDIR)/.venv/bin/python
export MAGMAP_SHARED ?= $(abspath $(CURDIR)/../shared)
# one BLAS/OpenMP thread pool per process keeps 2-core machines responsive when R and Python both run
export OMP_NUM_THREADS ?= 2

.PHONY: setup demo test test-python test-r check rpkg-build vignettes clean

setup:
	bash scripts/sync-python.sh
	bash scripts/setup.sh

demo: setup
	$(PY) -m magmap demo --out demo_results

test: setup test-python test-r check

test-python:
	$(PY) -m pytest -q tests

test-r:
	Rscript scripts/run-r-tests.R rpkg/tests/testthat

# R CMD build runs the vignette (it needs the Python side, found through MAGMAP_PYTHON)
rpkg-build: setup
	cd rpkg && Rscript -e 'roxygen2::roxygenise()' >/dev/null
	rm -rf build/rcheck && mkdir -p build/rcheck
	cd build/rcheck && R CMD build ../../rpkg > build.log 2>&1 || { cat build.log; exit 1; }
	ls build/rcheck/magmap_*.tar.gz

# R CMD check (the testthat suite ran in test-r and the vignette in rpkg-build, so both are skipped here)
check: rpkg-build
	cd build/rcheck && _R_CHECK_FORCE_SUGGESTS_=false R CMD check --no-manual --no-tests --ignore-vignettes magmap_*.tar.gz \
	  || { cat magmap.Rcheck/00check.log; exit 1; }
	@! grep -qE "^\* .*(ERROR|WARNING)" build/rcheck/magmap.Rcheck/00check.log || { cat build/rcheck/magmap.Rcheck/00check.log; exit 1; }

# the notebooks in vignettes/ (Python and R chunks in one document) -> build/vignettes/*.html
vignettes: setup
	mkdir -p build/vignettes
	for f in vignettes/*.Rmd; do \
	  Rscript -e "rmarkdown::render('$$f', output_dir = 'build/vignettes', quiet = TRUE)" || exit 1; done

clean:
	rm -rf build demo_results rpkg/inst/python
