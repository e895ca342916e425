"""Certificates of a fitted encoder: output boxes at a given ε and each cell's certified radius.

* **Box at ε**: every input in the L∞ ball of radius ε around a cell's model input maps into
  ``[lower, upper]`` (CROWN through :func:`magmap.crown.crown_bounds`; IBP or CROWN-IBP through
  :func:`magmap.crown.output_bounds`).
* **Certified radius**: the largest ε (found by bisection on the bound) for which that box's diagonal
  stays within ``fraction`` of the diagonal of the training embedding's bounding box. Every input within
  the radius then maps into a box no wider than that fraction of the embedding.

The definition, defaults and measurements are in ``docs/robust_umap_certificates.md``.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from .._validation import check_choice, check_number
from ..crown import METHODS as BOUND_METHODS
from ..crown import bound_area_loss, crown_bounds, output_bounds
from ._inputs import model_inputs
from .impact import jacobian

logger = logging.getLogger("magmap")

__all__ = ["Certificate", "BOUND_METHODS", "certify", "certified_radius", "bisect_radius", "Radius",
           "embedding_diagonal", "reference_diagonal", "box_diagonal", "DEFAULT_FRACTION", "DEFAULT_RTOL",
           "MIN_EPSILON", "MAX_EPSILON"]

#: Default limit on the certified box: its diagonal ≤ 5 % of the training embedding's diagonal.
DEFAULT_FRACTION = 0.05
#: Default relative precision of the bisection: it stops when ``upper ≤ radius·(1 + rtol)``.
DEFAULT_RTOL = 0.01
#: Smallest ε tried (model input units); a cell whose box exceeds the limit already here gets radius 0.
MIN_EPSILON = 1e-6
#: Largest ε tried; a cell whose box stays within the limit up to here gets this radius (a lower bound).
MAX_EPSILON = 1e3
# Step limits of the bracketing phase: grow/shrink by the linear prediction, at least ×1.1 (÷1.1), at most ×10.
_MIN_STEP, _MAX_STEP = 1.1, 10.0
_MAX_ITER = 200


def embedding_diagonal(Z: np.ndarray) -> float:
    """Diagonal ``‖max(Z) − min(Z)‖₂`` of the bounding box of an embedding ``(n_cells, n_components)``."""
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[0] == 0:
        raise ValueError(f"the embedding must be a non-empty (cells × components) array, got shape {Z.shape}.")
    return float(np.linalg.norm(Z.max(axis=0) - Z.min(axis=0)))


def reference_diagonal(model: Any, *, required: bool = True) -> float | None:
    """The unit of certified radii: the diagonal of ``model``'s training embedding's bounding box.

    Computed from ``embedding_`` (stored in every model file); models loaded from files that lack the
    embedding use the ``diagonal_ref`` entry of their manifest. Neither: ``ValueError`` (``None`` when
    not ``required``).
    """
    emb = getattr(model, "embedding_", None)
    if emb is not None and len(emb):
        return embedding_diagonal(emb)
    stored = (getattr(model, "manifest_", None) or {}).get("diagonal_ref")
    if stored is not None:
        return float(stored)
    if not required:
        return None
    raise ValueError("this model holds neither its training embedding nor its reference diagonal "
                     "(manifest 'diagonal_ref'), which certified radii are measured against; refit it, or "
                     "save it again with a magmap version that stores the embedding.")


def box_diagonal(lower: np.ndarray | torch.Tensor, upper: np.ndarray | torch.Tensor) -> np.ndarray:
    """Per-row diagonal ``‖upper − lower‖₂`` of output boxes (float64)."""
    width = np.asarray(upper, dtype=np.float64) - np.asarray(lower, dtype=np.float64)
    return np.sqrt((np.clip(width, 0, None) ** 2).sum(axis=1))


class _Bounds:
    """Box diagonals of rows at per-row radii, keeping for CROWN each row's pre-activation intervals at the
    smallest radius evaluated so far whose box exceeded the limit (sound for every smaller radius, they let
    :func:`~magmap.crown.crown_bounds` skip the neurons already known to be stable)."""

    def __init__(self, network: nn.Module, x: torch.Tensor, method: str, reuse: bool = True) -> None:
        self.network, self.x, self.method, self.reuse = network, x, method, reuse
        self.reference: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def __call__(self, rows: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list | None]:
        x = self.x[rows.to(self.x.device)]
        if self.method != "crown" or not self.reuse:
            lo, up = output_bounds(self.network, x, eps.reshape(-1, 1), method=self.method)
            return lo, up, None
        ref = None if self.reference is None else [(l[rows], u[rows]) for l, u in self.reference]
        res = crown_bounds(self.network, x, eps, reference=ref)
        return res.lower, res.upper, res.intermediate

    def keep(self, rows: torch.Tensor, inter: list | None, exceeded: torch.Tensor) -> None:
        """Store the intervals of the rows whose box exceeded the limit."""
        if not inter or not bool(exceeded.any()):
            return
        if self.reference is None:
            n = self.x.shape[0]
            self.reference = [(torch.full((n, l.shape[1]), -math.inf, dtype=l.dtype, device=l.device),
                               torch.full((n, l.shape[1]), math.inf, dtype=l.dtype, device=l.device)) for l, _ in inter]
        idx = rows[exceeded].to(inter[0][0].device)
        for (l_ref, u_ref), (l, u) in zip(self.reference, inter):
            l_ref[idx], u_ref[idx] = l[exceeded], u[exceeded]


def _first_order_guess(network: nn.Module, x: torch.Tensor, limit: torch.Tensor) -> torch.Tensor:
    """Radius of the local linearisation: at small ε all ReLUs are stable and the box of output ``j`` is
    ``2ε‖J_j‖₁``, so its diagonal is ``2ε·‖(‖J_j‖₁)_j‖₂``."""
    J = jacobian(network, x).double().cpu()
    slope = 2.0 * J.abs().sum(2).pow(2).sum(1).sqrt()
    guess = limit / slope
    finite = torch.isfinite(guess)
    fill = float(guess[finite].median()) if bool(finite.any()) else 1.0
    return torch.where(finite, guess, torch.full_like(guess, fill))


class Radius(NamedTuple):
    """Result of :func:`bisect_radius` (float64 arrays, one entry per row)."""

    #: Certified radius: the largest ε tried whose box diagonal was ≤ the limit (0 if none was).
    radius: np.ndarray
    #: Smallest ε tried whose box diagonal exceeded the limit (``inf`` if none did, i.e. radius = max_epsilon).
    upper: np.ndarray
    #: Bound evaluations per row.
    n_evaluations: np.ndarray
    #: With ``probe``: the output box ``(lower, upper)`` at ``probe`` (float arrays ``(n, n_out)``), else ``None``.
    probe_box: tuple[np.ndarray, np.ndarray] | None = None


def bisect_radius(network: nn.Module, x: torch.Tensor | np.ndarray, limit: float | np.ndarray, *,
                  method: str = "crown", rtol: float = DEFAULT_RTOL, min_epsilon: float = MIN_EPSILON,
                  max_epsilon: float = MAX_EPSILON, guess: torch.Tensor | np.ndarray | None = None,
                  probe: float | None = None, reuse_intervals: bool = True) -> Radius:
    """Per-row certified radius of ``network``: the largest L∞ radius ε whose certified output box has
    diagonal ``‖u − l‖₂ ≤ limit``, to relative precision ``rtol``.

    All rows are processed together: each step evaluates the bound once for every unfinished row, with a
    per-row ε. A row first brackets its radius (starting from the radius of its local linearisation,
    stepping by the linear prediction ``ε·limit/diagonal``), then bisects geometrically until
    ``upper ≤ radius·(1 + rtol)``. The reported radius is always an ε at which the bound was evaluated
    and met the limit, so the certificate holds for it whatever the bisection's path; the bound is not
    guaranteed monotone in ε (the adaptive ReLU relaxation), so "largest" holds up to that.

    With ``method="crown"`` the bounds come from :func:`magmap.crown.crown_bounds`, which skips neurons
    whose sign IBP, or the intervals of the row's current upper end (a larger ball), already decide: sound,
    and at least as tight as full CROWN on every neuron it bounds.

    Parameters
    ----------
    network
        Linear/ReLU network (see :func:`magmap.crown.output_bounds`).
    x
        Inputs ``(n, n_features)`` (the network's dtype and device are used).
    limit
        Largest allowed box diagonal, in output units: a scalar or one value per row.
    method
        Bound method (``"crown"``, ``"crown-ibp"``, ``"ibp"``).
    rtol
        Relative precision of the bisection, in [1e-5, 1].
    min_epsilon, max_epsilon
        Search range. Rows whose box exceeds the limit at ``min_epsilon`` get radius 0; rows still within
        it at ``max_epsilon`` get ``max_epsilon`` (and ``upper = inf``).
    guess
        Optional starting radii per row (default: the first-order radius from the Jacobian).
    probe
        Optional ε > 0 evaluated first for every row; its box is returned in ``probe_box``. It is a point
        of the search, so ``radius ≥ probe`` exactly when that box's diagonal is ≤ ``limit``.
    reuse_intervals
        ``False`` runs full CROWN (:func:`~magmap.crown.output_bounds`) at every step instead of
        :func:`~magmap.crown.crown_bounds` with the upper end's intervals (same kind of certificate,
        about 8× slower on a 2000-gene encoder; kept for comparison).

    Returns
    -------
    Radius
        ``radius``, ``upper``, ``n_evaluations`` (and ``probe_box``) per row.
    """
    rtol = _check_rtol(rtol)
    if not (0 < min_epsilon < max_epsilon and math.isfinite(max_epsilon)):
        raise ValueError(f"need 0 < `min_epsilon` < `max_epsilon` < inf, got {min_epsilon} and {max_epsilon}.")
    if probe is not None and not (math.isfinite(probe) and probe > 0):
        raise ValueError(f"`probe` must be a finite ε > 0, got {probe!r}.")
    method = check_choice(method, "method", BOUND_METHODS)
    param = next(network.parameters())
    x = torch.as_tensor(x).to(device=param.device, dtype=param.dtype)
    if x.ndim != 2:
        raise ValueError(f"`x` must have shape (n, n_features), got {tuple(x.shape)}.")
    n = x.shape[0]
    lim = torch.as_tensor(limit, dtype=torch.float64).reshape(-1)
    if lim.numel() not in (1, n) or not bool(torch.isfinite(lim).all()) or bool((lim <= 0).any()):
        raise ValueError("`limit` must be a positive finite number (or one per row) "
                         f"in output units, got {np.asarray(limit)!r}.")
    lim = lim.expand(n).clone()
    lo = torch.zeros(n, dtype=torch.float64)
    hi = torch.full((n,), math.inf, dtype=torch.float64)
    d_lo = torch.zeros(n, dtype=torch.float64)
    d_hi = torch.full((n,), math.inf, dtype=torch.float64)
    evals = torch.zeros(n, dtype=torch.int64)
    box = None
    if n == 0:
        return Radius(lo.numpy(), hi.numpy(), evals.numpy(), None if probe is None else (np.zeros((0, 0)),) * 2)
    bounds = _Bounds(network, x, method, reuse_intervals)
    with torch.no_grad():
        first = torch.as_tensor(guess, dtype=torch.float64).reshape(-1).expand(n).clone() if guess is not None \
            else _first_order_guess(network, x, lim)
        first = first.nan_to_num(nan=1.0).clamp(min_epsilon, max_epsilon)
        e = first.clone() if probe is None else torch.full((n,), float(probe), dtype=torch.float64)
        pending = probe is not None  # the first-order guess is still to try
        active = torch.arange(n)
        for _ in range(_MAX_ITER):
            # evaluate at the ε the network actually sees (its dtype), so the reported radius was verified
            eps = e[active].to(param.dtype)
            e[active] = eps.double()
            lower, upper, inter = bounds(active, eps.to(param.device))
            d = (upper - lower).double().clamp(min=0).pow(2).sum(1).sqrt().cpu()
            if box is None and probe is not None:
                box = (lower.detach().cpu().numpy(), upper.detach().cpu().numpy())
            evals[active] += 1
            ok = d <= lim[active]
            bounds.keep(active, inter, ~ok)
            lo[active[ok]], d_lo[active[ok]] = e[active[ok]], d[ok]
            hi[active[~ok]], d_hi[active[~ok]] = e[active[~ok]], d[~ok]
            a_lo, a_hi, a_lim = lo[active], hi[active], lim[active]
            bracketed = (a_lo > 0) & torch.isfinite(a_hi)
            # (the ends are compared with a little slack: they went through the network's dtype)
            done = (bracketed & (a_hi <= a_lo * (1 + rtol))) \
                | ((a_lo == 0) & (a_hi <= min_epsilon * (1 + 1e-6))) | (a_lo >= max_epsilon * (1 - 1e-6))
            nxt = torch.sqrt(a_lo * a_hi)
            only_lo = (a_lo > 0) & ~torch.isfinite(a_hi)
            only_hi = (a_lo == 0) & torch.isfinite(a_hi)
            grow = (a_lim / d_lo[active] * 1.02).nan_to_num(posinf=_MAX_STEP).clamp(_MIN_STEP, _MAX_STEP)
            shrink = (a_lim / d_hi[active] / 1.02).clamp(1 / _MAX_STEP, 1 / _MIN_STEP)
            nxt = torch.where(only_lo, (a_lo * grow).clamp(max=max_epsilon), nxt)
            nxt = torch.where(only_hi, (a_hi * shrink).clamp(min=min_epsilon), nxt)
            if pending:  # after the probe, try the first-order radius where it lies inside the bracket
                g = first[active]
                nxt = torch.where((g > a_lo * (1 + rtol)) & (g < a_hi / (1 + rtol)), g, nxt)
                pending = False
            e[active] = nxt
            active = active[~done]
            if not active.numel():
                break
        else:
            logger.warning("certified radius: %d rows did not reach rtol=%g in %d steps; their radius is the "
                           "last verified ε", active.numel(), rtol, _MAX_ITER)
    return Radius(lo.numpy(), hi.numpy(), evals.numpy(), box)


def _check_rtol(rtol: float) -> float:
    # below ~1e-5 the bisection's ends differ by less than float32 can resolve
    if not (isinstance(rtol, (int, float)) and 1e-5 <= rtol <= 1):
        raise ValueError(f"`rtol` (relative precision of the radius) must be in [1e-5, 1], got {rtol!r}.")
    return float(rtol)


def _check_fraction(fraction: float) -> float:
    if not (isinstance(fraction, (int, float)) and math.isfinite(fraction) and fraction > 0):
        raise ValueError("`fraction` (largest box diagonal, as a fraction of the training embedding's "
                         f"diagonal) must be a positive number such as 0.05, got {fraction!r}.")
    return float(fraction)


@dataclass
class Certificate:
    """Certificates of cells: output boxes at ``epsilon`` and (optionally) certified radii.

    For every cell, every input within ``epsilon`` (L∞, in the model's input units: z-scores of the
    training statistics for count models that scale genes, centred normalised expression for those that
    only centre) maps into ``[lower, upper]``; and every input within
    ``radius`` maps into a box whose diagonal is at most ``fraction × diagonal_ref``.

    Attributes
    ----------
    lower, upper
        ``(n_cells, n_components)`` bounds at ``epsilon``.
    area, relative_area
        Box volume ``Π_j (upper_j − lower_j)`` per cell, and that volume over ``area_ref`` (the volume of
        the phase-1 training embedding's bounding box).
    epsilon, method
        Perturbation radius and bound method used.
    diagonal, relative_diagonal
        Box diagonal ``‖upper − lower‖₂`` per cell, and that over ``diagonal_ref``. A cell has
        ``radius ≥ epsilon`` exactly when its ``relative_diagonal ≤ fraction`` (:func:`certify` makes
        ``epsilon`` the first point of the radius search).
    diagonal_ref
        Diagonal of the training embedding's bounding box (the model's unit of extent).
    radius
        Certified radius per cell (``None`` when not computed), in the input units of ``epsilon``.
        0 means the box exceeded the limit already at ``MIN_EPSILON``.
    fraction, rtol
        Limit on the box diagonal (fraction of ``diagonal_ref``) and relative precision of ``radius``.
    """

    lower: np.ndarray
    upper: np.ndarray
    area: np.ndarray
    relative_area: np.ndarray
    epsilon: float
    method: str
    diagonal: np.ndarray = field(default_factory=lambda: np.zeros(0))
    relative_diagonal: np.ndarray = field(default_factory=lambda: np.zeros(0))
    diagonal_ref: float = float("nan")
    radius: np.ndarray | None = None
    fraction: float = DEFAULT_FRACTION
    rtol: float = DEFAULT_RTOL

    def summary(self) -> dict[str, float]:
        """Box sizes at ``epsilon`` (relative area and diagonal: mean, median, 90th percentile; mean side
        per dimension) and, when computed, the radius distribution (median, mean, 10/25/75/90th
        percentiles, number and fraction of cells with radius 0)."""
        if not len(self.lower):
            return {"n_cells": 0, "epsilon": float(self.epsilon)}
        r = self.relative_area
        width = self.upper - self.lower
        out = {"n_cells": int(len(r)), "mean_relative_area": float(r.mean()), "median_relative_area": float(np.median(r)),
               "q90_relative_area": float(np.quantile(r, 0.9)), "mean_area": float(self.area.mean()),
               **{f"mean_width_{j}": float(width[:, j].mean()) for j in range(width.shape[1])},
               "epsilon": float(self.epsilon)}
        if self.relative_diagonal.size:
            q = self.relative_diagonal
            out.update(mean_relative_diagonal=float(q.mean()), median_relative_diagonal=float(np.median(q)),
                       q90_relative_diagonal=float(np.quantile(q, 0.9)), diagonal_ref=float(self.diagonal_ref))
        if self.radius is not None and self.radius.size:
            rad = self.radius
            out.update(radius_median=float(np.median(rad)), radius_mean=float(rad.mean()),
                       **{f"radius_q{int(p * 100)}": float(np.quantile(rad, p)) for p in (0.1, 0.25, 0.75, 0.9)},
                       n_radius_zero=int((rad == 0).sum()), fraction_radius_zero=float((rad == 0).mean()),
                       fraction=float(self.fraction), rtol=float(self.rtol))
        return out


def _setup(model: Any, method: str | None) -> tuple[str, torch.device]:
    model._check_fitted()
    method = check_choice(method or model.bound_method, "method", BOUND_METHODS)
    return method, next(model.encoder_.parameters()).device


def certified_radius(model: Any, X: Any, *, fraction: float = DEFAULT_FRACTION, method: str | None = None,
                     rtol: float = DEFAULT_RTOL, layer: str | None = None, missing_genes: str = "error",
                     batch_size: int = 4096) -> np.ndarray:
    """Certified radius of each cell of ``X`` under ``model`` (see :meth:`RobustUMAP.certified_radius`)."""
    fraction, rtol = _check_fraction(fraction), _check_rtol(rtol)
    method, device = _setup(model, method)
    limit = fraction * reference_diagonal(model)
    parts = [bisect_radius(model.encoder_, torch.from_numpy(Z).to(device), limit, method=method, rtol=rtol).radius
             for Z in model_inputs(model, X, layer, missing_genes, batch_size)]
    return np.concatenate(parts) if parts else np.zeros(0)


def _boxes(network: nn.Module, x: torch.Tensor, eps: float, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Output boxes at one ε (CROWN through :func:`~magmap.crown.crown_bounds`: same bounds, fewer passes)."""
    if method == "crown" and eps > 0:
        res = crown_bounds(network, x, eps)
        lo, up = res.lower, res.upper
    else:
        lo, up = output_bounds(network, x, eps, method=method)
    return lo.float().cpu().numpy(), up.float().cpu().numpy()


def certify(model: Any, X: Any, epsilon: float | None = None, *, radius: bool = True,
            fraction: float = DEFAULT_FRACTION, rtol: float = DEFAULT_RTOL, layer: str | None = None,
            method: str | None = None, missing_genes: str = "error", batch_size: int = 4096) -> Certificate:
    """Boxes at ``epsilon`` and certified radii of the cells ``X`` under ``model`` (see :meth:`RobustUMAP.certify`)."""
    eps = check_number(model.epsilon if epsilon is None else epsilon, "epsilon")  # L∞, model input units
    fraction, rtol = _check_fraction(fraction), _check_rtol(rtol)
    method, device = _setup(model, method)
    diag_ref = reference_diagonal(model)
    lo, up, rad = [], [], []
    with torch.no_grad():
        for Z in model_inputs(model, X, layer, missing_genes, batch_size):
            x = torch.from_numpy(Z).to(device)
            if radius:
                # ε is the search's first point, so radius ≥ ε exactly when the box at ε meets the limit
                res = bisect_radius(model.encoder_, x, fraction * diag_ref, method=method, rtol=rtol,
                                    probe=eps if eps > 0 else None)
                rad.append(res.radius)
                l, u = res.probe_box if eps > 0 else _boxes(model.encoder_, x, eps, method)
            else:
                l, u = _boxes(model.encoder_, x, eps, method)
            lo.append(np.asarray(l, dtype=np.float32))
            up.append(np.asarray(u, dtype=np.float32))
    k = model.encoder_[-1].out_features
    lower = np.concatenate(lo) if lo else np.zeros((0, k), np.float32)
    upper = np.concatenate(up) if up else np.zeros((0, k), np.float32)
    area = bound_area_loss(torch.from_numpy(lower), torch.from_numpy(upper), reduction="none").numpy()
    diag = box_diagonal(lower, upper)
    return Certificate(lower, upper, area, area / max(model.area_ref_, 1e-12), eps, method, diagonal=diag,
                       relative_diagonal=diag / max(diag_ref, 1e-12), diagonal_ref=diag_ref,
                       radius=(np.concatenate(rad) if rad else np.zeros(0)) if radius else None,
                       fraction=fraction, rtol=rtol)
