"""MED-MAGMA beyond the published scale: time and peak memory against the number of cells, for the
dense path and the many-cells (low-rank) path, on cells drawn from a real dataset.

Data: the scVelo pancreas (Bastidas-Ponce 2019, all 3696 cells; ``pancreas_scvelo_supercell``), the
``--genes`` most variable genes (``seurat_v3`` on the raw counts). Larger cell counts are made of
the real cells at new sequencing depths: replicate r > 0 draws every count as Binomial(count, 0.8)
(seed r), so the cells keep their type and gene structure (cells left with no count are skipped).

Each (path, cells) fit runs in its own process (``--worker``) with ``--threads`` torch threads, so
the peak resident memory it reports (``ru_maxrss``) is that fit's; the time of the cell graph
(top-10 per cell, blocked products over the factors) is measured apart from the fit. Where both paths
ran, their top-10 cell graphs are compared (Jaccard of each cell's neighbour sets). A CUDA section runs
the same sizes on the GPU when torch sees one and says why it is skipped otherwise.

Usage (heavy: under the shared lock)::

    flock /tmp/magmap-cpu.lock .venv/bin/python benchmarks/bench_medmagma_scale.py \\
        --cells 1000 2000 5000 10000 20000 50000 100000 --dense-max 5000

Writes ``benchmarks/results/medmagma_scale.json`` and ``medmagma_scale.png`` (time and memory
against cells).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path(os.environ.get("MAGMAP_SHARED", "/work/shared")) / "data"
PANCREAS = DATA / "pancreas_scvelo_supercell" / "pancreas_bastidasponce2019_3696x2000_counts.h5ad"
K = 10


def pancreas_cells(n_cells: int, n_genes: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """``n_cells`` cells × (up to) ``n_genes`` HVGs of the real pancreas data, with binomial-thinned
    replicates."""
    import anndata as ad
    import scanpy as sc

    a = ad.read_h5ad(PANCREAS)
    sc.pp.filter_genes(a, min_cells=3)
    sc.pp.highly_variable_genes(a, flavor="seurat_v3", n_top_genes=n_genes)
    a = a[:, a.var["highly_variable"].to_numpy()]
    base = sp.csr_matrix(a.X, dtype=np.float64)
    labels = a.obs["clusters"].astype(str).to_numpy()
    blocks, labs, have, r = [], [], 0, 0
    while have < n_cells:
        block = base.copy()
        if r > 0:
            rng = np.random.default_rng(r)
            block.data = rng.binomial(block.data.astype(np.int64), 0.8).astype(np.float64)
            block.eliminate_zeros()
        keep = np.flatnonzero(np.diff(block.indptr) > 0)[: n_cells - have]
        blocks.append(block[keep])
        labs.append(labels[keep])
        have += keep.size
        r += 1
    X = sp.vstack(blocks).tocsr()
    # genes with no count among the cells taken (possible for small n) are dropped, as a user would
    return X[:, np.flatnonzero(X.getnnz(axis=0) > 0)], np.concatenate(labs)


def worker(args) -> None:
    """One fit; prints a JSON line (and saves the cell graph for the agreement check)."""
    import magmap
    import torch

    X, labels = pancreas_cells(args.n, args.genes)
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    torch.set_num_threads(args.threads)
    if args.path == "gmgm":  # the noise-unaware baseline, on log1p values as in the published comparison
        X = X.copy()
        X.data = np.log1p(X.data)
        model = magmap.GmGM(device=args.device)
    else:
        model = magmap.MedMagma(random_state=0, solver=args.path, n_threads=args.threads, device=args.device,
                                max_iter=args.max_iter)
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(X)
    if args.device == "cuda":
        torch.cuda.synchronize()
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    t1 = time.perf_counter()
    graph = model.cell_graph(K)
    graph_s = time.perf_counter() - t1
    coo = sp.triu(graph, 1).tocoo()
    if args.save:
        sp.save_npz(args.save, graph)
    path = getattr(model, "solver_", args.path)
    row = {"cells": int(X.shape[0]), "genes": int(X.shape[1]), "path": path,
           "device": getattr(model, "device_", args.device), "threads": args.threads, "fit_seconds": fit_s,
           "fit_cpu_seconds": fit_cpu, "graph_seconds": graph_s, "total_seconds": fit_s + graph_s,
           "n_iter": int(model.n_iter_), "seconds_per_iteration": fit_s / max(int(model.n_iter_), 1),
           "converged": bool(model.converged_),
           "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
           "rss_after_data_gib": rss_data,
           "same_type_edge_fraction": float((labels[coo.row] == labels[coo.col]).mean())}
    if args.path != "gmgm":
        row.update({"max_iter": args.max_iter, "zero_fraction": model.zero_fraction_,
                    "laplace_weight": model.laplace_weight_, "degenerate": model.degenerate_,
                    "memory_estimate_gib": magmap.medmagma.memory_needed(X.shape[0], X.shape[1], path) / 2**30})
    if args.device == "cuda":
        row["cuda_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    print(json.dumps(row), flush=True)


def _run(n: int, path: str, args, device: str, save: str | None) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--n", str(n), "--path", path, "--genes", str(args.genes),
           "--threads", str(args.threads), "--device", device, "--max-iter", str(args.max_iter)] + (
        ["--save", save] if save else [])
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.time_budget)
    except subprocess.TimeoutExpired:
        return {"cells": n, "path": path, "device": device, "skipped": f"over the time budget of {args.time_budget} s"}
    if proc.returncode != 0:
        return {"cells": n, "path": path, "device": device, "error": proc.stderr[-1500:]}
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["process_seconds"] = time.perf_counter() - t0
    row["load_avg"] = os.getloadavg()
    return row


def _jaccard(a: sp.csr_matrix, b: sp.csr_matrix) -> tuple[float, float]:
    """Mean and minimum over cells of the Jaccard index of their neighbour sets in two graphs."""
    a, b = sp.csr_matrix(a != 0), sp.csr_matrix(b != 0)
    inter = np.asarray(a.multiply(b).sum(1)).ravel()
    union = np.asarray((a + b != 0).sum(1)).ravel()
    j = inter / np.maximum(union, 1)
    return float(j.mean()), float(j.min())


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for (p, dev), style in ((("dense", "cpu"), "s-"), (("lowrank", "cpu"), "o-"), (("lowrank", "cuda"), "^--"),
                            (("dense", "cuda"), "v--"), (("gmgm", "cpu"), "x:")):
        pts = sorted((r["cells"], r["total_seconds"], r["seconds_per_iteration"], r["peak_rss_gib"]) for r in rows
                     if r.get("path") == p and r.get("device", "cpu").startswith(dev) and "total_seconds" in r)
        if not pts:
            continue
        n, t, it, m = zip(*pts)
        label = f"{p} ({dev})" if p != "gmgm" else "GmGM baseline (cpu)"
        axes[0].plot(n, t, style, label=label)
        if p != "gmgm":
            axes[1].plot(n, it, style, label=label)
        axes[2].plot(n, m, style, label=label)
    max_iter = next((r["max_iter"] for r in rows if "max_iter" in r), "?")
    axes[0].set(xscale="log", yscale="log", xlabel="cells", ylabel="wall seconds (fit + cell graph)",
                title=f"time, {max(r.get('genes', 0) for r in rows)} HVGs, MedMagma max_iter={max_iter}")
    axes[0].axhline(600, color="grey", lw=0.8, ls=":")
    axes[1].set(xscale="log", yscale="log", xlabel="cells", ylabel="wall seconds per EM iteration",
                title="MED-MAGMA cost per EM iteration")
    axes[2].set(xscale="log", yscale="log", xlabel="cells", ylabel="peak resident memory (GiB)", title="memory")
    axes[2].axhline(8, color="grey", lw=0.8, ls=":")
    for ax in axes:
        ax.legend()
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", type=int, nargs="+", default=[1000, 2000, 5000, 10000, 20000, 50000, 100000])
    p.add_argument("--genes", type=int, default=500)
    p.add_argument("--dense-max", type=int, default=5000, help="largest cell count tried on the dense path")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-iter", type=int, default=100,
                   help="EM iterations at most (fewer gives the cost per iteration on large inputs)")
    p.add_argument("--time-budget", type=float, default=1800, help="seconds per fit before it is recorded as skipped")
    p.add_argument("--out", default=str(RESULTS / "medmagma_scale.json"))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--path", default="auto", help=argparse.SUPPRESS)
    p.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    p.add_argument("--save", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return

    import torch
    from magmap._utils import versions

    load_before = os.getloadavg()
    rows: list[dict] = []
    agreement = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.cells:
            graphs = {}
            for path in ("lowrank", "dense", "gmgm"):
                if path != "lowrank" and n > args.dense_max:
                    continue
                save = os.path.join(tmp, f"{path}_{n}.npz")
                row = _run(n, path, args, "cpu", save)
                rows.append(row)
                print(json.dumps(row), flush=True)
                if "total_seconds" in row and path != "gmgm":
                    graphs[path] = sp.load_npz(save)
            if len(graphs) == 2:
                mean_j, min_j = _jaccard(graphs["dense"], graphs["lowrank"])
                agreement.append({"cells": n, "jaccard_mean": mean_j, "jaccard_min": min_j})
                print(json.dumps(agreement[-1]), flush=True)
    if torch.cuda.is_available():
        cuda = {"device": torch.cuda.get_device_name(0), "rows": []}
        for n in args.cells:
            row = _run(n, "lowrank", args, "cuda", None)
            cuda["rows"].append(row)
            rows.append(row)
            print(json.dumps(row), flush=True)
    else:
        cuda = {"skipped": "no CUDA device: torch.cuda.is_available() is False on this machine"}
        print(f"# CUDA section skipped: {cuda['skipped']}", flush=True)
    out = {"benchmark": "medmagma_scale",
           "params": {"data": "pancreas_scvelo_supercell (3696 real cells), binomial(0.8) thinned replicates beyond",
                      "genes": args.genes, "hvg": "filter_genes(min_cells=3); highly_variable_genes(flavor='seurat_v3')",
                      "estimator": f"MedMagma(random_state=0, solver=path, max_iter={args.max_iter})",
                      "baseline": "GmGM() on log1p counts (dense cells x cells; up to dense_max)", "k": K, "threads": args.threads,
                      "time_budget_s": args.time_budget, "dense_max": args.dense_max},
           "versions": versions(), "cpus": os.cpu_count(), "load_avg_before": load_before, "load_avg_after": os.getloadavg(),
           "rows": [r for r in rows if r.get("device", "cpu") == "cpu"], "agreement_dense_vs_lowrank": agreement,
           "cuda": cuda}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    _plot([r for r in rows], Path(args.out).with_suffix(".png"))
    print(f"# saved {args.out} and {Path(args.out).with_suffix('.png')}")


if __name__ == "__main__":
    main()
