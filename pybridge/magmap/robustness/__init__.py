"""Network robustness as the R package robin measures it (Policastro et al.), natively in Python.

Main entry points
-----------------
:func:`robin`
    Perturbation curves of a graph and of a degree-preserving null model, with robin's GP Bayes
    factor (**natural-log** marginal-likelihood ratio, as robin reports it) and AUC.
:func:`compare`
    The same for two community methods on one graph (``robinCompare``).
:func:`bayes_factor`, :func:`auc`
    The two statistics on any pair of (repeats × levels) curve matrices.

The behaviour follows robin ≥ 2.0 (with recent igraph, Leiden uses the modularity
objective), with one improvement: a seed makes runs reproducible regardless of ``n_jobs``. Design
notes and measurements: ``docs/robustness.md``.
"""
from ._graph_input import as_graph, prep_graph
from .api import compare, robin
from .auc import auc
from .communities import METHODS
from .gp import GPTestResult, bayes_factor, gp_test
from .measures import MEASURES, normalised_distance
from .null import random_graph, rewire
from .perturb import DEFAULT_LEVELS, trial_counts
from .plot import plot_curves, plot_multi_compare
from .result import RobinResult

__all__ = [
    "robin", "compare", "bayes_factor", "auc", "gp_test", "GPTestResult", "RobinResult", "plot_curves",
    "plot_multi_compare",
    "random_graph", "rewire", "trial_counts", "prep_graph", "as_graph", "normalised_distance",
    "METHODS", "MEASURES", "DEFAULT_LEVELS",
]
