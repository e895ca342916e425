"""`magmap run` / magmap.pipeline.run: the files it writes, every number against an independent computation,
the label-free path, and that a failed run leaves nothing that looks complete."""
from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import magmap
from magmap.pipeline import FILES, RunSettings, run
from magmap.preprocessing import square_gene_subset

# Small enough for seconds: a seeded 120-cell subset of the bundled data, short RobustUMAP training.
FAST = dict(robin_repeats=3, top_genes=2, umap={"n_epochs": 30, "robust_epochs": 2})


def small_baron(n: int = 120, seed: int = 0) -> ad.AnnData:
    a = magmap.datasets.baron2016_pancreas()
    idx = np.sort(np.random.default_rng(seed).choice(a.n_obs, n, replace=False))
    return a[idx].copy()


def small_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One labelled run per test session, shared by the pipeline and report tests."""
    out = tmp_path_factory.getbasetemp() / "magmap_small_run" / "res"
    if not (out / "summary.json").exists():
        run(small_baron(), out=out, label="cell_type", settings=RunSettings(**FAST))
    return out


@pytest.fixture(scope="module")
def res(tmp_path_factory):
    out = small_run_dir(tmp_path_factory)
    return out, json.loads((out / "summary.json").read_text()), ad.read_h5ad(out / "results.h5ad")


def test_writes_every_file_and_no_partial_folder(res):
    out, summary, _ = res
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert [p.name for p in out.parent.iterdir()] == ["res"]  # the temporary folder was moved, not copied
    assert summary["files"] == FILES
    assert summary["input"]["n_cells"] == 120 and summary["input"]["label"] == "cell_type"
    assert summary["settings"]["seed"] == 0 and summary["settings"]["robin_repeats"] == 3
    assert "magmap" in summary["versions"] and summary["timings"]["total"] > 0


def test_network_genes_are_the_square_subset(res):
    _, summary, adata = res
    mask, info = square_gene_subset(adata.X)
    assert np.array_equal(adata.var["magmap_network_gene"].to_numpy(), mask)
    assert summary["preprocessing"] == json.loads(json.dumps(info))
    assert np.array_equal(adata.var["medmagma_used"].to_numpy(), mask)
    assert np.array_equal(adata.var["gmgm_used"].to_numpy(), mask)


def test_cluster_scores_match_sklearn_and_igraph(res):
    import igraph as ig
    from sklearn.metrics import adjusted_mutual_info_score

    _, summary, adata = res
    labels = adata.obs["cell_type"].astype(str).to_numpy()
    for key in ("medmagma", "gmgm"):
        graph = adata.obsp[f"{key}_connectivities"]
        assert abs(graph - graph.T).max() == 0
        rec = summary["clusters"][key]
        memb = adata.obs[f"{key}_leiden"].to_numpy()
        assert rec["n_clusters"] == len(np.unique(memb))
        assert rec["ami"] == pytest.approx(adjusted_mutual_info_score(labels, memb), abs=1e-12)
        coo = sp.triu(graph, k=1).tocoo()
        g = ig.Graph(n=graph.shape[0], edges=list(zip(coo.row.tolist(), coo.col.tolist())))
        codes = pd.Categorical(labels).codes.tolist()
        assert rec["assortativity"] == pytest.approx(g.assortativity_nominal(codes, directed=False), abs=1e-12)
    # on pancreas cell types the networks link cells of the same type far above chance (assortativity 0)
    assert summary["clusters"]["medmagma"]["assortativity"] > 0.3


def test_module_shares_and_anova_match_direct_computation(res):
    from scipy.stats import f_oneway

    _, summary, adata = res
    module = adata.var["medmagma_module"]
    shares = adata.obsm["medmagma_module_share"]
    X = sp.csr_matrix(adata.X).toarray()
    total = X.sum(axis=1)
    labels = adata.obs["cell_type"].astype(str).to_numpy()
    assert module.notna().sum() == adata.var["medmagma_used"].sum()
    for rec in summary["modules"]["modules"]:
        genes = (module == rec["module"]).to_numpy()
        assert genes.sum() == rec["n_genes"]
        direct = 100 * X[:, genes].sum(axis=1) / total
        np.testing.assert_allclose(shares[rec["module"]].to_numpy(), direct, rtol=1e-6)
        F, p = f_oneway(*[direct[labels == g] for g in np.unique(labels)])
        assert rec["anova_F"] == pytest.approx(F, rel=1e-6)
        assert rec["anova_p"] == pytest.approx(p, rel=1e-4, abs=1e-300)
    assert np.all(shares.to_numpy().sum(axis=1) <= 100 + 1e-9)
    assert summary["modules"]["n_significant_bonferroni"] >= 1


def test_robustness_reproduces_with_the_recorded_seed(res):
    _, summary, adata = res
    graph = adata.obsp["medmagma_connectivities"]
    again = magmap.robustness.robin(graph, method="louvain", measure="vi", n_repeats=3, weighted=False,
                                    random_state=summary["seeds"]["robustness_cells"], verbose=False)
    rec = summary["robustness"]["cells"]
    assert rec["bayes_factor_ln"] == pytest.approx(again.bayes_factor, rel=1e-12)
    assert rec["auc"] == pytest.approx(list(again.auc), rel=1e-12)
    stored = adata.uns["medmagma_robustness"]["cells"]
    np.testing.assert_allclose(stored["curve_real"], again.curve_real)
    # real communities are more stable than those of the degree-preserving null
    assert rec["auc"][0] < rec["auc"][1]


def test_model_file_reproduces_the_embedding(res):
    out, summary, adata = res
    model = magmap.RobustUMAP.load(out / "robust_umap.magmap")
    np.testing.assert_allclose(model.transform(adata), adata.obsm["X_robust_umap"], atol=1e-4)
    assert np.all(adata.obs["robust_umap_certified_radius"] >= 0)
    impact = adata.var["robust_umap_gene_impact"]
    top = summary["embedding"]["top_genes"][0]
    assert impact.idxmax() == top["gene"] and impact.max() == pytest.approx(top["impact"])


def test_edge_lists_are_the_graphs(res):
    out, _, adata = res
    for key in ("medmagma", "gmgm"):
        for axis, graph, names in (("cell", adata.obsp[f"{key}_connectivities"], adata.obs_names),
                                   ("gene", adata.varp[f"{key}_connectivities"], adata.var_names)):
            edges = pd.read_csv(out / f"{key}_{axis}_edges.csv")
            pos = pd.Series(np.arange(len(names)), index=names)
            rebuilt = sp.coo_matrix((edges["weight"], (pos[edges["source"]], pos[edges["target"]])), shape=graph.shape)
            rebuilt = rebuilt + rebuilt.T
            assert abs(rebuilt - graph).max() < 1e-6 * max(1.0, abs(graph).max())


def test_label_free_run_skips_label_parts(tmp_path):
    summary = run(small_baron(60, seed=1), out=tmp_path / "nolab", settings=RunSettings(**FAST))
    assert summary["input"]["label"] is None
    assert "ami" not in summary["clusters"]["medmagma"] and "anova_p" not in summary["modules"]["modules"][0]
    assert "recover" not in summary["readings"]["clusters"]
    html = (tmp_path / "nolab" / "report.html").read_text()
    assert "label-free" in html and "MED-MAGMA vs GmGM scores" not in html


def test_square_gene_subset_picks_the_first_squarest_cut():
    # 10 cells; gene j is expressed in min(j + 1, 10) cells: the cut p keeps genes expressed in more than 10p
    # cells, so 12 genes up to p = 0.1, 11 up to 0.2, then 10 (as many as cells) from p = 0.2.
    rng = np.random.default_rng(0)
    n_cells, n_genes = 10, 12
    X = np.zeros((n_cells, n_genes))
    for j in range(n_genes):
        X[: min(j + 1, n_cells), j] = rng.integers(1, 20, size=min(j + 1, n_cells))
    mask, info = square_gene_subset(X, n_top_genes=2000)
    expressed = (X > 0).sum(axis=0)
    best = None
    for p in np.linspace(0, 1, 101):  # brute force over the same grid
        genes = expressed > p * n_cells
        if best is None or abs(genes.sum() - n_cells) < abs(best[0].sum() - n_cells):
            best = (genes, p)
    assert info["n_hvg"] == n_genes  # fewer genes than n_top_genes: all are highly variable
    assert np.array_equal(mask, best[0]) and info["expressed_fraction"] == pytest.approx(best[1])
    assert info["n_genes"] == mask.sum() == 10


def test_square_gene_subset_rejects_negative_values():
    with pytest.raises(ValueError, match="negative values"):
        square_gene_subset(-np.ones((5, 5)))


def test_run_settings_refuse_too_few_cells_or_repeats():
    assert RunSettings(max_cells=20.0, robin_repeats=2).max_cells == 20
    with pytest.raises(ValueError, match="`max_cells` must be at least 20, got 10"):
        RunSettings(max_cells=10)
    with pytest.raises(TypeError, match="`robin_repeats` must be an integer, got 2.5"):
        RunSettings(robin_repeats=2.5)
