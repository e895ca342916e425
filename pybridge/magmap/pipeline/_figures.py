"""Figures of the ``magmap run`` report, each returned as PNG bytes (matplotlib, Agg backend)."""
from __future__ import annotations

import io
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._keys import GMGM_KEY, MEDMAGMA_KEY, ROBUST_UMAP_KEY, certified_radius_key, connectivities_key, embedding_key
from ._steps import CLUSTER_SUFFIX, MODULE_KEY, MODULE_SHARE_KEY

__all__ = ["make_figures"]

_NAMES = {MEDMAGMA_KEY: "MED-MAGMA", GMGM_KEY: "GmGM"}
_DPI = 90


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _colours(groups: np.ndarray) -> tuple[list[str], np.ndarray, list[Any]]:
    import matplotlib.pyplot as plt

    levels, codes = np.unique(groups, return_inverse=True)
    cmap = plt.get_cmap("tab20" if len(levels) > 10 else "tab10")
    return [str(v) for v in levels], codes, [cmap(i % cmap.N) for i in range(len(levels))]


def _scatter_groups(ax: Any, Z: np.ndarray, groups: np.ndarray, *, size: float = 10) -> None:
    levels, codes, cols = _colours(groups)
    for i, lev in enumerate(levels):
        sel = codes == i
        ax.scatter(Z[sel, 0], Z[sel, 1], s=size, color=cols[i], label=lev, linewidths=0)
    if len(levels) <= 20:
        ax.legend(fontsize=7, markerscale=1.5, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)


def _layout(graph: Any, seed: int) -> np.ndarray:
    """Fruchterman–Reingold layout of a sparse graph, seeded (igraph draws from Python's ``random``)."""
    import random

    import igraph as ig

    coo = sp.triu(sp.csr_matrix(graph), k=1).tocoo()
    g = ig.Graph(n=graph.shape[0], edges=list(zip(coo.row.tolist(), coo.col.tolist())))
    state = random.getstate()
    random.seed(seed)
    try:
        return np.asarray(g.layout_fruchterman_reingold(niter=300).coords, dtype=float)
    finally:
        random.setstate(state)


def _draw_network(ax: Any, graph: Any, pos: np.ndarray, groups: np.ndarray, title: str, *, size: float = 10) -> None:
    from matplotlib.collections import LineCollection

    coo = sp.triu(sp.csr_matrix(graph), k=1).tocoo()
    segs = np.stack([pos[coo.row], pos[coo.col]], axis=1)
    ax.add_collection(LineCollection(segs, colors="0.6", linewidths=0.3, alpha=0.5, zorder=0))
    _scatter_groups(ax, pos, groups, size=size)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def embedding_by_group(adata: Any, groups: np.ndarray, what: str) -> bytes:
    import matplotlib.pyplot as plt

    Z = adata.obsm[embedding_key(ROBUST_UMAP_KEY)]
    fig, ax = plt.subplots(figsize=(6.2, 4.6))
    _scatter_groups(ax, Z, groups)
    ax.set_title(f"RobustUMAP embedding, coloured by {what}", fontsize=10)
    ax.set_xlabel("RobustUMAP 1")
    ax.set_ylabel("RobustUMAP 2")
    return _png(fig)


def embedding_by_radius(adata: Any) -> bytes:
    import matplotlib.pyplot as plt

    Z = adata.obsm[embedding_key(ROBUST_UMAP_KEY)]
    r = adata.obs[certified_radius_key(ROBUST_UMAP_KEY)].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(5.8, 4.6))
    order = np.argsort(-r)  # smallest radii drawn last, on top
    sc = ax.scatter(Z[order, 0], Z[order, 1], c=r[order], s=10, cmap="viridis", linewidths=0)
    fig.colorbar(sc, ax=ax, label="certified radius")
    ax.set_title("RobustUMAP embedding, coloured by certified radius", fontsize=10)
    ax.set_xlabel("RobustUMAP 1")
    ax.set_ylabel("RobustUMAP 2")
    return _png(fig)


def cell_networks(adata: Any, groups: np.ndarray, what: str, seed: int) -> bytes:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    for ax, key in zip(axes, (MEDMAGMA_KEY, GMGM_KEY)):
        graph = adata.obsp[connectivities_key(key)]
        _draw_network(ax, graph, _layout(graph, seed), groups, f"{_NAMES[key]} cell network (cells coloured by {what})")
    axes[0].get_legend() and axes[0].get_legend().remove()
    return _png(fig)


def gene_network(adata: Any, seed: int) -> bytes:
    import matplotlib.pyplot as plt

    module = adata.var[MODULE_KEY]
    used = module.notna().to_numpy()
    idx = np.flatnonzero(used)
    graph = sp.csr_matrix(adata.varp[connectivities_key(MEDMAGMA_KEY)])[idx][:, idx]
    fig, ax = plt.subplots(figsize=(6.8, 5.2))
    _draw_network(ax, graph, _layout(graph, seed), module.to_numpy()[used].astype(str),
                  "MED-MAGMA gene network (genes coloured by module)", size=12)
    return _png(fig)


def robustness_curves(results: dict[str, Any]) -> bytes:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.0))
    for ax, (name, res) in zip(axes, results.items()):
        res.plot(ax=ax, title=f"MED-MAGMA {name[:-1]} network: ln BF = {res.bayes_factor:.1f}")
    return _png(fig)


def module_heatmap(adata: Any, groups: np.ndarray, what: str, anova: dict[str, float] | None) -> bytes:
    """Mean module share per group, standardised per module across groups (rows: modules)."""
    import matplotlib.pyplot as plt

    shares = adata.obsm[MODULE_SHARE_KEY]
    levels = np.unique(groups)
    means = np.stack([shares.to_numpy()[groups == g].mean(axis=0) for g in levels], axis=1)
    sd = means.std(axis=1, keepdims=True)
    z = (means - means.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)
    rows = list(shares.columns)
    if anova is not None:
        rows = [f"{m}  (p={anova[m]:.1e})" if np.isfinite(anova[m]) else f"{m}  (p=n/a)" for m in rows]
    fig, ax = plt.subplots(figsize=(1.6 + 0.55 * len(levels), 1.2 + 0.32 * len(rows)))
    im = ax.imshow(z, aspect="auto", cmap="RdBu_r", vmin=-2, vmax=2)
    ax.set_xticks(range(len(levels)))
    ax.set_xticklabels([str(v) for v in levels], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=8)
    fig.colorbar(im, ax=ax, label="share of counts (z across groups)")
    ax.set_title(f"Gene modules × {what}", fontsize=10)
    return _png(fig)


def method_scores(clusters: dict[str, Any]) -> bytes:
    import matplotlib.pyplot as plt

    metrics = [("ami", "AMI of communities vs labels"), ("assortativity", "label assortativity")]
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    width = 0.38
    x = np.arange(len(metrics))
    for i, key in enumerate((MEDMAGMA_KEY, GMGM_KEY)):
        vals = [clusters[key][m] for m, _ in metrics]
        bars = ax.bar(x + (i - 0.5) * width, vals, width, label=_NAMES[key])
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_xticks(x)
    ax.set_xticklabels([t for _, t in metrics])
    ax.axhline(0, color="0.3", linewidth=0.8)
    ax.set_ylabel("score (1 = perfect agreement)")
    ax.set_title("Cell networks against the labels", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    return _png(fig)


def gene_impact_bars(top: list[dict[str, Any]]) -> bytes:
    import matplotlib.pyplot as plt

    genes = [t["gene"] for t in top][::-1]
    vals = [t["impact"] for t in top][::-1]
    fig, ax = plt.subplots(figsize=(5.2, 0.6 + 0.26 * len(genes)))
    ax.barh(genes, vals, color="#4c72b0")
    ax.set_xlabel("impact on the embedding (sum over cells of the gradient norm)")
    ax.set_title("Genes that move the embedding most", fontsize=10)
    ax.tick_params(axis="y", labelsize=8)
    return _png(fig)


def make_figures(adata: Any, labels: np.ndarray | None, label: str | None, summary: dict[str, Any],
                 robin_results: dict[str, Any], seed: int) -> dict[str, bytes]:
    """Every report figure, keyed by the report section it belongs to."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    if labels is not None:
        groups, what = labels, f"'{label}'"
    else:
        groups, what = adata.obs[MEDMAGMA_KEY + CLUSTER_SUFFIX].to_numpy().astype(str), "MED-MAGMA community"
    anova = None
    if labels is not None:
        anova = {r["module"]: (np.nan if r.get("anova_p") is None else r["anova_p"]) for r in summary["modules"]["modules"]}
    figs = {
        "embedding_groups": embedding_by_group(adata, groups, what),
        "embedding_radius": embedding_by_radius(adata),
        "cell_networks": cell_networks(adata, groups, what, seed),
        "gene_network": gene_network(adata, seed),
        "robustness": robustness_curves(robin_results),
        "module_heatmap": module_heatmap(adata, groups, what, anova),
        "gene_impact": gene_impact_bars(summary["embedding"]["top_genes"]),
    }
    if labels is not None:
        figs["method_scores"] = method_scores(summary["clusters"])
    return figs
