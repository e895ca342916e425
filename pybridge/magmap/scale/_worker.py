"""What one task does on a worker: rebuild the model from its bytes (once per process), project,
certify and explain one chunk of cells, write the results into the store, then mark the chunk done.

Tasks receive the model as its file bytes (manifest + weights: ``RobustUMAP.to_bytes``), never as a
pickled estimator, and only plain values besides the chunk itself.
"""
from __future__ import annotations

import hashlib
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["cached_model", "current_rss", "model_sha256", "peak_rss", "reset_peak_rss", "run_chunk"]

_MODELS: dict[str, Any] = {}
_LOCK = threading.Lock()


def model_sha256(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def cached_model(blob: bytes, sha: str) -> Any:
    """The model of ``blob``, rebuilt once per process and shared by its threads (inference only)."""
    with _LOCK:
        model = _MODELS.get(sha)
        if model is None:
            from ..umap import RobustUMAP

            model = RobustUMAP.from_bytes(blob)
            _MODELS.clear()  # one model per worker at a time
            _MODELS[sha] = model
    return model


def _proc_status(field: str) -> int | None:
    """A memory field of ``/proc/self/status`` in bytes (``None`` off Linux)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss() -> int:
    """Peak resident memory of this process (bytes) since it started or since :func:`reset_peak_rss`."""
    peak = _proc_status("VmHWM")  # Linux: honours reset_peak_rss
    if peak is not None:
        return peak
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def current_rss() -> int:
    """Resident memory of this process now (bytes; Linux ``/proc``, else psutil)."""
    rss = _proc_status("VmRSS")
    if rss is not None:
        return rss
    import psutil

    return int(psutil.Process().memory_info().rss)


def reset_peak_rss() -> bool:
    """Restart this process's peak-RSS count at its current RSS (Linux ≥ 4.0); ``False`` where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _query(block: Any, spec: dict[str, Any]) -> Any:
    """The chunk as the model's public methods take it: an AnnData of the model genes present (aligned by
    name), or the bare matrix for a model fitted on positional columns."""
    if sp.issparse(block):
        block = sp.csr_matrix(block)
    else:
        block = np.asarray(block)
    keep = spec["keep"]
    if keep is None:
        return block
    import anndata as ad
    import pandas as pd

    # every column a model gene, in order: no copy
    sub = block if keep.size == block.shape[1] and spec["keep_is_all"] else block[:, keep]
    return ad.AnnData(sub, var=pd.DataFrame(index=pd.Index(spec["keep_names"], dtype=object)))


def run_chunk(block: Any, blob: bytes, spec: dict[str, Any], index: int) -> dict[str, Any]:
    """Project (and optionally certify and explain) chunk ``index`` of the input; write it; mark it done.

    Returns the chunk's record (rows, seconds per step, the worker's peak RSS); all results go to the store.
    """
    import torch
    import zarr

    from ._store import write_marker

    # one torch thread per task: the scheduler already runs one task per core
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    t0 = time.perf_counter()
    model = cached_model(blob, spec["model_sha256"])
    q = _query(block, spec)
    del block
    n = q.shape[0]
    start = index * spec["chunk_rows"]
    rows = slice(start, start + n)
    group = zarr.open_group(spec["out"], mode="r+")
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    mg = spec["missing_genes"]
    Z = model.transform(q, missing_genes=mg, chunk_size=spec["inner_rows"])
    seconds["transform"] = time.perf_counter() - t
    if spec["refine_epochs"] is not None:
        from ..umap.refine import refine_projection

        t = time.perf_counter()
        # the whole input's epochs and the chunk's first row: each cell refined as in one call on all cells
        Z = refine_projection(model, q, Z, layer=None, missing_genes=mg, chunk_size=spec["inner_rows"],
                              n_epochs=spec["refine_epochs"], first_cell=start)
        seconds["refine"] = time.perf_counter() - t
    group["embedding"][rows] = Z
    if spec["certify"]:
        t = time.perf_counter()
        cert = model.certify(q, spec["epsilon"], fraction=spec["fraction"], rtol=spec["rtol"], method=spec["method"],
                             missing_genes=mg, batch_size=spec["certify_rows"])
        group["box_lower"][rows] = cert.lower
        group["box_upper"][rows] = cert.upper
        group["certified_radius"][rows] = cert.radius
        group["certified_box"][rows] = cert.relative_diagonal
        seconds["certify"] = time.perf_counter() - t
    if spec["top_genes"]:
        import pandas as pd

        t = time.perf_counter()
        top = model.cell_gene_impact(q, n_top=spec["top_genes"], missing_genes=mg, batch_size=spec["inner_rows"])
        k = int(top["rank"].max()) if len(top) else spec["top_genes"]
        group["top_gene_index"][rows] = pd.Index(spec["genes"]).get_indexer(top["gene"]).reshape(n, k)
        group["top_gene_impact"][rows] = top["impact"].to_numpy(np.float32).reshape(n, k)
        seconds["top_genes"] = time.perf_counter() - t
    record = {"chunk": index, "start": start, "stop": start + n, "seconds": time.perf_counter() - t0,
              "step_seconds": seconds, "peak_rss": peak_rss(), "worker": _worker_name()}
    write_marker(Path(spec["out"]), index, record)
    return record


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().name)
    except (ImportError, ValueError):
        return "local"
