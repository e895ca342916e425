"""Bad input gets a clear error naming the argument and the fix; valid input is never mutated."""
import numpy as np
import pytest
import scipy.sparse as sp

from magmap._validation import check_choice, check_flag, check_matrix, check_number, check_positive_int
from magmap.rbridge.api import _r_names


def test_valid_dense_and_sparse_are_returned_as_float64_copies(small_counts):
    dense = small_counts.toarray()
    out = check_matrix(dense)
    assert out.dtype == np.float64 and out is not dense
    out[0, 0] = -5
    assert dense[0, 0] != -5  # the caller's data is untouched
    s = check_matrix(small_counts)
    assert sp.isspmatrix_csr(s) and s.dtype == np.float64
    np.testing.assert_array_equal(s.toarray(), dense)
    assert check_matrix(small_counts, sparse="dense").shape == dense.shape


@pytest.mark.parametrize(
    "make, exc, pattern",
    [
        (lambda X: np.where(X == X.max(), np.nan, X), ValueError, r"`X` contains \d+ NaN or infinite"),
        (lambda X: np.where(X == X.max(), np.inf, X), ValueError, "NaN or infinite"),
        (lambda X: X - 3, ValueError, "negative values .* Pass the counts layer"),
        (lambda X: X[:2], ValueError, "has 2 cell\\(s\\) .* at least 3"),
        (lambda X: X[:, :2], ValueError, "has 2 gene\\(s\\) .* at least 3"),
        (lambda X: np.vstack([X, np.zeros(X.shape[1])]), ValueError, "1 all-zero cell.*filter_cells"),
        (lambda X: np.hstack([X, np.zeros((X.shape[0], 1))]), ValueError, "1 all-zero gene.*filter_genes"),
        (lambda X: X.astype(str), TypeError, "must be a numeric matrix"),
        (lambda X: X.ravel(), ValueError, "must be 2-D"),
    ],
)
def test_bad_input_messages(small_counts, make, exc, pattern):
    X = make(small_counts.toarray())
    with pytest.raises(exc, match=pattern):
        check_matrix(X, nonnegative=True)


def test_sparse_nan_and_negative_are_caught(small_counts):
    bad = small_counts.copy()
    bad.data[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        check_matrix(bad)
    neg = small_counts.copy()
    neg.data[0] = -1
    with pytest.raises(ValueError, match="negative"):
        check_matrix(neg, nonnegative=True, name="counts")


def test_scalar_checks():
    assert check_positive_int(5.0, "k") == 5
    with pytest.raises(TypeError, match="`k` must be an integer"):
        check_positive_int("5", "k")
    with pytest.raises(ValueError, match="`k` must be at least 2"):
        check_positive_int(1, "k", minimum=2)
    with pytest.raises(ValueError, match="`method` must be one of"):
        check_choice("x", "method", ("a", "b"))
    assert check_number(3, "eps") == 3.0 and check_number(0.5, "eps", minimum=0.5) == 0.5
    with pytest.raises(ValueError, match="`eps` must be a finite number ≥ 0, got -1"):
        check_number(-1, "eps")
    with pytest.raises(ValueError, match="`eps` must be a finite number"):
        check_number(float("nan"), "eps")
    for bad in (True, "1", [0.1, 0.2], None):
        with pytest.raises(TypeError, match="`eps` must be a single number"):
            check_number(bad, "eps")
    assert check_flag(np.bool_(True), "robust") is True
    for bad in (1, "yes", None):
        with pytest.raises(TypeError, match="`robust` must be True or False"):
            check_flag(bad, "robust")


def test_r_names_rewrite_python_argument_names_for_r_users():
    with pytest.raises(ValueError, match=r"^`n\.repeats` must be at least 2, got 1\.$") as info:
        with _r_names(n_repeats="n.repeats"):
            check_positive_int(1, "n_repeats", minimum=2)
    assert "`n_repeats`" in str(info.value.__cause__)
    # a message naming no mapped argument is re-raised as it was
    with pytest.raises(TypeError, match="`k` must be an integer"):
        with _r_names(n_repeats="n.repeats"):
            check_positive_int("x", "k")
