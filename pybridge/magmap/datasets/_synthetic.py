"""Synthetic multi-axis data of the MED-MAGMA paper (§4.1, App. A).

Barabási–Albert graphs (igraph, one edge per new vertex) → precision matrices
P = Diag(deg)^{-1/2} A Diag(deg)^{-1/2} / 1.1 + I; one Kronecker-sum normal matrix sample with
(Ψ_cells, Ψ_genes) = (P₁, P₂), drawn basis-independently (same seed, same data on any CPU);
multiplicative noise D = r₁ ∘ X ∘ r₂ with r ~ χ²₁^ν.

The random streams follow the paper's notebook (``np.random.seed(seed)``; ``random.seed(seed)``;
graph 1, graph 2, normal draws, r₁, r₂) but use private generators, so global RNG state is untouched.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from .._validation import check_positive_int

__all__ = ["synthetic_multiaxis", "SyntheticMultiaxis", "ba_precision", "sample_kronecker_sum"]


@dataclass
class SyntheticMultiaxis:
    """A synthetic draw.

    Attributes
    ----------
    X
        Noisy cells × genes data D (ndarray).
    X_clean
        The latent noise-free matrix X.
    cell_precision, gene_precision
        True precision matrices (dense); their off-diagonal support is the true graph.
    cell_noise, gene_noise
        The multiplicative factors r₁ (cells) and r₂ (genes).
    noise_strength, random_state
        Parameters of the draw.
    """

    X: np.ndarray
    X_clean: np.ndarray
    cell_precision: np.ndarray
    gene_precision: np.ndarray
    cell_noise: np.ndarray
    gene_noise: np.ndarray
    noise_strength: float
    random_state: int


def ba_precision(n: int, rng: random.Random) -> np.ndarray:
    """Precision matrix of a Barabási–Albert tree on ``n`` vertices (one edge per new vertex)."""
    import igraph as ig

    ig.set_random_number_generator(rng)
    try:
        g = ig.Graph.Barabasi(n)
    finally:
        ig.set_random_number_generator(random)
    a = np.asarray(g.get_adjacency().data, dtype=np.float64)
    deg = a.sum(1)
    inv = 1.0 / np.sqrt(np.where(deg > 0, deg, 1.0))
    return inv[:, None] * a * inv[None, :] / 1.1 + np.eye(n)


def sample_kronecker_sum(psi1: np.ndarray, psi2: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """One draw X with vec_r(X) ~ N(0, (Ψ₁ ⊕ Ψ₂)⁻¹), without forming the Kronecker sum.

    A standard normal matrix Z is drawn in the standard basis and mapped through the spectral function
    (Ψ₁ ⊕ Ψ₂)^{-1/2}. Unlike a draw made directly in the eigenbasis, this does not depend on which basis
    LAPACK returns for repeated eigenvalues (Barabási–Albert precision matrices have many), so the same
    seed gives the same data on every CPU and BLAS.
    """
    z = rng.normal(size=psi1.shape[0] * psi2.shape[0]).reshape(psi1.shape[0], psi2.shape[0])
    return _inverse_sqrt_kronecker_sum(z, np.linalg.eigh(psi1), np.linalg.eigh(psi2))


def _inverse_sqrt_kronecker_sum(z: np.ndarray, eig1: tuple[np.ndarray, np.ndarray],
                                eig2: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(Ψ₁ ⊕ Ψ₂)^{-1/2} applied to vec_r(Z), from eigendecompositions ``(λ, V)`` of Ψ₁ and Ψ₂.

    V₁[(V₁ᵀ Z V₂) / sqrt(λ₁ᵢ + λ₂ⱼ)]V₂ᵀ: any orthonormal basis of each eigenspace gives the same result.
    """
    (lam1, v1), (lam2, v2) = eig1, eig2
    return v1 @ ((v1.T @ z @ v2) / np.sqrt(lam1[:, None] + lam2[None, :])) @ v2.T


def synthetic_multiaxis(
    n_cells: int, n_genes: int, *, noise_strength: float = 0.5, random_state: int = 0
) -> SyntheticMultiaxis:
    """Draw paper-style synthetic data.

    Parameters
    ----------
    n_cells, n_genes
        Axis lengths (≥ 3).
    noise_strength
        ν: the noise factors are χ²₁ draws raised to the power ν (0 = no noise).
    random_state
        Seed of both the igraph (Python ``random``) and the NumPy (legacy ``RandomState``) streams.

    Returns
    -------
    SyntheticMultiaxis
        With ``.X`` (noisy data), ``.cell_precision``, ``.gene_precision`` and more.
    """
    n_cells = check_positive_int(n_cells, "n_cells", minimum=3)
    n_genes = check_positive_int(n_genes, "n_genes", minimum=3)
    if not np.isfinite(noise_strength) or noise_strength < 0:
        raise ValueError(f"`noise_strength` must be a finite number ≥ 0, got {noise_strength!r}.")
    seed = int(random_state)
    py_rng = random.Random(seed)
    np_rng = np.random.RandomState(seed)
    p1 = ba_precision(n_cells, py_rng)
    p2 = ba_precision(n_genes, py_rng)
    x = sample_kronecker_sum(p1, p2, np_rng)
    r1 = np_rng.chisquare(1, size=(n_cells, 1)) ** noise_strength
    r2 = np_rng.chisquare(1, size=(1, n_genes)) ** noise_strength
    return SyntheticMultiaxis(
        X=r1 * x * r2, X_clean=x, cell_precision=p1, gene_precision=p2, cell_noise=r1.ravel(),
        gene_noise=r2.ravel(), noise_strength=float(noise_strength), random_state=seed,
    )
