"""Certified output boxes of a fitted encoder: every input in an L∞ ball maps into a box (CROWN/IBP bounds)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._validation import check_choice
from ..crown import METHODS as BOUND_METHODS
from ..crown import bound_area_loss, output_bounds
from ._inputs import model_inputs

__all__ = ["Certificate", "BOUND_METHODS", "certify"]


@dataclass
class Certificate:
    """Certified output boxes: for every cell, every input within ``epsilon`` (L∞, z-score units) maps
    into ``[lower, upper]``.

    Attributes
    ----------
    lower, upper
        ``(n_cells, n_components)`` bounds.
    area
        Box volume ``Π_j (upper_j − lower_j)`` per cell, in embedding units.
    relative_area
        ``area / area_ref``, where ``area_ref`` is the volume of the training embedding's bounding box
        (comparable across models with different embedding scales).
    epsilon, method
        Perturbation radius and bound method used.
    """

    lower: np.ndarray
    upper: np.ndarray
    area: np.ndarray
    relative_area: np.ndarray
    epsilon: float
    method: str

    def summary(self) -> dict[str, float]:
        """Mean, median and 90th percentile of the relative box area; mean box side per dimension."""
        r = self.relative_area
        width = self.upper - self.lower
        return {"mean_relative_area": float(r.mean()), "median_relative_area": float(np.median(r)),
                "q90_relative_area": float(np.quantile(r, 0.9)), "mean_area": float(self.area.mean()),
                **{f"mean_width_{j}": float(width[:, j].mean()) for j in range(width.shape[1])},
                "epsilon": float(self.epsilon)}


def certify(model: Any, X: Any, epsilon: float | None = None, *, layer: str | None = None,
            method: str | None = None, missing_genes: str = "error", batch_size: int = 256) -> Certificate:
    """Certified output boxes of the cells ``X`` under ``model`` (see :meth:`RobustUMAP.certify`)."""
    eps = float(model.epsilon if epsilon is None else epsilon)
    if not eps >= 0:
        raise ValueError(f"`epsilon` must be ≥ 0, got {eps}.")
    model._check_fitted()
    method = check_choice(method or model.bound_method, "method", BOUND_METHODS)
    device = next(model.encoder_.parameters()).device
    lo, up = [], []
    with torch.no_grad():
        for Z in model_inputs(model, X, layer, missing_genes, 16384):
            for i in range(0, Z.shape[0], batch_size):
                l, u = output_bounds(model.encoder_, torch.from_numpy(Z[i:i + batch_size]).to(device), eps,
                                     method=method)
                lo.append(l.float().cpu().numpy())
                up.append(u.float().cpu().numpy())
    lower, upper = np.concatenate(lo), np.concatenate(up)
    area = bound_area_loss(torch.from_numpy(lower), torch.from_numpy(upper), reduction="none").numpy()
    return Certificate(lower, upper, area, area / max(model.area_ref_, 1e-12), eps, method)
