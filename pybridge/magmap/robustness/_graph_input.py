"""Turn any supported graph input into one canonical undirected igraph graph.

Accepted: a scipy sparse (or dense NumPy) symmetric adjacency matrix, an ``igraph.Graph``, a
``networkx`` graph, or an AnnData object plus ``key=`` naming an ``obsp`` (``axis="obs"``, cell
graph) or ``varp`` (``axis="var"``, gene graph) entry; edge weights must be ≥ 0 (unsigned graphs). The canonical form has vertices in input
order and edges sorted as ``(i, j)`` with ``i <= j``, so every input type gives the same result
at a fixed seed. Multi-edges are collapsed (weights summed); self-loops are kept, as robin keeps
them unless ``prepGraph`` is called (see :func:`prep_graph`).
"""
from __future__ import annotations

import logging
from typing import Any

import igraph as ig
import numpy as np
import scipy.sparse as sp

__all__ = ["as_graph", "prep_graph", "resolve_weighted"]

logger = logging.getLogger("magmap")


def _from_edges(n: int, rows: np.ndarray, cols: np.ndarray, w: np.ndarray, name: str) -> ig.Graph:
    lo = np.minimum(rows, cols).astype(np.int64)
    hi = np.maximum(rows, cols).astype(np.int64)
    w = np.asarray(w, dtype=float)
    if np.any(w < 0):
        # A signed graph (e.g. a precision or correlation matrix) would have its negative edges
        # counted as ordinary edges by community detection and robin's perturbations.
        raise ValueError(
            f"`{name}` has {int((w < 0).sum())} edge(s) with negative weight (min {w.min():g}); robin takes "
            f"unsigned graphs (weights ≥ 0, an edge's strength). Pass absolute values, e.g. abs(A) for a "
            f"matrix (magmap's obsp/varp graphs already hold |Ψ|), or keep only positive edges, e.g. "
            f"A.multiply(A > 0)."
        )
    if lo.size:
        code = lo * n + hi
        uniq, inv = np.unique(code, return_inverse=True)
        if uniq.size < code.size:
            logger.info("Collapsed %d multi-edge(s) into single edges (weights summed).", code.size - uniq.size)
        wsum = np.bincount(inv, weights=w, minlength=uniq.size)
        lo, hi, w = uniq // n, uniq % n, wsum
    g = ig.Graph(n=n, edges=list(zip(lo.tolist(), hi.tolist())), directed=False)
    g.es["weight"] = w.tolist()
    return g


def _from_matrix(A: Any, name: str) -> ig.Graph:
    A = sp.csr_matrix(A) if not sp.issparse(A) else A.tocsr()
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"`{name}` must be a square adjacency matrix, got shape {A.shape}.")
    if not np.issubdtype(A.dtype, np.number) and A.dtype != bool:
        raise TypeError(f"`{name}` must hold numbers, got dtype {A.dtype}.")
    A = A.astype(float)
    A.eliminate_zeros()
    if A.nnz and not np.all(np.isfinite(A.data)):
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    asym = abs(A - A.T)
    if asym.nnz and asym.max() > 1e-12 * max(1.0, abs(A).max()):
        raise ValueError(
            f"`{name}` is not symmetric, i.e. a directed graph; robin works on undirected graphs. "
            f"Symmetrise it first, e.g. A.maximum(A.T) (igraph's as_undirected(mode='collapse'))."
        )
    U = sp.triu(A, k=0).tocoo()
    return _from_edges(A.shape[0], U.row, U.col, U.data, name)


def _from_igraph(g: ig.Graph, name: str) -> ig.Graph:
    if g.is_directed():
        raise ValueError(
            "The igraph graph is directed; robin works on undirected graphs. Convert it first with "
            "g.as_undirected(mode='collapse') (what MED-MAGMA's robin script does)."
        )
    el = np.asarray(g.get_edgelist(), dtype=np.int64).reshape(-1, 2)
    w = np.asarray(g.es["weight"], dtype=float) if "weight" in g.edge_attributes() else np.ones(len(el))
    return _from_edges(g.vcount(), el[:, 0], el[:, 1], w, name)


def _from_networkx(G: Any, name: str) -> ig.Graph:
    if G.is_directed():
        raise ValueError(
            "The networkx graph is directed; robin works on undirected graphs. Convert it first with "
            "G.to_undirected()."
        )
    nodes = list(G.nodes)
    index = {v: i for i, v in enumerate(nodes)}
    rows, cols, w = [], [], []
    for u, v, d in G.edges(data=True):
        rows.append(index[u])
        cols.append(index[v])
        w.append(float(d.get("weight", 1.0)))
    return _from_edges(len(nodes), np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64), np.asarray(w),
                       name)


def _from_anndata(adata: Any, key: str | None, axis: str) -> ig.Graph:
    if axis not in ("obs", "var"):
        raise ValueError(f"`axis` must be 'obs' (cell graph, obsp) or 'var' (gene graph, varp), got {axis!r}.")
    store = adata.obsp if axis == "obs" else adata.varp
    slot = f"{axis}p"
    if key is None:
        raise ValueError(
            f"An AnnData input needs `key=` naming an adata.{slot} entry (available: {sorted(store.keys())}), "
            f"e.g. key='medmagma_connectivities'."
        )
    if key not in store:
        other = adata.varp if axis == "obs" else adata.obsp
        hint = f" It is in adata.{'varp' if axis == 'obs' else 'obsp'}: pass axis='{'var' if axis == 'obs' else 'obs'}'." \
            if key in other else ""
        raise KeyError(f"`key={key!r}` is not in adata.{slot} (available: {sorted(store.keys())}).{hint}")
    return _from_matrix(store[key], f"adata.{slot}[{key!r}]")


def as_graph(graph: Any, *, key: str | None = None, axis: str = "obs", name: str = "graph") -> ig.Graph:
    """Canonical undirected igraph graph (with a ``weight`` attribute) from any supported input.

    Raises
    ------
    TypeError
        For an unsupported input type.
    ValueError
        For a directed (asymmetric) graph, negative edge weights, a non-square matrix, or a graph
        without vertices or edges.
    KeyError
        For an AnnData ``key`` that is not in ``obsp``/``varp``.
    """
    if isinstance(graph, ig.Graph):
        g = _from_igraph(graph, name)
    elif hasattr(graph, "obsp") and hasattr(graph, "varp"):
        g = _from_anndata(graph, key, axis)
    elif sp.issparse(graph) or isinstance(graph, np.ndarray):
        g = _from_matrix(graph, name)
    elif hasattr(graph, "is_directed") and hasattr(graph, "edges") and hasattr(graph, "nodes"):
        g = _from_networkx(graph, name)
    else:
        raise TypeError(
            f"`{name}` must be a scipy sparse adjacency matrix, an igraph.Graph, a networkx graph or an "
            f"AnnData object (with key=), got {type(graph).__name__}."
        )
    if key is not None and not (hasattr(graph, "obsp") and hasattr(graph, "varp")):
        raise ValueError("`key=` is only used with an AnnData input.")
    if g.vcount() == 0 or g.ecount() == 0:
        raise ValueError(f"`{name}` is empty ({g.vcount()} vertices, {g.ecount()} edges); robin needs a graph with edges.")
    return g


def resolve_weighted(g: ig.Graph, weighted: bool | str | None) -> str | None:
    """Decide the weighted scheme; drop the ``weight`` attribute on the unweighted path.

    ``None`` (default) and ``False`` use the unweighted, robin-compatible path; ``None`` warns in
    the log when the input carries non-uniform weights that are being ignored. ``True`` means
    ``"rewire"``. Weights are never used silently.
    """
    from .null import WEIGHTED_TYPES

    w = np.asarray(g.es["weight"], dtype=float)
    if weighted is None or weighted is False:
        if weighted is None and w.size and not np.allclose(w, w[0]):
            logger.warning(
                "The graph has non-uniform edge weights, which are ignored (robin's unweighted path). "
                "Pass weighted='rewire' or 'shuffle' to use them."
            )
        del g.es["weight"]
        return None
    scheme = "rewire" if weighted is True else weighted
    if scheme not in WEIGHTED_TYPES:
        raise ValueError(f"`weighted` must be None, False, True or one of {list(WEIGHTED_TYPES)}, got {weighted!r}.")
    if np.any(w <= 0):
        raise ValueError("Weighted robustness needs positive edge weights; found zero or negative weights.")
    return scheme


def prep_graph(graph: Any, *, key: str | None = None, axis: str = "obs") -> ig.Graph:
    """robin's ``prepGraph``: delete isolated vertices, then drop self-loops and collapse multi-edges.

    Optional, as in robin (MED-MAGMA did not call it, so its gene graph keeps its self-loops).
    Weights of merged edges are summed.
    """
    g = as_graph(graph, key=key, axis=axis)
    g.delete_vertices([v for v, d in enumerate(g.degree()) if d == 0])
    g.simplify(multiple=True, loops=True, combine_edges={"weight": "sum"})
    return g
