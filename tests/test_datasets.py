"""Bundled data and the summary used by the demo (the file readers are tested in test_io_readers.py)."""
import numpy as np
import pytest
import scipy.sparse as sp

import magmap
from magmap.datasets import summarize_counts


def test_bundled_dataset_is_the_documented_baron_subset():
    adata = magmap.datasets.baron2016_pancreas()
    assert adata.shape == (328, 12474)
    assert sp.issparse(adata.X)
    assert adata.obs["cell_type"].value_counts().to_dict() == {
        "alpha": 70, "beta": 70, "delta": 70, "macrophage": 70, "activated_stellate": 48}
    assert np.all(adata.X.data == np.round(adata.X.data)) and adata.X.data.min() > 0
    assert "GSE84133" in adata.uns["provenance"]


def test_summary_numbers_match_direct_computation():
    adata = magmap.datasets.baron2016_pancreas()
    summary, per_cell = summarize_counts(adata.X, adata.obs["cell_type"])
    X = adata.X.toarray()
    assert summary["n_nonzero"] == int((X != 0).sum())
    assert summary["sparsity"] == pytest.approx(float((X == 0).mean()))
    np.testing.assert_allclose(per_cell["library_size"], X.sum(1))
    np.testing.assert_array_equal(per_cell["n_genes_detected"], (X > 0).sum(1))
    assert summary["empty_genes"] == int(((X > 0).sum(0) == 0).sum())
    assert summary["label_counts"]["activated_stellate"] == 48
    with pytest.raises(ValueError, match="`labels` has 3 entries"):
        summarize_counts(adata.X, ["a", "b", "c"])
