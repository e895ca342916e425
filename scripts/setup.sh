#!/usr/bin/env bash
# Set up everything magmap needs on a Debian 12 machine, idempotently:
#   1. Debian packages: R and the R dependencies (CRAN/Bioconductor are not reachable here), OpenBLAS
#      as R's BLAS/LAPACK while R would use the reference ones, and Chromium (headless, for the HTML
#      report tests);
#   2. the Python virtual environment at .venv/ (torch==2.13.0 first, then magmap editable with extras);
#   3. the R package from rpkg/.
# Safe to re-run: each step checks what is already there and does nothing when nothing changed.
# Environment: MAGMAP_SKIP_APT=1 skips step 1 (no root), MAGMAP_SKIP_R=1 skips the R packages of step 1
# and step 3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STAMPS="$ROOT/.venv/.magmap-stamps"
START=$SECONDS

log() { printf '[setup %3ds] %s\n' "$((SECONDS - START))" "$*"; }

R_DEBS=(r-base-core r-base-dev r-bioc-singlecellexperiment r-bioc-scuttle r-bioc-scater
        r-cran-reticulate r-cran-igraph r-cran-seurat r-cran-matrix r-cran-testthat r-cran-roxygen2
        r-cran-knitr r-cran-rmarkdown r-bioc-biocstyle pandoc r-cran-jsonlite r-cran-ggplot2
        r-cran-withr r-bioc-biocparallel r-bioc-delayedarray r-bioc-hdf5array r-cran-lintr)
# headless Chromium renders the HTML report in its tests; Debian's Python makes the virtual environment
OTHER_DEBS=(chromium python3-venv python3-dev)
# Debian's R links the reference BLAS/LAPACK by default; OpenBLAS (pthreads build) becomes R's BLAS and
# LAPACK through update-alternatives (priority 100 vs 10). Installed only while no optimised BLAS is there.
OPT_BLAS=libopenblas0-pthread

# The library behind R's libblas.so.3 / liblapack.so.3 (Debian alternatives resolved), or "".
blas_target() { local f; for f in /usr/lib/*-linux-gnu*/"$1".so.3; do [[ -e $f ]] && { readlink -f "$f"; return; }; done; echo ""; }
is_reference() { [[ -z $1 || $1 == */blas/libblas.so* || $1 == */lapack/liblapack.so* ]]; }

# --- 1. Debian packages -------------------------------------------------------------------------
if [[ "${MAGMAP_SKIP_APT:-0}" != 1 ]]; then
  wanted=("${OTHER_DEBS[@]}")
  if [[ "${MAGMAP_SKIP_R:-0}" != 1 ]]; then
    wanted+=("${R_DEBS[@]}")
    if is_reference "$(blas_target libblas)" || is_reference "$(blas_target liblapack)"; then wanted+=("$OPT_BLAS"); fi
  fi
  # one dpkg-query for all packages: a few ms when everything is there
  installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${wanted[@]}" 2>/dev/null | awk '/install ok installed/ {print $1}' || true)
  missing=()
  for p in "${wanted[@]}"; do grep -qx "$p" <<<"$installed" || missing+=("$p"); done
  if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    log "Debian packages: all present"
  fi
  if [[ "${MAGMAP_SKIP_R:-0}" != 1 ]]; then
    blas=$(blas_target libblas); lapack=$(blas_target liblapack)
    if is_reference "$blas" || is_reference "$lapack"; then
      # alternatives in manual mode keep the reference library even with OpenBLAS installed: say how to switch
      log "R still uses the reference BLAS/LAPACK (${blas:-none} / ${lapack:-none}); switch with" \
          "'update-alternatives --config libblas.so.3-<arch>' and 'liblapack.so.3-<arch>' (see README)"
    else
      log "R's BLAS: $blas; LAPACK: $lapack"
    fi
  fi
fi

# --- 2. Python virtual environment --------------------------------------------------------------
# Debian's Python by default, not whichever python3 comes first on PATH: a Python built with a shared
# libpython and a RUNPATH (pyenv) loads Debian's libpython instead of its own in any child process once
# R, embedded through rpy2, has put /usr/lib/<arch> on LD_LIBRARY_PATH (dask workers then fail on _ssl;
# magmap.rbridge._embedded_r repairs the variable when magmap starts R, not when something else does)
if [[ -n ${PYTHON:-} ]]; then PY=$PYTHON; elif [[ -x /usr/bin/python3 ]]; then PY=/usr/bin/python3; else PY=python3; fi
if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv with $($PY --version)"
  $PY -m venv .venv
  .venv/bin/python -m pip install -q -U pip
fi
mkdir -p "$STAMPS"
# versions from package metadata: no import of torch or magmap (seconds each)
read -r torch_v magmap_v < <(.venv/bin/python - <<'PYEOF'
from importlib.metadata import PackageNotFoundError, version
def v(name):
    try:
        return version(name)
    except PackageNotFoundError:
        return "-"
print(v("torch"), v("magmap"))
PYEOF
)
if [[ $torch_v != 2.13.0* ]]; then
  # torch first: any later requirement on torch is then satisfied by the CPU build (no CUDA download)
  log "installing torch==2.13.0"
  .venv/bin/python -m pip install -q "torch==2.13.0"
fi
py_hash=$(sha1sum pyproject.toml | cut -c1-40)
if [[ "$(cat "$STAMPS/python" 2>/dev/null)" != "$py_hash" || $magmap_v == - ]]; then
  log "installing magmap (editable) with extras [dev]"
  # auto_LiRPA (optional CROWN oracle) is installed last, without its requirements: PyPI only has 0.3,
  # which declares torch<1.13 and torchvision<0.14. Taken out first so that this install does not
  # report its stale requirements as conflicts; its real run-time needs are listed here.
  .venv/bin/python -m pip uninstall -q -y auto_LiRPA 2>/dev/null || true
  .venv/bin/python -m pip install -q -e ".[dev]" appdirs pyyaml packaging
  # --no-deps also skips pip's conflict report; `pip check` still lists auto_LiRPA's declared requirements
  if .venv/bin/python -m pip install -q --no-deps "auto_LiRPA==0.3"; then
    log "auto_LiRPA 0.3 installed without its declared requirements (torch<1.13, torchvision): it works with" \
        "torch 2.13 through magmap's compatibility module; 'pip check' will list those requirements"
  else
    log "auto_LiRPA not installed (optional: only the CROWN cross-check tests use it)"
  fi
  echo "$py_hash" > "$STAMPS/python"
else
  log "Python environment: up to date"
fi

# --- 3. R package -------------------------------------------------------------------------------
if [[ "${MAGMAP_SKIP_R:-0}" != 1 ]]; then
  r_hash=$(find rpkg -type f -not -path '*/tests/*' -not -path '*/vignettes/*' -print0 | sort -z | xargs -0 sha1sum | sha1sum | cut -c1-40)
  # the hash is kept inside the installed package, so another checkout installing into the same R
  # library is noticed; finding the package does not load it (loading SingleCellExperiment takes seconds)
  r_dir=$(Rscript -e 'cat(system.file(package = "magmap"))' 2>/dev/null || true)
  if [[ -z $r_dir || "$(cat "$r_dir/magmap-source.sha1" 2>/dev/null)" != "$r_hash" ]]; then
    log "installing the R package from rpkg/"
    R CMD INSTALL --no-multiarch --with-keep.source rpkg >/tmp/magmap-rinstall.log 2>&1 || { cat /tmp/magmap-rinstall.log; exit 1; }
    r_dir=$(Rscript -e 'cat(system.file(package = "magmap"))')
    echo "$r_hash" > "$r_dir/magmap-source.sha1"
  else
    log "R package: up to date"
  fi
fi
log "done"
