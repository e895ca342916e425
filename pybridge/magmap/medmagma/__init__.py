"""MED-MAGMA: noise-robust cell and gene networks (quotient map, Laplace EM, GmGM M-step), the
noise-unaware baselines (GmGM, single-axis MLE), and :func:`learn_graphs`, the array-level entry
that ``magmap.tl`` and the R package both call."""
from ._api import GraphResult, gene_mask, learn_graphs
from ._graph import LowRankPrecision, precision_graph
from .baselines import GmGM, SingleAxis
from .estimators import DegenerateSolutionWarning, MedMagma, memory_needed
from .quotient import log_quotient, quotient

__all__ = ["learn_graphs", "GraphResult", "gene_mask", "MedMagma", "GmGM", "SingleAxis", "DegenerateSolutionWarning",
           "precision_graph", "LowRankPrecision", "quotient", "log_quotient", "memory_needed"]
