"""Training loops: phase 1 (UMAP loss) and the robust phase (UMAP + λ·bound area + reconstruction).

Sampling (``pumap_spec.md`` §2.2): one *epoch* is one pass over the pruned directed edge list in a
seeded random order, ``batch_size`` edges per optimiser step. Each step encodes only the unique cells
touched by the batch, so large edge batches on small data cost about one forward/backward pass of the
data. Negatives are permutations of the batch's tails (``losses.umap_loss``).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._utils import progress
from ..crown import bound_area_loss
from .losses import umap_loss

logger = logging.getLogger("magmap")

__all__ = ["EdgeSampler", "train_umap"]


@dataclass
class EdgeSampler:
    """Seeded epoch-wise edge batches (without replacement inside an epoch)."""

    heads: np.ndarray
    tails: np.ndarray
    weights: np.ndarray
    batch_size: int
    rng: np.random.Generator

    def __post_init__(self) -> None:
        self._order = np.empty(0, dtype=np.int64)
        self._pos = 0

    @property
    def n_edges(self) -> int:
        return int(self.heads.size)

    def steps_per_epoch(self) -> int:
        return max(1, int(np.ceil(self.n_edges / self.batch_size)))

    def next(self) -> np.ndarray:
        if self._pos >= self._order.size:
            self._order = self.rng.permutation(self.n_edges)
            self._pos = 0
        sel = self._order[self._pos:self._pos + self.batch_size]
        self._pos += self.batch_size
        return sel


def train_umap(
    net: nn.Sequential, X: torch.Tensor, sampler: EdgeSampler, *, n_steps: int, a: float, b: float,
    loss: str, learning_rate: float, negative_sample_rate: int, repulsion_strength: float,
    generator: torch.Generator, verbose: bool = True, desc: str = "UMAP",
    robust: dict | None = None, clip_value: float | None = 4.0,
) -> list[dict]:
    """Run ``n_steps`` Adam steps of the UMAP loss, optionally with the robust-phase terms.

    ``robust`` (phase 2) holds: ``targets`` (frozen phase-1 embedding of every training cell, tensor),
    ``epsilon``, ``lam`` (λ = λ₀ / A_ref), ``bounds`` (callable ``(net, x, eps) → (l, u)``),
    ``n_cells`` (cells per step for the bound loss), ``rng`` (numpy Generator), ``recon_weight``.
    Returns the per-step history (``loss``, ``umap``, and in phase 2 ``bound``, ``recon``, ``area``).
    """
    opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
    dev = X.device
    w_all = torch.from_numpy(sampler.weights).to(dev)
    history: list[dict] = []
    bar = progress(range(n_steps), verbose=verbose, desc=desc, leave=False)
    t0 = time.perf_counter()
    for step in bar:
        sel = sampler.next()
        h, t = sampler.heads[sel], sampler.tails[sel]
        cells, inv = np.unique(np.concatenate([h, t]), return_inverse=True)
        cells_t = torch.from_numpy(cells).to(dev)
        z = net(X[cells_t])
        inv_t = torch.from_numpy(inv).to(dev)
        B = h.size
        l_umap = umap_loss(z[inv_t[:B]], z[inv_t[B:]], w_all[torch.from_numpy(sel).to(dev)], a=a, b=b, loss=loss,
                           negative_sample_rate=negative_sample_rate, repulsion_strength=repulsion_strength,
                           generator=generator)
        total = l_umap
        rec = {"loss": 0.0, "umap": float(l_umap.detach())}
        if robust is not None:
            recon = ((z - robust["targets"][cells_t]) ** 2).sum(dim=1).mean()
            n_b = min(robust["n_cells"], cells.size)
            bcells = torch.from_numpy(np.sort(robust["rng"].choice(cells, n_b, replace=False))).to(dev)
            lo, up = robust["bounds"](net, X[bcells], robust["epsilon"])
            area = bound_area_loss(lo, up)
            l_bound = robust["lam"] * area
            total = total + l_bound + robust["recon_weight"] * recon
            rec.update(bound=float(l_bound.detach()), recon=float(recon.detach()), area=float(area.detach()))
        opt.zero_grad(set_to_none=True)
        total.backward()
        if clip_value is not None:
            nn.utils.clip_grad_value_(net.parameters(), clip_value)
        opt.step()
        rec["loss"] = float(total.detach())
        history.append(rec)
        if not np.isfinite(rec["loss"]):
            raise FloatingPointError(f"{desc} loss became {rec['loss']} at step {step}; lower `learning_rate`.")
        if verbose and step % 50 == 0:
            bar.set_postfix(loss=f"{rec['loss']:.4f}")
    logger.info("%s: %d steps in %.1f s", desc, n_steps, time.perf_counter() - t0)
    return history
