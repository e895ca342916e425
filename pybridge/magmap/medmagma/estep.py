"""E-step of MED-MAGMA: the fiber mode z* and the Laplace-corrected Gram statistics (spec §3).

All heavy work is dense torch float64 on the chosen device. Nothing of size (cells·genes)² is ever
formed: the largest objects are the cells × genes data and the two d×d matrices.

* :func:`q_tilde` — the quadratic form of one half of the flip-flop (spec Eq. 3).
* :func:`solve_product_one` — min sᵀQs s.t. s > 0, ∏s = 1 by a hand-written Newton method in
  log space (projected onto 1ᵀℓ = 0, Levenberg damping, Armijo backtracking, warm starts).
* :func:`flipflop` — alternate the two sub-problems (genes first, as the reference).
* :func:`laplace_correction` — E[TTᵀ], E[TᵀT] in closed form from the eigenbases of Ψ (Woodbury,
  O(d³) BLAS only; spec §3.4, §13.3).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

logger = logging.getLogger("magmap")

__all__ = ["q_tilde", "solve_product_one", "flipflop", "laplace_correction", "FlipFlopResult"]


def q_tilde(psi_a: torch.Tensor, psi_b: torch.Tensor, y: torch.Tensor, s_b: torch.Tensor,
            *, return_gram: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Quadratic form Q̃ of one flip-flop half: ``s_aᵀ Q̃ s_a = tr(ZᵀΨ_aZ) + tr(ZΨ_bZᵀ)``.

    ``y`` is oriented with axis *a* in rows (pass ``Y`` for cells, ``Yᵀ`` for genes) and ``s_b`` is the
    fixed scaling of the other axis; ``Q̃ = Ψ_a ∘ (WWᵀ) + Diag(diag(WΨ_bWᵀ))`` with ``W = y Diag(s_b)``.
    With ``return_gram`` also returns WWᵀ (reused for z*z*ᵀ, saving a d×d×d product).
    """
    w = y * s_b[None, :]
    gram = w @ w.T
    q = psi_a * gram
    q.diagonal().add_(((w @ psi_b) * w).sum(dim=1))
    return (q, gram) if return_gram else q


def solve_product_one(
    q: torch.Tensor,
    ell0: torch.Tensor | None = None,
    *,
    tol: float = 1e-9,
    max_iter: int = 100,
    method: str = "auto",
) -> tuple[torch.Tensor, int]:
    """Minimise ``h(ℓ) = e^ℓᵀ Q e^ℓ`` subject to ``1ᵀℓ = 0`` (i.e. s = e^ℓ > 0, ∏s = 1).

    Newton's method on the constraint plane: gradient ``2 s∘(Qs)``, Hessian
    ``2(Q∘ssᵀ + Diag(s∘Qs))``, both projected onto 1^⊥. The problem is non-convex (Q has mixed signs),
    so an indefinite projected Hessian is damped (Levenberg) until its Cholesky factor exists, and
    steps are accepted by Armijo backtracking: a local minimum is reached from any start.

    Parameters
    ----------
    q
        Symmetric d×d matrix (Q̃ of :func:`q_tilde`).
    ell0
        Warm start (log s); re-centred to mean 0. ``None`` starts from s = 1 (the reference's start).
    tol
        Stop when the projected gradient, relative to its mean ``2h/d``, is below ``tol`` everywhere
        (KKT: s∘Qs constant).
    max_iter
        Newton iterations.
    method
        Newton system solver: ``"cholesky"`` (dense, O(d³) per step, with Levenberg damping),
        ``"cg"`` (truncated preconditioned CG with Hessian–vector products, O(d²) per CG step; stops at
        negative curvature) or ``"auto"`` (Cholesky below d = 800, CG above).

    Returns
    -------
    s, n_iter
        The minimiser (product one) and the number of Newton steps taken.
    """
    d = q.shape[0]
    ell = torch.zeros(d, dtype=q.dtype, device=q.device) if ell0 is None else ell0 - ell0.mean()
    s = torch.exp(ell)
    qs = q @ s
    h = s @ qs
    eye = torch.eye(d, dtype=q.dtype, device=q.device)
    it = 0
    for it in range(1, max_iter + 1):
        g = 2.0 * s * qs
        gp = g - g.mean()
        scale = 2.0 * h / d
        if float(gp.abs().max()) <= tol * float(abs(scale)):
            it -= 1
            break
        if method == "cg" or (method == "auto" and d >= 800):
            step = _newton_cg_step(q, s, g, gp)
        else:
            step = _newton_cholesky_step(q, s, g, gp, eye)
        # Cap the step in log space: keeps exp() finite far from the optimum.
        big = float(step.abs().max())
        if big > 3.0:
            step = step * (3.0 / big)
        slope = float(gp @ step)
        if slope >= 0:  # numerical breakdown: fall back to steepest descent
            step = -gp / float(gp.abs().max())
            slope = float(gp @ step)
        t = 1.0
        for _ in range(50):
            new_ell = ell + t * step
            new_s = torch.exp(new_ell)
            new_qs = q @ new_s
            new_h = new_s @ new_qs
            if float(new_h) <= float(h) + 1e-4 * t * slope:
                break
            t *= 0.5
        else:
            break  # no decrease possible at working precision: we are at the optimum
        ell, s, qs, h = new_ell - new_ell.mean(), new_s, new_qs, new_h
        if t * float(step.abs().max()) < 1e-14:
            break
    s = torch.exp(ell - ell.mean())
    return s, it


def _newton_cholesky_step(q, s, g, gp, eye):
    """Newton direction from the dense projected Hessian, Levenberg-damped until Cholesky succeeds."""
    d = q.shape[0]
    # In-place: this is the inner loop, d×d temporaries dominate its cost.
    hp = torch.outer(s, s).mul_(q).mul_(2.0)
    hp.diagonal().add_(g)
    # P H P with P = I - 11ᵀ/d, plus a positive multiple of 11ᵀ/d so that the constrained
    # direction is well posed (the solution of a system whose right side is ⟂ 1 stays ⟂ 1).
    r = hp.mean(dim=1)
    hp.sub_(r[:, None]).sub_(r[None, :])
    diag_scale = float(hp.diagonal().abs().mean() + r.mean()) or 1.0
    hp.add_(float(r.mean()) + diag_scale / d)
    mu = 0.0
    while True:
        chol, info = torch.linalg.cholesky_ex(hp + mu * eye if mu else hp)
        if int(info) == 0:
            break
        mu = max(10.0 * mu, 1e-8 * diag_scale)
        if mu > 1e12 * diag_scale:  # pragma: no cover - only for a NaN Hessian
            raise FloatingPointError("Newton sub-solver: Hessian could not be regularised (NaN/Inf?).")
    step = -torch.cholesky_solve(gp[:, None], chol)[:, 0]
    return step - step.mean()


def _newton_cg_step(q, s, g, gp, max_cg: int = 100):
    """Truncated Newton direction (Nocedal & Wright Alg. 7.1) on 1^⊥, Jacobi-preconditioned.

    Hessian–vector product 2(s∘Q(s∘v) + g∘v): O(d²), no d×d temporary. Stops at negative curvature
    (returning the last positive-curvature iterate, or the preconditioned gradient on the first step).
    """
    diag = 2.0 * (q.diagonal() * s * s + g)
    diag = torch.where(diag > 0, diag, diag.abs().max())
    dinv = 1.0 / diag

    def proj(v):
        return v - v.mean()

    def hmul(v):
        return proj(2.0 * (s * (q @ (s * v)) + g * v))

    x = torch.zeros_like(gp)
    r = -gp
    z = proj(dinv * r)
    p = z.clone()
    rz = float(r @ z)
    gnorm = float(torch.linalg.norm(gp))
    eps = min(0.5, gnorm**0.5) * gnorm
    for j in range(max_cg):
        hp = hmul(p)
        curv = float(p @ hp)
        if curv <= 0:
            return z if j == 0 else x
        alpha = rz / curv
        x = x + alpha * p
        r = r - alpha * hp
        if float(torch.linalg.norm(r)) <= eps:
            break
        z = proj(dinv * r)
        rz_new = float(r @ z)
        p = z + (rz_new / rz) * p
        rz = rz_new
    return x


@dataclass
class FlipFlopResult:
    """Output of :func:`flipflop`: unit-norm scalings and solver counts."""

    s1: torch.Tensor
    s2: torch.Tensor
    zzt: torch.Tensor  # z*z*ᵀ for the returned (unit-norm) scalings
    rounds: int
    newton_steps: int
    converged: bool


def flipflop(
    psi1: torch.Tensor,
    psi2: torch.Tensor,
    y: torch.Tensor,
    s1: torch.Tensor,
    s2: torch.Tensor,
    *,
    warm_start: bool = True,
    max_rounds: int = 200,
    tol: float = 1e-3,
    sub_tol: float = 1e-9,
    sub_method: str = "auto",
) -> FlipFlopResult:
    """Mode z* = Diag(s1) Y Diag(s2) of φ on the fiber by alternating the two product-one problems.

    Genes are solved first given ``s1`` (the reference's order), then cells given the new genes. The
    loop stops when the ℓ1 change of both product-one vectors is below ``tol`` (reference rule).
    Returned vectors have unit Euclidean norm, as in the reference: this fixes the (arbitrary) scale
    of z* and so of the E-step statistics and of Ψ.

    ``warm_start=False`` restarts each sub-problem from s = 1 and keeps the reference's convergence test
    (which compares unit-norm inputs with product-one outputs); ``warm_start=True`` starts each
    sub-problem from the previous solution and rescales the inputs to product one first.
    """
    if warm_start:
        # Compare like with like: the inputs are unit-norm, the sub-solvers return product-one
        # vectors. (The reference compares the two normalisations, forcing a second round.)
        s1 = s1 / torch.exp(torch.log(s1).mean())
        s2 = s2 / torch.exp(torch.log(s2).mean())
    prev1, prev2 = s1, s2
    steps = 0
    converged = False
    rounds = 0
    yt = y.T
    for rounds in range(1, max_rounds + 1):
        new2, n2 = solve_product_one(q_tilde(psi2, psi1, yt, prev1),
                                     torch.log(prev2) if warm_start else None, tol=sub_tol,
                                     method=sub_method)
        q1, gram1 = q_tilde(psi1, psi2, y, new2, return_gram=True)
        new1, n1 = solve_product_one(q1,
                                     torch.log(prev1) if warm_start else None, tol=sub_tol,
                                     method=sub_method)
        steps += n1 + n2
        done = float((new1 - prev1).abs().sum()) < tol and float((new2 - prev2).abs().sum()) < tol
        prev1, prev2 = new1, new2
        if done:
            converged = True
            break
    s1n, s2n = prev1 / torch.linalg.norm(prev1), prev2 / torch.linalg.norm(prev2)
    # z*z*ᵀ = Diag(s1) Y Diag(s2²) Yᵀ Diag(s1) and gram1 = Y Diag(new2²) Yᵀ with s2n = new2/‖new2‖.
    zzt = gram1 * torch.outer(s1n, s1n) / float(prev2 @ prev2)
    return FlipFlopResult(s1n, s2n, zzt, rounds, steps, converged)


def laplace_correction(
    u1: torch.Tensor, lam1: torch.Tensor, u2: torch.Tensor, lam2: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form Laplace terms ``E[TTᵀ]`` (cells) and ``E[TᵀT]`` (genes), i.e. ½C₁ and ½C₂.

    T = α1ᵀ + 1βᵀ with (α, β) ~ N(0, 𝓗⁺), 𝓗 the Hessian of φ restricted to the z*-free log-space
    fiber directions (spec §3.4): blocks A = d₂Ψ₁ + (1ᵀΨ₂1)I, B = d₁Ψ₂ + (1ᵀΨ₁1)I,
    C = Ψ₁11ᵀ + 11ᵀΨ₂. 𝓗 is singular along n = (1, −1); since T(n) = 0, (𝓗 + γnnᵀ)⁻¹ gives the same
    moments for any γ > 0. With Ψ_ℓ = U_ℓ Diag(λ_ℓ) U_ℓᵀ, blockdiag(A, B) is diagonal in the
    eigenbases and the rest has rank 5, so Woodbury gives Σ with O(d³) matrix products only.

    Validity: T moves every entry of Z. Entries that are zero stay zero on the fiber, so for data
    with many zeros (counts) this term counts fluctuations that do not exist and, depending on Ψ
    only, swamps z*z*ᵀ; :class:`~magmap.medmagma.MedMagma` therefore skips it by default for input
    with zeros (``laplace_weight="auto"``; measurements in the notes of ``estimators.py``).

    Parameters
    ----------
    u1, lam1, u2, lam2
        Eigenvectors (columns) and eigenvalues of Ψ_cells and Ψ_genes.

    Returns
    -------
    e1, e2
        d₁×d₁ and d₂×d₂ matrices to subtract from z*z*ᵀ and z*ᵀz*.
    """
    dt, dev = u1.dtype, u1.device
    d1, d2 = u1.shape[0], u2.shape[0]
    one1 = torch.ones(d1, dtype=dt, device=dev)
    one2 = torch.ones(d2, dtype=dt, device=dev)
    c1t, c2t = u1.T @ one1, u2.T @ one2  # 1 in the eigenbases
    p1 = u1 @ (lam1 * c1t)  # Ψ₁1
    p2 = u2 @ (lam2 * c2t)
    sum1, sum2 = float(one1 @ p1), float(one2 @ p2)
    a = d2 * lam1 + sum2
    b = d1 * lam2 + sum1
    amin, bmin = float(a.abs().min()), float(b.abs().min())
    if amin <= 1e-12 * float(a.abs().max()) or bmin <= 1e-12 * float(b.abs().max()):
        return _laplace_dense(u1, lam1, u2, lam2)
    gamma = float(torch.cat([a, b]).abs().mean())
    z1 = torch.zeros(d1, dtype=dt, device=dev)
    z2 = torch.zeros(d2, dtype=dt, device=dev)
    # W = [[p1, 1, 0, 0, 1], [0, 0, 1, p2, -1]]; coupling K = [[0, I2], [I2, 0]] ⊕ γ.
    w_a = torch.stack([p1, one1, z1, z1, one1], dim=1)
    w_b = torch.stack([z2, z2, one2, p2, -one2], dim=1)
    wa_t, wb_t = u1.T @ w_a, u2.T @ w_b  # in eigenbases
    k_inv = torch.zeros(5, 5, dtype=dt, device=dev)
    k_inv[0, 2] = k_inv[2, 0] = k_inv[1, 3] = k_inv[3, 1] = 1.0
    k_inv[4, 4] = 1.0 / gamma
    g = k_inv + wa_t.T @ (wa_t / a[:, None]) + wb_t.T @ (wb_t / b[:, None])
    m = torch.linalg.inv(g)
    xa = u1 @ (wa_t / a[:, None])  # A⁻¹W_α (d1×5)
    xb = u2 @ (wb_t / b[:, None])
    s_aa = (u1 / a[None, :]) @ u1.T - xa @ m @ xa.T
    s_bb = (u2 / b[None, :]) @ u2.T - xb @ m @ xb.T
    sig1 = -(xa @ (m @ (xb.T @ one2)))  # Σ_αβ 1
    sig2 = -(xb @ (m.T @ (xa.T @ one1)))  # Σ_αβᵀ 1
    tr_aa, tr_bb = torch.trace(s_aa), torch.trace(s_bb)
    e1 = d2 * s_aa + sig1[:, None] + sig1[None, :] + tr_bb
    e2 = d1 * s_bb + sig2[:, None] + sig2[None, :] + tr_aa
    return e1, e2


def _laplace_dense(u1, lam1, u2, lam2):
    """Fallback (ill-conditioned A or B): pseudo-inverse of the explicit (d₁+d₂)² Hessian."""
    d1, d2 = u1.shape[0], u2.shape[0]
    psi1 = (u1 * lam1) @ u1.T
    psi2 = (u2 * lam2) @ u2.T
    h = _restricted_hessian(psi1, psi2)
    sig = torch.linalg.pinv(h, hermitian=True)
    return moments_from_sigma(sig, d1, d2)


def _restricted_hessian(psi1: torch.Tensor, psi2: torch.Tensor) -> torch.Tensor:
    d1, d2 = psi1.shape[0], psi2.shape[0]
    dt, dev = psi1.dtype, psi1.device
    one1 = torch.ones(d1, 1, dtype=dt, device=dev)
    one2 = torch.ones(d2, 1, dtype=dt, device=dev)
    a = d2 * psi1 + psi2.sum() * torch.eye(d1, dtype=dt, device=dev)
    b = d1 * psi2 + psi1.sum() * torch.eye(d2, dtype=dt, device=dev)
    c = (psi1 @ one1) @ one2.T + one1 @ (one2.T @ psi2)
    return torch.cat([torch.cat([a, c], 1), torch.cat([c.T, b], 1)], 0)


def moments_from_sigma(sig: torch.Tensor, d1: int, d2: int) -> tuple[torch.Tensor, torch.Tensor]:
    """E[TTᵀ], E[TᵀT] for (α, β) ~ N(0, Σ) with Σ given as a dense (d₁+d₂)² matrix."""
    s_aa, s_ab, s_bb = sig[:d1, :d1], sig[:d1, d1:], sig[d1:, d1:]
    sig1, sig2 = s_ab.sum(1), s_ab.sum(0)
    e1 = d2 * s_aa + sig1[:, None] + sig1[None, :] + torch.trace(s_bb)
    e2 = d1 * s_bb + sig2[:, None] + sig2[None, :] + torch.trace(s_aa)
    return e1, e2
