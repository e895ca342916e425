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
