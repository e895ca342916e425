"""scanpy front doors magmap.tl.robust_umap / robust_umap_transform: exactly the documented keys."""
from __future__ import annotations

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
    magmap.tl.robust_umap(ref, layer="counts", random_state=0, **FAST)
    return ref, query


def test_robust_umap_writes_documented_keys(adatas, tmp_path):
    ref, _ = adatas
    assert set(ref.obsm) == {"X_robust_umap"}
    assert ref.obsm["X_robust_umap"].shape == (90, 2)
    assert "robust_umap_certified_box" in ref.obs and np.all(ref.obs["robust_umap_certified_box"] > 0)
    assert set(ref.uns["robust_umap"]) == {"params", "model"}
    params = ref.uns["robust_umap"]["params"]
    for k in ("random_state", "versions", "epsilon", "bound_method", "genes_used", "hvg_flavor", "n_neighbors"):
        assert k in params
    assert params["random_state"] == 0 and params["layer"] == "counts"
    model = ref.uns["robust_umap"]["model"]
    assert model.dtype == np.uint8
    m = RobustUMAP.from_bytes(model)
    np.testing.assert_allclose(m.embedding_, ref.obsm["X_robust_umap"])
    ref.write_h5ad(tmp_path / "ref.h5ad")  # everything written is h5ad-serialisable
    back = ad.read_h5ad(tmp_path / "ref.h5ad")
    np.testing.assert_array_equal(RobustUMAP.from_bytes(back.uns["robust_umap"]["model"]).embedding_, m.embedding_)


def test_copy_returns_new_object(adatas):
    ref, _ = adatas
    small = ref[:, :].copy()
    del small.obsm["X_robust_umap"]
    out = magmap.tl.robust_umap(small, layer="counts", random_state=0, certify=False, key_added="ru2", copy=True,
                                **FAST)
    assert out is not small and "X_ru2" in out.obsm and "X_ru2" not in small.obsm
    assert "ru2_certified_box" not in out.obs


def test_transform_front_door(adatas):
    ref, query = adatas
    magmap.tl.robust_umap_transform(query, reference=ref, layer="counts", key_added="proj")
    assert "X_proj" in query.obsm and "proj_certified_box" in query.obs
    assert query.uns["proj"]["params"]["projected"] is True
    m = RobustUMAP.from_bytes(ref.uns["robust_umap"]["model"])
    np.testing.assert_allclose(query.obsm["X_proj"], m.transform(query, layer="counts"), rtol=1e-6)
    with pytest.raises(ValueError, match="pass `model=`"):
        magmap.tl.robust_umap_transform(query)
    with pytest.raises(KeyError, match="not found"):
        magmap.tl.robust_umap_transform(query, reference=query, reference_key="nothing")
