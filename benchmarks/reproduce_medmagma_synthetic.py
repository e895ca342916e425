"""MED-MAGMA paper, Fig. 2 / App. A: synthetic AUPR, best AMI and assortativity against noise strength.

Protocol (the paper's notebook): per replicate ``i``, ``synthetic_multiaxis(n_cells, n_genes, ν, seed=i)``
(Barabási–Albert ground truth per axis, one Kronecker-sum normal sample, multiplicative χ²₁^ν noise);
every method's cell and gene precision matrices are scored per axis by

- AUPR: :func:`magmap.metrics.edge_average_precision` of ``|Ψ̂|`` against the true edges (strict lower
  triangle);
- best AMI: Leiden (RB configuration, ``n_iterations=2``) on the weighted top-k graph (k ∈ 1…25, the
  diagonal competing for a slot as in the paper's synthetic runs) over a resolution sweep, AMI against
  the ground-truth clusters (scanpy's Leiden, igraph flavour, ``n_iterations=2``, resolution 1, seed 0,
  on the weighted true precision matrix);
- assortativity (nominal) of the ground-truth clusters on the graph where that AMI was best.

Methods: magmap's ``MedMagma`` (defaults), ``GmGM``, ``GmGM(skeptic=True)``, ``SingleAxis``; with
``--ref-python`` also the reference MED-MAGMA 1.0.1 and gmgm 0.5.7 on the same data (see
``bench_medmagma_reference.py`` for that environment). Medians over replicates, JSON and a PNG in the
paper's layout (rows: cells, genes; columns: AUPR, best AMI, assortativity)::

    flock /tmp/magmap-cpu.lock .venv/bin/python benchmarks/reproduce_medmagma_synthetic.py \
        [--replicates 5] [--noise-levels 6] [--ref-python /tmp/refvenv/bin/python]

The paper uses 20 replicates, 10 noise levels and 100 resolutions; the defaults here are smaller so a
run takes minutes on 2 cores (the JSON records what was used).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))
from bench_medmagma_reference import ONE_THREAD, REF_WORKER  # noqa: E402  (the reference worker lives there)

KS = (1, 2, 3, 4, 5, 10, 15, 20, 25)
REFERENCE = ("MED-MAGMA 1.0.1", "gmgm 0.5.7")


def _truth_clusters(precision: np.ndarray) -> np.ndarray:
    """Ground-truth clusters as the paper's notebook makes them: scanpy Leiden on the weighted matrix."""
    import anndata as ad
    import scanpy as sc
    import scipy.sparse as sp

    a = ad.AnnData(np.zeros((precision.shape[0], 1)))
    sc.tl.leiden(a, adjacency=sp.csr_matrix(precision), flavor="igraph", n_iterations=2, directed=False,
                 resolution=1.0, random_state=0)
    return a.obs["leiden"].astype(int).to_numpy()


def _score(estimate: np.ndarray, truth: np.ndarray, clusters: np.ndarray, resolutions: np.ndarray) -> dict:
    from magmap.metrics import best_leiden_ami, edge_average_precision

    best = best_leiden_ami(estimate, clusters, ks=KS, resolutions=resolutions, weighted=True, drop_diagonal=False)
    return {"aupr": float(edge_average_precision(estimate, truth)), "best_ami": best["ami"],
            "assortativity": best["assortativity"], "best_k": best["k"], "best_resolution": best["resolution"]}


def _reference(ref_python: str, data: dict[str, np.ndarray], timeout: float) -> tuple[dict, dict]:
    """Fit the reference packages on every data set (one process, one BLAS thread); precision matrices by tag."""
    with tempfile.TemporaryDirectory() as tmp:
        tasks = []
        for tag, X in data.items():
            np.save(f"{tmp}/{tag}_X.npy", X)
            tasks.append({"tag": tag, "x": f"{tmp}/{tag}_X.npy", "init_seed": 0})
        Path(f"{tmp}/tasks.json").write_text(json.dumps(tasks))
        Path(f"{tmp}/worker.py").write_text(REF_WORKER)
        env = {**os.environ, **ONE_THREAD}
        proc = subprocess.run([ref_python, f"{tmp}/worker.py", f"{tmp}/tasks.json", tmp], env=env,
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode:
            raise RuntimeError(f"reference worker failed:\n{proc.stderr[-2000:]}")
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        mats = {(tag, method): (np.load(f"{tmp}/{tag}_{method}_cells.npy"), np.load(f"{tmp}/{tag}_{method}_genes.npy"))
                for tag in data for method in REFERENCE}
    seconds = {}
    for row in out["rows"]:
        seconds.setdefault(row["method"], []).append(row["seconds"])
    return mats, {"versions": out["versions"], "seconds": seconds}


def _plot(summary: dict, noise: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = (("aupr", "AUPR"), ("best_ami", "best AMI"), ("assortativity", "assortativity"))
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5), sharex=True)
    for row, axis in enumerate(("cells", "genes")):
        for col, (key, title) in enumerate(metrics):
            ax = axes[row, col]
            for method, per_axis in summary.items():
                stats = per_axis[axis][key]
                med = np.array(stats["median"])
                lo, hi = np.array(stats["q25"]), np.array(stats["q75"])
                style = "--" if method in REFERENCE else "-"
                ax.plot(noise, med, style, marker="o", ms=3, label=method)
                ax.fill_between(noise, lo, hi, alpha=0.12)
            ax.set_title(f"{axis}: {title}")
            if row == 1:
                ax.set_xlabel("noise strength ν")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", type=int, default=100)
    p.add_argument("--genes", type=int, default=150)
    p.add_argument("--replicates", type=int, default=5, help="the paper: 20")
    p.add_argument("--noise-levels", type=int, default=6, help="points of linspace(0, 1, n); the paper: 10")
    p.add_argument("--resolutions", type=int, default=40, help="points of linspace(0.01, 2, n); the paper: 100")
    p.add_argument("--ref-python", default=None, help="interpreter with MED-MAGMA 1.0.1 and gmgm 0.5.7")
    p.add_argument("--ref-timeout", type=float, default=1800)
    p.add_argument("--out", default=str(RESULTS / "reproduce_medmagma_synthetic.json"))
    args = p.parse_args(argv)

    import magmap
    from magmap._utils import versions
    from magmap.datasets import synthetic_multiaxis

    noise = np.linspace(0.0, 1.0, args.noise_levels).round(4).tolist()
    resolutions = np.linspace(0.01, 2.0, args.resolutions)
    methods = {"MedMagma": lambda: magmap.MedMagma(random_state=0), "GmGM": magmap.GmGM,
               "GmGM + skeptic": lambda: magmap.GmGM(skeptic=True), "single-axis": magmap.SingleAxis}
    t_start = time.perf_counter()
    data, truths, rows = {}, {}, []
    for nu in noise:
        for rep in range(args.replicates):
            d = synthetic_multiaxis(args.cells, args.genes, noise_strength=nu, random_state=rep)
            tag = f"nu{nu}_r{rep}"
            data[tag] = d.X
            truths[tag] = (d, _truth_clusters(d.cell_precision), _truth_clusters(d.gene_precision))
            for name, make in methods.items():
                t0 = time.perf_counter()
                est = make().fit(d.X)
                seconds = time.perf_counter() - t0
                for axis, estimate, truth, clusters in (
                        ("cells", est.cell_precision_, d.cell_precision, truths[tag][1]),
                        ("genes", est.gene_precision_, d.gene_precision, truths[tag][2])):
                    rows.append({"method": name, "noise": nu, "replicate": rep, "axis": axis, "fit_seconds": seconds,
                                 **_score(np.asarray(estimate), truth, clusters, resolutions)})
            print(f"ν={nu} replicate {rep}: {time.perf_counter() - t_start:.0f} s", flush=True)
    reference = None
    if args.ref_python:
        mats, reference = _reference(args.ref_python, data, args.ref_timeout)
        for (tag, method), (p1, p2) in mats.items():
            d, c1, c2 = truths[tag]
            for axis, estimate, truth, clusters in (("cells", p1, d.cell_precision, c1),
                                                    ("genes", p2, d.gene_precision, c2)):
                rows.append({"method": method, "noise": d.noise_strength, "replicate": d.random_state, "axis": axis,
                             **_score(estimate, truth, clusters, resolutions)})

    summary: dict = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        summary[method] = {}
        for axis in ("cells", "genes"):
            summary[method][axis] = {}
            for key in ("aupr", "best_ami", "assortativity"):
                per_noise = [[r[key] for r in rows if r["method"] == method and r["axis"] == axis and r["noise"] == nu]
                             for nu in noise]
                summary[method][axis][key] = {q: [float(np.quantile(v, f)) for v in per_noise]
                                              for q, f in (("median", 0.5), ("q25", 0.25), ("q75", 0.75))}
    png = Path(args.out).with_suffix(".png")
    _plot(summary, noise, png)
    result = {
        "benchmark": "MED-MAGMA paper Fig. 2 / App. A (synthetic, noise sweep)",
        "params": {"n_cells": args.cells, "n_genes": args.genes, "replicates": args.replicates, "noise": noise,
                   "ks": list(KS), "resolutions": [0.01, 2.0, args.resolutions], "seeds": list(range(args.replicates)),
                   "medmagma_random_state": 0, "paper": "20 replicates, 10 noise levels, 100 resolutions"},
        "versions": versions(), "reference": reference, "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                                                     "loadavg": os.getloadavg()},
        "seconds_total": round(time.perf_counter() - t_start, 1), "summary": summary, "rows": rows, "figure": png.name,
    }
    Path(args.out).write_text(json.dumps(result, indent=1))
    for method, per_axis in summary.items():
        print(method, {axis: {k: [round(x, 3) for x in v["median"]] for k, v in m.items()} for axis, m in per_axis.items()})
    print(f"wrote {args.out} and {png}")


if __name__ == "__main__":
    main()
