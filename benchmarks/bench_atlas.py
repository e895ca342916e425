"""Atlas-scale projection: cells generated on disk by resampling a real dataset, projected out of core
with a 2-worker dask.distributed LocalCluster (magmap.scale.project), against our in-memory
``RobustUMAP.transform`` and umap-learn's ``transform`` on the same model inputs.

Measures: projection cells/s, peak RSS growth per worker (reset after a warm-up run), bytes written;
certified radii cells/s (the same cluster, ``certify=True``) against in-memory ``certify``; in-memory
transform cells/s; umap-learn transform cells/s on the model's principal components. A GPU section
(fit, in-memory transform and certify of ``--gpu-cells`` cells on CUDA) runs only when CUDA is present;
``--gpu-only`` runs that section alone and writes ``results/atlas_gpu.json``.

Run under the shared CPU lock; the issue's size is ``--cells 10000000``:

    flock /tmp/magmap-cpu.lock .venv/bin/python benchmarks/bench_atlas.py --cells 500000

Writes ``benchmarks/results/atlas.json`` (parameters, seed, versions, load average, medians).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATASET = Path("pancreas_scvelo_supercell") / "pancreas_bastidasponce2019_3696x2000_counts.h5ad"


def shared_data() -> Path:
    env = os.environ.get("MAGMAP_SHARED")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared", REPO.parent.parent / "shared"]:
        if (cand / "data").is_dir():
            return cand / "data"
    raise SystemExit("shared data not found: set MAGMAP_SHARED to the folder holding data/")


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def generate(source, path: Path, n_cells: int, seed: int, chunk: int = 200_000, compression: str | None = "lzf") -> dict:
    """Write ``n_cells`` cells drawn with replacement from ``source`` (rows of its raw counts) to an
    .h5ad, chunk by chunk (never all cells in memory).

    X is written as anndata's CSR encoding with h5py directly: ``indptr`` is int64 from the start (10
    million cells of this dataset hold ~6.7e9 stored values, past int32), ``indices`` stay int32, and the
    arrays are chunked and ``lzf``-compressed as atlases are distributed (53 GB uncompressed at 10M cells).
    """
    import anndata as ad
    import h5py
    import pandas as pd

    t = time.perf_counter()
    rng = np.random.default_rng(seed)
    X = source.X.tocsr().astype(np.float32)
    nnz = 0
    opts = dict(chunks=(1 << 20,), maxshape=(None,), compression=compression)
    with h5py.File(path, "w") as f:
        g = f.create_group("X")
        g.attrs["encoding-type"], g.attrs["encoding-version"] = "csr_matrix", "0.1.0"
        g.attrs["shape"] = np.array([n_cells, X.shape[1]], dtype=np.int64)
        data = g.create_dataset("data", shape=(0,), dtype=np.float32, **opts)
        indices = g.create_dataset("indices", shape=(0,), dtype=np.int32, **opts)
        indptr = g.create_dataset("indptr", shape=(n_cells + 1,), dtype=np.int64, chunks=(min(1 << 18, n_cells + 1),),
                                  compression=compression)
        indptr[0] = 0
        for s in range(0, n_cells, chunk):
            block = X[rng.integers(0, X.shape[0], min(chunk, n_cells - s))]
            data.resize((nnz + block.nnz,))
            indices.resize((nnz + block.nnz,))
            data[nnz:] = block.data
            indices[nnz:] = block.indices.astype(np.int32, copy=False)
            indptr[s + 1:s + 1 + block.shape[0]] = nnz + block.indptr[1:].astype(np.int64)
            nnz += block.nnz
        ad.io.write_elem(f, "obs", pd.DataFrame(index=pd.RangeIndex(n_cells).astype(str)))
        ad.io.write_elem(f, "var", pd.DataFrame(index=source.var_names.astype(str)))
        f.attrs["encoding-type"], f.attrs["encoding-version"] = "anndata", "0.1.0"
    return {"seconds": round(time.perf_counter() - t, 2), "bytes": du(path), "nnz": int(nnz),
            "compression": compression, "csr_bytes_in_memory": int(nnz * 8 + (n_cells + 1) * 8),
            "dense_float32_bytes": int(n_cells * X.shape[1] * 4)}


def save(record: dict, path: Path) -> None:
    """Write the run's JSON and print it."""
    text = json.dumps(record, indent=2, default=str)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    print(text)


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def gpu_section(args, record: dict) -> None:
    """Atlas scale on one accelerator, in memory: ``--gpu-cells`` cells resampled from the dataset, projected
    and certified (radii and boxes) on ``--device``, with the model fitted there too. Skips when the device
    is CUDA and none is present (``--device cpu`` runs the same section on the CPU, for a dry run)."""
    import anndata as ad
    import scipy.sparse as sp
    import torch
    from magmap import RobustUMAP

    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        record["gpu"] = "skipped: no CUDA device"
        print(record["gpu"], flush=True)
        return

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    source = ad.read_h5ad(shared_data() / DATASET)
    gpu: dict = {"device": torch.cuda.get_device_name(0) if cuda else "cpu", "torch": torch.__version__}
    t = time.perf_counter()
    fit_params = dict(random_state=args.seed, verbose=False, device=args.device)
    model = RobustUMAP(**fit_params).fit(source)
    sync()
    gpu["fit"] = {"cells": int(source.n_obs), "seconds": round(time.perf_counter() - t, 2), "params": fit_params}
    print("gpu fit:", gpu["fit"], flush=True)

    rng = np.random.default_rng(args.seed)
    X = source.X.tocsr().astype(np.float32)
    big = sp.vstack([X[rng.integers(0, X.shape[0], min(200_000, args.gpu_cells - s))]
                     for s in range(0, args.gpu_cells, 200_000)], format="csr")
    atlas = ad.AnnData(big, var=source.var[[]].copy())
    model.transform(atlas[:2000])  # CUDA context and kernels, not timed
    sync()
    t_tr = median_time(lambda: model.transform(atlas, chunk_size=args.gpu_chunk), args.repeats)
    gpu["transform"] = {"cells": atlas.n_obs, "median_seconds": round(t_tr, 3),
                        "cells_per_second": round(atlas.n_obs / t_tr, 1), "chunk_size": args.gpu_chunk}
    print("gpu transform:", gpu["transform"], flush=True)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    # a first batch measures the rate; the rest of the cells are certified when they fit in the time budget
    # (else as many whole batches as fit), so a slow device cannot overrun the run
    batch = min(args.gpu_certify_batch, atlas.n_obs)
    t = time.perf_counter()
    radii = [np.asarray(model.certify(atlas[:batch], batch_size=batch).radius)]
    sync()
    rate = batch / (time.perf_counter() - t)
    n_cert = int(min(atlas.n_obs, max(batch, batch * ((rate * args.gpu_certify_budget) // batch))))
    t = time.perf_counter()
    if n_cert > batch:
        radii.append(np.asarray(model.certify(atlas[batch:n_cert], batch_size=batch).radius))
    sync()
    t_c = time.perf_counter() - t
    gpu["certify"] = {"cells": n_cert, "cells_requested": atlas.n_obs, "first_batch_cells_per_second": round(rate, 1),
                      "seconds_after_first_batch": round(t_c, 2),
                      "cells_per_second": round((n_cert - batch) / t_c, 1) if n_cert > batch else round(rate, 1),
                      "batch_size": batch, "epsilon": float(model.epsilon), "method": model.bound_method,
                      "radius_median": float(np.median(np.concatenate(radii)))}
    if cuda:
        gpu["certify"]["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    print("gpu certify:", gpu["certify"], flush=True)
    record["gpu"] = gpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", type=int, default=500_000, help="cells generated on disk (the issue asks 10,000,000)")
    ap.add_argument("--certify-cells", type=int, default=4096, help="cells certified (radii + boxes)")
    ap.add_argument("--memory-cells", type=int, default=200_000, help="cells for the in-memory baseline")
    ap.add_argument("--umap-learn-cells", type=int, default=5_000, help="cells for umap-learn's transform")
    ap.add_argument("--chunk-rows", type=int, default=16384)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the in-memory timings (median)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=None, help="folder for the generated data (default: a temporary one)")
    ap.add_argument("--out", default=None, help="JSON written (default: results/atlas.json, or atlas_gpu.json "
                    "with --gpu-only)")
    ap.add_argument("--reuse", action="store_true", help="with --workdir: reuse the cells generated there by an "
                    "earlier run with the same --cells and --seed (generation time reported from that run)")
    ap.add_argument("--gpu-only", action="store_true", help="run only the GPU section (fit, transform and "
                    "certify --gpu-cells cells in memory on CUDA); skips with a message without CUDA")
    ap.add_argument("--gpu-cells", type=int, default=1_000_000)
    ap.add_argument("--device", default="cuda", help="device of the GPU section ('cpu' for a dry run)")
    ap.add_argument("--gpu-chunk", type=int, default=262_144, help="cells per transform chunk on the GPU")
    ap.add_argument("--gpu-certify-batch", type=int, default=65_536, help="cells per certify batch on the GPU")
    ap.add_argument("--gpu-certify-budget", type=float, default=150.0,
                    help="seconds for certifying on the GPU: fewer than --gpu-cells cells when the rate is lower")
    args = ap.parse_args()

    import anndata as ad
    import torch
    from distributed import Client, LocalCluster
    from magmap import RobustUMAP, scale
    from magmap._utils import versions
    from magmap.scale._worker import current_rss, peak_rss, reset_peak_rss

    record: dict = {"params": vars(args), "dataset": str(DATASET), "versions": versions(),
                    "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    try:
        record["git_commit"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        record["git_commit"] = None
    record["loadavg_start"] = os.getloadavg()
    out_path = Path(args.out) if args.out else REPO / "benchmarks" / "results" / (
        "atlas_gpu.json" if args.gpu_only else "atlas.json")
    if args.gpu_only:
        gpu_section(args, record)
        save(record, out_path)
        return
    source = ad.read_h5ad(shared_data() / DATASET)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="magmap-atlas-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        # a model as a user would fit it on a reference (defaults, shortened training: speed of projection
        # and certification does not depend on the number of epochs)
        t = time.perf_counter()
        fit_params = dict(n_epochs=100, robust_epochs=30, random_state=args.seed, verbose=False)
        model = RobustUMAP(**fit_params).fit(source)
        record["model"] = {"fit_seconds": round(time.perf_counter() - t, 1), "params": fit_params,
                           "n_genes": len(model.genes_), "hidden_layers": list(model.hidden_layers),
                           "training_cells": int(source.n_obs)}
        print(f"model fitted in {record['model']['fit_seconds']} s", flush=True)

        path = work / "atlas.h5ad"
        meta = work / "atlas.generate.json"
        if args.reuse and path.exists() and meta.exists() and json.loads(meta.read_text())["params"] == [
                args.cells, args.seed]:
            record["generate"] = {**json.loads(meta.read_text())["generate"], "reused": True}
        else:
            record["generate"] = generate(source, path, args.cells, args.seed)
            meta.write_text(json.dumps({"params": [args.cells, args.seed], "generate": record["generate"]}))
        print(f"generated {args.cells:,} cells: {record['generate']}", flush=True)

        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            # warm-up on the bundled cells: workers import torch/magmap and rebuild the model, then the
            # peak-RSS count restarts, so the growth measured is what projecting costs
            scale.project(model, source[:256].copy(), work / "warm.zarr", chunk_rows=64, verbose=False)
            client.run(reset_peak_rss)
            base = client.run(current_rss)
            out = work / "atlas.zarr"
            run = scale.project(model, path, out, chunk_rows=args.chunk_rows, verbose=False)
            peaks = client.run(peak_rss)
            record["distributed_projection"] = {
                "cells": run.n_obs, "chunks": run.n_chunks, "seconds": round(run.seconds, 2),
                "cells_per_second": round(run.n_obs / run.seconds, 1),
                "worker_rss_before_mib": {w: round(v / 2**20, 1) for w, v in base.items()},
                "worker_peak_rss_mib": {w: round(v / 2**20, 1) for w, v in peaks.items()},
                "worker_peak_growth_mib": {w: round((peaks[w] - base[w]) / 2**20, 1) for w in base},
                "bytes_written": du(out), "chunks_per_worker": {}, "loadavg": os.getloadavg()}
            for r in run.records:
                d = record["distributed_projection"]["chunks_per_worker"]
                d[r["worker"]] = d.get(r["worker"], 0) + 1
            print("distributed projection:", record["distributed_projection"], flush=True)
            shutil.rmtree(out)

            # certified radii + boxes at epsilon, same cluster, on the first cells of the same file
            import h5py

            # chunks small enough that both workers get several
            rows_c = max(64, min(512, args.certify_cells // (4 * args.workers)))
            with h5py.File(path) as f:
                lazy = ad.experimental.read_elem_lazy(f["X"], chunks=(rows_c, source.n_vars))
            q = ad.AnnData(lazy[:args.certify_cells], var=source.var[[]].copy())
            run_c = scale.project(model, q, work / "cert.zarr", chunk_rows=rows_c, certify=True, verbose=False)
            record["distributed_certify"] = {"cells": run_c.n_obs, "chunk_rows": rows_c,
                                             "seconds": round(run_c.seconds, 2),
                                             "cells_per_second": round(run_c.n_obs / run_c.seconds, 1),
                                             "epsilon": float(model.epsilon), "method": model.bound_method,
                                             "loadavg": os.getloadavg()}
            radius = scale.open_projection(work / "cert.zarr")["certified_radius"].compute()
            record["distributed_certify"]["radius_median"] = float(np.median(radius))
            print("distributed certify:", record["distributed_certify"], flush=True)

        # baselines in this process, on cells held in memory
        n_mem = min(args.memory_cells, args.cells)
        mem = ad.read_h5ad(path, backed="r")[:n_mem].to_memory()
        t_mem = median_time(lambda: model.transform(mem), args.repeats)
        record["in_memory_transform"] = {"cells": n_mem, "median_seconds": round(t_mem, 3),
                                         "cells_per_second": round(n_mem / t_mem, 1),
                                         "matrix_bytes": int(mem.X.data.nbytes + mem.X.indices.nbytes
                                                             + mem.X.indptr.nbytes), "loadavg": os.getloadavg()}
        print("in-memory transform:", record["in_memory_transform"], flush=True)
        n_cert = min(args.certify_cells, 1024)
        t = time.perf_counter()
        model.certify(mem[:n_cert])
        t = time.perf_counter() - t
        record["in_memory_certify"] = {"cells": n_cert, "seconds": round(t, 2), "cells_per_second": round(n_cert / t, 1)}
        print("in-memory certify:", record["in_memory_certify"], flush=True)

        import umap

        def pcs(a):
            Xz = model.preprocess(a)
            return Xz if model.components_ is None else Xz @ model.components_.T

        reference = umap.UMAP(random_state=args.seed).fit(pcs(source))
        n_ul = min(args.umap_learn_cells, n_mem)
        Y = pcs(mem[:n_ul])
        reference.transform(Y[:100])  # numba compilation, not timed
        t_ul = median_time(lambda: reference.transform(Y), 1)
        record["umap_learn_transform"] = {"cells": n_ul, "seconds": round(t_ul, 2),
                                          "cells_per_second": round(n_ul / t_ul, 1),
                                          "input": "the model's principal components (preprocessing not timed)",
                                          "loadavg": os.getloadavg()}
        print("umap-learn transform:", record["umap_learn_transform"], flush=True)

        gpu_section(args, record)

        proj = record["distributed_projection"]
        record["extrapolation_10M"] = {
            "projection_hours": round(10_000_000 / proj["cells_per_second"] / 3600, 2),
            "certify_hours_1M": round(1_000_000 / record["distributed_certify"]["cells_per_second"] / 3600, 1),
            "input_gib": round(record["generate"]["bytes"] / args.cells * 10_000_000 / 2**30, 1),
            "output_gib": round(proj["bytes_written"] / args.cells * 10_000_000 / 2**30, 2),
            "whole_matrix_csr_gib": round(record["generate"]["csr_bytes_in_memory"] / args.cells * 10_000_000 / 2**30, 1),
            "worker_peak_growth_mib": max(proj["worker_peak_growth_mib"].values()),
            "note": "per-worker memory depends on chunk_rows, not on the number of cells",
        }
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    record["loadavg_end"] = os.getloadavg()
    save(record, out_path)


if __name__ == "__main__":
    sys.exit(main())
