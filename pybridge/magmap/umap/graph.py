"""High-dimensional UMAP graph: kNN (exact for small n, pynndescent otherwise), the fuzzy simplicial
set, and umap-learn's edge schedule.

pynndescent's ``NNDescent`` is used with umap-learn's own settings; the fuzzy set and the schedule are
re-implemented with NumPy (vectorised over cells, no JIT compilation on first use) and tested against
umap-learn.
"""
from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger("magmap")

__all__ = ["nearest_neighbors", "nndescent_index", "smooth_knn_dist", "fuzzy_graph", "edge_list", "default_n_epochs", "due_edges",
           "EXACT_KNN_MAX_CELLS"]

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
    ind, dist = nndescent_index(X, n_neighbors, metric=metric, random_state=random_state).neighbor_graph
    return ind.astype(np.int64), dist.astype(np.float32)


def nndescent_index(X: np.ndarray, n_neighbors: int, *, metric: str = "euclidean", random_state: int | None = 0):
    """A pynndescent ``NNDescent`` index of the rows of ``X`` with umap-learn's settings."""
    from pynndescent import NNDescent

    n = X.shape[0]
    return NNDescent(
        X, n_neighbors=n_neighbors, metric=metric,
        n_trees=min(64, 5 + int(round(np.sqrt(n) / 20.0))),
        n_iters=max(5, int(round(np.log2(n)))), max_candidates=60, low_memory=True,
        random_state=random_state, n_jobs=1 if random_state is not None else None, verbose=False,
    )


#: Tolerance of the σ search and floor of σ relative to the mean kNN distance (umap-learn's constants).
_SMOOTH_K_TOLERANCE = 1e-5
_MIN_K_DIST_SCALE = 1e-3


def smooth_knn_dist(knn_dists: np.ndarray, k: float, *, n_iter: int = 64,
                    local_connectivity: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell σ and ρ of UMAP's membership kernel, for all cells at once.

    ρ_i is the distance to the nearest non-zero neighbour (``local_connectivity=1``), or 0
    (``local_connectivity=0``: what umap-learn's ``transform`` uses for new cells); σ_i solves
    ``Σ_{j≥1} exp(−max(0, d_ij − ρ_i)/σ_i) = log2(k)`` by the same bisection as umap-learn's
    ``smooth_knn_dist`` (64 halvings/doublings from σ=1, stopping per cell within 1e-5 of the target,
    floored at 1e-3 × the mean distance), vectorised over cells instead of compiled per cell.
    Column 0 of ``knn_dists`` is the cell itself (for new cells, as in umap-learn, their nearest
    neighbour, which the sum then skips).
    """
    if local_connectivity not in (0, 1):
        raise ValueError(f"`local_connectivity` must be 0 or 1, got {local_connectivity!r}.")
    d = np.asarray(knn_dists, dtype=np.float32)
    n = d.shape[0]
    target = np.log2(k)
    nonzero = d > 0
    has = nonzero.any(axis=1)
    # first non-zero distance of each row (rows are sorted ascending)
    first = np.argmax(nonzero, axis=1)
    rho = np.where(has & (local_connectivity == 1), d[np.arange(n), first], np.float32(0)).astype(np.float32)
    shifted = (d[:, 1:] - rho[:, None]).astype(np.float64)  # float32 difference, as umap-learn computes it
    pos = shifted > 0
    lo = np.zeros(n)
    hi = np.full(n, np.inf)
    mid = np.ones(n)
    active = np.ones(n, dtype=bool)
    for _ in range(n_iter):
        if not active.any():
            break
        rows = np.flatnonzero(active)
        s = shifted[rows]
        psum = np.where(pos[rows], np.exp(-np.maximum(s, 0.0) / mid[rows, None]), 1.0).sum(axis=1)
        done = np.abs(psum - target) < _SMOOTH_K_TOLERANCE
        over = ~done & (psum > target)
        under = ~done & ~over
        r_over, r_under = rows[over], rows[under]
        hi[r_over] = mid[r_over]
        mid[r_over] = (lo[r_over] + hi[r_over]) / 2.0
        lo[r_under] = mid[r_under]
        unbounded = np.isinf(hi[r_under])
        mid[r_under] = np.where(unbounded, mid[r_under] * 2.0, (lo[r_under] + hi[r_under]) / 2.0)
        active[rows[done]] = False
    sigma = mid.astype(np.float32)
    floor = np.where(rho > 0, _MIN_K_DIST_SCALE * d.mean(axis=1), _MIN_K_DIST_SCALE * d.mean()).astype(np.float32)
    return np.maximum(sigma, floor), rho


def fuzzy_graph(knn_indices: np.ndarray, knn_dists: np.ndarray) -> sp.csr_matrix:
    """Symmetric fuzzy simplicial set of a kNN graph (umap-learn's ``fuzzy_simplicial_set`` with
    ``set_op_mix_ratio=1``, ``local_connectivity=1``): directed memberships
    ``exp(−max(0, d_ij − ρ_i)/σ_i)`` (0 for the cell itself), then the fuzzy union ``A + Aᵀ − A∘Aᵀ``.

    Computed with NumPy/SciPy (no compilation on first use); equal to umap-learn's graph up to float32
    rounding (tested).
    """
    ind = np.asarray(knn_indices, dtype=np.int64)
    dist = np.asarray(knn_dists, dtype=np.float32)
    n, k = ind.shape
    sigma, rho = smooth_knn_dist(dist, float(k))
    vals = np.exp(-np.maximum(dist - rho[:, None], 0) / sigma[:, None]).astype(np.float32)
    vals[ind == np.arange(n)[:, None]] = 0.0
    keep = ind >= 0
    rows = np.repeat(np.arange(n), k)[keep.ravel()]
    A = sp.csr_matrix((vals[keep], (rows, ind[keep])), shape=(n, n))
    A.eliminate_zeros()
    At = A.T.tocsr()
    graph = (A + At - A.multiply(At)).tocsr()
    graph.eliminate_zeros()
    return graph.astype(np.float32)


def default_n_epochs(n_cells: int) -> int:
    """umap-learn's default epoch count, used for edge pruning: 500 up to 10,000 cells, else 200."""
    return 500 if n_cells <= 10_000 else 200


def edge_list(graph: sp.csr_matrix, *, prune_epochs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Directed edges (head, tail, weight) with umap-learn's pruning ``w >= max(w) / prune_epochs``."""
    coo = graph.tocoo()
    keep = coo.data >= coo.data.max() / float(prune_epochs)
    return coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64), coo.data[keep].astype(np.float32)


def due_edges(weights: np.ndarray, epoch: int, max_weight: float | None = None) -> np.ndarray:
    """Indices of the edges umap-learn updates in ``epoch`` (1-based): an edge of weight ``w`` is due every
    ``max(w)/w`` epochs (``make_epochs_per_sample``), i.e. ``⌊epoch·p⌋ − ⌊(epoch−1)·p⌋`` times with
    ``p = w / max(w)`` (0 or 1 since p ≤ 1); over ``n_epochs`` epochs an edge is used ``⌊n_epochs·p⌋`` times.
    ``max_weight`` (≥ every weight) replaces ``max(w)``, so an edge's schedule does not depend on the others."""
    p = np.asarray(weights, dtype=np.float64) / float(np.max(weights) if max_weight is None else max_weight)
    return np.flatnonzero(np.floor(epoch * p) > np.floor((epoch - 1) * p))
