"""The scaling prior of the E-step: a bounded mode where the published product-one problem has none."""
from __future__ import annotations

import warnings

import magmap
import numpy as np
import pytest
import torch
from magmap.medmagma.estep import solve_product_one
from magmap.medmagma.estimators import AUTO_SCALING_PRIOR
from scipy.optimize import brentq


def test_prior_bounds_a_problem_without_minimiser():
    """min s₁² s.t. s₁s₂ = 1 has no minimiser (s₁ → 0). With the prior, h + μ‖ℓ‖² with ℓ = (t, −t) and
    μ = ε·h(0)/2 has its minimum where 2e^{2t} + 4μt = 0 (solved here by bracketing)."""
    q = torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    free, _ = solve_product_one(q, method="cholesky")
    assert float(free[0]) < 1e-6  # drifted towards the infimum
    eps = 0.5
    mu = eps * 1.0 / 2
    t_star = brentq(lambda t: 2 * np.exp(2 * t) + 4 * mu * t, -10, 0)
    for method in ("cholesky", "cg"):
        s, _ = solve_product_one(q, method=method, prior=eps)
        np.testing.assert_allclose(np.log(s.numpy()), [t_star, -t_star], rtol=1e-7)


def test_prior_kkt_on_a_random_problem():
    """Stationarity of h + μ‖ℓ‖² on the plane 1ᵀℓ = 0: P(2s∘Qs + 2μℓ) = 0."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(12, 12))
    q = torch.tensor(a @ a.T + np.eye(12), dtype=torch.float64)
    eps = 0.3
    h0 = float(torch.ones(12, dtype=torch.float64) @ q @ torch.ones(12, dtype=torch.float64))
    for method in ("cholesky", "cg"):
        s, _ = solve_product_one(q, method=method, prior=eps)
        ell = torch.log(s)
        assert abs(float(ell.sum())) < 1e-10
        grad = 2 * s * (q @ s) + 2 * (eps * h0 / 12) * ell
        assert float((grad - grad.mean()).abs().max()) < 1e-7 * float(grad.abs().max())


def test_auto_uses_the_prior_on_data_with_zeros_only():
    rng = np.random.default_rng(1)
    X = rng.poisson(3.0, size=(30, 10)).astype(float)
    X = X[X.sum(1) > 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert magmap.MedMagma(max_iter=3).fit(X).scaling_prior_ == AUTO_SCALING_PRIOR == 1.0
        assert magmap.MedMagma(max_iter=3).fit(X + 1).scaling_prior_ == 0.0
        assert magmap.MedMagma(max_iter=3, mode="reference", max_flipflop=3).fit(X).scaling_prior_ == 0.0
        assert magmap.MedMagma(max_iter=3, scaling_prior=2).fit(X).scaling_prior_ == 2.0
        plain = magmap.MedMagma(max_iter=3, scaling_prior=0).fit(X)
    assert plain.scaling_prior_ == 0.0 and plain.get_params()["scaling_prior"] == 0


@pytest.mark.parametrize("bad", [-0.1, "yes", True, float("nan")])
def test_bad_scaling_prior(bad):
    with pytest.raises(ValueError, match=r"`scaling_prior` must be 'auto' or a number ≥ 0, got"):
        magmap.MedMagma(scaling_prior=bad).fit(np.ones((5, 4)) + np.eye(5, 4))
