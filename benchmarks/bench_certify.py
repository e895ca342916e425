"""Certificates of the default RobustUMAP: certified radii, box sizes at candidate ε, and their speed.

For the pancreas data (``../shared/data/pancreas_scvelo_supercell``, 3,696 cells) and the bundled Baron
cells (328), fits ``RobustUMAP(random_state=0)`` with the current defaults, then records

* the certified radius of every training cell (CROWN, box diagonal ≤ 5 % of the embedding's diagonal,
  rtol 0.01): quantiles, cells with radius 0, bound evaluations per cell; the same for the phase-1
  network (before the robust phase, against its own embedding's diagonal), for fractions 2 % and 10 %,
  and with CROWN-IBP and IBP bounds;
* the box at candidate ε: median / 10th / 90th percentile of the box diagonal over the embedding's
  diagonal, the share of cells whose box is within 5 % (= whose radius reaches ε), median relative area;
* the recommended box ε: the largest candidate at which the median box diagonal is at most 80 % of the
  radius' limit (4 % of the embedding's diagonal) on every dataset;
* cells/s of boxes at the model's ε and at the recommended ε (``crown_bounds``, and full CROWN
  ``output_bounds`` timed beside it), of radii (interval reuse, and full CROWN at every step timed beside
  it on a subset) and of ``certify()`` (boxes + radii), medians over ``--repeats``.

Writes ``benchmarks/results/certify.json`` with parameters, seed, versions, git commit, thread count
and load averages (``MAGMAP_SHARED`` points to ``shared/`` when the script runs from another checkout).
Run under the shared lock::

    flock /tmp/magmap-cpu.lock .venv/bin/python benchmarks/bench_certify.py [--repeats 3] [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

import magmap
from magmap._utils import versions
from magmap.crown import crown_bounds, output_bounds
from magmap.umap import RobustUMAP
from magmap.umap.certify import DEFAULT_FRACTION, DEFAULT_RTOL, bisect_radius, box_diagonal, embedding_diagonal

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "certify.json"
SHARED = Path(os.environ.get("MAGMAP_SHARED", REPO.parent / "shared"))
PANCREAS = SHARED / "data" / "pancreas_scvelo_supercell" / "pancreas_bastidasponce2019_3696x2000_counts.h5ad"
CANDIDATES = [0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2]
#: The recommended box ε is the largest candidate whose median box diagonal is ≤ this share of the limit.
MEDIAN_BOX_SHARE = 0.8
SEED = 0


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[Any, dict[str, float]]:
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return out, {"median_s": float(np.median(walls)), "min_s": float(min(walls)),
                 "median_cpu_s": float(np.median(cpus)), "repeats": repeats}


def _quantiles(v: np.ndarray) -> dict[str, float]:
    return {"median": float(np.median(v)), "mean": float(np.mean(v)),
            **{f"q{int(p * 100):02d}": float(np.quantile(v, p)) for p in (0.01, 0.1, 0.25, 0.75, 0.9, 0.99)},
            "min": float(v.min()), "max": float(v.max())}


def _radius_summary(res: Any) -> dict[str, Any]:
    return {**_quantiles(res.radius), "n_zero": int((res.radius == 0).sum()),
            "n_at_ceiling": int(np.isinf(res.upper).sum()), "evaluations_per_cell": float(res.n_evaluations.mean())}


def bench_dataset(name: str, adata: Any, repeats: int, subset: int,
                  quick: bool) -> tuple[dict[str, Any], RobustUMAP, torch.Tensor]:
    """Fit the default model; radii, their speed against full CROWN, and boxes at the candidate ε."""
    t0 = time.perf_counter()
    kwargs = {"n_epochs": 20, "robust_epochs": 2} if quick else {}
    model = RobustUMAP(random_state=SEED, verbose=False, **kwargs).fit(adata)
    fit_s = time.perf_counter() - t0
    net = model.encoder_
    x = torch.from_numpy(model.preprocess(adata))
    n = x.shape[0]
    diag_ref = embedding_diagonal(model.embedding_)
    limit = DEFAULT_FRACTION * diag_ref
    out: dict[str, Any] = {
        "n_cells": int(n), "n_model_genes": int(x.shape[1]), "fit_s": fit_s, "fit_time": model.fit_time_,
        "model_params": {k: v for k, v in model.get_params().items() if k != "encoder"},
        "diagonal_ref": diag_ref, "area_ref": float(np.prod(np.ptp(model.embedding_, axis=0))),
    }
    with torch.no_grad():
        # --- radii --------------------------------------------------------------------------------
        rad, t_rad = _timed(lambda: bisect_radius(net, x, limit), repeats)
        out["radius"] = {"fraction": DEFAULT_FRACTION, "rtol": DEFAULT_RTOL, "method": "crown",
                         **_radius_summary(rad), "time": t_rad, "cells_per_s": n / t_rad["median_s"]}
        m = min(subset, n)
        _, t_fast = _timed(lambda: bisect_radius(net, x[:m], limit), repeats)
        slow, t_slow = _timed(lambda: bisect_radius(net, x[:m], limit, reuse_intervals=False), repeats)
        out["radius_speed_subset"] = {
            "n_cells": m, "interval_reuse": {"time": t_fast, "cells_per_s": m / t_fast["median_s"]},
            "full_crown_each_step": {"time": t_slow, "cells_per_s": m / t_slow["median_s"]},
            "speedup": t_slow["median_s"] / t_fast["median_s"],
            "max_relative_radius_difference": float(np.max(np.abs(slow.radius - rad.radius[:m]) / rad.radius[:m])),
        }
        out["radius_by_fraction"] = {f"{f:g}": _radius_summary(bisect_radius(net, x, f * diag_ref))
                                     for f in (0.02, 0.1)}
        out["radius_by_method"] = {meth: _radius_summary(bisect_radius(net, x, limit, method=meth))
                                   for meth in ("crown-ibp", "ibp")}
        net1 = getattr(model, "encoder_phase1_", None)
        if net1 is not None and next(net1.parameters()).shape[1] == x.shape[1]:
            diag1 = embedding_diagonal(model.embedding_phase1_)
            phase1 = bisect_radius(net1, x, DEFAULT_FRACTION * diag1)
            out["radius_phase1_network"] = {"diagonal_ref": diag1, **_radius_summary(phase1),
                                            "median_ratio_final_over_phase1": float(np.median(rad.radius) /
                                                                                    np.median(phase1.radius))}
        else:
            out["radius_phase1_network"] = "skipped: the phase-1 network does not take the model input"
        # --- boxes at candidate ε -------------------------------------------------------------------
        boxes = {}
        for eps in CANDIDATES:
            res = crown_bounds(net, x, eps)
            lo, up = res.lower.numpy(), res.upper.numpy()
            rel = box_diagonal(lo, up) / diag_ref
            area = np.prod(np.clip(up - lo, 0, None), axis=1) / out["area_ref"]
            boxes[f"{eps:g}"] = {"relative_diagonal": _quantiles(rel),
                                 "share_within_fraction": float(np.mean(rel <= DEFAULT_FRACTION)),
                                 "share_radius_at_least_eps": float(np.mean(rad.radius >= np.float32(eps))),
                                 "median_relative_area": float(np.median(area)),
                                 "median_box_width": [float(w) for w in np.median(up - lo, axis=0)]}
        out["boxes"] = boxes
    return out, model, x


def bench_speed_at(model: Any, adata: Any, x: torch.Tensor, eps_box: float, repeats: int) -> dict[str, Any]:
    """Cells/s of boxes (``crown_bounds`` vs full CROWN) at the model's ε and at ``eps_box``, of ``certify``."""
    net, n = model.encoder_, x.shape[0]
    out: dict[str, Any] = {}
    speed = {}
    with torch.no_grad():
        for eps in sorted({float(model.epsilon), eps_box}):
            _, t_sparse = _timed(lambda: crown_bounds(net, x, eps), repeats)
            _, t_full = _timed(lambda: output_bounds(net, x, eps, method="crown"), repeats)
            speed[f"{eps:g}"] = {"crown_bounds": {"time": t_sparse, "cells_per_s": n / t_sparse["median_s"]},
                                 "full_crown_output_bounds": {"time": t_full, "cells_per_s": n / t_full["median_s"]},
                                 "speedup": t_full["median_s"] / t_sparse["median_s"]}
    out["box_speed"] = speed
    cert, t_cert = _timed(lambda: model.certify(adata, eps_box), repeats)
    out["certify"] = {"epsilon": eps_box, "time": t_cert, "cells_per_s": n / t_cert["median_s"],
                      "summary": cert.summary()}
    _, t_box_only = _timed(lambda: model.certify(adata, eps_box, radius=False), repeats)
    out["certify_boxes_only"] = {"epsilon": eps_box, "time": t_box_only, "cells_per_s": n / t_box_only["median_s"]}
    _, t_tr = _timed(lambda: model.transform(adata), repeats)
    out["transform_for_scale"] = {"time": t_tr, "cells_per_s": n / t_tr["median_s"]}
    return out


def recommend_epsilon(datasets: dict[str, Any]) -> float:
    """The largest candidate ε whose median box diagonal is ≤ MEDIAN_BOX_SHARE × fraction on every dataset."""
    ok = [eps for eps in CANDIDATES if all(d["boxes"][f"{eps:g}"]["relative_diagonal"]["median"]
                                           <= MEDIAN_BOX_SHARE * DEFAULT_FRACTION for d in datasets.values())]
    return max(ok) if ok else min(CANDIDATES)


def _git() -> dict[str, Any]:
    import subprocess

    def run(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    # an exported tree (git archive) is no checkout: the caller names its commit
    return {"commit": run("git", "rev-parse", "HEAD") or os.environ.get("MAGMAP_SOURCE_COMMIT"),
            "umap_or_crown_files_modified": bool(run("git", "status", "--porcelain", "--", "pybridge/magmap/umap",
                                                     "pybridge/magmap/crown"))}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--subset", type=int, default=512, help="cells for the full-CROWN radius baseline")
    ap.add_argument("--quick", action="store_true", help="short training (smoke test; not for results)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    import anndata as ad

    load_start = os.getloadavg()
    result: dict[str, Any] = {
        "benchmark": "robust_umap_certificates",
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": versions(), "python": sys.version.split()[0], "git": _git(),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "loadavg_start": load_start},
        "setup": {"seed": SEED, "model": "RobustUMAP(random_state=0) with the defaults of this version"
                  + (" (quick: n_epochs=20, robust_epochs=2)" if args.quick else ""),
                  "fraction": DEFAULT_FRACTION, "rtol": DEFAULT_RTOL, "candidate_epsilons": CANDIDATES,
                  "recommendation_rule": f"largest candidate with median box diagonal <= {MEDIAN_BOX_SHARE:g} x "
                                         f"{DEFAULT_FRACTION:g} of the embedding's diagonal on every dataset",
                  "repeats": args.repeats, "subset": args.subset,
                  "timing": "median over repeats of wall time (and process CPU time); float32; torch.no_grad"},
        "datasets": {},
    }
    sets = {"pancreas": lambda: ad.read_h5ad(PANCREAS), "baron_bundled": magmap.datasets.baron2016_pancreas}
    fitted = {}
    for name, load in sets.items():
        print(f"[{name}] fitting and certifying ...", flush=True)
        adata = load()
        result["datasets"][name], model, x = bench_dataset(name, adata, args.repeats, args.subset, args.quick)
        fitted[name] = (model, adata, x)
        d = result["datasets"][name]
        print(f"[{name}] radius median {d['radius']['median']:.4f} ({d['radius']['cells_per_s']:.0f} cells/s; "
              f"full CROWN each step {d['radius_speed_subset']['full_crown_each_step']['cells_per_s']:.0f}); median "
              "box / diagonal: " + ", ".join(f"{e}: {b['relative_diagonal']['median']:.3f}" for e, b in d["boxes"].items()),
              flush=True)
    eps_box = recommend_epsilon(result["datasets"])
    result["recommended_epsilon"] = eps_box
    print(f"recommended box epsilon: {eps_box:g}", flush=True)
    for name, (model, adata, x) in fitted.items():
        result["datasets"][name].update(bench_speed_at(model, adata, x, eps_box, args.repeats))
        d = result["datasets"][name]
        print(f"[{name}] certify(eps={eps_box:g}) {d['certify']['cells_per_s']:.0f} cells/s", flush=True)
    result["machine"]["loadavg_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=float))
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
