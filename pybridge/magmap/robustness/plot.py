"""robin-style plot of two robustness curves (``plot.robin`` / ``plotRobin``)."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["plot_curves"]

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
