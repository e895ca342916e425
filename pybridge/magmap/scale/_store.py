"""The output store of an out-of-core projection: a zarr group written chunk by chunk, with one
completion marker per chunk so that a re-run skips the chunks already finished.

Layout of ``OUT`` (zarr v3 group; arrays row-chunked like the input, so every task writes whole zarr
chunks and tasks never share one):

* ``embedding`` — ``(n_cells, n_components)`` float32;
* with certificates: ``box_lower``, ``box_upper`` (``(n_cells, n_components)`` float32),
  ``certified_radius`` and ``certified_box`` (relative box diagonal at ε) — ``(n_cells,)`` float64;
* with top genes: ``top_gene_index`` ``(n_cells, k)`` int32 (positions in ``attrs["genes"]``) and
  ``top_gene_impact`` ``(n_cells, k)`` float32;
* ``attrs``: the run's settings (model checksum, input shape and chunking, options), genes, versions;
* ``_done/chunk-NNNNNNN.json`` — written (atomically) after all of a chunk's arrays: rows, seconds and
  the worker's peak RSS.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FORMAT", "done_chunks", "open_projection", "prepare_store", "read_markers", "write_marker"]

FORMAT = "magmap.projection"
FORMAT_VERSION = 1
_DONE = "_done"
#: Every array a store can hold (which ones depends on the options).
ARRAYS = ("embedding", "box_lower", "box_upper", "certified_radius", "certified_box", "top_gene_index",
          "top_gene_impact")
# settings that must match for a re-run to continue an existing store
_RESUME_KEYS = ("model_sha256", "n_obs", "n_vars", "chunk_rows", "certify", "epsilon", "fraction", "rtol", "method",
                "top_genes", "missing_genes", "layer")


def _marker(out: Path, index: int) -> Path:
    return out / _DONE / f"chunk-{index:07d}.json"


def prepare_store(out: Path, settings: dict[str, Any], arrays: dict[str, tuple[tuple[int, ...], str]], *,
                  overwrite: bool) -> None:
    """Create the store for ``settings`` (or check that an existing one was made with the same settings)."""
    import zarr

    if out.exists() and overwrite:
        shutil.rmtree(out)
    if out.exists():
        if not (out / "zarr.json").exists():
            raise FileExistsError(f"`out={str(out)!r}` exists and is not a magmap projection store; pass a new "
                                  "path, or overwrite=True (--overwrite) to replace it.")
        old = dict(zarr.open_group(str(out), mode="r").attrs)
        diff = [k for k in _RESUME_KEYS if old.get(k) != settings.get(k)]
        if old.get("format") != FORMAT or diff:
            detail = ", ".join(f"{k}: {old.get(k)!r} there, {settings.get(k)!r} now" for k in diff) or "not a projection"
            raise ValueError(f"`out={str(out)!r}` holds a projection made with other settings ({detail}); pass a new "
                             "path, or overwrite=True (--overwrite) to start again.")
        return
    group = zarr.open_group(str(out), mode="w")
    for name, (shape, dtype) in arrays.items():
        chunks = (settings["chunk_rows"],) + shape[1:]
        fill = np.nan if np.dtype(dtype).kind == "f" else -1
        group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, fill_value=fill)
    group.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION, **settings})
    (out / _DONE).mkdir()


def done_chunks(out: Path) -> set[int]:
    """Indices of the chunks whose marker exists."""
    folder = out / _DONE
    if not folder.is_dir():
        return set()
    return {int(p.stem.split("-")[1]) for p in folder.glob("chunk-*.json")}


def write_marker(out: Path, index: int, record: dict[str, Any]) -> None:
    """Mark chunk ``index`` finished (write to a temporary name, then rename: a marker is never partial)."""
    path = _marker(out, index)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)


def read_markers(out: Path) -> list[dict[str, Any]]:
    """The records of all finished chunks, in chunk order."""
    return [json.loads(p.read_text()) for p in sorted((out / _DONE).glob("chunk-*.json"))]


def open_projection(out: str | Path) -> dict[str, Any]:
    """The arrays of a projection store as dask arrays (nothing is read), plus ``"attrs"``.

    Raises when some chunks are unfinished (re-run the projection to complete them).
    """
    import dask.array as da
    import zarr

    out = Path(out)
    if not (out / "zarr.json").exists():
        raise FileNotFoundError(f"`{out}` is not a projection store; write one with magmap.scale.project() or "
                                "`magmap project`.")
    group = zarr.open_group(str(out), mode="r")
    attrs = dict(group.attrs)
    if attrs.get("format") != FORMAT:
        raise ValueError(f"`{out}` is a zarr store but not a magmap projection (format {attrs.get('format')!r}).")
    missing = attrs["n_chunks"] - len(done_chunks(out))
    if missing:
        raise ValueError(f"`{out}` is incomplete: {missing} of {attrs['n_chunks']} chunks unfinished; run the same "
                         "projection again to finish them.")
    res: dict[str, Any] = {name: da.from_zarr(str(out), component=name) for name in ARRAYS if name in group}
    res["attrs"] = attrs
    return res
