"""The noise-unaware baselines MED-MAGMA is compared with: GmGM (± nonparanormal skeptic) and the
single-axis MLE."""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .._utils import resolve_device
from .._validation import check_choice
from ._backend import to_tensor
from ._base import TwoAxisEstimator
from .mstep import mstep_newton

__all__ = ["GmGM", "SingleAxis", "gmgm_eigenvalues", "normal_scores"]


def _dense(X: Any) -> np.ndarray:
    return X.toarray() if sp.issparse(X) else X


def normal_scores(m: np.ndarray) -> np.ndarray:
    """COCA normal scores: rank every column over the rows (average ties), divide by (rows + 1), Φ⁻¹."""
    from scipy.stats import norm, rankdata

    return norm.ppf(rankdata(m, axis=0) / (m.shape[0] + 1))


def gmgm_eigenvalues(
    e1: np.ndarray, e2: np.ndarray, *, max_iter: int = 1000, tol: float = 1e-3, lr: float = 1.0,
    max_line_search: int = 20, max_small_steps: int = 5,
) -> tuple[np.ndarray, np.ndarray, int]:
    """The ``gmgm`` 0.5.7 eigenvalue iteration, as the MED-MAGMA paper ran its GmGM baseline.

    Step δ_ℓ = ½(e_ℓ − p_ℓ), p_ℓ = t_ℓ/d_ℓ − ½·mean(t_ℓ/d_ℓ), t_ℓᵢ = Σ_j 1/(λ_ℓᵢ + λ_ℓ'ⱼ); step size
    lr·10⁻ᵏ for the smallest k keeping λ > 1e-8; stop after 5 consecutive relative objective changes
    below ``tol``. Not the exact MLE (the 1/d_ℓ factor); kept as the paper's baseline.
    """
    d1, d2 = e1.size, e2.size
    l1, l2 = np.ones(d1), np.ones(d2)

    def err(a, b):
        return e1 @ a + e2 @ b - np.log(a[:, None] + b[None, :]).sum()

    prev = err(l1, l2)
    small = 0
    it = 0
    for it in range(1, max_iter + 1):
        m = 1.0 / (l1[:, None] + l2[None, :])
        t1, t2 = m.sum(1) / d1, m.sum(0) / d2
        g1 = 0.5 * (e1 - (t1 - 0.5 * t1.mean()))
        g2 = 0.5 * (e2 - (t2 - 0.5 * t2.mean()))
        for k in range(max_line_search):
            eta = lr * 10.0**-k
            n1, n2 = l1 - eta * g1, l2 - eta * g2
            if n1.min() > 1e-8 and n2.min() > 1e-8:
                break
        else:
            break
        l1, l2 = n1, n2
        cur = err(l1, l2)
        if abs(cur - prev) / max(abs(cur), 1e-300) < tol:
            small += 1
            if small >= max_small_steps:
                break
        else:
            small = 0
        prev = cur
    return l1, l2, it


class GmGM(TwoAxisEstimator):
    """GmGM: the noise-unaware Kronecker-sum (bigraphical) Gaussian MLE from one matrix.

    Parameters
    ----------
    mode
        ``"paper"`` (default): the ``gmgm`` 0.5.7 baseline as the paper ran it — Grams XXᵀ/genes and
        XᵀX/cells, eigenvalues rescaled to unit norm per axis, its own eigenvalue iteration.
        ``"exact"``: the exact MLE of the raw Grams by Newton (eigenvalues floored at 1e-10·max).
    skeptic
        Nonparanormal skeptic (COCA normal scores, as ``gmgm``'s skeptic path): each axis's Gram is
        built from data Gaussianised by ranks across that axis; eigenvalues not rescaled.
    max_iter, tol
        Limits of the eigenvalue iteration (``"paper"``).
    device
        Torch device for ``"exact"``.

    Attributes
    ----------
    cell_precision_, gene_precision_, n_iter_, converged_
    """

    def __init__(self, *, mode: str = "paper", skeptic: bool = False, max_iter: int = 1000, tol: float = 1e-3,
                 device: str = "auto") -> None:
        self.mode = mode
        self.skeptic = skeptic
        self.max_iter = max_iter
        self.tol = tol
        self.device = device

    def _check_params(self) -> None:
        check_choice(self.mode, "mode", ("paper", "exact"))

    def _memory(self, n_cells: int, n_genes: int) -> tuple[int, str]:
        # dense data, Grams, eigenvectors and precisions of both axes (float64)
        return 8 * (4 * (n_cells**2 + n_genes**2) + 3 * n_cells * n_genes), \
            "GmGM (dense cells × cells and genes × genes matrices)"

    def _fit_checked(self, X: Any) -> GmGM:
        X = _dense(X)
        d1, d2 = X.shape
        if self.skeptic:
            g1 = normal_scores(X)  # each gene Gaussianised across cells → cell Gram
            g2 = normal_scores(X.T).T  # each cell Gaussianised across genes → gene Gram
            s1, s2 = g1 @ g1.T, g2.T @ g2
        else:
            s1, s2 = X @ X.T, X.T @ X
        if self.mode == "paper" and not self.skeptic:
            s1, s2 = s1 / d2, s2 / d1
        e1, u1 = np.linalg.eigh(s1)
        e2, u2 = np.linalg.eigh(s2)
        if self.mode == "paper":
            if not self.skeptic:
                e1, e2 = e1 / np.linalg.norm(e1), e2 / np.linalg.norm(e2)
            l1, l2, it = gmgm_eigenvalues(e1, e2, max_iter=self.max_iter, tol=self.tol)
            conv = it < self.max_iter
        else:
            dev = resolve_device(self.device)
            t1, t2 = to_tensor(e1, dev), to_tensor(e2, dev)
            t1 = t1.clamp(min=1e-10 * float(t1.max()))
            t2 = t2.clamp(min=1e-10 * float(t2.max()))
            l1t, l2t, it, conv = mstep_newton(t1, t2)
            l1, l2 = l1t.cpu().numpy(), l2t.cpu().numpy()
        self.cell_precision_ = (u1 * l1) @ u1.T
        self.gene_precision_ = (u2 * l2) @ u2.T
        self.cell_eigenvalues_, self.gene_eigenvalues_ = l1, l2
        self.n_iter_, self.converged_ = int(it), bool(conv)
        self.n_features_in_ = d2
        return self


class SingleAxis(TwoAxisEstimator):
    """Single-axis ("Basic") baseline: i.i.d. Gaussian MLE per axis, Ψ_cells = (DDᵀ)⁺, Ψ_genes = (DᵀD)⁺.

    Parameters
    ----------
    rcond
        Relative cut-off of the pseudo-inverse (paper: 1e-15 synthetic, 1e-7 real data).
    """

    def __init__(self, *, rcond: float = 1e-15) -> None:
        self.rcond = rcond

    def _memory(self, n_cells: int, n_genes: int) -> tuple[int, str]:
        return 8 * (3 * (n_cells**2 + n_genes**2) + n_cells * n_genes), \
            "single-axis MLE (dense cells × cells and genes × genes matrices)"

    def _fit_checked(self, X: Any) -> SingleAxis:
        X = _dense(X)
        self.cell_precision_ = np.linalg.pinv(X @ X.T, rcond=self.rcond, hermitian=True)
        self.gene_precision_ = np.linalg.pinv(X.T @ X, rcond=self.rcond, hermitian=True)
        self.n_iter_, self.converged_ = 1, True
        self.n_features_in_ = X.shape[1]
        return self
