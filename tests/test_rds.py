"""Python → R → Python through rpy2 + anndata2ri on a real dataset: every slot survives."""
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import magmap

pytest.importorskip("rpy2")
pytestmark = pytest.mark.r


@pytest.fixture(scope="module")
def rich_adata():
    """The bundled Baron pancreas (first 400 genes) with obsm, obsp, varp and a layer added."""
    adata = magmap.datasets.baron2016_pancreas()[:, :400].copy()
    rng = np.random.default_rng(0)
    adata.layers["counts"] = adata.X.copy()
    adata.obsm["X_pca"] = rng.normal(size=(adata.n_obs, 5))
    adata.obsp["medmagma_connectivities"] = sp.random(adata.n_obs, adata.n_obs, density=0.02, format="csr", random_state=1)
    adata.varp["medmagma_connectivities"] = sp.random(adata.n_vars, adata.n_vars, density=0.02, format="csr", random_state=2)
    del adata.uns["provenance"]
    return adata


def test_rds_roundtrip_keeps_every_slot(rich_adata, tmp_path):
    path = tmp_path / "pancreas.rds"
    magmap.io.write_rds(rich_adata, path, X_name="logcounts")
    back = magmap.io.read_rds(path, X_name="logcounts")
    a = rich_adata
    assert back.shape == a.shape
    assert list(back.obs_names) == list(a.obs_names) and list(back.var_names) == list(a.var_names)
    np.testing.assert_array_equal(back.X.toarray() if sp.issparse(back.X) else back.X, a.X.toarray())
    np.testing.assert_array_equal(np.asarray(back.layers["counts"].todense()), a.layers["counts"].toarray())
    for col in a.obs.columns:
        assert isinstance(back.obs[col].dtype, pd.CategoricalDtype), col
        assert back.obs[col].astype(str).tolist() == a.obs[col].astype(str).tolist(), col
    assert list(back.obs["cell_type"].cat.categories) == list(a.obs["cell_type"].cat.categories)
    np.testing.assert_array_equal(back.obsm["X_pca"], a.obsm["X_pca"])
    for slot in ("obsp", "varp"):
        got, want = getattr(back, slot)["medmagma_connectivities"], getattr(a, slot)["medmagma_connectivities"]
        assert sp.issparse(got)
        assert abs(got - want).max() == 0
    back.write_h5ad(tmp_path / "back.h5ad")  # what magmap run does with what it read
    assert list(magmap.datasets.read_h5ad(tmp_path / "back.h5ad").obs_names) == list(a.obs_names)


def test_sce_object_has_the_graphs_in_col_and_row_pairs(rich_adata):
    # anndata2ri names reducedDims the scater way (X_pca -> PCA) and maps them back on return
    import rpy2.robjects as ro

    sce = magmap.io.adata_to_sce(rich_adata, X_name="logcounts")
    info = ro.r("""function(x) c(paste(SingleCellExperiment::colPairNames(x)), paste(SingleCellExperiment::rowPairNames(x)),
                paste(SummarizedExperiment::assayNames(x), collapse = ","), paste(SingleCellExperiment::reducedDimNames(x)),
                sum(SingleCellExperiment::colPair(x, "medmagma_connectivities", asSparse = TRUE) != 0))""")(sce)
    assert list(info)[:4] == ["medmagma_connectivities", "medmagma_connectivities", "logcounts,counts", "PCA"]
    assert int(float(list(info)[4])) == rich_adata.obsp["medmagma_connectivities"].nnz


def test_read_rds_errors(tmp_path):
    import rpy2.robjects as ro

    with pytest.raises(FileNotFoundError, match="does not exist"):
        magmap.io.read_rds(tmp_path / "none.rds")
    path = tmp_path / "vector.rds"
    ro.r["saveRDS"](ro.IntVector([1, 2, 3]), str(path))
    with pytest.raises(TypeError, match="not a SingleCellExperiment"):
        magmap.io.read_rds(path)


def test_magmap_run_on_an_rds_file_gives_the_results_of_the_same_anndata(tmp_path):
    # what `magmap run cells.rds --label cell_type` reads: the counts assay and colData of a SingleCellExperiment
    import json

    from magmap.pipeline import RunSettings, run

    cells = magmap.datasets.baron2016_pancreas()[::6].copy()  # 55 cells of the 5 types
    del cells.uns["provenance"]
    path = tmp_path / "cells.rds"
    magmap.io.write_rds(cells, path, X_name="counts")
    fast = RunSettings(robin_repeats=2, top_genes=1, umap={"n_epochs": 10, "robust_epochs": 1})
    from_rds = run(str(path), out=tmp_path / "rds", label="cell_type", settings=fast)
    direct = run(cells, out=tmp_path / "anndata", label="cell_type", settings=fast)
    assert from_rds["input"]["source"] == str(path) and direct["input"]["source"] == "AnnData object"
    for part in ("preprocessing", "networks", "clusters"):
        assert json.dumps(from_rds[part]) == json.dumps(direct[part]), part
    for name in ("medmagma_cell_edges.csv", "gmgm_gene_edges.csv"):
        assert (tmp_path / "rds" / name).read_text() == (tmp_path / "anndata" / name).read_text(), name


def test_magmap_run_says_what_an_rds_file_must_hold(tmp_path):
    import rpy2.robjects as ro

    from magmap.pipeline import InputError, run

    path = tmp_path / "numbers.rds"
    ro.r["saveRDS"](ro.FloatVector([1.0, 2.0]), str(path))
    with pytest.raises(InputError, match=r"could not read .*numbers\.rds.*not a SingleCellExperiment or Seurat object"):
        run(str(path), out=tmp_path / "out", label="cell_type")
