"""magmap: noise-robust cell and gene networks (MED-MAGMA) and robust parametric UMAP.

Python entry points follow scanpy (``magmap.tl.*`` on AnnData) and scikit-learn (estimators with
``fit``/``transform``); the R package ``magmap`` calls the same core through ``magmap.r_api``.
"""
from ._version import __version__
from . import datasets
from . import io
from . import robustness
from . import crown
from . import umap
from .umap import RobustUMAP
from . import metrics
from . import tl

__all__ = ["__version__", "datasets"]
from . import medmagma
from .medmagma import MedMagma, GmGM, SingleAxis
