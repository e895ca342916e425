"""M-step oracles: stationarity of the Newton solution and agreement with a brute-force dense MLE
over full Ψ matrices at tiny size; the reference kernel's clip/cap behaviour."""
from __future__ import annotations

import numpy as np
import torch
from magmap.medmagma.mstep import gmgm_objective, mstep_newton, mstep_reference
from scipy.optimize import minimize

T = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))  # noqa: E731


def _grams(d1, d2, seed, n_samples=3):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(n_samples, d1, d2))
    s1 = sum(x @ x.T for x in xs)
    s2 = sum(x.T @ x for x in xs)  # equal traces, as E-step statistics have
    return s1, s2


def test_newton_stationarity():
    s1, s2 = _grams(6, 8, 0)
    e1, e2 = np.linalg.eigvalsh(s1), np.linalg.eigvalsh(s2)
    l1, l2, it, conv = mstep_newton(T(e1), T(e2))
    assert conv
    m = 1.0 / (l1.numpy()[:, None] + l2.numpy()[None, :])
    np.testing.assert_allclose(m.sum(1), e1, rtol=1e-6)  # e₁ᵢ = Σⱼ 1/(λ₁ᵢ+λ₂ⱼ)
    np.testing.assert_allclose(m.sum(0), e2, rtol=1e-6)


def test_newton_with_ridge_is_stationary_with_negative_eigenvalues():
    e1 = T([-0.5, 0.1, 0.3, 1.0])
    e2 = T([-0.2, 0.05, 0.4, 0.7, 2.0])
    rho, c = 0.05, 1.0
    l1, l2, _, conv = mstep_newton(e1, e2, rho=rho, center=c)
    m = 1.0 / (l1[:, None] + l2[None, :])
    g1 = e1 - m.sum(1) + 2 * rho * (l1 - c)
    g2 = e2 - m.sum(0) + 2 * rho * (l2 - c)
    assert float(torch.cat([g1, g2]).abs().max()) < 1e-6


def _brute_force(s1, s2):
    """Minimise tr(Ψ₁S₁)+tr(Ψ₂S₂)−logdet(Ψ₁⊕Ψ₂) over all symmetric Ψ₁, Ψ₂ (dense Kronecker sum)."""
    d1, d2 = s1.shape[0], s2.shape[0]
    i1, i2 = np.triu_indices(d1), np.triu_indices(d2)

    def unpack(v):
        a = np.zeros((d1, d1)); a[i1] = v[:len(i1[0])]; a = a + a.T - np.diag(np.diag(a))  # noqa: E702
        b = np.zeros((d2, d2)); b[i2] = v[len(i1[0]):]; b = b + b.T - np.diag(np.diag(b))  # noqa: E702
        return a, b

    def f(v):
        a, b = unpack(v)
        w = np.linalg.eigvalsh(np.kron(a, np.eye(d2)) + np.kron(np.eye(d1), b))
        if w.min() <= 0:
            return 1e10
        return np.trace(a @ s1) + np.trace(b @ s2) - np.log(w).sum()

    v0 = np.concatenate([np.eye(d1)[i1], np.eye(d2)[i2]]) * 0.5
    res = minimize(f, v0, method="BFGS", options={"gtol": 1e-9, "maxiter": 20000})
    a, b = unpack(res.x)
    return np.kron(a, np.eye(d2)) + np.kron(np.eye(d1), b)


def test_agrees_with_brute_force_dense_mle():
    s1, s2 = _grams(3, 4, 1, n_samples=4)
    e1, u1 = np.linalg.eigh(s1)
    e2, u2 = np.linalg.eigh(s2)
    l1, l2, _, conv = mstep_newton(T(e1), T(e2))
    p1 = (u1 * l1.numpy()) @ u1.T
    p2 = (u2 * l2.numpy()) @ u2.T
    omega = np.kron(p1, np.eye(4)) + np.kron(np.eye(3), p2)  # gauge-free comparison
    omega_bf = _brute_force(s1, s2)
    np.testing.assert_allclose(omega, omega_bf, atol=2e-4 * np.abs(omega_bf).max())


def test_newton_objective_not_above_reference_kernel():
    s1, s2 = _grams(10, 12, 2)
    e1, e2 = T(np.linalg.eigvalsh(s1) / 50), T(np.linalg.eigvalsh(s2) / 50)
    l1, l2, _, _ = mstep_newton(e1, e2)
    r1, r2, _ = mstep_reference(e1, e2)
    assert gmgm_objective(e1, e2, l1, l2) <= gmgm_objective(e1, e2, r1, r2) + 1e-9


def test_reference_kernel_clip_and_cap():
    # All-negative statistics (first EM iteration of the reference): unbounded problem; the kernel
    # keeps λ inside its clip range and stops at its iteration cap.
    e1 = T(-np.linspace(0.5, 1.0, 5))
    e2 = T(-np.linspace(0.2, 0.9, 6))
    l1, l2, it = mstep_reference(e1, e2, max_iter=50)
    assert it == 50
    assert float(l1.min()) >= 1e-6 and float(l1.max()) <= 1e6
    assert float(l1.min()) > 1.0  # it moved up from λ = 1
    # larger |e| → larger λ (gradient steps ∝ |e| once the log term is small)
    assert np.all(np.diff(l1.numpy()[::-1]) < 0) or np.all(np.diff(l1.numpy()) > 0)
