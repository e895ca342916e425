"""scanpy front doors for the robust parametric UMAP: ``robust_umap`` and ``robust_umap_transform``."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._keys import (ROBUST_UMAP_KEY, box_corner_keys, certified_box_key, certified_radius_key, embedding_key,
                     top_gene_key, top_genes_key)
from .._utils import versions
from ..umap import RobustUMAP
from ..umap.certify import DEFAULT_FRACTION

__all__ = ["robust_umap", "robust_umap_transform"]

# the estimator's own defaults, so that changing one there changes it here too
_D = RobustUMAP().get_params()


def _top_genes_table(top: pd.DataFrame, obs_names: Any) -> pd.DataFrame:
    """Wide per-cell table (index ``obs_names``; columns ``gene_1..k``, ``impact_1..k``) from the tidy
    result of :meth:`RobustUMAP.cell_gene_impact` (one row per cell and rank, cells in order)."""
    n = len(obs_names)
    k = int(top["rank"].max()) if len(top) else 0
    genes = top["gene"].to_numpy(dtype=object).reshape(n, k)
    impact = top["impact"].to_numpy(dtype=np.float64).reshape(n, k)
    cols = {f"gene_{r + 1}": genes[:, r].astype(str) for r in range(k)}
    cols.update({f"impact_{r + 1}": impact[:, r] for r in range(k)})
    return pd.DataFrame(cols, index=pd.Index(obs_names))


def _annotate(adata: Any, model: RobustUMAP, *, layer: str | None, missing_genes: str, certify: bool,
              epsilon: float | None, fraction: float, top_genes: int | None, key: str) -> dict:
    """Certificates and top genes of ``adata``'s cells, written under ``key``; returns the summary for ``uns``."""
    extra: dict = {}
    if certify:
        cert = model.certify(adata, epsilon, fraction=fraction, layer=layer, missing_genes=missing_genes)
        adata.obs[certified_radius_key(key)] = np.asarray(cert.radius, dtype=np.float64)
        adata.obs[certified_box_key(key)] = np.asarray(cert.relative_diagonal, dtype=np.float64)
        lower_key, upper_key = box_corner_keys(key)
        adata.obsm[lower_key] = np.asarray(cert.lower, dtype=np.float32)
        adata.obsm[upper_key] = np.asarray(cert.upper, dtype=np.float32)
        extra["certificate"] = {**cert.summary(), "method": cert.method}
    if top_genes is not None:
        top = model.cell_gene_impact(adata, n_top=top_genes, layer=layer, missing_genes=missing_genes)
        table = _top_genes_table(top, adata.obs_names)
        adata.obsm[top_genes_key(key)] = table
        adata.obs[top_gene_key(key)] = pd.Categorical(table["gene_1"].to_numpy())
    return extra


def _params(model: RobustUMAP, **extra: Any) -> dict:
    params = {k: v for k, v in model.get_params().items() if k != "encoder"}
    params["hidden_layers"] = list(model.hidden_layers)
    params.update(random_state=model.random_state_, area_ref=model.area_ref_, versions=versions(), **extra)
    return {k: v for k, v in params.items() if v is not None}


def robust_umap(
    adata: Any, *, layer: str | None = None, n_neighbors: int = _D["n_neighbors"],
    n_components: int = _D["n_components"], min_dist: float = _D["min_dist"], spread: float = _D["spread"],
    n_epochs: int | None = _D["n_epochs"], batch_size: int | None = _D["batch_size"], loss: str = _D["loss"],
    n_top_genes: int | None = _D["n_top_genes"], log1p: bool = _D["log1p"], epsilon: float = _D["epsilon"],
    robust: bool = _D["robust"], robust_weight: float = _D["robust_weight"], bound_method: str = _D["bound_method"],
    certify: bool = True, fraction: float = DEFAULT_FRACTION, top_genes: int | None = None,
    device: str = _D["device"], random_state: int | None = 0, verbose: bool = False,
    key_added: str = ROBUST_UMAP_KEY, copy: bool = False, **kwargs: Any,
) -> Any:
    """Fit a :class:`magmap.RobustUMAP` on the counts of ``adata`` and store the embedding, certificates and model.

    Parameters
    ----------
    adata
        AnnData with raw counts in ``adata.X`` or ``adata.layers[layer]`` and gene names in ``var_names``.
    layer
        Layer holding the counts (``None``: ``adata.X``).
    n_neighbors, n_components, min_dist, spread, n_epochs, batch_size, loss, n_top_genes, log1p, epsilon,
    robust, robust_weight, bound_method, device, random_state, verbose
        See :class:`magmap.RobustUMAP` (same defaults, except ``random_state=0``); other estimator
        arguments can be passed in ``kwargs``. ``epsilon`` is also the radius of the stored boxes.
    certify
        Compute each cell's certified radius and its box at ``epsilon`` (:meth:`RobustUMAP.certify`).
    fraction
        The certified radius is the largest L∞ perturbation (model input units) whose certified
        box has a diagonal ≤ ``fraction`` × the diagonal of the training embedding's bounding box.
    top_genes
        If given, the number of genes stored per cell that move its embedding most
        (:meth:`RobustUMAP.cell_gene_impact`, per model input unit: a training SD for z-scored genes).
    key_added
        Key under which results are stored.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    ``None`` (or the copy when ``copy=True``). Writes

    * ``adata.obsm["X_" + key_added]`` — embedding, ``(n_obs, n_components)`` float32;
    * ``adata.obs[key_added + "_certified_radius"]`` — each cell's certified radius (if ``certify``);
    * ``adata.obs[key_added + "_certified_box"]`` — diagonal of the cell's certified box at ``epsilon``
      over the training embedding's diagonal; ``≤ fraction`` exactly when the radius is ``≥ epsilon``
      (if ``certify``);
    * ``adata.obsm[key_added + "_box_lower"]``, ``[key_added + "_box_upper"]`` — the boxes' corners,
      ``(n_obs, n_components)`` (if ``certify``);
    * ``adata.obs[key_added + "_top_gene"]`` (categorical) and ``adata.obsm[key_added + "_top_genes"]``
      (DataFrame ``gene_1..k``, ``impact_1..k``) — if ``top_genes``;
    * ``adata.uns[key_added]`` — ``{"params": {hyper-parameters, "random_state", "epsilon", "fraction",
      "bound_method", "genes_used", "hvg_flavor", "area_ref", "versions", ...}, "model": np.uint8 array,
      "certificate": RobustUMAP.certify(...).summary() (if certify)}``; the model is
      :meth:`RobustUMAP.to_bytes` (load with ``RobustUMAP.from_bytes(adata.uns[key]["model"])``).
    """
    adata = adata.copy() if copy else adata
    model = RobustUMAP(n_neighbors=n_neighbors, n_components=n_components, min_dist=min_dist, spread=spread,
                       n_epochs=n_epochs, batch_size=batch_size, loss=loss, n_top_genes=n_top_genes, log1p=log1p,
                       epsilon=epsilon, robust=robust, robust_weight=robust_weight, bound_method=bound_method,
                       device=device, random_state=random_state, verbose=verbose, **kwargs)
    model.fit(adata, layer=layer)
    adata.obsm[embedding_key(key_added)] = np.asarray(model.embedding_, dtype=np.float32)
    extra = _annotate(adata, model, layer=layer, missing_genes="error", certify=certify, epsilon=None,
                      fraction=fraction, top_genes=top_genes, key=key_added)
    params = _params(model, layer=layer, genes_used=np.asarray(model.genes_, dtype=object),
                     hvg_flavor=model.hvg_flavor_, fraction=fraction, top_genes=top_genes)
    adata.uns[key_added] = {"params": params, "model": np.frombuffer(model.to_bytes(), dtype=np.uint8).copy(),
                            **extra}
    return adata if copy else None


def robust_umap_transform(
    adata: Any, *, model: Any = None, reference: Any = None, reference_key: str = ROBUST_UMAP_KEY,
    layer: str | None = None, missing_genes: str = "error", refine: bool = False, certify: bool = True,
    epsilon: float | None = None, fraction: float = DEFAULT_FRACTION, top_genes: int | None = None,
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
    refine
        Optimise the projected cells' positions against the frozen training map, as umap-learn's
        ``transform`` does (:meth:`magmap.RobustUMAP.transform`): labels transfer more accurately; the
        certificates then describe the encoder's output, the refinement's starting point.
    epsilon
        Radius of the stored boxes (``None``: the model's ``epsilon``).
    certify, fraction, top_genes, key_added, copy
        As in :func:`robust_umap`.

    Returns
    -------
    ``None`` (or the copy). Writes ``obsm["X_" + key_added]``, the certificate entries of
    :func:`robust_umap` (``obs[key_added + "_certified_radius"]``, ``obs[key_added + "_certified_box"]``,
    ``obsm[key_added + "_box_lower"/"_box_upper"]``) if ``certify``, the top-gene entries if ``top_genes``,
    and ``uns[key_added] = {"params": {"projected": True, "missing_genes", "layer", "fraction", "versions",
    ...model params}, "model": np.uint8 array, "certificate": summary (if certify)}``.
    """
    model = model_from_reference(model, reference, reference_key)
    if not isinstance(model, RobustUMAP):
        model = RobustUMAP.from_bytes(model)
    adata = adata.copy() if copy else adata
    Z = model.transform(adata, layer=layer, missing_genes=missing_genes, refine=refine)
    adata.obsm[embedding_key(key_added)] = np.asarray(Z, dtype=np.float32)
    extra = _annotate(adata, model, layer=layer, missing_genes=missing_genes, certify=certify, epsilon=epsilon,
                      fraction=fraction, top_genes=top_genes, key=key_added)
    params = _params(model, projected=True, missing_genes=missing_genes, layer=layer, refine=bool(refine),
                     fraction=fraction, top_genes=top_genes)
    if epsilon is not None:
        params["epsilon"] = float(epsilon)
    adata.uns[key_added] = {"params": params, "model": np.frombuffer(model.to_bytes(), dtype=np.uint8).copy(),
                            **extra}
    return adata if copy else None


def model_from_reference(model: Any, reference: Any, reference_key: str) -> Any:
    """``model`` itself, or the model bytes that :func:`robust_umap` stored in ``reference.uns[reference_key]``."""
    if model is not None:
        return model
    if reference is None:
        raise ValueError("pass `model=` (a fitted RobustUMAP, its bytes or a model file) or `reference=` (an "
                         "AnnData on which magmap.tl.robust_umap was run).")
    if reference_key not in reference.uns or "model" not in reference.uns[reference_key]:
        raise KeyError(f"`reference.uns[{reference_key!r}]['model']` not found; run magmap.tl.robust_umap("
                       f"reference, key_added={reference_key!r}) first or pass `model=`.")
    return reference.uns[reference_key]["model"]
