"""Embedding quality metrics: trustworthiness, kNN preservation, kNN-classifier accuracy, dropout
correlation (robustness of an embedding to extra dropouts) and gene-impact summaries."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["trustworthiness", "knn_preservation", "knn_accuracy", "dropout_counts", "dropout_correlation",
           "gene_impact_summary"]


def _subsample(n: int, max_cells: int | None, random_state: int | None) -> np.ndarray:
    if max_cells is None or n <= max_cells:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, max_cells, replace=False))


def _dense(X: Any) -> np.ndarray:
    return X.toarray() if sp.issparse(X) else np.asarray(X)


def trustworthiness(X: Any, Z: np.ndarray, *, n_neighbors: int = 15, max_cells: int | None = 5000,
                    random_state: int | None = 0) -> float:
    """Trustworthiness T(k) of embedding ``Z`` of inputs ``X`` (scikit-learn), on ≤ ``max_cells`` cells.

    Penalises cells that are neighbours in ``Z`` but not in ``X``; 1 is perfect. Memory is O(n²), hence
    the subsample (Sainburg et al. used 10k cells).
    """
    from sklearn.manifold import trustworthiness as _tw

    idx = _subsample(Z.shape[0], max_cells, random_state)
    return float(_tw(_dense(X)[idx], np.asarray(Z)[idx], n_neighbors=n_neighbors))


def _knn(X: np.ndarray, k: int) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k + 1).fit(X)
    ind = nn.kneighbors(X, return_distance=False)
    out = np.empty((X.shape[0], k), dtype=np.int64)
    for i in range(X.shape[0]):  # drop self (robust to duplicates)
        row = ind[i][ind[i] != i]
        out[i] = row[:k]
    return out


def knn_preservation(X: Any, Z: np.ndarray, *, n_neighbors: int = 15, max_cells: int | None = 20000,
                     random_state: int | None = 0) -> float:
    """Mean fraction of each cell's ``n_neighbors`` nearest neighbours in ``X`` kept in ``Z`` (Kobak & Berens)."""
    idx = _subsample(Z.shape[0], max_cells, random_state)
    a = _knn(_dense(X)[idx], n_neighbors)
    b = _knn(np.asarray(Z)[idx], n_neighbors)
    return float(np.mean([len(np.intersect1d(a[i], b[i], assume_unique=True)) / n_neighbors for i in range(len(idx))]))


def knn_accuracy(Z: np.ndarray, labels: Any, *, Z_train: np.ndarray | None = None, labels_train: Any = None,
                 n_neighbors: int = 15) -> float:
    """kNN-classifier accuracy of cell labels in an embedding.

    Without ``Z_train``: leave-one-out majority vote of each cell's ``n_neighbors`` nearest other cells.
    With ``Z_train``/``labels_train``: a classifier fitted on the training cells predicts ``labels`` of
    the cells in ``Z`` (the out-of-sample test of projected cells).
    """
    from sklearn.neighbors import KNeighborsClassifier

    y = np.asarray(labels).astype(str)
    Z = np.asarray(Z)
    if Z_train is None:
        nb = _knn(Z, n_neighbors)
        pred = []
        for i in range(Z.shape[0]):
            vals, counts = np.unique(y[nb[i]], return_counts=True)
            pred.append(vals[np.argmax(counts)])
        return float(np.mean(np.asarray(pred) == y))
    clf = KNeighborsClassifier(n_neighbors=n_neighbors).fit(np.asarray(Z_train), np.asarray(labels_train).astype(str))
    return float(np.mean(clf.predict(Z) == y))


def dropout_counts(X: Any, rate: float, rng: np.random.Generator) -> sp.csr_matrix:
    """A copy of the counts ``X`` with each non-zero count zeroed independently with probability ``rate``
    (extra dropouts, as in the robust-UMAP paper's dropout experiment); ``X`` itself is not changed."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) or not 0 <= rate <= 1:
        raise ValueError(f"`rate` must be a probability between 0 and 1, got {rate!r}.")
    Xs = sp.csr_matrix(X, dtype=np.float64, copy=True)
    Xs.data[rng.random(Xs.data.size) < rate] = 0.0
    Xs.eliminate_zeros()
    return Xs


def dropout_correlation(embed: Callable[[Any], np.ndarray], X: Any, *, rates: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8),
                        n_repeats: int = 10, random_state: int | None = 0) -> dict[float, list[float]]:
    """Correlation between the embedding of counts ``X`` and of ``X`` with extra dropouts.

    ``embed`` maps counts to an embedding with the *training* statistics (e.g. ``model.transform``).
    For each rate and repeat, the Pearson r between unperturbed and perturbed coordinates is computed per
    dimension and averaged over dimensions. Returns ``{rate: [r per repeat]}``.
    """
    rng = np.random.default_rng(random_state)
    Z0 = np.asarray(embed(X))
    out: dict[float, list[float]] = {}
    for rate in rates:
        vals = []
        for _ in range(n_repeats):
            Zr = np.asarray(embed(dropout_counts(X, rate, rng)))
            vals.append(float(np.mean([np.corrcoef(Z0[:, j], Zr[:, j])[0, 1] for j in range(Z0.shape[1])])))
        out[float(rate)] = vals
    return out


def gene_impact_summary(impact: np.ndarray, *, scale: float = 1.0) -> dict[str, float]:
    """Summary of per-gene impacts: spread and tail of the distribution.

    ``scale`` divides the impacts first (e.g. √A_ref, so models with different embedding scales compare).
    """
    v = np.asarray(impact, dtype=np.float64) / scale
    return {"mean": float(v.mean()), "median": float(np.median(v)), "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            "q95": float(np.quantile(v, 0.95)), "max": float(v.max()),
            "top_gene_share": float(v.max() / v.sum()) if v.sum() > 0 else 0.0}
