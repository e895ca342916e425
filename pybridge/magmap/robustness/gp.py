"""Gaussian-process Bayes-factor test of two robustness curves (robin's ``robinGPTest``).

The test is the gprege model (Kalaitzis & Lawrence 2011) fitted to one profile: the per-replicate
log2 ratio of the two curves. Written from robin's documented behaviour;
no gptk/gprege code is used.

The number returned is what robin reports: ``LML1 - LML0``, a **natural-log** marginal-likelihood
ratio (ln K), *not* the Bayes factor K itself and not a log10 value.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla

__all__ = ["bayes_factor", "gp_test", "GPTestResult"]

_EPS = float(np.finfo(float).eps)  # 2.2204e-16, gptk's lower clamp
_LIM = 36.0  # |log value| beyond which the exp transform clamps
_MAX = math.exp(_LIM)  # 4.3112e15


@dataclass(frozen=True)
class GPTestResult:
    """Outcome of :func:`gp_test`.

    Attributes
    ----------
    bayes_factor
        ``lml1 - lml0``: natural-log marginal-likelihood ratio, robin's "Bayes factor". NaN when the
        two curves are identical (degenerate test).
    lml0, lml1
        Log marginal likelihoods of the flat model H0 (fixed) and the structured model H1 (fitted).
    beta, alpha, nu
        Fitted H1 hyper-parameters: RBF inverse squared length-scale (percent units), signal
        variance and noise variance.
    rho
        Initial noise share ``min(1, mean level variance / total variance)``.
    n_iter
        Optimiser iterations used.
    """

    bayes_factor: float
    lml0: float
    lml1: float
    beta: float
    alpha: float
    nu: float
    rho: float
    n_iter: int

    def to_dict(self) -> dict[str, Any]:
        """Plain ``dict`` of floats/ints."""
        return {k: (int(v) if k == "n_iter" else float(v)) for k, v in self.__dict__.items()}


def _exp_clamped(logv: np.ndarray) -> np.ndarray:
    """gptk-style exp transform: clamp below at eps and above at exp(36)."""
    logv = np.asarray(logv, dtype=float)
    out = np.exp(np.clip(logv, -_LIM, _LIM))
    out = np.where(logv < -_LIM, _EPS, out)
    return np.where(logv > _LIM, _MAX, out)


def _log_param(value: float) -> float:
    return math.log(value) if value > 0 else math.log(_EPS)


def _jitter_cholesky(K: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor, adding growing jitter (1e-5·mean diag, ×10, ≤ 10 tries) if needed."""
    try:
        return np.linalg.cholesky(K)
    except np.linalg.LinAlgError:
        pass
    jitter = 1e-5 * float(np.mean(np.diag(K)))
    for _ in range(10):
        try:
            return np.linalg.cholesky(K + jitter * np.eye(K.shape[0]))
        except np.linalg.LinAlgError:
            jitter *= 10.0
    raise np.linalg.LinAlgError("GP covariance is not positive definite even after adding jitter.")


def _lml_and_grad(logtheta: np.ndarray, x: np.ndarray, y: np.ndarray, grad: bool = True):
    """Log marginal likelihood and its gradient in (log beta, log alpha, log nu)."""
    beta, alpha, nu = _exp_clamped(logtheta)
    d2 = (x[:, None] - x[None, :]) ** 2
    E = np.exp(-0.5 * beta * d2)
    K = alpha * E + nu * np.eye(len(x))
    L = _jitter_cholesky(K)
    a = sla.cho_solve((L, True), y)
    n = len(y)
    lml = -0.5 * float(y @ a) - float(np.sum(np.log(np.diag(L)))) - 0.5 * n * math.log(2 * math.pi)
    if not grad:
        return lml, None
    Kinv = sla.cho_solve((L, True), np.eye(n))
    W = np.outer(a, a) - Kinv
    dbeta = 0.5 * float(np.sum(W * (alpha * E * (-0.5 * d2))))
    dalpha = 0.5 * float(np.sum(W * E))
    dnu = 0.5 * float(np.trace(W))
    return lml, np.array([dbeta * beta, dalpha * alpha, dnu * nu])


def _scg(f, gradf, x0: np.ndarray, *, max_iter: int = 100, xtol: float = 1e-4, ftol: float = 1e-4):
    """Scaled conjugate gradients (Møller 1993), the Netlab/gptk schedule, minimising ``f``."""
    x = np.array(x0, dtype=float)
    nparams = x.size
    sigma0 = 1.0e-4
    fold = f(x)
    gradnew = gradf(x)
    gradold = gradnew
    d = -gradnew
    success = True
    nsuccess = 0
    beta = 1.0
    betamin, betamax = 1.0e-15, 1.0e100
    mu = kappa = theta = 0.0
    j = 1
    while j <= max_iter:
        if success:
            mu = float(d @ gradnew)
            if mu >= 0:
                d = -gradnew
                mu = float(d @ gradnew)
            kappa = float(d @ d)
            if kappa < _EPS:
                return x, j
            sigma = sigma0 / math.sqrt(kappa)
            gplus = gradf(x + sigma * d)
            theta = float(d @ (gplus - gradnew)) / sigma
        delta = theta + beta * kappa
        if delta <= 0:
            delta = beta * kappa
            beta = beta - theta / kappa
        alpha = -mu / delta
        xnew = x + alpha * d
        fnew = f(xnew)
        Delta = 2.0 * (fnew - fold) / (alpha * mu)
        if Delta >= 0:
            success = True
            nsuccess += 1
            x = xnew
        else:
            success = False
        if success:
            if np.max(np.abs(alpha * d)) < xtol and abs(fnew - fold) < ftol:
                return x, j
            fold = fnew
            gradold = gradnew
            gradnew = gradf(x)
            if float(gradnew @ gradnew) == 0:
                return x, j
        if Delta < 0.25:
            beta = min(2.0 * beta, betamax)
        if Delta > 0.75:
            beta = max(0.5 * beta, betamin)
        if nsuccess == nparams:
            d = -gradnew
            nsuccess = 0
        elif success:
            gamma = float((gradold - gradnew) @ gradnew) / mu
            d = gamma * d - gradnew
        j += 1
    return x, max_iter


def _profile(curve_real: Any, curve_null: Any, levels: Any | None) -> tuple[np.ndarray, np.ndarray]:
    A = np.asarray(curve_real, dtype=float)
    B = np.asarray(curve_null, dtype=float)
    if A.ndim != 2 or A.shape != B.shape:
        raise ValueError(
            f"`curve_real` and `curve_null` must be two matrices of the same shape (repeats × levels), "
            f"got {A.shape} and {B.shape}."
        )
    n_rep, n_lev = A.shape
    if n_rep < 2 or n_lev < 2:
        raise ValueError(f"The curves need at least 2 repeats and 2 levels, got shape {A.shape}.")
    if levels is None:
        levels = 5.0 * np.arange(n_lev)
    levels = np.asarray(levels, dtype=float)
    if levels.shape != (n_lev,):
        raise ValueError(f"`levels` must have one value per column ({n_lev}), got {levels.shape}.")
    ratio = np.log2((A + 0.001) / (B + 0.001))
    y = ratio.T.reshape(-1)  # level-major: all replicates of level 0, then level 5, ...
    x = np.repeat(levels, n_rep)
    return x, y


def _single_thread_blas():
    """Limit BLAS to one thread: on 130 × 130 matrices threading only adds (large) contention."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn/scanpy
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def gp_test(
    curve_real: Any, curve_null: Any, *, levels: Any | None = None, optimizer: str = "scg"
) -> GPTestResult:
    """robin's Gaussian-process test with its diagnostics (see :func:`bayes_factor`).

    Parameters
    ----------
    curve_real, curve_null
        Matrices (repeats × levels), e.g. robin's ``Mean``/``MeanRandom`` or ``Mean1``/``Mean2``.
    levels
        Perturbation levels of the columns **in percent** (default ``0, 5, 10, …``). robin uses
        percent units; fractions give a different number.
    optimizer
        ``"scg"`` (robin's scaled conjugate gradients, default) or ``"lbfgsb"`` (scipy L-BFGS-B).

    Returns
    -------
    GPTestResult
    """
    if optimizer not in ("scg", "lbfgsb"):
        raise ValueError(f"`optimizer` must be 'scg' or 'lbfgsb', got {optimizer!r}.")
    x, y = _profile(curve_real, curve_null, levels)
    with _single_thread_blas():
        return _gp_test(x, y, optimizer)


def _gp_test(x: np.ndarray, y: np.ndarray, optimizer: str) -> GPTestResult:
    if np.any(~np.isfinite(y)):
        warnings.warn("The curves contain NaN/Inf (e.g. ARI on single-cluster partitions); Bayes factor is NaN.",
                      RuntimeWarning, stacklevel=4)
        nan = float("nan")
        return GPTestResult(nan, nan, nan, nan, nan, nan, nan, 0)
    n_rep = int(np.sum(x == x[0]))
    n_lev = len(y) // n_rep
    yc = y - y.mean()
    s2 = float(np.var(yc, ddof=1))
    if s2 <= 0:
        warnings.warn("The two curves are identical: the GP Bayes-factor test is degenerate, returning NaN.",
                      RuntimeWarning, stacklevel=4)
        nan = float("nan")
        return GPTestResult(nan, nan, nan, nan, nan, nan, nan, 0)
    level_var = y.reshape(n_lev, n_rep).var(axis=1, ddof=1)
    rho = min(1.0, float(level_var.mean()) / s2)
    sig = 1.0 - rho
    theta0 = np.array([_log_param(1 / 1000), _log_param(0.0 * s2), _log_param(1.0 * s2)])
    lml0, _ = _lml_and_grad(theta0, x, yc, grad=False)
    theta1 = np.array([_log_param(1.0 / n_lev), _log_param(sig * s2), _log_param(rho * s2)])

    def f(t):
        return -_lml_and_grad(t, x, yc, grad=False)[0]

    def g(t):
        return -_lml_and_grad(t, x, yc)[1]

    if optimizer == "scg":
        theta, n_iter = _scg(f, g, theta1)
    else:
        from scipy.optimize import minimize

        res = minimize(lambda t: tuple(-v for v in _lml_and_grad(t, x, yc)), theta1, jac=True,
                       method="L-BFGS-B", options={"maxiter": 1000})
        theta, n_iter = res.x, int(res.nit)
    lml1 = -f(theta)
    beta, alpha, nu = (float(v) for v in _exp_clamped(theta))
    return GPTestResult(lml1 - lml0, lml0, lml1, beta, alpha, nu, rho, int(n_iter))


def bayes_factor(
    curve_real: Any, curve_null: Any, *, levels: Any | None = None, optimizer: str = "scg"
) -> float:
    """robin's GP "Bayes factor" between two robustness curves (``robinGPTest``).

    The ratios ``log2((real + 0.001) / (null + 0.001))`` of every replicate and level are stacked
    level-major; a GP with an RBF + white-noise kernel on the level (percent units) is fitted by
    scaled conjugate gradients (H1) and compared with a fixed flat model (H0).

    Parameters
    ----------
    curve_real, curve_null
        Two matrices (repeats × levels; robin uses 10 × 13, columns 0, 5, …, 60 %).
    levels
        Column levels in percent (default ``0, 5, 10, …``).
    optimizer
        ``"scg"`` (default, robin's optimiser) or ``"lbfgsb"``.

    Returns
    -------
    float
        ``LML1 - LML0``, the **natural-log** marginal-likelihood ratio ln K, exactly the number robin
        reports as "Bayes factor" (the MED-MAGMA paper's 108 and 59 are on this scale). Read it on
        the ln scale; ``exp`` of it is K. NaN (with a warning) when the curves are identical or
        contain NaN. The test is two-sided: use :func:`~magmap.robustness.auc` for the direction.
    """
    return gp_test(curve_real, curve_null, levels=levels, optimizer=optimizer).bayes_factor
