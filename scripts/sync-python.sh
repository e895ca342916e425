#!/usr/bin/env bash
# Copy the Python package into rpkg/inst/python so the R package carries what installMagmapPython()
# installs. The copy is generated (git-ignored): pybridge/ stays the only source of truth.
# R uses it directly too: magmap/rbridge/ (the reticulate entry, block projection, the robin driver).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=rpkg/inst/python
mkdir -p "$dest"
rsync -a --delete --exclude '__pycache__' --exclude '*.pyc' pybridge/ "$dest/pybridge/" 2>/dev/null || {
  rm -rf "$dest/pybridge"; cp -r pybridge "$dest/pybridge"; find "$dest" -name '__pycache__' -prune -exec rm -rf {} +; }
cp pyproject.toml README.md "$dest/"
# fail here, not at the first R call, if the R-facing subpackage did not arrive
test -f "$dest/pybridge/magmap/rbridge/api.py" && test -f "$dest/pybridge/magmap/rbridge/robin_driver.R"
