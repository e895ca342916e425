"""Graph metrics: average precision against a brute-force definition and scikit-learn, top-k
graphs, assortativity variants, best AMI over a Leiden sweep."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from magmap.metrics import (assortativity, best_leiden_ami, edge_average_precision, edge_precision_recall,
                            topk_graph)


def _sym(a):
    return np.triu(a, 1) + np.triu(a, 1).T


def test_average_precision_matches_sklearn_and_extremes():
    rng = np.random.default_rng(0)
    truth = _sym((rng.random((30, 30)) < 0.1).astype(float)) + np.eye(30)
    est = _sym(rng.random((30, 30)))
    il = np.tril_indices(30, -1)
    expected = average_precision_score(truth[il] != 0, np.abs(est[il]))
    assert edge_average_precision(est, truth) == pytest.approx(expected, rel=1e-12)
    assert edge_average_precision(truth * 5 - 2 * np.eye(30), truth) == pytest.approx(1.0)
    # ties are handled like scikit-learn
    tied = np.round(est, 1)
    assert edge_average_precision(tied, truth) == pytest.approx(average_precision_score(truth[il] != 0, tied[il]))


def test_precision_recall_and_topk():
    truth = np.eye(4) + _sym(np.array([[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], float))
    est = _sym(np.array([[0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], float))
    p, r = edge_precision_recall(est, truth)
    assert (p, r) == (0.5, pytest.approx(1 / 3))
    m = np.array([[9, 3, 1], [3, 9, 2], [1, 2, 9]], float)
    g = topk_graph(m, 1).toarray()
    np.testing.assert_allclose(g, [[0, 6, 0], [6, 0, 0], [0, 0, 0]] + np.array([[0, 0, 0], [0, 0, 2], [0, 2, 0]]))
    g_diag = topk_graph(m, 1, drop_diagonal=False).toarray()  # synthetic protocol: diagonal takes the slot
    np.testing.assert_allclose(g_diag, 18 * np.eye(3))


def test_assortativity_variants():
    # two cliques of 3 joined by one edge
    a = np.zeros((6, 6))
    for grp in ((0, 1, 2), (3, 4, 5)):
        for i in grp:
            for j in grp:
                a[i, j] = i != j
    a[2, 3] = a[3, 2] = 1
    labels = ["x"] * 3 + ["y"] * 3
    nominal = assortativity(a, labels)
    assert nominal == pytest.approx(assortativity(a, labels, method="scalar_codes"))  # equal for 2 classes
    assert 0.6 < nominal < 1.0
    # with 3 classes the scalar-on-codes variant depends on the code order, nominal does not
    lab3 = ["b", "b", "a", "c", "c", "c"]
    relabel = {"a": "z", "b": "b", "c": "c"}
    assert assortativity(a, lab3) == pytest.approx(assortativity(a, [relabel[x] for x in lab3]))


def test_best_leiden_ami_finds_planted_partition():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2], 10)
    w = (labels[:, None] == labels[None, :]) * (1 + rng.random((30, 30))) + 0.05 * rng.random((30, 30))
    res = best_leiden_ami(_sym(w), labels, ks=(3, 5), resolutions=np.linspace(0.2, 1.5, 5))
    assert res["ami"] == pytest.approx(1.0)
    assert res["k"] in (3, 5) and res["assortativity"] > 0.9
