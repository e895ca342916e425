"""scikit-learn style estimators: :class:`MedMagma` (and, re-exported, the baselines)."""
from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import numpy as np
import torch

from .._utils import check_memory, progress, resolve_device, versions
from .._validation import check_choice, check_matrix, check_positive_int
from ._backend import DTYPE, eigh, to_tensor
from ._graph import GraphMixin
from .baselines import GmGM, SingleAxis
from .estep import flipflop, laplace_correction
from .mstep import mstep_newton, mstep_reference
from .quotient import ZERO_HANDLING, log_quotient

logger = logging.getLogger("magmap")

__all__ = ["MedMagma", "GmGM", "SingleAxis", "DegenerateSolutionWarning", "memory_needed"]

#: Ridge of the fast M-step, ρ‖λ − 1‖². The reference never solves its M-step: it takes 1000
#: gradient steps (step ≤ 1) from λ = 1, and early-stopped gradient descent from λ₀ is a ridge
#: toward λ₀ with ρ ≈ 1/(2·steps). Solving that penalised problem to convergence gives the same kind
#: of estimate (Ψ ≈ aI − bS in the well-determined regime) and keeps the M-step bounded when the
#: Laplace-corrected statistics are indefinite (spec §3.6, §12.2). Measured: AP at least the
#: reference's on the paper's synthetic data (see benchmarks/).
FAST_RIDGE = 1.0 / (2 * 1000)


class DegenerateSolutionWarning(UserWarning):
    """The fitted cell precision shows the degenerate pattern of spec §12 item 12."""


def memory_needed(n_cells: int, n_genes: int) -> int:
    """Bytes of peak working memory of :meth:`MedMagma.fit` (float64): ~8 d×d matrices per axis
    (Ψ, eigenvectors, statistics, Q̃, Newton Hessian and factor, correction) and ~5 cells×genes ones."""
    return int(8 * (8 * (n_cells**2 + n_genes**2) + 5 * n_cells * n_genes))


class MedMagma(GraphMixin):
    """MED-MAGMA: cell and gene precision matrices robust to multiplicative noise.

    Model: D = Diag(r_cells) X Diag(r_genes) with vec(X) ~ N(0, (Ψ_cells ⊕ Ψ_genes)⁻¹) and arbitrary
    positive noise factors r. Fit by EM on the quotient f(D) (Laplace E-step, GmGM M-step).

    Parameters
    ----------
    mode
        ``"fast"`` (default): Newton sub-solvers with warm starts, M-step solved to convergence on the
        ridge-penalised objective (ρ = ``regularization``, default 1/2000, toward λ = 1), scale-free
        stopping rule. ``"reference"``: the reference implementation's behaviour for parity —
        sub-problems restarted from s = 1, its 1000-step gradient M-step with clipping to
        [1e-6, 1e6] and its stopping metric.
    zero_handling
        ``"one-pass"`` (paper App. C, default) or ``"iterated"`` (exactly noise-invariant with zeros).
    max_iter
        Maximum EM iterations.
    tol
        EM stopping tolerance. ``"reference"``: on the reference's δ = √(‖ΔΨ₁‖²/d₁² + ‖ΔΨ₂‖²/d₂²)
        (``None`` → 1e-7, the paper's synthetic setting); ``"fast"``: on the scale-free relative change
        √(Σ_ℓ ‖ΔΨ_ℓ‖²/‖Ψ_ℓ‖²) (``None`` → 1e-6; graphs stop changing well before).
    regularization
        Ridge ρ of the M-step. ``None``: 1/2000 in fast mode, 0 in reference mode.
    flipflop_tol, max_flipflop
        Flip-flop stopping rule (ℓ1 change of the product-one scalings) and round limit per EM
        iteration. ``None``: 200 in reference mode; 2 in fast mode, where the warm-started E-step is
        refined across EM iterations instead (an inexact E-step: same fixed point, measured identical
        AP, ~20 % less time) and EM only stops once the flip-flop has converged within an iteration.
    random_state
        Seed of the random initial scalings s ~ U[0, 1) (same stream as the reference's
        ``np.random.seed(random_state)``). ``None``: fresh entropy.
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``…; computations are float64.
    n_threads
        CPU threads for torch during the fit (restored afterwards). ``None``: 1 below 1000 cells and
        genes (thread start-up and spinning cost more than they save on small matrices, badly so on a
        shared machine), torch's default above.
    verbose
        Show a progress bar over EM iterations.

    Attributes
    ----------
    cell_precision_, gene_precision_ : ndarray
        Dense Ψ_cells (n_cells × n_cells) and Ψ_genes. Overall scale and the split of the diagonal
        between the axes are not identified: use off-diagonals (graphs) only.
    s_cells_, s_genes_ : ndarray
        Unit-norm scalings of the fiber mode z* = Diag(s_cells) f(X) Diag(s_genes).
    n_iter_ : int
    converged_ : bool
    history_ : list of dict
        Per EM iteration: ``delta`` (reference metric), ``rel_change``, ``flipflop_rounds``,
        ``flipflop_converged``,
        ``newton_steps``, ``mstep_iter``, ``n_negative_eigs`` (cells, genes), ``seconds``.
    degenerate_ : bool
        True when Ψ_cells shows the degenerate pattern (≥ 84 % positive off-diagonals or ≥ 5 % of
        eigenvalues at the 1e-6 floor; spec §12 item 12); a :class:`DegenerateSolutionWarning` is
        emitted. Details in ``diagnostics_``.
    diagnostics_ : dict
    """

    def __init__(
        self,
        *,
        mode: str = "fast",
        zero_handling: str = "one-pass",
        max_iter: int = 100,
        tol: float | None = None,
        regularization: float | None = None,
        flipflop_tol: float = 1e-3,
        max_flipflop: int | None = None,
        random_state: int | None = 0,
        device: str = "auto",
        n_threads: int | None = None,
        verbose: bool = False,
    ) -> None:
        self.mode = mode
        self.zero_handling = zero_handling
        self.max_iter = max_iter
        self.tol = tol
        self.regularization = regularization
        self.flipflop_tol = flipflop_tol
        self.max_flipflop = max_flipflop
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads
        self.verbose = verbose

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyper-parameters (scikit-learn convention)."""
        return {k: getattr(self, k) for k in ("mode", "zero_handling", "max_iter", "tol", "regularization",
                                              "flipflop_tol", "max_flipflop", "random_state", "device",
                                              "n_threads", "verbose")}

    def _check_params(self) -> None:
        check_choice(self.mode, "mode", ("fast", "reference"))
        check_choice(self.zero_handling, "zero_handling", ZERO_HANDLING)
        check_positive_int(self.max_iter, "max_iter")
        if self.max_flipflop is not None:
            check_positive_int(self.max_flipflop, "max_flipflop")
        for name in ("tol", "flipflop_tol"):
            val = getattr(self, name)
            if val is None and name == "tol":
                continue
            if not (isinstance(val, (int, float)) and np.isfinite(val) and val > 0):
                raise ValueError(f"`{name}` must be a positive number, got {val!r}.")
        if self.regularization is not None and not (np.isfinite(self.regularization) and self.regularization >= 0):
            raise ValueError(f"`regularization` must be None or a number ≥ 0, got {self.regularization!r}.")

    def fit(self, X: Any, y: Any = None) -> MedMagma:
        """Fit on a cells × genes matrix (dense array-like or scipy sparse; signs allowed, zeros kept).

        Raises
        ------
        TypeError, ValueError
            Non-numeric data, NaN/Inf, fewer than 3 cells or genes, all-zero cells or genes.
        MemoryError
            When the dense working set (see :func:`memory_needed`) exceeds the available memory.
        """
        self._check_params()
        X = check_matrix(X, name="X", sparse="keep")
        d1, d2 = X.shape
        check_memory(
            memory_needed(d1, d2), f"MED-MAGMA on {d1} cells × {d2} genes",
            fix="Select fewer genes (e.g. highly variable genes, use_highly_variable=True) or subsample "
                "cells; if rows are genes, transpose the matrix (cells must be rows).")
        device = resolve_device(self.device)
        n_threads = self.n_threads
        if n_threads is None:
            n_threads = 1 if max(d1, d2) < 1000 else torch.get_num_threads()
        n_threads = check_positive_int(n_threads, "n_threads")
        old_threads = torch.get_num_threads()
        torch.set_num_threads(n_threads)
        try:
            self._fit(X, device)
        finally:
            torch.set_num_threads(old_threads)
        return self

    def _fit(self, X: Any, device: str) -> None:
        d1, d2 = X.shape
        reference = self.mode == "reference"
        rho = (0.0 if reference else FAST_RIDGE) if self.regularization is None else float(self.regularization)
        tol = (1e-7 if reference else 1e-6) if self.tol is None else float(self.tol)
        max_ff = (200 if reference else 2) if self.max_flipflop is None else int(self.max_flipflop)
        t_start = time.perf_counter()

        w, sign = log_quotient(X, zero_handling=self.zero_handling)
        # Y = sign·exp(w); the quotient has unit geometric means, so exp is safe unless the data span
        # more than ~300 orders of magnitude, which we refuse with a clear message.
        if np.abs(w).max() > 700:
            raise ValueError("`X` spans too many orders of magnitude for float64 after the quotient map "
                             "(|log| > 700); rescale or clip extreme values.")
        y = to_tensor(sign * np.exp(w), device)
        del w, sign

        rng = np.random.RandomState(self.random_state)
        s1 = to_tensor(rng.random_sample(d1), device)
        s2 = to_tensor(rng.random_sample(d2), device)
        if float(s1.min()) <= 0 or float(s2.min()) <= 0:  # U[0,1) can return 0 exactly (probability ~0)
            s1, s2 = s1.clamp(min=1e-12), s2.clamp(min=1e-12)
        u1 = torch.eye(d1, dtype=DTYPE, device=device)
        u2 = torch.eye(d2, dtype=DTYPE, device=device)
        lam1 = torch.ones(d1, dtype=DTYPE, device=device)
        lam2 = torch.ones(d2, dtype=DTYPE, device=device)
        psi1, psi2 = u1.clone(), u2.clone()

        history: list[dict[str, Any]] = []
        converged = False
        bar = progress(range(self.max_iter), verbose=self.verbose, desc="MED-MAGMA EM", leave=False)
        for it in bar:
            t0 = time.perf_counter()
            ff = flipflop(psi1, psi2, y, s1, s2, warm_start=not reference, max_rounds=max_ff,
                          tol=self.flipflop_tol)
            s1, s2 = ff.s1, ff.s2
            z = s1[:, None] * y * s2[None, :]
            c1, c2 = laplace_correction(u1, lam1, u2, lam2)
            # The reference subtracts the Laplace term (spec §3.6: adding it is catastrophic).
            stat1 = ff.zzt - c1
            stat2 = z.T @ z - c2
            del c1, c2
            e1, v1 = eigh(stat1)
            e2, v2 = eigh(stat2)
            del stat1, stat2
            if reference:
                new1, new2, m_it = mstep_reference(e1, e2, rho=rho)
            else:
                # Warm start: the previous eigenvalues, matched by rank (both bases are sorted by
                # ascending statistic, and late EM iterations barely rotate them). Cheaper than
                # diag(VᵀΨ_old V) by two d³ products; Newton converges from either start.
                w1, w2 = lam1, lam2
                if rho > 0:
                    new1, new2, m_it, _ = mstep_newton(e1, e2, w1, w2, rho=rho, center=1.0)
                else:
                    new1, new2, m_it, _ = mstep_newton(e1.clamp(min=1e-12 * float(e1.abs().max())),
                                                       e2.clamp(min=1e-12 * float(e2.abs().max())), w1, w2)
            p1 = (v1 * new1) @ v1.T
            p2 = (v2 * new2) @ v2.T
            dn1 = float(torch.linalg.norm(p1 - psi1))
            dn2 = float(torch.linalg.norm(p2 - psi2))
            delta = float(np.sqrt(dn1**2 / d1**2 + dn2**2 / d2**2))
            rel = float(np.sqrt((dn1 / float(torch.linalg.norm(p1))) ** 2 + (dn2 / float(torch.linalg.norm(p2))) ** 2))
            psi1, psi2, u1, lam1, u2, lam2 = p1, p2, v1, new1, v2, new2
            history.append({
                "iteration": it + 1, "delta": delta, "rel_change": rel, "flipflop_rounds": ff.rounds,
                "flipflop_converged": ff.converged,
                "newton_steps": ff.newton_steps, "mstep_iter": int(m_it),
                "n_negative_eigs": (int((e1 < 0).sum()), int((e2 < 0).sum())),
                "seconds": time.perf_counter() - t0,
            })
            logger.debug("MED-MAGMA iteration %d: delta %.3g rel %.3g", it + 1, delta, rel)
            if (delta if reference else rel) < tol and (reference or ff.converged):
                converged = True
                break
        bar.close()
        if not converged:
            logger.warning("MED-MAGMA did not converge in %d EM iterations (last change %.3g); results "
                           "may still be usable, see history_.", self.max_iter,
                           history[-1]["delta" if reference else "rel_change"])

        self.cell_precision_ = psi1.cpu().numpy()
        self.gene_precision_ = psi2.cpu().numpy()
        self.cell_eigenvalues_ = lam1.cpu().numpy()
        self.gene_eigenvalues_ = lam2.cpu().numpy()
        self.s_cells_ = s1.cpu().numpy()
        self.s_genes_ = s2.cpu().numpy()
        self.n_iter_ = len(history)
        self.converged_ = converged
        self.history_ = history
        self.n_features_in_ = d2
        self.fit_seconds_ = time.perf_counter() - t_start
        self.device_ = device
        nonnegative = bool((X.data if hasattr(X, "data") and not isinstance(X, np.ndarray) else X).min() >= 0)
        self._diagnose(nonnegative)

    def _diagnose(self, applicable: bool) -> None:
        """Spec §12 item 12: degenerate solutions have mostly positive off-diagonals of Ψ_cells and/or
        eigenvalues at the 1e-6 floor. Computed on the cell axis (where it was observed). The pattern was
        seen on count matrices; on signed data (e.g. the Gaussian synthetic data, whose true precision
        has positive off-diagonals) it is not a failure sign, so the flag is only raised for
        nonnegative input."""
        off = self.cell_precision_[~np.eye(self.cell_precision_.shape[0], dtype=bool)]
        pos_frac = float((off > 0).mean())
        floor_frac = float((self.cell_eigenvalues_ <= 1e-6 * (1 + 1e-9)).mean())
        degenerate = applicable and (pos_frac >= 0.84 or floor_frac >= 0.05)
        self.diagnostics_ = {"applicable": applicable,"positive_offdiag_fraction_cells": pos_frac,
                             "eigenvalues_at_floor_fraction_cells": floor_frac,
                             "positive_offdiag_fraction_genes": float(
                                 (self.gene_precision_[~np.eye(self.gene_precision_.shape[0], dtype=bool)] > 0).mean())}
        self.degenerate_ = bool(degenerate)
        if degenerate:
            warnings.warn(
                f"MED-MAGMA: the cell precision looks degenerate ({pos_frac:.0%} positive off-diagonals, "
                f"{floor_frac:.0%} eigenvalues at the floor). On real data this pattern went with cell "
                "graphs unrelated to cell types; compare with magmap.GmGM and try another random_state "
                "or mode.", DegenerateSolutionWarning, stacklevel=3)

    def fit_transform(self, X: Any, y: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Fit and return ``(cell_precision_, gene_precision_)``."""
        self.fit(X)
        return self.cell_precision_, self.gene_precision_

    def params_dict(self) -> dict[str, Any]:
        """Hyper-parameters plus library versions (recorded next to results)."""
        out = self.get_params()
        out["versions"] = versions()
        return out
