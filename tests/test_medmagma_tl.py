"""scanpy front doors: keys written, Leiden on the cell graph, gene subset scattered back."""
from __future__ import annotations

import anndata as ad
import magmap
import numpy as np
import pytest
import scanpy as sc
import scipy.sparse as sp
from magmap.datasets import synthetic_multiaxis


@pytest.fixture()
def adata():
    d = synthetic_multiaxis(50, 40, noise_strength=0.5, random_state=2)
    x = np.abs(d.X)
    x[np.random.default_rng(0).random(x.shape) < 0.2] = 0.0
    a = ad.AnnData(sp.csr_matrix(x))
    a.var_names = [f"g{i}" for i in range(40)]
    return a


def test_med_magma_writes_keys_and_leiden_runs(adata):
    magmap.tl.med_magma(adata, n_neighbors=5, random_state=1)
    key = "medmagma"
    conn = adata.obsp[f"{key}_connectivities"]
    assert sp.issparse(conn) and conn.shape == (50, 50) and abs(conn - conn.T).max() == 0
    assert adata.obsp[f"{key}_distances"].nnz == conn.nnz
    uns = adata.uns[key]
    assert uns["connectivities_key"] == f"{key}_connectivities"
    assert uns["distances_key"] == f"{key}_distances"
    assert uns["params"]["random_state"] == 1 and "versions" in uns["params"]
    assert adata.var[f"{key}_used"].all()
    # zeros in the input: "auto" drops the Laplace term, and the params record it
    assert uns["params"]["laplace_weight"] == "auto" and uns["params"]["laplace_weight_used"] == 0.0
    # the graph is the estimator's graph on the same data and seed
    model = magmap.MedMagma(random_state=1).fit(adata.X)
    assert abs(conn - model.cell_graph(5)).max() < 1e-9 * conn.max()
    sc.tl.leiden(adata, neighbors_key=key, key_added="leiden_mm", flavor="igraph", n_iterations=2)
    assert adata.obs["leiden_mm"].nunique() >= 2


@pytest.mark.filterwarnings("ignore::magmap.medmagma.DegenerateSolutionWarning")  # Laplace term forced on zeros
def test_med_magma_passes_laplace_weight_and_z_scale(adata):
    out = magmap.tl.med_magma(adata, n_neighbors=5, laplace_weight=1.0, z_scale="unit", max_iter=5, copy=True)
    params = out.uns["medmagma"]["params"]
    assert params["laplace_weight_used"] == 1.0 and params["z_scale"] == "unit"
    model = magmap.MedMagma(laplace_weight=1.0, z_scale="unit", max_iter=5).fit(adata.X)
    conn = out.obsp["medmagma_connectivities"]
    assert abs(conn - model.cell_graph(5)).max() < 1e-9 * conn.max()


# A 20-gene subset of this tiny draw fits a degenerate-looking cell precision (the warning says so);
# what is tested here is only where the gene graph lands.
@pytest.mark.filterwarnings("ignore::magmap.medmagma.DegenerateSolutionWarning")
def test_gene_subset_scattered_back(adata):
    mask = np.zeros(40, dtype=bool)
    mask[::2] = True
    adata.var["highly_variable"] = mask
    out = magmap.tl.med_magma(adata, use_highly_variable=True, n_gene_neighbors=3, key_added="mm", copy=True)
    assert out is not adata and "mm" not in adata.uns
    g = out.varp["mm_connectivities"]
    assert g.shape == (40, 40)
    assert g[~mask].nnz == 0 and g[:, ~mask].nnz == 0
    np.testing.assert_array_equal(out.var["mm_used"].to_numpy(), mask)
    sub = magmap.MedMagma(random_state=0).fit(adata.X[:, mask]).gene_graph(3)
    assert abs(g[mask][:, mask] - sub).max() < 1e-9 * sub.max()
    # a name list gives the same genes
    out2 = magmap.tl.med_magma(adata, genes=list(adata.var_names[mask]), n_gene_neighbors=3, key_added="mm",
                               copy=True, use_highly_variable=False)
    assert abs(out2.varp["mm_connectivities"] - g).max() < 1e-9 * g.max()


def test_gmgm_front_door(adata):
    assert magmap.tl.gmgm(adata, n_neighbors=4) is None
    assert "gmgm_connectivities" in adata.obsp and "gmgm_connectivities" in adata.varp
    assert adata.uns["gmgm"]["params"]["mode"] == "paper"


def test_front_door_errors(adata):
    with pytest.raises(KeyError, match="highly_variable"):
        magmap.tl.med_magma(adata, use_highly_variable=True)
    with pytest.raises(KeyError, match="layer"):
        magmap.tl.med_magma(adata, layer="counts")
    neg = adata.copy()
    neg.X = neg.X.toarray() - 1.0
    with pytest.raises(ValueError, match="negative values"):
        magmap.tl.med_magma(neg)
    with pytest.raises(ValueError, match="at least 3"):
        magmap.tl.med_magma(adata, genes=np.r_[True, True, np.zeros(38, bool)])
