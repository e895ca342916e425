"""magmap.medmagma.learn_graphs: the array-level entry that tl.med_magma/tl.gmgm and the R entry share."""
from __future__ import annotations

import warnings

import magmap
import numpy as np
import pytest
import scipy.sparse as sp
from magmap.medmagma import gene_mask, learn_graphs


@pytest.fixture(scope="module")
def counts():
    rng = np.random.default_rng(0)
    lam = np.exp(rng.normal(size=(40, 1)) + rng.normal(size=(1, 12)) + 0.5 * rng.normal(size=(40, 12)))
    X = rng.poisson(2 * lam).astype(float)
    return X[X.sum(1) > 0]


def _fit(X, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny random counts: degenerate/non-convergence warnings
        return learn_graphs(X, n_neighbors=5, n_gene_neighbors=3, max_iter=10, **kw)


def test_same_graphs_as_the_estimator_and_the_scanpy_front_door(counts):
    import anndata as ad

    res = _fit(counts, random_state=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = magmap.MedMagma(max_iter=10, random_state=3).fit(counts)
        adata = ad.AnnData(X=counts.copy())
        magmap.tl.med_magma(adata, n_neighbors=5, n_gene_neighbors=3, max_iter=10, random_state=3)
    assert (res.cells != model.cell_graph(5)).nnz == 0
    assert (res.genes != model.gene_graph(3)).nnz == 0
    assert (adata.obsp["medmagma_connectivities"] != res.cells).nnz == 0
    p = res.params
    assert (p["method"], p["n_neighbors"], p["n_gene_neighbors"], p["n_genes_used"]) == ("medmagma", 5, 3, 12)
    assert p["random_state"] == 3 and p["solver_used"] == "dense" and "numpy" in p["versions"]
    assert p["n_iter"] == model.n_iter_


def test_gene_subset_is_fitted_alone_and_scattered_back(counts):
    mask = np.zeros(12, dtype=bool)
    mask[[1, 4, 5, 7, 8, 11]] = True
    res = _fit(counts, genes=mask)
    alone = _fit(counts[:, mask])
    np.testing.assert_array_equal(res.genes_used, mask)
    assert res.genes.shape == (12, 12) and res.genes[~mask].nnz == 0 and res.genes[:, ~mask].nnz == 0
    np.testing.assert_array_equal(res.genes[np.ix_(mask, mask)].toarray(), alone.genes.toarray())
    assert (res.cells != alone.cells).nnz == 0
    positions = _fit(counts, genes=np.flatnonzero(mask))
    assert (positions.cells != res.cells).nnz == 0


def test_one_copy_and_the_input_is_never_changed(counts):
    X = counts.copy()
    res = _fit(X)
    assert res.data is not X and np.shares_memory(res.data, X) is False
    np.testing.assert_array_equal(X, counts)
    assert _fit(X, copy=False).data is X  # a fresh float64 array from the caller is used as it is
    sub = _fit(X, genes=np.arange(6), copy=True)
    assert not np.shares_memory(sub.data, X)  # the subset is the copy
    as_int = counts.astype(np.int64)
    assert _fit(as_int, copy=False).data.dtype == np.float64  # converted, never fitted as integers
    sparse = sp.csr_matrix(counts)
    np.testing.assert_allclose(_fit(sparse).cells.toarray(), res.cells.toarray(), rtol=1e-10)


@pytest.mark.parametrize("genes, err, msg", [
    (np.ones(5, dtype=bool), ValueError, r"one value per gene \(12\), got shape \(5,\)"),
    (np.array([0, 12]), ValueError, r"positions must be between 0 and 11, got 0\.\.12"),
    (np.array([0, 1]), ValueError, r"Only 2 gene\(s\) selected; at least 3 are needed"),
    (np.array(["a", "b", "c"]), TypeError, "gene names are resolved by magmap.tl"),
])
def test_bad_gene_selection(genes, err, msg):
    with pytest.raises(err, match=msg):
        gene_mask(genes, 12)


def test_bad_arguments(counts):
    with pytest.raises(ValueError, match=r"`method` must be one of \['medmagma', 'gmgm'\], got 'umap'"):
        learn_graphs(counts, method="umap")
    with pytest.raises(ValueError, match=r"`n_neighbors` \(40\) must be smaller than the number of cells \(40\)"):
        learn_graphs(counts, n_neighbors=40)
    with pytest.raises(ValueError, match=r"`n_gene_neighbors` \(3\) must be smaller than the number of genes used \(3\)"):
        learn_graphs(counts, genes=[0, 1, 2], n_gene_neighbors=3)
    with pytest.raises(ValueError, match=r"`X` must be 2-D \(cells × genes\), got shape \(12,\)"):
        learn_graphs(counts[0])
    with pytest.raises(ValueError, match="`adata.X` contains negative values"):
        learn_graphs(-counts, name="adata.X")
    with pytest.raises(TypeError, match="unexpected keyword argument 'n_components'"):
        learn_graphs(counts, n_components=2)
