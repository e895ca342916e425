"""The EM loop of MED-MAGMA on dense d × d precision matrices (any shape; the reference's algorithm).

Design and measurements: ``docs/medmagma.md`` ("Dense path", "Speed").
"""
from __future__ import annotations

import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .._utils import progress
from ._accel import Anderson
from ._backend import DTYPE, eigh
from .estep import flipflop, subtract_laplace
from .mstep import mstep_newton, mstep_reference

logger = logging.getLogger("magmap")

__all__ = ["EMSettings", "EMResult", "em_dense", "distance_estimate", "scaling_change", "z_target"]


@dataclass
class EMSettings:
    """Resolved settings of one fit (``None``s of the estimator replaced by the mode's defaults)."""

    reference: bool
    rho: float
    tol: float
    z_scale: str | float
    laplace_weight: float
    max_flipflop: int
    flipflop_tol: float
    max_iter: int
    verbose: bool = False
    accelerate: bool = False
    scaling_prior: float = 0.0
    axis_threads: bool = False  # run the two axes' eigendecompositions and products concurrently


@dataclass
class EMResult:
    """What an EM run leaves: the precisions (dense tensors, or factors for the low-rank path), the
    scalings, and the per-iteration history."""

    psi1: Any
    psi2: torch.Tensor
    lam1: torch.Tensor
    lam2: torch.Tensor
    s1: torch.Tensor
    s2: torch.Tensor
    history: list[dict[str, Any]] = field(default_factory=list)
    converged: bool = False
    neg_stat: int = 0
    z_target: float | None = None  # ‖z*‖² the statistics were rescaled to (None: not rescaled)


def distance_estimate(rels: list[float]) -> float:
    """Fast mode's stopping metric: an estimate of the relative distance of Ψ to the EM fixed point.

    EM converges linearly: once the last two contraction ratios r of the relative change are both
    below 1/2, the remaining distance is about change·r/(1 − r) (geometric tail, r the larger ratio);
    otherwise the change itself is used."""
    rel = rels[-1]
    if len(rels) >= 3 and rels[-2] > 0 and rels[-3] > 0:
        r = max(rels[-1] / rels[-2], rels[-2] / rels[-3])
        if r < 0.5:
            return min(rel, rel * r / (1.0 - r))
    return rel


_AXIS_POOL: ThreadPoolExecutor | None = None


def run_pair(parallel: bool, f1: Any, args1: tuple, f2: Any, args2: tuple) -> tuple[Any, Any]:
    """``(f1(*args1), f2(*args2))``; with ``parallel`` the second runs in a worker thread meanwhile.

    torch releases the GIL in its kernels, so two single-threaded eigendecompositions of the two axes
    take the time of one on two cores (same kernels, bitwise the same results)."""
    if not parallel:
        return f1(*args1), f2(*args2)
    global _AXIS_POOL
    if _AXIS_POOL is None:
        # A new thread's OpenMP/MKL settings are the process defaults (all cores), not torch's: set
        # one kernel thread there too, or its eigendecompositions differ from the main thread's in the
        # last bits (which an unstable EM path amplifies).
        _AXIS_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="magmap-axis",
                                        initializer=torch.set_num_threads, initargs=(1,))
    fut = _AXIS_POOL.submit(f2, *args2)
    first = f1(*args1)
    return first, fut.result()


def _rebuild(v: torch.Tensor, lam: torch.Tensor, old: torch.Tensor) -> tuple[torch.Tensor, float, float]:
    """Ψ = V Diag(λ) Vᵀ, its distance to the previous Ψ and its norm."""
    p = (v * lam) @ v.T
    return p, float(torch.linalg.norm(p - old)), float(torch.linalg.norm(p))


def z_target(cfg: EMSettings, y: torch.Tensor) -> float | None:
    """‖z*‖²_F that the statistics are rescaled to: mean(Y²) for ``"mean-square"``, the number itself
    for a numeric ``z_scale``, ``None`` (no rescaling) for ``"unit"``."""
    if isinstance(cfg.z_scale, str):
        return float((y * y).mean()) if cfg.z_scale == "mean-square" else None
    return float(cfg.z_scale)


def solve_mstep(e1: torch.Tensor, e2: torch.Tensor, lam1: torch.Tensor, lam2: torch.Tensor, cfg: EMSettings,
                weights1: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """M-step on the statistics' eigenvalues: the reference's kernel, or Newton warm-started from the
    previous eigenvalues matched by rank (late EM iterations barely rotate the bases)."""
    if cfg.reference:
        return mstep_reference(e1, e2, rho=cfg.rho)
    if cfg.rho > 0:
        new1, new2, m_it, _ = mstep_newton(e1, e2, lam1, lam2, rho=cfg.rho, center=1.0, weights1=weights1)
    else:  # unregularised: the objective is bounded only for positive statistics
        floor1 = 1e-12 * float(e1.abs().max())
        floor2 = 1e-12 * float(e2.abs().max())
        new1, new2, m_it, _ = mstep_newton(e1.clamp(min=floor1), e2.clamp(min=floor2), lam1, lam2,
                                           weights1=weights1)
    return new1, new2, m_it


def mix_scalings(accel: Any, s1_in: torch.Tensor, s2_in: torch.Tensor, s1: torch.Tensor, s2: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """One Anderson step on the centred log-scalings (``accel`` is ``None`` when not accelerating);
    returns unit-norm scalings like the flip-flop's."""
    if accel is None:
        return s1, s2
    n = s1.shape[0]

    def centred(a, b):
        la, lb = torch.log(a), torch.log(b)
        return torch.cat([la - la.mean(), lb - lb.mean()])

    x = accel.step(centred(s1_in, s2_in), centred(s1, s2))
    t1, t2 = torch.exp(x[:n]), torch.exp(x[n:])
    return t1 / torch.linalg.norm(t1), t2 / torch.linalg.norm(t2)


def scaling_change(s_old: torch.Tensor, s_new: torch.Tensor) -> float:
    """Largest change of a log-scaling, up to the common factor (which the model does not identify):
    the scalings' counterpart of Ψ's relative change."""
    d = torch.log(s_new) - torch.log(s_old)
    return float((d - d.mean()).abs().max())


class Stopper:
    """The stopping rules of both modes, shared by the dense and the low-rank loops."""

    def __init__(self, cfg: EMSettings) -> None:
        self.cfg = cfg
        self.rels: list[float] = []
        self.joint: list[float] = []
        self.small = 0

    def done(self, delta: float, rel: float, flipflop_converged: bool, record: dict[str, Any],
             s_change: float = float("inf")) -> bool:
        """Record the metrics of this iteration and say whether EM has converged.

        Fast mode: the EM state is Ψ and the fiber mode's scalings (the inexact E-step carries them
        from one iteration to the next), and both contract at the same rate; EM stops when the
        estimated remaining distance of the state (``distance_estimate`` of the larger of Ψ's relative
        change and ``s_change``, :func:`scaling_change`) is below ``tol``. It also stops when Ψ's
        estimate is below ``tol`` and the flip-flop converged within the iteration, or Ψ has been still
        for 3 iterations (scalings resting on a zero pattern can drift for ever without moving Ψ)."""
        self.rels.append(rel)
        self.joint.append(max(rel, s_change))
        est = distance_estimate(self.rels)
        est_joint = distance_estimate(self.joint)
        record["distance_estimate"] = est
        record["scaling_change"] = s_change
        record["state_distance_estimate"] = est_joint
        self.small = self.small + 1 if est < self.cfg.tol else 0
        if self.cfg.reference:
            return delta < self.cfg.tol
        return est_joint < self.cfg.tol or (est < self.cfg.tol and (flipflop_converged or self.small >= 3))


def em_dense(y: torch.Tensor, s1: torch.Tensor, s2: torch.Tensor, cfg: EMSettings) -> EMResult:
    """EM on the quotient ``y`` (cells × genes) from the initial scalings ``s1``, ``s2``."""
    d1, d2 = y.shape
    dev = y.device
    target = z_target(cfg, y)
    u1 = torch.eye(d1, dtype=DTYPE, device=dev)
    u2 = torch.eye(d2, dtype=DTYPE, device=dev)
    lam1 = torch.ones(d1, dtype=DTYPE, device=dev)
    lam2 = torch.ones(d2, dtype=DTYPE, device=dev)
    psi1, psi2 = u1.clone(), u2.clone()
    out = EMResult(psi1, psi2, lam1, lam2, s1, s2, z_target=target)
    stop = Stopper(cfg)
    accel = Anderson() if cfg.accelerate else None
    gram2 = None  # Yᵀ Diag(s1²) Y of the last E-step: the next flip-flop starts from it
    pair = functools.partial(run_pair, True) if cfg.axis_threads else None
    bar = progress(range(cfg.max_iter), verbose=cfg.verbose, desc="MED-MAGMA EM", leave=False)
    for it in bar:
        t0 = time.perf_counter()
        ff = flipflop(psi1, psi2, y, s1, s2, warm_start=not cfg.reference, max_rounds=cfg.max_flipflop,
                      tol=cfg.flipflop_tol, gram2=gram2, return_ztz=True, prior=cfg.scaling_prior)
        s_change = max(scaling_change(s1, ff.s1), scaling_change(s2, ff.s2))
        if accel is not None and it > 0:
            s1, s2 = mix_scalings(accel, s1, s2, ff.s1, ff.s2)
            w1 = y * s2[None, :]
            stat1 = (w1 @ w1.T).mul_(torch.outer(s1, s1))
            wt = y.T * s1[None, :]
            gram2 = wt @ wt.T
            stat2 = gram2 * torch.outer(s2, s2)
        else:
            s1, s2, gram2 = ff.s1, ff.s2, ff.gram2
            stat1, stat2 = ff.zzt, ff.ztz  # fresh tensors, updated in place below
        zsq = float(torch.trace(stat1))
        zfac = target / zsq if (target is not None and zsq > 0) else 1.0
        if zfac != 1.0:
            stat1.mul_(zfac)
            stat2.mul_(zfac)
        # Fast mode skips the Laplace term on the first iteration: at Ψ = I it is unrelated to the
        # data and makes both statistics negative definite (same fixed point, one iteration less).
        if cfg.laplace_weight > 0 and (cfg.reference or it > 0):
            subtract_laplace(stat1, stat2, u1, lam1, u2, lam2, cfg.laplace_weight, run_pair=pair)
        (e1, v1), (e2, v2) = run_pair(cfg.axis_threads, eigh, (stat1,), eigh, (stat2,))
        del stat1, stat2
        new1, new2, m_it = solve_mstep(e1, e2, lam1, lam2, cfg)
        (p1, dn1, nrm1), (p2, dn2, nrm2) = run_pair(cfg.axis_threads, _rebuild, (v1, new1, psi1),
                                                    _rebuild, (v2, new2, psi2))
        delta = float(np.sqrt(dn1**2 / d1**2 + dn2**2 / d2**2))
        rel = float(np.sqrt((dn1 / nrm1) ** 2 + (dn2 / nrm2) ** 2))
        psi1, psi2, u1, lam1, u2, lam2 = p1, p2, v1, new1, v2, new2
        out.neg_stat = int((e1 < -1e-9 * float(e1.abs().max())).sum())
        record = {"iteration": it + 1, "delta": delta, "rel_change": rel, "flipflop_rounds": ff.rounds,
                  "flipflop_converged": ff.converged, "newton_steps": ff.newton_steps, "mstep_iter": int(m_it),
                  "n_negative_eigs": (int((e1 < 0).sum()), int((e2 < 0).sum())), "z_scale_factor": zfac}
        done = stop.done(delta, rel, ff.converged, record, s_change)
        record["seconds"] = time.perf_counter() - t0
        out.history.append(record)
        logger.debug("MED-MAGMA iteration %d: delta %.3g rel %.3g", it + 1, delta, rel)
        if done:
            out.converged = True
            break
    bar.close()
    out.psi1, out.psi2, out.lam1, out.lam2, out.s1, out.s2 = psi1, psi2, lam1, lam2, s1, s2
    return out
