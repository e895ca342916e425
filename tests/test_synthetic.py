"""Synthetic multi-axis data: graphs, precision matrices, a basis-independent sampler, noise."""
from __future__ import annotations

import random

import numpy as np
import pytest

from magmap.datasets import synthetic_multiaxis
from magmap.datasets._synthetic import _inverse_sqrt_kronecker_sum, sample_kronecker_sum


def test_structure_and_determinism():
    d = synthetic_multiaxis(30, 20, noise_strength=0.5, random_state=4)
    assert d.X.shape == (30, 20)
    for p, n in ((d.cell_precision, 30), (d.gene_precision, 20)):
        assert p.shape == (n, n)
        np.testing.assert_allclose(p, p.T)
        np.testing.assert_allclose(np.diag(p), 1.0)
        assert np.count_nonzero(np.triu(p, 1)) == n - 1  # Barabási–Albert with m = 1 is a tree
        w = np.linalg.eigvalsh(p)
        assert w.min() > 0.09 - 1e-12 and w.max() < 1.91 + 1e-12
    np.testing.assert_allclose(d.X, d.cell_noise[:, None] * d.X_clean * d.gene_noise[None, :])
    again = synthetic_multiaxis(30, 20, noise_strength=0.5, random_state=4)
    np.testing.assert_array_equal(again.X, d.X)
    assert not np.array_equal(synthetic_multiaxis(30, 20, random_state=5).X, d.X)


def test_no_noise_and_global_rng_untouched():
    np.random.seed(123)
    random.seed(123)
    before = (np.random.random(), random.random())
    np.random.seed(123)
    random.seed(123)
    d = synthetic_multiaxis(10, 12, noise_strength=0.0, random_state=0)
    assert (np.random.random(), random.random()) == before
    np.testing.assert_array_equal(d.X, d.X_clean)


def test_sampler_covariance_matches_kronecker_sum():
    rng = np.random.RandomState(0)
    p1 = np.array([[1.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 1.0]])
    p2 = np.array([[1.5, -0.4], [-0.4, 1.0]])
    truth = np.linalg.inv(np.kron(p1, np.eye(2)) + np.kron(np.eye(3), p2))  # row-major vec
    _assert_covariance(np.stack([sample_kronecker_sum(p1, p2, rng).ravel() for _ in range(20000)]), truth)


def _assert_covariance(draws: np.ndarray, truth: np.ndarray) -> None:
    """Empirical second moment within 5 standard errors of ``truth``, entry by entry (Gaussian draws:
    Var(x_i x_j) = Σ_ii Σ_jj + Σ_ij²)."""
    emp = draws.T @ draws / draws.shape[0]
    se = np.sqrt((np.outer(np.diag(truth), np.diag(truth)) + truth**2) / draws.shape[0])
    assert np.all(np.abs(emp - truth) < 5 * se), np.max(np.abs(emp - truth) / se)


def _rotate_eigenspaces(lam: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Another orthonormal eigenbasis: each repeated eigenvalue's block times a random orthogonal matrix."""
    v = v.copy()
    cuts = np.flatnonzero(np.diff(lam) > 1e-8) + 1
    largest = 1
    for block in np.split(np.arange(lam.size), cuts):
        if block.size > 1:
            q, _ = np.linalg.qr(rng.normal(size=(block.size, block.size)))
            v[:, block] = v[:, block] @ q
            largest = max(largest, block.size)
    return v, largest


def test_draw_does_not_depend_on_the_eigenbasis():
    # LAPACK's basis of a repeated eigenvalue differs between CPU kernels; the draw must not.
    d = synthetic_multiaxis(60, 40, noise_strength=0.0, random_state=2)
    rng = np.random.default_rng(0)
    eig1, eig2 = np.linalg.eigh(d.cell_precision), np.linalg.eigh(d.gene_precision)
    v1, mult1 = _rotate_eigenspaces(*eig1, rng)
    v2, mult2 = _rotate_eigenspaces(*eig2, rng)
    assert mult1 >= 5 and mult2 >= 5  # Barabási–Albert trees: eigenvalue 1 repeated many times
    np.testing.assert_allclose(v1.T @ d.cell_precision @ v1, np.diag(eig1[0]), atol=1e-12)
    z = np.random.RandomState(2).normal(size=60 * 40).reshape(60, 40)
    a = _inverse_sqrt_kronecker_sum(z, eig1, eig2)
    b = _inverse_sqrt_kronecker_sum(z, (eig1[0], v1), (eig2[0], v2))
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-10)
    np.testing.assert_allclose(a, d.X_clean, rtol=0, atol=1e-10)  # the generator uses this map
    # A draw made in the eigenbasis (z / sqrt(λ₁ + λ₂) rotated back) changes with the basis.
    scale = np.sqrt(eig1[0][:, None] + eig2[0][None, :])
    in_basis = eig1[1] @ (z / scale) @ eig2[1].T
    assert np.abs(v1 @ (z / scale) @ v2.T - in_basis).max() > 0.1


def test_draw_is_the_symmetric_inverse_square_root_of_the_kronecker_sum():
    # Oracle: eigendecomposition of the explicit Kronecker sum (row-major vec) on a tiny draw.
    d = synthetic_multiaxis(8, 7, noise_strength=0.0, random_state=3)
    k = np.kron(d.cell_precision, np.eye(7)) + np.kron(np.eye(8), d.gene_precision)
    w, u = np.linalg.eigh(k)
    z = np.random.RandomState(3).normal(size=56)
    np.testing.assert_allclose(d.X_clean.ravel(), u @ ((u.T @ z) / np.sqrt(w)), rtol=0, atol=1e-12)


def test_same_seed_same_data_on_any_cpu():
    # Recorded values; the draw no longer depends on the BLAS kernel (checked with OPENBLAS_CORETYPE).
    d = synthetic_multiaxis(100, 100, noise_strength=0.5, random_state=0)
    np.testing.assert_allclose(d.X[0, :3], [0.01936845594276005, -0.01031685433902533, 0.05943834256762497],
                               rtol=1e-9)
    np.testing.assert_allclose(d.X[57, [11, 93]], [-0.8049866223826548, 0.30817770775480363], rtol=1e-9)
    assert np.count_nonzero(np.abs(np.linalg.eigvalsh(d.cell_precision) - 1) < 1e-9) == 26


def test_sampler_covariance_with_repeated_eigenvalues():
    d = synthetic_multiaxis(5, 4, noise_strength=0.0, random_state=1)
    p1, p2 = d.cell_precision, d.gene_precision
    assert np.count_nonzero(np.abs(np.linalg.eigvalsh(p1) - 1) < 1e-9) >= 1
    rng = np.random.RandomState(0)
    truth = np.linalg.inv(np.kron(p1, np.eye(4)) + np.kron(np.eye(5), p2))
    _assert_covariance(np.stack([sample_kronecker_sum(p1, p2, rng).ravel() for _ in range(20000)]), truth)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_cells"):
        synthetic_multiaxis(2, 10)
    with pytest.raises(ValueError, match="noise_strength"):
        synthetic_multiaxis(10, 10, noise_strength=-1)
