"""E-step of MED-MAGMA: the fiber mode z* and the Laplace-corrected Gram statistics.

All heavy work is dense torch float64 on the chosen device. Nothing of size (cells·genes)² is ever
formed: the largest objects are the cells × genes data and the two d×d matrices.

* :func:`q_tilde` — the quadratic form of one half of the flip-flop.
* :func:`solve_product_one` — min sᵀQs s.t. s > 0, ∏s = 1 by a hand-written Newton method in
  log space (projected onto 1ᵀℓ = 0, Levenberg damping, Armijo backtracking, warm starts).
* :func:`flipflop` — alternate the two sub-problems (genes first, as the reference).
* :func:`laplace_correction` — E[TTᵀ], E[TᵀT] in closed form from the eigenbases of Ψ (Woodbury,
  O(d³) BLAS only; derivation in ``docs/medmagma.md``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import torch

logger = logging.getLogger("magmap")

__all__ = ["q_tilde", "solve_product_one", "flipflop", "laplace_correction", "subtract_laplace",
           "FlipFlopResult"]


def q_tilde(psi_a: torch.Tensor, psi_b: torch.Tensor, y: torch.Tensor, s_b: torch.Tensor,
            *, return_gram: bool = False, gram: torch.Tensor | None = None
            ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Quadratic form Q̃ of one flip-flop half: ``s_aᵀ Q̃ s_a = tr(ZᵀΨ_aZ) + tr(ZΨ_bZᵀ)``.

    ``y`` is oriented with axis *a* in rows (pass ``Y`` for cells, ``Yᵀ`` for genes) and ``s_b`` is the
    fixed scaling of the other axis; ``Q̃ = Ψ_a ∘ (WWᵀ) + Diag(diag(WΨ_bWᵀ))`` with ``W = y Diag(s_b)``.
    With ``return_gram`` also returns WWᵀ (reused for z*z*ᵀ, saving a d×d×d product). ``gram``: WWᵀ
    when the caller already has it (saves that product).
    """
    w = y * s_b[None, :]
    if gram is None:
        gram = w @ w.T
    q = psi_a * gram
    q.diagonal().add_(((w @ psi_b) * w).sum(dim=1))
    return (q, gram) if return_gram else q


def _is_diagonal(a: torch.Tensor) -> bool:
    """True when the square matrix ``a`` has no nonzero off-diagonal entry (e.g. Ψ = I at the start)."""
    return int(torch.count_nonzero(a)) == int(torch.count_nonzero(a.diagonal()))


def _solve_diagonal(qd: torch.Tensor) -> torch.Tensor | None:
    """Closed form of :func:`solve_product_one` for a diagonal Q̃ = Diag(qd), qd > 0: the problem
    min Σ qᵢsᵢ² s.t. ∏s = 1 is strictly convex in log s, KKT qᵢsᵢ² = const gives
    sᵢ = exp(mean(½log q))/√qᵢ. ``None`` when some qᵢ ≤ 0 (the caller falls back to Newton)."""
    if float(qd.min()) <= 0:
        return None
    half_log = 0.5 * torch.log(qd)
    return torch.exp(half_log.mean() - half_log)


def solve_product_one(
    q: torch.Tensor,
    ell0: torch.Tensor | None = None,
    *,
    tol: float = 1e-9,
    max_iter: int = 100,
    method: str = "auto",
    prior: float = 0.0,
) -> tuple[torch.Tensor, int]:
    """Minimise ``h(ℓ) = e^ℓᵀ Q e^ℓ`` subject to ``1ᵀℓ = 0`` (i.e. s = e^ℓ > 0, ∏s = 1).

    Newton's method on the constraint plane: gradient ``2 s∘(Qs)``, Hessian
    ``2(Q∘ssᵀ + Diag(s∘Qs))``, both projected onto 1^⊥. The problem is non-convex (Q has mixed signs),
    so an indefinite projected Hessian is damped (Levenberg) until its Cholesky factor exists, and
    steps are accepted by Armijo backtracking: a local minimum is reached from any start.

    Parameters
    ----------
    q
        Symmetric d×d matrix (Q̃ of :func:`q_tilde`), or an operator with ``shape``, ``dtype``,
        ``device``, ``@`` (matrix–vector product) and ``diagonal()`` (then only ``method="cg"``).
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
    prior
        ε ≥ 0: minimise ``h(ℓ) + μ‖ℓ‖²`` with ``μ = ε·h(ℓ₀)/d`` (a log-normal prior on the scalings,
        scaled with the start's objective so that it is unit-free). With zeros the product-one problem
        can have no minimiser (the scalings drift without bound); any ε > 0 makes it bounded.

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
    mu = float(prior) * float(h) / d
    obj = float(h) + mu * float(ell @ ell)
    use_cg = method == "cg" or (method == "auto" and d >= 800) or not isinstance(q, torch.Tensor)
    eye = None if use_cg else torch.eye(d, dtype=q.dtype, device=q.device)
    it = 0
    for it in range(1, max_iter + 1):
        g = 2.0 * s * qs
        gp = g - g.mean() + 2.0 * mu * ell  # ell is centred
        scale = 2.0 * h / d
        if float(gp.abs().max()) <= tol * float(abs(scale)):
            it -= 1
            break
        if use_cg:
            step = _newton_cg_step(q, s, g, gp, scale=float(abs(scale)), ridge=2.0 * mu)
        else:
            step = _newton_cholesky_step(q, s, g, gp, eye, ridge=2.0 * mu)
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
            centred = new_ell - new_ell.mean()
            new_obj = float(new_h) + (mu * float(centred @ centred) if mu else 0.0)
            if new_obj <= obj + 1e-4 * t * slope:
                break
            t *= 0.5
        else:
            break  # no decrease possible at working precision: we are at the optimum
        ell, s, qs, h, obj = centred, new_s, new_qs, new_h, new_obj
        if t * float(step.abs().max()) < 1e-14:
            break
    s = torch.exp(ell - ell.mean())
    return s, it


def _newton_cholesky_step(q, s, g, gp, eye, ridge: float = 0.0):
    """Newton direction from the dense projected Hessian, Levenberg-damped until Cholesky succeeds."""
    d = q.shape[0]
    # In-place: this is the inner loop, d×d temporaries dominate its cost.
    hp = torch.outer(s, s).mul_(q).mul_(2.0)
    hp.diagonal().add_(g + ridge)
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


def _newton_cg_step(q, s, g, gp, max_cg: int = 100, scale: float = 1.0, ridge: float = 0.0):
    """Truncated Newton direction (Nocedal & Wright Alg. 7.1) on 1^⊥, Jacobi-preconditioned.

    Hessian–vector product 2s∘Q(s∘v) + g∘v (g = 2s∘Qs, the Hessian of the Cholesky path): O(d²), no
    d×d temporary. Stops at negative curvature
    (returning the last positive-curvature iterate, or the preconditioned gradient on the first step).
    """
    diag = 2.0 * q.diagonal() * s * s + g + ridge
    diag = torch.where(diag > 0, diag, diag.abs().max())
    dinv = 1.0 / diag

    def proj(v):
        return v - v.mean()

    def hmul(v):
        return proj(2.0 * s * (q @ (s * v)) + (g + ridge) * v)

    x = torch.zeros_like(gp)
    r = -gp
    z = proj(dinv * r)
    p = z.clone()
    rz = float(r @ z)
    gnorm = float(torch.linalg.norm(gp))
    # Forcing term of the inexact Newton method on the scale-free gradient (relative to the mean
    # 2h/d the stopping rule uses): superlinear convergence whatever the units of Q.
    rel = float(gp.abs().max()) / scale if scale > 0 else gnorm
    eps = min(0.5, rel**0.5) * gnorm
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
    ztz: torch.Tensor | None = None  # z*ᵀz* (with ``return_ztz=True``)
    gram2: torch.Tensor | None = None  # Yᵀ Diag(s1²) Y for the returned s1 (a hint for the next call)


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
    gram2: torch.Tensor | None = None,
    return_ztz: bool = False,
    prior: float = 0.0,
) -> FlipFlopResult:
    """Mode z* = Diag(s1) Y Diag(s2) of φ on the fiber by alternating the two product-one problems.

    Genes are solved first given ``s1`` (the reference's order), then cells given the new genes. The
    loop stops when the ℓ1 change of both product-one vectors is below ``tol`` (reference rule).
    Returned vectors have unit Euclidean norm, as in the reference: this fixes the (arbitrary) scale
    of z* and so of the E-step statistics and of Ψ.

    ``warm_start=False`` restarts each sub-problem from s = 1 and keeps the reference's convergence test
    (which compares unit-norm inputs with product-one outputs); ``warm_start=True`` starts each
    sub-problem from the previous solution and rescales the inputs to product one first.

    Shortcuts (same results, fewer operations): when Ψ₁ and Ψ₂ are both diagonal (Ψ = I on the first
    EM iteration) Q̃ is diagonal and each half has a closed form; ``gram2`` = Yᵀ Diag(s1²) Y for the
    given ``s1`` (any scale; e.g. ``gram2`` of the previous call's result) saves the first genes Gram
    product. ``return_ztz`` also returns z*ᵀz* and its Gram (``gram2`` of the result). ``prior``:
    see :func:`solve_product_one` (no closed form then).
    """
    s1_in = s1
    if warm_start:
        # Compare like with like: the inputs are unit-norm, the sub-solvers return product-one
        # vectors. (The reference compares the two normalisations, forcing a second round.)
        s1 = s1 / torch.exp(torch.log(s1).mean())
        s2 = s2 / torch.exp(torch.log(s2).mean())
    diagonal = _is_diagonal(psi1) and _is_diagonal(psi2) and not prior
    prev1, prev2 = s1, s2
    steps = 0
    converged = False
    rounds = 0
    yt = y.T
    gram1 = None
    # Gram hint for the first genes half: Yᵀ Diag(s1²) Y scales with the square of s1's scale.
    g2 = None if gram2 is None else gram2 * float((s1 @ s1) / (s1_in @ s1_in))
    for rounds in range(1, max_rounds + 1):
        new2 = n2 = None
        if diagonal:
            # Q̃ = Diag(ψ₂ ∘ colsum(W²) + colsum(W²Ψ₁)) with W = Diag(s1)Y: no d×d×d product.
            w2 = (y * prev1[:, None]) ** 2
            new2 = _solve_diagonal(psi2.diagonal() * w2.sum(0) + psi1.diagonal() @ w2)
            n2 = 0
        if new2 is None:
            new2, n2 = solve_product_one(q_tilde(psi2, psi1, yt, prev1, gram=g2),
                                         torch.log(prev2) if warm_start else None, tol=sub_tol,
                                         method=sub_method, prior=prior)
        g2 = None
        new1 = n1 = None
        if diagonal:
            w1 = (y * new2[None, :]) ** 2
            new1 = _solve_diagonal(psi1.diagonal() * w1.sum(1) + w1 @ psi2.diagonal())
            n1 = 0
            gram1 = None
        if new1 is None:
            q1, gram1 = q_tilde(psi1, psi2, y, new2, return_gram=True)
            new1, n1 = solve_product_one(q1,
                                         torch.log(prev1) if warm_start else None, tol=sub_tol,
                                         method=sub_method, prior=prior)
        steps += n1 + n2
        done = float((new1 - prev1).abs().sum()) < tol and float((new2 - prev2).abs().sum()) < tol
        prev1, prev2 = new1, new2
        if done:
            converged = True
            break
    n1sq, n2sq = float(prev1 @ prev1), float(prev2 @ prev2)
    s1n, s2n = prev1 / n1sq**0.5, prev2 / n2sq**0.5
    if gram1 is None:
        w = y * prev2[None, :]
        gram1 = w @ w.T
    # z*z*ᵀ = Diag(s1) Y Diag(s2²) Yᵀ Diag(s1) and gram1 = Y Diag(new2²) Yᵀ with s2n = new2/‖new2‖.
    zzt = gram1.mul_(torch.outer(s1n, s1n)).div_(n2sq)
    ztz = gram_out = None
    if return_ztz:
        w = yt * s1n[None, :]
        gram_out = w @ w.T  # Yᵀ Diag(s1n²) Y
        ztz = gram_out * torch.outer(s2n, s2n)
    return FlipFlopResult(s1n, s2n, zzt, rounds, steps, converged, ztz, gram_out)


def laplace_correction(
    u1: torch.Tensor, lam1: torch.Tensor, u2: torch.Tensor, lam2: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form Laplace terms ``E[TTᵀ]`` (cells) and ``E[TᵀT]`` (genes), i.e. ½C₁ and ½C₂.

    T = α1ᵀ + 1βᵀ with (α, β) ~ N(0, 𝓗⁺), 𝓗 the Hessian of φ restricted to the z*-free log-space
    fiber directions: blocks A = d₂Ψ₁ + (1ᵀΨ₂1)I, B = d₁Ψ₂ + (1ᵀΨ₁1)I,
    C = Ψ₁11ᵀ + 11ᵀΨ₂. 𝓗 is singular along n = (1, −1); since T(n) = 0, (𝓗 + γnnᵀ)⁻¹ gives the same
    moments for any γ > 0. With Ψ_ℓ = U_ℓ Diag(λ_ℓ) U_ℓᵀ, blockdiag(A, B) is diagonal in the
    eigenbases and the rest has rank 5, so Woodbury gives Σ with O(d³) matrix products only.

    Validity: T moves every entry of Z. Entries that are zero stay zero on the fiber, so for data
    with many zeros (counts) this term counts fluctuations that do not exist and, depending on Ψ
    only, swamps z*z*ᵀ; :class:`~magmap.medmagma.MedMagma` therefore skips it by default for input
    with zeros (``laplace_weight="auto"``; measurements in ``docs/medmagma.md``).

    Parameters
    ----------
    u1, lam1, u2, lam2
        Eigenvectors (columns) and eigenvalues of Ψ_cells and Ψ_genes.

    Returns
    -------
    e1, e2
        d₁×d₁ and d₂×d₂ matrices to subtract from z*z*ᵀ and z*ᵀz*.
    """
    parts = _laplace_parts(u1, lam1, u2, lam2)
    if parts is None:
        return _laplace_dense(u1, lam1, u2, lam2)
    e1, e2 = (torch.addmm(lr @ (k @ lr.T), u / den, u.T, alpha=scale) for u, den, scale, lr, k in parts)
    return e1, e2


def subtract_laplace(stat1: torch.Tensor, stat2: torch.Tensor, u1: torch.Tensor, lam1: torch.Tensor,
                     u2: torch.Tensor, lam2: torch.Tensor, weight: float = 1.0,
                     run_pair: Callable[[Callable, tuple, Callable, tuple], Any] | None = None) -> None:
    """In place: ``stat1 -= weight·E[TTᵀ]``, ``stat2 -= weight·E[TᵀT]`` (:func:`laplace_correction`).

    Same numbers, without the two d×d intermediates: per axis one d×d×d product accumulated into the
    statistic (``addmm_``) plus a rank-7 update. ``run_pair(f1, args1, f2, args2)``: how to run the two
    axes' updates (e.g. concurrently); ``None``: one after the other.
    """
    parts = _laplace_parts(u1, lam1, u2, lam2)
    if parts is None:
        e1, e2 = _laplace_dense(u1, lam1, u2, lam2)
        stat1.sub_(e1, alpha=weight)
        stat2.sub_(e2, alpha=weight)
        return

    def update(stat, u, den, scale, lr, k):
        stat.addmm_(u / den, u.T, alpha=-weight * scale)
        stat.addmm_(lr, k @ lr.T, alpha=-weight)

    if run_pair is None:
        for stat, part in zip((stat1, stat2), parts):
            update(stat, *part)
    else:
        run_pair(update, (stat1, *parts[0]), update, (stat2, *parts[1]))


def _laplace_parts(u1, lam1, u2, lam2):
    """Factors of E[TTᵀ] = d₂·U₁Diag(1/a)U₁ᵀ + L₁K₁L₁ᵀ (rank-7 L₁) and likewise for E[TᵀT]:
    ``[(U₁, a, d₂, L₁, K₁), (U₂, b, d₁, L₂, K₂)]``; ``None`` when A or B is (near) singular."""
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
        return None
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
    # Σ_αα = A⁻¹ − xa M xaᵀ, Σ_ββ = B⁻¹ − xb M xbᵀ, Σ_αβ = −xa M xbᵀ.
    sig1 = -(xa @ (m @ (xb.T @ one2)))  # Σ_αβ 1
    sig2 = -(xb @ (m.T @ (xa.T @ one1)))  # Σ_αβᵀ 1
    tr_aa = float((1.0 / a).sum() - ((xa @ m) * xa).sum())  # tr Σ_αα (U₁ orthogonal)
    tr_bb = float((1.0 / b).sum() - ((xb @ m) * xb).sum())
    # E[TTᵀ] = d₂Σ_αα + sig1 1ᵀ + 1 sig1ᵀ + tr(Σ_ββ) 11ᵀ = d₂A⁻¹ + L₁K₁L₁ᵀ, L₁ = [xa, sig1, 1].
    parts = []
    for u, den, scale, x, sig, one, tr in ((u1, a, d2, xa, sig1, one1, tr_bb), (u2, b, d1, xb, sig2, one2, tr_aa)):
        lr = torch.cat([x, sig[:, None], one[:, None]], dim=1)
        k = torch.zeros(7, 7, dtype=dt, device=dev)
        k[:5, :5] = -scale * m
        k[5, 6] = k[6, 5] = 1.0
        k[6, 6] = tr
        parts.append((u, den, scale, lr, k))
    return parts


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
