"""magmap.preprocessing.select_hvg: scanpy's seurat_v3 on counts, every gene when not asked for fewer, and the
dispersion fallback when loess fails."""
import anndata as ad
import numpy as np
import pytest
import scanpy as sc
import scipy.sparse as sp

from magmap.preprocessing import select_hvg


@pytest.fixture
def counts():
    rng = np.random.default_rng(3)
    mean = rng.gamma(0.6, 2.0, size=80)
    return sp.csr_matrix(rng.poisson(mean * rng.gamma(2.0, 0.5, size=(150, 1))).astype(np.float64))


def test_select_hvg_is_seurat_v3_on_counts(counts):
    idx, flavor = select_hvg(counts, 20)
    expected = sc.pp.highly_variable_genes(ad.AnnData(counts.astype(np.float32)), n_top_genes=20, flavor="seurat_v3",
                                           span=0.3, inplace=False)["highly_variable"].to_numpy()
    assert flavor == "seurat_v3"
    np.testing.assert_array_equal(idx, np.flatnonzero(expected))
    for n_top in (None, 80, 500):
        idx, flavor = select_hvg(counts, n_top)
        assert flavor == "all"
        np.testing.assert_array_equal(idx, np.arange(80))


def test_select_hvg_falls_back_to_dispersion_when_loess_fails(counts, monkeypatch):
    def fail(*args, **kwargs):
        raise ValueError("loess failed")

    monkeypatch.setattr(sc.pp, "highly_variable_genes", fail)
    idx, flavor = select_hvg(counts, 10)
    assert flavor == "dispersion (log-normalised)"
    X = counts.toarray()
    logn = np.log1p(X * (1e4 / X.sum(axis=1, keepdims=True)))
    disp = logn.var(axis=0) / np.maximum(logn.mean(axis=0), 1e-12)
    np.testing.assert_array_equal(idx, np.sort(np.argsort(-disp, kind="stable")[:10]))
