"""scikit-learn style estimators: :class:`MedMagma` (and, re-exported, the baselines)."""
from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import numpy as np
import torch

from .._utils import progress, resolve_device, versions
from .._validation import check_choice, check_matrix, check_positive_int
from ._backend import DTYPE, eigh, to_tensor
from ._graph import GraphMixin
from .baselines import GmGM, SingleAxis, guard_memory
from .estep import flipflop, subtract_laplace
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

# Real count data: why the reference degenerates, and what the fast mode does about it
# ------------------------------------------------------------------------------------
# Measured on four real count matrices (Baron pancreas, CellBench CEL-seq2, scVelo pancreas, Yan
# embryo; 200 HVGs, 42-85 % zeros; benchmarks/bench_medmagma_real.py) the degenerate pattern of
# spec §12.12 has two causes, both tied to the zeros:
#
# 1. Collapse of the scale of z*. The product-one mode puts its mass where Y has zeros (a row or
#    column whose nonzeros meet small scalings of the other axis is cheap to scale up; with zeros the
#    balancing problem has no bounded solution, like Sinkhorn on a pattern without total support).
#    After the unit-norm normalisation of the reference, ‖z*‖²_F was 1.8e-7 on Baron instead of the
#    ≈ mean(Y²) it is on dense data (spec §3.3: "roughly ‖z*‖² ≈ mean(Y²)"). The overall scale of z*
#    is arbitrary in the model (the fiber is closed under scaling), but the M-step is not scale-free
#    (the reference's early-stopped gradient steps from λ = 1, our equivalent ridge toward λ = 1), so
#    the data term vanished next to the Laplace term, which depends on Ψ only: S = z*z*ᵀ − ½C was
#    negative definite on every iteration and Ψ ≈ aI + bC had 100 % positive off-diagonals.
#    Fix (``z_scale="mean-square"``): rescale z* to ‖z*‖²_F = mean(Y²), i.e. make the reference's
#    implicit normalisation exact. On dense data this is nearly a no-op (synthetic edge AP within
#    0.002 of before, benchmarks/results/medmagma_accuracy.json); on Baron it alone lifts the
#    same-type edge fraction 0.003 → 0.60.
# 2. The z*-free Laplace term assumes every entry moves along the fiber (tangent directions
#    T = α1ᵀ + 1βᵀ, spec §3.4). Entries that are zero stay zero on the fiber, so with many zeros the
#    term counts fluctuations that do not exist. Measured (with the scale fix): with the term,
#    40-98 % of the eigenvalues of the cell statistic are negative (synthetic dense data: 16-20 %);
#    same-type edge fraction with / without it: Baron 0.60 / 0.63, CellBench 0.79 / 0.94, scVelo
#    pancreas 0.16 / 0.72, Yan 0.02 / 0.82 (GmGM on log1p: 0.65, 0.59, 0.57, 0.64).
#    ``laplace_weight="auto"`` therefore applies the reference's term in full to data without zeros
#    (where it was derived, and where it is worth 0.06-0.1 AP on the paper's synthetic data) and
#    drops it when the input has zeros: the E-step statistic is then the mode plug-in z*z*ᵀ (PSD;
#    the plain "mode" EM, which the spec's ablation (§3.6) puts ~0.07 AP below the corrected one
#    on dense data). Without the term the fixed point did not depend on the initialisation (seeds
#    0, 1, 2 give identical graphs on all four datasets), so multi-start brings nothing here; an
#    approximate marginal likelihood to rank starts is not available in closed form.
#    Tried and rejected (same benchmark): input transforms (log1p, normalised counts, +1
#    pseudo-count: all still degenerate); iterated zero handling (no change); a scale-matched
#    initial Ψ (mode EM on the quotient; alone 0.47 on Baron, not needed with the scale fix);
#    PSD-clipping the statistics (directions with negative statistic get huge λ and dominate Ψ);
#    damping the term to keep ≤ 25 % negative eigenvalues (fine on three datasets, unstable on
#    the fourth); a zero-masked version of the term (T∘mask, exact with no zeros; Yan stays at
#    0.32, and its dense (d₁+d₂)² solve does not scale). Honest limits: "auto" is a switch on the
#    presence of zeros (a matrix with a handful of zeros loses the term; pass laplace_weight=1 to
#    keep it), and on Baron MED-MAGMA is slightly below GmGM (AMI 0.52 vs 0.58).

# Speed of the fast mode (issue 3 target: ≥ 20× the reference's CPU time at 400², 1 thread)
# ----------------------------------------------------------------------------------------
# Profile at 400² before (0.81 CPU-s, 11 EM iterations): the two eigendecompositions per iteration
# ~30 %, the flip-flop ~40 % (Gram products and ~110 Newton steps, 37 of them on the first
# iteration), the Laplace term ~10 %, the M-step ~8 %. What changed (none moves the fixed point:
# the fit does not depend on the start — seeds 0-2 agree to 1e-11 — and Ψ stays within ~3e-7 of a
# fit converged to tol=1e-10 with the exact E-step):
# * first iteration: Ψ = I makes Q̃ diagonal, closed-form halves (no Newton, no Gram product);
#   and no Laplace term (see _fit), which saves one EM iteration and most early Newton steps;
# * one flip-flop round per EM iteration on data without zeros (two with zeros, see max_flipflop);
# * Yᵀ Diag(s1²) Y computed once per iteration, for z*ᵀz* and the next genes half; ‖z*‖² from
#   tr(z*z*ᵀ); the Laplace term accumulated into the statistics (addmm_, rank-7 update);
# * stopping rule on the estimated distance to the fixed point (geometric tail, _distance_estimate).
# After: ~0.47 CPU-s, 9 EM iterations, eigh now ~40 % (18 calls × ~11 ms; MKL syevd, LAPACK's
# fastest here: numpy/OpenBLAS 14 ms, scipy evr 15-23 ms). Not done: SQUAREM/Anderson on Ψ (an
# extrapolated Ψ needs its own eigendecomposition for the Laplace term, which costs what it saves
# at the observed contraction ratio ≈ 0.24); warm-started/perturbative eigensolvers (not exact).


def _distance_estimate(rels: list[float]) -> float:
    """Fast mode's stopping metric: an estimate of the relative distance of Ψ to the EM fixed point.

    EM converges linearly: once the last two contraction ratios r of the relative change are both
    below 1/2, the remaining distance is about change·r/(1 − r) (geometric tail, r the larger ratio),
    which is below the change itself; otherwise (slow or irregular progress) the change is used, as
    before. On the paper's synthetic data r ≈ 0.24, which saves the last EM iteration (whose result
    differed by ~4e-7 relative, far below anything the graphs resolve)."""
    rel = rels[-1]
    if len(rels) >= 3 and rels[-2] > 0 and rels[-3] > 0:
        r = max(rels[-1] / rels[-2], rels[-2] / rels[-3])
        if r < 0.5:
            return min(rel, rel * r / (1.0 - r))
    return rel


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
        [1e-6, 1e6] and its stopping metric (and ``z_scale="unit"``, ``laplace_weight=1`` unless
        given).
    zero_handling
        ``"one-pass"`` (paper App. C, default) or ``"iterated"`` (exactly noise-invariant with zeros).
    z_scale
        Normalisation of the fiber mode z* before the E-step statistics (its overall scale is
        arbitrary in the model, but the M-step's ridge toward λ = 1 is not scale-free).
        ``"mean-square"``: ‖z*‖²_F = mean(Y²), the scale the reference's unit-norm scalings give on
        dense data; keeps the data term from vanishing when zeros concentrate the scalings (see the
        module notes). ``"unit"``: the reference's unit-norm s₁, s₂ as they are. ``None``:
        ``"mean-square"`` in fast mode, ``"unit"`` in reference mode.
    laplace_weight
        Weight w of the subtracted Laplace term, S = z*z*ᵀ − w·½C. ``"auto"`` (default): 1 (the
        reference) when the input has no zeros, 0 when it has zeros (the term's tangent directions
        assume that every entry moves along the fiber; with the 40-90 % zeros of count data it
        dominates the statistics and gives degenerate cell graphs; module notes). Reference mode:
        ``"auto"`` means 1. A number in [0, 1] forces the weight.
    max_iter
        Maximum EM iterations.
    tol
        EM stopping tolerance. ``"reference"``: on the reference's δ = √(‖ΔΨ₁‖²/d₁² + ‖ΔΨ₂‖²/d₂²)
        (``None`` → 1e-7, the paper's synthetic setting); ``"fast"``: on the scale-free relative change
        √(Σ_ℓ ‖ΔΨ_ℓ‖²/‖Ψ_ℓ‖²), or, once EM contracts with ratio r < ½ over the last two iterations,
        on the estimated remaining distance change·r/(1 − r) (``None`` → 1e-6; graphs stop changing
        well before).
    regularization
        Ridge ρ of the M-step. ``None``: 1/2000 in fast mode, 0 in reference mode.
    flipflop_tol, max_flipflop
        Flip-flop stopping rule (ℓ1 change of the product-one scalings) and round limit per EM
        iteration. ``None``: 200 in reference mode; in fast mode 1 for input without zeros and 2 for
        input with zeros, where the warm-started E-step is refined across EM iterations instead (an
        inexact E-step: same fixed point, measured identical AP, 20-25 % less time) and EM only stops
        once the flip-flop has converged within an iteration.
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
        Show a progress bar over EM iterations (on an interactive terminal; ``MAGMAP_PROGRESS=1`` forces it,
        ``MAGMAP_QUIET=1`` silences it).

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
        Per EM iteration: ``delta`` (reference metric), ``rel_change``, ``distance_estimate`` (fast
        mode's stopping metric), ``flipflop_rounds``,
        ``flipflop_converged``,
        ``newton_steps``, ``mstep_iter``, ``n_negative_eigs`` (cells, genes), ``seconds``.
    degenerate_ : bool
        True (for nonnegative input) when Ψ_cells shows the degenerate pattern (≥ 84 % positive
        off-diagonals or ≥ 5 % of eigenvalues at the 1e-6 floor; spec §12 item 12) or when the last
        cell statistic had more negative eigenvalues than 40 % of min(cells, genes) (the Laplace term
        swamped the data); a :class:`DegenerateSolutionWarning` says what to try.
        Details in ``diagnostics_``.
    laplace_weight_ : float
        The Laplace weight used (``"auto"`` resolved).
    diagnostics_ : dict
    """

    def __init__(
        self,
        *,
        mode: str = "fast",
        zero_handling: str = "one-pass",
        z_scale: str | None = None,
        laplace_weight: float | str = "auto",
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
        self.z_scale = z_scale
        self.laplace_weight = laplace_weight
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
        return {k: getattr(self, k) for k in ("mode", "zero_handling", "z_scale", "laplace_weight", "max_iter", "tol", "regularization",
                                              "flipflop_tol", "max_flipflop", "random_state", "device",
                                              "n_threads", "verbose")}

    def _check_params(self) -> None:
        check_choice(self.mode, "mode", ("fast", "reference"))
        check_choice(self.zero_handling, "zero_handling", ZERO_HANDLING)
        if self.z_scale is not None:
            check_choice(self.z_scale, "z_scale", ("mean-square", "unit"))
        lw = self.laplace_weight
        if not (isinstance(lw, str) and lw == "auto") and not (
                isinstance(lw, (int, float)) and not isinstance(lw, bool) and 0 <= lw <= 1):
            raise ValueError(f"`laplace_weight` must be 'auto' or a number in [0, 1], got {lw!r}.")
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
        guard_memory(X, "MED-MAGMA", memory_needed)
        X = check_matrix(X, name="X", sparse="keep")
        d1, d2 = X.shape
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
        z_scale = ("unit" if reference else "mean-square") if self.z_scale is None else self.z_scale
        t_start = time.perf_counter()
        nnz = int(X.count_nonzero()) if hasattr(X, "count_nonzero") and not isinstance(X, np.ndarray) \
            else int(np.count_nonzero(X))
        zero_fraction = 1.0 - nnz / float(d1 * d2)
        if self.max_flipflop is not None:
            max_ff = int(self.max_flipflop)
        else:
            # Fast mode: one flip-flop round per EM iteration on data without zeros (the inexact
            # E-step is refined across iterations; same fixed point, measured Ψ within 1e-7 of the
            # exact E-step's, ~25 % less time), two with zeros (scalings resting on the zero pattern
            # move slowly; with one round Baron HVGs took 100+ instead of 65 EM iterations).
            max_ff = 200 if reference else (1 if zero_fraction == 0.0 else 2)
        if isinstance(self.laplace_weight, str):  # "auto"
            lap_w = 1.0 if (reference or zero_fraction == 0.0) else 0.0
        else:
            lap_w = float(self.laplace_weight)

        w, sign = log_quotient(X, zero_handling=self.zero_handling)
        # Y = sign·exp(w); the quotient has unit geometric means, so exp is safe unless the data span
        # more than ~300 orders of magnitude, which we refuse with a clear message.
        if np.abs(w).max() > 700:
            raise ValueError("`X` spans too many orders of magnitude for float64 after the quotient map "
                             "(|log| > 700); rescale or clip extreme values.")
        y = to_tensor(sign * np.exp(w), device)
        del w, sign
        mean_sq = float((y * y).mean())

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
        small = 0
        rels: list[float] = []
        gram2 = None  # Yᵀ Diag(s1²) Y of the last E-step: the next flip-flop starts from it
        bar = progress(range(self.max_iter), verbose=self.verbose, desc="MED-MAGMA EM", leave=False)
        for it in bar:
            t0 = time.perf_counter()
            ff = flipflop(psi1, psi2, y, s1, s2, warm_start=not reference, max_rounds=max_ff,
                          tol=self.flipflop_tol, gram2=gram2, return_ztz=True)
            s1, s2, gram2 = ff.s1, ff.s2, ff.gram2
            stat1, stat2 = ff.zzt, ff.ztz  # z*z*ᵀ and z*ᵀz*, fresh tensors: updated in place below
            # Scale of z* (module notes, cause 1): ‖z*‖² = mean(Y²) instead of whatever the
            # unit-norm scalings give.
            zsq = float(torch.trace(stat1))
            zfac = mean_sq / zsq if (z_scale == "mean-square" and zsq > 0) else 1.0
            if zfac != 1.0:
                stat1.mul_(zfac)
                stat2.mul_(zfac)
            # Fast mode, first iteration: no Laplace term. With the start Ψ = I the term is a fixed
            # matrix unrelated to the data that makes the statistics negative definite (all
            # eigenvalues), so the first M-step only answered the ridge; the mode statistic instead
            # gives a scale-matched initial Ψ (spec §12 item 2). Same fixed point (it does not depend
            # on the start: seeds 0-2 agree to 1e-11 at 100² and 400²), one EM iteration less.
            if lap_w > 0 and (reference or it > 0):
                # The reference subtracts the Laplace term (spec §3.6: adding it is catastrophic).
                subtract_laplace(stat1, stat2, u1, lam1, u2, lam2, lap_w)
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
            # Clearly negative eigenvalues of the cell statistic, relative to its possible rank.
            neg_stat = int((e1 < -1e-9 * float(e1.abs().max())).sum())
            history.append({
                "iteration": it + 1, "delta": delta, "rel_change": rel, "flipflop_rounds": ff.rounds,
                "flipflop_converged": ff.converged,
                "newton_steps": ff.newton_steps, "mstep_iter": int(m_it),
                "n_negative_eigs": (int((e1 < 0).sum()), int((e2 < 0).sum())),
                "z_scale_factor": zfac,
                "seconds": time.perf_counter() - t0,
            })
            logger.debug("MED-MAGMA iteration %d: delta %.3g rel %.3g", it + 1, delta, rel)
            rels.append(rel)
            est = _distance_estimate(rels)
            history[-1]["distance_estimate"] = est
            small = small + 1 if est < tol else 0
            # Fast mode waits for the flip-flop too, except when Ψ has stopped changing for 3
            # iterations: with zeros the scalings of rows/columns resting on the zero pattern can
            # drift for ever (no bounded balancing) without any effect on Ψ.
            if (delta if reference else est) < tol and (reference or ff.converged or small >= 3):
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
        self.laplace_weight_ = lap_w
        self.zero_fraction_ = zero_fraction
        nonnegative = bool((X.data if hasattr(X, "data") and not isinstance(X, np.ndarray) else X).min() >= 0)
        self._diagnose(nonnegative, neg_stat)

    def _diagnose(self, applicable: bool, neg_stat: int = 0) -> None:
        """Spec §12 item 12: degenerate solutions have mostly positive off-diagonals of Ψ_cells and/or
        eigenvalues at the 1e-6 floor. Computed on the cell axis (where it was observed). The pattern was
        seen on count matrices; on signed data (e.g. the Gaussian synthetic data, whose true precision
        has positive off-diagonals) it is not a failure sign, so the flag is only raised for
        nonnegative input.

        Also flagged: more clearly negative eigenvalues of the last cell statistic
        S = z*z*ᵀ − w·½C than 40 % of min(cells, genes) (its possible rank). S estimates a second
        moment (PSD); when the Laplace term swamps the data like this the fit is driven by Ψ alone.
        Measured (count of negatives / min(cells, genes)): 0.48-3.7 on the fits with the Laplace term
        on the four real datasets of benchmarks/bench_medmagma_real.py (graphs at chance level, or
        0.785 vs 0.938 same-type fraction on CellBench), 0.16-0.20 on the paper's synthetic data."""
        off = self.cell_precision_[~np.eye(self.cell_precision_.shape[0], dtype=bool)]
        pos_frac = float((off > 0).mean())
        floor_frac = float((self.cell_eigenvalues_ <= 1e-6 * (1 + 1e-9)).mean())
        d1 = self.cell_precision_.shape[0]
        neg_stat_frac = neg_stat / d1
        degenerate = applicable and (pos_frac >= 0.84 or floor_frac >= 0.05
                                     or neg_stat > 0.4 * min(d1, self.gene_precision_.shape[0]))
        self.diagnostics_ = {"applicable": applicable,"positive_offdiag_fraction_cells": pos_frac,
                             "eigenvalues_at_floor_fraction_cells": floor_frac,
                             "negative_statistic_fraction_cells": neg_stat_frac,
                             "laplace_weight": self.laplace_weight_, "zero_fraction": self.zero_fraction_,
                             "positive_offdiag_fraction_genes": float(
                                 (self.gene_precision_[~np.eye(self.gene_precision_.shape[0], dtype=bool)] > 0).mean())}
        self.degenerate_ = bool(degenerate)
        if degenerate:
            if self.laplace_weight_ > 0:
                fix = ("Refit with laplace_weight=0 (drops the Laplace term, the default for data with "
                       "zeros) and z_scale='mean-square'")
            elif self.z_scale == "unit" or (self.z_scale is None and self.mode == "reference"):
                fix = "Refit with z_scale='mean-square' and laplace_weight=0"
            else:
                fix = "Try another random_state, or select fewer, more expressed genes"
            warnings.warn(
                f"MED-MAGMA: the cell precision looks degenerate ({pos_frac:.0%} positive off-diagonals, "
                f"{floor_frac:.0%} eigenvalues at the floor, {neg_stat_frac:.0%} of the cell statistic's "
                "eigenvalues negative). On real data this pattern went with cell graphs "
                f"unrelated to cell types. {fix}; compare with magmap.GmGM on log1p values.",
                DegenerateSolutionWarning, stacklevel=3)

    def fit_transform(self, X: Any, y: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Fit and return ``(cell_precision_, gene_precision_)``."""
        self.fit(X)
        return self.cell_precision_, self.gene_precision_

    def params_dict(self) -> dict[str, Any]:
        """Hyper-parameters plus library versions (recorded next to results)."""
        out = self.get_params()
        out["versions"] = versions()
        return out
