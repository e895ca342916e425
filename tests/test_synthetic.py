"""Synthetic multi-axis data (spec §7): graphs, precision matrices, sampler covariance, noise."""
from __future__ import annotations

import random

import numpy as np
import pytest

from magmap.datasets import synthetic_multiaxis
from magmap.datasets._synthetic import sample_kronecker_sum


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
    draws = np.stack([sample_kronecker_sum(p1, p2, rng).ravel() for _ in range(20000)])
    emp = draws.T @ draws / draws.shape[0]
    truth = np.linalg.inv(np.kron(p1, np.eye(2)) + np.kron(np.eye(3), p2))  # row-major vec
    np.testing.assert_allclose(emp, truth, atol=0.03)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_cells"):
        synthetic_multiaxis(2, 10)
    with pytest.raises(ValueError, match="noise_strength"):
        synthetic_multiaxis(10, 10, noise_strength=-1)
