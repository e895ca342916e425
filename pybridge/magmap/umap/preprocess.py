"""Preprocessing stored in the model.

Fit on training counts: select highly variable genes (scanpy ``flavor="seurat_v3"`` on counts), then
``normalize_total(target_sum=1e4)`` on the selected genes, optional ``log1p``, centring with the training
means and optional scaling by the training standard deviations (scanpy ``pp.scale``: unbiased variance,
zero-variance genes get SD 1, no clipping). The result is the *model input* (what the encoder takes and
what certified radii are measured in). Optionally a PCA of the model input (``n_pcs`` components) gives
the space the kNN graph is built in; the encoder's first layer is trained on those components and folded
back onto the genes. New cells are aligned to the selected genes *by name* and transformed with the
stored statistics, chunk by chunk.

Library size is taken over the selected genes (genes are selected first, then normalised), so a query
only needs the selected genes. Cells with no counts in the selected genes stay all-zero before centring.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..preprocessing import select_hvg

logger = logging.getLogger("magmap")

__all__ = ["Preprocessor", "select_hvg", "pca_components", "MISSING_GENES"]

MISSING_GENES = ("error", "zero")


def pca_components(X: np.ndarray, n_pcs: int, random_state: int | None = 0) -> np.ndarray:
    """Top ``n_pcs`` principal axes (rows, unit norm) of the column-centred matrix ``X``.

    Randomized SVD (scikit-learn, 7 power iterations, signs fixed by ``svd_flip``) when ``n_pcs`` is well
    below the matrix rank, otherwise a full SVD; ``n_pcs`` is capped at ``min(n_cells, n_genes)``.
    """
    from sklearn.utils.extmath import randomized_svd, svd_flip

    k = int(min(n_pcs, X.shape[0], X.shape[1]))
    if k < 0.5 * min(X.shape):
        _, _, vt = randomized_svd(X, k, n_iter=7, random_state=random_state)
    else:
        u, _, vt = np.linalg.svd(X.astype(np.float64), full_matrices=False)
        _, vt = svd_flip(u[:, :k], vt[:k])
    return np.ascontiguousarray(vt[:k], dtype=np.float32)


@dataclass
class Preprocessor:
    """HVG selection + normalisation + scaling with statistics learned on training counts.

    Attributes (after :meth:`fit`)
    ------------------------------
    genes
        Names of the selected genes, in model input order.
    gene_index
        Column indices of the selected genes in the training matrix.
    mean, std
        Training per-gene means and SDs (after normalisation and optional log1p), float64; ``std`` is all
        ones when ``scale`` is false (centring only).
    components
        ``(n_pcs, n_genes)`` principal axes of the training model input (``None`` without PCA).
    """

    n_top_genes: int | None = 2000
    target_sum: float = 1e4
    log1p: bool = True
    # z-score the model genes (True) or only centre them (False)
    scale: bool = False
    n_pcs: int | None = 50
    # False for inputs that are not counts (e.g. PCA coordinates): no HVG selection, no library-size
    # normalisation, no log1p, and centring without scaling (z-scoring would inflate minor PCs)
    counts: bool = True
    genes: list[str] = field(default_factory=list)
    gene_index: np.ndarray | None = None
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    components: np.ndarray | None = None
    hvg_flavor: str = ""

    # ------------------------------------------------------------------ fitting
    def fit(self, X: np.ndarray | sp.csr_matrix, feature_names: Sequence[str], random_state: int | None = 0) -> np.ndarray:
        """Learn the statistics (and PCA axes) on counts ``X`` (cells × genes); return the training model input."""
        if self.counts:
            idx, flavor = select_hvg(X, self.n_top_genes)
        else:
            idx, flavor = np.arange(X.shape[1]), "none (input features used as given)"
        self.gene_index = idx.astype(np.int64)
        self.hvg_flavor = flavor
        self.genes = [str(feature_names[i]) for i in idx]
        Xs = self._normalise(X[:, idx])
        mean = Xs.mean(axis=0)
        n = Xs.shape[0]
        var = ((Xs - mean) ** 2).sum(axis=0) / max(n - 1, 1)
        std = np.sqrt(var) if (self.counts and self.scale) else np.ones_like(mean)
        std[std == 0] = 1.0
        self.mean, self.std = mean, std
        Xz = ((Xs - mean) / std).astype(np.float32)
        del Xs
        self.components = None if self.n_pcs is None else pca_components(Xz, self.n_pcs, random_state)
        return Xz

    def pca(self, Xz: np.ndarray) -> np.ndarray:
        """Coordinates of model inputs ``Xz`` on the stored principal axes (``Xz`` itself without PCA)."""
        return Xz if self.components is None else np.asarray(Xz, dtype=np.float32) @ self.components.T

    def _normalise(self, X: np.ndarray | sp.spmatrix) -> np.ndarray:
        X = X.toarray() if sp.issparse(X) else np.asarray(X)
        X = X.astype(np.float64, copy=True)
        if not self.counts:
            return X
        lib = X.sum(axis=1, keepdims=True)
        lib[lib == 0] = 1.0
        X *= self.target_sum / lib
        if self.log1p:
            np.log1p(X, out=X)
        return X

    # --------------------------------------------------------------- transform
    def column_map(self, feature_names: Sequence[str] | None, n_features: int, n_features_in: int,
                   missing_genes: str = "error") -> np.ndarray:
        """Column of each model gene in a query (``-1`` = missing, filled with zero counts).

        With ``feature_names=None`` the query is positional and must have ``n_features_in`` columns.
        """
        if feature_names is None:
            if n_features != n_features_in:
                raise ValueError(
                    f"`X` has {n_features} columns but the model was fitted on {n_features_in} (positional "
                    f"features); pass a matrix with the same columns, or an AnnData with gene names in var_names."
                )
            return self.gene_index.copy()
        names = [str(g) for g in feature_names]
        pos = {g: i for i, g in enumerate(names)}
        if len(pos) != len(names):
            raise ValueError("`X` has duplicated gene names; make them unique, e.g. adata.var_names_make_unique().")
        cols = np.array([pos.get(g, -1) for g in self.genes], dtype=np.int64)
        missing = [g for g, c in zip(self.genes, cols) if c < 0]
        if missing and missing_genes == "error":
            raise ValueError(
                f"`X` lacks {len(missing)} of the {len(self.genes)} genes the model was trained on "
                f"(e.g. {missing[:5]}); align gene names (same identifiers as training, e.g. Ensembl vs symbols) "
                f"or pass missing_genes='zero' to treat them as unobserved (zero counts)."
            )
        if missing:
            logger.warning("%d model gene(s) are missing from the query and are filled with zero counts.", len(missing))
        return cols

    def transform_chunk(self, X_chunk: Any, cols: np.ndarray) -> np.ndarray:
        """Select/align the model genes of a count chunk and apply the stored statistics (float32)."""
        present = cols >= 0
        identity = bool(present.all()) and cols.size == X_chunk.shape[1] and np.array_equal(cols, np.arange(cols.size))
        if sp.issparse(X_chunk):
            sub = (X_chunk if identity else sp.csr_matrix(X_chunk)[:, cols[present]]).toarray()
        else:
            sub = np.asarray(X_chunk) if identity else np.asarray(X_chunk)[:, cols[present]]
        if present.all():
            full = sub
        else:
            full = np.zeros((sub.shape[0], cols.size), dtype=np.float64)
            full[:, present] = sub
        Xs = self._normalise(full)
        return ((Xs - self.mean) / self.std).astype(np.float32)

    # ----------------------------------------------------------- serialisation
    def to_manifest(self) -> dict[str, Any]:
        """JSON-able settings (the arrays go to the weights file, see :meth:`arrays`)."""
        return {"n_top_genes": self.n_top_genes, "target_sum": self.target_sum, "log1p": self.log1p,
                "counts": self.counts, "zscore": bool(self.scale), "n_pcs": self.n_pcs,
                "genes": list(self.genes), "hvg_flavor": self.hvg_flavor,
                "scale": {"ddof": 1, "zero_std": 1.0, "max_value": None} if self.scale else None,
                "library_size": "sum over the selected genes",
                "pca": None if self.components is None else {"n_components": int(self.components.shape[0]),
                                                             "centred": True, "on": "model input"}}

    def arrays(self) -> dict[str, np.ndarray]:
        """Statistics as arrays (stored as float64 tensors next to the weights)."""
        out = {"preprocess.mean": self.mean, "preprocess.std": self.std, "preprocess.gene_index": self.gene_index}
        if self.components is not None:
            out["preprocess.components"] = self.components
        return out

    @classmethod
    def from_manifest(cls, info: dict[str, Any], arrays: dict[str, np.ndarray]) -> "Preprocessor":
        # format 1 files predate "zscore"/"n_pcs": they always z-scored and had no PCA
        pre = cls(n_top_genes=info["n_top_genes"], target_sum=float(info["target_sum"]), log1p=bool(info["log1p"]),
                  genes=list(info["genes"]), hvg_flavor=info.get("hvg_flavor", ""),
                  counts=bool(info.get("counts", True)), scale=bool(info.get("zscore", True)),
                  n_pcs=info.get("n_pcs"))
        pre.mean = np.asarray(arrays["preprocess.mean"], dtype=np.float64)
        pre.std = np.asarray(arrays["preprocess.std"], dtype=np.float64)
        pre.gene_index = np.asarray(arrays["preprocess.gene_index"], dtype=np.int64)
        comp = arrays.get("preprocess.components")
        pre.components = None if comp is None else np.asarray(comp, dtype=np.float32)
        return pre
