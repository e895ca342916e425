"""Extra dropouts of counts (the robust-UMAP paper's perturbation): what is zeroed, how often, no mutation."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from magmap.metrics import dropout_counts


def _counts() -> sp.csr_matrix:
    X = np.random.default_rng(0).poisson(1.5, size=(300, 200)).astype(np.float32)
    return sp.csr_matrix(X)


def test_dropout_zeroes_only_nonzeros_at_the_rate_and_keeps_the_input():
    X = _counts()
    before = X.copy()
    Y = dropout_counts(X, 0.3, np.random.default_rng(1))
    assert (X != before).nnz == 0  # input untouched
    kept = Y.toarray() != 0
    # every surviving entry is the original count; nothing appears where X was zero
    np.testing.assert_array_equal(Y.toarray()[kept], X.toarray()[kept])
    assert not np.any(kept & (X.toarray() == 0))
    # binomial(nnz, 0.7): nnz ≈ 46,000, sd of the kept fraction ≈ 0.002
    assert abs(Y.nnz / X.nnz - 0.7) < 0.01


def test_dropout_edge_rates_and_seed():
    X = _counts()
    assert (dropout_counts(X, 0.0, np.random.default_rng(0)) != X).nnz == 0
    assert dropout_counts(X, 1.0, np.random.default_rng(0)).nnz == 0
    a = dropout_counts(X, 0.5, np.random.default_rng(7))
    b = dropout_counts(X.toarray(), 0.5, np.random.default_rng(7))  # dense input, same seed: same result
    assert (a != b).nnz == 0


@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan"), "0.2", True])
def test_dropout_rejects_a_rate_that_is_not_a_probability(rate):
    with pytest.raises(ValueError, match="`rate` must be a probability between 0 and 1"):
        dropout_counts(_counts(), rate, np.random.default_rng(0))
