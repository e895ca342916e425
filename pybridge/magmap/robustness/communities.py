"""Community detection methods as robin calls them, on python-igraph.

Each method returns a membership list. Edge weights are used when the graph has a ``weight``
edge attribute (only on the opt-in weighted path, see :mod:`.null`).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import igraph as ig

__all__ = ["METHODS", "canonical_method", "membership"]

#: Canonical method names (robin's spellings are accepted as aliases, see :func:`canonical_method`).
METHODS: tuple[str, ...] = (
    "louvain", "leiden", "walktrap", "fastgreedy", "infomap", "label_propagation",
    "edge_betweenness", "leading_eigen", "spinglass", "optimal",
)
_ALIASES = {
    "louvain": "louvain", "multilevel": "louvain",
    "leiden": "leiden",
    "walktrap": "walktrap",
    "fastgreedy": "fastgreedy", "fast_greedy": "fastgreedy", "fastGreedy": "fastgreedy",
    "infomap": "infomap",
    "label_propagation": "label_propagation", "labelProp": "label_propagation", "labelprop": "label_propagation",
    "edge_betweenness": "edge_betweenness", "edgeBetweenness": "edge_betweenness",
    "leading_eigen": "leading_eigen", "leadingEigen": "leading_eigen", "leading_eigenvector": "leading_eigen",
    "spinglass": "spinglass",
    "optimal": "optimal",
}


def canonical_method(method: str | Callable[..., Any]) -> str | Callable[..., Any]:
    """Return the canonical method name (or the callable unchanged).

    A callable ``f(graph, **method_args)`` must return an ``igraph.VertexClustering`` or a
    membership sequence (robin's ``method="other"`` with ``FUN``).
    """
    if callable(method):
        return method
    if not isinstance(method, str) or method not in _ALIASES:
        raise ValueError(
            f"Unknown community method {method!r}; use one of {list(METHODS)} "
            f"(robin's names such as 'fastGreedy' and 'labelProp' are accepted) or a callable."
        )
    return _ALIASES[method]


def _weights(g: ig.Graph) -> str | None:
    return "weight" if "weight" in g.edge_attributes() else None


def membership(g: ig.Graph, method: str | Callable[..., Any], method_args: dict[str, Any] | None = None) -> list[int]:
    """Partition ``g`` with ``method`` and igraph's defaults as robin uses them, plus ``method_args``.

    Defaults (robin/R igraph): walktrap ``steps=4`` cut at maximum modularity; fastgreedy and
    edge-betweenness cut at maximum modularity; louvain ``resolution=1``; **leiden with the
    modularity objective**, ``resolution=1``, ``beta=0.01``, ``n_iterations=2`` and vertex weights
    ``strength(g)`` with self-loops counted twice, as R's ``cluster_leiden`` (python-igraph's own
    default objective is CPM, which gives singletons); infomap ``trials=10``; spinglass ``spins=25``.
    """
    args = dict(method_args or {})
    w = _weights(g)
    if callable(method):
        out = method(g, **args)
        return list(out.membership if hasattr(out, "membership") else out)
    if method == "louvain":
        args.setdefault("resolution", 1.0)
        cl = g.community_multilevel(weights=w, **args)
    elif method == "leiden":
        args.setdefault("objective_function", "modularity")
        args.setdefault("resolution", args.pop("resolution_parameter", 1.0))
        args.setdefault("beta", 0.01)
        args.setdefault("n_iterations", 2)
        if args["objective_function"].lower() == "modularity" and args.get("node_weights") is None:
            # R igraph's cluster_leiden passes strength(graph) (self-loops counted twice) as vertex
            # weights; python-igraph's default leaves self-loops out, which changes results on graphs
            # with loops (MED-MAGMA's gene graph). Identical on loop-free graphs.
            args["node_weights"] = g.strength(weights=w, loops=True)
        cl = g.community_leiden(weights=w, **args)
    elif method == "walktrap":
        args.setdefault("steps", 4)
        cl = g.community_walktrap(weights=w, **args).as_clustering()
    elif method == "fastgreedy":
        cl = g.community_fastgreedy(weights=w, **args).as_clustering()
    elif method == "infomap":
        args.setdefault("trials", 10)
        cl = g.community_infomap(edge_weights=w, **args)
    elif method == "label_propagation":
        cl = g.community_label_propagation(weights=w, **args)
    elif method == "edge_betweenness":
        cl = g.community_edge_betweenness(weights=w, **args).as_clustering()
    elif method == "leading_eigen":
        cl = g.community_leading_eigenvector(weights=w, **args)
    elif method == "spinglass":
        args.setdefault("spins", 25)
        cl = g.community_spinglass(weights=w, **args)
    elif method == "optimal":
        cl = g.community_optimal_modularity(weights=w, **args)
    else:  # pragma: no cover - canonical_method guards this
        raise ValueError(f"Unknown community method {method!r}.")
    return list(cl.membership)
