"""High-dimensional UMAP graph: kNN (exact for small n, pynndescent otherwise) + umap-learn fuzzy set.

umap-learn's ``fuzzy_simplicial_set`` and pynndescent's ``NNDescent`` are used as libraries, with
umap-learn's own NNDescent settings (``pumap_spec.md`` §1.1).
"""
from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger("magmap")

__all__ = ["nearest_neighbors", "fuzzy_graph", "edge_list", "default_n_epochs", "EXACT_KNN_MAX_CELLS"]

#: Below this many cells the kNN is computed exactly (umap-learn's small-data path uses 4096).
EXACT_KNN_MAX_CELLS = 4096


def nearest_neighbors(
    X: np.ndarray, n_neighbors: int, *, metric: str = "euclidean", random_state: int | None = 0,
    exact: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """k nearest neighbours of every row of ``X``, the cell itself at column 0 (distance 0).

    Exact (scikit-learn brute force) when ``exact`` is true or, for ``exact=None``, when there are
    fewer than :data:`EXACT_KNN_MAX_CELLS` cells; otherwise pynndescent with umap-learn's settings.

    Returns
    -------
    indices, distances
        Arrays of shape ``(n_cells, n_neighbors)`` (int64, float32).
    """
    n = X.shape[0]
    if exact is None:
        exact = n < EXACT_KNN_MAX_CELLS
    if exact:
        from sklearn.neighbors import NearestNeighbors

        nn = NearestNeighbors(n_neighbors=n_neighbors, metric=metric, algorithm="brute").fit(X)
        dist, ind = nn.kneighbors(X)
        # duplicates can tie with self: put self first explicitly
        rows = np.arange(n)
        not_self = ind[:, 0] != rows
        if np.any(not_self):
            for i in np.flatnonzero(not_self):
                pos = np.flatnonzero(ind[i] == i)
                j = pos[0] if pos.size else n_neighbors - 1
                ind[i, 1:j + 1] = ind[i, 0:j].copy()
                dist[i, 1:j + 1] = dist[i, 0:j].copy()
                ind[i, 0], dist[i, 0] = i, 0.0
        return ind.astype(np.int64), dist.astype(np.float32)
    from pynndescent import NNDescent

    index = NNDescent(
        X, n_neighbors=n_neighbors, metric=metric,
        n_trees=min(64, 5 + int(round(np.sqrt(n) / 20.0))),
        n_iters=max(5, int(round(np.log2(n)))), max_candidates=60, low_memory=True,
        random_state=random_state, n_jobs=1 if random_state is not None else None, verbose=False,
    )
    ind, dist = index.neighbor_graph
    return ind.astype(np.int64), dist.astype(np.float32)


def fuzzy_graph(
    knn_indices: np.ndarray, knn_dists: np.ndarray, *, random_state: int | None = 0
) -> sp.csr_matrix:
    """Symmetric fuzzy simplicial set (umap-learn, ``set_op_mix_ratio=1``, ``local_connectivity=1``)."""
    from umap.umap_ import fuzzy_simplicial_set

    n, k = knn_indices.shape
    rs = np.random.RandomState(0 if random_state is None else random_state)
    out = fuzzy_simplicial_set(
        sp.coo_matrix((n, 1)), k, rs, "euclidean", knn_indices=knn_indices, knn_dists=knn_dists,
    )
    graph = out[0] if isinstance(out, tuple) else out
    graph = sp.csr_matrix(graph, dtype=np.float32)
    graph.eliminate_zeros()
    return graph


def default_n_epochs(n_cells: int) -> int:
    """umap-learn's default epoch count, used for edge pruning: 500 up to 10,000 cells, else 200."""
    return 500 if n_cells <= 10_000 else 200


def edge_list(graph: sp.csr_matrix, *, prune_epochs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Directed edges (head, tail, weight) with umap-learn's pruning ``w >= max(w) / prune_epochs``."""
    coo = graph.tocoo()
    keep = coo.data >= coo.data.max() / float(prune_epochs)
    return coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64), coo.data[keep].astype(np.float32)
