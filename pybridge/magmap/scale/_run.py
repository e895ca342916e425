"""Driver of an out-of-core projection: plans the chunks, ships the model bytes, runs the chunk tasks
on a dask.distributed client (or dask's threaded scheduler) with a bounded number in flight, and
reports progress. Nothing here touches the count matrix: each task reads its own rows."""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._utils import progress, versions
from .._validation import check_choice, check_flag, check_positive_int
from ._input import DEFAULT_CHUNK_ROWS, LazyInput, open_input
from ._store import done_chunks, prepare_store
from ._worker import model_sha256, run_chunk

logger = logging.getLogger("magmap")

__all__ = ["ProjectionRun", "active_client", "project"]

#: Rows per call of the model's own kernels inside a task (transform, gene impact) and per CROWN batch.
INNER_ROWS = 4096
CERTIFY_ROWS = 512
#: Default cells per task with certificates.
CERTIFY_CHUNK_ROWS = 2048


@dataclass
class ProjectionRun:
    """What :func:`project` did: the store, how many chunks it ran and skipped, and their records."""

    out: Path
    n_obs: int
    n_chunks: int
    n_run: int
    n_skipped: int
    seconds: float
    scheduler: str
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cells_per_second(self) -> float:
        """Cells projected by this run per second of wall time (skipped chunks excluded)."""
        cells = sum(r["stop"] - r["start"] for r in self.records)
        return cells / self.seconds if self.seconds > 0 else math.nan

    @property
    def peak_rss(self) -> dict[str, int]:
        """Peak resident memory (bytes) per worker over this run's chunks."""
        out: dict[str, int] = {}
        for r in self.records:
            out[r["worker"]] = max(out.get(r["worker"], 0), int(r["peak_rss"]))
        return out


def active_client() -> Any:
    """The current dask.distributed client, or ``None`` (no client, or distributed not installed)."""
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


def _model_blob(model: Any) -> bytes:
    from ..umap import RobustUMAP

    if isinstance(model, RobustUMAP):
        return model.to_bytes()
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.is_file():
            raise FileNotFoundError(f"`model={str(model)!r}` is not a file; pass the file written by RobustUMAP.save().")
        return path.read_bytes()
    if isinstance(model, (bytes, bytearray, memoryview, np.ndarray)):
        return bytes(np.asarray(model, dtype=np.uint8).tobytes()) if isinstance(model, np.ndarray) else bytes(model)
    raise TypeError(f"`model` must be a fitted RobustUMAP, its bytes (to_bytes()) or a model file path, got "
                    f"{type(model).__name__}.")


def _columns(model: Any, lazy: LazyInput, missing_genes: str) -> tuple[np.ndarray | None, list[str] | None]:
    """Query columns holding model genes (and their names): each task slices only these. Checked here, on an
    empty query, so a missing gene fails before any task runs, with the model's own message."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    if model.features_positional_ or lazy.var_names is None:
        model.transform(sp.csr_matrix((0, lazy.X.shape[1]), dtype=np.float32), missing_genes=missing_genes)
        return None, None
    names = pd.Index(lazy.var_names)
    model.transform(ad.AnnData(sp.csr_matrix((0, len(names)), dtype=np.float32), var=pd.DataFrame(index=names)),
                    missing_genes=missing_genes)
    keep = np.flatnonzero(names.isin(model.genes_))
    return keep, [str(g) for g in names[keep]]


def project(model: Any, data: Any, out: str | Path, *, layer: str | None = None, certify: bool = False,
            epsilon: float | None = None, fraction: float | None = None, rtol: float | None = None,
            method: str | None = None, top_genes: int | None = None, missing_genes: str = "error",
            refine: bool = False, refine_epochs: int | None = None, chunk_rows: int | None = None,
            client: Any = "auto", n_threads: int | None = None, max_in_flight: int | None = None,
            overwrite: bool = False, verbose: bool = True) -> ProjectionRun:
    """Project cells that need not fit in memory, chunk by chunk, writing results to a zarr store.

    Each chunk of ``chunk_rows`` cells is one task: it reads its rows (lazily, from the file), projects
    them with ``RobustUMAP.transform`` (optionally refined as ``transform(refine=True)`` does), optionally
    certifies them (``RobustUMAP.certify``: boxes at ``epsilon`` and certified radii) and ranks their genes (``RobustUMAP.cell_gene_impact``), writes
    its rows of the output arrays and then a completion marker. A re-run with the same settings skips
    the chunks already marked, so an interrupted run resumes. Workers get the model as its file bytes
    and rebuild it once per process.

    Parameters
    ----------
    model
        A fitted :class:`magmap.RobustUMAP`, its bytes, or the path of a saved model.
    data
        ``.h5ad``/``.zarr`` path, AnnData (lazy or in memory), dask array or matrix (see :func:`open_input`).
    out
        Folder of the output zarr store (see :mod:`magmap.scale._store` for its layout).
    layer, missing_genes
        As in :meth:`RobustUMAP.transform`.
    refine, refine_epochs
        As in :meth:`RobustUMAP.transform`, with the epochs (``None``: 100 up to 10,000 cells, 30 beyond)
        chosen for the whole input: each cell is refined as in one ``transform(refine=True)`` call on all
        of them, whatever the chunks. Workers build their own neighbour index of the training cells (once
        per process; ≥ 4,096 training cells: pynndescent). Certificates and top genes describe the
        network's output, the refinement's start.
    certify, epsilon, fraction, rtol, method
        Certificates as in :meth:`RobustUMAP.certify` (``None``: its defaults).
    top_genes
        If given, the number of genes stored per cell that move its embedding most.
    chunk_rows
        Cells per task (and per output chunk); peak memory per task grows with it. ``None``: 16,384, or
        2,048 with ``certify`` (about 30 s of CROWN per chunk and core, so progress and resumption stay fine-grained).
    client
        ``"auto"``: the active dask.distributed client if there is one, else dask's threaded scheduler;
        a ``distributed.Client``; or ``None`` for the threaded scheduler.
    n_threads
        Threads of the threaded scheduler (``None``: one per CPU core).
    max_in_flight
        Most chunks submitted at once (``None``: twice the total worker threads): bounds the memory the
        scheduler can hold in chunks read ahead.
    overwrite
        Delete an existing store at ``out`` first (else a store with other settings is an error).
    verbose
        Progress bar on a terminal.

    Returns
    -------
    ProjectionRun
        Chunks run and skipped, wall seconds, per-chunk records (``peak_rss`` per worker). Read the
        results with :func:`magmap.scale.open_projection`.
    """
    import dask

    from ..umap.certify import DEFAULT_FRACTION, DEFAULT_RTOL

    check_choice(missing_genes, "missing_genes", ("error", "zero"))
    check_flag(refine, "refine")
    if refine_epochs is not None:
        refine_epochs = check_positive_int(refine_epochs, "refine_epochs", minimum=0)
    if top_genes is not None:
        top_genes = check_positive_int(top_genes, "top_genes")
    if chunk_rows is None:
        chunk_rows = CERTIFY_CHUNK_ROWS if certify else DEFAULT_CHUNK_ROWS
    blob = _model_blob(model)
    sha = model_sha256(blob)
    from ._worker import cached_model

    m = cached_model(blob, sha)  # the driver checks genes and options with the same model the workers rebuild
    lazy = open_input(data, layer=layer, chunk_rows=chunk_rows)
    keep, keep_names = _columns(m, lazy, missing_genes)
    if refine:
        from ..umap.refine import check_refinable, default_refine_epochs

        check_refinable(m)
        refine_epochs = default_refine_epochs(lazy.n_obs) if refine_epochs is None else refine_epochs
    else:
        refine_epochs = None
    out = Path(out)
    eps = float(m.epsilon if epsilon is None else epsilon)
    if certify and not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"`epsilon` must be a finite number ≥ 0 (L∞ radius in the model's input units), got {eps}.")
    settings = {
        "model_sha256": sha, "n_obs": lazy.n_obs, "n_vars": int(lazy.X.shape[1]), "chunk_rows": int(chunk_rows),
        "n_chunks": lazy.n_chunks, "certify": bool(certify), "epsilon": eps if certify else None,
        "fraction": float(DEFAULT_FRACTION if fraction is None else fraction) if certify else None,
        "rtol": float(DEFAULT_RTOL if rtol is None else rtol) if certify else None,
        "method": (method or m.bound_method) if certify else None, "top_genes": top_genes,
        "missing_genes": missing_genes, "refine_epochs": refine_epochs, "layer": layer, "source": lazy.source,
        "genes": list(m.genes_),
        "n_components": int(m.n_components), "versions": versions(),
    }
    n, k = lazy.n_obs, int(m.n_components)
    arrays: dict[str, tuple[tuple[int, ...], str]] = {"embedding": ((n, k), "float32")}
    if certify:
        arrays.update(box_lower=((n, k), "float32"), box_upper=((n, k), "float32"),
                      certified_radius=((n,), "float64"), certified_box=((n,), "float64"))
    if top_genes:
        kt = min(top_genes, len(m.genes_))
        arrays.update(top_gene_index=((n, kt), "int32"), top_gene_impact=((n, kt), "float32"))
    prepare_store(out, settings, arrays, overwrite=overwrite)
    done = done_chunks(out)
    todo = [i for i in range(lazy.n_chunks) if i not in done]
    spec = {"out": str(out), "model_sha256": sha, "chunk_rows": int(chunk_rows), "keep": keep,
            "keep_names": keep_names,
            "keep_is_all": keep is not None and np.array_equal(keep, np.arange(lazy.X.shape[1])),
            "missing_genes": missing_genes, "refine_epochs": refine_epochs, "certify": bool(certify),
            "epsilon": settings["epsilon"], "fraction": settings["fraction"], "rtol": settings["rtol"],
            "method": settings["method"], "top_genes": top_genes, "genes": list(m.genes_),
            "inner_rows": INNER_ROWS, "certify_rows": CERTIFY_ROWS}
    if client == "auto":
        client = active_client()
    blocks = lazy.X.to_delayed().ravel()
    bar = progress(total=lazy.n_chunks, initial=len(done), unit="chunk", desc="magmap project", verbose=verbose)
    records: list[dict[str, Any]] = []
    import torch

    torch_threads = torch.get_num_threads()  # tasks set 1 thread; in-process workers share this setting
    t0 = time.perf_counter()
    try:
        if client is not None:
            scheduler = f"distributed ({client.scheduler.address})"
            records = _run_distributed(client, blocks, todo, blob, spec, max_in_flight, bar)
        else:
            import os

            workers = n_threads or os.cpu_count() or 1
            scheduler = f"threads ({workers})"
            window = max_in_flight or 2 * workers
            task = dask.delayed(run_chunk, pure=False)
            for s in range(0, len(todo), window):
                part = todo[s:s + window]
                res = dask.compute(*[task(blocks[i], blob, spec, i) for i in part], scheduler="threads",
                                   num_workers=workers)
                records.extend(res)
                bar.update(len(part))
    finally:
        bar.close()
        torch.set_num_threads(torch_threads)
    seconds = time.perf_counter() - t0
    logger.info("magmap project: %d chunks run, %d skipped (already done), %.1f s", len(todo), len(done), seconds)
    return ProjectionRun(out, lazy.n_obs, lazy.n_chunks, len(todo), len(done), seconds, scheduler,
                         sorted(records, key=lambda r: r["chunk"]))


def _run_distributed(client: Any, blocks: Any, todo: list[int], blob: bytes, spec: dict[str, Any],
                     max_in_flight: int | None, bar: Any) -> list[dict[str, Any]]:
    """Submit the chunk tasks with at most ``max_in_flight`` unfinished; the model bytes are scattered once
    to every worker."""
    import dask
    from distributed import as_completed

    window = max_in_flight or 2 * max(1, sum(client.nthreads().values()))
    blob_ref = client.scatter(blob, broadcast=True, hash=False)
    task = dask.delayed(run_chunk, pure=False)
    queue = iter(todo)
    records: list[dict[str, Any]] = []
    first = [client.compute(task(blocks[i], blob_ref, spec, i)) for _, i in zip(range(window), queue)]
    pending = as_completed(first)
    for fut in pending:
        records.append(fut.result())
        fut.release()
        bar.update(1)
        nxt = next(queue, None)
        if nxt is not None:
            pending.add(client.compute(task(blocks[nxt], blob_ref, spec, nxt)))
    return records
