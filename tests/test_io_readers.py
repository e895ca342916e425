"""File readers of magmap.io: .h5ad, 10x folder and .h5, CSV/TSV, and the dispatch by path."""
import gzip

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

import magmap
from magmap.io import read, read_10x_h5, read_10x_mtx, read_csv, read_h5ad


def test_read_real_h5ad_and_missing_files(tmp_path, shared_data):
    adata = read_h5ad(shared_data("cellbench_celseq2_3cl", "cellbench_celseq2_3celllines_counts.h5ad"))
    assert adata.n_obs == 274 and "cell_line_demuxlet" in adata.obs
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_h5ad(tmp_path / "missing.h5ad")
    broken = tmp_path / "broken.h5ad"
    broken.write_text("not hdf5")
    with pytest.raises(ValueError, match="could not read .* as an .h5ad"):
        read_h5ad(broken)


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


def _write_10x_h5(path, X: sp.csr_matrix, genes: list[str]) -> None:
    """A Cell Ranger 3 feature-barcode ``.h5`` (matrix group, genes × cells CSC = cells × genes CSR)."""
    with h5py.File(path, "w") as f:
        m = f.create_group("matrix")
        m["data"], m["indices"], m["indptr"] = X.data.astype(np.int32), X.indices, X.indptr
        m["shape"] = np.array([X.shape[1], X.shape[0]])
        m["barcodes"] = np.array([f"CELL{i}-1" for i in range(X.shape[0])], dtype="S")
        feats = m.create_group("features")
        feats["id"] = np.array([f"ENSG{i:05d}" for i in range(X.shape[1])], dtype="S")
        feats["name"] = np.array(genes, dtype="S")
        feats["feature_type"] = np.array(["Gene Expression"] * X.shape[1], dtype="S")
        feats["genome"] = np.array(["GRCh38"] * X.shape[1], dtype="S")


def test_read_10x_h5_through_the_dispatch(tmp_path, small_counts):
    genes = [f"GENE{i}" for i in range(small_counts.shape[1])]
    genes[1] = genes[0]  # a duplicated symbol, as in real 10x files
    _write_10x_h5(tmp_path / "filtered_feature_bc_matrix.h5", small_counts, genes)
    adata = read(tmp_path / "filtered_feature_bc_matrix.h5")
    assert adata.shape == small_counts.shape
    np.testing.assert_array_equal(adata.X.toarray(), small_counts.toarray())
    assert adata.var_names.is_unique and adata.var_names[0] == "GENE0"
    assert adata.obs_names[2] == "CELL2-1"
    broken = tmp_path / "broken.h5"
    broken.write_text("not hdf5")
    with pytest.raises(ValueError, match="could not read .*broken.h5.* as a 10x Genomics .h5 matrix"):
        read(broken)
    with pytest.raises(FileNotFoundError, match="10x .h5 file .* does not exist"):
        read_10x_h5(tmp_path / "absent.h5")


def test_unknown_kind_names_what_is_supported(tmp_path):
    unknown = tmp_path / "data.xyz"
    unknown.write_text("x")
    with pytest.raises(ValueError, match=r"do not know how to read .*expected .h5ad, .rds .*10x folder or .h5 file"):
        read(unknown)
    with pytest.raises(FileNotFoundError, match="input .* does not exist"):
        read(tmp_path / "absent.h5ad")


def test_readers_keep_their_former_names_in_datasets():
    # code written against magmap.datasets.read* gets the same functions
    for name in ("read", "read_h5ad", "read_10x_mtx", "read_csv"):
        assert getattr(magmap.datasets, name) is getattr(magmap.io, name)
