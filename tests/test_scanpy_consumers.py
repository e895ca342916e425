"""Every scanpy tool that takes ``neighbors_key`` runs on the MED-MAGMA and GmGM cell graphs of the bundled
Baron pancreas data (328 cells, 300 HVGs, k = 10) and gives sensible results: clusters that follow the
cell types, embeddings where cells of a type sit together, diffusion maps and PAGA graphs of *our* graph
(checked against computations from the graph itself), and no fallback to a PCA of ``X``.

Floors were measured with the default OpenBLAS kernels, ``OPENBLAS_CORETYPE=Haswell`` and ``Sandybridge``
(identical graphs): Leiden ARI 0.376 (MED-MAGMA) / 0.483 (GmGM), Louvain 0.38 / 0.54, UMAP same-type /
other-type mean distance 0.42 / 0.42 (chance: 1).
"""
from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
import scanpy as sc
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from sklearn.metrics import adjusted_rand_score

import magmap

KEYS = ("medmagma", "gmgm")


@pytest.fixture(scope="module")
def graphs():
    """Baron pancreas with both cell graphs (MED-MAGMA on counts, GmGM on log1p as the paper ran it)."""
    a = magmap.datasets.baron2016_pancreas()
    sc.pp.filter_genes(a, min_cells=3)
    sc.pp.highly_variable_genes(a, flavor="seurat_v3", n_top_genes=300)
    a.layers["log1p"] = sc.pp.log1p(a.X.copy())
    magmap.tl.med_magma(a, use_highly_variable=True, n_neighbors=10, random_state=0)
    magmap.tl.gmgm(a, use_highly_variable=True, layer="log1p", n_neighbors=10)
    return a


@pytest.fixture(params=KEYS)
def key_and_adata(request, graphs):
    return request.param, graphs.copy()


def _type_distance_ratio(emb: np.ndarray, labels: np.ndarray) -> float:
    """Mean distance between cells of the same type over that between cells of different types."""
    d = np.linalg.norm(emb[:, None, :] - emb[None, :, :], axis=-1)
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, False)
    other = labels[:, None] != labels[None, :]
    return float(d[same].mean() / d[other].mean())


def _labels(adata) -> np.ndarray:
    return np.asarray(adata.obs["cell_type"].astype(str))


def test_params_are_a_scanpy_neighbors_dict(graphs):
    for key, method, layer in (("medmagma", "medmagma", None), ("gmgm", "gmgm", "log1p")):
        params = graphs.uns[key]["params"]
        assert params["method"] == method and params["n_neighbors"] == 10
        assert params["use_rep"] == f"{key}_input" and "metric" not in params and "n_pcs" not in params
        # use_rep is exactly the matrix the model saw: the layer, restricted to the genes used
        used = graphs.var[f"{key}_used"].to_numpy()
        src = graphs.X if layer is None else graphs.layers[layer]
        assert abs(graphs.obsm[params["use_rep"]] - src[:, used]).max() == 0
        nv = sc.Neighbors(graphs, neighbors_key=key)
        assert nv.n_neighbors == 10 and nv.connectivities is graphs.obsp[f"{key}_connectivities"]


def test_leiden_and_louvain_follow_cell_types(key_and_adata):
    key, a = key_and_adata
    sc.tl.leiden(a, neighbors_key=key, flavor="igraph", n_iterations=2, random_state=0)
    # scanpy's louvain: the default flavor needs the `louvain` package (not a dependency); the igraph
    # flavor ignores random_state and draws from Python's `random`, which igraph uses: seed that.
    state = random.getstate()
    try:
        random.seed(0)
        sc.tl.louvain(a, neighbors_key=key, flavor="igraph")
    finally:
        random.setstate(state)
    for col in ("leiden", "louvain"):
        assert a.obs[col].nunique() >= 3
        assert adjusted_rand_score(_labels(a), a.obs[col]) > 0.3, col
    assert a.uns["leiden"]["params"]["random_state"] == 0


def test_umap_uses_our_graph_and_no_pca(key_and_adata, caplog):
    key, a = key_and_adata
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # scanpy's "Falling back to preprocessing with sc.pp.pca"
        sc.tl.umap(a, neighbors_key=key, random_state=0)
    assert "X_pca" not in a.obsm
    emb = a.obsm["X_umap"]
    assert emb.shape == (a.n_obs, 2) and np.isfinite(emb).all()
    assert _type_distance_ratio(emb, _labels(a)) < 0.6
    again = a.copy()
    sc.tl.umap(again, neighbors_key=key, random_state=0)
    np.testing.assert_array_equal(again.obsm["X_umap"], emb)


def test_umap_places_disconnected_components_from_the_input(graphs):
    # Cutting every edge between endocrine and other cells leaves ≥ 2 components; umap then
    # places them by centroids of obsm[use_rep] (a sparse counts matrix here).
    a = graphs.copy()
    endocrine = np.isin(_labels(a), ["alpha", "beta", "delta"])
    conn = a.obsp["medmagma_connectivities"].tocoo()
    keep = endocrine[conn.row] == endocrine[conn.col]
    cut = sp.csr_matrix((conn.data[keep], (conn.row[keep], conn.col[keep])), shape=conn.shape)
    a.obsp["medmagma_connectivities"] = cut
    a.obsp["medmagma_distances"] = cut.copy()
    assert connected_components(cut)[0] >= 2 and sp.issparse(a.obsm["medmagma_input"])
    sc.tl.umap(a, neighbors_key="medmagma", random_state=0)
    assert np.isfinite(a.obsm["X_umap"]).all() and "X_pca" not in a.obsm


def test_draw_graph(key_and_adata):
    key, a = key_and_adata
    sc.tl.draw_graph(a, layout="fr", neighbors_key=key, random_state=0)
    emb = a.obsm["X_draw_graph_fr"]
    assert emb.shape == (a.n_obs, 2) and np.isfinite(emb).all()
    assert _type_distance_ratio(emb, _labels(a)) < 0.8


def test_diffmap_is_the_spectrum_of_our_graph_and_dpt_runs(key_and_adata):
    key, a = key_and_adata
    sc.tl.diffmap(a, neighbors_key=key, n_comps=15)  # dpt uses 10 components
    # oracle: the density-normalised symmetric transition matrix of the connectivities (Coifman–Lafon)
    k = a.obsp[f"{key}_connectivities"].toarray()
    q = k.sum(0)
    kn = k / q[:, None] / q[None, :]
    z = np.sqrt(kn.sum(0))
    w = np.linalg.eigvalsh(kn / z[:, None] / z[None, :])
    top = np.sort(w[np.argsort(-np.abs(w))[:15]])[::-1]
    np.testing.assert_allclose(a.uns["diffmap_evals"], top, rtol=1e-4, atol=1e-5)
    assert np.isfinite(a.obsm["X_diffmap"]).all()
    root_type = "activated_stellate"
    a.uns["iroot"] = int(np.flatnonzero(_labels(a) == root_type)[0])
    sc.tl.dpt(a, neighbors_key=key)
    pt = a.obs["dpt_pseudotime"].to_numpy()
    assert np.isfinite(pt).all() and pt.min() >= 0 and pt.max() <= 1 and pt[a.uns["iroot"]] == 0
    medians = a.obs.groupby("cell_type", observed=True)["dpt_pseudotime"].median()
    assert medians.idxmin() == root_type  # the root's own type is closest to it


def test_paga_uses_our_graph_and_plots(key_and_adata):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key, a = key_and_adata
    sc.tl.paga(a, groups="cell_type", neighbors_key=key)
    con = a.uns["paga"]["connectivities"].toarray()
    n_types = a.obs["cell_type"].cat.categories.size
    assert con.shape == (n_types, n_types) and np.allclose(con, con.T) and con.min() >= 0 and con.max() <= 1
    # oracle: two types are linked in PAGA exactly when our graph has an edge between them
    codes = a.obs["cell_type"].cat.codes.to_numpy()
    g = a.obsp[f"{key}_distances"].tocoo()
    linked = np.zeros((n_types, n_types), dtype=bool)
    linked[codes[g.row], codes[g.col]] = True
    np.fill_diagonal(linked, False)
    np.testing.assert_array_equal(con > 0, linked)
    sc.pl.paga(a, show=False, random_state=0)
    pos = a.uns["paga"]["pos"]
    assert pos.shape == (n_types, 2) and np.isfinite(pos).all()
    plt.close("all")
