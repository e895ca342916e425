"""backend='robin': the rpy2 path into CRAN robin, checked with a test double of robin (the real one
cannot be installed from Debian). The double records what it receives and returns values computed from it."""
import subprocess
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from magmap.robustness import robin

pytest.importorskip("rpy2")
pytestmark = pytest.mark.r

FAKE = Path(__file__).resolve().parents[1] / "rpkg" / "tests" / "testthat" / "fixtures" / "fakerobin"


@pytest.fixture(scope="module")
def fake_robin(tmp_path_factory):
    import rpy2.robjects as ro

    if ro.r('isTRUE(requireNamespace("robin", quietly = TRUE))')[0]:
        pytest.skip("the real robin is installed")
    lib = tmp_path_factory.mktemp("rlib")
    subprocess.run(["R", "CMD", "INSTALL", "-l", str(lib), str(FAKE)], check=True, capture_output=True)
    old = ro.r(".libPaths()")
    ro.r(".libPaths")(ro.StrVector([str(lib), *old]))
    yield ro
    ro.r('try(unloadNamespace("robin"), silent = TRUE)')
    ro.r(".libPaths")(old)


def planted(n=40, seed=0):
    rng = np.random.default_rng(seed)
    lab = np.repeat([0, 1], n // 2)
    A = np.triu(rng.random((n, n)) < np.where(lab[:, None] == lab[None, :], 0.5, 0.03), 1)
    return sp.csr_matrix((A | A.T).astype(float))


def test_robin_backend_receives_the_graph_and_returns_a_result(fake_robin):
    A = planted()
    res = robin(A, method="leiden", backend="auto", random_state=3)
    assert res.backend == "robin"
    last = fake_robin.r("robin::lastCall()")
    assert last.rx2("method")[0] == "leiden"
    assert last.rx2("dots").rx2("objective_function")[0] == "modularity"
    assert int(last.rx2("n_edges")[0]) == A.nnz // 2
    assert not last.rx2("directed")[0]
    assert res.curve_real.shape == (10, 13)
    np.testing.assert_allclose(res.curve_real[:, 1:], A.nnz / 2 / 1000)
    assert res.bayes_factor == pytest.approx(res.curve_null.sum() - res.curve_real.sum())
    assert res.auc == (0.25, 0.5)
    assert res.to_dict()["backend"] == "robin"
    assert res.params["versions"]["robin"] == "0.0.0.9000"


def test_python_backend_stays_default_and_custom_settings_are_refused(fake_robin):
    A = planted()
    assert robin(A, random_state=1, verbose=False).backend == "python"
    with pytest.raises(ValueError, match="robin's defaults only"):
        robin(A, backend="robin", n_repeats=4)
    with pytest.raises(ValueError, match="`backend` must be"):
        robin(A, backend="R")


def test_robin_backend_passes_the_exact_edges_and_weights(fake_robin):
    """The driver rebuilds the graph robin sees from a flat edge list: every pair and weight must survive."""
    A = planted(n=30, seed=5)
    rows, cols = sp.triu(A, 0).nonzero()
    W = sp.csr_matrix((np.arange(1, rows.size + 1, dtype=float), (rows, cols)), shape=A.shape)
    W = W + sp.triu(W, 1).T
    res = robin(W, method="louvain", backend="robin", weighted=True, random_state=1)
    last = fake_robin.r("robin::lastCall()")
    got = np.asarray(fake_robin.r("as.vector(t(robin::lastCall()$edges))"), dtype=int).reshape(-1, 2) - 1
    got = np.sort(got, axis=1)
    order = np.lexsort((got[:, 1], got[:, 0]))
    np.testing.assert_array_equal(got[order], np.column_stack([rows, cols]))
    np.testing.assert_allclose(np.asarray(last.rx2("weights"))[order], np.asarray(W[rows, cols]).ravel())
    assert last.rx2("type")[0] == "independent"
    assert res.backend == "robin"


def test_the_driver_file_is_shipped_with_the_package():
    from magmap.rbridge.robin import DRIVER

    text = DRIVER.read_text()
    assert "magmap_robin_run <- function" in text and "magmap_robin_graph <- function" in text
