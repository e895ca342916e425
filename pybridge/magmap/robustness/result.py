"""The result of a robustness test: both curve matrices, Bayes factor, AUC and parameters."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["RobinResult"]


def _plain(v: Any) -> Any:
    """Convert to plain Python (lists, floats, ints, strings, dicts, None) for JSON and R."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_plain(x) for x in (v.tolist() if isinstance(v, np.ndarray) else v)]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    if v is None or isinstance(v, str):
        return v
    return repr(v)


@dataclass
class RobinResult:
    """Outcome of :func:`magmap.robustness.robin` or :func:`magmap.robustness.compare`.

    Attributes
    ----------
    curve_real, curve_null
        ``n_repeats × (1 + n_levels)`` matrices (10 × 13 by default), rows repeats, columns levels
        ``0, 5, …, 60`` % (column 0 is zeros). robin's ``Mean``/``MeanRandom``. In ``compare`` mode
        they hold method 1 and method 2 (robin's ``Mean1``/``Mean2``).
    levels
        Column levels in percent, starting with 0.
    bayes_factor
        robin's ``robinGPTest`` value: a **natural-log** marginal-likelihood ratio (ln K). NaN when
        degenerate.
    auc
        ``(area_real, area_null)`` (``robinAUC``); in compare mode method 1 and method 2.
    labels
        Curve labels: ``("real data", "null model")`` or the two method names.
    mode
        ``"robust"`` or ``"compare"``.
    methods
        Community method(s): one name, or two in compare mode.
    measure
        ``"vi"``, ``"nmi"``, ``"split_join"`` or ``"ari"`` (normalised as robin does).
    type
        Perturbation type, ``"independent"``.
    communities_real, communities_null
        Partitions of the unperturbed graphs (real / null; compare mode: method 1 / method 2).
    gp
        Diagnostics of the GP test (``lml0``, ``lml1``, ``beta``, ``alpha``, ``nu``, ``rho``, ``n_iter``).
    params
        Seed, levels, trial counts, repeats, method arguments, weighting, graph size, ``n_jobs`` and
        ``versions`` — enough to reproduce the run.
    backend
        ``"python"`` here; the R wrapper records ``"robin"`` when CRAN robin ran.
    """

    curve_real: np.ndarray
    curve_null: np.ndarray
    levels: np.ndarray
    bayes_factor: float
    auc: tuple[float, float]
    labels: tuple[str, str] = ("real data", "null model")
    mode: str = "robust"
    methods: tuple[str, ...] = ("louvain",)
    measure: str = "vi"
    type: str = "independent"
    communities_real: list[int] = field(default_factory=list)
    communities_null: list[int] = field(default_factory=list)
    gp: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    backend: str = "python"

    def plot(self, *, title: str = "Robin plot", ylim: tuple[float, float] | None = (0.0, 1.0), ax: Any = None):
        """Plot the two mean curves like robin's ``plot.robin``; returns the matplotlib Axes."""
        from .plot import plot_curves

        return plot_curves(self.curve_real, self.curve_null, levels=self.levels, labels=self.labels,
                           title=title, ylim=ylim, ax=ax)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form (lists, floats, ints, strings, dicts) for JSON and the R bridge.

        Layout::

            {"backend": "python", "mode": "robust"|"compare", "methods": [str, ...],
             "measure": str, "type": str, "labels": [str, str], "levels": [0, 5, ..., 60],
             "curve_real": [[...13 floats] x 10], "curve_null": [[...] x 10],   # row = repeat
             "bayes_factor": float (ln scale; NaN if degenerate), "auc": [float, float],
             "communities_real": [int, ...], "communities_null": [int, ...],
             "gp": {"bayes_factor", "lml0", "lml1", "beta", "alpha", "nu", "rho", "n_iter"},
             "params": {"seed": int, "n_repeats": int, "levels": [...], "trial_counts": [...],
                        "method_args": {...}, "weighted": str|None, "n_vertices": int,
                        "n_edges": int, "null": "rewired"|"supplied", "n_jobs": int,
                        "versions": {pkg: version}}}
        """
        return {
            "backend": self.backend,
            "mode": self.mode,
            "methods": list(self.methods),
            "measure": self.measure,
            "type": self.type,
            "labels": list(self.labels),
            "levels": _plain(np.asarray(self.levels)),
            "curve_real": _plain(np.asarray(self.curve_real, dtype=float)),
            "curve_null": _plain(np.asarray(self.curve_null, dtype=float)),
            "bayes_factor": float(self.bayes_factor),
            "auc": [float(a) for a in self.auc],
            "communities_real": _plain(self.communities_real),
            "communities_null": _plain(self.communities_null),
            "gp": _plain(self.gp),
            "params": _plain(self.params),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RobinResult:
        """Rebuild a result from :meth:`to_dict` output (e.g. coming back from R)."""
        bf = d.get("bayes_factor")
        return cls(
            curve_real=np.asarray(d["curve_real"], dtype=float),
            curve_null=np.asarray(d["curve_null"], dtype=float),
            levels=np.asarray(d["levels"], dtype=float),
            bayes_factor=float("nan") if bf is None else float(bf),
            auc=tuple(float(a) for a in d["auc"]),
            labels=tuple(d.get("labels", ("real data", "null model"))),
            mode=d.get("mode", "robust"),
            methods=tuple(d.get("methods", ())),
            measure=d.get("measure", "vi"),
            type=d.get("type", "independent"),
            communities_real=[int(x) for x in d.get("communities_real", [])],
            communities_null=[int(x) for x in d.get("communities_null", [])],
            gp=dict(d.get("gp", {})),
            params=dict(d.get("params", {})),
            backend=d.get("backend", "python"),
        )

    def __repr__(self) -> str:
        bf = "NaN" if math.isnan(self.bayes_factor) else f"{self.bayes_factor:.4g}"
        return (f"RobinResult(mode={self.mode!r}, methods={self.methods}, measure={self.measure!r}, "
                f"curves={tuple(np.shape(self.curve_real))}, bayes_factor(ln)={bf}, "
                f"auc=({self.auc[0]:.4g}, {self.auc[1]:.4g}), backend={self.backend!r})")
