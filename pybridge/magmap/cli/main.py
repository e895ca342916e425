"""``magmap`` command line: the demo job on the bundled dataset, and a data summary for any file."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from .._keys import CLUSTER_SUFFIX, GMGM_KEY, MEDMAGMA_KEY, connectivities_key
from .._utils import versions
from . import run as run_cli
from . import project as project_cli

logger = logging.getLogger("magmap")


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, default=str) + "\n")


def summarize_file(path: str | None, out: Path, label_key: str | None) -> dict[str, Any]:
    """Load (bundled data when ``path`` is None), validate, summarise, and write ``summary.json``."""
    from ..datasets import baron2016_pancreas, summarize_counts
    from ..io.readers import read

    adata = baron2016_pancreas() if path is None else read(path)
    if label_key is None and path is None:
        label_key = "cell_type"
    if label_key is not None and label_key not in adata.obs:
        raise SystemExit(f"error: --labels {label_key!r} is not a column of obs (have: {list(adata.obs.columns)})")
    labels = adata.obs[label_key].to_numpy() if label_key else None
    summary, per_cell = summarize_counts(adata.X, labels)
    summary["source"] = "bundled baron2016_pancreas" if path is None else str(path)
    out.mkdir(parents=True, exist_ok=True)
    per_cell.index = adata.obs_names
    per_cell.to_csv(out / "per_cell_summary.csv")
    _write_json(out / "summary.json", {"summary": summary, "versions": versions()})
    return summary


def _same_type_fraction(graph: Any, labels: Any) -> float:
    import numpy as np
    import scipy.sparse as sp

    coo = sp.coo_matrix(graph)
    labels = np.asarray(labels)
    return float(np.mean(labels[coo.row] == labels[coo.col]))


def _networks(adata: Any, out: Path, *, seed: int, n_genes: int) -> dict[str, Any]:
    """MED-MAGMA and GmGM cell/gene graphs on highly variable genes, with label agreement."""
    import numpy as np
    import scipy.sparse as sp
    import scanpy as sc
    from sklearn.metrics import adjusted_mutual_info_score

    from .. import tl
    from ..preprocessing import select_hvg

    hvg, flavor = select_hvg(adata.X, n_genes)
    mask = np.zeros(adata.n_vars, dtype=bool)
    mask[hvg] = True
    adata.layers["log1p"] = adata.X.copy()
    sc.pp.log1p(adata, layer="log1p")
    labels = adata.obs["cell_type"].to_numpy()
    res: dict[str, Any] = {"hvg_flavor": flavor, "n_genes": int(mask.sum()), "methods": {}}
    for key, run in ((MEDMAGMA_KEY, lambda: tl.med_magma(adata, genes=mask, random_state=seed, key_added=MEDMAGMA_KEY)),
                     (GMGM_KEY, lambda: tl.gmgm(adata, layer="log1p", genes=mask, random_state=seed, key_added=GMGM_KEY))):
        t = time.perf_counter()
        run()
        seconds = time.perf_counter() - t
        cells = adata.obsp[connectivities_key(key)]
        sc.tl.leiden(adata, neighbors_key=key, key_added=key + CLUSTER_SUFFIX, random_state=seed,
                     flavor="igraph", n_iterations=2, directed=False)
        sp.save_npz(out / f"{key}_cell_graph.npz", sp.csr_matrix(cells))
        sp.save_npz(out / f"{key}_gene_graph.npz", sp.csr_matrix(adata.varp[connectivities_key(key)]))
        res["methods"][key] = {
            "seconds": round(seconds, 2),
            "cell_edges": int(cells.nnz // 2),
            "same_type_edge_fraction": _same_type_fraction(cells, labels),
            "leiden_clusters": int(adata.obs[key + CLUSTER_SUFFIX].nunique()),
            "leiden_ami_vs_cell_type": float(adjusted_mutual_info_score(labels, adata.obs[key + CLUSTER_SUFFIX])),
            "params": adata.uns[key]["params"],
        }
    res["chance_same_type_fraction"] = float(sum((c / len(labels)) ** 2 for c in
                                                 adata.obs["cell_type"].value_counts().to_numpy()))
    adata.obs[["cell_type"] + [k + CLUSTER_SUFFIX for k in (MEDMAGMA_KEY, GMGM_KEY)]].to_csv(out / "cell_clusters.csv")
    return res


def _robustness(adata: Any, out: Path, *, seed: int, n_repeats: int) -> dict[str, Any]:
    """robin-style robustness of both cell graphs (Louvain, VI)."""
    from ..robustness import robin

    res: dict[str, Any] = {}
    for key in (MEDMAGMA_KEY, GMGM_KEY):
        r = robin(adata.obsp[connectivities_key(key)], method="louvain", measure="vi", n_repeats=n_repeats,
                  random_state=seed, verbose=False)
        res[key] = {"bayes_factor_ln": r.bayes_factor, "auc_real": r.auc[0], "auc_null": r.auc[1],
                    "backend": r.backend, "seed": r.params["seed"]}
        ax = r.plot(title=f"{key} cell graph: robustness (ln BF {r.bayes_factor:.1f})")
        ax.figure.savefig(out / f"{key}_robustness.png", dpi=100)
        import matplotlib.pyplot as plt

        plt.close(ax.figure)
    return res


def _umap_learn_reference(model: Any, ref: Any, query: Any, labels_train: Any, labels_query: Any,
                          seed: int) -> dict[str, Any]:
    """umap-learn on the same input as the model (its principal components of the same cells): fit on the
    training cells, ``transform`` the held-out ones; label accuracies measured as for the model."""
    import umap

    from ..metrics import knn_accuracy

    def pcs(adata: Any) -> Any:
        Xz = model.preprocess(adata)
        return Xz if model.components_ is None else Xz @ model.components_.T

    t = time.perf_counter()
    reference = umap.UMAP(random_state=seed).fit(pcs(ref))
    Zq = reference.transform(pcs(query))
    return {"seconds": round(time.perf_counter() - t, 2), "params": {"random_state": seed},
            "input": "the model's principal components of the same cells",
            "knn_accuracy_train": float(knn_accuracy(reference.embedding_, labels_train)),
            "knn_accuracy_projected": float(knn_accuracy(Zq, labels_query, Z_train=reference.embedding_,
                                                         labels_train=labels_train))}


def _embedding(adata: Any, out: Path, *, seed: int, quick: bool) -> dict[str, Any]:
    """Robust parametric UMAP: train on 80 % of the cells, project the rest, certify, save the model; and,
    except with ``quick``, umap-learn on the same input for comparison."""
    import matplotlib.pyplot as plt
    import numpy as np

    from ..metrics import knn_accuracy, trustworthiness
    from ..umap import RobustUMAP

    rng = np.random.default_rng(seed)
    train = np.zeros(adata.n_obs, dtype=bool)
    train[rng.choice(adata.n_obs, int(0.8 * adata.n_obs), replace=False)] = True
    ref, query = adata[train].copy(), adata[~train].copy()
    kwargs = {"n_epochs": 40, "robust_epochs": 4} if quick else {}
    t = time.perf_counter()
    model = RobustUMAP(random_state=seed, verbose=False, **kwargs).fit(ref)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    Zq = model.transform(query)
    transform_s = time.perf_counter() - t
    cert = model.certify(adata)
    Z = np.zeros((adata.n_obs, model.n_components), dtype=np.float32)
    Z[train], Z[~train] = model.embedding_, Zq
    labels = adata.obs["cell_type"].to_numpy()
    model.save(out / "robust_umap.magmap")
    frame = adata.obs[["cell_type"]].copy()
    frame["umap1"], frame["umap2"] = Z[:, 0], Z[:, 1]
    frame["training_cell"] = train
    frame["certified_box"] = cert.relative_area
    frame.to_csv(out / "robust_umap_embedding.csv")
    fig, ax = plt.subplots(figsize=(6, 5))
    for lab in np.unique(labels):
        sel = labels == lab
        ax.scatter(Z[sel & train, 0], Z[sel & train, 1], s=8, label=lab)
        ax.scatter(Z[sel & ~train, 0], Z[sel & ~train, 1], s=22, marker="x", color=ax.collections[-1].get_facecolor()[0])
    ax.set_title("Robust parametric UMAP (x: projected held-out cells)")
    ax.legend(fontsize=7, markerscale=1.5)
    fig.savefig(out / "robust_umap.png", dpi=100)
    plt.close(fig)
    Xg = model.preprocess(ref)
    if model.components_ is not None:
        Xg = Xg @ model.components_.T
    record = {
        "n_train": int(train.sum()), "n_projected": int((~train).sum()),
        "fit_seconds": round(fit_s, 2), "transform_seconds": round(transform_s, 4),
        "trustworthiness_train": float(trustworthiness(Xg, model.embedding_, n_neighbors=15)),
        "trustworthiness_space": "the model's principal components" if model.components_ is not None else "model input",
        "knn_accuracy_train": float(knn_accuracy(model.embedding_, labels[train])),
        "knn_accuracy_projected": float(knn_accuracy(Zq, labels[~train], Z_train=model.embedding_, labels_train=labels[train])),
        "certificate": cert.summary(), "hvg_flavor": model.hvg_flavor_, "model_file": "robust_umap.magmap",
        "params": {k: v for k, v in model.get_params().items() if k != "encoder"},
        "robust_epsilon": model.robust_epsilon_,
    }
    if quick:
        record["umap_learn"] = "skipped with --quick (its first call compiles for ~30 s)"
    else:
        record["umap_learn"] = _umap_learn_reference(model, ref, query, labels[train], labels[~train], seed)
    return record


def demo(out: Path, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
    """The main job on the bundled dataset: summary, cell and gene networks, their robustness, and a
    robust parametric UMAP that projects held-out cells."""
    import matplotlib

    matplotlib.use("Agg")
    from ..datasets import baron2016_pancreas

    t0 = time.perf_counter()
    summary = summarize_file(None, out, "cell_type")
    record: dict[str, Any] = {"summary": summary, "steps": ["summary"], "seed": seed, "quick": quick}
    adata = baron2016_pancreas()
    logger.info("networks: MED-MAGMA and GmGM on highly variable genes")
    record["networks"] = _networks(adata, out, seed=seed, n_genes=300)
    record["steps"].append("networks")
    logger.info("robustness of the cell graphs (robin procedure)")
    record["robustness"] = _robustness(adata, out, seed=seed, n_repeats=3 if quick else 10)
    record["steps"].append("robustness")
    logger.info("robust parametric UMAP: fit on 80 % of cells, project the rest, certify")
    record["embedding"] = _embedding(adata, out, seed=seed, quick=quick)
    record["steps"].append("embedding")
    record["seconds"] = round(time.perf_counter() - t0, 2)
    record["versions"] = versions()
    _write_json(out / "demo.json", record)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="magmap", description=__doc__)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or log messages")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="run the main job on the dataset shipped with magmap")
    p_demo.add_argument("--out", default="demo_results", help="folder for the results (default: demo_results)")
    p_demo.add_argument("--quick", action="store_true", help="smaller settings (used by the tests)")
    p_sum = sub.add_parser("summarize", help="validate and summarise a count matrix (.h5ad, .rds, 10x folder or .h5, CSV)")
    p_sum.add_argument("path")
    p_sum.add_argument("--labels", default=None, help="obs column with cell labels")
    p_sum.add_argument("--out", default="summary_results")
    project_cli.add_parser(sub)
    run_cli.add_parser(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    if args.quiet:
        import os

        os.environ["MAGMAP_QUIET"] = "1"
    if args.command == "run":
        return run_cli.command(args, argv)
    out = Path(args.out)
    if args.command == "project":
        print(json.dumps(project_cli.run(args), indent=2))
    elif args.command == "demo":
        record = demo(out, quick=args.quick)
        print(f"magmap demo: results in {out.resolve()} ({', '.join(record['steps'])}; {record['seconds']} s)")
    else:
        summary = summarize_file(args.path, out, args.labels)
        print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
