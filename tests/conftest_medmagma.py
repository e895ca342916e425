"""Fixtures for the MED-MAGMA tests (imported explicitly: ``from conftest_medmagma import ...``)."""
from __future__ import annotations

import numpy as np


def random_pd(d: int, rng: np.random.Generator, *, scale: float = 1.0) -> np.ndarray:
    """A random, well-conditioned symmetric positive definite matrix with mixed-sign off-diagonals."""
    a = rng.normal(size=(d, d))
    return scale * (a @ a.T / d + np.eye(d))


def positive_matrix(n: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """Strictly positive cells × genes matrix with a wide dynamic range."""
    return np.exp(rng.normal(size=(n, m)))


def with_zeros(n: int, m: int, rng: np.random.Generator, frac: float = 0.3) -> np.ndarray:
    """Signed matrix with ~``frac`` zeros, no empty row or column, connected nonzero pattern."""
    x = rng.normal(size=(n, m)) * np.exp(rng.normal(size=(n, m)))
    zero = rng.random((n, m)) < frac
    zero[:, 0] = False  # column 0 full and row 0 full: the bipartite pattern is connected
    zero[0, :] = False
    x[zero] = 0.0
    return x
