"""The MED-MAGMA estimator (scikit-learn style): parameters, input checks, the EM run, diagnostics.

Design, derivations and measurements: ``docs/medmagma.md``.
"""
from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state

from .._utils import resolve_device
from .._validation import check_choice, check_positive_int
from ._backend import to_tensor
from ._base import TwoAxisEstimator
from ._em import EMSettings, em_dense
from ._graph import LowRankPrecision
from ._lowrank import em_lowrank, to_numpy_factors
from .quotient import ZERO_HANDLING, log_quotient

logger = logging.getLogger("magmap")

__all__ = ["MedMagma", "DegenerateSolutionWarning", "memory_needed", "choose_solver", "FAST_RIDGE"]

#: Ridge of the fast M-step, ρ‖λ − 1‖²: the estimate that the reference's 1000 early-stopped gradient
#: steps from λ = 1 approximate, solved exactly (``docs/medmagma.md``, "Fast mode").
FAST_RIDGE = 1.0 / (2 * 1000)
#: EM tolerance of fast mode: estimated remaining relative distance of Ψ and the scalings. Top-10
#: graphs and edge AP equal those of the converged fit (tol 1e-9) on the synthetic data
#: (``docs/medmagma.md``, "Stopping rule").
FAST_TOL = 1e-4


class DegenerateSolutionWarning(UserWarning):
    """The fitted cell precision shows the degenerate pattern seen on count data (see ``diagnostics_``)."""


#: ``solver="auto"`` factors the larger axis when it has at least ``LOWRANK_MIN`` entries and at
#: least ``LOWRANK_RATIO`` times as many as the other (crossover measured in ``docs/medmagma.md``).
LOWRANK_MIN = 2000
#: ε of ``scaling_prior="auto"`` on data with zeros: the mode's scalings otherwise follow each cell's
#: number of zeros; chosen under the paper's protocol on six labelled count sets (``docs/medmagma.md``).
AUTO_SCALING_PRIOR = 1.0
LOWRANK_RATIO = 2.0
SOLVERS = ("auto", "dense", "lowrank")


def choose_solver(n_cells: int, n_genes: int, solver: str = "auto", mode: str = "fast") -> str:
    """The path a fit takes: ``"dense"`` (d × d precisions) or ``"lowrank"`` (the larger axis in
    factored form; see :class:`MedMagma`)."""
    check_choice(solver, "solver", SOLVERS)
    big, small = max(n_cells, n_genes), min(n_cells, n_genes)
    if solver == "lowrank":
        if mode == "reference":
            raise ValueError("`solver='lowrank'` is not available with mode='reference' (the reference's "
                             "M-step is defined on dense matrices); use solver='dense' or mode='fast'.")
        if big < small + 3:
            raise ValueError(f"`solver='lowrank'` needs one axis longer than the other plus 2 (got {n_cells} cells "
                             f"× {n_genes} genes); use solver='dense'.")
        return "lowrank"
    if solver == "dense" or mode == "reference":
        return "dense"
    return "lowrank" if big >= LOWRANK_MIN and big >= LOWRANK_RATIO * small else "dense"


#: Largest mean(Y²) of the quotient seen on count data (docs/medmagma.md §5: 0.75–13 on the shipped count sets;
#: Yan/Pollen RPKM/log data 252/439, where the default fit does not converge): above it, the hint names z_scale.
COUNT_SCALE_MAX = 15.0


def memory_needed(n_cells: int, n_genes: int, solver: str = "dense") -> int:
    """Bytes of peak working memory of :meth:`MedMagma.fit` (float64).

    ``"dense"``: 12 d×d matrices per axis (Ψ, eigenvectors, statistics, Q̃, Newton Hessian and factor,
    correction, and the kernels' own buffers) and 5 cells×genes ones: an upper bound on the measured peak
    growth of a fit (2,000²: 612 MiB on one thread, 710 MiB on two; 800² with the two axes run
    concurrently: 132 MiB; docs/medmagma.md §6). ``"lowrank"``: ~10 (large axis × small axis) matrices (the
    quotient, z*, its QR factor, the factors of Ψ, the cell half's temporaries) and ~10 small-axis
    squares. ``"auto"``: the path :func:`choose_solver` picks.
    """
    path = choose_solver(n_cells, n_genes, solver) if solver == "auto" else solver
    if path == "lowrank":
        big, small = max(n_cells, n_genes), min(n_cells, n_genes)
        return int(8 * (10 * big * (small + 1) + 10 * small**2))
    return int(8 * (12 * (n_cells**2 + n_genes**2) + 5 * n_cells * n_genes))


def _positive_offdiag_fraction(psi: Any, max_rows: int = 2000) -> float:
    """Fraction of positive off-diagonal entries; for a factored matrix, over an evenly spaced sample
    of ``max_rows`` rows (rows are scored in blocks, nothing n × n is formed)."""
    n = psi.shape[0]
    if isinstance(psi, LowRankPrecision):
        rows = np.unique(np.linspace(0, n - 1, min(n, max_rows)).astype(int))
        block = (psi.basis[rows] * psi.weights) @ psi.basis.T
        block[np.arange(rows.size), rows] = -np.inf  # the diagonal does not count
        return float((block > 0).sum()) / float(rows.size * (n - 1))
    return float((psi[~np.eye(n, dtype=bool)] > 0).mean())


class MedMagma(TwoAxisEstimator):
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
        ``"one-pass"`` (the published method's zero-aware quotient, default) or ``"iterated"``
        (exactly invariant to the noise also with zeros; ``docs/medmagma.md``).
    z_scale
        Normalisation of the fiber mode z* before the E-step statistics (its overall scale is
        arbitrary in the model, but the M-step's ridge toward λ = 1 is not scale-free).
        ``"mean-square"``: ‖z*‖²_F = mean(Y²), the scale the reference's unit-norm scalings give on
        dense data; keeps the data term from vanishing when zeros concentrate the scalings
        (``docs/medmagma.md``, "Real count data"). ``"unit"``: the reference's unit-norm s₁, s₂ as they are.
        A positive number: ‖z*‖²_F set to it (on heavy-tailed input, e.g. RPKM, mean(Y²) is set by a
        few entries and EM may not converge; ``docs/medmagma.md``, "Why EM did not converge"). ``None``:
        ``"mean-square"`` in fast mode, ``"unit"`` in reference mode.
    laplace_weight
        Weight w of the subtracted Laplace term, S = z*z*ᵀ − w·½C. ``"auto"`` (default): 1 (the
        reference) when the input has no zeros, 0 when it has zeros (the term's tangent directions
        assume that every entry moves along the fiber; with the 40-90 % zeros of count data it
        dominates the statistics and gives degenerate cell graphs; ``docs/medmagma.md``). Reference mode:
        ``"auto"`` means 1. A number in [0, 1] forces the weight.
    max_iter
        Maximum EM iterations.
    tol
        EM stopping tolerance. ``"reference"``: on the reference's δ = √(‖ΔΨ₁‖²/d₁² + ‖ΔΨ₂‖²/d₂²)
        (``None`` → 1e-7, the published synthetic setting). ``"fast"``: on the estimated remaining
        distance of the EM state — the larger of Ψ's scale-free relative change √(Σ_ℓ ‖ΔΨ_ℓ‖²/‖Ψ_ℓ‖²)
        and the largest change of a log-scaling, times r/(1 − r) once EM contracts with ratio r < ½
        over the last two iterations (``None`` → 1e-4: the graphs and edge AP of a fit to 1e-9).
    regularization
        Ridge ρ of the M-step. ``None``: 1/2000 in fast mode, 0 in reference mode.
    flipflop_tol, max_flipflop
        Flip-flop stopping rule (ℓ1 change of the product-one scalings) and round limit per EM
        iteration. ``None``: 200 in reference mode; in fast mode 1 for input without zeros and 2 for
        input with zeros, where the warm-started E-step is refined across EM iterations instead (an
        inexact E-step: same fixed point, measured identical AP, 20-25 % less time); EM's stopping
        rule therefore watches the scalings as well as Ψ (``tol``).
    random_state
        Seed of the random initial scalings s ~ U[0, 1) (same stream as the reference's
        ``np.random.seed(random_state)``). ``None``: NumPy's global RNG (as the reference); a
        ``RandomState`` is used as is.
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``…; computations are float64.
    solver
        ``"dense"``: d × d precision matrices for both axes (any shape). ``"lowrank"``: the larger axis
        (usually cells) kept as ``λ₀I + V Diag(δ) Vᵀ`` with V of rank ≤ the other axis + 1, never a
        dense cells × cells matrix: O(cells·genes) memory, O(cells·genes²) per product. Exact with
        ``laplace_weight=0`` (count data with zeros); with the Laplace term the EM path is projected
        but the fixed point is the dense one (``docs/medmagma.md``). ``"auto"`` (default): ``"lowrank"``
        when the larger axis has ≥ 2000 entries and ≥ 2× the other, else ``"dense"``; the reference
        mode is dense only. The result says which was used (``solver_``).
    scaling_prior
        ε ≥ 0 of a log-normal prior on the fiber mode's scalings: each half of the E-step minimises
        ``φ + μ‖log s‖²`` with μ = ε·φ/d at the start of the sub-problem. 0 is the published mode, which
        on data with zeros may not exist (the scalings drift without bound and EM runs to ``max_iter``).
        ``"auto"`` (default): ``AUTO_SCALING_PRIOR`` (1) in fast mode when the input has zeros, else 0
        (measurements in ``docs/medmagma.md``, "Convergence on count data").
    acceleration
        ``"anderson"``: Anderson mixing of the EM iterates (the fiber mode's log-scalings; changes the
        path, not the fixed point); ``"none"``: plain EM; ``"auto"`` (default): Anderson in fast mode
        without the Laplace term (count data, where plain EM contracts slowly), plain otherwise.
    n_threads
        CPU threads for the fit (torch's setting is restored afterwards). ``None``: torch's default
        (all cores). Below 1000 cells and genes each kernel runs on one thread (thread start-up and
        spinning cost more than they save on small matrices, badly so on a shared machine) and, with
        2 or more threads, the dense path runs the two axes' eigendecompositions concurrently; above,
        torch uses all of them.
    verbose
        Show a progress bar over EM iterations (on an interactive terminal; ``MAGMAP_PROGRESS=1`` forces it,
        ``MAGMAP_QUIET=1`` silences it).

    Attributes
    ----------
    cell_precision_, gene_precision_ : ndarray or LowRankPrecision
        Ψ_cells (n_cells × n_cells) and Ψ_genes: dense arrays, except the factored axis of the
        many-cells path (a :class:`~magmap.medmagma.LowRankPrecision`; ``np.asarray`` densifies it
        when it fits in memory, the graph methods never do). Overall scale and the split of the
        diagonal between the axes are not identified: use off-diagonals (graphs) only.
    solver_ : str
        ``"dense"`` or ``"lowrank"`` (the path taken).
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
        off-diagonals or, in reference mode, ≥ 5 % of eigenvalues at its 1e-6 clip) or when the last
        cell statistic had more negative eigenvalues than 40 % of min(cells, genes) (the Laplace term
        swamped the data); a :class:`DegenerateSolutionWarning` says what to try.
        Details in ``diagnostics_``.
    laplace_weight_ : float
        The Laplace weight used (``"auto"`` resolved).
    scaling_prior_ : float
        The scaling prior ε used (``"auto"`` resolved).
    diagnostics_ : dict
    """

    def __init__(
        self,
        *,
        mode: str = "fast",
        zero_handling: str = "one-pass",
        z_scale: str | float | None = None,
        laplace_weight: float | str = "auto",
        max_iter: int = 100,
        tol: float | None = None,
        regularization: float | None = None,
        flipflop_tol: float = 1e-3,
        max_flipflop: int | None = None,
        random_state: int | None = 0,
        device: str = "auto",
        n_threads: int | None = None,
        solver: str = "auto",
        acceleration: str = "auto",
        scaling_prior: float | str = "auto",
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
        self.solver = solver
        self.acceleration = acceleration
        self.scaling_prior = scaling_prior
        self.verbose = verbose

    def _check_params(self) -> None:
        check_choice(self.mode, "mode", ("fast", "reference"))
        check_choice(self.zero_handling, "zero_handling", ZERO_HANDLING)
        check_choice(self.solver, "solver", SOLVERS)
        check_choice(self.acceleration, "acceleration", ("auto", "anderson", "none"))
        zs = self.z_scale
        if isinstance(zs, (int, float)) and not isinstance(zs, bool):
            if not (np.isfinite(zs) and zs > 0):
                raise ValueError(f"`z_scale` must be 'mean-square', 'unit', None or a positive number (the target "
                                 f"‖z*‖²), got {zs!r}.")
        elif zs is not None:
            check_choice(zs, "z_scale", ("mean-square", "unit"))
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
        sp_ = self.scaling_prior
        if not (isinstance(sp_, str) and sp_ == "auto") and (
                isinstance(sp_, (bool, str)) or not isinstance(sp_, (int, float)) or not np.isfinite(sp_) or sp_ < 0):
            raise ValueError(f"`scaling_prior` must be 'auto' or a number ≥ 0, got {sp_!r}.")
        if self.regularization is not None and not (np.isfinite(self.regularization) and self.regularization >= 0):
            raise ValueError(f"`regularization` must be None or a number ≥ 0, got {self.regularization!r}.")


    def _memory(self, n_cells: int, n_genes: int) -> tuple[int, str]:
        path = choose_solver(n_cells, n_genes, self.solver, self.mode)
        what = ("MED-MAGMA (dense path: cells × cells and genes × genes matrices)" if path == "dense" else
                "MED-MAGMA (many-cells path: the larger axis in factored form)")
        return memory_needed(n_cells, n_genes, path), what

    def _settings(self, zero_fraction: float, axis_threads: bool = False) -> EMSettings:
        """The mode's defaults for the arguments left ``None``/``"auto"``."""
        reference = self.mode == "reference"
        rho = (0.0 if reference else FAST_RIDGE) if self.regularization is None else float(self.regularization)
        tol = (1e-7 if reference else FAST_TOL) if self.tol is None else float(self.tol)
        z_scale = ("unit" if reference else "mean-square") if self.z_scale is None else self.z_scale
        if self.max_flipflop is not None:
            max_ff = int(self.max_flipflop)
        else:
            # Fast mode refines an inexact E-step across EM iterations (same fixed point): one round
            # without zeros, two with zeros, where scalings resting on the zero pattern move slowly.
            max_ff = 200 if reference else (1 if zero_fraction == 0.0 else 2)
        if isinstance(self.laplace_weight, str):  # "auto"
            lap_w = 1.0 if (reference or zero_fraction == 0.0) else 0.0
        else:
            lap_w = float(self.laplace_weight)
        if isinstance(self.scaling_prior, str):  # "auto": bound the mode where zeros can unbound it
            prior = AUTO_SCALING_PRIOR if (not reference and zero_fraction > 0.0) else 0.0
        else:
            prior = float(self.scaling_prior)
        accelerate = not reference and (self.acceleration == "anderson"
                                        or (self.acceleration == "auto" and lap_w == 0.0))
        return EMSettings(reference=reference, rho=rho, tol=tol, z_scale=z_scale, laplace_weight=lap_w,
                          max_flipflop=max_ff, flipflop_tol=float(self.flipflop_tol), max_iter=int(self.max_iter),
                          verbose=bool(self.verbose), accelerate=accelerate,
                          scaling_prior=prior, axis_threads=axis_threads)

    def _fit_checked(self, X: Any) -> MedMagma:
        d1, d2 = X.shape
        device = resolve_device(self.device)
        budget = torch.get_num_threads() if self.n_threads is None else check_positive_int(self.n_threads, "n_threads")
        small = max(d1, d2) < 1000
        # Below 1000 a kernel on 2+ threads is slower than on one; two threads are better spent on the
        # two axes' eigendecompositions at once (the dense path on the CPU).
        axis_threads = small and budget >= 2 and device == "cpu"
        old_threads = torch.get_num_threads()
        torch.set_num_threads(1 if small else budget)
        try:
            self._fit(X, device, axis_threads)
        finally:
            torch.set_num_threads(old_threads)
        return self

    def _fit(self, X: Any, device: str, axis_threads: bool = False) -> None:
        d1, d2 = X.shape
        t_start = time.perf_counter()
        nnz = X.count_nonzero() if not isinstance(X, np.ndarray) else np.count_nonzero(X)
        zero_fraction = 1.0 - int(nnz) / float(d1 * d2)
        cfg = self._settings(zero_fraction, axis_threads)
        w, sign = log_quotient(X, zero_handling=self.zero_handling)
        # Y = sign·exp(w); the quotient has unit geometric means, so exp is safe unless the data span
        # more than ~300 orders of magnitude, which we refuse with a clear message.
        if np.abs(w).max() > 700:
            raise ValueError("`X` spans too many orders of magnitude for float64 after the quotient map "
                             "(|log| > 700); rescale or clip extreme values.")
        y = to_tensor(sign * np.exp(w), device)
        del w, sign
        rng = check_random_state(self.random_state)
        s1 = to_tensor(rng.random_sample(d1), device)
        s2 = to_tensor(rng.random_sample(d2), device)
        if float(s1.min()) <= 0 or float(s2.min()) <= 0:  # U[0,1) can return 0 exactly (probability ~0)
            s1, s2 = s1.clamp(min=1e-12), s2.clamp(min=1e-12)
        path = choose_solver(d1, d2, self.solver, self.mode)
        if path == "dense":
            res = em_dense(y, s1, s2, cfg)
            cells, genes = res.psi1.cpu().numpy(), res.psi2.cpu().numpy()
        elif d1 >= d2:
            res = em_lowrank(y, s1, s2, cfg)
            cells, genes = LowRankPrecision(*to_numpy_factors(res.psi1)), res.psi2.cpu().numpy()
        else:  # genes ≫ cells: the same model with the axes swapped
            res = em_lowrank(y.T, s2, s1, cfg)
            res.s1, res.s2, res.lam1, res.lam2 = res.s2, res.s1, res.lam2, res.lam1
            cells, genes = res.psi2.cpu().numpy(), LowRankPrecision(*to_numpy_factors(res.psi1))
        del y
        if not res.converged:
            hint = ""
            if cfg.z_scale == "mean-square" and res.z_target is not None:
                scale = f" The E-step statistic was scaled to mean(Y²) = {res.z_target:.3g}"
                if res.z_target > COUNT_SCALE_MAX:
                    # the statistic's scale sets the M-step ridge's pull; heavy-tailed input makes it large
                    hint = (f"{scale}; above the count-data range (about 1-{COUNT_SCALE_MAX:g}), as on "
                            "normalised, heavy-tailed input (TPM, RPKM), z_scale=10 usually converges.")
                else:
                    hint = (f"{scale}, within the count-data range (about 1-{COUNT_SCALE_MAX:g}) where the "
                            "measured fits converged; a larger max_iter may be all it needs.")
            logger.warning(
                "MED-MAGMA did not converge in %d EM iterations (last change %.3g); results may still be "
                "usable, see history_.%s", cfg.max_iter, res.history[-1]["delta" if cfg.reference else "rel_change"],
                hint)
        self.cell_precision_, self.gene_precision_ = cells, genes
        self.solver_ = path
        self.cell_eigenvalues_ = res.lam1.cpu().numpy()
        self.gene_eigenvalues_ = res.lam2.cpu().numpy()
        self.s_cells_ = res.s1.cpu().numpy()
        self.s_genes_ = res.s2.cpu().numpy()
        self.n_iter_ = len(res.history)
        self.converged_ = res.converged
        self.history_ = res.history
        self.n_features_in_ = d2
        self.fit_seconds_ = time.perf_counter() - t_start
        self.device_ = device
        self.laplace_weight_ = cfg.laplace_weight
        self.scaling_prior_ = cfg.scaling_prior
        self.zero_fraction_ = zero_fraction
        nonnegative = bool((X.data if not isinstance(X, np.ndarray) else X).min() >= 0)
        self._diagnose(nonnegative, res.neg_stat)

    def _fit_info(self) -> dict[str, Any]:
        """What the fit resolved or found, recorded next to its graphs."""
        return {"device": self.device_, "laplace_weight_used": self.laplace_weight_, "degenerate": self.degenerate_,
                "solver_used": self.solver_, "scaling_prior_used": self.scaling_prior_}

    def _diagnose(self, applicable: bool, neg_stat: int = 0) -> None:
        """Flag the degenerate pattern seen on count data (``docs/medmagma.md``, "Diagnostics"):
        mostly positive off-diagonals of Ψ_cells, eigenvalues at the reference M-step's 1e-6 clip, or a
        cell statistic whose negative eigenvalues outnumber 40 % of its possible rank. Only for nonnegative input:
        signed data (e.g. Gaussian synthetic data) can have positive off-diagonals legitimately."""
        pos_frac = _positive_offdiag_fraction(self.cell_precision_)
        floor_frac = float((self.cell_eigenvalues_ <= 1e-6 * (1 + 1e-9)).mean())
        d1, d2 = self.cell_precision_.shape[0], self.gene_precision_.shape[0]
        neg_stat_frac = neg_stat / d1
        # Only the reference M-step clips at 1e-6; in fast mode a cell eigenvalue may be ≤ 0 (only
        # λ_cells + λ_genes > 0 is identified), so the floor says nothing there.
        floor_hit = self.mode == "reference" and floor_frac >= 0.05
        degenerate = applicable and (pos_frac >= 0.84 or floor_hit or neg_stat > 0.4 * min(d1, d2))
        self.diagnostics_ = {"applicable": applicable, "positive_offdiag_fraction_cells": pos_frac,
                             "eigenvalues_at_floor_fraction_cells": floor_frac,
                             "negative_statistic_fraction_cells": neg_stat_frac,
                             "laplace_weight": self.laplace_weight_, "zero_fraction": self.zero_fraction_,
                             "positive_offdiag_fraction_genes": _positive_offdiag_fraction(self.gene_precision_)}
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
