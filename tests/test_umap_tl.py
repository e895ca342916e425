"""scanpy front doors magmap.tl.robust_umap / robust_umap_transform: exactly the documented keys."""
from __future__ import annotations

import inspect

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import magmap
from magmap.umap import RobustUMAP

FAST = dict(n_neighbors=10, n_epochs=10, batch_size=512, hidden_layers=(32, 32), robust_epochs=2,
            n_top_genes=25)


@pytest.fixture(scope="session")
def adatas():
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(3), 40)
    base = rng.gamma(2.0, 1.0, size=(3, 30)) * rng.choice([0.3, 3.0], size=(3, 30))
    X = rng.poisson(base[labels]).astype(np.float32)
    X[:, 0] += 1
    a = ad.AnnData(sp.csr_matrix(X), obs=pd.DataFrame({"cell_type": labels.astype(str)},
                                                        index=[f"c{i}" for i in range(120)]))
    a.var_names = [f"g{j}" for j in range(30)]
    a.layers["counts"] = a.X.copy()
    ref, query = a[:90].copy(), a[90:].copy()
    magmap.tl.robust_umap(ref, layer="counts", random_state=0, top_genes=3, **FAST)
    return ref, query


def test_robust_umap_writes_documented_keys(adatas, tmp_path):
    ref, _ = adatas
    assert set(ref.obsm) == {"X_robust_umap", "robust_umap_box_lower", "robust_umap_box_upper",
                             "robust_umap_top_genes"}
    assert ref.obsm["X_robust_umap"].shape == (90, 2)
    assert {"robust_umap_certified_box", "robust_umap_certified_radius", "robust_umap_top_gene"} <= set(ref.obs)
    assert set(ref.uns["robust_umap"]) == {"params", "model", "certificate"}
    params = ref.uns["robust_umap"]["params"]
    for k in ("random_state", "versions", "epsilon", "fraction", "bound_method", "genes_used", "hvg_flavor",
              "n_neighbors", "top_genes"):
        assert k in params
    assert params["random_state"] == 0 and params["layer"] == "counts" and params["fraction"] == 0.05
    model = ref.uns["robust_umap"]["model"]
    assert model.dtype == np.uint8
    m = RobustUMAP.from_bytes(model)
    np.testing.assert_allclose(m.embedding_, ref.obsm["X_robust_umap"])
    # the stored certificates are the model's
    cert = m.certify(ref, layer="counts")
    np.testing.assert_allclose(ref.obs["robust_umap_certified_radius"], cert.radius)
    np.testing.assert_allclose(ref.obs["robust_umap_certified_box"], cert.relative_diagonal)
    np.testing.assert_allclose(ref.obsm["robust_umap_box_lower"], cert.lower)
    np.testing.assert_allclose(ref.obsm["robust_umap_box_upper"], cert.upper)
    assert ref.uns["robust_umap"]["certificate"]["radius_median"] == pytest.approx(np.median(cert.radius))
    radius_ok = ref.obs["robust_umap_certified_radius"] >= np.float32(params["epsilon"])
    np.testing.assert_array_equal(radius_ok, ref.obs["robust_umap_certified_box"] <= 0.05)
    # top genes: the tidy per-cell result, widened
    top = m.cell_gene_impact(ref, n_top=3, layer="counts")
    table = ref.obsm["robust_umap_top_genes"]
    assert list(table.columns) == ["gene_1", "gene_2", "gene_3", "impact_1", "impact_2", "impact_3"]
    assert list(table.index) == list(ref.obs_names)
    first = top[top["rank"] == 1].set_index("cell")
    np.testing.assert_array_equal(table["gene_1"], first.loc[ref.obs_names, "gene"])
    np.testing.assert_allclose(table["impact_3"], top[top["rank"] == 3]["impact"])
    np.testing.assert_array_equal(ref.obs["robust_umap_top_gene"].astype(str), table["gene_1"])
    ref.write_h5ad(tmp_path / "ref.h5ad")  # everything written is h5ad-serialisable
    back = ad.read_h5ad(tmp_path / "ref.h5ad")
    np.testing.assert_array_equal(RobustUMAP.from_bytes(back.uns["robust_umap"]["model"]).embedding_, m.embedding_)
    pd.testing.assert_frame_equal(back.obsm["robust_umap_top_genes"], table, check_dtype=False)
    np.testing.assert_array_equal(back.obs["robust_umap_certified_radius"], ref.obs["robust_umap_certified_radius"])


def test_front_door_defaults_are_the_estimators():
    est = RobustUMAP().get_params()
    sig = inspect.signature(magmap.tl.robust_umap).parameters
    for name in ("n_neighbors", "n_components", "min_dist", "n_top_genes", "log1p", "epsilon", "robust",
                 "bound_method", "loss", "n_epochs"):
        assert sig[name].default == est[name], name


def test_copy_returns_new_object(adatas):
    ref, _ = adatas
    small = ref[:, :].copy()
    del small.obsm["X_robust_umap"]
    out = magmap.tl.robust_umap(small, layer="counts", random_state=0, certify=False, key_added="ru2", copy=True,
                                **FAST)
    assert out is not small and "X_ru2" in out.obsm and "X_ru2" not in small.obsm
    assert "ru2_certified_box" not in out.obs and "ru2_certified_radius" not in out.obs
    assert "ru2_top_gene" not in out.obs and "certificate" not in out.uns["ru2"]


def test_transform_front_door(adatas):
    ref, query = adatas
    magmap.tl.robust_umap_transform(query, reference=ref, layer="counts", key_added="proj", epsilon=0.01,
                                    fraction=0.1, top_genes=2)
    assert "X_proj" in query.obsm and "proj_certified_box" in query.obs and "proj_certified_radius" in query.obs
    assert query.uns["proj"]["params"]["projected"] is True
    assert query.uns["proj"]["params"]["epsilon"] == 0.01 and query.uns["proj"]["params"]["fraction"] == 0.1
    m = RobustUMAP.from_bytes(ref.uns["robust_umap"]["model"])
    np.testing.assert_allclose(query.obsm["X_proj"], m.transform(query, layer="counts"), rtol=1e-6)
    cert = m.certify(query, 0.01, fraction=0.1, layer="counts")
    np.testing.assert_allclose(query.obs["proj_certified_radius"], cert.radius)
    np.testing.assert_allclose(query.obsm["proj_box_upper"], cert.upper)
    assert query.obsm["proj_top_genes"].shape == (30, 4)
    assert query.uns["proj"]["params"]["refine"] is False
    refined = magmap.tl.robust_umap_transform(query, reference=ref, layer="counts", key_added="pr", refine=True,
                                              certify=False, copy=True)
    np.testing.assert_array_equal(refined.obsm["X_pr"], m.transform(query, layer="counts", refine=True))
    assert refined.uns["pr"]["params"]["refine"] is True
    with pytest.raises(ValueError, match="pass `model=`"):
        magmap.tl.robust_umap_transform(query)
    with pytest.raises(KeyError, match="not found"):
        magmap.tl.robust_umap_transform(query, reference=query, reference_key="nothing")
    with pytest.raises(ValueError, match="`fraction`"):
        magmap.tl.robust_umap_transform(query, reference=ref, layer="counts", fraction=-1)
