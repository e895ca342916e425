"""scanpy front doors for MED-MAGMA and the GmGM baseline: select the data, call
:func:`magmap.medmagma.learn_graphs`, write the keys."""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .._keys import GMGM_KEY, MEDMAGMA_KEY, connectivities_key, distances_key, genes_used_key, input_key
from .._validation import matrix_from_adata
from ..medmagma import GmGM, MedMagma, learn_graphs
from ..medmagma._api import GraphResult

logger = logging.getLogger("magmap")

__all__ = ["med_magma", "gmgm"]

# the estimators' own defaults, so that changing one there changes it here too
_M = MedMagma().get_params()
_G = GmGM().get_params()


def _gene_mask(adata: Any, use_highly_variable: bool | None, genes: Any) -> np.ndarray | None:
    """The AnnData side of the gene choice: names and the ``highly_variable`` column become a mask
    (counting and positions are checked by :func:`~magmap.medmagma.gene_mask`)."""
    if genes is not None:
        if use_highly_variable:
            raise ValueError("Pass either `genes=` or `use_highly_variable=True`, not both.")
        g = np.asarray(genes)
        if g.dtype.kind not in "OUS":
            return g
        idx = adata.var_names.get_indexer(g)
        if np.any(idx < 0):
            missing = list(g[idx < 0][:5])
            raise KeyError(f"`genes` contains names not in adata.var_names, e.g. {missing}.")
        return idx
    if use_highly_variable or (use_highly_variable is None and "highly_variable" in adata.var):
        if "highly_variable" not in adata.var:
            raise KeyError("`use_highly_variable=True` but adata.var has no 'highly_variable' column; run "
                           "sc.pp.highly_variable_genes(adata) first or pass use_highly_variable=False.")
        return adata.var["highly_variable"].to_numpy(dtype=bool)
    return None


def _write(adata: Any, key: str, res: GraphResult, extra: dict[str, Any]) -> None:
    adata.obsp[connectivities_key(key)] = res.cells
    # scanpy's neighbors dict needs a distances matrix: same pattern, 1/weight so that strong
    # partial-correlation edges are "close" (weights are |Ψ_ij| > 0).
    dist = res.cells.copy()
    dist.data = 1.0 / dist.data
    adata.obsp[distances_key(key)] = dist
    adata.varp[connectivities_key(key)] = res.genes
    adata.var[genes_used_key(key)] = res.genes_used
    # The matrix the graph was learnt from, named as scanpy's `use_rep`: consumers that need a
    # representation (sc.tl.umap places disconnected components by their centroids) use it instead
    # of running a PCA of X.
    adata.obsm[input_key(key)] = res.data
    adata.uns[key] = {
        "connectivities_key": connectivities_key(key),
        "distances_key": distances_key(key),
        "params": {**res.params, **extra, "use_rep": input_key(key)},
    }


def _run(adata: Any, method: str, key: str, copy: bool, layer: str | None, use_highly_variable: bool | None,
         genes: Any, record: dict[str, Any], **kwargs: Any) -> Any:
    adata = adata.copy() if copy else adata
    res = learn_graphs(matrix_from_adata(adata, layer), method=method,
                       genes=_gene_mask(adata, use_highly_variable, genes),
                       name="adata.X" if layer is None else f"adata.layers[{layer!r}]", **kwargs)
    _write(adata, key, res, {"layer": layer, "use_highly_variable": use_highly_variable, **record})
    return adata if copy else None


def med_magma(
    adata: Any,
    *,
    layer: str | None = None,
    use_highly_variable: bool | None = None,
    genes: Any = None,
    n_neighbors: int = 10,
    n_gene_neighbors: int = 10,
    mode: str = _M["mode"],
    zero_handling: str = _M["zero_handling"],
    z_scale: str | None = _M["z_scale"],
    laplace_weight: float | str = _M["laplace_weight"],
    max_iter: int = _M["max_iter"],
    tol: float | None = _M["tol"],
    regularization: float | None = _M["regularization"],
    device: str = _M["device"],
    verbose: bool = False,
    allow_negative: bool = False,
    random_state: int | None = 0,
    key_added: str = MEDMAGMA_KEY,
    copy: bool = False,
    **kwargs: Any,
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
        See :class:`magmap.MedMagma` (same defaults); further estimator arguments go in ``kwargs``.
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
    - ``adata.uns[key_added]``: ``connectivities_key``, ``distances_key``, ``params`` (every estimator
      argument, ``layer``, ``use_highly_variable``, ``n_genes_used``, ``n_gene_neighbors``,
      ``n_iter``, ``converged``, ``degenerate``, ``laplace_weight_used``, ``device``, ``versions``, and
      scanpy's neighbors fields ``method`` (``"medmagma"``), ``n_neighbors`` and ``use_rep``
      (``f"{key_added}_input"``)).

    The cell graph is a scanpy neighbors graph: ``neighbors_key=key_added`` works in ``sc.tl.leiden``,
    ``louvain``, ``paga``, ``umap``, ``draw_graph``, ``diffmap``, ``dpt`` and ``sc.pl.paga``.
    ``use_rep`` points at the fitted matrix so that no consumer falls back to a PCA of ``X`` (scanpy's
    umap uses it only to place disconnected components). No ``metric`` is written: the graph comes
    from a precision matrix, not from distances, so umap places components by the Euclidean distance
    of their centroids in that matrix, and ``sc.tl.ingest`` (which would recompute neighbours there)
    does not apply. scanpy's umap logs that the graph was not computed with umap, which is true.
    """
    return _run(adata, "medmagma", key_added, copy, layer, use_highly_variable, genes, {},
                n_neighbors=n_neighbors, n_gene_neighbors=n_gene_neighbors, allow_negative=allow_negative,
                mode=mode, zero_handling=zero_handling, z_scale=z_scale, laplace_weight=laplace_weight,
                max_iter=max_iter, tol=tol, regularization=regularization, device=device, verbose=verbose,
                random_state=random_state, **kwargs)


def gmgm(
    adata: Any,
    *,
    layer: str | None = None,
    use_highly_variable: bool | None = None,
    genes: Any = None,
    n_neighbors: int = 10,
    n_gene_neighbors: int = 10,
    mode: str = _G["mode"],
    skeptic: bool = _G["skeptic"],
    random_state: int | None = 0,
    key_added: str = GMGM_KEY,
    copy: bool = False,
    **kwargs: Any,
) -> Any:
    """Learn GmGM (noise-unaware) cell and gene graphs; same keys as :func:`med_magma` under
    ``key_added`` (default ``"gmgm"``; ``params["method"]`` is ``"gmgm"``). The published comparison
    ran it on log1p counts. ``random_state`` is recorded only (the fit is deterministic). See
    :class:`magmap.GmGM` for ``mode``, ``skeptic`` and the other arguments (``kwargs``)."""
    return _run(adata, "gmgm", key_added, copy, layer, use_highly_variable, genes, {"random_state": random_state},
                n_neighbors=n_neighbors, n_gene_neighbors=n_gene_neighbors, mode=mode, skeptic=skeptic, **kwargs)
