"""Refining projected cells on the frozen training map, as umap-learn's ``transform`` places new points.

The encoder maps a new cell to a smooth function of its expression. umap-learn's ``transform`` instead
optimises each new cell's position against the training embedding, which stays fixed: attraction to
its nearest training cells (memberships of a bipartite fuzzy graph, ``local_connectivity=0``) and
repulsion from random training cells, 100 epochs of SGD (30 beyond 10,000 new cells) at a quarter of
the fit's learning rate. :func:`refine_embedding` runs that optimisation from the encoder's output,
vectorised over cells (each epoch's forces are summed and applied at once instead of edge by edge).
The refined coordinates are not the encoder's: certificates bound the encoder's output, the start.

Each cell's optimisation depends on nothing but that cell (its start, its neighbours, the epoch count and
the seed): its negative samples are a hash of (seed, the cell's position in the whole query, edge,
epoch), and edges are scheduled against the largest possible membership (1) rather than the batch's
largest. So a query refined in chunks (``magmap.scale.project``, R's block-wise projection) gets what it
gets in one call, up to the rounding of the chunks' own arithmetic.
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch

from ._inputs import model_inputs
from .graph import EXACT_KNN_MAX_CELLS, due_edges, nndescent_index, smooth_knn_dist
from .losses import umap_forces

__all__ = ["MEMBERSHIP_MAX", "REFINE_LEARNING_RATE", "check_refinable", "default_refine_epochs", "negative_samples",
           "query_neighbors", "query_memberships", "refine_embedding", "refine_projection"]

#: umap-learn's ``transform``: SGD at ``initial_alpha / 4`` (its fit starts at 1), decaying linearly to 0.
REFINE_LEARNING_RATE = 0.25
#: Memberships ``exp(−d/σ)`` are at most 1 (a new cell on top of a training cell). umap-learn schedules edges
#: against the batch's largest membership; the bound keeps a cell's schedule independent of the batch.
MEMBERSHIP_MAX = 1.0

_MASK64 = (1 << 64) - 1
_INDEX_LOCK = threading.Lock()


def default_refine_epochs(n_query: int) -> int:
    """umap-learn's ``transform`` epochs: 100 for up to 10,000 new cells, 30 beyond."""
    return 100 if n_query <= 10_000 else 30


def query_neighbors(reference: np.ndarray, query: np.ndarray, n_neighbors: int, *, metric: str = "euclidean",
                    random_state: int | None = 0, index: Any = None) -> tuple[np.ndarray, np.ndarray, Any]:
    """The ``n_neighbors`` nearest ``reference`` rows of each ``query`` row (no self), sorted by distance.

    Exact (scikit-learn brute force) below :data:`~magmap.umap.graph.EXACT_KNN_MAX_CELLS` reference
    rows, as the fit's graph; otherwise a pynndescent index on the reference (``index``, when given,
    is reused) queried with umap-learn's ``epsilon=0.12``. Returns ``(indices, distances, index)``.
    """
    if reference.shape[0] < EXACT_KNN_MAX_CELLS:
        from sklearn.neighbors import NearestNeighbors

        dist, ind = NearestNeighbors(n_neighbors=n_neighbors, metric=metric, algorithm="brute").fit(
            reference).kneighbors(query)
        return ind.astype(np.int64), dist.astype(np.float32), None
    if index is None:
        index = nndescent_index(reference, n_neighbors, metric=metric, random_state=random_state)
    ind, dist = index.query(query, k=n_neighbors, epsilon=0.12)
    return ind.astype(np.int64), dist.astype(np.float32), index


def query_memberships(distances: np.ndarray) -> np.ndarray:
    """Memberships ``exp(−d/σ)`` of new cells to their nearest training cells (umap-learn's bipartite graph in
    ``transform``: ``local_connectivity=0``, so ρ = 0, and σ from the same bisection as the fit's)."""
    d = np.asarray(distances, dtype=np.float32)
    sigma, _ = smooth_knn_dist(d, float(d.shape[1]), local_connectivity=0)
    return np.exp(-d / sigma[:, None]).astype(np.float32)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on ``uint64`` (wrapping arithmetic): a bijection that scrambles every bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def negative_samples(edges: np.ndarray, epoch: int, rate: int, n_reference: int, seed: int) -> np.ndarray:
    """Training cells repelling each of ``edges`` in ``epoch``: ``rate`` per edge, laid out as ``umap_forces``
    takes them (all edges' first sample, then all edges' second, ...).

    ``edges`` are global edge numbers (``cell × n_neighbors + slot``, the cell counted over the whole
    query); each edge's samples are a hash of (``seed``, edge, ``epoch``): a start and a stride through the
    ``n_reference`` training cells. Uniform over the training cells, and the same for a cell whichever
    cells it is refined with.
    """
    with np.errstate(over="ignore"):
        key = np.asarray(edges, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        key ^= np.uint64((int(epoch) * 0xD1B54A32D192ED03 + int(seed) * 0x8CB92BA72F3D8DD7) & _MASK64)
        h = _mix64(key)
    n = np.uint64(n_reference)
    start = h % n
    # a stride from the hash's other half, in [1, n−1], spreads an edge's samples over the training cells
    stride = (h >> np.uint64(32)) % np.uint64(max(1, n_reference - 1)) + np.uint64(1)
    r = np.arange(int(rate), dtype=np.uint64)[:, None]
    return ((start[None, :] + r * stride[None, :]) % n).astype(np.int64).ravel()


def refine_embedding(
    init: np.ndarray, reference_embedding: np.ndarray, indices: np.ndarray, memberships: np.ndarray, *,
    a: float, b: float, n_epochs: int, negative_sample_rate: int = 5, repulsion_strength: float = 1.0,
    learning_rate: float = REFINE_LEARNING_RATE, seed: int = 0, first_cell: int = 0,
) -> np.ndarray:
    """Optimise new cells' coordinates against a frozen reference embedding (umap-learn's ``transform``).

    Parameters
    ----------
    init
        Starting coordinates ``(n_query, d)`` (the encoder's output).
    reference_embedding
        Training cells' coordinates ``(n_reference, d)``; they do not move.
    indices, memberships
        ``(n_query, k)`` nearest training cells of each new cell and their memberships
        (:func:`query_memberships`). An edge of membership ``w`` is used every ``1/w`` epochs
        (:data:`MEMBERSHIP_MAX`); edges below ``1/n_epochs`` are dropped, as umap-learn does.
    a, b, negative_sample_rate, repulsion_strength
        The fitted model's kernel and sampling settings.
    n_epochs, learning_rate, seed
        SGD epochs, the initial step (decaying linearly to 0) and the seed of the negative samples.
    first_cell
        Position of ``init``'s first row in the whole query, when it is refined in chunks: with the same
        ``n_epochs`` and ``seed``, each cell then gets the negative samples it gets in one call.
    """
    n, k = indices.shape
    z = torch.from_numpy(np.array(init, dtype=np.float32, copy=True))
    if n == 0 or n_epochs == 0:
        return z.numpy()
    ref = torch.from_numpy(np.ascontiguousarray(reference_embedding, dtype=np.float32))
    w = np.asarray(memberships, dtype=np.float32).ravel()
    keep = np.flatnonzero((w >= MEMBERSHIP_MAX / float(n_epochs)) & (np.asarray(indices).ravel() >= 0))
    heads = torch.from_numpy(keep // k)
    tails = torch.from_numpy(np.asarray(indices, dtype=np.int64).ravel()[keep])
    edge_ids = keep + int(first_cell) * k
    w = w[keep]
    for epoch in range(1, n_epochs + 1):
        due_np = due_edges(w, epoch, max_weight=MEMBERSHIP_MAX)
        if due_np.size == 0:
            continue
        due = torch.from_numpy(due_np)
        h = heads[due]
        negatives = torch.from_numpy(negative_samples(edge_ids[due_np], epoch, int(negative_sample_rate),
                                                      ref.shape[0], seed))
        grad, _ = umap_forces(z, h, tails[due], negatives, a=a, b=b, repulsion_strength=repulsion_strength,
                              other=ref, reduction="sum")
        z.sub_(grad, alpha=learning_rate * (1.0 - (epoch - 1) / n_epochs))
    return z.numpy()


def check_refinable(model: Any) -> None:
    """Raise the error a user sees when ``model`` holds no training coordinates to refine against."""
    if getattr(model, "graph_coords_", None) is None or getattr(model, "embedding_", None) is None:
        raise ValueError("`refine=True` needs the training cells' coordinates, which this model does not hold "
                         "(model files written before this option hold no `graph_coords`); refit the model, or call "
                         "transform() with refine=False.")


def refine_projection(model: Any, X: Any, init: np.ndarray, *, layer: str | None, missing_genes: str,
                      chunk_size: int, n_epochs: int | None, first_cell: int = 0) -> np.ndarray:
    """:func:`refine_embedding` for cells ``X`` projected by ``model`` to ``init``: their coordinates in the
    fit's graph space (principal components of the model input), their nearest training cells there, and
    the optimisation against ``model.embedding_``. ``n_epochs=None``: :func:`default_refine_epochs` of
    ``X``'s cells (a caller refining a query in chunks passes that of the whole query, and each chunk's
    ``first_cell``)."""
    check_refinable(model)
    reference = model.graph_coords_
    if init.shape[0] == 0:
        return init
    pre = model.preprocessor_
    query = np.concatenate([pre.pca(Xz) for Xz in model_inputs(model, X, layer, missing_genes, chunk_size)])
    n_neighbors = min(int(model.n_neighbors), reference.shape[0])
    with _INDEX_LOCK:  # threads refining chunks with one model build its search index once
        index = getattr(model, "_refine_index", None)
        if index is None and reference.shape[0] >= EXACT_KNN_MAX_CELLS:
            index = nndescent_index(reference, n_neighbors, metric=model.metric, random_state=model.random_state_)
            index.prepare()  # the search structures, built here rather than by concurrent first queries
            model._refine_index = index  # reused by later calls (fit resets it; never saved)
    ind, dist, _ = query_neighbors(reference, query, n_neighbors, metric=model.metric,
                                   random_state=model.random_state_, index=index)
    epochs = default_refine_epochs(query.shape[0]) if n_epochs is None else int(n_epochs)
    return refine_embedding(init, model.embedding_, ind, query_memberships(dist), a=model.a_, b=model.b_,
                            n_epochs=epochs, negative_sample_rate=int(model.negative_sample_rate),
                            repulsion_strength=float(model.repulsion_strength), seed=model.random_state_,
                            first_cell=first_cell)
