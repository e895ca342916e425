"""The small real dataset shipped inside the package."""
from __future__ import annotations

from pathlib import Path

import anndata as ad

__all__ = ["baron2016_pancreas", "bundled_path"]

_DATA = Path(__file__).parent / "data"
_BARON = "baron2016_pancreas_328x12474_counts.h5ad"


def bundled_path(name: str = _BARON) -> Path:
    """Path of a file shipped in ``magmap/datasets/data`` (the h5ad and its PROVENANCE text)."""
    path = _DATA / name
    if not path.exists():
        raise FileNotFoundError(f"bundled file {name!r} is missing from {_DATA}; reinstall magmap.")
    return path


def baron2016_pancreas() -> ad.AnnData:
    """Baron et al. (2016) pancreas, a balanced 328-cell × 12,474-gene subset with raw UMI counts.

    Human and mouse donors (inDrop, GEO GSE84133), subset built by the CIDER authors (MIT).
    ``obs["cell_type"]`` has 5 types (alpha, beta, delta, macrophage, activated_stellate);
    ``obs["species"]`` and ``obs["donor"]`` describe the batches. ``X`` is a CSR matrix of counts.
    ``uns["provenance"]`` holds the provenance text.
    """
    adata = ad.read_h5ad(bundled_path())
    adata.uns["provenance"] = bundled_path(_BARON.replace(".h5ad", ".PROVENANCE.txt")).read_text()
    return adata
