"""Area under the mean robustness curves (robin's ``robinAUC``)."""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.interpolate import CubicSpline

__all__ = ["auc"]


def _area(means: np.ndarray, t: np.ndarray) -> float:
    if not np.all(np.isfinite(means)):
        return float("nan")  # e.g. ARI on single-cluster partitions (robin returns NA too)
    return float(CubicSpline(t, means, bc_type="natural").integrate(t[0], t[-1]))


def auc(curve_real: Any, curve_null: Any, *, levels: Any | None = None) -> tuple[float, float]:
    """Areas under the two mean curves, as robin's ``robinAUC`` computes them.

    The column means (over repeats) are interpolated by a natural cubic spline on the perturbation
    fractions ``levels / 100`` (0, 0.05, …, 0.6) and integrated exactly over that range (robin:
    ``DescTools::AUC(method="spline")``). A lower area means more stable partitions; the maximum is
    0.6 × the maximum of the measure.

    Parameters
    ----------
    curve_real, curve_null
        Matrices (repeats × levels), robin's ``Mean``/``MeanRandom`` or ``Mean1``/``Mean2``.
    levels
        Column levels in percent (default ``0, 5, 10, …``).

    Returns
    -------
    tuple of float
        ``(area_real, area_null)`` (robin's "Area real data", "Area null model"; for a comparison the
        areas of method 1 and method 2). NaN for a curve with NaN values.
    """
    A = np.asarray(curve_real, dtype=float)
    B = np.asarray(curve_null, dtype=float)
    if A.ndim != 2 or A.shape != B.shape:
        raise ValueError(
            f"`curve_real` and `curve_null` must be two matrices of the same shape, got {A.shape} and {B.shape}."
        )
    if A.shape[1] < 2:
        raise ValueError(f"The curves need at least 2 levels (columns), got {A.shape[1]}.")
    if levels is None:
        levels = 5.0 * np.arange(A.shape[1])
    t = np.asarray(levels, dtype=float) / 100.0
    if t.shape != (A.shape[1],):
        raise ValueError(f"`levels` must have one value per column ({A.shape[1]}), got shape {t.shape}.")
    return _area(A.mean(axis=0), t), _area(B.mean(axis=0), t)
