"""scanpy front doors for the robust parametric UMAP: ``robust_umap`` and ``robust_umap_transform``."""
from __future__ import annotations

from typing import Any

import numpy as np

from .._keys import ROBUST_UMAP_KEY, certified_box_key, embedding_key
from .._utils import versions

__all__ = ["robust_umap", "robust_umap_transform"]


def _write(adata: Any, model: Any, Z: np.ndarray, cert: Any, key: str, params: dict) -> None:
    adata.obsm[embedding_key(key)] = np.asarray(Z, dtype=np.float32)
    if cert is not None:
        adata.obs[certified_box_key(key)] = np.asarray(cert.relative_area, dtype=np.float64)
    adata.uns[key] = {"params": params, "model": np.frombuffer(model.to_bytes(), dtype=np.uint8).copy()}


def robust_umap(
    adata: Any, *, layer: str | None = None, n_neighbors: int = 15, n_components: int = 2, min_dist: float = 0.1,
    spread: float = 1.0, n_epochs: int | None = None, batch_size: int | None = None, loss: str = "graph",
    n_top_genes: int | None = 2000, log1p: bool = False, epsilon: float = 0.2, robust: bool = True,
    robust_weight: float = 1.0, bound_method: str = "crown", certify: bool = True, device: str = "auto",
    random_state: int | None = 0, verbose: bool = False, key_added: str = ROBUST_UMAP_KEY, copy: bool = False,
    **kwargs: Any,
) -> Any:
    """Fit a :class:`magmap.RobustUMAP` on the counts of ``adata`` and store the embedding and model.

    Parameters
    ----------
    adata
        AnnData with raw counts in ``adata.X`` or ``adata.layers[layer]`` and gene names in ``var_names``.
    layer
        Layer holding the counts (``None``: ``adata.X``).
    n_neighbors, n_components, min_dist, spread, n_epochs, batch_size, loss, n_top_genes, log1p, epsilon,
    robust, robust_weight, bound_method, device, random_state, verbose
        See :class:`magmap.RobustUMAP`; other estimator arguments can be passed in ``kwargs``.
    certify
        Compute each cell's certified box (``RobustUMAP.certify``) and store its relative area.
    key_added
        Key under which results are stored.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    ``None`` (or the copy when ``copy=True``). Writes

    * ``adata.obsm["X_" + key_added]`` — embedding, ``(n_obs, n_components)`` float32;
    * ``adata.obs[key_added + "_certified_box"]`` — per-cell certified-box area for an L∞ ``epsilon``
      ball, relative to the area of the embedding's bounding box (only if ``certify``);
    * ``adata.uns[key_added]`` — ``{"params": {hyper-parameters, "random_state", "epsilon",
      "bound_method", "genes_used", "hvg_flavor", "area_ref", "versions"}, "model": np.uint8 array}``,
      the model as :meth:`RobustUMAP.to_bytes` (load with ``RobustUMAP.from_bytes(adata.uns[key]["model"])``).
    """
    from ..umap import RobustUMAP

    adata = adata.copy() if copy else adata
    model = RobustUMAP(n_neighbors=n_neighbors, n_components=n_components, min_dist=min_dist, spread=spread,
                       n_epochs=n_epochs, batch_size=batch_size, loss=loss, n_top_genes=n_top_genes, log1p=log1p,
                       epsilon=epsilon, robust=robust, robust_weight=robust_weight, bound_method=bound_method,
                       device=device, random_state=random_state, verbose=verbose, **kwargs)
    model.fit(adata, layer=layer)
    cert = model.certify(adata, layer=layer) if certify else None
    params = {k: v for k, v in model.get_params().items() if k != "encoder" and v is not None}
    params["hidden_layers"] = list(model.hidden_layers)
    params.update(layer=layer, random_state=model.random_state_, genes_used=np.asarray(model.genes_, dtype=object),
                  hvg_flavor=model.hvg_flavor_, area_ref=model.area_ref_, versions=versions())
    _write(adata, model, model.embedding_, cert, key_added, {k: v for k, v in params.items() if v is not None})
    return adata if copy else None


def robust_umap_transform(
    adata: Any, *, model: Any = None, reference: Any = None, reference_key: str = ROBUST_UMAP_KEY,
    layer: str | None = None, missing_genes: str = "error", certify: bool = True,
    key_added: str = ROBUST_UMAP_KEY, copy: bool = False,
) -> Any:
    """Project the cells of ``adata`` with a fitted model (training preprocessing statistics, genes by name).

    Parameters
    ----------
    adata
        Query AnnData with counts in ``adata.X`` or ``layer``; must contain the model's genes.
    model
        A fitted :class:`magmap.RobustUMAP`, its bytes (``to_bytes``/``uns[key]["model"]``), or ``None`` to
        take ``reference.uns[reference_key]["model"]``.
    reference, reference_key
        AnnData on which :func:`robust_umap` was run, and its ``key_added``.
    missing_genes
        ``"error"`` (default) or ``"zero"`` (fill missing model genes with zero counts).
    certify, key_added, copy
        As in :func:`robust_umap`.

    Returns
    -------
    ``None`` (or the copy). Writes ``obsm["X_" + key_added]``, ``obs[key_added + "_certified_box"]`` (if
    ``certify``) and ``uns[key_added] = {"params": {"projected": True, "missing_genes", "layer", "versions",
    ...model params}, "model": np.uint8 array}``.
    """
    from ..umap import RobustUMAP

    if model is None:
        if reference is None:
            raise ValueError("pass `model=` (a fitted RobustUMAP or its bytes) or `reference=` (an AnnData on which "
                             "magmap.tl.robust_umap was run).")
        if reference_key not in reference.uns or "model" not in reference.uns[reference_key]:
            raise KeyError(f"`reference.uns[{reference_key!r}]['model']` not found; run magmap.tl.robust_umap(reference, "
                           f"key_added={reference_key!r}) first or pass `model=`.")
        model = reference.uns[reference_key]["model"]
    if not isinstance(model, RobustUMAP):
        model = RobustUMAP.from_bytes(model)
    adata = adata.copy() if copy else adata
    Z = model.transform(adata, layer=layer, missing_genes=missing_genes)
    cert = model.certify(adata, layer=layer, missing_genes=missing_genes) if certify else None
    params = {k: v for k, v in model.get_params().items() if k != "encoder" and v is not None}
    params["hidden_layers"] = list(model.hidden_layers)
    params.update(projected=True, missing_genes=missing_genes, layer=layer, random_state=model.random_state_,
                  area_ref=model.area_ref_, versions=versions())
    _write(adata, model, Z, cert, key_added, {k: v for k, v in params.items() if v is not None})
    return adata if copy else None
