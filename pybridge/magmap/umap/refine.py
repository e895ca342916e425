"""Refining projected cells on the frozen training map, as umap-learn's ``transform`` places new points.

The encoder maps a new cell to a smooth function of its expression. umap-learn's ``transform`` instead
optimises each new cell's position against the training embedding, which stays fixed: attraction to
its nearest training cells (memberships of a bipartite fuzzy graph, ``local_connectivity=0``) and
repulsion from random training cells, 100 epochs of SGD (30 beyond 10,000 new cells) at a quarter of
the fit's learning rate. :func:`refine_embedding` runs that optimisation from the encoder's output,
vectorised over cells (each epoch's forces are summed and applied at once instead of edge by edge).
The refined coordinates are not the encoder's: certificates bound the encoder's output, the start.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._inputs import model_inputs
from .graph import EXACT_KNN_MAX_CELLS, due_edges, nndescent_index, smooth_knn_dist
from .losses import umap_forces

__all__ = ["REFINE_LEARNING_RATE", "default_refine_epochs", "query_neighbors", "query_memberships",
           "refine_embedding", "refine_projection"]

#: umap-learn's ``transform``: SGD at ``initial_alpha / 4`` (its fit starts at 1), decaying linearly to 0.
REFINE_LEARNING_RATE = 0.25


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


def refine_embedding(
    init: np.ndarray, reference_embedding: np.ndarray, indices: np.ndarray, memberships: np.ndarray, *,
    a: float, b: float, n_epochs: int, negative_sample_rate: int = 5, repulsion_strength: float = 1.0,
    learning_rate: float = REFINE_LEARNING_RATE, seed: int = 0,
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
        (:func:`query_memberships`). Edges below ``max / n_epochs`` are dropped, as umap-learn does.
    a, b, negative_sample_rate, repulsion_strength
        The fitted model's kernel and sampling settings.
    n_epochs, learning_rate, seed
        SGD epochs (an edge of membership ``w`` is used every ``max(w)/w`` epochs), the initial step
        (decaying linearly to 0) and the seed of the negative samples.
    """
    n, k = indices.shape
    z = torch.from_numpy(np.array(init, dtype=np.float32, copy=True))
    if n == 0 or n_epochs == 0:
        return z.numpy()
    ref = torch.from_numpy(np.ascontiguousarray(reference_embedding, dtype=np.float32))
    w = np.asarray(memberships, dtype=np.float32).ravel()
    keep = np.flatnonzero((w >= w.max() / float(n_epochs)) & (np.asarray(indices).ravel() >= 0))
    heads = torch.from_numpy(np.repeat(np.arange(n, dtype=np.int64), k)[keep])
    tails = torch.from_numpy(np.asarray(indices, dtype=np.int64).ravel()[keep])
    w = w[keep]
    gen = torch.Generator().manual_seed(int(seed))
    for epoch in range(1, n_epochs + 1):
        due = torch.from_numpy(due_edges(w, epoch))
        if due.numel() == 0:
            continue
        h = heads[due]
        negatives = torch.randint(0, ref.shape[0], (int(negative_sample_rate) * h.numel(),), generator=gen)
        grad, _ = umap_forces(z, h, tails[due], negatives, a=a, b=b, repulsion_strength=repulsion_strength,
                              other=ref)
        # umap_forces averages over edges; SGD moves each cell by the sum of its edges' forces
        z.sub_(grad, alpha=learning_rate * (1.0 - (epoch - 1) / n_epochs) * h.numel())
    return z.numpy()


def refine_projection(model: Any, X: Any, init: np.ndarray, *, layer: str | None, missing_genes: str,
                      chunk_size: int, n_epochs: int | None) -> np.ndarray:
    """:func:`refine_embedding` for cells ``X`` projected by ``model`` to ``init``: their coordinates in the
    fit's graph space (principal components of the model input), their nearest training cells there, and
    the optimisation against ``model.embedding_``."""
    reference = getattr(model, "graph_coords_", None)
    if reference is None or getattr(model, "embedding_", None) is None:
        raise ValueError("`refine=True` needs the training cells' coordinates, which this model does not hold "
                         "(model files written before this option hold no `graph_coords`); refit the model, or call "
                         "transform() with refine=False.")
    if init.shape[0] == 0:
        return init
    pre = model.preprocessor_
    query = np.concatenate([pre.pca(Xz) for Xz in model_inputs(model, X, layer, missing_genes, chunk_size)])
    n_neighbors = min(int(model.n_neighbors), reference.shape[0])
    ind, dist, index = query_neighbors(reference, query, n_neighbors, metric=model.metric,
                                       random_state=model.random_state_, index=getattr(model, "_refine_index", None))
    model._refine_index = index  # the pynndescent index is reused by later calls (fit resets it; never saved)
    epochs = default_refine_epochs(query.shape[0]) if n_epochs is None else int(n_epochs)
    return refine_embedding(init, model.embedding_, ind, query_memberships(dist), a=model.a_, b=model.b_,
                            n_epochs=epochs, negative_sample_rate=int(model.negative_sample_rate),
                            repulsion_strength=float(model.repulsion_strength), seed=model.random_state_)
