"""MED-MAGMA: noise-robust cell and gene networks (quotient map, Laplace EM, GmGM M-step) and the
noise-unaware baselines (GmGM, single-axis MLE)."""
from .baselines import GmGM, SingleAxis
from ._graph import precision_graph
from .estimators import DegenerateSolutionWarning, MedMagma, memory_needed
from .quotient import log_quotient, quotient

__all__ = ["MedMagma", "GmGM", "SingleAxis", "DegenerateSolutionWarning", "precision_graph", "quotient",
           "log_quotient", "memory_needed"]
