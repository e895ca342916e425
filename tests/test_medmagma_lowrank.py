"""The many-cells path (``solver="lowrank"``) against the dense path, where both run.

The low-rank path keeps the larger axis's precision as ``λ₀I + V Diag(δ) Vᵀ``; it is the same EM
(the cell statistic has rank ≤ genes, the M-step shares one eigenvalue outside its range), so both
paths must give the same precisions, graphs and AP up to solver round-off.
"""
from __future__ import annotations

import magmap
import numpy as np
import pytest
import scipy.sparse as sp
from magmap.datasets import synthetic_multiaxis
from magmap.medmagma import LowRankPrecision, learn_graphs
from magmap.medmagma.estimators import choose_solver, memory_needed
from magmap.metrics import edge_average_precision as ap


def _jaccard(a: sp.spmatrix, b: sp.spmatrix) -> np.ndarray:
    """Per-vertex Jaccard index of the neighbour sets of two graphs."""
    a, b = sp.csr_matrix(a != 0), sp.csr_matrix(b != 0)
    inter = np.asarray(a.multiply(b).sum(1)).ravel()
    union = np.asarray((a + b != 0).sum(1)).ravel()
    return inter / np.maximum(union, 1)


def _offdiag_rel(a: np.ndarray, b: np.ndarray) -> float:
    off = ~np.eye(a.shape[0], dtype=bool)
    return float(np.linalg.norm((a - b)[off]) / np.linalg.norm(a[off]))


def _pair(X, **kw):
    dense = magmap.MedMagma(solver="dense", random_state=0, n_threads=1, **kw).fit(X)
    low = magmap.MedMagma(solver="lowrank", random_state=0, n_threads=1, **kw).fit(X)
    return dense, low


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_multiaxis(400, 40, random_state=0)


def test_lowrank_matches_dense_on_synthetic_data(synthetic):
    """Paper-style data (no zeros, so the Laplace term is on): same fixed point, same graphs and AP.
    (With the term the low-rank path takes a slightly different EM path, so both are run to tol 1e-6.)"""
    dense, low = _pair(synthetic.X, tol=1e-6)
    assert (dense.solver_, low.solver_) == ("dense", "lowrank")
    assert dense.laplace_weight_ == low.laplace_weight_ == 1.0
    assert isinstance(low.cell_precision_, LowRankPrecision)
    assert low.cell_precision_.basis.shape[1] <= 40 + 1  # rank ≤ genes + the all-ones direction
    assert dense.converged_ and low.converged_ and dense.n_iter_ == low.n_iter_
    # measured 1.5e-10 (cells) and 7.6e-12 (genes); the tolerance leaves room for other BLAS kernels
    assert _offdiag_rel(dense.cell_precision_, np.asarray(low.cell_precision_)) < 1e-6
    # entries near zero: agreement to 1e-9 of the matrix's scale (measured ≤ 2e-11 across BLAS kernels)
    np.testing.assert_allclose(low.gene_precision_, dense.gene_precision_, rtol=1e-6,
                               atol=1e-9 * np.abs(dense.gene_precision_).max())
    assert _jaccard(dense.cell_graph(10), low.cell_graph(10)).min() >= 0.95
    ap_dense = ap(dense.cell_precision_, synthetic.cell_precision)
    assert ap(np.asarray(low.cell_precision_), synthetic.cell_precision) == pytest.approx(ap_dense, abs=1e-6)
    assert ap(low.gene_precision_, synthetic.gene_precision) == pytest.approx(
        ap(dense.gene_precision_, synthetic.gene_precision), abs=1e-6)


def test_lowrank_matches_dense_on_counts_with_zeros():
    """Count-like data with zeros (no Laplace term): the same EM iterates on both paths."""
    rng = np.random.default_rng(1)
    lam = np.exp(rng.normal(size=(300, 1)) + rng.normal(size=(1, 30)) + 0.5 * rng.normal(size=(300, 30)))
    X = rng.poisson(lam).astype(float)
    X = X[X.sum(1) > 0][:, X.sum(0) > 0]
    dense, low = _pair(X, max_iter=15, acceleration="none")
    assert dense.laplace_weight_ == low.laplace_weight_ == 0.0
    assert [r["rel_change"] for r in low.history_] == pytest.approx([r["rel_change"] for r in dense.history_],
                                                                   rel=1e-5)
    assert _offdiag_rel(dense.cell_precision_, np.asarray(low.cell_precision_)) < 1e-6
    assert _jaccard(dense.cell_graph(10), low.cell_graph(10)).min() >= 0.95


def test_genes_axis_factored_when_genes_outnumber_cells():
    """Many genes, few cells: the gene axis is the factored one. The flip-flop then solves the halves
    in the other order, so the paths meet at the fixed point within EM's tolerance (measured 4e-7 to
    1.2e-6 relative over seeds 2 and 3 at tol 1e-6), not iterate for iterate."""
    d = synthetic_multiaxis(30, 300, random_state=2)
    dense, low = _pair(d.X, tol=1e-6)
    assert isinstance(low.gene_precision_, LowRankPrecision) and isinstance(low.cell_precision_, np.ndarray)
    assert _offdiag_rel(dense.gene_precision_, np.asarray(low.gene_precision_)) < 2e-5
    assert _offdiag_rel(dense.cell_precision_, low.cell_precision_) < 2e-5
    assert _jaccard(dense.gene_graph(10), low.gene_graph(10)).min() >= 0.95
    assert _jaccard(dense.cell_graph(5), low.cell_graph(5)).min() >= 0.95
    assert low.s_cells_.shape == (30,) and low.s_genes_.shape == (300,)


def test_auto_chooses_by_shape_and_bad_choices_are_refused():
    assert choose_solver(2000, 100) == "lowrank"
    assert choose_solver(100, 5000) == "lowrank"
    assert choose_solver(1999, 100) == "dense"  # the dense path is faster below 2000
    assert choose_solver(3000, 2000) == "dense"  # not 2× longer
    assert choose_solver(5000, 100, mode="reference") == "dense"
    with pytest.raises(ValueError, match="not available with mode='reference'"):
        choose_solver(500, 10, "lowrank", mode="reference")
    with pytest.raises(ValueError, match=r"one axis longer than the other plus 2 \(got 40 cells × 39 genes\)"):
        magmap.MedMagma(solver="lowrank").fit(np.exp(np.random.default_rng(0).normal(size=(40, 39))))
    with pytest.raises(ValueError, match="`solver` must be one of"):
        magmap.MedMagma(solver="fast").fit(np.ones((5, 4)) + np.eye(5, 4))
    # memory grows with cells × genes on the many-cells path, with cells² on the dense one
    assert memory_needed(20000, 500, "lowrank") < 8 * 2**30 < memory_needed(20000, 500, "dense")


def test_memory_guard_names_the_path(monkeypatch):
    monkeypatch.setenv("MAGMAP_MEMORY_LIMIT", str(2**30))
    big = sp.csr_matrix((300_000, 100))
    with pytest.raises(MemoryError, match=r"MED-MAGMA \(many-cells path.*300000 cells × 100 genes needs about 2\.2"):
        learn_graphs(big)
    gib = f"{memory_needed(300_000, 3, 'dense') / 2**30:.2f}"
    with pytest.raises(MemoryError, match=rf"MED-MAGMA \(dense path: cells × cells.*needs about {gib} GiB"):
        learn_graphs(big, solver="dense", n_gene_neighbors=2, genes=np.arange(3))
