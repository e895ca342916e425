"""The demo job (README's first command) writes its documented results; `magmap summarize` reads files."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import scipy.sparse as sp

from magmap.cli import main
from magmap.umap import RobustUMAP


def test_demo_quick_writes_every_result(tmp_path):
    out = tmp_path / "demo"
    assert main(["-q", "demo", "--quick", "--out", str(out)]) == 0
    record = json.loads((out / "demo.json").read_text())
    assert record["steps"] == ["summary", "networks", "robustness", "embedding"]
    assert record["summary"]["n_cells"] == 328 and record["seed"] == 0
    assert "magmap" in record["versions"]
    nets = record["networks"]["methods"]
    for key in ("medmagma", "gmgm"):
        cells = sp.load_npz(out / f"{key}_cell_graph.npz")
        assert cells.shape == (328, 328) and abs(cells - cells.T).max() == 0
        assert sp.load_npz(out / f"{key}_gene_graph.npz").shape == (12474, 12474)
        assert (out / f"{key}_robustness.png").stat().st_size > 1000
        assert nets[key]["params"]["random_state"] == 0
    # GmGM on log counts links cells of the same type far above chance
    assert nets["gmgm"]["same_type_edge_fraction"] > 2 * record["networks"]["chance_same_type_fraction"]
    emb = pd.read_csv(out / "robust_umap_embedding.csv", index_col=0)
    assert len(emb) == 328 and emb["training_cell"].sum() == record["embedding"]["n_train"]
    model = RobustUMAP.load(out / "robust_umap.magmap")
    assert model.embedding_.shape == (record["embedding"]["n_train"], 2)
    assert record["embedding"]["knn_accuracy_projected"] > 0.4
    assert np.isfinite(emb["certified_box"]).all()


def test_summarize_command_and_bad_label(tmp_path, shared_data):
    path = shared_data("cellbench_celseq2_3cl", "cellbench_celseq2_3celllines_counts.h5ad")
    out = tmp_path / "s"
    proc = subprocess.run([sys.executable, "-m", "magmap", "summarize", str(path), "--labels", "cell_line_demuxlet",
                           "--out", str(out)], capture_output=True, text=True, check=True)
    summary = json.loads(proc.stdout)
    assert summary["n_cells"] == 274 and sum(summary["label_counts"].values()) == 274
    assert (out / "per_cell_summary.csv").exists()
    bad = subprocess.run([sys.executable, "-m", "magmap", "summarize", str(path), "--labels", "nope", "--out", str(out)],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "--labels 'nope' is not a column of obs" in bad.stderr
