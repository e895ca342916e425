#!/usr/bin/env bash
# Set up everything magmap needs on a Debian 12 machine, idempotently:
#   1. R and the R dependencies from Debian's packages (CRAN/Bioconductor are not reachable here);
#   2. the Python virtual environment at .venv/ (torch==2.13.0 first, then magmap editable with extras);
#   3. the R package from rpkg/.
# Safe to re-run: each step checks what is already there and does nothing when nothing changed.
# Environment: MAGMAP_SKIP_APT=1 skips step 1 (no root), MAGMAP_SKIP_R=1 skips steps 1 and 3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STAMPS="$ROOT/.venv/.magmap-stamps"

log() { printf '[setup] %s\n' "$*"; }

R_DEBS=(r-base-core r-base-dev r-bioc-singlecellexperiment r-bioc-scuttle r-bioc-scater
        r-cran-reticulate r-cran-igraph r-cran-seurat r-cran-matrix r-cran-testthat r-cran-roxygen2
        r-cran-knitr r-cran-rmarkdown r-bioc-biocstyle pandoc r-cran-jsonlite r-cran-ggplot2
        r-cran-withr r-bioc-biocparallel)

# --- 1. Debian packages -------------------------------------------------------------------------
if [[ "${MAGMAP_SKIP_APT:-0}" != 1 && "${MAGMAP_SKIP_R:-0}" != 1 ]]; then
  missing=()
  for p in "${R_DEBS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    log "Debian packages: all present"
  fi
fi

# --- 2. Python virtual environment --------------------------------------------------------------
PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv with $($PY --version)"
  $PY -m venv .venv
  .venv/bin/python -m pip install -q -U pip
fi
mkdir -p "$STAMPS"
if ! .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  # torch first: any later requirement on torch is then satisfied by the CPU build (no CUDA download)
  log "installing torch==2.13.0"
  .venv/bin/python -m pip install -q "torch==2.13.0"
fi
py_hash=$(sha1sum pyproject.toml | cut -c1-40)
if [[ "$(cat "$STAMPS/python" 2>/dev/null)" != "$py_hash" ]] || ! .venv/bin/python -c "import magmap" 2>/dev/null; then
  log "installing magmap (editable) with extras [dev]"
  .venv/bin/python -m pip install -q -e ".[dev]"
  # auto_LiRPA is an optional CROWN oracle; PyPI only has 0.3, which declares torch<1.13, hence --no-deps
  .venv/bin/python -m pip install -q --no-deps "auto_LiRPA==0.3" || log "auto_LiRPA not installed (optional)"
  .venv/bin/python -m pip install -q appdirs pyyaml packaging
  echo "$py_hash" > "$STAMPS/python"
else
  log "Python environment: up to date"
fi

# --- 3. R package -------------------------------------------------------------------------------
if [[ "${MAGMAP_SKIP_R:-0}" != 1 ]]; then
  r_hash=$(find rpkg -type f -not -path '*/tests/*' -not -path '*/vignettes/*' -print0 | sort -z | xargs -0 sha1sum | sha1sum | cut -c1-40)
  if [[ "$(cat "$STAMPS/rpkg" 2>/dev/null)" != "$r_hash" ]] || ! Rscript -e 'quit(status = !requireNamespace("magmap", quietly = TRUE))' >/dev/null 2>&1; then
    log "installing the R package from rpkg/"
    R CMD INSTALL --no-multiarch --with-keep.source rpkg >/tmp/magmap-rinstall.log 2>&1 || { cat /tmp/magmap-rinstall.log; exit 1; }
    echo "$r_hash" > "$STAMPS/rpkg"
  else
    log "R package: up to date"
  fi
fi
log "done"
