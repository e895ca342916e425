"""scanpy-style front door for lazy AnnData: results of an out-of-core projection placed where
:func:`magmap.tl.robust_umap_transform` puts them, with the per-cell matrices left lazy (dask arrays
reading the zarr store)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._keys import (ROBUST_UMAP_KEY, box_corner_keys, certified_box_key, certified_radius_key, embedding_key,
                     top_gene_index_keys, top_gene_key)
from ..tl._robust_umap import model_from_reference
from ._run import _model_blob, project
from ._store import open_projection

__all__ = ["robust_umap_transform"]


def robust_umap_transform(adata: Any, *, out: str | Path, model: Any = None, reference: Any = None,
                          reference_key: str = ROBUST_UMAP_KEY, layer: str | None = None,
                          missing_genes: str = "error", refine: bool = False, refine_epochs: int | None = None,
                          certify: bool = True, epsilon: float | None = None,
                          fraction: float | None = None, top_genes: int | None = None,
                          chunk_rows: int | None = None, client: Any = "auto", overwrite: bool = False,
                          key_added: str = ROBUST_UMAP_KEY, verbose: bool = False) -> None:
    """:func:`magmap.tl.robust_umap_transform` for AnnData too large for memory (e.g. from
    ``anndata.experimental.read_lazy``, whose ``X`` is a dask array): runs :func:`magmap.scale.project`
    into the zarr store ``out`` and places the results in ``adata``.

    Parameters
    ----------
    adata
        Query AnnData; ``X`` (or ``layer``) may be a dask array, read chunk by chunk by the workers.
    out
        Folder of the result store (re-running with the same settings resumes it).
    model, reference, reference_key, layer, missing_genes, refine, certify, epsilon, fraction, top_genes, key_added
        As in :func:`magmap.tl.robust_umap_transform`.
    refine_epochs
        As in :meth:`magmap.RobustUMAP.transform` (``None``: chosen for all of ``adata``'s cells).
    chunk_rows, client, overwrite, verbose
        As in :func:`magmap.scale.project`.

    Returns
    -------
    ``None``. Writes ``obsm["X_" + key_added]`` (a dask array over the store); with ``certify``,
    ``obsm[key_added + "_box_lower"/"_box_upper"]`` (dask arrays), ``obs[key_added + "_certified_radius"]``
    and ``obs[key_added + "_certified_box"]``; with ``top_genes``, ``obsm[key_added + "_top_gene_index"]``
    (dask, positions in ``uns[key_added]["genes"]``), ``obsm[key_added + "_top_gene_impact"]`` and
    ``obs[key_added + "_top_gene"]`` (categorical); and ``uns[key_added] = {"params": {...}, "store": out,
    "genes": model genes, "model": np.uint8 array}``.
    """
    model = model_from_reference(model, reference, reference_key)
    run = project(model, adata, out, layer=layer, certify=certify, epsilon=epsilon, fraction=fraction,
                  top_genes=top_genes, missing_genes=missing_genes, refine=refine, refine_epochs=refine_epochs,
                  chunk_rows=chunk_rows, client=client,
                  overwrite=overwrite, verbose=verbose)
    res = open_projection(run.out)
    attrs = res["attrs"]
    adata.obsm[embedding_key(key_added)] = res["embedding"]
    if certify:
        lower_key, upper_key = box_corner_keys(key_added)
        adata.obsm[lower_key], adata.obsm[upper_key] = res["box_lower"], res["box_upper"]
        # one number per cell: small enough for obs even for millions of cells
        adata.obs[certified_radius_key(key_added)] = res["certified_radius"].compute()
        adata.obs[certified_box_key(key_added)] = res["certified_box"].compute()
    if top_genes:
        index_key, impact_key = top_gene_index_keys(key_added)
        adata.obsm[index_key], adata.obsm[impact_key] = res["top_gene_index"], res["top_gene_impact"]
        first = res["top_gene_index"][:, 0].compute()
        adata.obs[top_gene_key(key_added)] = pd.Categorical.from_codes(first, categories=attrs["genes"])
    params = {k: attrs[k] for k in ("model_sha256", "chunk_rows", "certify", "epsilon", "fraction", "rtol",
                                    "method", "top_genes", "missing_genes", "refine_epochs", "layer", "versions")
              if attrs.get(k) is not None}
    params["refine"] = attrs.get("refine_epochs") is not None
    adata.uns[key_added] = {"params": {**params, "projected": True, "out_of_core": True}, "store": str(run.out),
                            "genes": np.asarray(attrs["genes"], dtype=object),
                            "model": np.frombuffer(_model_blob(model), dtype=np.uint8).copy()}
