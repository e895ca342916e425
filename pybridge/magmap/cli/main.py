"""``magmap`` command line: the demo job on the bundled dataset, and a data summary for any file."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from .._utils import versions

logger = logging.getLogger("magmap")


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, default=str) + "\n")


def summarize_file(path: str | None, out: Path, label_key: str | None) -> dict[str, Any]:
    """Load (bundled data when ``path`` is None), validate, summarise, and write ``summary.json``."""
    from ..datasets import baron2016_pancreas, read, summarize_counts

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
    from ..umap.preprocess import select_hvg

    hvg, flavor = select_hvg(adata.X, n_genes)
    mask = np.zeros(adata.n_vars, dtype=bool)
    mask[hvg] = True
    adata.layers["log1p"] = adata.X.copy()
    sc.pp.log1p(adata, layer="log1p")
    labels = adata.obs["cell_type"].to_numpy()
    res: dict[str, Any] = {"hvg_flavor": flavor, "n_genes": int(mask.sum()), "methods": {}}
    for key, run in (("medmagma", lambda: tl.med_magma(adata, genes=mask, random_state=seed, key_added="medmagma")),
                     ("gmgm", lambda: tl.gmgm(adata, layer="log1p", genes=mask, random_state=seed, key_added="gmgm"))):
        t = time.perf_counter()
        run()
        seconds = time.perf_counter() - t
        cells = adata.obsp[f"{key}_connectivities"]
        sc.tl.leiden(adata, neighbors_key=key, key_added=f"{key}_leiden", random_state=seed,
                     flavor="igraph", n_iterations=2, directed=False)
        sp.save_npz(out / f"{key}_cell_graph.npz", sp.csr_matrix(cells))
        sp.save_npz(out / f"{key}_gene_graph.npz", sp.csr_matrix(adata.varp[f"{key}_connectivities"]))
        res["methods"][key] = {
            "seconds": round(seconds, 2),
            "cell_edges": int(cells.nnz // 2),
            "same_type_edge_fraction": _same_type_fraction(cells, labels),
            "leiden_clusters": int(adata.obs[f"{key}_leiden"].nunique()),
            "leiden_ami_vs_cell_type": float(adjusted_mutual_info_score(labels, adata.obs[f"{key}_leiden"])),
            "params": adata.uns[key]["params"],
        }
    res["chance_same_type_fraction"] = float(sum((c / len(labels)) ** 2 for c in
                                                 adata.obs["cell_type"].value_counts().to_numpy()))
    adata.obs[["cell_type", "medmagma_leiden", "gmgm_leiden"]].to_csv(out / "cell_clusters.csv")
    return res


def _robustness(adata: Any, out: Path, *, seed: int, n_repeats: int) -> dict[str, Any]:
    """robin-style robustness of both cell graphs (Louvain, VI)."""
    from ..robustness import robin

    res: dict[str, Any] = {}
    for key in ("medmagma", "gmgm"):
        r = robin(adata.obsp[f"{key}_connectivities"], method="louvain", measure="vi", n_repeats=n_repeats,
                  random_state=seed, verbose=False)
        res[key] = {"bayes_factor_ln": r.bayes_factor, "auc_real": r.auc[0], "auc_null": r.auc[1],
                    "backend": r.backend, "seed": r.params["seed"]}
        ax = r.plot(title=f"{key} cell graph: robustness (ln BF {r.bayes_factor:.1f})")
        ax.figure.savefig(out / f"{key}_robustness.png", dpi=100)
        import matplotlib.pyplot as plt

        plt.close(ax.figure)
    return res


def demo(out: Path, *, quick: bool = False, seed: int = 0) -> dict[str, Any]:
    """The main job on the bundled dataset: summary, cell and gene networks, their robustness."""
    import matplotlib

    matplotlib.use("Agg")
    from ..datasets import baron2016_pancreas

    t0 = time.perf_counter()
    summary = summarize_file(None, out, "cell_type")
    record: dict[str, Any] = {"summary": summary, "steps": ["summary"], "seed": seed, "quick": quick}
    adata = baron2016_pancreas()
    logger.info("networks: MED-MAGMA and GmGM on highly variable genes")
    record["networks"] = _networks(adata, out, seed=seed, n_genes=100 if quick else 300)
    record["steps"].append("networks")
    logger.info("robustness of the cell graphs (robin procedure)")
    record["robustness"] = _robustness(adata, out, seed=seed, n_repeats=3 if quick else 10)
    record["steps"].append("robustness")
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
    p_sum = sub.add_parser("summarize", help="validate and summarise a count matrix (.h5ad, 10x folder, CSV)")
    p_sum.add_argument("path")
    p_sum.add_argument("--labels", default=None, help="obs column with cell labels")
    p_sum.add_argument("--out", default="summary_results")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    if args.quiet:
        import os

        os.environ["MAGMAP_QUIET"] = "1"
    out = Path(args.out)
    if args.command == "demo":
        record = demo(out, quick=args.quick)
        print(f"magmap demo: results in {out.resolve()} ({', '.join(record['steps'])}; {record['seconds']} s)")
    else:
        summary = summarize_file(args.path, out, args.labels)
        print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
