"""Why MedMagma's EM does not converge on Yan and Pollen: the scale of the E-step statistic.

For each dataset (the paper's App. F preprocessing, ``bench_medmagma_real.prepared``) and each
``z_scale`` (``"mean-square"``: ‖z*‖²_F = mean(Y²), the default; ``"unit"``; numbers: ‖z*‖²_F set to
that value) the fit's EM iterations, convergence and seconds, and the best AMI / assortativity of the
cell graph under the paper's protocol (``bench_medmagma_real.evaluate``), GmGM on log1p beside it.
Per dataset also the quotient's heavy-tail statistics (mean(Y²), the share of Σ Y² in the top 1 % of
entries). With ``--jacobian`` the spectrum of the EM map's Jacobian on the log-scalings (finite
differences, exact E-step) at the state each fit ends in, for the named datasets.

    flock /tmp/magmap-cpu.lock .venv/bin/python benchmarks/bench_medmagma_convergence.py [--jacobian yan]

Writes ``benchmarks/results/medmagma_convergence.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_medmagma_real import evaluate, prepared

OUT = HERE / "results" / "medmagma_convergence.json"
SCALES: tuple = ("mean-square", "unit", 1.0, 3.0, 10.0, 13.0, 16.0, 20.0, 30.0, 100.0)


def jacobian_spectrum(counts: np.ndarray, model, n_top: int = 6) -> list[float]:
    """Largest |eigenvalues| of the Jacobian of the EM map s ↦ flip-flop(Ψ(s), s) on the centred
    log-scalings at the model's final scalings (plain EM, exact E-step, M-step from λ = 1)."""
    import torch
    from magmap.medmagma._em import EMSettings, solve_mstep, z_target
    from magmap.medmagma.estep import flipflop
    from magmap.medmagma.quotient import log_quotient

    w, sign = log_quotient(counts, zero_handling=model.zero_handling)
    y = torch.tensor(sign * np.exp(w))
    d1, d2 = y.shape
    cfg = EMSettings(reference=False, rho=1 / 2000, tol=1e-4, z_scale=model.z_scale or "mean-square",
                     laplace_weight=model.laplace_weight_, max_flipflop=1, flipflop_tol=1e-3, max_iter=1)
    target = z_target(cfg, y)
    ones1, ones2 = torch.ones(d1, dtype=y.dtype), torch.ones(d2, dtype=y.dtype)

    def em_map(x: np.ndarray) -> np.ndarray:
        xt = torch.tensor(x)
        s1, s2 = torch.exp(xt[:d1]), torch.exp(xt[d1:])
        s1, s2 = s1 / torch.linalg.norm(s1), s2 / torch.linalg.norm(s2)
        z = s1[:, None] * y * s2[None, :]
        st1, st2 = z @ z.T, z.T @ z
        if target is not None:
            f = target / float(torch.trace(st1))
            st1, st2 = st1 * f, st2 * f
        e1, v1 = torch.linalg.eigh(st1)
        e2, v2 = torch.linalg.eigh(st2)
        l1, l2, _ = solve_mstep(e1, e2, ones1, ones2, cfg)
        ff = flipflop((v1 * l1) @ v1.T, (v2 * l2) @ v2.T, y, s1, s2, max_rounds=2000, tol=1e-13,
                      prior=model.scaling_prior_)
        a, b = torch.log(ff.s1), torch.log(ff.s2)
        return torch.cat([a - a.mean(), b - b.mean()]).numpy()

    ls1, ls2 = np.log(model.s_cells_), np.log(model.s_genes_)
    x = np.concatenate([ls1 - ls1.mean(), ls2 - ls2.mean()])
    gx, h = em_map(x), 1e-5
    jac = np.empty((x.size, x.size))
    for i in range(x.size):
        xp = x.copy()
        xp[i] += h
        jac[:, i] = (em_map(xp) - gx) / h
    ev = np.abs(np.linalg.eigvals(jac))
    return [float(v) for v in np.sort(ev)[::-1][:n_top]] + [float(np.abs(gx - x).max())]


def main(argv=None) -> None:
    import magmap
    import torch
    from magmap._utils import versions
    from magmap.medmagma.quotient import log_quotient

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["yan", "pollen", "baron"])
    p.add_argument("--resolutions", type=int, default=25)
    p.add_argument("--jacobian", nargs="*", default=[], help="datasets whose EM Jacobian spectrum is computed")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    resolutions = np.linspace(0.02, 2.0, args.resolutions)
    load_before, t_start = os.getloadavg(), time.perf_counter()
    out: dict = {}
    for name in args.datasets:
        counts, labels, info = prepared(name)
        w, sign = log_quotient(counts, zero_handling="one-pass")
        y2 = (sign * np.exp(w)) ** 2
        flat = np.sort(y2.ravel())[::-1]
        info.update(mean_y2=float(y2.mean()), top1pct_share_y2=float(flat[: flat.size // 100].sum() / flat.sum()))
        gm = magmap.GmGM().fit(np.log1p(counts))
        info["GmGM"] = evaluate(gm.cell_precision_, labels, resolutions)
        rows = []
        for zs in SCALES:
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m = magmap.MedMagma(random_state=0, z_scale=zs).fit(counts)
            row = {"z_scale": zs, "n_iter": int(m.n_iter_), "converged": bool(m.converged_),
                   "fit_seconds": time.perf_counter() - t0}
            row.update(evaluate(m.cell_precision_, labels, resolutions))
            if name in args.jacobian and zs in ("mean-square", "unit", 10.0):
                *top, resid = jacobian_spectrum(counts, m)
                row.update(jacobian_top_abs_eigenvalues=top, em_map_residual_max=resid)
            rows.append(row)
            print(name, json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}),
                  flush=True)
        out[name] = {"info": info, "fits": rows}
    result = {"benchmark": "MedMagma EM convergence against the scale of the E-step statistic (z_scale)",
              "params": {"datasets": args.datasets, "z_scales": list(SCALES), "resolutions": [0.02, 2.0, args.resolutions],
                         "model": "MedMagma(random_state=0, z_scale=...) on App. F counts; GmGM() on log1p",
                         "torch_threads": 1, "jacobian": args.jacobian},
              "versions": versions(),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg_before": load_before,
                          "load_avg_after": os.getloadavg()},
              "seconds_total": round(time.perf_counter() - t_start, 1), "results": out}
    Path(args.out).write_text(json.dumps(result, indent=1, default=float))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
