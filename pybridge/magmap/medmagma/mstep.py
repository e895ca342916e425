"""M-step: the Kronecker-sum (GmGM) MLE on eigenvalues.

Given E-step statistics S_ℓ = U_ℓ Diag(e_ℓ) U_ℓᵀ, the maximiser Ψ_ℓ = U_ℓ Diag(λ_ℓ) U_ℓᵀ minimises

    F(λ) = Σ_ℓ e_ℓᵀλ_ℓ − Σ_ij log(λ₁ᵢ + λ₂ⱼ) + ρ Σ_ℓ ‖λ_ℓ‖².

F is invariant along the gauge direction n = (1, −1) up to the linear term (Σe₁ − Σe₂)·t, so the
diagonal split between the axes is fixed here by keeping nᵀλ at its starting value (Σλ₁ = Σλ₂ when
starting from a balanced point).

* :func:`mstep_newton` — truncated Newton (projected, Jacobi-preconditioned CG with Hessian–vector
  products on the d₁×d₂ grid, O(d₁d₂) per product), warm-started, solved to convergence.
* :func:`mstep_reference` — the reference's fixed gradient kernel (1000 steps, clip to
  [1e-6, 1e6], non-growing step), vectorised, for ``mode="reference"``.
"""
from __future__ import annotations

import logging

import torch

logger = logging.getLogger("magmap")

__all__ = ["gmgm_objective", "mstep_newton", "mstep_reference"]


def gmgm_objective(e1, e2, lam1, lam2, rho: float = 0.0, center: float = 0.0, weights1=None) -> float:
    """F(λ) above with the ridge ρ‖λ − center‖²; ``inf`` outside the domain λ₁ᵢ + λ₂ⱼ > 0.
    ``weights1``: multiplicity of each first-axis eigenvalue (a repeated eigenvalue stored once)."""
    grid = lam1[:, None] + lam2[None, :]
    if float(grid.min()) <= 0:
        return float("inf")
    if weights1 is None:
        out = e1 @ lam1 + e2 @ lam2 - torch.log(grid).sum()
        if rho:
            out = out + rho * (((lam1 - center) ** 2).sum() + ((lam2 - center) ** 2).sum())
        return float(out)
    w = weights1
    out = (w * e1) @ lam1 + e2 @ lam2 - w @ torch.log(grid).sum(1)
    if rho:
        out = out + rho * (w @ (lam1 - center) ** 2 + ((lam2 - center) ** 2).sum())
    return float(out)


def mstep_newton(
    e1: torch.Tensor,
    e2: torch.Tensor,
    lam1: torch.Tensor | None = None,
    lam2: torch.Tensor | None = None,
    *,
    rho: float = 0.0,
    center: float = 0.0,
    tol: float = 1e-15,
    max_iter: int = 200,
    max_cg: int = 200,
    weights1: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, int, bool]:
    """Minimise F by Newton's method on the gauge-fixed plane nᵀλ = nᵀλ₀.

    Parameters
    ----------
    e1, e2
        Eigenvalues of S_cells and S_genes. For a bounded problem they must be positive (or ρ > 0);
        the caller floors them (see :class:`~magmap.MedMagma`).
    lam1, lam2
        Warm start; default: the balanced constant start λ = d/(2·mean(e)) per axis scale, which is
        the exact solution for S ∝ I.
    rho, center
        Ridge penalty ρ‖λ − center‖² (per axis). With ρ > 0 the problem is strongly convex (bounded
        also when some e ≤ 0) and the gauge is fixed by the penalty, so no plane constraint is used.
    tol
        Stop when the Newton decrement ½·gᵀH⁻¹g falls below ``tol·d₁d₂``.
    max_iter, max_cg
        Newton iterations and CG iterations per Newton step.
    weights1
        Multiplicities of the first axis's eigenvalues: ``e1[i]`` stands for ``weights1[i]`` equal
        eigenvalues, which share one λ (a strictly convex problem gives equal eigenvalues equal λ).
        This is how a cell statistic of rank ≤ genes is solved with O(genes²) work.

    Returns
    -------
    lam1, lam2, n_iter, converged
    """
    d1, d2 = e1.shape[0], e2.shape[0]
    w = torch.ones_like(e1) if weights1 is None else weights1
    n1 = float(w.sum())
    if lam1 is None or lam2 is None:
        scale = float(((w * e1).sum() + e2.sum()) / (n1 + d2))
        c = max(n1, d2) / (2.0 * scale) if scale > 0 else 1.0
        lam1 = torch.full_like(e1, c)
        lam2 = torch.full_like(e2, c)
    lam1, lam2 = lam1.clone(), lam2.clone()
    # Make the start feasible (λ₁ᵢ + λ₂ⱼ > 0) without touching nᵀλ more than needed.
    low = float(lam1.min() + lam2.min())
    if low <= 0:
        shift = -low + 1e-8 + 1e-3 * float(lam1.abs().mean() + lam2.abs().mean())
        lam1 += shift / 2
        lam2 += shift / 2
    n = torch.cat([torch.ones_like(e1), -torch.ones_like(e2)]) if rho == 0 else None
    f = gmgm_objective(e1, e2, lam1, lam2, rho, center, weights1)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        m = 1.0 / (lam1[:, None] + lam2[None, :])
        g = torch.cat([w * (e1 - m.sum(1) + 2 * rho * (lam1 - center)),
                       e2 - (m.sum(0) if weights1 is None else w @ m) + 2 * rho * (lam2 - center)])
        m2 = m * m
        m2w = m2 * w[:, None]  # the coupling block of the Hessian in compressed coordinates
        hd = torch.cat([w * (m2.sum(1) + 2 * rho), m2w.sum(0) + 2 * rho])
        step = _projected_pcg(m2w, hd, g, n, d1, max_cg=max_cg)
        dec = -float(g @ step)
        if dec < 0:  # not a descent direction (numerical trouble): fall back to scaled gradient
            step = -(g - n * (n @ (g / hd)) / (n @ (n / hd))) / hd if n is not None else -g / hd
            dec = -float(g @ step)
        if 0.5 * dec <= tol * n1 * d2:
            converged = True
            it -= 1
            break
        t = 1.0
        # Stay strictly inside the domain: cap t so the grid minimum keeps half its margin.
        for _ in range(60):
            t1, t2 = lam1 + t * step[:d1], lam2 + t * step[d1:]
            f_new = gmgm_objective(e1, e2, t1, t2, rho, center, weights1)
            if f_new <= f - 1e-4 * t * dec:
                break
            t *= 0.5
        else:
            converged = True  # no further decrease at working precision
            break
        lam1, lam2, f = t1, t2, f_new
    return lam1, lam2, it, converged


def _projected_pcg(m2, hd, g, n, d1, *, max_cg, rtol=None):
    """Solve H x = −g on {nᵀx = 0} by CG in Jacobi-scaled coordinates (H: diagonal ``hd`` and the
    coupling block ``m2``)."""
    dinv = 1.0 / torch.sqrt(hd)
    if n is None:
        def proj(x):
            return x
    else:
        v = n * dinv
        v = v / torch.linalg.norm(v)

        def proj(x):
            return x - v * (v @ x)

    def hmul(y):
        x = y * dinv
        x1, x2 = x[:d1], x[d1:]
        out = torch.cat([hd[:d1] * x1 + m2 @ x2, m2.T @ x1 + hd[d1:] * x2])
        return proj(out * dinv)

    b = proj(-g * dinv)
    bnorm = float(torch.linalg.norm(b))
    if bnorm == 0:
        return torch.zeros_like(g)
    if rtol is None:
        rtol = min(0.1, bnorm**0.5)
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rr = float(r @ r)
    for _ in range(max_cg):
        hp = hmul(p)
        php = float(p @ hp)
        if php <= 0:
            break
        alpha = rr / php
        x = x + alpha * p
        r = r - alpha * hp
        rr_new = float(r @ r)
        if rr_new**0.5 <= rtol * bnorm * 1e-2:
            break
        p = r + (rr_new / rr) * p
        rr = rr_new
    return proj(x) * dinv


def mstep_reference(
    e1: torch.Tensor,
    e2: torch.Tensor,
    *,
    rho: float = 0.0,
    max_iter: int = 1000,
    tol: float = 1e-5,
    min_eigenvalue: float = 1e-6,
    max_eigenvalue: float = 1e6,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The reference's ``gmgm_kernel``, reproduced step for step for parity.

    Starts from λ = 1; "identifiable gradient" (both axes' gradients given the same total sum);
    backtracking by halving a step size that persists across iterations and never grows (plain
    non-increase test, ≤40 halvings; on failure the step becomes 0); λ clipped to
    [``min_eigenvalue``, ``max_eigenvalue``]; stop when max_ℓ ‖Δλ_ℓ‖₂ < ``tol``.

    Returns
    -------
    lam1, lam2, n_iter
    """
    lam1 = torch.ones_like(e1)
    lam2 = torch.ones_like(e2)
    d1, d2 = e1.shape[0], e2.shape[0]

    def obj(l1, l2):
        out = e1 @ l1 + e2 @ l2 - torch.log(l1[:, None] + l2[None, :]).sum()
        if rho:
            out = out + rho * ((l1**2).sum() + (l2**2).sum())
        return float(out)

    prev = obj(lam1, lam2)
    eta = 1.0
    it = 0
    for it in range(1, max_iter + 1):
        m = 1.0 / (lam1[:, None] + lam2[None, :])
        g1 = e1 - m.sum(1) + 2 * rho * lam1
        g2 = e2 - m.sum(0) + 2 * rho * lam2
        tot = (g1.sum() + g2.sum()) / 2
        g1 = g1 - g1.sum() / d1 + tot / d1
        g2 = g2 - g2.sum() / d2 + tot / d2
        for _ in range(40):
            n1 = torch.clamp(lam1 - eta * g1, min_eigenvalue, max_eigenvalue)
            n2 = torch.clamp(lam2 - eta * g2, min_eigenvalue, max_eigenvalue)
            new = obj(n1, n2)
            if new > prev:
                eta *= 0.5
            else:
                break
        else:
            new = prev
            eta = 0.0
        n1 = torch.clamp(lam1 - eta * g1, min_eigenvalue, max_eigenvalue)
        n2 = torch.clamp(lam2 - eta * g2, min_eigenvalue, max_eigenvalue)
        change = max(float(torch.linalg.norm(n1 - lam1)), float(torch.linalg.norm(n2 - lam2)))
        prev = new
        lam1, lam2 = n1, n2
        if change < tol:
            break
    return lam1, lam2, it
