"""Python half of ``bench_r_overhead.R``: runs, on request, what a Python user runs for the work the R verbs do.

Started by ``benchmarks/bench_r_overhead.R`` (which owns the parameters, the R half and the JSON) as
``python benchmarks/bench_r_overhead.py CONFIG.json``. It reads one command per line on stdin and answers
one JSON line on stdout, so that R can interleave its own runs with these in the same minutes (the load
from other processes then falls on both languages alike):

- ``run METHOD``: one call of METHOD (``matmul``, ``medmagma``, ``robust_umap``, ``project``, ``robin``);
  answers ``{"wall", "user", "system"}`` (seconds; CPU of this whole process, all threads);
- ``results``: answers the checksums of the last results, the versions, the executable;
- ``quit``.

Every call gets a fresh copy of its input; ``project`` and ``robin`` use the last ``robust_umap`` and
``medmagma`` results, as a Python user would.
"""
from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any, Callable


def _cpu() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)  # all threads of this process
    return r.ru_utime, r.ru_stime


def _timed(call: Callable[[], Any]) -> tuple[dict[str, float], Any]:
    u0, s0 = _cpu()
    t0 = time.perf_counter()
    result = call()
    wall = time.perf_counter() - t0
    u1, s1 = _cpu()
    return {"wall": wall, "user": u1 - u0, "system": s1 - s0}, result


def main(config_path: str) -> None:
    import anndata as ad
    import numpy as np
    import torch

    import magmap

    with open(config_path) as fh:
        cfg = json.load(fh)
    seed = int(cfg["seed"])
    adata = magmap.datasets.baron2016_pancreas()
    mask = np.zeros(adata.n_vars, dtype=bool)
    mask[np.asarray(cfg["hvg"], dtype=int)] = True
    query = ad.concat([adata] * int(cfg["query_copies"]), index_unique="-")
    state: dict[str, Any] = {}
    results: dict[str, Any] = {}

    gen = torch.Generator().manual_seed(seed)
    m, k, n = cfg["matmul_shape"]
    a = torch.randn(m, k, generator=gen)
    b = torch.randn(k, n, generator=gen)

    def matmul() -> Any:
        for _ in range(int(cfg["matmul_repeats"])):
            c = a @ b
        results["matmul"] = {"abs_sum": float(c.abs().sum())}

    def med_magma() -> Any:
        x = adata.copy()
        magmap.tl.med_magma(x, genes=mask, n_neighbors=cfg["k"], n_gene_neighbors=cfg["k"], random_state=seed,
                            verbose=False)
        state["graphs"] = x
        cells = x.obsp["medmagma_connectivities"]
        results["medmagma"] = {"cell_edges": int(cells.nnz), "cell_weight_sum": float(cells.sum())}

    def robust_umap() -> Any:
        x = adata.copy()
        magmap.tl.robust_umap(x, random_state=seed, n_epochs=cfg["n_epochs"], robust_epochs=cfg["robust_epochs"])
        # a Python user projects with the fitted model object they hold
        state["model"] = magmap.RobustUMAP.from_bytes(x.uns["robust_umap"]["model"])
        results["robust_umap"] = {"embedding_abs_mean": float(np.abs(x.obsm["X_robust_umap"]).mean())}

    def project() -> Any:
        q = query.copy()
        magmap.tl.robust_umap_transform(q, model=state["model"])
        results["project"] = {"embedding_abs_mean": float(np.abs(q.obsm["X_robust_umap"]).mean())}

    def robin() -> Any:
        rob = magmap.robustness.robin(state["graphs"], key="medmagma_connectivities", method=cfg["robin_method"],
                                      n_repeats=cfg["robin_repeats"], weighted=False, random_state=seed,
                                      verbose=False)
        results["robin"] = {"bayes_factor": float(rob.bayes_factor), "auc": [float(v) for v in rob.auc]}

    methods = {"matmul": matmul, "medmagma": med_magma, "robust_umap": robust_umap, "project": project,
               "robin": robin}
    # stdout carries the answers only: anything a library prints goes to stderr
    reply, sys.stdout = sys.stdout, sys.stderr
    print(json.dumps({"ready": True}), file=reply, flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        if cmd[0] == "run":
            timing, _ = _timed(methods[cmd[1]])
            print(json.dumps(timing), file=reply, flush=True)
        elif cmd[0] == "results":
            print(json.dumps({"results": results, "versions": magmap._utils.versions(),
                              "executable": sys.executable}), file=reply, flush=True)
        else:
            raise ValueError(f"unknown command {line!r}")


if __name__ == "__main__":
    main(sys.argv[1])
