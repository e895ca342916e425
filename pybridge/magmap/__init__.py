"""magmap: noise-robust cell and gene networks (MED-MAGMA) and robust parametric UMAP.

Python entry points follow scanpy (``magmap.tl.*`` on AnnData) and scikit-learn (estimators with
``fit``/``transform``); the R package ``magmap`` calls the same core through ``magmap.rbridge``.

Subpackages: :mod:`magmap.medmagma` (MED-MAGMA, GmGM, single-axis), :mod:`magmap.umap` (robust
parametric UMAP), :mod:`magmap.crown` (bound propagation), :mod:`magmap.robustness` (robin-style
tests), :mod:`magmap.metrics`, :mod:`magmap.datasets`, :mod:`magmap.io` (file readers, R ``.rds`` interchange),
:mod:`magmap.rbridge` (everything that crosses to or from R),
:mod:`magmap.tl` (scanpy front doors), :mod:`magmap.preprocessing` (gene selection),
:mod:`magmap.pipeline` (the main job behind ``magmap run``).
"""
from ._version import __version__
from . import crown, datasets, io, medmagma, metrics, robustness, tl, umap
from . import pipeline, preprocessing
from .medmagma import GmGM, MedMagma, SingleAxis
from .umap import RobustUMAP

__all__ = [
    "__version__", "MedMagma", "GmGM", "SingleAxis", "RobustUMAP",
    "crown", "datasets", "io", "medmagma", "metrics", "robustness", "tl", "umap", "pipeline", "preprocessing",
]
