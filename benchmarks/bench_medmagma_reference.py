"""The reference MED-MAGMA 1.0.1 (and gmgm 0.5.7) next to magmap on the synthetic generator, over seeds
and BLAS kernels. Prints JSON lines and saves ``benchmarks/results/medmagma_reference.json``.

The reference packages are never dependencies of magmap; they live in a throwaway virtual environment
outside the repository (PyPI ``MED-MAGMA`` declares Python >= 3.13 but runs on 3.11; installing numpy
and scipy as binary wheels first keeps pip from building numpy from source)::

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install --only-binary=:all: "numpy>=2.3" "scipy>=1.16"
    /tmp/refvenv/bin/pip install --ignore-requires-python --only-binary=numpy,scipy MED-MAGMA==1.0.1
    /tmp/refvenv/bin/pip install --ignore-requires-python --only-binary=numpy,scipy gmgm==0.5.7

Usage (about 4 CPU-minutes with the defaults; the machine is shared, so under the lock)::

    flock /tmp/magmap-cpu.lock .venv/bin/python benchmarks/bench_medmagma_reference.py \
        --ref-python /tmp/refvenv/bin/python --kernels default Haswell Sandybridge

For every kernel setting (``default``: OpenBLAS's own choice; a name such as ``Haswell``: that
``OPENBLAS_CORETYPE``; ``NAME=VALUE``: that environment variable, e.g. ``MKL_ENABLE_INSTRUCTIONS=AVX2``
for torch's MKL) two workers run with one BLAS thread:

- a magmap worker draws each data set with ``synthetic_multiaxis(n, n, noise_strength, random_state=seed)``
  and fits ``MedMagma`` (fast and reference modes, ``random_state=init_seed``), ``GmGM()`` and
  ``SingleAxis()``;
- a reference worker (the reference interpreter, same kernel, same data as .npy) fits MED-MAGMA 1.0.1
  as the paper's synthetic runs do (``np.random.seed(init_seed)``;
  ``EM_algorithm(quotient(X), max_iter=100, stop_tol=1e-7)``), gmgm's Gram path
  (``GmGM(Dataset(X), threshold_method="overall", to_keep=1.0)``) and the single-axis pinv baseline
  (``pinv(X Xᵀ)``, ``pinv(Xᵀ X)``).

Edge average precision (``magmap.metrics.edge_average_precision``) is computed here for all of them.
The summary gives, per method, the spread of AP over kernels for each seed and, over seeds, the
differences that the tests' tolerances come from (magmap's reference mode − the reference, fast − the
reference, magmap's GmGM − gmgm's).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}

REF_WORKER = r"""
import json, sys, time, warnings
from importlib import metadata
import numpy as np
warnings.filterwarnings("ignore")
import MED_MAGMA as M
from GmGM import Dataset, GmGM

tasks = json.load(open(sys.argv[1]))
out_dir = sys.argv[2]
rows = []
for t in tasks:
    X = np.load(t["x"])
    np.random.seed(t["init_seed"])
    t0, c0 = time.perf_counter(), time.process_time()
    (p1, p2), mags = M.EM_algorithm(M.quotient(X), max_iter=100, stop_tol=1e-7)
    rows.append({"tag": t["tag"], "method": "MED-MAGMA 1.0.1", "seconds": time.perf_counter() - t0,
                 "cpu_seconds": time.process_time() - c0, "n_iter": len(mags), "final_change": float(mags[-1])})
    np.save(f"{out_dir}/{t['tag']}_MED-MAGMA 1.0.1_cells.npy", p1)
    np.save(f"{out_dir}/{t['tag']}_MED-MAGMA 1.0.1_genes.npy", p2)
    t0, c0 = time.perf_counter(), time.process_time()
    ds = GmGM(Dataset(dataset={"data": X.copy()}, structure={"data": ("row", "col")}),
              threshold_method="overall", to_keep=1.0, verbose=False)
    rows.append({"tag": t["tag"], "method": "gmgm 0.5.7", "seconds": time.perf_counter() - t0,
                 "cpu_seconds": time.process_time() - c0})
    for axis, name in (("row", "cells"), ("col", "genes")):
        p = ds.precision_matrices[axis]
        np.save(f"{out_dir}/{t['tag']}_gmgm 0.5.7_{name}.npy", p.toarray() if hasattr(p, "toarray") else p)
    t0, c0 = time.perf_counter(), time.process_time()
    q1, q2 = np.linalg.pinv(X @ X.T, hermitian=True), np.linalg.pinv(X.T @ X, hermitian=True)
    rows.append({"tag": t["tag"], "method": "pinv (reference script)", "seconds": time.perf_counter() - t0,
                 "cpu_seconds": time.process_time() - c0})
    np.save(f"{out_dir}/{t['tag']}_pinv (reference script)_cells.npy", q1)
    np.save(f"{out_dir}/{t['tag']}_pinv (reference script)_genes.npy", q2)
vers = {"python": sys.version.split()[0]}
for pkg in ("MED-MAGMA", "GmGM", "numpy", "scipy", "numba"):
    try:
        vers[pkg] = metadata.version(pkg)
    except metadata.PackageNotFoundError:
        pass
print(json.dumps({"rows": rows, "versions": vers}))
"""


def _kernel_env(kernel: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    env.update(ONE_THREAD)
    if kernel == "default":
        return env
    name, _, value = kernel.partition("=")
    env.update({name: value} if value else {"OPENBLAS_CORETYPE": kernel})
    return env


def _tasks(args) -> list[dict]:
    return [{"n": n, "seed": s, "tag": f"n{n}_s{s}", "noise": args.noise, "init_seed": args.init_seed}
            for n, seeds in ((100, args.seeds_100), (200, args.seeds_200)) for s in seeds]


def magmap_worker(task_file: str, out_dir: str) -> None:
    """Draw every data set and fit magmap's estimators (run in a child process with the kernel's env)."""
    import magmap
    from magmap.datasets import synthetic_multiaxis

    rows = []
    for t in json.load(open(task_file)):
        d = synthetic_multiaxis(t["n"], t["n"], noise_strength=t["noise"], random_state=t["seed"])
        np.save(f"{out_dir}/{t['tag']}_X.npy", d.X)
        np.save(f"{out_dir}/{t['tag']}_truth_cells.npy", d.cell_precision)
        np.save(f"{out_dir}/{t['tag']}_truth_genes.npy", d.gene_precision)
        for name, est in (("MedMagma(fast)", magmap.MedMagma(random_state=t["init_seed"])),
                          ("MedMagma(reference)", magmap.MedMagma(mode="reference", random_state=t["init_seed"])),
                          ("GmGM", magmap.GmGM()), ("SingleAxis", magmap.SingleAxis())):
            t0, c0 = time.perf_counter(), time.process_time()
            est.fit(d.X)
            rows.append({"tag": t["tag"], "method": name, "seconds": time.perf_counter() - t0,
                         "cpu_seconds": time.process_time() - c0, "n_iter": est.n_iter_,
                         "converged": est.converged_})
            np.save(f"{out_dir}/{t['tag']}_{name}_cells.npy", est.cell_precision_)
            np.save(f"{out_dir}/{t['tag']}_{name}_genes.npy", est.gene_precision_)
    print(json.dumps({"rows": rows}))


def _run(cmd: list[str], env: dict[str, str], timeout: float) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:2]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _summary(rows: list[dict], kernels: list[str]) -> dict:
    """Spread over kernels per seed, and per-seed differences between methods on the default kernel."""
    by = {(r["kernel"], r["tag"], r["method"]): r for r in rows}
    tags = sorted({r["tag"] for r in rows}, key=lambda t: (int(t[1:].split("_")[0]), int(t.split("_s")[1])))
    methods = sorted({r["method"] for r in rows})
    out: dict = {"kernel_spread": {}, "differences": {}}
    for m in methods:
        spread = [max(abs(by[(k, t, m)][a] - by[(kernels[0], t, m)][a]) for k in kernels for a in ("ap_cells", "ap_genes"))
                  for t in tags]
        iters = [sorted({by[(k, t, m)].get("n_iter") for k in kernels}, key=str) for t in tags]
        out["kernel_spread"][m] = {"max_abs_ap_difference": max(spread), "n_iter_per_seed_over_kernels": dict(zip(tags, iters))}
    pairs = {"MedMagma(reference) - MED-MAGMA 1.0.1": ("MedMagma(reference)", "MED-MAGMA 1.0.1"),
             "MedMagma(fast) - MED-MAGMA 1.0.1": ("MedMagma(fast)", "MED-MAGMA 1.0.1"),
             "GmGM - gmgm 0.5.7": ("GmGM", "gmgm 0.5.7"),
             "SingleAxis - pinv (reference script)": ("SingleAxis", "pinv (reference script)")}
    for label, (a, b) in pairs.items():
        if a not in methods or b not in methods:
            continue
        diffs = {t: {ax: by[(k, t, a)][ax] - by[(k, t, b)][ax] for ax in ("ap_cells", "ap_genes")}
                 for t in tags for k in kernels[:1]}
        allv = [v for d in diffs.values() for v in d.values()]
        allk = [by[(k, t, a)][ax] - by[(k, t, b)][ax] for k in kernels for t in tags for ax in ("ap_cells", "ap_genes")]
        out["differences"][label] = {"per_seed_default_kernel": diffs, "min": min(allv), "max": max(allv),
                                     "max_abs_over_seeds_and_kernels": max(abs(v) for v in allk)}
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref-python", default="/tmp/refvenv/bin/python")
    p.add_argument("--kernels", nargs="+", default=["default", "Haswell", "Sandybridge"])
    p.add_argument("--seeds-100", type=int, nargs="*", default=list(range(10)))
    p.add_argument("--seeds-200", type=int, nargs="*", default=[0, 1, 2])
    p.add_argument("--noise", type=float, default=0.5)
    p.add_argument("--init-seed", type=int, default=0, help="random_state of MedMagma / np.random.seed of the reference")
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--out", default=str(RESULTS / "medmagma_reference.json"))
    p.add_argument("--worker", choices=["magmap"], help=argparse.SUPPRESS)
    p.add_argument("worker_args", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker == "magmap":
        magmap_worker(*args.worker_args)
        return

    from magmap._utils import versions
    from magmap.metrics import edge_average_precision as ap

    tasks = _tasks(args)
    load_before = os.getloadavg()
    rows: list[dict] = []
    ref_versions: dict = {}
    for kernel in args.kernels:
        env = _kernel_env(kernel)
        with tempfile.TemporaryDirectory() as tmp:
            task_file = os.path.join(tmp, "tasks.json")
            Path(task_file).write_text(json.dumps([{**t, "x": os.path.join(tmp, f"{t['tag']}_X.npy")} for t in tasks]))
            mine = _run([sys.executable, __file__, "--worker", "magmap", task_file, tmp], env, args.timeout)
            worker = os.path.join(tmp, "ref_worker.py")
            Path(worker).write_text(REF_WORKER)
            ref = _run([args.ref_python, worker, task_file, tmp], env, args.timeout)
            ref_versions = ref["versions"]
            info = {t["tag"]: t for t in tasks}
            for r in mine["rows"] + ref["rows"]:
                t = info[r["tag"]]
                scores = {ax: np.load(os.path.join(tmp, f"{r['tag']}_{r['method']}_{ax}.npy")) for ax in ("cells", "genes")}
                truth = {ax: np.load(os.path.join(tmp, f"{r['tag']}_truth_{ax}.npy")) for ax in ("cells", "genes")}
                row = {"kernel": kernel, "n": t["n"], "seed": t["seed"], **r,
                       "ap_cells": ap(scores["cells"], truth["cells"]), "ap_genes": ap(scores["genes"], truth["genes"])}
                rows.append(row)
                print(json.dumps(row), flush=True)
    out = {"benchmark": "medmagma_reference",
           "params": {"sizes_seeds": {"100": args.seeds_100, "200": args.seeds_200}, "noise_strength": args.noise,
                      "init_seed": args.init_seed, "kernels": args.kernels, "threads_env": ONE_THREAD,
                      "reference_calls": {
                          "MED-MAGMA 1.0.1": "np.random.seed(init_seed); EM_algorithm(quotient(X), max_iter=100, stop_tol=1e-7)",
                          "gmgm 0.5.7": "GmGM(Dataset(X), threshold_method='overall', to_keep=1.0)",
                          "pinv (reference script)": "np.linalg.pinv(X X^T), np.linalg.pinv(X^T X) (hermitian)"},
                      "magmap_calls": {"MedMagma(fast)": "MedMagma(random_state=init_seed)",
                                       "MedMagma(reference)": "MedMagma(mode='reference', random_state=init_seed)",
                                       "GmGM": "GmGM()", "SingleAxis": "SingleAxis()"}},
           "versions": {"magmap_env": versions(), "reference_env": ref_versions},
           "cpus": os.cpu_count(), "load_avg_before": load_before, "load_avg_after": os.getloadavg(),
           "summary": _summary(rows, args.kernels), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(json.dumps(out["summary"], indent=1))
    print(f"# saved {args.out}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
