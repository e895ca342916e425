"""The main job: a count matrix in, networks, a robust embedding, robustness verdicts and a report out.

Everything is written into a temporary folder next to the output folder and moved into place at the end,
so an interrupted or failed run never leaves a folder that looks complete.
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._keys import (GMGM_KEY, MEDMAGMA_KEY, NETWORK_GENE_KEY, ROBUST_UMAP_KEY, ROBUSTNESS_KEY, RUN_KEY,
                     certified_radius_key, connectivities_key, embedding_key)
from .._utils import versions
from . import _steps
from ._inputs import BUNDLED_LABEL, MIN_CELLS, MIN_GENES, InputError, cell_labels, count_matrix, load_input
from ._steps import RunSettings
from ._summary import h5ad_safe, plain, readings

__all__ = ["run", "prepare", "RUN_KEY", "ROBUSTNESS_KEY", "FILES"]

logger = logging.getLogger("magmap")

MODEL_FILE = "robust_umap.magmap"
FILES = ["report.html", "summary.json", "results.h5ad", MODEL_FILE, "cells.csv", "genes.csv",
         "medmagma_cell_edges.csv", "medmagma_gene_edges.csv", "gmgm_cell_edges.csv", "gmgm_gene_edges.csv"]


def prepare(adata: Any, *, label: str | None, layer: str | None, settings: RunSettings) -> tuple[Any, np.ndarray | None, dict]:
    """Check the input and build the AnnData the steps work on (counts in ``X``, cells without counts left
    out, cells beyond ``settings.max_cells`` subsampled with ``settings.seed``).

    Raises
    ------
    InputError
        No counts, an unusable label column, or too few cells or genes; the message says how to fix it.
    """
    import anndata as ad

    M, slot, kind = count_matrix(adata, layer)
    labels = cell_labels(adata, label)
    M = sp.csr_matrix(M, dtype=np.float32)
    n_file = M.shape[0]
    keep = np.flatnonzero(np.diff(M.indptr) > 0)
    n_empty = n_file - keep.size
    subsampled = keep.size > settings.max_cells
    if subsampled:
        rng = np.random.default_rng(settings.seed)
        keep = np.sort(rng.choice(keep, settings.max_cells, replace=False))
    n_expressed = int(np.count_nonzero(np.diff(sp.csc_matrix(M[keep]).indptr)))
    if keep.size < MIN_CELLS:
        raise InputError(f"the input has {keep.size} cells with counts; magmap run needs at least {MIN_CELLS} "
                         "(pass a larger dataset).")
    if n_expressed < MIN_GENES:
        raise InputError(f"the input has {n_expressed} genes with counts; magmap run needs at least {MIN_GENES} "
                         "(pass the full gene matrix, not a short gene list).")
    work = ad.AnnData(X=M[keep], obs=adata.obs.iloc[keep].copy(), var=pd.DataFrame(index=adata.var_names.astype(str)))
    work.var_names_make_unique()
    if labels is not None:
        labels = labels[keep]
        if len(np.unique(labels)) < 2:
            raise InputError(f"--label {label!r} has a single group among the cells analysed; pass a column with at "
                             "least two groups, or omit --label.")
    record = {"label": label, "matrix": slot, "values": kind, "n_cells_in_file": int(n_file),
              "n_cells_dropped": int(n_empty), "subsampled": bool(subsampled), "n_cells": int(work.n_obs),
              "n_genes": int(work.n_vars), "n_genes_expressed": n_expressed}
    if labels is not None:
        record["label_counts"] = {str(k): int(v) for k, v in zip(*np.unique(labels, return_counts=True))}
    return work, labels, record


def _edges(graph: Any, names: Any) -> pd.DataFrame:
    coo = sp.triu(sp.csr_matrix(graph), k=1).tocoo()
    names = np.asarray(names, dtype=object)
    return pd.DataFrame({"source": names[coo.row], "target": names[coo.col], "weight": coo.data})


def _write_tables(adata: Any, folder: Path) -> None:
    for key in (MEDMAGMA_KEY, GMGM_KEY):
        _edges(adata.obsp[connectivities_key(key)], adata.obs_names).to_csv(folder / f"{key}_cell_edges.csv", index=False)
        _edges(adata.varp[connectivities_key(key)], adata.var_names).to_csv(folder / f"{key}_gene_edges.csv", index=False)
    cells = pd.DataFrame(index=adata.obs_names)
    Z = adata.obsm[embedding_key(ROBUST_UMAP_KEY)]
    cells["robust_umap_1"], cells["robust_umap_2"] = Z[:, 0], Z[:, 1]
    cells["certified_radius"] = adata.obs[certified_radius_key(ROBUST_UMAP_KEY)]
    for key in (MEDMAGMA_KEY, GMGM_KEY):
        cells[f"{key}_community"] = adata.obs[key + _steps.CLUSTER_SUFFIX]
    cells = cells.join(adata.obsm[_steps.MODULE_SHARE_KEY].add_suffix("_share_percent"))
    cells.index.name = "cell"
    cells.to_csv(folder / "cells.csv")
    genes = pd.DataFrame({"network_gene": adata.var[NETWORK_GENE_KEY], "module": adata.var[_steps.MODULE_KEY],
                          "gene_impact": adata.var[_steps.GENE_IMPACT_KEY]}, index=adata.var_names)
    genes.index.name = "gene"
    genes[genes["network_gene"] | genes["gene_impact"].notna()].to_csv(folder / "genes.csv")


def _robin_record(res: Any) -> dict[str, Any]:
    return {"bayes_factor_ln": res.bayes_factor, "auc": list(res.auc), "method": res.methods[0],
            "measure": res.measure, "n_repeats": res.params.get("n_repeats"), "seed": res.params.get("seed"),
            "n_communities": int(len(set(res.communities_real))), "levels": res.levels.tolist(),
            "mean_curve": res.curve_real.mean(axis=0).tolist(), "mean_curve_null": res.curve_null.mean(axis=0).tolist()}


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} is a file; pass a folder path.")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputError(f"--out {str(out)!r} already exists and is not empty; choose a new folder or pass --overwrite.")


def _place(tmp: Path, out: Path) -> None:
    """Move the finished folder into place; an existing ``out`` is swapped out first, then removed."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        old.rmdir()
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def run(
    data: Any = None,
    *,
    out: str | Path,
    label: str | None = None,
    layer: str | None = None,
    settings: RunSettings | None = None,
    overwrite: bool = False,
    command: str | None = None,
) -> dict[str, Any]:
    """Run the main job and write its folder.

    Parameters
    ----------
    data
        An AnnData with counts, a path (``.h5ad``, ``.rds``, 10x folder or ``.h5``, CSV/TSV; see
        :func:`load_input`), or ``None`` for the bundled dataset (whose label column ``cell_type`` is then the
        default ``label``).
    out
        Output folder; it must not exist or be empty, unless ``overwrite``.
    label
        ``obs`` column with cell groups (e.g. cell types); ``None`` runs the label-free parts only.
    layer
        Layer holding the counts (default: ``X``, else a ``counts`` layer, else ``raw.X``).
    settings
        Sizes, seeds and options (:class:`RunSettings`; defaults when ``None``).
    overwrite
        Replace an existing non-empty ``out`` (only once the new results are complete).
    command
        The command line to record (the CLI passes it).

    Returns
    -------
    dict
        The summary also written to ``summary.json``. The folder holds ``report.html`` (self-contained),
        ``summary.json``, ``results.h5ad``, the RobustUMAP model ``robust_umap.magmap``, ``cells.csv``,
        ``genes.csv`` and edge lists ``{medmagma,gmgm}_{cell,gene}_edges.csv``.

        ``results.h5ad`` holds the counts analysed in ``X`` and ``layers["log1p"]``, and: MED-MAGMA and GmGM
        networks as :func:`magmap.tl.med_magma` writes them (``obsp["medmagma_connectivities"]``,
        ``varp["medmagma_connectivities"]``, ``var["medmagma_used"]``, ``uns["medmagma"]``, same for ``gmgm``);
        ``var["magmap_network_gene"]`` (genes the networks were fitted on); ``obs["medmagma_leiden"]``,
        ``obs["gmgm_leiden"]`` (cell-network communities); ``var["medmagma_module"]`` (gene modules),
        ``obsm["medmagma_module_share"]`` (percent of each cell's counts per module); the embedding as
        :func:`magmap.tl.robust_umap` writes it (``obsm["X_robust_umap"]``, ``obs["robust_umap_certified_radius"]``,
        ``obs["robust_umap_certified_box"]``, box corners, top genes, ``uns["robust_umap"]`` with the model);
        ``var["robust_umap_gene_impact"]``; ``uns["medmagma_robustness"]`` (``cells``/``genes``:
        :meth:`RobinResult.to_dict`); ``uns["magmap_run"]`` (the summary).

    Raises
    ------
    InputError
        Bad input or output folder (checked before anything is written).
    """
    settings = settings or RunSettings()
    out = Path(out).expanduser()
    _check_out(out, overwrite)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    if data is None or isinstance(data, (str, Path)):
        if data is None and label is None:
            label = BUNDLED_LABEL
        logger.info("magmap run: reading %s", "the bundled dataset" if data is None else data)
        adata, source = load_input(data)
    else:
        adata, source = data, "AnnData object"
    adata, labels, input_record = prepare(adata, label=label, layer=layer, settings=settings)
    input_record["source"] = source
    timings["read"] = time.perf_counter() - t0
    logger.info("magmap run: %d cells × %d genes from %s%s", adata.n_obs, adata.n_vars, input_record["matrix"],
                f", labels {label!r}" if labels is not None else ", no labels")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the results folder gets the usual permissions
    try:
        summary = _analyse(adata, labels, label, settings, input_record, timings, tmp, t0, command)
        _place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("magmap run: done in %.0f s; open %s", summary["timings"]["total"], out / "report.html")
    return summary


def _step(name: str, number: int, timings: dict[str, float], fn: Any, *args: Any) -> Any:
    logger.info("magmap run [%d/6] %s", number, name)
    t = time.perf_counter()
    res = fn(*args)
    timings[name] = round(time.perf_counter() - t, 2)
    return res


def _analyse(adata: Any, labels: np.ndarray | None, label: str | None, settings: RunSettings, input_record: dict,
             timings: dict[str, float], folder: Path, t0: float, command: str | None) -> dict[str, Any]:
    from ._figures import make_figures
    from ._report import render_report

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pre = _step("preprocessing: network genes", 1, timings, _steps.preprocess, adata, settings)
        nets = _step("networks: MED-MAGMA and GmGM", 2, timings, _steps.networks, adata, settings)
        clusters = _step("cell-network communities", 3, timings, _steps.cell_clusters, adata, labels, settings)
        modules = _step("gene modules", 4, timings, _steps.gene_modules, adata, labels, settings)
        robin = _step("robustness of the MED-MAGMA networks", 5, timings, _steps.robustness, adata, settings)
        emb, model = _step("robust embedding (RobustUMAP)", 6, timings, _steps.embedding, adata, settings)
    seen = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    for msg in seen:
        logger.info("magmap run: warning during the run: %s", msg)
    summary: dict[str, Any] = {
        "command": command or "magmap.pipeline.run", "input": input_record, "settings": settings.to_dict(),
        "seeds": {"all_steps": settings.seed, "robustness_cells": robin["cells"].params.get("seed"),
                  "robustness_genes": robin["genes"].params.get("seed")},
        "preprocessing": pre, "networks": nets, "clusters": clusters, "modules": modules,
        "robustness": {k: _robin_record(v) for k, v in robin.items()}, "embedding": emb,
        "versions": versions(), "warnings": seen, "files": FILES,
    }
    t = time.perf_counter()
    adata.uns[ROBUSTNESS_KEY] = {k: h5ad_safe(v.to_dict()) for k, v in robin.items()}
    model.save(folder / MODEL_FILE)
    _write_tables(adata, folder)
    timings["write_results"] = round(time.perf_counter() - t, 2)
    summary = plain(summary)
    summary["readings"] = readings(summary)
    t = time.perf_counter()
    figures = make_figures(adata, labels, label, summary, robin, settings.seed)
    timings["report"] = round(time.perf_counter() - t, 2)
    timings["total"] = round(time.perf_counter() - t0, 2)
    summary["timings"] = {k: round(float(v), 2) for k, v in timings.items()}
    adata.uns[RUN_KEY] = h5ad_safe(summary)
    adata.write_h5ad(folder / "results.h5ad")
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (folder / "report.html").write_text(render_report(summary, figures, FILES), encoding="utf-8")
    return summary
