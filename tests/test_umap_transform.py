"""RobustUMAP.transform: every input route (sparse, dense, dask; gene order; blocks and worker threads) gives
``encoder_(preprocess(X))``, and bad values raise the standard messages."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import magmap.umap.inference as inference
from magmap.umap import RobustUMAP

FAST = dict(n_neighbors=10, n_epochs=8, batch_size=512, hidden_layers=(32, 32, 32), verbose=False, robust=False)
TOL = dict(rtol=1e-4, atol=1e-4)


def _counts(n_cells: int = 150, n_genes: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n_cells // 3)
    base = rng.gamma(2.0, 1.0, size=(3, n_genes)) * rng.choice([0.2, 5.0], size=(3, n_genes))
    X = rng.poisson(base[labels] * rng.uniform(0.8, 1.2, size=(n_cells, 1))).astype(np.float64)
    X[:, 0] += 1  # no empty cells
    X[7, :] = 0  # ... except one: stays all-zero before scaling
    return X


def _adata(X, genes):
    import anndata as ad

    a = ad.AnnData(sp.csr_matrix(X) if not sp.issparse(X) else X)
    a.var_names = list(genes)
    a.obs_names = [f"c{i}" for i in range(X.shape[0])]
    return a


@pytest.fixture(scope="module")
def X():
    return _counts()


@pytest.fixture(scope="module")
def genes(X):
    return [f"g{j}" for j in range(X.shape[1])]


@pytest.fixture(scope="module")
def model(X, genes):
    fit_X = X.copy()
    fit_X[7, 0] = 1  # fit needs non-empty cells
    return RobustUMAP(random_state=0, n_top_genes=30, log1p=False, **FAST).fit(_adata(fit_X, genes))


@pytest.fixture(scope="module")
def model_log1p(X, genes):
    """The default preprocessing: log1p, centring only, PCA-factored first layer."""
    fit_X = X.copy()
    fit_X[7, 0] = 1
    return RobustUMAP(random_state=0, n_top_genes=30, n_pcs=10, **FAST).fit(_adata(fit_X, genes))


@pytest.fixture(scope="module")
def model_paper(X, genes):
    """The robust-UMAP paper's preprocessing: no log1p, z-scores, no PCA."""
    fit_X = X.copy()
    fit_X[7, 0] = 1
    return RobustUMAP(random_state=0, n_top_genes=30, log1p=False, scale=True, n_pcs=None,
                      **FAST).fit(_adata(fit_X, genes))


def _reference(m, query):
    with torch.inference_mode():
        return m.encoder_(torch.from_numpy(m.preprocess(query))).numpy()


@pytest.fixture(params=[1, 2], ids=["serial", "2-workers"])
def small_blocks(request, monkeypatch, model, model_log1p, model_paper):
    """Blocks of 16 rows (several per chunk) with 1 or 2 torch threads (= transform workers). Depends on the
    models so that they are fitted first (fitting may reset the OpenMP thread count)."""
    monkeypatch.setattr(inference, "BLOCK_ROWS", 16)
    n = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(n)


@pytest.mark.parametrize("which", ["model", "model_log1p", "model_paper"])
def test_sparse_dense_dask_agree(which, X, genes, small_blocks, request):
    m = request.getfixturevalue(which)
    a = _adata(X, genes)
    ref = _reference(m, a)
    Z = m.transform(a, chunk_size=50)
    np.testing.assert_allclose(Z, ref, **TOL)
    dense = a.copy()
    dense.X = X.astype(np.float32)
    np.testing.assert_allclose(m.transform(dense, chunk_size=33), Z, **TOL)
    # matrices (positional columns: the training columns), as CSR float64/int64 indices, dense float64 and int
    csr = sp.csr_matrix(X)
    csr64 = sp.csr_matrix((csr.data, csr.indices.astype(np.int64), csr.indptr.astype(np.int64)), shape=csr.shape)
    for q in (csr, csr64, sp.csc_matrix(X), X, X.astype(np.int64)):
        np.testing.assert_allclose(m.transform(q), Z, **TOL)
    da = pytest.importorskip("dask.array")
    np.testing.assert_allclose(m.transform(da.from_array(X, chunks=(17, X.shape[1])), chunk_size=25), Z, **TOL)
    lazy_sparse = da.from_array(X, chunks=(17, X.shape[1])).map_blocks(sp.csr_matrix)
    np.testing.assert_allclose(m.transform(lazy_sparse, chunk_size=40), Z, **TOL)
    assert torch.get_num_threads() == small_blocks  # the caller's thread setting is restored


def test_gene_order_and_subsets(model, X, genes, small_blocks):
    a = _adata(X, genes)
    Z = model.transform(a)
    perm = np.random.default_rng(3).permutation(X.shape[1])
    for q in (a[:, perm].copy(), _adata(X[:, perm], np.asarray(genes)[perm])):  # sparse query, shuffled genes
        np.testing.assert_allclose(model.transform(q), Z, **TOL)
    dense = _adata(X[:, perm], np.asarray(genes)[perm])
    dense.X = dense.X.toarray()
    np.testing.assert_allclose(model.transform(dense), Z, **TOL)
    # exactly the model genes, reversed (the weights are permuted instead of the data)
    mg = model.genes_[::-1]
    only = _adata(X[:, [genes.index(g) for g in mg]], mg)
    np.testing.assert_allclose(model.transform(only), Z, **TOL)
    np.testing.assert_allclose(model.transform(only, chunk_size=9), Z, **TOL)
    # a subset of the model genes, missing ones filled with zero counts
    keep = [g for g in mg if g not in model.genes_[:3]]
    sub = _adata(X[:, [genes.index(g) for g in keep]], keep)
    filled = X.copy()
    filled[:, [genes.index(g) for g in model.genes_[:3]]] = 0
    np.testing.assert_allclose(model.transform(sub, missing_genes="zero"), model.transform(_adata(filled, genes)),
                               **TOL)


def test_values_outside_model_genes_are_ignored(model, X, genes):
    other = [j for j, g in enumerate(genes) if g not in model.genes_]
    bad = X.copy()
    bad[0, other[0]] = np.nan
    bad[1, other[1]] = -5
    np.testing.assert_allclose(model.transform(_adata(bad, genes)), model.transform(_adata(X, genes)), **TOL)


@pytest.mark.parametrize("value, message", [(np.nan, r"`X` contains 1 NaN or infinite"),
                                            (np.inf, r"`X` contains 1 NaN or infinite"),
                                            (-1.0, r"`X` contains negative values \(min -1\)")])
@pytest.mark.parametrize("kind", ["csr", "dense", "dask"])
def test_bad_values_messages(model, model_log1p, X, genes, value, message, kind, small_blocks):
    bad = X.copy()
    bad[60, genes.index(model.genes_[4])] = value
    for m in (model, model_log1p):
        q = _adata(bad, genes) if kind == "csr" else bad
        if kind == "dask":
            da = pytest.importorskip("dask.array")
            q = da.from_array(bad, chunks=(20, bad.shape[1]))
        with pytest.raises(ValueError, match=message):
            m.transform(q, chunk_size=32)


def test_features_input(X):
    rng = np.random.default_rng(0)
    F = rng.normal(size=(90, 6)).astype(np.float32)  # signed features (e.g. PCA)
    m = RobustUMAP(random_state=0, input_type="features", n_top_genes=None, **FAST).fit(F)
    np.testing.assert_allclose(m.transform(F), m.embedding_, **TOL)
    np.testing.assert_allclose(m.transform(sp.csr_matrix(F)), m.embedding_, **TOL)
    F[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        m.transform(F)


def test_unsorted_and_duplicate_sparse_entries(model, X, genes):
    csr = sp.csr_matrix(X)
    rng = np.random.default_rng(0)
    rows, cols, vals = [], [], []
    for i in range(csr.shape[0]):  # every entry split in two halves, in random order within the row
        s, e = csr.indptr[i], csr.indptr[i + 1]
        order = rng.permutation(2 * (e - s))
        c = np.concatenate([csr.indices[s:e]] * 2)[order]
        v = np.concatenate([csr.data[s:e] / 2] * 2)[order]
        rows.append(np.full(c.size, i))
        cols.append(c)
        vals.append(v)
    indptr = np.concatenate([[0], np.cumsum([c.size for c in cols])])
    messy = sp.csr_matrix((np.concatenate(vals), np.concatenate(cols), indptr), shape=csr.shape)
    assert not messy.has_canonical_format
    np.testing.assert_allclose(model.transform(messy), model.transform(X), **TOL)


def test_empty_query(model, X):
    assert model.transform(X[:0]).shape == (0, 2)
    assert model.transform(sp.csr_matrix(X[:0])).shape == (0, 2)


def test_bad_value_count_is_per_chunk(model, X, genes, small_blocks):
    bad = X.copy()
    g = genes.index(model.genes_[4])
    bad[40, g] = bad[60, g] = np.nan  # two 16-row blocks of the same 32-cell chunk
    for q in (_adata(bad, genes), bad):
        with pytest.raises(ValueError, match=r"`X` contains 2 NaN or infinite"):
            model.transform(q, chunk_size=32)
