"""Benchmark of magmap.robustness (robin re-implementation).

Measures
--------
1. Wall time of one full test (null model + 2 × 120 perturbed partitions + GP Bayes factor + AUC)
   on the two 185-node MED-MAGMA graphs (Leiden-modularity, VI) and on a 2,000-node planted-partition
   graph (Leiden and Louvain), with ``n_jobs=1`` and ``n_jobs=2``.
2. The Bayes-factor distribution over ``--runs`` seeded runs on both MED-MAGMA graphs, against robin's
   own run-to-run distribution (``/work/shared/robin/reference_runs``).

Writes ``benchmarks/results/robustness.json`` (parameters, seeds, versions, numbers).

Usage: ``.venv/bin/python benchmarks/bench_robustness.py [--runs 10] [--skip-large]``
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import igraph as ig
import numpy as np
import scipy.sparse as sp
from scipy.stats import mannwhitneyu

import magmap.robustness as rb
from magmap._utils import versions

ROOT = Path("/work/shared/robin")
OUT = Path(__file__).parent / "results" / "robustness.json"
REFERENCE_RANGE = {"cell": (84.6, 122.4), "gene": (40.5, 75.8)}
PAPER = {"cell": 108.0, "gene": 59.0}


def medmagma(name: str) -> ig.Graph:
    g = ig.Graph.Read_GraphML(str(ROOT / "graphs" / f"median_{name}_graph.graphml"))
    return g.as_undirected(mode="collapse")


def planted(n: int = 2000, k: int = 20, deg_in: float = 12.0, deg_out: float = 3.0, seed: int = 0) -> sp.csr_matrix:
    """Sparse planted-partition graph (k equal blocks, expected within/between degrees)."""
    rng = np.random.default_rng(seed)
    size = n // k
    lab = np.repeat(np.arange(k), size)
    p_in, p_out = deg_in / (size - 1), deg_out / (n - size)
    iu, ju = np.triu_indices(n, 1)
    keep = rng.random(iu.size) < np.where(lab[iu] == lab[ju], p_in, p_out)
    A = sp.coo_matrix((np.ones(keep.sum()), (iu[keep], ju[keep])), shape=(n, n))
    return (A + A.T).tocsr()


def timed(graph, **kw) -> tuple[float, rb.RobinResult]:
    t0 = time.perf_counter()
    res = rb.robin(graph, verbose=False, **kw)
    return time.perf_counter() - t0, res


def seeded_runs(graph, runs: int) -> list[rb.RobinResult]:
    """The paper's robin call (Leiden modularity, VI, independent) with seeds 0..runs-1."""
    return [rb.robin(graph, method="leiden", random_state=s, verbose=False) for s in range(runs)]


def reference_bf(name: str) -> list[float]:
    lines = (ROOT / "reference_runs" / f"R_medmagma_{name}_runs.csv").read_text().splitlines()[1:]
    return [float(line.split(",")[1]) for line in lines if line.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10, help="seeded runs per MED-MAGMA graph (seeds 0..runs-1)")
    ap.add_argument("--skip-large", action="store_true", help="skip the 2,000-node graph")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("magmap").setLevel(logging.WARNING)
    log = logging.getLogger("bench")
    out: dict = {"versions": versions(), "params": {"method": "leiden", "measure": "vi", "type": "independent",
                                                    "n_repeats": 10, "levels": list(rb.DEFAULT_LEVELS),
                                                    "runs": args.runs, "seeds": list(range(args.runs))},
                 "timing_s": {}, "bayes_factor": {}}
    for name in ("cell", "gene"):
        g = medmagma(name)
        for n_jobs in (1, 2):
            t, _ = timed(g, method="leiden", random_state=0, n_jobs=n_jobs)
            out["timing_s"][f"medmagma_{name}_185_leiden_njobs{n_jobs}"] = round(t, 3)
            log.info("%s graph, n_jobs=%d: %.2f s", name, n_jobs, t)
        t0 = time.perf_counter()
        runs = seeded_runs(g, args.runs)
        total = time.perf_counter() - t0
        bf = np.array([r.bayes_factor for r in runs])
        ref = np.array(reference_bf(name))
        lo, hi = REFERENCE_RANGE[name]
        out["bayes_factor"][name] = {
            "values": [round(float(b), 4) for b in bf],
            "min": float(bf.min()), "median": float(np.median(bf)), "max": float(bf.max()),
            "robin_reference_range": [lo, hi], "robin_reference_median": float(np.median(ref)),
            "n_inside_reference_range": int(np.sum((bf >= lo) & (bf <= hi))),
            "mannwhitney_p_vs_robin": float(mannwhitneyu(bf, ref, alternative="two-sided").pvalue),
            "paper_value": PAPER[name], "paper_inside_min_max": bool(bf.min() <= PAPER[name] <= bf.max()),
            "auc_median": [float(v) for v in np.median([r.auc for r in runs], axis=0)],
            "total_time_s": round(total, 2), "edges": g.ecount(), "vertices": g.vcount(),
        }
        log.info("%s BF over %d runs: %s (robin %s)", name, args.runs, np.round(np.sort(bf), 1), (lo, hi))
    if not args.skip_large:
        A = planted()
        out["params"]["large_graph"] = {"n": 2000, "blocks": 20, "deg_in": 12.0, "deg_out": 3.0, "seed": 0,
                                        "edges": int(A.nnz // 2)}
        for method in ("leiden", "louvain"):
            for n_jobs in (1, 2):
                t, res = timed(A, method=method, random_state=0, n_jobs=n_jobs)
                out["timing_s"][f"planted_2000_{method}_njobs{n_jobs}"] = round(t, 3)
                out["bayes_factor"][f"planted_2000_{method}"] = float(res.bayes_factor)
                log.info("2000-node %s n_jobs=%d: %.2f s, BF %.1f", method, n_jobs, t, res.bayes_factor)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1))
    log.info("wrote %s", OUT)


if __name__ == "__main__":
    main()
