"""MED-MAGMA on real count data: the cell graph must follow the cell types.

Regression guard for the degenerate solutions of the reference's normalisation on counts with many
zeros (before the fix: same-type edge fraction 0.003 on Baron HVGs, chance ≈ 0.2; GmGM on log1p 0.65;
now 0.63). See ``docs/medmagma.md`` ("Real count data") and benchmarks/bench_medmagma_real.py.
"""
from __future__ import annotations

import warnings

import magmap
import numpy as np
import pytest
import scipy.sparse as sp
from magmap.medmagma import DegenerateSolutionWarning, precision_graph


@pytest.fixture(scope="module")
def baron_hvg():
    sc = pytest.importorskip("scanpy")
    a = magmap.datasets.baron2016_pancreas()
    sc.pp.filter_genes(a, min_cells=3)
    sc.pp.highly_variable_genes(a, flavor="seurat_v3", n_top_genes=200)
    a = a[:, a.var["highly_variable"].values]
    X = a.X.toarray() if sp.issparse(a.X) else np.asarray(a.X)
    X = X.astype(float)
    keep = X.sum(1) > 0
    return X[keep], a.obs["cell_type"].astype(str).values[keep]


def _same_type_fraction(precision, labels, k=10):
    g = sp.triu(precision_graph(precision, k), 1).tocoo()
    return float((labels[g.row] == labels[g.col]).mean())


def test_baron_hvg_cell_graph_follows_cell_types(baron_hvg):
    X, labels = baron_hvg
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateSolutionWarning)
        m = magmap.MedMagma(random_state=0).fit(X)
    assert m.laplace_weight_ == 0.0  # counts with zeros → no Laplace term ("auto")
    assert not m.degenerate_
    frac = _same_type_fraction(m.cell_precision_, labels)
    assert m.scaling_prior_ == 1.0  # zeros → the bounded E-step ("auto")
    assert frac > 0.7, frac  # measured 0.764 (0.631 without the scaling prior); chance ≈ 0.2; degenerate ≤ 0.13
    assert magmap.metrics.assortativity(precision_graph(m.cell_precision_, 10), labels) > 0.6  # 0.70 (0.54 without the prior)


def test_baron_hvg_old_normalisation_is_flagged(baron_hvg):
    """The reference's normalisation with its Laplace term degenerates here; the diagnostic must say so
    and tell the user what to refit with."""
    X, labels = baron_hvg
    with pytest.warns(DegenerateSolutionWarning, match="laplace_weight=0"):
        m = magmap.MedMagma(z_scale="unit", laplace_weight=1.0, max_iter=30, random_state=0).fit(X)
    assert m.degenerate_
    assert m.diagnostics_["positive_offdiag_fraction_cells"] > 0.84
    assert _same_type_fraction(m.cell_precision_, labels) < 0.2


@pytest.mark.filterwarnings("ignore::magmap.medmagma.DegenerateSolutionWarning")  # tiny random data
def test_laplace_weight_auto_and_z_scale():
    rng = np.random.default_rng(0)
    X = np.exp(rng.normal(size=(20, 15)))
    m = magmap.MedMagma(max_iter=5).fit(X)
    assert m.laplace_weight_ == 1.0  # no zeros: the reference's term in full
    X[0, 0] = 0.0
    assert magmap.MedMagma(max_iter=5).fit(X).laplace_weight_ == 0.0
    assert magmap.MedMagma(max_iter=5, laplace_weight=0.3).fit(X).laplace_weight_ == 0.3
    assert magmap.MedMagma(max_iter=5, mode="reference", max_flipflop=3).fit(X).laplace_weight_ == 1.0
    h = magmap.MedMagma(max_iter=3, z_scale="unit").fit(X).history_
    assert all(r["z_scale_factor"] == 1.0 for r in h)


@pytest.mark.parametrize("solver", ["dense", "lowrank"])
def test_numeric_z_scale_sets_the_statistic_scale(solver):
    """A number is the target ‖z*‖²: z_scale=mean(Y²) is the "mean-square" fit, and the recorded factor
    rescales the unit-norm mode to the target (Y computed here from the quotient)."""
    from magmap.medmagma.quotient import log_quotient

    rng = np.random.default_rng(1)
    X = rng.poisson(np.exp(rng.normal(size=(40, 1)) + rng.normal(size=(1, 12))) * 4).astype(float)
    X = X[X.sum(1) > 0]
    w, sign = log_quotient(X, zero_handling="one-pass")
    mean_sq = float(((sign * np.exp(w)) ** 2).mean())
    kw = dict(max_iter=4, random_state=0, solver=solver)
    a = magmap.MedMagma(z_scale="mean-square", **kw).fit(X)
    b = magmap.MedMagma(z_scale=mean_sq, **kw).fit(X)
    # mean(Y²) summed here in another order: the last bit differs, and 4 EM iterations grow it to ~1e-7.
    np.testing.assert_allclose(np.asarray(b.cell_precision_), np.asarray(a.cell_precision_), rtol=1e-5, atol=1e-9)
    assert [r["z_scale_factor"] for r in b.history_] == pytest.approx([r["z_scale_factor"] for r in a.history_],
                                                                       rel=1e-5)
    c = magmap.MedMagma(z_scale=2.5, **kw).fit(X)
    ratio = [rc["z_scale_factor"] / ra["z_scale_factor"] for rc, ra in zip(c.history_[:1], a.history_[:1])]
    assert ratio == pytest.approx([2.5 / mean_sq], rel=1e-9)  # same first mode, another target


@pytest.mark.parametrize("kw, msg", [({"laplace_weight": 2.0}, "laplace_weight"),
                                     ({"laplace_weight": "yes"}, "laplace_weight"),
                                     ({"z_scale": "max"}, "z_scale"),
                                     ({"z_scale": 0.0}, "positive number"),
                                     ({"z_scale": -1.0}, "positive number"),
                                     ({"z_scale": float("nan")}, "positive number"),
                                     ({"z_scale": True}, "z_scale")])
def test_bad_new_params(kw, msg):
    with pytest.raises(ValueError, match=msg):
        magmap.MedMagma(**kw).fit(np.ones((5, 4)) + np.eye(5, 4))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_eigenvalues_at_the_clip_flag_reference_mode_only():
    """Only the reference M-step clips at 1e-6. In fast mode a cell eigenvalue may be ≤ 0 in a sound fit
    (only λ_cells + λ_genes > 0 is identified; Yan under the paper's protocol had 8 of 90), so the
    diagnostic must not call that degenerate."""
    rng = np.random.default_rng(0)
    X = rng.poisson(np.exp(rng.normal(size=(30, 1)) + rng.normal(size=(1, 12))) * 3).astype(float)
    X = X[X.sum(1) > 0]
    for mode, flagged in (("fast", False), ("reference", True)):
        m = magmap.MedMagma(mode=mode, laplace_weight=0, z_scale="mean-square", max_iter=3, max_flipflop=3,
                            random_state=0).fit(X)
        m.cell_precision_ = -np.abs(m.cell_precision_)  # all off-diagonals negative: that rule is quiet
        m.cell_eigenvalues_ = np.where(np.arange(X.shape[0]) < 3, -1.0, 2.0)  # 10 % at or below 1e-6
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DegenerateSolutionWarning)
            m._diagnose(True, neg_stat=0)
        assert m.degenerate_ is flagged, mode
        assert any(issubclass(w.category, DegenerateSolutionWarning) for w in caught) is flagged
        assert m.diagnostics_["eigenvalues_at_floor_fraction_cells"] == pytest.approx(3 / X.shape[0])
