"""One quality test on real data: CellBench CEL-seq2, 3 cell lines (genotype labels)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from magmap.metrics import knn_accuracy
from magmap.umap import RobustUMAP

DATA = Path("/work/shared/data/cellbench_celseq2_3cl/cellbench_celseq2_3celllines_counts.h5ad")


@pytest.mark.slow
@pytest.mark.skipif(not DATA.exists(), reason="shared CellBench data not available")
def test_cellbench_knn_label_accuracy():
    import anndata as ad

    a = ad.read_h5ad(DATA)
    a = a[a.obs["demuxlet_cls"] == "SNG", ~a.var_names.str.startswith("ERCC-")].copy()
    train = np.random.default_rng(0).random(a.n_obs) < 0.7
    model = RobustUMAP(random_state=0, n_top_genes=500, n_epochs=100, robust=False, verbose=False).fit(a[train])
    y = a.obs["cell_line_demuxlet"].to_numpy()
    acc_train = knn_accuracy(model.embedding_, y[train])
    acc_test = knn_accuracy(model.transform(a[~train]), y[~train], Z_train=model.embedding_, labels_train=y[train])
    # measured 1.00 / 1.00 (seed 0); the three lines are well separated
    print(f"cellbench kNN accuracy: train {acc_train:.3f}, held-out {acc_test:.3f}")
    assert acc_train > 0.95 and acc_test > 0.9
