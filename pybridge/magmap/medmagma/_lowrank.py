"""MED-MAGMA for many cells: the EM of ``_em.py`` with the cell precision kept as
``Ψ₁ = λ₀I + V Diag(δ) Vᵀ`` (V: cells × r, r ≤ genes + 1), so that nothing cells × cells is formed.

Why this is the same model fit, and where it approximates: ``docs/medmagma.md`` ("Many cells").
In short: the cell statistic has rank ≤ genes (+1 with the Laplace term), the M-step gives every
direction outside its range one shared eigenvalue λ₀, and every product with Ψ₁ or with the cell
half's Q̃₁ goes through the factors in O(cells·genes·r). Memory O(cells·genes).
"""
from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np
import torch

from .._utils import progress
from ._accel import Anderson
from ._backend import DTYPE, eigh
from ._em import EMResult, EMSettings, Stopper, mix_scalings, scaling_change, solve_mstep, z_target
from .estep import _solve_diagonal, solve_product_one

logger = logging.getLogger("magmap")

__all__ = ["CellQuadratic", "em_lowrank", "laplace_lowrank", "FactoredCells"]


class FactoredCells:
    """Ψ₁ = λ₀I + V Diag(λ_V − λ₀) Vᵀ with orthonormal V (n × r); r = 0 is λ₀I."""

    def __init__(self, lam0: float, v: torch.Tensor, lamv: torch.Tensor) -> None:
        self.lam0, self.v, self.lamv = float(lam0), v, lamv

    @property
    def delta(self) -> torch.Tensor:
        return self.lamv - self.lam0

    def frob_sq(self) -> float:
        """‖Ψ₁‖²_F = nλ₀² + Σ(λ_V² − λ₀²)."""
        n = self.v.shape[0]
        return n * self.lam0**2 + float((self.lamv**2).sum()) - self.v.shape[1] * self.lam0**2

    def dist_sq(self, old: FactoredCells) -> float:
        """‖Ψ₁ − Ψ₁_old‖²_F through the r × r overlap VᵀV_old (O(n·r²), no n × n matrix)."""
        n = self.v.shape[0]
        d0 = self.lam0 - old.lam0
        a, b = self.delta, -old.delta
        cross = self.v.T @ old.v if old.v.shape[1] and self.v.shape[1] else None
        low = float((a * a).sum() + (b * b).sum())
        if cross is not None:
            low += 2.0 * float(((a[:, None] * cross) * (cross * b[None, :])).sum())
        return n * d0 * d0 + 2.0 * d0 * float(a.sum() + b.sum()) + low

    def diagonal(self) -> torch.Tensor:
        return self.lam0 + (self.v * self.v) @ self.delta


class CellQuadratic:
    """The cell half's ``Q̃₁ = Ψ₁∘(WWᵀ) + Diag(diag(WΨ₂Wᵀ))``, ``W = Y Diag(s₂)``, as an operator.

    ``Q̃₁x = a∘x + rowsum(V Diag(δ) ∘ W Mᵀ)`` with ``M = Vᵀ Diag(x) W`` (r × genes): two products of
    O(n·genes·r) per application, O(n·genes) memory.
    """

    def __init__(self, y: torch.Tensor, s2: torch.Tensor, psi1: FactoredCells, psi2: torch.Tensor) -> None:
        self.w = y * s2[None, :]
        wsq = (self.w * self.w).sum(1)
        self.base = psi1.lam0 * wsq + ((self.w @ psi2) * self.w).sum(1)
        self.v = psi1.v
        self.vd = psi1.v * psi1.delta
        self._diag = self.base + ((self.v * self.v) @ psi1.delta) * wsq if self.v.shape[1] else self.base
        n = y.shape[0]
        self.shape, self.dtype, self.device = (n, n), y.dtype, y.device
        self.products = 0

    def __matmul__(self, x: torch.Tensor) -> torch.Tensor:
        self.products += 1
        out = self.base * x
        if self.v.shape[1]:
            m = self.v.T @ (x[:, None] * self.w)
            out = out + (self.vd * (self.w @ m.T)).sum(1)
        return out

    def diagonal(self) -> torch.Tensor:
        return self._diag


def _genes_quadratic(y: torch.Tensor, s1: torch.Tensor, psi1: FactoredCells, psi2: torch.Tensor,
                     gram: torch.Tensor | None) -> torch.Tensor:
    """The genes half's ``Q̃₂ = Ψ₂∘(Yᵀ Diag(s₁²) Y) + Diag(diag(W'Ψ₁W'ᵀ))`` (genes × genes, dense)."""
    ws = y * s1[:, None]
    if gram is None:
        gram = ws.T @ ws
    h = psi1.lam0 * (ws * ws).sum(0)
    if psi1.v.shape[1]:
        b = psi1.v.T @ ws
        h = h + (psi1.delta[:, None] * b * b).sum(0)
    q = psi2 * gram
    q.diagonal().add_(h)
    return q


def _flipflop(y: torch.Tensor, psi1: FactoredCells, psi2: torch.Tensor, s1: torch.Tensor, s2: torch.Tensor,
              cfg: EMSettings, gram2: torch.Tensor | None) -> dict[str, Any]:
    """Warm-started flip-flop (genes half, then cells half), as ``estep.flipflop`` in fast mode."""
    s1_in = s1
    s1 = s1 / torch.exp(torch.log(s1).mean())
    s2 = s2 / torch.exp(torch.log(s2).mean())
    diagonal = (not cfg.scaling_prior and psi1.v.shape[1] == 0
                and int(torch.count_nonzero(psi2 - torch.diag(psi2.diagonal()))) == 0)
    g2 = None if gram2 is None else gram2 * float((s1 @ s1) / (s1_in @ s1_in))
    steps = products = rounds = 0
    converged = False
    for rounds in range(1, cfg.max_flipflop + 1):
        new2 = new1 = None
        if diagonal:
            w2 = (y * s1[:, None]) ** 2
            new2 = _solve_diagonal(psi2.diagonal() * w2.sum(0) + psi1.lam0 * w2.sum(0))
            n2 = 0
        if new2 is None:
            new2, n2 = solve_product_one(_genes_quadratic(y, s1, psi1, psi2, g2), torch.log(s2),
                                         prior=cfg.scaling_prior)
        g2 = None
        if diagonal:
            w1 = (y * new2[None, :]) ** 2
            new1 = _solve_diagonal(psi1.lam0 * w1.sum(1) + w1 @ psi2.diagonal())
            n1 = 0
        if new1 is None:
            op = CellQuadratic(y, new2, psi1, psi2)
            new1, n1 = solve_product_one(op, torch.log(s1), method="cg", prior=cfg.scaling_prior)
            products += op.products
        steps += n1 + n2
        done = float((new1 - s1).abs().sum()) < cfg.flipflop_tol and float((new2 - s2).abs().sum()) < cfg.flipflop_tol
        s1, s2 = new1, new2
        if done:
            converged = True
            break
    s1n = s1 / torch.linalg.norm(s1)
    s2n = s2 / torch.linalg.norm(s2)
    ws = y * s1n[:, None]
    return {"s1": s1n, "s2": s2n, "gram2": ws.T @ ws, "rounds": rounds, "newton_steps": steps,
            "cell_products": products, "converged": converged}


def laplace_lowrank(psi1: FactoredCells, u2: torch.Tensor, lam2: torch.Tensor
                    ) -> tuple[float, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The Laplace terms of ``estep.laplace_correction`` with Ψ₁ in factored form.

    Returns ``c, kappa, L, K, e2`` with ``E[TTᵀ] = c·I + V Diag(kappa) Vᵀ + L K Lᵀ`` (n × n, never
    formed; L is n × 7) and ``E[TᵀT] = e2`` (genes × genes). Same Woodbury solve as the dense code:
    ``A = d₂Ψ₁ + (1ᵀΨ₂1)I`` has eigenvalue ``a₀`` outside V, so ``A⁻¹`` is ``I/a₀`` plus a rank-r term.
    """
    v, lam0, lamv = psi1.v, psi1.lam0, psi1.lamv
    n, r = v.shape
    p = u2.shape[0]
    dt, dev = v.dtype, v.device
    one1 = torch.ones(n, dtype=dt, device=dev)
    one2 = torch.ones(p, dtype=dt, device=dev)
    delta = lamv - lam0
    vt1 = v.T @ one1
    p1 = lam0 * one1 + v @ (delta * vt1)  # Ψ₁1
    sum1 = lam0 * n + float(delta @ (vt1 * vt1))
    p2 = u2 @ (lam2 * (u2.T @ one2))
    sum2 = float(one2 @ p2)
    a_v = p * lamv + sum2
    a0 = p * lam0 + sum2
    b = n * lam2 + sum1
    amax = max(float(a_v.abs().max()) if r else 0.0, abs(a0))
    amin = min(float(a_v.abs().min()) if r else abs(a0), abs(a0))
    if amin <= 1e-12 * amax or float(b.abs().min()) <= 1e-12 * float(b.abs().max()):
        raise FloatingPointError("MED-MAGMA (many-cells path): the Laplace term's Hessian is singular; "
                                 "refit with laplace_weight=0 or solver='dense'.")
    gamma = (float(a_v.abs().sum()) + (n - r) * abs(a0) + float(b.abs().sum())) / (n + p)
    inv_gap = 1.0 / a_v - 1.0 / a0

    def ainv(x: torch.Tensor) -> torch.Tensor:
        return x / a0 + v @ (inv_gap[:, None] * (v.T @ x))

    z1 = torch.zeros(n, dtype=dt, device=dev)
    z2 = torch.zeros(p, dtype=dt, device=dev)
    w_a = torch.stack([p1, one1, z1, z1, one1], dim=1)
    w_b = torch.stack([z2, z2, one2, p2, -one2], dim=1)
    xa = ainv(w_a)
    xb = u2 @ ((u2.T @ w_b) / b[:, None])
    k_inv = torch.zeros(5, 5, dtype=dt, device=dev)
    k_inv[0, 2] = k_inv[2, 0] = k_inv[1, 3] = k_inv[3, 1] = 1.0
    k_inv[4, 4] = 1.0 / gamma
    m = torch.linalg.inv(k_inv + w_a.T @ xa + w_b.T @ xb)
    sig1 = -(xa @ (m @ (xb.T @ one2)))
    sig2 = -(xb @ (m.T @ (xa.T @ one1)))
    tr_aa = (n - r) / a0 + float((1.0 / a_v).sum()) - float(((xa @ m) * xa).sum())
    tr_bb = float((1.0 / b).sum() - ((xb @ m) * xb).sum())
    ks = []
    for scale, tr in ((p, tr_bb), (n, tr_aa)):
        k = torch.zeros(7, 7, dtype=dt, device=dev)
        k[:5, :5] = -scale * m
        k[5, 6] = k[6, 5] = 1.0
        k[6, 6] = tr
        ks.append(k)
    l1 = torch.cat([xa, sig1[:, None], one1[:, None]], dim=1)
    l2 = torch.cat([xb, sig2[:, None], one2[:, None]], dim=1)
    e2 = torch.addmm(l2 @ (ks[1] @ l2.T), u2 / b, u2.T, alpha=n)
    return p / a0, p * inv_gap, l1, ks[0], e2


def em_lowrank(y: torch.Tensor, s1: torch.Tensor, s2: torch.Tensor, cfg: EMSettings) -> EMResult:
    """EM on the quotient ``y`` (n × genes, n > genes + 1) with the first axis factored.

    The statistic of the first axis is kept in the basis ``Q`` of span[z*] (and the all-ones vector
    when the Laplace term is on); everything orthogonal to it shares one eigenvalue.
    """
    n, p = y.shape
    dev = y.device
    target = z_target(cfg, y)
    psi1 = FactoredCells(1.0, torch.zeros(n, 0, dtype=DTYPE, device=dev), torch.zeros(0, dtype=DTYPE, device=dev))
    u2 = torch.eye(p, dtype=DTYPE, device=dev)
    lam2 = torch.ones(p, dtype=DTYPE, device=dev)
    psi2 = u2.clone()
    lam1_prev: torch.Tensor | None = None
    out = EMResult(psi1, psi2, torch.ones(1, dtype=DTYPE, device=dev), lam2, s1, s2, z_target=target)
    stop = Stopper(cfg)
    accel = Anderson() if cfg.accelerate else None
    gram2 = None
    bar = progress(range(cfg.max_iter), verbose=cfg.verbose, desc="MED-MAGMA EM (many cells)", leave=False)
    for it in bar:
        t0 = time.perf_counter()
        ff = _flipflop(y, psi1, psi2, s1, s2, cfg, gram2)
        s_change = max(scaling_change(s1, ff["s1"]), scaling_change(s2, ff["s2"]))
        if accel is not None and it > 0:
            s1, s2 = mix_scalings(accel, s1, s2, ff["s1"], ff["s2"])
            gram2 = None
        else:
            s1, s2, gram2 = ff["s1"], ff["s2"], ff["gram2"]
        z = y * s1[:, None] * s2[None, :]
        zsq = float((z * z).sum())
        zfac = target / zsq if (target is not None and zsq > 0) else 1.0
        if zfac != 1.0:
            z.mul_(math.sqrt(zfac))
        laplace = cfg.laplace_weight > 0 and it > 0
        basis_in = torch.cat([z, torch.ones(n, 1, dtype=DTYPE, device=dev)], dim=1) if laplace else z
        q, rq = torch.linalg.qr(basis_in)
        del basis_in
        rz = rq[:, :p]
        stat1 = rz @ rz.T
        stat2 = rz.T @ rz
        e0 = 0.0
        if laplace:
            w = cfg.laplace_weight
            c, kappa, l1, k1, e2_lap = laplace_lowrank(psi1, u2, lam2)
            qv = q.T @ psi1.v
            ql = q.T @ l1
            stat1.sub_((qv * kappa) @ qv.T + ql @ (k1 @ ql.T), alpha=w)
            stat1.diagonal().sub_(w * c)
            stat2.sub_(e2_lap, alpha=w)
            e0 = -w * c
        e_top, rot = eigh(stat1)
        e2, v2 = eigh(stat2)
        k = q.shape[1]
        e1 = torch.cat([e_top, torch.tensor([e0], dtype=DTYPE, device=dev)])
        weights = torch.cat([torch.ones(k, dtype=DTYPE, device=dev), torch.tensor([float(n - k)], dtype=DTYPE, device=dev)])
        if lam1_prev is None:  # as the dense loop: start from λ = 1
            lam1_prev = torch.ones(k + 1, dtype=DTYPE, device=dev)
        elif lam1_prev.shape[0] < k + 1:  # the all-ones direction joined the basis: start it at λ₀
            extra = lam1_prev[-1].repeat(k + 1 - lam1_prev.shape[0])
            lam1_prev = torch.cat([extra, lam1_prev])
        new1, new2, m_it = solve_mstep(e1, e2, lam1_prev, lam2, cfg, weights1=weights)
        new_psi1 = FactoredCells(float(new1[-1]), q @ rot, new1[:-1])
        del q
        p2 = (v2 * new2) @ v2.T
        dn1 = math.sqrt(max(new_psi1.dist_sq(psi1), 0.0))
        dn2 = float(torch.linalg.norm(p2 - psi2))
        delta = math.sqrt(dn1**2 / n**2 + dn2**2 / p**2)
        rel = math.sqrt(dn1**2 / new_psi1.frob_sq() + (dn2 / float(torch.linalg.norm(p2))) ** 2)
        psi1, psi2, u2, lam2, lam1_prev = new_psi1, p2, v2, new2, new1
        emax = max(float(e_top.abs().max()), abs(e0))
        out.neg_stat = int((e_top < -1e-9 * emax).sum()) + (n - k if e0 < -1e-9 * emax else 0)
        record = {"iteration": it + 1, "delta": delta, "rel_change": rel, "flipflop_rounds": ff["rounds"],
                  "flipflop_converged": ff["converged"], "newton_steps": ff["newton_steps"],
                  "cell_products": ff["cell_products"], "mstep_iter": int(m_it),
                  "n_negative_eigs": (int((e_top < 0).sum()) + (n - k if e0 < 0 else 0), int((e2 < 0).sum())),
                  "z_scale_factor": zfac}
        done = stop.done(delta, rel, ff["converged"], record, s_change)
        record["seconds"] = time.perf_counter() - t0
        out.history.append(record)
        logger.debug("MED-MAGMA (many cells) iteration %d: rel %.3g, %d cell products", it + 1, rel,
                     ff["cell_products"])
        if done:
            out.converged = True
            break
    bar.close()
    lam_all = torch.cat([psi1.lamv, torch.full((n - psi1.v.shape[1],), psi1.lam0, dtype=DTYPE, device=dev)])
    out.psi1, out.psi2, out.lam1, out.lam2, out.s1, out.s2 = psi1, psi2, lam_all, lam2, s1, s2
    return out


def to_numpy_factors(psi1: FactoredCells) -> tuple[float, np.ndarray, np.ndarray]:
    """λ₀, V and δ as NumPy arrays (for :class:`~magmap.medmagma.LowRankPrecision`)."""
    return psi1.lam0, psi1.v.cpu().numpy(), psi1.delta.cpu().numpy()
