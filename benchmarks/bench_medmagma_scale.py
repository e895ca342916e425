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
the many-cells path on the GPU when torch sees one and says why it is skipped otherwise.

Usage (heavy: under the shared lock)::

    flock /tmp/magmap-cpu.lock .venv/bin/python benchmarks/bench_medmagma_scale.py \\
        --cells 1000 2000 5000 10000 20000 50000 100000 --dense-max 5000

writes ``benchmarks/results/medmagma_scale.json`` and ``medmagma_scale.png`` (time and memory
against cells). The CUDA section alone, on a machine with torch, NumPy, SciPy and scikit-learn but
no AnnData/scanpy (magmap need not be installed: the source tree is used)::

    python benchmarks/bench_medmagma_scale.py --export-base build/medmagma_scale_pancreas500.npz  # with scanpy
    python benchmarks/bench_medmagma_scale.py --cuda-only --base build/medmagma_scale_pancreas500.npz \\
        --cells 20000 100000                       # -> benchmarks/results/medmagma_scale_cuda.json
    python benchmarks/bench_medmagma_scale.py --plot-only   # PNG with the CPU and CUDA rows
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


def pancreas_base(n_genes: int) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """All 3696 real pancreas cells × their ``n_genes`` HVGs (``seurat_v3`` on the raw counts): counts,
    cluster labels, gene names."""
    import anndata as ad
    import scanpy as sc

    a = ad.read_h5ad(PANCREAS)
    sc.pp.filter_genes(a, min_cells=3)
    sc.pp.highly_variable_genes(a, flavor="seurat_v3", n_top_genes=n_genes)
    a = a[:, a.var["highly_variable"].to_numpy()]
    return (sp.csr_matrix(a.X, dtype=np.float64), np.asarray(a.obs["clusters"].astype(str), dtype=str),
            np.asarray(a.var_names, dtype=str))


def export_base(n_genes: int, path: Path) -> None:
    """Save :func:`pancreas_base` as an ``.npz`` that only NumPy/SciPy read (the CUDA-only run)."""
    base, labels, genes = pancreas_base(n_genes)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, data=base.data, indices=base.indices, indptr=base.indptr, shape=np.array(base.shape),
                        labels=labels, genes=genes)
    print(f"# saved {path}: {base.shape[0]} cells x {base.shape[1]} genes, {base.nnz} nonzeros", flush=True)


def load_base(path: str) -> tuple[sp.csr_matrix, np.ndarray]:
    """The counts and labels written by :func:`export_base`."""
    with np.load(path, allow_pickle=False) as f:
        base = sp.csr_matrix((f["data"], f["indices"], f["indptr"]), shape=tuple(f["shape"]))
        return base, f["labels"]


def pancreas_cells(n_cells: int, n_genes: int, base_path: str | None = None) -> tuple[sp.csr_matrix, np.ndarray]:
    """``n_cells`` cells × (up to) ``n_genes`` HVGs of the real pancreas data, with binomial-thinned
    replicates (from ``base_path`` when given, else computed with scanpy)."""
    base, labels = load_base(base_path) if base_path else pancreas_base(n_genes)[:2]
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


def import_medmagma():
    """``magmap.medmagma`` without ``magmap/__init__`` (which imports the AnnData/scanpy front doors):
    the CUDA-only run needs only torch, NumPy, SciPy and scikit-learn. Works from a source tree
    without an installed magmap, and without tqdm (a silent stand-in for the progress bar)."""
    import importlib
    import importlib.util
    import types

    if "magmap" not in sys.modules:
        spec = importlib.util.find_spec("magmap")
        root = (spec.submodule_search_locations[0] if spec and spec.submodule_search_locations
                else str(Path(__file__).resolve().parents[1] / "pybridge" / "magmap"))
        pkg = types.ModuleType("magmap")
        pkg.__path__ = [root]
        sys.modules["magmap"] = pkg
    try:
        import tqdm.auto  # noqa: F401
    except ImportError:
        class _Silent:
            def __init__(self, iterable=None, **kwargs):
                self.iterable = iterable

            def __iter__(self):
                return iter(self.iterable)

            def close(self):
                pass

        stub = types.ModuleType("tqdm.auto")
        stub.tqdm = _Silent
        sys.modules.setdefault("tqdm", types.ModuleType("tqdm"))
        sys.modules["tqdm.auto"] = stub
    return importlib.import_module("magmap.medmagma")


def worker(args) -> None:
    """One fit; prints a JSON line (and saves the cell graph for the agreement check)."""
    import torch

    mm = import_medmagma()
    X, labels = pancreas_cells(args.n, args.genes, args.base)
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    torch.set_num_threads(args.threads)
    if args.path == "gmgm":  # the noise-unaware baseline, on log1p values as in the published comparison
        X = X.copy()
        X.data = np.log1p(X.data)
        model = mm.GmGM(device=args.device)
    else:
        model = mm.MedMagma(random_state=0, solver=args.path, n_threads=args.threads, device=args.device,
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
                    "memory_estimate_gib": mm.memory_needed(X.shape[0], X.shape[1], path) / 2**30})
    if args.device == "cuda":
        row["device_name"] = torch.cuda.get_device_name(0)
        row["cuda_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    print(json.dumps(row), flush=True)


def _run(n: int, path: str, args, device: str, save: str | None) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--n", str(n), "--path", path, "--genes", str(args.genes),
           "--threads", str(args.threads), "--device", device, "--max-iter", str(args.max_iter)] + (
        ["--save", save] if save else []) + (["--base", args.base] if args.base else [])
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
    for r in rows:  # runs made apart on a busy machine (``note``): their wall times are marked as such
        if r.get("note") and "total_seconds" in r:
            axes[0].annotate("niced, shared\nmachine (note)", (r["cells"], r["total_seconds"]), fontsize=7,
                             xytext=(-70, -4), textcoords="offset points")
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


def _versions() -> dict:
    """Versions of what shapes the numbers, without importing magmap's front doors."""
    from importlib import metadata

    import platform

    out = {"python": platform.python_version()}
    for pkg in ("magmap", "numpy", "scipy", "torch", "anndata", "scanpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def cuda_section(args) -> dict:
    """The many-cells path on CUDA at each of ``args.cells`` (each fit in its own process; the cell
    graph is computed on the CPU from the fitted factors). Skips with a message without CUDA."""
    import torch

    if not torch.cuda.is_available():
        msg = "no CUDA device: torch.cuda.is_available() is False on this machine"
        print(f"# CUDA section skipped: {msg}", flush=True)
        return {"skipped": msg}
    cuda = {"device": torch.cuda.get_device_name(0), "torch_cuda": torch.version.cuda, "rows": []}
    for n in args.cells:
        row = _run(n, "lowrank", args, "cuda", None)
        cuda["rows"].append(row)
        print(json.dumps(row), flush=True)
    return cuda


def _params(args) -> dict:
    return {"data": "pancreas_scvelo_supercell (3696 real cells), binomial(0.8) thinned replicates beyond",
            "genes": args.genes, "hvg": "filter_genes(min_cells=3); highly_variable_genes(flavor='seurat_v3')",
            "base": args.base, "estimator": f"MedMagma(random_state=0, solver=path, max_iter={args.max_iter})",
            "baseline": "GmGM() on log1p counts (dense cells x cells; up to dense_max)", "k": K,
            "threads": args.threads, "time_budget_s": args.time_budget, "dense_max": args.dense_max}


def plot_saved(cpu_json: Path, cuda_json: Path, png: Path) -> None:
    """The cost-curve PNG from the saved CPU rows and, when present, the CUDA-only run's rows."""
    rows = json.loads(cpu_json.read_text())["rows"] if cpu_json.exists() else []
    if cuda_json.exists():
        rows = rows + json.loads(cuda_json.read_text()).get("cuda", {}).get("rows", [])
    _plot(rows, png)
    print(f"# saved {png}", flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", type=int, nargs="+", default=None,
                   help="cell counts (default 1000 ... 100000; with --cuda-only 20000 100000)")
    p.add_argument("--genes", type=int, default=500)
    p.add_argument("--dense-max", type=int, default=5000, help="largest cell count tried on the dense path")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-iter", type=int, default=100,
                   help="EM iterations at most (fewer gives the cost per iteration on large inputs)")
    p.add_argument("--time-budget", type=float, default=1800, help="seconds per fit before it is recorded as skipped")
    p.add_argument("--out", default=None, help="JSON path (default medmagma_scale.json; medmagma_scale_cuda.json "
                                               "with --cuda-only)")
    p.add_argument("--base", default=None, help="the real cells x HVGs as written by --export-base (skips "
                                                "anndata/scanpy; required by --cuda-only)")
    p.add_argument("--export-base", default=None, metavar="NPZ", help="write the real cells x HVGs to NPZ and exit")
    p.add_argument("--cuda-only", action="store_true", help="run only the CUDA section (needs --base)")
    p.add_argument("--plot-only", action="store_true", help="redraw the PNG from the saved CPU and CUDA JSON")
    p.add_argument("--append", action="store_true",
                   help="add the new CPU rows to the saved JSON (replacing rows of the same cells and path) "
                        "instead of starting a new one; for sizes run apart, e.g. 100000 cells niced")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--path", default="auto", help=argparse.SUPPRESS)
    p.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    p.add_argument("--save", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return
    cpu_json, cuda_json = RESULTS / "medmagma_scale.json", RESULTS / "medmagma_scale_cuda.json"
    if args.export_base:
        export_base(args.genes, Path(args.export_base))
        return
    if args.plot_only:
        plot_saved(cpu_json, cuda_json, cpu_json.with_suffix(".png"))
        return
    if args.cells is None:
        args.cells = [20000, 100000] if args.cuda_only else [1000, 2000, 5000, 10000, 20000, 50000, 100000]
    load_before = os.getloadavg()
    if args.cuda_only:
        if not args.base:
            p.error("--cuda-only needs --base NPZ (written by --export-base on a machine with scanpy)")
        out = {"benchmark": "medmagma_scale_cuda", "params": _params(args), "versions": _versions(),
               "cpus": os.cpu_count(), "load_avg_before": load_before, "cuda": cuda_section(args),
               "load_avg_after": os.getloadavg()}
        out_path = Path(args.out or cuda_json)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(out, indent=1))
        print(f"# saved {out_path}", flush=True)
        return

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
    out = {"benchmark": "medmagma_scale", "params": _params(args), "versions": _versions(), "cpus": os.cpu_count(),
           "load_avg_before": load_before, "load_avg_after": os.getloadavg(), "rows": rows,
           "agreement_dense_vs_lowrank": agreement, "cuda": cuda_section(args)}
    out_path = Path(args.out or cpu_json)
    if args.append and out_path.exists():
        old = json.loads(out_path.read_text())
        new_keys = {(r["cells"], r["path"]) for r in rows}
        for r in rows:
            r["run"] = {"params": out["params"], "load_avg_before": load_before, "load_avg_after": out["load_avg_after"]}
        old["rows"] = [r for r in old["rows"] if (r.get("cells"), r.get("path")) not in new_keys] + rows
        old["rows"].sort(key=lambda r: (r.get("cells", 0), r.get("path", "")))
        old["agreement_dense_vs_lowrank"] = old.get("agreement_dense_vs_lowrank", []) + agreement
        out = old
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(out, indent=1))
    _plot(out["rows"] + out["cuda"].get("rows", []), out_path.with_suffix(".png"))
    print(f"# saved {out_path} and {out_path.with_suffix('.png')}")


if __name__ == "__main__":
    main()
