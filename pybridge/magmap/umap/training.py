"""Training loops: phase 1 (UMAP) and the robust phase (UMAP + certified-box hinge + reconstruction).

Phase 1 follows umap-learn's optimiser, with the encoder in place of free coordinates. One step is one
umap-learn epoch: the edges due in that epoch (an edge of weight ``w`` every ``max(w)/w`` epochs) with
``negative_sample_rate`` uniformly drawn negatives each. The encoder is evaluated **once per cell** per
step, the gradient of the cross-entropy with respect to the embedding is computed in closed form as
umap-learn's SGD does (:func:`~.losses.umap_forces`) and back-propagated through the encoder, which is
updated by Adam. The encoder trained here is a factored copy: a fixed projection on the principal axes
in front and BatchNorm after the hidden layers, folded afterwards into the plain Linear/ReLU network.

The robust phase trains that plain network (first layer on the genes) on random cell batches: the same
UMAP gradient with the frozen phase-1 embedding as the position of the neighbours and negatives (the
way umap-learn's ``transform`` places new points), ``‖z − ẑ‖²`` to the phase-1 embedding ẑ, and a hinge
on the diagonal of each cell's certified output box at the training radius (by default
:func:`hidden_interval_bounds`, a cheap CROWN-IBP variant; certificates are reported with full CROWN):
``mean(max(0, diagonal/D − fraction))`` with D the phase-1 embedding's bounding-box diagonal, so cells
already certified at the training radius cost nothing.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._utils import progress
from ..crown._bounds import _backward, _ibp_pre_activations, _relaxation
from .losses import umap_forces

logger = logging.getLogger("magmap")

__all__ = ["EdgeSchedule", "train_phase1", "train_robust", "hidden_interval_bounds", "TRAINING_BOUNDS"]

#: Bounds the robust phase can train against: ``"crown-ibp-hidden"`` (default, :func:`hidden_interval_bounds`)
#: or any method of :func:`magmap.crown.output_bounds`.
TRAINING_BOUNDS = ("crown-ibp-hidden", "crown-ibp", "crown", "ibp")


@dataclass
class EdgeSchedule:
    """The directed edges of the fuzzy graph and umap-learn's epoch schedule, on the training device.

    ``loss="graph"``: in epoch ``e`` (1-based) the edges with ``⌊e·p⌋ > ⌊(e−1)·p⌋``, ``p = w/max(w)``
    (umap-learn's ``make_epochs_per_sample``), targets 1. ``loss="probability"``: every edge every
    epoch, weighted by its membership (the paper's Eq. 3).
    """

    heads: torch.Tensor
    tails: torch.Tensor
    weights: torch.Tensor
    loss: str = "graph"

    @classmethod
    def build(cls, heads: np.ndarray, tails: np.ndarray, weights: np.ndarray, loss: str,
              device: torch.device) -> "EdgeSchedule":
        return cls(torch.from_numpy(np.asarray(heads, np.int64)).to(device),
                   torch.from_numpy(np.asarray(tails, np.int64)).to(device),
                   torch.from_numpy(np.asarray(weights, np.float32)).to(device), loss)

    def __post_init__(self) -> None:
        self._p = (self.weights.double() / self.weights.max().double()) if self.weights.numel() else self.weights.double()

    def due(self, epoch: int) -> torch.Tensor:
        """Indices of the edges used in ``epoch`` (1-based)."""
        if self.loss == "probability":
            return torch.arange(self.heads.numel(), device=self.heads.device)
        return torch.nonzero(torch.floor(epoch * self._p) > torch.floor((epoch - 1) * self._p)).flatten()


def _adam(params, lr: float) -> torch.optim.Adam:
    # β1 = 0.5: the full-batch gradient changes direction as the layout unfolds; less momentum converged
    # faster and to better neighbourhoods on the benchmark sets (docs/robust_umap.md)
    return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999))


def _check_finite(value: float, desc: str, step: int) -> None:
    if not np.isfinite(value):
        raise FloatingPointError(f"{desc} loss became {value} at step {step}; lower `learning_rate`.")


def train_phase1(
    net: nn.Module, Y: torch.Tensor, edges: EdgeSchedule, *, n_epochs: int, a: float, b: float,
    learning_rate: float, negative_sample_rate: int, repulsion_strength: float, batch_size: int | None,
    generator: torch.Generator, verbose: bool = True, desc: str = "RobustUMAP phase 1",
) -> list[dict]:
    """Phase 1: ``n_epochs`` umap-learn epochs, one Adam step each (or several of at most ``batch_size``
    edges), learning rate decaying linearly to 0 as in umap-learn.

    ``net`` maps the rows of ``Y`` (one per training cell) to the embedding. Each step encodes every cell
    its edges and negatives touch (all cells when that is over half of them) exactly once. Returns the
    per-step history (``loss``: the cross-entropy per positive edge).
    """
    opt = _adam(net.parameters(), learning_rate)
    n = Y.shape[0]
    dev = Y.device
    history: list[dict] = []
    bar = progress(range(1, n_epochs + 1), verbose=verbose, desc=desc, leave=False)
    t0 = time.perf_counter()
    step = 0
    for epoch in bar:
        lr = learning_rate * (1.0 - (epoch - 1) / n_epochs)
        for group in opt.param_groups:
            group["lr"] = lr
        due = edges.due(epoch)
        if due.numel() == 0:
            continue
        if batch_size is not None and due.numel() > batch_size:
            due = due[torch.randperm(due.numel(), generator=generator, device=dev)]
            parts = torch.split(due, batch_size)
        else:
            parts = (due,)
        for part in parts:
            h, t = edges.heads[part], edges.tails[part]
            neg = torch.randint(0, n, (h.numel() * negative_sample_rate,), generator=generator, device=dev)
            rows, (h, t, neg) = _touched(n, h, t, neg)
            z = net(Y if rows is None else Y[rows])
            w = edges.weights[part] if edges.loss == "probability" else None
            with torch.no_grad():
                grad, loss = umap_forces(z.detach(), h, t, neg, a=a, b=b, repulsion_strength=repulsion_strength,
                                         weights=w)
            opt.zero_grad(set_to_none=True)
            z.backward(grad)
            opt.step()
            value = float(loss)
            _check_finite(value, desc, step)
            history.append({"loss": value, "umap": value})
            step += 1
        if verbose:
            bar.set_postfix(loss=f"{history[-1]['loss']:.4f}", refresh=False)
    logger.info("%s: %d epochs (%d steps) in %.1f s", desc, n_epochs, step, time.perf_counter() - t0)
    return history


def _touched(n: int, *index: torch.Tensor) -> tuple[torch.Tensor | None, tuple[torch.Tensor, ...]]:
    """Rows touched by the index tensors, and the indices renumbered into them; ``None`` (no renumbering)
    when they cover over half of the ``n`` rows (encoding all rows is then cheaper than gathering)."""
    mask = torch.zeros(n, dtype=torch.bool, device=index[0].device)
    for ix in index:
        mask[ix] = True
    if int(mask.sum()) * 2 > n:
        return None, index
    rows = torch.nonzero(mask).flatten()
    pos = torch.full((n,), -1, dtype=torch.int64, device=mask.device)
    pos[rows] = torch.arange(rows.numel(), device=mask.device)
    return rows, tuple(pos[ix] for ix in index)


def hidden_interval_bounds(net: nn.Sequential, x: torch.Tensor, epsilon: float, *,
                           first_output: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Certified output bounds for the L∞ ball of radius ``epsilon`` around each row of ``x``: the exact
    interval of every first-layer pre-activation (``h ± ε‖W₁ᵣ‖₁``), then CROWN-IBP on the rest of the
    network from that box.

    Sound (the box contains the image of the ball) and looser than CROWN-IBP, whose last backward pass
    reaches the input (``ε‖ΛW₁‖₁`` instead of ``ε|Λ|·‖W₁ᵣ‖₁``); but it costs no pass over the genes per
    cell, so the robust phase can bound more cells per step. Differentiable in the weights.
    ``first_output``: ``net[0](x)`` when the caller has it already (the training step's forward pass).
    ``net`` alternates ``Linear`` and ``ReLU`` and ends in a ``Linear`` (the encoders trained here).
    """
    linears = [m for m in net if isinstance(m, nn.Linear)]
    if len(linears) < 2:
        raise ValueError("hidden_interval_bounds needs an encoder with at least one hidden layer.")
    first = linears[0]
    h = first(x) if first_output is None else first_output
    radius = epsilon * first.weight.abs().sum(dim=1)
    lo, hi = h - radius, h + radius
    # CROWN from the output down to the first layer's box, on IBP intervals (CROWN-IBP's relaxations)
    upper_layers = [(lin.weight, lin.bias) for lin in linears[1:]]
    pre, _ = _ibp_pre_activations(torch.relu(lo), torch.relu(hi), upper_layers)
    relax = [_relaxation(lo_k, hi_k) for lo_k, hi_k in [(lo, hi), *pre]]
    return _backward(*upper_layers[-1], [(None, None), *upper_layers[:-1]], relax, h, radius)


def train_robust(
    net: nn.Sequential, X: torch.Tensor, edges: EdgeSchedule, targets: torch.Tensor, *, n_epochs: int,
    epsilon: float, weight: float, fraction: float, diagonal: float, bounds: Callable, cells: int,
    bound_cells: int, recon_weight: float, a: float, b: float, learning_rate: float, negative_sample_rate: int,
    repulsion_strength: float, generator: torch.Generator, verbose: bool = True,
    desc: str = "RobustUMAP robust phase", stop: Callable[[nn.Module], bool] | None = None,
    check_from: int | None = None, check_every: int = 10, max_epochs: int | None = None,
) -> list[dict]:
    """The robust phase: ``n_epochs`` Adam steps (or, with ``stop``, until ``stop`` says the target is
    met), each on ``cells`` random training cells.

    Loss per step: the anchored UMAP gradient of the batch (neighbours and negatives at ``targets``),
    ``recon_weight · mean ‖z − ẑ‖²`` and ``weight · mean(max(0, diag/diagonal − fraction))`` over the
    certified boxes (``bounds(net, x, eps) → (lower, upper)``) of the first ``bound_cells`` cells of the
    batch. The radius ramps linearly from 0 to ``epsilon`` over the first half of the phase (the usual
    schedule of certified training: the bound loss starts small instead of dominating).

    ``stop(net) → bool`` (optional) is asked after ``check_from`` steps (default ``n_epochs``) and every
    ``check_every`` steps after that; the phase ends when it answers ``True``, or after ``max_epochs``
    steps (default ``n_epochs``). Past ``n_epochs`` the learning rate stays at its final value and the
    hinge weight grows as ``weight · step / n_epochs``: a hinge that has not converged by then gets
    steadily more say over the reconstruction term.
    Returns the per-step history: ``loss`` (total), ``umap``, ``recon``, ``bound``, ``epsilon``, ``weight``.
    """
    opt = _adam(net.parameters(), learning_rate)
    n = X.shape[0]
    dev = X.device
    m = min(cells, n)
    nb = min(bound_cells, m)
    history: list[dict] = []
    last = n_epochs if stop is None or max_epochs is None else max_epochs
    first_check = n_epochs if check_from is None else check_from
    bar = progress(range(1, last + 1), verbose=verbose, desc=desc, leave=False)
    ramp = max(1, n_epochs // 2)
    reuse_first = bounds is hidden_interval_bounds
    t0 = time.perf_counter()
    for epoch in bar:
        if stop is not None and epoch > first_check and (epoch - 1 - first_check) % check_every == 0:
            with torch.no_grad():
                if stop(net):
                    break
        for group in opt.param_groups:
            group["lr"] = learning_rate * (1.0 - 0.5 * min(1.0, (epoch - 1) / n_epochs))
        batch = torch.randperm(n, generator=generator, device=dev)[:m]
        pos = torch.full((n,), -1, dtype=torch.int64, device=dev)
        pos[batch] = torch.arange(m, device=dev)
        due = edges.due(epoch)
        due = due[pos[edges.heads[due]] >= 0]
        h, t = pos[edges.heads[due]], edges.tails[due]
        neg = torch.randint(0, n, (h.numel() * negative_sample_rate,), generator=generator, device=dev)
        xb = X[batch]
        if reuse_first:  # the bounded cells lead the batch: reuse their first-layer output
            h1 = net[0](xb)
            z = net[1:](h1)
        else:
            z = net(xb)
        w = edges.weights[due] if edges.loss == "probability" else None
        with torch.no_grad():
            grad, l_umap = umap_forces(z.detach(), h, t, neg, a=a, b=b, repulsion_strength=repulsion_strength,
                                       weights=w, other=targets)
        recon = ((z - targets[batch]) ** 2).sum(dim=1).mean()
        eps = epsilon * min(1.0, epoch / ramp)
        if reuse_first:
            lower, upper = bounds(net, xb[:nb], eps, first_output=h1[:nb])
        else:
            lower, upper = bounds(net, xb[:nb], eps)
        diag = ((upper - lower) ** 2).sum(dim=1).add(1e-12).sqrt() / diagonal
        l_bound = torch.relu(diag - fraction).mean()
        w_bound = weight * max(1.0, epoch / n_epochs)
        total = w_bound * l_bound + recon_weight * recon
        opt.zero_grad(set_to_none=True)
        (total + (z * grad).sum()).backward()
        opt.step()
        rec = {"umap": float(l_umap), "recon": float(recon.detach()), "bound": float(l_bound.detach()), "epsilon": eps,
               "weight": w_bound}
        rec["loss"] = rec["umap"] + recon_weight * rec["recon"] + w_bound * rec["bound"]
        _check_finite(rec["loss"], desc, epoch - 1)
        history.append(rec)
        if verbose:
            bar.set_postfix(loss=f"{rec['loss']:.4f}", bound=f"{rec['bound']:.4f}", recon=f"{rec['recon']:.4f}",
                            refresh=False)
    logger.info("%s: %d steps in %.1f s", desc, len(history), time.perf_counter() - t0)
    return history
