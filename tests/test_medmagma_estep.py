"""E-step oracles: the flip-flop quadratic form, the Newton sub-solver's KKT conditions, and the
closed-form Laplace correction against an explicit tangent-space computation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest_medmagma import random_pd
from magmap.medmagma.estep import _laplace_dense, flipflop, laplace_correction, q_tilde, solve_product_one

T = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))  # noqa: E731


def test_q_tilde_quadratic_form():
    rng = np.random.default_rng(0)
    d1, d2 = 5, 7
    p1, p2 = random_pd(d1, rng), random_pd(d2, rng)
    y = rng.normal(size=(d1, d2))
    s1, s2 = np.exp(rng.normal(size=d1)), np.exp(rng.normal(size=d2))
    z = s1[:, None] * y * s2[None, :]
    phi = np.trace(z.T @ p1 @ z) + np.trace(z @ p2 @ z.T)
    q1 = q_tilde(T(p1), T(p2), T(y), T(s2)).numpy()
    q2 = q_tilde(T(p2), T(p1), T(y.T), T(s1)).numpy()
    assert s1 @ q1 @ s1 == pytest.approx(phi, rel=1e-12)
    assert s2 @ q2 @ s2 == pytest.approx(phi, rel=1e-12)


@pytest.mark.parametrize("method", ["cholesky", "cg"])
def test_product_one_newton_kkt_and_optimality(method):
    rng = np.random.default_rng(1)
    d = 12
    p1, p2 = random_pd(d, rng), random_pd(9, rng)
    y = rng.normal(size=(d, 9))
    q = q_tilde(T(p1), T(p2), T(y), T(np.exp(rng.normal(size=9))))
    s, n_it = solve_product_one(q, method=method)
    s = s.numpy()
    qn = q.numpy()
    assert np.prod(s) == pytest.approx(1.0, rel=1e-10)
    kkt = s * (qn @ s)  # KKT: s∘Qs constant
    np.testing.assert_allclose(kkt, kkt.mean(), rtol=1e-7)
    h = s @ qn @ s
    # no random product-one point near the solution does better (local optimality)
    for _ in range(200):
        ell = np.log(s) + 0.05 * rng.normal(size=d)
        t = np.exp(ell - ell.mean())
        assert t @ qn @ t >= h * (1 - 1e-12)
    # warm start at the optimum takes no step
    s2, n2 = solve_product_one(q, torch.log(torch.as_tensor(s)), method=method)
    assert n2 == 0
    np.testing.assert_allclose(s2.numpy(), s, rtol=1e-12)


def test_flipflop_returns_unit_norm_stationary_scalings():
    rng = np.random.default_rng(2)
    d1, d2 = 8, 10
    p1, p2 = T(random_pd(d1, rng)), T(random_pd(d2, rng))
    y = T(rng.normal(size=(d1, d2)))
    res = flipflop(p1, p2, y, T(rng.random(d1)), T(rng.random(d2)), tol=1e-10)
    assert res.converged
    assert float(torch.linalg.norm(res.s1)) == pytest.approx(1.0)
    assert float(torch.linalg.norm(res.s2)) == pytest.approx(1.0)
    # stationary in both blocks: s∘Q̃s constant for each half
    q1 = q_tilde(p1, p2, y, res.s2)
    k1 = (res.s1 * (q1 @ res.s1)).numpy()
    np.testing.assert_allclose(k1, k1.mean(), rtol=1e-6)


def _explicit_correction(p1, p2):
    """½tr[(PᵀΩP)⁺ Pᵀ∇²g P] for g = ZZᵀ and ZᵀZ with an explicit tangent basis P (row-major vec)."""
    d1, d2 = p1.shape[0], p2.shape[0]
    omega = np.kron(p1, np.eye(d2)) + np.kron(np.eye(d1), p2)
    tangents = []
    for i in range(d1):
        t = np.zeros((d1, d2)); t[i, :] = 1; tangents.append(t)  # noqa: E702
    for j in range(d2):
        t = np.zeros((d1, d2)); t[:, j] = 1; tangents.append(t)  # noqa: E702
    P = np.stack([t.ravel() for t in tangents], axis=1)
    sig = np.linalg.pinv(P.T @ omega @ P, hermitian=True)
    e1 = np.zeros((d1, d1)); e2 = np.zeros((d2, d2))  # noqa: E702
    n = len(tangents)
    for a in range(n):
        for b in range(n):
            # second derivative of g along (a, b) is T_a T_bᵀ + T_b T_aᵀ; ½·tr pairs it with Σ
            e1 += 0.5 * sig[a, b] * (tangents[a] @ tangents[b].T + tangents[b] @ tangents[a].T)
            e2 += 0.5 * sig[a, b] * (tangents[a].T @ tangents[b] + tangents[b].T @ tangents[a])
    return e1, e2


@pytest.mark.parametrize("seed", [0, 1])
def test_laplace_correction_matches_explicit_tiny_computation(seed):
    rng = np.random.default_rng(seed)
    p1, p2 = random_pd(4, rng), random_pd(5, rng, scale=2.0)
    l1, u1 = np.linalg.eigh(p1)
    l2, u2 = np.linalg.eigh(p2)
    e1, e2 = laplace_correction(T(u1), T(l1), T(u2), T(l2))
    x1, x2 = _explicit_correction(p1, p2)
    np.testing.assert_allclose(e1.numpy(), x1, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(e2.numpy(), x2, rtol=1e-9, atol=1e-12)
    # the dense pseudo-inverse fallback agrees too (gauge independence)
    f1, f2 = _laplace_dense(T(u1), T(l1), T(u2), T(l2))
    np.testing.assert_allclose(f1.numpy(), x1, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(f2.numpy(), x2, rtol=1e-8, atol=1e-12)


def test_laplace_correction_identity_value():
    # Ψ = I (first EM iteration): the correction is a fixed, known matrix; e.g. its trace for 50×50
    # is 49.5 as reported for the reference.
    d = 50
    e1, _ = laplace_correction(torch.eye(d, dtype=torch.float64), torch.ones(d, dtype=torch.float64),
                               torch.eye(d, dtype=torch.float64), torch.ones(d, dtype=torch.float64))
    assert float(torch.trace(e1)) == pytest.approx(49.5, rel=1e-10)


def test_flipflop_shortcuts_match_the_plain_computation():
    """Closed form for diagonal Ψ (first EM iteration), the Gram hint and z*ᵀz*: same numbers."""
    rng = np.random.default_rng(3)
    d1, d2 = 7, 9
    y = T(rng.normal(size=(d1, d2)))
    s1, s2 = T(rng.random(d1) + 0.1), T(rng.random(d2) + 0.1)
    # diagonal Ψ: closed form vs Newton (a tiny off-diagonal disables the shortcut)
    p1, p2 = T(np.diag(rng.random(d1) + 0.5)), T(np.diag(rng.random(d2) + 0.5))
    eps1, eps2 = p1.clone(), p2.clone()
    eps1[0, 1] = eps1[1, 0] = 1e-300
    fast = flipflop(p1, p2, y, s1, s2, max_rounds=3, return_ztz=True)
    slow = flipflop(eps1, eps2, y, s1, s2, max_rounds=3, return_ztz=True)
    assert fast.newton_steps == 0 and slow.newton_steps > 0
    np.testing.assert_allclose(fast.s1.numpy(), slow.s1.numpy(), rtol=1e-8)
    np.testing.assert_allclose(fast.zzt.numpy(), slow.zzt.numpy(), rtol=1e-7)
    # general Ψ: the Gram hint and the returned z*ᵀz*
    p1, p2 = T(random_pd(d1, rng)), T(random_pd(d2, rng))
    a = flipflop(p1, p2, y, s1, s2, max_rounds=1, return_ztz=True)
    z = (a.s1[:, None] * y * a.s2[None, :]).numpy()
    np.testing.assert_allclose(a.zzt.numpy(), z @ z.T, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(a.ztz.numpy(), z.T @ z, rtol=1e-12, atol=1e-15)
    b = flipflop(p1, p2, y, a.s1, a.s2, max_rounds=1, gram2=a.gram2)
    c = flipflop(p1, p2, y, a.s1, a.s2, max_rounds=1)
    np.testing.assert_allclose(b.s1.numpy(), c.s1.numpy(), rtol=1e-10)
    np.testing.assert_allclose(b.s2.numpy(), c.s2.numpy(), rtol=1e-10)


def test_subtract_laplace_in_place_matches_laplace_correction():
    from magmap.medmagma.estep import subtract_laplace
    rng = np.random.default_rng(4)
    l1, u1 = np.linalg.eigh(random_pd(6, rng))
    l2, u2 = np.linalg.eigh(random_pd(8, rng))
    e1, e2 = laplace_correction(T(u1), T(l1), T(u2), T(l2))
    s1, s2 = T(random_pd(6, rng)), T(random_pd(8, rng))
    x1, x2 = s1 - 0.7 * e1, s2 - 0.7 * e2
    subtract_laplace(s1, s2, T(u1), T(l1), T(u2), T(l2), 0.7)
    np.testing.assert_allclose(s1.numpy(), x1.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s2.numpy(), x2.numpy(), rtol=1e-12, atol=1e-12)
