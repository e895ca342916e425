"""The flat surface the R package calls (through reticulate). AnnData-free: numpy/scipy in, plain values out.

Every function takes the tagged values built by ``rpkg/R/convert.R`` (numeric data as raw bytes, see
:mod:`magmap.rbridge.codec`) and returns values encoded with :func:`magmap.rbridge.codec.encode`, so the R side never
depends on reticulate's numpy conversion. Orientation: R sends genes × cells matrices as they sit in
a SingleCellExperiment; they arrive here as cells × genes, which is what the Python core uses.
"""
from __future__ import annotations

import json
import sys
from typing import Any

from .._validation import renamed_arguments as _r_names
from .codec import decode, encode

__all__ = ["python_info", "summarize_counts", "roundtrip", "read_h5ad", "bundled_dataset_path", "robin", "med_magma",
           "robust_umap", "robust_umap_project", "robust_umap_manifest"]


def python_info() -> dict[str, Any]:
    """Python executable, magmap/torch/numpy versions and the device ``"auto"`` resolves to."""
    from .._utils import resolve_device, versions

    return encode({"executable": sys.executable, "versions": versions(), "device": resolve_device("auto")})


def summarize_counts(x: Any, labels: Any = None) -> dict[str, Any]:
    """Validate and summarise a count matrix (see :func:`magmap.datasets.summarize_counts`)."""
    from ..datasets import summarize_counts as _summarize

    summary, per_cell = _summarize(decode(x), decode(labels), name="x")
    return encode({"summary": summary, "per_cell": per_cell})


def roundtrip(obj: Any) -> Any:
    """Decode what R sent and encode it back, with the Python-side type of every element.

    Used by the R tests of the boundary: a value that survives ``R → Python → R`` unchanged, and
    arrives in Python as the documented type, proves both halves of the codec.
    """
    import scipy.sparse as sp

    value = decode(obj)

    def describe(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: describe(u) for k, u in v.items()}
        if isinstance(v, list):
            return [describe(u) for u in v]
        if sp.issparse(v):
            return f"{type(v).__name__}{list(v.shape)}"
        if hasattr(v, "shape"):
            return f"ndarray[{v.dtype}]{list(v.shape)}"
        return type(v).__name__

    return {"value": encode(value), "types": describe(value)}


def read_h5ad(path: str) -> dict[str, Any]:
    """Read an ``.h5ad`` file into the parts of a SingleCellExperiment (genes × cells orientation).

    Returns ``assays`` (``X`` and every layer, as genes × cells sparse or dense matrices),
    ``col_data`` (obs), ``row_data`` (var), ``reduced_dims`` (obsm), ``col_pairs`` (obsp),
    ``row_pairs`` (varp) and ``metadata`` (the JSON-friendly part of uns, as text).
    """
    import json

    import numpy as np
    import scipy.sparse as sp

    from ..datasets import read_h5ad as _read

    adata = _read(path)

    def genes_by_cells(M: Any) -> Any:
        return M.T.tocsc() if sp.issparse(M) else np.asarray(M, dtype=np.float64).T

    assays = {"X": genes_by_cells(adata.X)} if adata.X is not None else {}
    assays.update({k: genes_by_cells(v) for k, v in adata.layers.items()})
    uns_text = json.dumps({k: v for k, v in adata.uns.items() if isinstance(v, (str, int, float, bool))})
    return encode({
        "assays": assays,
        "col_data": adata.obs,
        "row_data": adata.var,
        "cell_names": list(adata.obs_names),
        "gene_names": list(adata.var_names),
        "reduced_dims": {k: np.asarray(v.toarray() if sp.issparse(v) else v, dtype=np.float64)
                         for k, v in adata.obsm.items() if not hasattr(v, "columns")},
        "col_pairs": {k: sp.csc_matrix(v) for k, v in adata.obsp.items()},
        "row_pairs": {k: sp.csc_matrix(v) for k, v in adata.varp.items()},
        "metadata": uns_text,
    })


def bundled_dataset_path() -> str:
    """Path of the dataset shipped with the Python package (Baron 2016 pancreas, 328 cells)."""
    from ..datasets import bundled_path

    return str(bundled_path())


def robin(
    graph: Any,
    method: str = "louvain",
    measure: str = "vi",
    type: str = "independent",
    n_repeats: Any = None,
    weighted: Any = None,
    seed: Any = None,
    n_jobs: int = 1,
    verbose: bool = False,
    method_args: Any = None,
    method2: Any = None,
    args2: Any = None,
) -> dict[str, Any]:
    """robin-style robustness of a graph (adjacency from R) or, with ``method2``, a comparison of two methods.

    Returns :meth:`magmap.robustness.RobinResult.to_dict` with the curves as matrices. ``n_repeats``
    ``None``: Python's default.
    """
    import numpy as np

    from .. import robustness

    A = decode(graph)
    common = dict(measure=measure, type=type, weighted=weighted, random_state=None if seed is None else int(seed),
                  n_jobs=int(n_jobs), verbose=bool(verbose))
    if n_repeats is not None:
        common["n_repeats"] = n_repeats
    with _r_names(n_repeats="n.repeats"):
        if method2 is None:
            result = robustness.robin(A, method=method, **common, **(decode(method_args) or {}))
        else:
            result = robustness.compare(A, method1=method, method2=method2, args1=decode(method_args) or {},
                                        args2=decode(args2) or {}, **common)
    out = result.to_dict()
    out["curve_real"] = np.asarray(result.curve_real, dtype=float)
    out["curve_null"] = np.asarray(result.curve_null, dtype=float)
    out["levels"] = np.asarray(result.levels, dtype=float)
    return encode(out)


def med_magma(
    x: Any,
    method: str = "medmagma",
    genes: Any = None,
    n_neighbors: Any = None,
    n_gene_neighbors: Any = None,
    seed: Any = 0,
    options: Any = None,
) -> dict[str, Any]:
    """MED-MAGMA (``method="medmagma"``) or GmGM (``"gmgm"``) graphs of a genes × cells matrix from R.

    Decodes, calls :func:`magmap.medmagma.learn_graphs` (the same function :func:`magmap.tl.med_magma`
    calls) and encodes ``cells`` (cells × cells), ``genes`` (all genes × all genes), ``genes_used``
    (logical) and ``params``. ``genes`` is R's logical mask; ``options`` holds further estimator
    arguments. Any argument left ``NULL`` in R takes Python's default.
    """
    from ..medmagma import learn_graphs

    given = {"genes": decode(genes), "n_neighbors": n_neighbors, "n_gene_neighbors": n_gene_neighbors,
             **(decode(options) or {})}
    if method == "medmagma":
        given["random_state"] = None if seed is None else int(seed)
    kwargs = {k: v for k, v in given.items() if v is not None}
    with _r_names(n_neighbors="k", n_gene_neighbors="k"):
        res = learn_graphs(decode(x), method=method, name="x", copy=False, **kwargs)  # decode made the copy
    return encode({"cells": res.cells, "genes": res.genes, "genes_used": res.genes_used, "params": res.params})


def _umap_input(x: Any, feature_names: Any) -> Any:
    """The matrix from R, wrapped in an AnnData when feature names came along (genes align by name)."""
    import anndata as ad
    import pandas as pd

    X = decode(x)
    names = decode(feature_names)
    if names is None:
        return X
    return ad.AnnData(X=X, var=pd.DataFrame(index=[str(n) for n in names]))


def _certify_args(epsilon: Any, fraction: Any, top_genes: Any) -> tuple[float | None, float, int | None]:
    """ε, fraction and the number of top genes, checked before any fit or projection runs (``None``: the
    model's ε, the default fraction, no top genes)."""
    from .._validation import check_number, check_positive_int
    from ..umap.certify import DEFAULT_FRACTION, _check_fraction

    with _r_names(top_genes="top.genes"):
        return (None if epsilon is None else check_number(epsilon, "epsilon"),
                DEFAULT_FRACTION if fraction is None else _check_fraction(fraction),
                None if top_genes is None else check_positive_int(top_genes, "top_genes"))


def _umap_result(model: Any, X: Any, embedding: Any, certify: bool, *, epsilon: Any = None, fraction: Any = None,
                 top_genes: Any = None, missing_genes: str = "error") -> dict[str, Any]:
    """Embedding, certificates (radius, relative box size and corners at ε, summary) and top genes per cell;
    ``epsilon``, ``fraction`` and ``top_genes`` as :func:`_certify_args` returns them."""
    import numpy as np

    out: dict[str, Any] = {"embedding": np.asarray(embedding, dtype=np.float64)}
    if certify:
        cert = model.certify(X, epsilon, fraction=fraction, missing_genes=missing_genes)
        out["certified_radius"] = np.asarray(cert.radius, dtype=np.float64)
        out["certified_box"] = np.asarray(cert.relative_diagonal, dtype=np.float64)
        out["box_lower"] = np.asarray(cert.lower, dtype=np.float64)
        out["box_upper"] = np.asarray(cert.upper, dtype=np.float64)
        out["certificate"] = {**{k: float(v) for k, v in cert.summary().items()}, "method": cert.method}
    if top_genes is not None:
        top = model.cell_gene_impact(X, n_top=top_genes, missing_genes=missing_genes)
        k = int(top["rank"].max()) if len(top) else 0
        # cells as 1-based positions: R puts its own cell names back
        top["cell"] = np.repeat(np.arange(1, out["embedding"].shape[0] + 1, dtype=np.int64), k)
        out["top_genes"] = top
    return out


def robust_umap(
    x: Any,
    feature_names: Any = None,
    input_type: str = "counts",
    seed: Any = 0,
    certify: bool = True,
    options: Any = None,
    fraction: Any = None,
    top_genes: Any = None,
) -> dict[str, Any]:
    """Fit :class:`magmap.RobustUMAP` on cells × features data from R.

    ``x`` arrives cells × genes (an assay) or cells × dimensions (a reducedDim); ``feature_names``
    are the gene names used to align query cells at projection; ``options`` holds the estimator's
    arguments that R set (the others keep RobustUMAP's defaults). Returns the ``embedding``; with
    ``certify`` each cell's ``certified_radius`` (for ``fraction``, default 0.05), ``certified_box``
    (box diagonal at ε over the embedding's diagonal), ``box_lower``/``box_upper`` and the
    ``certificate`` summary; with ``top_genes`` the tidy ``top_genes`` table (``cell`` as 1-based
    position); the ``model`` as bytes (the same bytes :meth:`~magmap.RobustUMAP.save` writes) and its
    ``manifest``.
    """
    from ..umap import RobustUMAP

    _, fraction, top_genes = _certify_args(None, fraction, top_genes)
    data = _umap_input(x, feature_names)
    with _r_names(n_components="ncomponents", n_top_genes="ntop"):
        model = RobustUMAP(input_type=input_type, random_state=None if seed is None else int(seed),
                           **(decode(options) or {})).fit(data)
    out = _umap_result(model, data, model.embedding_, bool(certify), fraction=fraction, top_genes=top_genes)
    blob = model.to_bytes()
    # the manifest travels as JSON text so R parses it exactly as loadRobustUMAP() does from a file
    from ..umap.io import unpack_model

    out.update(model=bytearray(blob), manifest_json=json.dumps(unpack_model(blob)[0]))
    return encode(out)


def robust_umap_project(model: Any, x: Any, feature_names: Any = None, certify: bool = True,
                        missing_genes: str = "error", epsilon: Any = None, fraction: Any = None,
                        top_genes: Any = None, refine: bool = False) -> dict[str, Any]:
    """Project cells × features data from R with a model given as bytes: the embedding (``refine``: optimised
    on the training map, :meth:`~magmap.RobustUMAP.transform`) and, as in :func:`robust_umap`, certificates
    (boxes at ``epsilon``, default the model's) and top genes."""
    from ..umap import RobustUMAP

    epsilon, fraction, top_genes = _certify_args(epsilon, fraction, top_genes)
    fitted = RobustUMAP.from_bytes(bytes(model))
    data = _umap_input(x, feature_names)
    out = _umap_result(fitted, data, fitted.transform(data, missing_genes=missing_genes, refine=refine), bool(certify),
                       epsilon=epsilon, fraction=fraction, top_genes=top_genes, missing_genes=missing_genes)
    return encode(out)


def robust_umap_manifest(model: Any) -> str:
    """The JSON manifest of a model given as bytes (checks that the bytes are a magmap model)."""
    from ..umap.io import unpack_model

    manifest, _ = unpack_model(bytes(model))
    return json.dumps(manifest)


# ---- the main job (magmapReport) ---------------------------------------------------------------


def run_report(x: Any, gene_names: Any, cell_names: Any, labels: Any = None, label: Any = None, out: str = "",
               seed: int = 0, max_cells: Any = None, robin_repeats: Any = None, overwrite: bool = False,
               options: Any = None) -> dict[str, Any]:
    """:func:`magmap.pipeline.run` on a genes × cells count matrix from R; returns what R stores in its object.

    ``labels`` (one string per cell) become ``obs[label]``; ``options`` holds further
    :class:`~magmap.pipeline.RunSettings` fields (``max_cells``, ``robin_repeats`` ``None``: its defaults). Returns ``cells_used`` (1-based positions of the cells
    analysed), per network ``medmagma``/``gmgm`` (``cells``, ``genes`` over all genes, ``genes_used``,
    ``params``, ``clusters``), ``modules`` (per gene, ``None`` outside the network), ``module_share``
    (cells × modules), ``gene_impact``, the RobustUMAP results as :func:`robust_umap` returns them,
    ``robustness`` (``cells``/``genes``: :meth:`RobinResult.to_dict`) and ``summary_json``.
    """
    import anndata as ad
    import numpy as np
    import pandas as pd

    from .._keys import CLUSTER_SUFFIX, GENE_IMPACT_KEY, GMGM_KEY, MEDMAGMA_KEY, MODULE_KEY, MODULE_SHARE_KEY, \
        NETWORK_GENE_KEY, ROBUST_UMAP_KEY, ROBUSTNESS_KEY, box_corner_keys, certified_box_key, certified_radius_key, \
        connectivities_key, embedding_key, genes_used_key, top_genes_key
    from ..pipeline import RunSettings, run
    from ..umap.io import unpack_model

    cells = [str(c) for c in decode(cell_names)]
    obs = pd.DataFrame(index=pd.Index(cells))
    obs["magmap_position"] = np.arange(1, len(cells) + 1)
    if labels is not None:
        obs[str(label)] = [str(v) for v in decode(labels)]
    adata = ad.AnnData(X=decode(x), obs=obs, var=pd.DataFrame(index=[str(g) for g in decode(gene_names)]))
    given = {"max_cells": max_cells, "robin_repeats": robin_repeats}
    with _r_names(max_cells="max.cells", robin_repeats="robin.repeats"):
        settings = RunSettings(seed=int(seed), **{k: v for k, v in given.items() if v is not None},
                               **(decode(options) or {}))
    summary = run(adata, out=out, label=None if labels is None else str(label), settings=settings,
                  overwrite=bool(overwrite), command="magmapReport() in R")
    res = ad.read_h5ad(f"{out}/results.h5ad")

    def graphs(key: str) -> dict[str, Any]:
        params = json.loads(json.dumps(res.uns[key]["params"], default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))
        return {"cells": res.obsp[connectivities_key(key)], "genes": res.varp[connectivities_key(key)],
                "genes_used": res.var[genes_used_key(key)].to_numpy(dtype=bool), "params": params,
                "clusters": res.obs[key + CLUSTER_SUFFIX]}

    top = res.obsm[top_genes_key(ROBUST_UMAP_KEY)]
    k = sum(c.startswith("gene_") for c in top.columns)
    tidy = pd.DataFrame({"cell": np.repeat(np.arange(1, res.n_obs + 1, dtype=np.int64), k),
                         "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), res.n_obs),
                         "gene": top[[f"gene_{r}" for r in range(1, k + 1)]].to_numpy(dtype=object).ravel(),
                         "impact": top[[f"impact_{r}" for r in range(1, k + 1)]].to_numpy(dtype=np.float64).ravel()})
    lower, upper = box_corner_keys(ROBUST_UMAP_KEY)
    blob = bytes(np.asarray(res.uns[ROBUST_UMAP_KEY]["model"], dtype=np.uint8).tobytes())
    cert = {k2: (float(v) if isinstance(v, (int, float, np.number)) else str(v))
            for k2, v in res.uns[ROBUST_UMAP_KEY].get("certificate", {}).items()}
    robustness = {name: json.loads(json.dumps(summary["robustness"][name])) for name in ("cells", "genes")}
    stored = res.uns[ROBUSTNESS_KEY]
    for name in ("cells", "genes"):  # full curves for R's magmapRobin objects
        robustness[name].update(curve_real=np.asarray(stored[name]["curve_real"], dtype=np.float64),
                                curve_null=np.asarray(stored[name]["curve_null"], dtype=np.float64))
    return encode({
        "cells_used": res.obs["magmap_position"].to_numpy(dtype=np.int64),
        "medmagma": graphs(MEDMAGMA_KEY), "gmgm": graphs(GMGM_KEY),
        "network_genes": res.var[NETWORK_GENE_KEY].to_numpy(dtype=bool),
        "modules": res.var[MODULE_KEY],
        "module_share": res.obsm[MODULE_SHARE_KEY].to_numpy(dtype=np.float64),
        "module_names": list(res.obsm[MODULE_SHARE_KEY].columns),
        "gene_impact": res.var[GENE_IMPACT_KEY].to_numpy(dtype=np.float64),
        "embedding": np.asarray(res.obsm[embedding_key(ROBUST_UMAP_KEY)], dtype=np.float64),
        "certified_radius": res.obs[certified_radius_key(ROBUST_UMAP_KEY)].to_numpy(dtype=np.float64),
        "certified_box": res.obs[certified_box_key(ROBUST_UMAP_KEY)].to_numpy(dtype=np.float64),
        "box_lower": np.asarray(res.obsm[lower], dtype=np.float64),
        "box_upper": np.asarray(res.obsm[upper], dtype=np.float64),
        "certificate": cert, "top_genes": tidy,
        "model": bytearray(blob), "manifest_json": json.dumps(unpack_model(blob)[0]),
        "robustness": robustness, "summary_json": json.dumps(summary),
    })
