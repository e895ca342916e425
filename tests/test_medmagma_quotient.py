"""Quotient map oracles: invariance to positive row/column scaling, unit geometric means,
signs and zero pattern kept; the one-pass App. C formula is *expected* not to be invariant with zeros."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from conftest_medmagma import positive_matrix, with_zeros
from magmap.medmagma import log_quotient, quotient


def _scale(x, rng):
    a = np.exp(rng.normal(scale=2.0, size=x.shape[0]))
    b = np.exp(rng.normal(scale=2.0, size=x.shape[1]))
    return a[:, None] * x * b[None, :]


@pytest.mark.parametrize("zh", ["one-pass", "iterated"])
def test_invariance_without_zeros(zh):
    rng = np.random.default_rng(0)
    x = positive_matrix(7, 9, rng) * np.where(rng.random((7, 9)) < 0.5, -1, 1)
    y = quotient(x, zero_handling=zh)
    np.testing.assert_allclose(quotient(_scale(x, rng), zero_handling=zh), y, rtol=1e-10)
    w, _ = log_quotient(x, zero_handling=zh)
    np.testing.assert_allclose(w.mean(axis=1), 0, atol=1e-12)  # unit row geometric means
    np.testing.assert_allclose(w.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_array_equal(np.sign(y), np.sign(x))


def test_one_pass_equals_iterated_without_zeros_and_matches_formula():
    rng = np.random.default_rng(1)
    x = positive_matrix(5, 6, rng)
    np.testing.assert_allclose(quotient(x), quotient(x, zero_handling="iterated"), rtol=1e-12)
    gm = lambda v: np.exp(np.log(np.abs(v)).mean())  # noqa: E731
    expected = np.array([[x[i, j] * gm(x) / (gm(x[i]) * gm(x[:, j])) for j in range(6)] for i in range(5)])
    np.testing.assert_allclose(quotient(x), expected, rtol=1e-12)


def test_iterated_is_exactly_invariant_with_zeros_one_pass_is_not():
    rng = np.random.default_rng(2)
    x = with_zeros(6, 7, rng)
    xs = _scale(x, rng)
    yi, ys = quotient(x, zero_handling="iterated"), quotient(xs, zero_handling="iterated")
    np.testing.assert_allclose(ys, yi, rtol=1e-8, atol=1e-12)
    # zero pattern and signs kept
    np.testing.assert_array_equal(yi == 0, x == 0)
    np.testing.assert_array_equal(np.sign(yi), np.sign(x))
    # the paper's one-pass map shifts log-magnitudes depending on the zero pattern
    w1, _ = log_quotient(x)
    w2, _ = log_quotient(xs)
    assert np.abs(w1 - w2)[x != 0].max() > 1e-2
    # iterated: row/column means over nonzeros are zero
    wi, _ = log_quotient(x, zero_handling="iterated")
    nz = x != 0
    np.testing.assert_allclose((wi * nz).sum(1) / nz.sum(1), 0, atol=1e-9)
    np.testing.assert_allclose((wi * nz).sum(0) / nz.sum(0), 0, atol=1e-9)


def test_one_pass_with_zeros_matches_app_c_formula():
    rng = np.random.default_rng(3)
    x = with_zeros(5, 6, rng)
    nz = x != 0
    L = np.where(nz, np.log(np.abs(x) + (~nz)), 0.0)
    rm = L.sum(1) / nz.sum(1)
    cm = L.sum(0) / nz.sum(0)
    expected = np.where(nz, np.sign(x) * np.exp(L - rm[:, None] - cm[None, :] + L[nz].mean()), 0.0)
    np.testing.assert_allclose(quotient(x), expected, rtol=1e-12)


def test_sparse_input_equals_dense():
    rng = np.random.default_rng(4)
    x = np.abs(with_zeros(8, 9, rng))
    for zh in ("one-pass", "iterated"):
        np.testing.assert_allclose(quotient(sp.csr_matrix(x), zero_handling=zh), quotient(x, zero_handling=zh))


def test_bad_zero_handling_message():
    with pytest.raises(ValueError, match="zero_handling"):
        quotient(np.ones((3, 3)), zero_handling="nope")
