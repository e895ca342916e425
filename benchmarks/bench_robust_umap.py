"""Benchmark the robust parametric UMAP against umap-learn on the 3,696-cell pancreas (issue 4).

Sections (each written to the JSON as soon as it finishes, so a partial run keeps its numbers):
quality + fit time (phase 1 / robust phase vs umap-learn fit), transform throughput (vs umap-learn
transform), generalisation (train on 5/10/30 %), dropout 0–80 % and gene-impact spread with and without
the robust phase, certified box areas.

Usage: ``python benchmarks/bench_robust_umap.py [--sections quality,transform,generalisation,dropout]``
Results: ``benchmarks/results/robust_umap_<section>.json``.

Transform throughput alone: ``python benchmarks/bench_robust_umap.py --only transform [--model m.magmap.zip]``
(``--model``: load that model if the file exists, otherwise fit the default model and save it there, so
repeated runs skip the ~4 min fit; ``--repeats`` timings, median reported, wall and CPU time).
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

DATA = Path("/work/shared/data/pancreas_scvelo_supercell/pancreas_bastidasponce2019_3696x2000_counts.h5ad")
OUT = Path(__file__).parent / "results"
SEED = 0
log = logging.getLogger("bench")


def dump(name: str, payload: dict) -> None:
    from magmap._utils import versions

    payload = {"benchmark": f"robust_umap_{name}", "dataset": str(DATA.name), "seed": SEED, "versions": versions(),
               **payload}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"robust_umap_{name}.json").write_text(json.dumps(payload, indent=1, default=float))
    log.info("wrote %s", OUT / f"robust_umap_{name}.json")


def metrics(Xz, Z, y) -> dict:
    from magmap.metrics import knn_accuracy, knn_preservation, trustworthiness

    return {"trustworthiness_15": trustworthiness(Xz, Z, n_neighbors=15),
            "knn_preservation_15": knn_preservation(Xz, Z, n_neighbors=15),
            "knn_label_accuracy_15": knn_accuracy(Z, y, n_neighbors=15)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sections", default="quality,transform,generalisation,dropout")
    ap.add_argument("--only", default=None, help="run just this section (e.g. 'transform'); overrides --sections")
    ap.add_argument("--model", default=None, help="model file: loaded if it exists, else the fitted model is saved there")
    ap.add_argument("--repeats", type=int, default=3, help="timed transform repeats (median reported)")
    ap.add_argument("--dropout-repeats", type=int, default=10)
    args = ap.parse_args()
    sections = {args.only} if args.only else set(args.sections.split(","))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import anndata as ad
    import torch
    import umap

    from magmap.metrics import dropout_correlation, gene_impact_summary, knn_accuracy
    from magmap.umap import RobustUMAP

    a = ad.read_h5ad(DATA)
    y = a.obs["clusters"].astype(str).to_numpy()
    counts = sp.csr_matrix(a.X)
    params = dict(random_state=SEED, verbose=False)
    log.info("torch threads %d", torch.get_num_threads())

    import copy

    model_path = Path(args.model) if args.model else None
    if model_path is not None and model_path.exists() and sections <= {"transform"}:
        robust = RobustUMAP.load(model_path)
        robust_total = robust.fit_time_["total"]
        log.info("loaded %s (fit: %s)", model_path, robust.fit_time_)
    else:
        t = time.perf_counter()
        robust = RobustUMAP(robust=True, **params).fit(a)
        robust_total = time.perf_counter() - t
        log.info("fit: %s", robust.fit_time_)
        if model_path is not None:
            robust.save(model_path)
    if not hasattr(robust, "encoder_phase1_"):  # loaded model: the phase-1 network is not stored
        robust.encoder_phase1_, robust.embedding_phase1_ = robust.encoder_, robust.embedding_
    # the same run without the robust phase: the phase-1 network kept by fit()
    plain = copy.copy(robust)
    plain.encoder_, plain.embedding_ = robust.encoder_phase1_, robust.embedding_phase1_
    plain_total = robust.fit_time_["total"] - robust.fit_time_["robust"]
    Xz = robust.preprocess(a)
    if "quality" in sections:
        t = time.perf_counter()
        ref = umap.UMAP(random_state=SEED).fit(Xz)
        umap_fit = time.perf_counter() - t
        res = {"params": {"RobustUMAP": {k: v for k, v in robust.get_params().items() if k != "encoder"},
                          "n_epochs_": robust.n_epochs_, "batch_size_": robust.batch_size_,
                          "robust_epochs_": robust.robust_epochs_, "umap_learn": {"random_state": SEED}},
               "input": "z-scored 2,000 genes (the model's own preprocessing), same matrix for umap-learn",
               "umap_learn": {**metrics(Xz, ref.embedding_, y), "fit_s": umap_fit},
               "robust_umap_phase1_only": {**metrics(Xz, plain.embedding_, y), "fit_s": plain_total,
                                           "note": "phase-1 network of the same fit (before the robust phase)"},
               "robust_umap": {**metrics(Xz, robust.embedding_, y), "fit_s": robust_total,
                               "fit_time_s": robust.fit_time_}}
        sub = np.random.default_rng(SEED).choice(a.n_obs, 500, replace=False)
        for name, m in (("robust_umap_phase1_only", plain), ("robust_umap", robust)):
            t = time.perf_counter()
            cert = m.certify(a[sub])
            res[name]["certified_box"] = {**cert.summary(), "n_cells": 500, "time_s": time.perf_counter() - t}
        dump("quality", res)
        umap_model = ref
    if "transform" in sections:
        import os

        reps = 60  # 3,696 × 60 ≈ 222k cells
        big = sp.vstack([counts] * reps).tocsr()
        robust.transform(counts[:1000])  # warm-up
        load_before = os.getloadavg()
        walls, cpus = [], []
        for _ in range(max(1, args.repeats)):
            t, c = time.perf_counter(), time.process_time()
            Zb = robust.transform(big)
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
        tt, ct = float(np.median(walls)), float(np.median(cpus))
        log.info("transform %d cells: wall %s s, cpu %s s", big.shape[0], np.round(walls, 3), np.round(cpus, 3))
        if "quality" not in sections:
            umap_model = umap.UMAP(random_state=SEED).fit(Xz)
        umap_model.transform(Xz[:50])  # compile
        t = time.perf_counter()
        umap_model.transform(Xz[:2000])
        ut = time.perf_counter() - t
        Xt = torch.from_numpy(Xz)
        net_walls = []
        with torch.inference_mode():
            for _ in range(max(1, args.repeats)):
                t = time.perf_counter()
                for _ in range(20):
                    robust.encoder_(Xt)
                net_walls.append(time.perf_counter() - t)
        net_only = 20 * Xz.shape[0] / float(np.median(net_walls))
        dump("transform", {"robust_umap": {"n_cells": int(big.shape[0]), "seconds": tt,
                                           "cells_per_s": big.shape[0] / tt,
                                           "cpu_seconds": ct, "cpu_us_per_cell": 1e6 * ct / big.shape[0],
                                           "cells_per_cpu_s": big.shape[0] / ct,
                                           "repeats_wall_s": walls, "repeats_cpu_s": cpus,
                                           "statistic": "median of repeats",
                                           "network_only_cells_per_s": net_only,
                                           "input": "scipy CSR float32 counts, 2,000 genes = the model genes in order",
                                           "includes": "gene alignment, normalisation, scaling, chunked forward"},
                           "machine": {"torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                                       "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
                                       "note": "2 cores shared with other jobs: wall time depends on their load; "
                                               "CPU time per cell is the steadier figure"},
                           "umap_learn": {"n_cells": 2000, "seconds": ut, "cells_per_s": 2000 / ut,
                                          "input": "already z-scored (preprocessing not timed)"},
                           "equal_to_embedding_max_abs_diff": float(np.abs(Zb[:a.n_obs] - robust.embedding_).max())})
    if "generalisation" in sections:
        out = {}
        for frac in (0.05, 0.10, 0.30):
            rng = np.random.default_rng(SEED)
            tr = rng.random(a.n_obs) < frac
            t = time.perf_counter()
            m = RobustUMAP(robust=False, **params).fit(a[tr])
            fit_s = time.perf_counter() - t
            t = time.perf_counter()
            Zte = m.transform(a[~tr])
            tr_s = time.perf_counter() - t
            acc = knn_accuracy(Zte, y[~tr], Z_train=m.embedding_, labels_train=y[tr])
            Xz_tr, Xz_te = m.preprocess(a[tr]), m.preprocess(a[~tr])
            t = time.perf_counter()
            u = umap.UMAP(random_state=SEED, n_neighbors=min(15, int(tr.sum()) - 1)).fit(Xz_tr)
            ufit = time.perf_counter() - t
            t = time.perf_counter()
            Zu = u.transform(Xz_te)
            ut = time.perf_counter() - t
            uacc = knn_accuracy(Zu, y[~tr], Z_train=u.embedding_, labels_train=y[tr])
            out[str(frac)] = {"n_train": int(tr.sum()), "n_test": int((~tr).sum()),
                              "robust_umap": {"heldout_knn_accuracy": acc, "fit_s": fit_s, "transform_s": tr_s},
                              "umap_learn": {"heldout_knn_accuracy": uacc, "fit_s": ufit, "transform_s": ut}}
            log.info("generalisation %s: %s", frac, out[str(frac)])
            dump("generalisation", {"fractions": out, "params": {"robust": False, "n_neighbors_knn_classifier": 15}})
    if "dropout" in sections:
        res = {}
        for name, m in (("phase1_only", plain), ("robust", robust)):
            dc = dropout_correlation(m.transform, counts, rates=(0.0, 0.2, 0.4, 0.6, 0.8),
                                     n_repeats=args.dropout_repeats, random_state=SEED)
            imp = m.gene_impact(a)
            res[name] = {"dropout_correlation": {str(k): {"mean": float(np.mean(v)), "sd": float(np.std(v)), "values": v}
                                                  for k, v in dc.items()},
                         "gene_impact_l1_scaled_by_sqrt_area_ref": gene_impact_summary(imp, scale=np.sqrt(m.area_ref_)),
                         "top_genes": list(imp.sort_values(ascending=False).index[:10])}
            dump("dropout", {"models": res, "params": {"repeats": args.dropout_repeats,
                                                       "perturbation": "each non-zero count zeroed with prob. rate"}})


if __name__ == "__main__":
    main()
