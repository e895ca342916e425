"""MED-MAGMA against GmGM on every labelled real dataset, with the MED-MAGMA paper's protocol.

Protocol (the paper's App. F preprocessing and its real-data evaluation):

* **Preprocessing.** Linear-scale expression ``raw`` (per dataset below); ``log1p(raw)``; the 2000 most
  variable genes (``sc.pp.highly_variable_genes``, scanpy's default flavour on the log data); then
  the sparsity cut ``p`` in ``0, 0.01, …, 1`` whose genes (HVG and expressed in more than ``p·cells``
  cells) make the matrix closest to square (first minimiser). Cells with no count left are dropped.
* **Fits.** MedMagma on ``raw`` (its defaults), GmGM on ``log1p(raw)`` (the paper's baseline, its
  ``"paper"`` mode) and, with ``--skeptic``, GmGM with the nonparanormal skeptic.
* **Evaluation.** Cell graph = top-k of ``|Ψ_cells|`` per cell (diagonal excluded, M + Mᵀ, unweighted)
  for k in 1, 2, 3, 4, 5, 10, 15, 20, 25, 30, 40; Leiden (RB configuration, 2 iterations, seed 0) at
  100 resolutions in ``linspace(0.02, 2, 100)``; the best AMI (arithmetic) over all (k, resolution)
  against the label, and the best nominal assortativity over k (also the paper's scalar-on-codes
  variant). Labels: the ``NA`` of missing values is a class of its own.

Datasets (``/work/shared/data``; each folder's PROVENANCE.txt says how to read it):

=================  ==================================================================================
baron              Baron 2016 pancreas, 328 cells, raw UMI counts; ``cell_type``
cellbench          CellBench CEL-seq2, SNG cells only, ERCC rows dropped; ``cell_line_demuxlet``
pancreas_velo      scVelo pancreas (VeloViz subset, 739 cells), spliced counts; ``clusters``
pancreas_supercell scVelo pancreas (all 3696 cells, 2000 genes), spliced counts; ``clusters``
pbmc68k            scanpy's pbmc68k_reduced: ``.raw`` is log-normalised, ``raw = expm1(.raw)``; ``bulk_labels``
pollen             Pollen 2014 (SIMLR): log10(x + 1) values, ``raw = 10**X − 1``; ``true_label``
yan                Yan 2013 embryo (SC3): RPKM (linear scale, used as is); ``cell_type``
=================  ==================================================================================

Usage::

    flock /tmp/magmap-cpu.lock .venv/bin/python benchmarks/bench_medmagma_real.py [--datasets ...]

Writes ``benchmarks/results/medmagma_real.json`` (per dataset: shape after preprocessing, per method
the best AMI with its k and resolution, the best assortativity with its k, fit time, iterations,
diagnostics), with parameters, versions and load averages.
"""
from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

DATA = Path(os.environ.get("MAGMAP_SHARED", "/work/shared")) / "data"
OUT = Path(__file__).resolve().parent / "results" / "medmagma_real.json"
KS = (1, 2, 3, 4, 5, 10, 15, 20, 25, 30, 40)
RESOLUTIONS = np.linspace(0.02, 2.0, 100)
DATASETS = {
    "baron": ("baron2016_pancreas_cider328/baron2016_pancreas_328x12474_counts.h5ad", "cell_type"),
    "cellbench": ("cellbench_celseq2_3cl/cellbench_celseq2_3celllines_counts.h5ad", "cell_line_demuxlet"),
    "pancreas_velo": ("pancreas_scvelo_veloviz739/pancreas_bastidasponce2019_739x7192_counts.h5ad", "clusters"),
    "pancreas_supercell": ("pancreas_scvelo_supercell/pancreas_bastidasponce2019_3696x2000_counts.h5ad", "clusters"),
    "pbmc68k": ("pbmc68k_reduced_scanpy/10x_pbmc68k_reduced.h5ad", "bulk_labels"),
    "pollen": ("pollen2014_simlr249/pollen2014_249x6982_log_simlr.h5ad", "true_label"),
    "yan": ("yan2013_embryo_sc3/yan2013_90x20214_rpkm.h5ad", "cell_type"),
}


def _dense(m) -> np.ndarray:
    return np.asarray(m.toarray() if sp.issparse(m) else m, dtype=np.float64)


def linear_expression(name: str):
    """(raw linear-scale cells × genes, labels) as each dataset's provenance says to read it."""
    import anndata as ad

    path, label = DATASETS[name]
    a = ad.read_h5ad(DATA / path)
    if name == "cellbench":
        a = a[a.obs["demuxlet_cls"] == "SNG"]
        a = a[:, ~a.var_names.str.startswith("ERCC-")]
    if name == "pbmc68k":
        raw = np.expm1(_dense(a.raw.X))
    elif name == "pollen":
        raw = np.round(10.0 ** _dense(a.X) - 1.0, 6)
    else:
        raw = _dense(a.X)
    labels = a.obs[label].astype(object).where(a.obs[label].notna(), "NA").astype(str).to_numpy()
    return raw, labels


def preprocess(raw: np.ndarray) -> tuple[np.ndarray, dict]:
    """The paper's App. F: 2000 HVGs of log1p, then the sparsity cut that makes the matrix squarest."""
    import anndata as ad
    import scanpy as sc

    keep_genes = (raw > 0).sum(0) > 0
    raw = raw[:, keep_genes]
    a = ad.AnnData(np.log1p(raw))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.highly_variable_genes(a, n_top_genes=min(2000, raw.shape[1]))
    hvg = a.var["highly_variable"].to_numpy()
    n_cells = raw.shape[0]
    expressed = (raw > 0).sum(0)
    best, best_p = None, None
    for p in np.linspace(0, 1, 101):
        genes = hvg & (expressed > p * n_cells)
        if best is None or abs(genes.sum() - n_cells) < abs(best.sum() - n_cells):
            best, best_p = genes, float(p)
    counts = raw[:, best]
    cells = counts.sum(1) > 0
    return counts, {"sparsity_cut": best_p, "cells_kept": cells, "n_hvg": int(hvg.sum())}


def evaluate(precision, labels: np.ndarray, resolutions: np.ndarray = RESOLUTIONS) -> dict:
    """Best AMI over the (k, resolution) sweep and best assortativity over k (unweighted graphs)."""
    import igraph as ig
    import leidenalg
    from magmap.metrics import assortativity, topk_graph
    from sklearn.metrics import adjusted_mutual_info_score

    best = {"ami": -np.inf}
    assort = {"nominal": -np.inf, "scalar_codes": -np.inf}
    for k in KS:
        if k >= precision.shape[0]:
            continue
        graph = topk_graph(precision, k, weighted=False)
        coo = sp.triu(graph, k=1).tocoo()
        g = ig.Graph(n=graph.shape[0], edges=list(zip(coo.row.tolist(), coo.col.tolist())))
        for res in resolutions:
            part = leidenalg.find_partition(g, leidenalg.RBConfigurationVertexPartition, resolution_parameter=float(res),
                                            n_iterations=2, seed=0)
            ami = adjusted_mutual_info_score(labels, part.membership)
            if ami > best["ami"]:
                best = {"ami": float(ami), "k": k, "resolution": float(res)}
        for method in ("nominal", "scalar_codes"):
            val = assortativity(graph, labels, method=method)
            if val > assort[method]:
                assort[method] = float(val)
                assort[f"{method}_k"] = k
    return {"best_ami": best["ami"], "best_ami_k": best["k"], "best_ami_resolution": best["resolution"],
            "best_assortativity": assort["nominal"], "best_assortativity_k": assort["nominal_k"],
            "best_assortativity_scalar_codes": assort["scalar_codes"]}


def fits(counts: np.ndarray, skeptic: bool, single_axis: bool = False):
    """(name, fit thunk) per method on App. F counts; single-axis is the paper's ``pinv(counts countsᵀ, 1e-7)``."""
    import magmap

    out = [("MedMagma", lambda: magmap.MedMagma(random_state=0).fit(counts)),
           ("GmGM", lambda: magmap.GmGM().fit(np.log1p(counts)))]
    if skeptic:
        out.append(("GmGM_skeptic", lambda: magmap.GmGM(skeptic=True).fit(np.log1p(counts))))
    if single_axis:
        out.append(("single_axis", lambda: magmap.SingleAxis(rcond=1e-7).fit(counts)))
    return out


def prepared(name: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """(App. F counts, labels, description) of a dataset, cells left without counts dropped."""
    raw, labels = linear_expression(name)
    counts, info = preprocess(raw)
    cells = info.pop("cells_kept")
    counts, lab = counts[cells], labels[cells]
    return counts, lab, {"dataset": name, "n_cells": int(counts.shape[0]), "n_genes": int(counts.shape[1]),
                         "zero_fraction": float((counts == 0).mean()), "n_labels": len(set(lab)), **info}


def run_dataset(name: str, *, skeptic: bool, single_axis: bool = False,
                resolutions: np.ndarray = RESOLUTIONS) -> list[dict]:
    """Load, preprocess (App. F), fit every method and evaluate it: one result row per method."""
    counts, lab, base = prepared(name)
    rows = []
    for method, fit in fits(counts, skeptic, single_axis):
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = fit()
        row = dict(base, method=method, seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0,
                   n_iter=int(model.n_iter_), converged=bool(model.converged_))
        if hasattr(model, "diagnostics_"):
            row.update(degenerate=model.degenerate_, laplace_weight=model.laplace_weight_,
                       solver=model.solver_, diagnostics=model.diagnostics_)
        t1 = time.perf_counter()
        row.update(evaluate(model.cell_precision_, lab, resolutions))
        row["evaluation_seconds"] = time.perf_counter() - t1
        rows.append(row)
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()
                          if k != "diagnostics"}), flush=True)
    return rows


def main(argv=None) -> None:
    from bench_robust_umap import git_commit
    from magmap._utils import versions

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--skeptic", action="store_true", help="also GmGM with the nonparanormal skeptic")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    load_before, t_start = os.getloadavg(), time.perf_counter()
    rows = [row for name in args.datasets for row in run_dataset(name, skeptic=args.skeptic)]
    summary = {}
    for name in args.datasets:
        by = {r["method"]: r for r in rows if r["dataset"] == name}
        summary[name] = {m: {"ami": r["best_ami"], "assortativity": r["best_assortativity"]} for m, r in by.items()}
        summary[name]["medmagma_minus_gmgm_ami"] = by["MedMagma"]["best_ami"] - by["GmGM"]["best_ami"]
    out = {"benchmark": "medmagma_real",
           "params": {"protocol": "MED-MAGMA paper App. F preprocessing; unweighted top-k cell graphs",
                      "ks": list(KS), "resolutions": "linspace(0.02, 2, 100)", "leiden": "RBConfiguration, n_iterations=2, seed=0",
                      "ami": "sklearn adjusted_mutual_info_score (arithmetic)", "assortativity": "nominal (and scalar on codes)",
                      "MedMagma": "MedMagma(random_state=0) on linear-scale expression", "GmGM": "GmGM() on log1p"},
           "versions": versions(), "git_commit": git_commit(), "cpus": os.cpu_count(),
           "thread_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
           "load_avg_before": load_before, "load_avg_after": os.getloadavg(),
           "seconds_total": round(time.perf_counter() - t_start, 1),
           "medmagma_at_least_gmgm_ami": {n: bool(s["medmagma_minus_gmgm_ami"] >= 0) for n, s in summary.items()},
           "summary": summary, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    print(json.dumps(summary, indent=1))
    print(f"# saved {args.out}")


if __name__ == "__main__":
    main()
