"""robin-style plot of two robustness curves (``plot.robin`` / ``plotRobin``)."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["plot_curves", "plot_multi_compare"]

#: robin's (ggplot's default) colours: first curve teal, second curve salmon.
COLOURS = ("#00BFC4", "#F8766D")


def plot_curves(
    curve_real: Any,
    curve_null: Any,
    *,
    levels: Any | None = None,
    labels: tuple[str, str] = ("real data", "null model"),
    title: str = "Robin plot",
    ylim: tuple[float, float] | None = (0.0, 1.0),
    ax: Any | None = None,
):
    """Plot the mean (over repeats) of each curve against the perturbation fraction, like robin.

    Parameters
    ----------
    curve_real, curve_null
        Matrices (repeats × levels).
    levels
        Column levels in percent (default ``0, 5, …``); the x axis shows them as fractions 0–0.6.
    labels
        Legend labels (robin: "real data"/"null model", or the two method names).
    title
        Plot title.
    ylim
        y limits; robin fixes them to ``(0, 1)``. ``None`` lets matplotlib choose.
    ax
        Existing matplotlib Axes; a new figure is made when ``None``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    A = np.asarray(curve_real, dtype=float)
    B = np.asarray(curve_null, dtype=float)
    if levels is None:
        levels = 5.0 * np.arange(A.shape[1])
    t = np.asarray(levels, dtype=float) / 100.0
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for curve, colour, label in zip((A, B), COLOURS, labels):
        ax.plot(t, curve.mean(axis=0), "-o", color=colour, label=label, markersize=4)
    ax.set_xlabel("Percentage of perturbation")
    ax.set_ylabel("Measure")
    ax.set_title(title)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.legend(title=None, frameon=False)
    return ax


def plot_multi_compare(
    results: Any,
    *,
    title: str = "Robin plot",
    ylim1: bool = False,
    ax: Any | None = None,
):
    """Several :func:`~magmap.robustness.compare` results on one plot (robin's ``plotMultiCompare``).

    One mean curve per distinct method: when the comparisons share a method (e.g. louvain vs each
    of several others), its curve is drawn once, from the first result that contains it.

    Parameters
    ----------
    results
        Sequence of compare-mode :class:`~magmap.robustness.RobinResult` objects.
    title
        Plot title.
    ylim1
        Fix the y axis to ``(0, 1)`` (robin's ``ylim1=TRUE``).
    ax
        Existing matplotlib Axes, or ``None`` for a new figure.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    results = list(results)
    if not results or any(getattr(r, "mode", None) != "compare" for r in results):
        raise ValueError("`results` must be a non-empty sequence of magmap.robustness.compare() results.")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    seen: set[str] = set()
    for r in results:
        t = np.asarray(r.levels, dtype=float) / 100.0
        for label, curve in zip(r.labels, (r.curve_real, r.curve_null)):
            if label in seen:
                continue
            seen.add(label)
            ax.plot(t, np.asarray(curve, dtype=float).mean(axis=0), "-o", label=label, markersize=4)
    ax.set_xlabel("Percentage of perturbation")
    ax.set_ylabel("Measure")
    ax.set_title(title)
    if ylim1:
        ax.set_ylim(0.0, 1.0)
    ax.legend(title="Methods", frameon=False)
    return ax
