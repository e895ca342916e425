"""Run the real CRAN robin through rpy2 when it is installed (``backend="robin"``/``"auto"``).

robin is not installable on Debian-only machines (its Imports networkD3, DescTools, fdatest and
perturbR are not packaged), so this path is optional; the native Python implementation is the default
and the one the test-suite pins to robin's golden values.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from .._utils import versions
from ..robustness.result import RobinResult
from ._embedded_r import robjects

__all__ = ["robin_available", "robin_in_r"]

# robin's method names for the methods both implementations share
_R_METHODS = {"louvain": "louvain", "leiden": "leiden", "walktrap": "walktrap", "fastgreedy": "fastGreedy",
              "infomap": "infomap", "label_propagation": "labelProp", "edge_betweenness": "edgeBetweenness",
              "leading_eigen": "leadingEigen", "spinglass": "spinglass", "optimal": "optimal"}
_R_MEASURES = {"vi": "vi", "nmi": "nmi", "split_join": "split.join", "ari": "adjusted.rand"}


def robin_available() -> bool:
    """True when rpy2 imports and R has the ``robin`` package."""
    try:
        ro = robjects()
    except Exception:  # rpy2 missing or R not loadable
        return False
    try:
        return bool(ro.r('isTRUE(requireNamespace("robin", quietly = TRUE))')[0])
    except Exception:
        return False


#: The R driver shared with magmap's R package (which sources the copy it carries).
DRIVER = Path(__file__).with_name("robin_driver.R")


@functools.lru_cache(maxsize=1)
def _driver():
    """The driver's ``magmap_robin_run``, sourced once per session into its own R environment (the
    user's global environment is left alone)."""
    return robjects().r("function(path) { env <- new.env(); sys.source(path, envir = env); env$magmap_robin_run }")(
        str(DRIVER))


def robin_in_r(graph: Any, *, method: str, measure: str, type: str, weighted: Any, seed: int | None,
               key: str | None = None, axis: str = "obs") -> RobinResult:
    """One robin run (``random`` + ``robinRobust`` + ``robinGPTest`` + ``robinAUC``) in R."""
    from ..robustness._graph_input import as_graph
    from ..robustness.communities import canonical_method
    from ..robustness.measures import canonical_measure

    if not robin_available():
        raise ImportError("backend='robin' needs R with the robin package and the Python package rpy2; "
                          "use backend='python' (the default) for the native implementation.")
    ro = robjects()
    method_c, measure_c = canonical_method(method), canonical_measure(measure)
    if method_c not in _R_METHODS:
        raise ValueError(f"method {method!r} has no robin equivalent; use backend='python'.")
    g = as_graph(graph, key=key, axis=axis)
    edges = np.asarray(g.get_edgelist(), dtype=np.int64).ravel() + 1
    weights = ro.FloatVector(g.es["weight"]) if weighted else ro.NULL
    out = _driver()(ro.IntVector(edges.tolist()), g.vcount(), weights, _R_METHODS[method_c],
                    _R_MEASURES[measure_c], type=type, seed=ro.NULL if seed is None else int(seed))
    real = np.asarray(out.rx2("curve_real"), dtype=float)
    null = np.asarray(out.rx2("curve_null"), dtype=float)
    levels = np.asarray(out.rx2("levels"), dtype=float)
    return RobinResult(
        curve_real=real, curve_null=null, levels=levels, bayes_factor=float(out.rx2("bayes_factor")[0]),
        auc=tuple(float(a) for a in out.rx2("auc")), labels=("real data", "null model"), mode="robust",
        methods=(method_c,), measure=measure_c, type=type, communities_real=[], communities_null=[], gp={},
        params={"seed": seed, "n_vertices": g.vcount(), "n_edges": g.ecount(), "null": "rewired",
                "versions": {**versions(), "robin": str(out.rx2("params").rx2("robin")[0])}},
        backend="robin",
    )
