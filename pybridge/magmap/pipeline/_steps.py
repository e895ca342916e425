"""The analysis steps of ``magmap run``, each on an AnnData, each returning the numbers it produced.

Every step calls the public front doors (``magmap.tl``, ``magmap.robustness``, ``magmap.metrics``) and
writes its results into the AnnData under the keys documented in :func:`magmap.pipeline.run`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._keys import (CLUSTER_SUFFIX, GENE_IMPACT_KEY, GMGM_KEY, LOG_LAYER, MEDMAGMA_KEY, MODULE_KEY, MODULE_SHARE_KEY,
                     NETWORK_GENE_KEY, ROBUST_UMAP_KEY, connectivities_key, genes_used_key)

__all__ = ["RunSettings", "preprocess", "networks", "cell_clusters", "gene_modules", "robustness", "embedding",
           "leiden", "CLUSTER_SUFFIX", "MODULE_KEY", "MODULE_SHARE_KEY", "GENE_IMPACT_KEY", "LOG_LAYER"]


@dataclass
class RunSettings:
    """Sizes, seeds and options of one ``magmap run`` (all recorded in ``summary.json``).

    Attributes
    ----------
    seed
        Seed of every random step (cell subsample, MED-MAGMA, Leiden, robustness, RobustUMAP).
    max_cells
        Cells beyond this are subsampled (seeded) before fitting; MED-MAGMA's evaluation used datasets
        of at most 1000 cells, and its cost grows with the cube of the matrix side.
    n_top_genes, n_steps
        Gene selection for the networks (:func:`magmap.preprocessing.square_gene_subset`).
    n_neighbors, n_gene_neighbors
        Edges kept per cell and per gene in the networks.
    leiden_resolution
        Resolution of Leiden on the cell networks and on the gene network (modules).
    robin_repeats, robin_method
        Repeats per perturbation level and community method of the robustness test.
    top_genes
        Genes listed per cell (and in the report) by their impact on the embedding.
    umap
        Extra :class:`magmap.RobustUMAP` arguments (empty: its own defaults).
    """

    seed: int = 0
    max_cells: int = 1000
    n_top_genes: int = 2000
    n_steps: int = 101
    n_neighbors: int = 10
    n_gene_neighbors: int = 10
    leiden_resolution: float = 1.0
    robin_repeats: int = 10
    robin_method: str = "louvain"
    top_genes: int = 3
    umap: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from .._validation import check_positive_int

        self.seed = check_positive_int(self.seed, "seed", minimum=0)
        # fewer cells or repeats leave too little for the networks and the robustness curves
        self.max_cells = check_positive_int(self.max_cells, "max_cells", minimum=20)
        self.robin_repeats = check_positive_int(self.robin_repeats, "robin_repeats", minimum=2)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def leiden(graph: Any, *, resolution: float, seed: int) -> np.ndarray:
    """Weighted Leiden (RB configuration, ``n_iterations=2``, as scanpy runs it) on a symmetric sparse graph."""
    import igraph as ig
    import leidenalg

    coo = sp.triu(sp.csr_matrix(graph), k=1).tocoo()
    g = ig.Graph(n=graph.shape[0], edges=list(zip(coo.row.tolist(), coo.col.tolist())))
    part = leidenalg.find_partition(g, leidenalg.RBConfigurationVertexPartition, weights=coo.data.tolist(),
                                    resolution_parameter=float(resolution), n_iterations=2, seed=int(seed))
    return np.asarray(part.membership, dtype=np.int64)


def preprocess(adata: Any, settings: RunSettings) -> dict[str, Any]:
    """Choose the network genes (highly variable, then closest to square); write ``var["magmap_network_gene"]``
    and the ``log1p`` layer GmGM is fitted on."""
    from ..preprocessing import square_gene_subset

    mask, info = square_gene_subset(adata.X, n_top_genes=settings.n_top_genes, n_steps=settings.n_steps)
    if mask.sum() < 3:
        from ._inputs import InputError

        raise InputError(f"only {int(mask.sum())} genes passed the network gene selection (of {adata.n_vars}); "
                         "the input needs more expressed genes (at least 20 expressed in a few cells).")
    adata.var[NETWORK_GENE_KEY] = mask
    log = sp.csr_matrix(adata.X, dtype=np.float32, copy=True)
    log.data = np.log1p(log.data)
    adata.layers[LOG_LAYER] = log
    return info


def networks(adata: Any, settings: RunSettings) -> dict[str, Any]:
    """MED-MAGMA on the counts and GmGM on log1p counts, on the network genes (``tl.med_magma``/``tl.gmgm`` keys)."""
    from .. import tl

    genes = adata.var[NETWORK_GENE_KEY].to_numpy(dtype=bool)
    tl.med_magma(adata, genes=genes, n_neighbors=settings.n_neighbors, n_gene_neighbors=settings.n_gene_neighbors,
                 random_state=settings.seed, key_added=MEDMAGMA_KEY)
    tl.gmgm(adata, layer=LOG_LAYER, genes=genes, n_neighbors=settings.n_neighbors,
            n_gene_neighbors=settings.n_gene_neighbors, random_state=settings.seed, key_added=GMGM_KEY)
    out = {}
    for key in (MEDMAGMA_KEY, GMGM_KEY):
        params = adata.uns[key]["params"]
        out[key] = {"cell_edges": int(sp.triu(adata.obsp[connectivities_key(key)], k=1).nnz),
                    "gene_edges": int(sp.triu(adata.varp[connectivities_key(key)], k=1).nnz),
                    "n_genes_used": int(adata.var[genes_used_key(key)].sum()),
                    "n_iter": params.get("n_iter"), "converged": params.get("converged")}
    return out


def cell_clusters(adata: Any, labels: np.ndarray | None, settings: RunSettings) -> dict[str, Any]:
    """Leiden communities of both cell networks (``obs[f"{key}_leiden"]``); with labels, their AMI with the
    labels and the labels' nominal assortativity on each network."""
    from sklearn.metrics import adjusted_mutual_info_score

    from ..metrics import assortativity

    out: dict[str, Any] = {}
    for key in (MEDMAGMA_KEY, GMGM_KEY):
        graph = adata.obsp[connectivities_key(key)]
        memb = leiden(graph, resolution=settings.leiden_resolution, seed=settings.seed)
        adata.obs[key + CLUSTER_SUFFIX] = pd.Categorical(memb.astype(str), categories=[str(c) for c in np.unique(memb)])
        rec: dict[str, Any] = {"n_clusters": int(len(np.unique(memb)))}
        if labels is not None:
            rec["ami"] = float(adjusted_mutual_info_score(labels, memb))
            rec["assortativity"] = float(assortativity(graph, labels, method="nominal"))
        out[key] = rec
    return out


def _module_shares(counts: Any, modules: np.ndarray, gene_idx: np.ndarray) -> np.ndarray:
    """Per cell, each module's share of the cell's total counts (all genes), in percent."""
    C = sp.csr_matrix(counts, dtype=np.float64)
    total = np.asarray(C.sum(axis=1)).ravel()
    n_mod = int(modules.max()) + 1
    # genes × modules indicator: one sparse product gives every module's counts per cell
    ind = sp.csr_matrix((np.ones(gene_idx.size), (gene_idx, modules)), shape=(C.shape[1], n_mod))
    return 100.0 * np.asarray((C @ ind).todense()) / np.maximum(total, 1e-300)[:, None]


def gene_modules(adata: Any, labels: np.ndarray | None, settings: RunSettings) -> dict[str, Any]:
    """Leiden modules of the MED-MAGMA gene network (``var["medmagma_module"]``), each cell's share of counts
    per module (``obsm["medmagma_module_share"]``) and, with labels, a one-way ANOVA of each module's share
    across the label groups."""
    from scipy.stats import f_oneway

    used = adata.var[genes_used_key(MEDMAGMA_KEY)].to_numpy(dtype=bool)
    idx = np.flatnonzero(used)
    graph = sp.csr_matrix(adata.varp[connectivities_key(MEDMAGMA_KEY)])[idx][:, idx]
    modules = leiden(graph, resolution=settings.leiden_resolution, seed=settings.seed)
    names = [f"M{m + 1}" for m in range(int(modules.max()) + 1)]
    col = np.full(adata.n_vars, None, dtype=object)
    col[idx] = [names[m] for m in modules]
    adata.var[MODULE_KEY] = pd.Categorical(col, categories=names)
    shares = _module_shares(adata.X, modules, idx)
    adata.obsm[MODULE_SHARE_KEY] = pd.DataFrame(shares, index=adata.obs_names, columns=names)
    table = []
    for m, name in enumerate(names):
        genes = adata.var_names[idx[modules == m]]
        row: dict[str, Any] = {"module": name, "n_genes": int(genes.size), "genes": [str(g) for g in genes[:10]],
                               "mean_share_percent": float(shares[:, m].mean())}
        if labels is not None:
            groups = [shares[labels == g, m] for g in np.unique(labels)]
            if np.ptp(shares[:, m]) > 0:
                res = f_oneway(*groups)
                row["anova_F"], row["anova_p"] = float(res.statistic), float(res.pvalue)
            else:  # a module with the same share in every cell cannot differ between groups
                row["anova_F"], row["anova_p"] = float("nan"), 1.0
        table.append(row)
    out: dict[str, Any] = {"n_modules": len(names), "modules": table, "resolution": settings.leiden_resolution,
                           "share": "module counts / total counts of the cell, percent"}
    if labels is not None:
        n_sig = sum(r["anova_p"] < 0.05 / len(names) for r in table)
        out["n_significant_bonferroni"] = int(n_sig)
        out["alpha"] = 0.05
    return out


def robustness(adata: Any, settings: RunSettings) -> dict[str, Any]:
    """robin-style robustness (:func:`magmap.robustness.robin`) of the MED-MAGMA cell network and of its gene
    network on the genes it was fitted on; returns the :class:`~magmap.robustness.RobinResult` objects."""
    from ..robustness import robin

    used = adata.var[genes_used_key(MEDMAGMA_KEY)].to_numpy(dtype=bool)
    graphs = {"cells": adata.obsp[connectivities_key(MEDMAGMA_KEY)],
              "genes": sp.csr_matrix(adata.varp[connectivities_key(MEDMAGMA_KEY)])[used][:, used]}
    return {name: robin(g, method=settings.robin_method, measure="vi", n_repeats=settings.robin_repeats,
                        weighted=False, random_state=settings.seed, verbose=False)
            for name, g in graphs.items()}


def embedding(adata: Any, settings: RunSettings) -> tuple[dict[str, Any], Any]:
    """RobustUMAP with certified radii and per-cell top genes (``tl.robust_umap`` keys) and each gene's impact on
    the embedding (``var["robust_umap_gene_impact"]``, NaN for genes outside the model). Returns the numbers
    and the fitted model."""
    from .. import tl
    from ..umap import RobustUMAP

    tl.robust_umap(adata, random_state=settings.seed, top_genes=settings.top_genes, key_added=ROBUST_UMAP_KEY,
                   **settings.umap)
    model = RobustUMAP.from_bytes(adata.uns[ROBUST_UMAP_KEY]["model"].tobytes())
    impact = model.gene_impact(adata)
    adata.var[GENE_IMPACT_KEY] = impact.reindex(adata.var_names).to_numpy(dtype=np.float64)
    top = impact.sort_values(ascending=False).head(15)
    cert = adata.uns[ROBUST_UMAP_KEY].get("certificate", {})
    return {"certificate": {k: v for k, v in cert.items()},
            "top_genes": [{"gene": str(g), "impact": float(v)} for g, v in top.items()],
            "n_model_genes": int(len(model.genes_)), "input_scaled": bool(model.scale),
            "params": {k: v for k, v in adata.uns[ROBUST_UMAP_KEY]["params"].items()
                       if k not in ("genes_used", "versions")}}, model
