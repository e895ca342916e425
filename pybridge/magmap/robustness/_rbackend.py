"""Run the real CRAN robin through rpy2 when it is installed (``backend="robin"``/``"auto"``).

robin is not installable on Debian-only machines (its Imports networkD3, DescTools, fdatest and
perturbR are not packaged), so this path is optional; the native Python implementation is the default
and the one the test-suite pins to robin's golden values.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .._utils import versions
from .result import RobinResult

__all__ = ["robin_available", "robin_in_r"]

# robin's method names for the methods both implementations share
_R_METHODS = {"louvain": "louvain", "leiden": "leiden", "walktrap": "walktrap", "fastgreedy": "fastGreedy",
              "infomap": "infomap", "label_propagation": "labelProp", "edge_betweenness": "edgeBetweenness",
              "leading_eigen": "leadingEigen", "spinglass": "spinglass", "optimal": "optimal"}
_R_MEASURES = {"vi": "vi", "nmi": "nmi", "split_join": "split.join", "ari": "adjusted.rand"}


def robin_available() -> bool:
    """True when rpy2 imports and R has the ``robin`` package."""
    try:
        import rpy2.robjects as ro
    except Exception:  # rpy2 missing or R not loadable
        return False
    try:
        return bool(ro.r('isTRUE(requireNamespace("robin", quietly = TRUE))')[0])
    except Exception:
        return False


_R_RUN = """
function(edges, n, weights, method, measure, type, seed) {
    g <- igraph::make_empty_graph(n = n, directed = FALSE)
    if (length(edges)) g <- igraph::add_edges(g, t(matrix(edges, ncol = 2)))
    if (!is.null(weights)) igraph::E(g)$weight <- weights
    if (!is.null(seed)) set.seed(seed)
    g_null <- robin::random(graph = g)
    args <- list(graph = g, graphRandom = g_null, method = method, measure = measure, type = type)
    if (method == "leiden") args$objective_function <- "modularity"
    res <- do.call(robin::robinRobust, args)
    bf <- robin::robinGPTest(res)
    area <- robin::robinAUC(res)
    list(real = unname(as.matrix(res$Mean)), null = unname(as.matrix(res$MeanRandom)), bf = as.numeric(bf),
         auc = as.numeric(unlist(area)), version = as.character(utils::packageVersion("robin")))
}
"""


def robin_in_r(graph: Any, *, method: str, measure: str, type: str, weighted: Any, seed: int | None,
               key: str | None = None, axis: str = "obs") -> RobinResult:
    """One robin run (``random`` + ``robinRobust`` + ``robinGPTest`` + ``robinAUC``) in R."""
    from ._graph_input import as_graph
    from .communities import canonical_method
    from .measures import canonical_measure

    import rpy2.robjects as ro

    if not robin_available():
        raise ImportError("backend='robin' needs R with the robin package and the Python package rpy2; "
                          "use backend='python' (the default) for the native implementation.")
    method_c, measure_c = canonical_method(method), canonical_measure(measure)
    if method_c not in _R_METHODS:
        raise ValueError(f"method {method!r} has no robin equivalent; use backend='python'.")
    g = as_graph(graph, key=key, axis=axis)
    edges = np.asarray(g.get_edgelist(), dtype=np.int64).ravel() + 1
    weights = ro.FloatVector(g.es["weight"]) if weighted else ro.NULL
    out = ro.r(_R_RUN)(ro.IntVector(edges.tolist()), g.vcount(), weights, _R_METHODS[method_c],
                       _R_MEASURES[measure_c], type, ro.NULL if seed is None else int(seed))
    real = np.asarray(out.rx2("real"), dtype=float)
    null = np.asarray(out.rx2("null"), dtype=float)
    levels = np.arange(0, 65, 5, dtype=float)
    return RobinResult(
        curve_real=real, curve_null=null, levels=levels, bayes_factor=float(out.rx2("bf")[0]),
        auc=tuple(float(a) for a in out.rx2("auc")), labels=("real data", "null model"), mode="robust",
        methods=(method_c,), measure=measure_c, type=type, communities_real=[], communities_null=[], gp={},
        params={"seed": seed, "n_vertices": g.vcount(), "n_edges": g.ecount(), "null": "rewired",
                "versions": {**versions(), "robin": str(out.rx2("version")[0])}},
        backend="robin",
    )
