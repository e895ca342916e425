"""Graph metrics: average precision against a brute-force definition and scikit-learn, top-k
graphs, assortativity variants, best AMI over a Leiden sweep."""
from __future__ import annotations

import numpy as np
import pytest
from magmap.metrics import assortativity, best_leiden_ami, edge_average_precision, edge_precision_recall, topk_graph
from sklearn.metrics import average_precision_score


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


def _brute_topk(a: np.ndarray, k: int, *, exclude_diagonal: bool) -> np.ndarray:
    """Oracle: the k largest |a_ij| of every row by a full sort, as a 0/1 directed adjacency."""
    s = np.abs(a).astype(float)
    if exclude_diagonal:
        np.fill_diagonal(s, -np.inf)
    out = np.zeros_like(s)
    for i, row in enumerate(s):
        out[i, np.argsort(-row, kind="stable")[:k]] = 1.0
    return out


@pytest.mark.parametrize("symmetrize", ["sum", "max", "min"])
def test_precision_graph_matches_brute_force_in_blocks(monkeypatch, symmetrize):
    from magmap.medmagma import _graph, precision_graph

    rng = np.random.default_rng(3)
    a = rng.normal(size=(37, 37))
    a = a + a.T
    pick = _brute_topk(a, 4, exclude_diagonal=True)
    w = np.abs(a) * pick
    expected = {"sum": w + w.T, "max": np.maximum(w, w.T), "min": np.minimum(w, w.T)}[symmetrize]
    whole = precision_graph(a, 4, symmetrize=symmetrize).toarray()
    np.testing.assert_allclose(whole, expected, rtol=0, atol=0)
    monkeypatch.setattr(_graph, "BLOCK_BYTES", 8 * 37 * 5)  # blocks of 5 rows, last one partial
    np.testing.assert_array_equal(precision_graph(a, 4, symmetrize=symmetrize).toarray(), whole)


def test_topk_options_cover_the_diagonal_and_zeros():
    from magmap.medmagma import precision_graph

    m = np.array([[9.0, 3, 0, 0], [3, 9, 0, 0], [0, 0, 9, 2], [0, 0, 2, 9]])
    # vertex 0's second pick is an exact zero: an edge of weight `tiny` when kept, no edge when dropped
    kept = precision_graph(m, 2, zeros="keep")
    dropped = precision_graph(m, 2, zeros="drop")
    assert (kept != 0).sum(axis=1).min() >= 2
    np.testing.assert_array_equal(dropped.toarray(), [[0, 6, 0, 0], [6, 0, 0, 0], [0, 0, 0, 4], [0, 0, 4, 0]])
    assert kept.toarray()[[0, 1, 2, 3]].max() == 6 and 0 < kept.data.min() <= np.finfo(float).tiny * 2
    # metrics.topk_graph is the paper's setting of the same function
    np.testing.assert_array_equal(topk_graph(m, 2).toarray(), dropped.toarray())
    np.testing.assert_array_equal(topk_graph(m, 1, drop_diagonal=False).toarray(), 18 * np.eye(4))
    np.testing.assert_array_equal(precision_graph(m, 1, diagonal="compete").toarray(), 18 * np.eye(4))
    assert topk_graph(m, 10).nnz == dropped.nnz  # k capped at the candidates of a row
    unweighted = precision_graph(m, 1, weighted=False)
    assert set(np.unique(unweighted.data)) <= {1.0, 2.0}
    with pytest.raises(ValueError, match="`k` must be at most 3"):
        precision_graph(m, 4)
    with pytest.raises(ValueError, match="`zeros` must be one of"):
        precision_graph(m, 1, zeros="tiny")
    with pytest.raises(ValueError, match="`diagonal` must be one of"):
        precision_graph(m, 1, diagonal="keep")
    with pytest.raises(ValueError, match="square"):
        precision_graph(np.ones((3, 4)), 1)


def test_low_rank_precision_equals_its_dense_form():
    from magmap.medmagma import LowRankPrecision, precision_graph

    rng = np.random.default_rng(5)
    basis, _ = np.linalg.qr(rng.normal(size=(40, 6)))
    lr = LowRankPrecision(identity=2.5, basis=basis, weights=rng.normal(size=6))
    dense = 2.5 * np.eye(40) + (basis * lr.weights) @ basis.T
    np.testing.assert_allclose(lr.toarray(), dense, atol=1e-13)
    np.testing.assert_allclose(np.asarray(lr), dense, atol=1e-13)
    np.testing.assert_allclose(lr.rows(7, 19), dense[7:19], atol=1e-13)
    np.testing.assert_allclose(lr.diagonal(), np.diag(dense), atol=1e-13)
    x = rng.normal(size=40)
    np.testing.assert_allclose(lr.matvec(x), dense @ x, atol=1e-12)
    np.testing.assert_allclose(lr.eigenvalues(), np.linalg.eigvalsh(dense), atol=1e-12)
    for k in (1, 5):
        np.testing.assert_allclose(precision_graph(lr, k).toarray(), precision_graph(dense, k).toarray(), atol=1e-12)
    assert edge_average_precision(lr, dense) == pytest.approx(1.0)
