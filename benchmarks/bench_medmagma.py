"""MED-MAGMA benchmarks: accuracy vs noise, speed vs size (against the reference package when it can
be imported), peak memory. Prints JSON lines and saves ``benchmarks/results/medmagma_<part>.json``.

Usage::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_medmagma.py accuracy
    python benchmarks/bench_medmagma.py speed --sizes 100 200 400 1000 2000 --ref-sizes 100 400 \
        --ref-python /tmp/refenv/bin/python --repeats 3
    python benchmarks/bench_medmagma.py memory --sizes 2000

The reference (PyPI ``MED-MAGMA`` 1.0.1) is never a dependency: it is run in a separate interpreter
(``--ref-python``, a venv where it was installed with ``--ignore-requires-python``), on the same data
(written to a temporary .npy), with ``np.random.seed(seed)`` and the paper's synthetic settings
(``max_iter=100, stop_tol=1e-7``). CPU seconds are reported next to wall seconds because the test
machine is shared.
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

import magmap
import numpy as np
from magmap._utils import versions
from magmap.datasets import synthetic_multiaxis
from magmap.metrics import edge_average_precision as ap

RESULTS = Path(__file__).resolve().parent / "results"
_TAG = [""]  # optional suffix of the output file name (--tag)

REF_SNIPPET = r"""
import json, sys, time, warnings, numpy as np
warnings.filterwarnings("ignore")
import MED_MAGMA as M
X = np.load(sys.argv[1]); seed = int(sys.argv[2])
np.random.seed(seed)
t0, c0 = time.perf_counter(), time.process_time()
(P1, P2), mags = M.EM_algorithm(M.quotient(X), max_iter=100, stop_tol=1e-7)
out = {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0, "em_iters": len(mags)}
np.save(sys.argv[3], P1); np.save(sys.argv[4], P2)
print(json.dumps(out))
"""


def _emit(rows: list, row: dict) -> None:
    rows.append(row)
    print(json.dumps(row), flush=True)


def _save(part: str, rows: list, params: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"part": part, "params": params, "versions": versions(), "threads_env": {
        k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
        "cpus": os.cpu_count(), "load_avg": os.getloadavg(), "rows": rows}
    tag = f"_{_TAG[0]}" if _TAG[0] else ""
    path = RESULTS / f"medmagma_{part}{tag}.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"# saved {path}", flush=True)


def _methods():
    return {
        "MedMagma": lambda: magmap.MedMagma(random_state=0),
        "GmGM": lambda: magmap.GmGM(),
        "SingleAxis": lambda: magmap.SingleAxis(),
    }


def accuracy(args) -> None:
    rows: list = []
    for n in args.sizes:
        for nu in args.noise:
            for seed in args.seeds:
                d = synthetic_multiaxis(n, n, noise_strength=nu, random_state=seed)
                for name, make in _methods().items():
                    t0, c0 = time.perf_counter(), time.process_time()
                    m = make().fit(d.X)
                    _emit(rows, {"n": n, "noise": nu, "seed": seed, "method": name,
                                 "ap_cells": ap(m.cell_precision_, d.cell_precision),
                                 "ap_genes": ap(m.gene_precision_, d.gene_precision),
                                 "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
                                 "n_iter": getattr(m, "n_iter_", None), "converged": getattr(m, "converged_", None)})
    _save("accuracy", rows, {"sizes": args.sizes, "noise": args.noise, "seeds": args.seeds,
                             "MedMagma": magmap.MedMagma(random_state=0).get_params()})


def _run_reference(python: str, x: np.ndarray, seed: int, timeout: float):
    with tempfile.TemporaryDirectory() as tmp:
        paths = [os.path.join(tmp, f) for f in ("x.npy", "p1.npy", "p2.npy", "ref.py")]
        np.save(paths[0], x)
        Path(paths[3]).write_text(REF_SNIPPET)
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
               "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1")}
        proc = subprocess.run([python, paths[3], paths[0], str(seed), paths[1], paths[2]], capture_output=True,
                              text=True, timeout=timeout, env=env)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        return res, np.load(paths[1]), np.load(paths[2])


def speed(args) -> None:
    """Median CPU/wall seconds of ``--repeats`` fits (the machine is shared: single runs are noisy);
    the reference is repeated likewise, in the same run and on the same data."""
    rows: list = []
    for n in args.sizes:
        d = synthetic_multiaxis(n, n, noise_strength=0.5, random_state=0)
        cpu, wall = [], []
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            m = magmap.MedMagma(random_state=0, n_threads=args.threads).fit(d.X)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        row = {"n": n, "method": "MedMagma(fast)", "seconds": float(np.median(wall)),
               "cpu_seconds": float(np.median(cpu)), "cpu_seconds_all": cpu, "repeats": args.repeats,
               "em_iters": m.n_iter_, "converged": m.converged_,
               "ap_cells": ap(m.cell_precision_, d.cell_precision), "ap_genes": ap(m.gene_precision_, d.gene_precision),
               "load_avg": os.getloadavg()[0]}
        _emit(rows, row)
        if args.ref_python and n in args.ref_sizes:
            try:
                runs = []
                for _ in range(args.repeats):
                    res, p1, p2 = _run_reference(args.ref_python, d.X, 0, args.ref_timeout)
                    runs.append(res)
                res = dict(runs[-1])
                res["cpu_seconds"] = float(np.median([r["cpu_seconds"] for r in runs]))
                res["seconds"] = float(np.median([r["seconds"] for r in runs]))
                res["cpu_seconds_all"] = [r["cpu_seconds"] for r in runs]
                res["repeats"] = args.repeats
                res.update({"n": n, "method": "MED-MAGMA 1.0.1 (reference)", "ap_cells": ap(p1, d.cell_precision),
                            "ap_genes": ap(p2, d.gene_precision), "load_avg": os.getloadavg()[0]})
                res["cpu_speedup_vs_magmap"] = res["cpu_seconds"] / row["cpu_seconds"]
                res["wall_speedup_vs_magmap"] = res["seconds"] / row["seconds"]
                _emit(rows, res)
            except Exception as err:  # noqa: BLE001 - report and continue
                _emit(rows, {"n": n, "method": "MED-MAGMA 1.0.1 (reference)", "error": str(err)[-500:]})
        _save("speed", rows, {"sizes": args.sizes, "ref_sizes": args.ref_sizes, "noise": 0.5, "seed": 0,
                              "threads": args.threads, "repeats": args.repeats, "statistic": "median",
                              "reference": "EM_algorithm(quotient(X), max_iter=100, stop_tol=1e-7)"})


def memory(args) -> None:
    rows: list = []
    for n in args.sizes:
        d = synthetic_multiaxis(n, n, noise_strength=0.5, random_state=0)
        x = d.X
        del d
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0, c0 = time.perf_counter(), time.process_time()
        m = magmap.MedMagma(random_state=0, n_threads=args.threads).fit(x)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        _emit(rows, {"n": n, "peak_rss_mib": after / 1024, "rss_before_fit_mib": before / 1024,
                     "estimate_mib": magmap.medmagma.memory_needed(n, n) / 2**20,
                     "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
                     "em_iters": m.n_iter_})
    _save("memory", rows, {"sizes": args.sizes, "threads": args.threads})


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("part", choices=["accuracy", "speed", "memory"])
    p.add_argument("--sizes", type=int, nargs="+")
    p.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--ref-sizes", type=int, nargs="*", default=[100, 400])
    p.add_argument("--ref-python", default="/tmp/refenv/bin/python" if Path("/tmp/refenv/bin/python").exists() else None)
    p.add_argument("--ref-timeout", type=float, default=900)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--tag", default="", help="suffix of the JSON file name")
    p.add_argument("--repeats", type=int, default=1, help="speed: report the median of this many runs")
    args = p.parse_args(argv)
    _TAG[0] = args.tag
    if args.sizes is None:
        args.sizes = {"accuracy": [100, 200], "speed": [100, 200, 400, 1000, 2000], "memory": [2000]}[args.part]
    {"accuracy": accuracy, "speed": speed, "memory": memory}[args.part](args)


if __name__ == "__main__":
    sys.exit(main())
