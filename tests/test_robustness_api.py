"""magmap.robustness.robin / compare: behaviour, reproducibility, input types, errors."""
from __future__ import annotations

import json
import logging
import math
import random

import igraph as ig
import numpy as np
import pytest
import scipy.sparse as sp

import magmap.robustness as rb

FAST = dict(n_repeats=3, levels=(10, 30, 60), verbose=False)


def _sbm(seed: int, n: int = 150, k: int = 3, p_in: float = 0.2, p_out: float = 0.01) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    lab = np.repeat(np.arange(k), n // k)
    U = np.triu(rng.random((n, n)) < np.where(lab[:, None] == lab[None, :], p_in, p_out), 1)
    return sp.csr_matrix((U | U.T).astype(float))


def _er(seed: int, n: int, m: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    iu = np.triu_indices(n, 1)
    pick = rng.choice(iu[0].size, m, replace=False)
    A = sp.coo_matrix((np.ones(m), (iu[0][pick], iu[1][pick])), shape=(n, n))
    return (A + A.T).tocsr()


@pytest.fixture(scope="module")
def karate() -> ig.Graph:
    return ig.Graph.Famous("Zachary")


def test_result_shape_and_fields(karate):
    r = rb.robin(karate, random_state=0, verbose=False)
    assert r.curve_real.shape == r.curve_null.shape == (10, 13)
    np.testing.assert_array_equal(r.levels, np.arange(0, 61, 5))
    assert np.all(r.curve_real[:, 0] == 0) and np.all(r.curve_null[:, 0] == 0)
    assert np.all((r.curve_real >= 0) & (r.curve_real <= math.log(2) + 1e-12))
    assert r.labels == ("real data", "null model") and r.backend == "python" and r.mode == "robust"
    assert r.bayes_factor == pytest.approx(rb.bayes_factor(r.curve_real, r.curve_null))
    assert r.auc == pytest.approx(rb.auc(r.curve_real, r.curve_null))
    assert r.params["seed"] == 0 and r.params["trial_counts"] == rb.trial_counts(78)
    assert "igraph" in r.params["versions"] and len(r.communities_real) == 34


def test_same_seed_same_result_and_independent_of_n_jobs(karate):
    a = rb.robin(karate, method="leiden", random_state=7, **FAST)
    b = rb.robin(karate, method="leiden", random_state=7, **FAST)
    c = rb.robin(karate, method="leiden", random_state=7, n_jobs=2, **FAST)
    d = rb.robin(karate, method="leiden", random_state=8, **FAST)
    for other in (b, c):
        np.testing.assert_array_equal(a.curve_real, other.curve_real)
        np.testing.assert_array_equal(a.curve_null, other.curve_null)
        assert a.bayes_factor == other.bayes_factor
    assert not np.array_equal(a.curve_real, d.curve_real)
    assert ig.Graph.Famous("Zachary").community_label_propagation() is not None  # igraph RNG usable after


def test_igraph_rng_restored(karate):
    rb.robin(karate, random_state=1, **FAST)
    random.seed(123)
    x = karate.community_label_propagation().membership
    random.seed(123)
    assert karate.community_label_propagation().membership == x


def test_input_types_agree(karate):
    import anndata as ad
    import networkx as nx

    A = karate.get_adjacency_sparse().astype(float)
    G = nx.from_scipy_sparse_array(A)
    adata = ad.AnnData(X=np.zeros((34, 2)))
    adata.obsp["medmagma_connectivities"] = A
    gdata = ad.AnnData(X=np.zeros((2, 34)))
    gdata.varp["g"] = A
    ref = rb.robin(karate, random_state=3, **FAST)
    for graph, kw in ((A, {}), (A.toarray(), {}), (G, {}), (adata, {"key": "medmagma_connectivities"}),
                      (gdata, {"key": "g", "axis": "var"})):
        r = rb.robin(graph, random_state=3, **kw, **FAST)
        np.testing.assert_array_equal(r.curve_real, ref.curve_real)
        np.testing.assert_array_equal(r.curve_null, ref.curve_null)


@pytest.mark.filterwarnings("ignore:The partition of the:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:The curves contain NaN:RuntimeWarning")
@pytest.mark.parametrize("method", ["louvain", "leiden", "walktrap", "fastGreedy", "infomap", "labelProp"])
@pytest.mark.parametrize("measure", ["vi", "nmi", "split.join", "adjusted_rand"])
def test_all_methods_and_measures_run(karate, method, measure):
    r = rb.robin(karate, method=method, measure=measure, random_state=0, n_repeats=2, levels=(20, 60), verbose=False)
    vals = r.curve_real[:, 1:]
    assert r.curve_real.shape == (2, 3)
    if measure != "adjusted_rand" or not np.isnan(vals).any():
        assert np.all(vals[np.isfinite(vals)] >= -1e-12) and np.all(vals[np.isfinite(vals)] <= 1.0)


@pytest.mark.filterwarnings("ignore:The partition of the:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:The two curves are identical:RuntimeWarning")
def test_method_args_are_passed(karate):
    low = rb.robin(karate, method="leiden", resolution=0.05, random_state=0, **FAST)
    high = rb.robin(karate, method="leiden", resolution=3.0, random_state=0, **FAST)
    assert len(set(low.communities_real)) < len(set(high.communities_real))
    assert high.params["method_args"] == {"resolution": 3.0}


def test_callable_method(karate):
    r = rb.robin(karate, method=lambda g: g.community_multilevel(), random_state=0, **FAST)
    assert r.methods == ("<lambda>",)


def test_planted_partition_gives_large_bayes_factor():
    for seed in (0, 1):
        r = rb.robin(_sbm(seed), random_state=seed, verbose=False)
        assert r.bayes_factor > 50, r.bayes_factor
        assert r.auc[0] < r.auc[1]


def test_erdos_renyi_gives_bayes_factor_near_zero():
    # no community structure: real and null curves coincide. Over seeds 0..9 the values were
    # 0.0, 4.6, 0.0, 0.5, 1.0, 2.4, 0.8, 0.0, 0.8, 0.0 (ln scale; < 10 = not "strong" evidence)
    bfs = [rb.robin(_er(seed, 150, 800), random_state=seed, verbose=False).bayes_factor for seed in (0, 1, 2)]
    assert all(-0.5 < b < 10 for b in bfs), bfs
    assert np.mean(bfs) < 3, bfs


def test_compare_mode(karate):
    r = rb.compare(karate, method1="fastGreedy", method2="louvain", random_state=2, verbose=False)
    assert r.mode == "compare" and r.labels == ("fastgreedy", "louvain") and r.methods == r.labels
    assert r.curve_real.shape == (10, 13)
    assert r.bayes_factor == pytest.approx(rb.bayes_factor(r.curve_real, r.curve_null))
    # fastgreedy is deterministic: its reference partition equals igraph's
    assert r.communities_real == karate.community_fastgreedy().as_clustering().membership
    with pytest.warns(RuntimeWarning, match="identical"):
        same = rb.compare(karate, method1="walktrap", method2="walktrap", random_state=2, verbose=False,
                          n_repeats=3, levels=(10, 50))
    assert math.isnan(same.bayes_factor)
    np.testing.assert_array_equal(same.curve_real, same.curve_null)  # one perturbed graph, both methods


def test_user_null_and_weighted_paths(karate, caplog):
    rng = np.random.default_rng(0)
    A = sp.triu(karate.get_adjacency_sparse().astype(float), 1).tocsr()
    A.data = rng.integers(1, 5, A.nnz).astype(float)
    A = (A + A.T).tocsr()
    with caplog.at_level(logging.WARNING, logger="magmap"):
        unw = rb.robin(A, random_state=0, **FAST)
    assert "ignored" in caplog.text
    binary = rb.robin((A > 0).astype(float), random_state=0, **FAST)
    np.testing.assert_array_equal(unw.curve_real, binary.curve_real)
    for scheme in ("rewire", "shuffle", "perturbr", True):
        r = rb.robin(A, weighted=scheme, random_state=0, **FAST)
        assert r.params["weighted"] == ("rewire" if scheme is True else scheme)
        assert np.all(np.isfinite(r.curve_real))
    null = rb.random_graph(karate, random_state=5)
    r = rb.robin(karate, null=null, random_state=0, **FAST)
    assert r.params["null"] == "supplied"


def test_weighted_rewire_keeps_weight_multiset(karate):
    from magmap.robustness.null import igraph_rng, perturb

    g = karate.copy()
    g.es["weight"] = list(np.arange(1, g.ecount() + 1, dtype=float))
    with igraph_rng(1) as r:
        h = perturb(g, 60, "rewire", r)
    assert sorted(h.es["weight"]) == sorted(g.es["weight"]) and h.degree() == g.degree()
    with igraph_rng(1) as r:
        s = perturb(g, 10, "shuffle", r)
    assert s.get_edgelist() == g.get_edgelist() and sum(a != b for a, b in zip(s.es["weight"], g.es["weight"])) == 10


def test_to_dict_round_trip_and_plot(karate):
    import matplotlib

    matplotlib.use("Agg")
    r = rb.robin(karate, random_state=0, **FAST)
    d = r.to_dict()
    json.dumps(d)  # plain types only
    assert isinstance(d["curve_real"], list) and len(d["curve_real"]) == 3 and len(d["curve_real"][0]) == 4
    back = rb.RobinResult.from_dict(json.loads(json.dumps(d)))
    np.testing.assert_array_equal(back.curve_real, r.curve_real)
    assert back.bayes_factor == r.bayes_factor and back.auc == r.auc and back.params == d["params"]
    ax = r.plot()
    lines = ax.get_lines()
    np.testing.assert_allclose(lines[0].get_ydata(), r.curve_real.mean(0))
    np.testing.assert_allclose(lines[1].get_xdata(), [0, 0.1, 0.3, 0.6])
    assert lines[0].get_color() == "#00BFC4" and ax.get_ylim() == (0.0, 1.0)


@pytest.mark.filterwarnings("ignore:The two curves are identical:RuntimeWarning")
def test_negative_weights_rejected_with_the_fix(karate):
    import networkx as nx

    a = karate.get_adjacency_sparse().astype(float).tocoo()
    # a symmetric signed graph (like a precision matrix): edges with i + j odd get weight -0.5
    signed = sp.csr_matrix((np.where((a.row + a.col) % 2 == 1, -0.5, 1.0), (a.row, a.col)), shape=a.shape)
    assert abs(signed - signed.T).max() == 0 and signed.min() < 0
    msg = r"has \d+ edge\(s\) with negative weight \(min -0\.5\); robin takes unsigned graphs.*abs\(A\)"
    with pytest.raises(ValueError, match=msg):
        rb.robin(signed, random_state=0, **FAST)
    g = karate.copy()
    g.es["weight"] = [-1.0] + [1.0] * (g.ecount() - 1)
    with pytest.raises(ValueError, match="1 edge\\(s\\) with negative weight"):
        rb.robin(g, random_state=0, **FAST)
    G = nx.karate_club_graph()
    nx.set_edge_attributes(G, -2.0, "weight")
    with pytest.raises(ValueError, match="78 edge"):
        rb.robin(G, random_state=0, **FAST)
    # the fix in the message works: absolute values give the same result as the unsigned graph
    fixed = rb.robin(abs(signed), random_state=0, **FAST)
    assert fixed.bayes_factor == rb.robin(a.tocsr(), random_state=0, **FAST).bayes_factor


def test_degenerate_partition_warns():
    with pytest.warns(RuntimeWarning, match="singletons"):
        rb.robin(ig.Graph.Famous("Zachary"), method="leiden", objective_function="CPM", random_state=0, **FAST)


def test_bad_inputs_have_clear_errors(karate):
    import anndata as ad

    with pytest.raises(ValueError, match="Unknown community method 'kmeans'"):
        rb.robin(karate, method="kmeans")
    with pytest.raises(ValueError, match="Unknown measure 'jaccard'"):
        rb.robin(karate, measure="jaccard")
    with pytest.raises(ValueError, match="directed"):
        rb.robin(ig.Graph.Famous("Zachary").as_directed())
    with pytest.raises(ValueError, match="not symmetric"):
        rb.robin(sp.csr_matrix(np.triu(np.ones((5, 5)), 1)))
    with pytest.raises(ValueError, match="empty"):
        rb.robin(ig.Graph(n=5))
    with pytest.raises(ValueError, match="square"):
        rb.robin(sp.csr_matrix(np.ones((3, 4))))
    with pytest.raises(TypeError, match="must be a scipy sparse"):
        rb.robin([[0, 1], [1, 0]])
    adata = ad.AnnData(X=np.zeros((34, 2)))
    adata.obsp["conn"] = karate.get_adjacency_sparse().astype(float)
    with pytest.raises(KeyError, match=r"key='nope'. is not in adata\.obsp"):
        rb.robin(adata, key="nope")
    with pytest.raises(ValueError, match="needs `key=`"):
        rb.robin(adata)
    with pytest.raises(ValueError, match="axis"):
        rb.robin(adata, key="conn", axis="cells")
    with pytest.raises(NotImplementedError, match="dependent"):
        rb.robin(karate, type="dependent")
    with pytest.raises(ValueError, match="levels"):
        rb.robin(karate, levels=(30, 10))
    with pytest.raises(ValueError, match="same vertex count|vertices"):
        rb.robin(karate, null=ig.Graph.Ring(10))
    with pytest.raises(ValueError, match="weighted"):
        rb.robin(karate, weighted="garlaschelli")
    with pytest.raises(ValueError, match="random_state"):
        rb.robin(karate, random_state=-1)
    with pytest.raises(ValueError, match="n_repeats"):
        rb.robin(karate, n_repeats=1)


def test_progress_bar_and_verbose_false(karate, capsys, monkeypatch):
    monkeypatch.delenv("MAGMAP_QUIET", raising=False)
    monkeypatch.delenv("MAGMAP_PROGRESS", raising=False)
    rb.robin(karate, random_state=0, n_repeats=2, levels=(10, 20), verbose=True)
    assert capsys.readouterr().err == ""  # captured stderr is not a terminal: no bar
    monkeypatch.setenv("MAGMAP_PROGRESS", "1")
    rb.robin(karate, random_state=0, n_repeats=2, levels=(10, 20), verbose=True)
    assert "robin" in capsys.readouterr().err
    rb.robin(karate, random_state=0, n_repeats=2, levels=(10, 20), verbose=False)
    assert capsys.readouterr().err == ""


def test_plot_multi_compare(karate):
    import matplotlib

    matplotlib.use("Agg")
    kw = dict(random_state=0, n_repeats=2, levels=(10, 40), verbose=False)
    r1 = rb.compare(karate, method1="louvain", method2="fastgreedy", **kw)
    r2 = rb.compare(karate, method1="louvain", method2="walktrap", **kw)
    ax = rb.plot_multi_compare([r1, r2])
    assert [line.get_label() for line in ax.get_lines()] == ["louvain", "fastgreedy", "walktrap"]
    np.testing.assert_allclose(ax.get_lines()[2].get_ydata(), r2.curve_null.mean(0))
    with pytest.raises(ValueError, match="compare"):
        rb.plot_multi_compare([rb.robin(karate, **kw)])


def test_perturbr_null_and_pair_permutation(karate):
    from magmap.robustness.null import igraph_rng, null_graph, perturb

    g = karate.copy()
    g.es["weight"] = [float(1 + i % 4) for i in range(g.ecount())]
    with igraph_rng(0) as r:
        nulls = [null_graph(g, "perturbr", r) for _ in range(20)]
    totals = [sum(h.es["weight"]) for h in nulls]
    assert abs(np.mean(totals) - sum(g.es["weight"])) < 0.1 * sum(g.es["weight"])  # E[total] = W
    assert max(max(h.es["weight"]) for h in nulls) <= 4 and all(h.vcount() == 34 for h in nulls)
    with igraph_rng(1) as r:
        p = perturb(g, 200, "perturbr", r)
    assert sum(p.es["weight"]) == pytest.approx(sum(g.es["weight"]))  # weights permuted among pairs
    assert sorted(p.es["weight"]) == sorted(g.es["weight"])  # the multiset of pair weights is unchanged
    assert p.get_edgelist() != g.get_edgelist()
