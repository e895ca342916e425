"""Bundled data, readers and the summary used by the demo."""
import gzip

import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

import magmap
from magmap.datasets import read, read_10x_mtx, read_csv, read_h5ad, summarize_counts


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


def test_read_real_h5ad_and_missing_files(tmp_path, shared_data):
    adata = read_h5ad(shared_data("cellbench_celseq2_3cl", "cellbench_celseq2_3celllines_counts.h5ad"))
    assert adata.n_obs == 274 and "cell_line_demuxlet" in adata.obs
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_h5ad(tmp_path / "missing.h5ad")
    broken = tmp_path / "broken.h5ad"
    broken.write_text("not hdf5")
    with pytest.raises(ValueError, match="could not read .* as an .h5ad"):
        read_h5ad(broken)
    unknown = tmp_path / "data.xyz"
    unknown.write_text("x")
    with pytest.raises(ValueError, match="do not know how to read"):
        read(unknown)


def test_read_10x_folder(tmp_path, small_counts):
    folder = tmp_path / "filtered_feature_bc_matrix"
    folder.mkdir()
    scipy.io.mmwrite(str(folder / "matrix.mtx"), sp.coo_matrix(small_counts.T))
    genes = [f"ENSG{i:05d}\tGENE{i}\tGene Expression" for i in range(small_counts.shape[1])]
    with gzip.open(folder / "features.tsv.gz", "wt") as fh:
        fh.write("\n".join(genes) + "\n")
    (folder / "barcodes.tsv").write_text("\n".join(f"CELL{i}-1" for i in range(small_counts.shape[0])) + "\n")
    adata = read(folder)
    assert adata.shape == small_counts.shape
    assert adata.var_names[3] == "GENE3" and adata.var["gene_ids"].iloc[3] == "ENSG00003"
    np.testing.assert_array_equal(adata.X.toarray(), small_counts.toarray())
    (folder / "barcodes.tsv").write_text("A\nB\n")
    with pytest.raises(ValueError, match="inconsistent"):
        read_10x_mtx(folder)
    with pytest.raises(FileNotFoundError, match="matrix.mtx"):
        read_10x_mtx(tmp_path)


def test_read_csv_both_orientations(tmp_path):
    frame = pd.DataFrame([[1, 0, 2], [3, 4, 0]], index=["c1", "c2"], columns=["g1", "g2", "g3"])
    frame.to_csv(tmp_path / "cells.csv")
    frame.T.to_csv(tmp_path / "genes.tsv", sep="\t")
    a = read(tmp_path / "cells.csv")
    b = read_csv(tmp_path / "genes.tsv", genes_in_rows=True)
    for ad_ in (a, b):
        assert list(ad_.obs_names) == ["c1", "c2"] and list(ad_.var_names) == ["g1", "g2", "g3"]
        np.testing.assert_array_equal(ad_.X, frame.to_numpy())
    frame.assign(note=["x", "y"]).to_csv(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="non-numeric column"):
        read(tmp_path / "bad.csv")
