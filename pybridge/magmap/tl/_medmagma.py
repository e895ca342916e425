"""scanpy front doors for MED-MAGMA and the GmGM baseline."""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._keys import GMGM_KEY, MEDMAGMA_KEY, connectivities_key, distances_key, genes_used_key, input_key
from .._utils import versions
from .._validation import check_matrix, check_positive_int, matrix_from_adata

logger = logging.getLogger("magmap")

__all__ = ["med_magma", "gmgm"]


def _gene_mask(adata: Any, use_highly_variable: bool | None, genes: Any) -> np.ndarray:
    n = adata.n_vars
    if genes is not None:
        if use_highly_variable:
            raise ValueError("Pass either `genes=` or `use_highly_variable=True`, not both.")
        g = np.asarray(genes)
        if g.dtype == bool:
            if g.shape != (n,):
                raise ValueError(f"`genes` as a boolean mask must have length n_vars={n}, got {g.shape}.")
            mask = g.copy()
        else:
            idx = adata.var_names.get_indexer(g) if g.dtype.kind in "OUS" else g.astype(int)
            if np.any(idx < 0):
                missing = list(np.asarray(g)[idx < 0][:5])
                raise KeyError(f"`genes` contains names not in adata.var_names, e.g. {missing}.")
            mask = np.zeros(n, dtype=bool)
            mask[idx] = True
    elif use_highly_variable or (use_highly_variable is None and "highly_variable" in adata.var):
        if "highly_variable" not in adata.var:
            raise KeyError("`use_highly_variable=True` but adata.var has no 'highly_variable' column; run "
                           "sc.pp.highly_variable_genes(adata) first or pass use_highly_variable=False.")
        mask = adata.var["highly_variable"].to_numpy(dtype=bool)
    else:
        mask = np.ones(n, dtype=bool)
    if mask.sum() < 3:
        raise ValueError(f"Only {int(mask.sum())} gene(s) selected; at least 3 are needed.")
    return mask


def _scatter_genes(graph: sp.spmatrix, mask: np.ndarray) -> sp.csr_matrix:
    """Place a graph on the selected genes into an all-genes × all-genes matrix (zeros elsewhere)."""
    idx = np.flatnonzero(mask)
    coo = sp.coo_matrix(graph)
    n = mask.size
    return sp.csr_matrix((coo.data, (idx[coo.row], idx[coo.col])), shape=(n, n))


def _prepare(adata: Any, layer: str | None, use_highly_variable: bool | None, genes: Any, n_neighbors: int,
             n_gene_neighbors: int) -> tuple[int, int, np.ndarray, Any]:
    """Checked k's, the gene mask and the cells × selected-genes matrix shared by both front doors."""
    n_neighbors = check_positive_int(n_neighbors, "n_neighbors")
    n_gene_neighbors = check_positive_int(n_gene_neighbors, "n_gene_neighbors")
    mask = _gene_mask(adata, use_highly_variable, genes)
    X = matrix_from_adata(adata, layer)
    return n_neighbors, n_gene_neighbors, mask, (X[:, mask] if not mask.all() else X)


def _write(adata: Any, key: str, method: str, model: Any, X: Any, mask: np.ndarray, k_cells: int,
           k_genes: int, params: dict[str, Any]) -> None:
    cells = model.cell_graph(k_cells)
    adata.obsp[connectivities_key(key)] = cells
    # scanpy's neighbors dict needs a distances matrix: same pattern, 1/weight so that strong
    # partial-correlation edges are "close" (weights are |Ψ_ij| > 0).
    dist = cells.copy()
    dist.data = 1.0 / dist.data
    adata.obsp[distances_key(key)] = dist
    genes = _scatter_genes(model.gene_graph(k_genes), mask)
    adata.varp[connectivities_key(key)] = genes
    adata.var[genes_used_key(key)] = mask
    # The matrix the graph was learnt from, named as scanpy's `use_rep`: consumers that need a
    # representation (sc.tl.umap places disconnected components by their centroids) use it instead
    # of running a PCA of X.
    adata.obsm[input_key(key)] = sp.csr_matrix(X) if sp.issparse(X) else np.asarray(X)
    adata.uns[key] = {
        "connectivities_key": connectivities_key(key),
        "distances_key": distances_key(key),
        "params": {**params, "method": method, "n_neighbors": int(k_cells), "use_rep": input_key(key),
                   "versions": versions()},
    }


def med_magma(
    adata: Any,
    *,
    layer: str | None = None,
    use_highly_variable: bool | None = None,
    genes: Any = None,
    n_neighbors: int = 10,
    n_gene_neighbors: int = 10,
    mode: str = "fast",
    zero_handling: str = "one-pass",
    z_scale: str | None = None,
    laplace_weight: float | str = "auto",
    max_iter: int = 100,
    tol: float | None = None,
    regularization: float | None = None,
    device: str = "auto",
    verbose: bool = False,
    allow_negative: bool = False,
    random_state: int | None = 0,
    key_added: str = MEDMAGMA_KEY,
    copy: bool = False,
) -> Any:
    """Learn MED-MAGMA cell and gene graphs on ``adata`` (cells × genes counts or normalised values).

    Parameters
    ----------
    adata
        AnnData; ``adata.X`` or ``adata.layers[layer]`` is used (dense or sparse, signs allowed).
    layer
        Layer to use instead of ``X``. Raw or normalised counts are the intended input (not log1p:
        the method itself works in log space on the nonzeros).
    use_highly_variable
        Restrict to ``adata.var["highly_variable"]`` genes. ``None``: use it when the column exists.
    genes
        Alternative gene subset: a boolean mask over ``var`` or a list of names / integer indices.
    n_neighbors, n_gene_neighbors
        k of the top-k-per-vertex graphs for cells and genes (symmetrised as M + Mᵀ).
    mode, zero_handling, z_scale, laplace_weight, max_iter, tol, regularization, device, verbose, random_state
        See :class:`magmap.MedMagma` (``laplace_weight="auto"`` drops the Laplace term for count data
        with zeros, where it otherwise gives degenerate cell graphs).
    allow_negative
        Negative values are rejected by default (they usually mean scaled/centred data was passed
        instead of counts); set True for genuinely signed data (signs are kept by the method).
    key_added
        Prefix of every key written.
    copy
        Work on and return a copy.

    Returns
    -------
    ``None`` (or the copy when ``copy=True``). Writes

    - ``adata.obsp[f"{key_added}_connectivities"]``: cell graph (sparse, symmetric, weights |Ψ_cells|),
    - ``adata.obsp[f"{key_added}_distances"]``: same pattern, 1/weight,
    - ``adata.varp[f"{key_added}_connectivities"]``: gene graph on all genes (zero rows/columns for
      genes not used),
    - ``adata.var[f"{key_added}_used"]``: the genes the model was fitted on,
    - ``adata.obsm[f"{key_added}_input"]``: the cells × used-genes matrix the model was fitted on,
    - ``adata.uns[key_added]``: ``connectivities_key``, ``distances_key``, ``params`` (all arguments,
      ``random_state``, ``n_iter``, ``converged``, ``degenerate``, ``versions``, and scanpy's
      neighbors fields ``method`` (``"medmagma"``), ``n_neighbors`` and ``use_rep``
      (``f"{key_added}_input"``)).

    The cell graph is a scanpy neighbors graph: ``neighbors_key=key_added`` works in ``sc.tl.leiden``,
    ``louvain``, ``paga``, ``umap``, ``draw_graph``, ``diffmap``, ``dpt`` and ``sc.pl.paga``.
    ``use_rep`` points at the fitted matrix so that no consumer falls back to a PCA of ``X`` (scanpy's
    umap uses it only to place disconnected components). No ``metric`` is written: the graph comes
    from a precision matrix, not from distances, so umap places components by the Euclidean distance
    of their centroids in that matrix, and ``sc.tl.ingest`` (which would recompute neighbours there)
    does not apply. scanpy's umap logs that the graph was not computed with umap, which is true.
    """
    from ..medmagma import MedMagma

    adata = adata.copy() if copy else adata
    n_neighbors, n_gene_neighbors, mask, X = _prepare(adata, layer, use_highly_variable, genes, n_neighbors,
                                                      n_gene_neighbors)
    X = check_matrix(X, name="adata.X" if layer is None else f"adata.layers[{layer!r}]",
                     nonnegative=not allow_negative)
    model = MedMagma(mode=mode, zero_handling=zero_handling, z_scale=z_scale,
                     laplace_weight=laplace_weight, max_iter=max_iter, tol=tol,
                     regularization=regularization, random_state=random_state, device=device,
                     verbose=verbose).fit(X)
    params = {"layer": layer, "use_highly_variable": use_highly_variable, "n_genes_used": int(mask.sum()),
              "n_gene_neighbors": int(n_gene_neighbors), "mode": mode, "zero_handling": zero_handling,
              "z_scale": z_scale, "laplace_weight": laplace_weight,
              "laplace_weight_used": model.laplace_weight_, "max_iter": max_iter, "tol": tol,
              "regularization": regularization, "device": model.device_,
              "random_state": random_state, "n_iter": model.n_iter_, "converged": model.converged_,
              "degenerate": model.degenerate_}
    _write(adata, key_added, "medmagma", model, X, mask, n_neighbors, n_gene_neighbors, params)
    return adata if copy else None


def gmgm(
    adata: Any,
    *,
    layer: str | None = None,
    use_highly_variable: bool | None = None,
    genes: Any = None,
    n_neighbors: int = 10,
    n_gene_neighbors: int = 10,
    mode: str = "paper",
    skeptic: bool = False,
    random_state: int | None = 0,
    key_added: str = GMGM_KEY,
    copy: bool = False,
) -> Any:
    """Learn GmGM (noise-unaware) cell and gene graphs; same keys as :func:`med_magma` under
    ``key_added`` (default ``"gmgm"``; ``params["method"]`` is ``"gmgm"``). The paper ran it on log1p
    counts. ``random_state`` is recorded only (the fit is deterministic). See :class:`magmap.GmGM` for
    ``mode`` and ``skeptic``."""
    from ..medmagma import GmGM

    adata = adata.copy() if copy else adata
    n_neighbors, n_gene_neighbors, mask, X = _prepare(adata, layer, use_highly_variable, genes, n_neighbors,
                                                      n_gene_neighbors)
    model = GmGM(mode=mode, skeptic=skeptic).fit(X)
    params = {"layer": layer, "use_highly_variable": use_highly_variable, "n_genes_used": int(mask.sum()),
              "n_gene_neighbors": int(n_gene_neighbors), "mode": mode, "skeptic": skeptic,
              "random_state": random_state, "n_iter": model.n_iter_, "converged": model.converged_}
    _write(adata, key_added, "gmgm", model, X, mask, n_neighbors, n_gene_neighbors, params)
    return adata if copy else None
