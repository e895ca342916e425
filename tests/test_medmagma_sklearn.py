"""MedMagma, GmGM and SingleAxis follow scikit-learn's estimator contract.

scikit-learn's own checks run with the failures we expect listed by name: they come from the input
rules of a two-axis model (at least 3 genes, no all-zero cell, messages that name cells and genes),
not from the contract. The contract pieces those checks would have exercised on their 2-feature
data (fit returns self, idempotent fits, n_features_in_, not-fitted errors, pickling, read-only input)
are tested below on data the models accept.
"""
from __future__ import annotations

import pickle

import magmap
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

_TWO_FEATURES = "scikit-learn draws 2-feature data here; a two-axis model needs at least 3 genes"
_MESSAGES = "our message names cells/genes and the fix instead of scikit-learn's wording"
_SPARSE = "the random sparse data has all-zero rows, which every method refuses with a clear message"
EXPECTED_FAILURES = {
    "check_estimators_overwrite_params": _TWO_FEATURES,
    "check_estimators_fit_returns_self": _TWO_FEATURES,
    "check_readonly_memmap_input": _TWO_FEATURES,
    "check_fit_idempotent": _TWO_FEATURES,
    "check_fit_check_is_fitted": _TWO_FEATURES,
    "check_n_features_in": _TWO_FEATURES,
    "check_estimators_dtypes": "integer-cast uniform data has all-zero cells, which are refused",
    "check_complex_data": _MESSAGES,
    "check_dtype_object": _MESSAGES,
    "check_estimators_empty_data_messages": _MESSAGES,
    "check_fit2d_1sample": _MESSAGES,
    "check_fit2d_1feature": _MESSAGES,
    "check_estimator_sparse_tag": _SPARSE,
    "check_estimator_sparse_array": _SPARSE,
    "check_estimator_sparse_matrix": _SPARSE,
}
ESTIMATORS = [magmap.MedMagma(max_iter=20), magmap.GmGM(), magmap.SingleAxis()]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda est: EXPECTED_FAILURES)
def test_sklearn_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return np.exp(rng.normal(size=(30, 8))) * (rng.random((30, 8)) > 0.2) + 0.01


@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_contract_on_accepted_data(est, data):
    est = clone(est)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        est.cell_graph(3)
    assert not hasattr(est, "n_features_in_")
    assert est.fit(data) is est
    assert est.n_features_in_ == 8
    first = np.array(est.cell_precision_)
    np.testing.assert_array_equal(est.fit(data).cell_precision_, first)  # idempotent
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.cell_graph(3).toarray(), est.cell_graph(3).toarray())
    read_only = data.copy()
    read_only.flags.writeable = False
    np.testing.assert_array_equal(clone(est).fit(read_only).cell_precision_, first)
    np.testing.assert_allclose(clone(est).fit(sp.csr_matrix(data)).cell_precision_, first, rtol=1e-10, atol=1e-12)
    assert not hasattr(est, "fit_transform") and not hasattr(est, "transform")


def test_set_params_and_clone():
    m = magmap.MedMagma(max_iter=7, random_state=3)
    c = clone(m)
    assert c is not m and c.get_params() == m.get_params()
    assert c.set_params(mode="reference", tol=1e-5) is c
    assert (c.mode, c.tol, c.max_iter) == ("reference", 1e-5, 7)
    assert repr(c) == "MedMagma(max_iter=7, mode='reference', random_state=3, tol=1e-05)"
    with pytest.raises(ValueError, match="Invalid parameter 'modes'"):
        c.set_params(modes="fast")
    g = clone(magmap.GmGM(skeptic=True)).set_params(mode="exact")
    assert g.get_params()["skeptic"] is True and g.mode == "exact"
    assert not hasattr(magmap.MedMagma(), "params_dict")
