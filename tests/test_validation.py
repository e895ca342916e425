"""Bad input gets a clear error naming the argument and the fix; valid input is never mutated."""
import numpy as np
import pytest
import scipy.sparse as sp

from magmap._validation import check_choice, check_matrix, check_positive_int


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
