"""RobustUMAP estimator: round trips, reproducibility, bad input, robust phase, bound-loss gradients."""
from __future__ import annotations

import copy
import io
import json
import struct
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.exceptions import NotFittedError

import magmap
from magmap.umap import RobustUMAP
from magmap.umap.encoder import fold_batch_norm, fold_input_projection, make_encoder, with_batch_norm
from magmap.umap.graph import due_edges, fuzzy_graph, nearest_neighbors
from magmap.umap.losses import find_ab_params, log_q_terms, umap_forces, umap_loss
from magmap.crown import bound_area_loss, output_bounds

FAST = dict(n_neighbors=10, n_epochs=15, batch_size=512, hidden_layers=(32, 32, 32), verbose=False)


def _counts(n_cells: int = 120, n_genes: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n_cells // 3)
    base = rng.gamma(2.0, 1.0, size=(3, n_genes))
    base[:, : n_genes // 2] *= rng.choice([0.2, 5.0], size=(3, n_genes // 2))
    X = rng.poisson(base[labels] * rng.uniform(0.8, 1.2, size=(n_cells, 1))).astype(np.float64)
    X[:, 0] += 1  # no empty cells
    return X, labels


def _adata(X: np.ndarray, labels: np.ndarray):
    import anndata as ad
    import pandas as pd

    a = ad.AnnData(sp.csr_matrix(X), obs=pd.DataFrame({"cell_type": labels.astype(str)},
                                                        index=[f"c{i}" for i in range(X.shape[0])]))
    a.var_names = [f"g{j}" for j in range(X.shape[1])]
    return a


@pytest.fixture(scope="session")
def data():
    return _counts()


@pytest.fixture(scope="session")
def fitted(data):
    X, labels = data
    model = RobustUMAP(random_state=0, n_top_genes=30, robust_epochs=40, bound_method="crown", **FAST)
    model.fit(_adata(X, labels))
    return model


@pytest.fixture(scope="session")
def plain(data):
    X, labels = data
    return RobustUMAP(random_state=0, n_top_genes=30, robust=False, **FAST).fit(_adata(X, labels))


def test_attributes_and_shapes(fitted, data):
    X, _ = data
    assert fitted.embedding_.shape == (X.shape[0], 2)
    assert fitted.n_features_in_ == X.shape[1] and len(fitted.genes_) == 30
    assert fitted.feature_names_in_[0] == "g0"
    assert abs(fitted.a_ - 1.577) < 2e-3 and abs(fitted.b_ - 0.895) < 2e-3
    assert set(fitted.history_) == {"umap", "robust"} and len(fitted.history_["robust"]) > 0
    assert np.all(np.isfinite(fitted.embedding_))
    # output layer is linear (no ReLU clipping at 0)
    assert isinstance(fitted.encoder_[-1], torch.nn.Linear)


def test_find_ab_params_matches_umap_learn_values():
    a, b = find_ab_params(1.0, 0.1)
    assert a == pytest.approx(1.5769, abs=1e-3) and b == pytest.approx(0.8951, abs=1e-3)
    a, b = find_ab_params(1.0, 0.5)
    assert a == pytest.approx(0.5830, abs=1e-3) and b == pytest.approx(1.3342, abs=1e-3)


def test_transform_of_training_data_matches_embedding(fitted, data):
    X, labels = data
    Z = fitted.transform(_adata(X, labels))
    np.testing.assert_allclose(Z, fitted.embedding_, rtol=1e-4, atol=1e-4)
    # chunking does not change the result
    np.testing.assert_allclose(fitted.transform(_adata(X, labels), chunk_size=7), Z, rtol=1e-4, atol=1e-4)


def test_genes_aligned_by_name(fitted, data):
    X, labels = data
    a = _adata(X, labels)
    perm = np.random.default_rng(1).permutation(X.shape[1])
    shuffled = a[:, perm].copy()
    np.testing.assert_allclose(fitted.transform(shuffled), fitted.transform(a), rtol=1e-4, atol=1e-4)


def test_mismatched_genes_error(fitted, data):
    X, labels = data
    a = _adata(X, labels)
    a.var_names = [f"other{j}" for j in range(X.shape[1])]
    with pytest.raises(ValueError, match=r"lacks 30 of the 30 genes.*missing_genes='zero'"):
        fitted.transform(a)
    Z = fitted.transform(a, missing_genes="zero")  # documented fill policy
    assert Z.shape == (X.shape[0], 2) and np.all(np.isfinite(Z))


def test_save_load_round_trip_and_no_pickle(fitted, data, tmp_path):
    X, labels = data
    path = fitted.save(tmp_path / "model.magmap.zip")
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["manifest.json", "weights.safetensors"]
        manifest = json.loads(zf.read("manifest.json"))
        blob = zf.read("weights.safetensors")
    for required in ("format", "format_version", "versions", "params", "random_state", "feature_names_in",
                     "preprocess", "encoder"):
        assert required in manifest
    assert manifest["versions"]["torch"] == torch.__version__.split("+")[0] or "torch" in manifest["versions"]
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])  # safetensors: JSON header + raw numbers
    assert "encoder.0.weight" in header and "preprocess.mean" in header
    raw = path.read_bytes()
    assert b"\x80\x04" not in raw[:2] and b"pickle" not in raw and b".pkl" not in raw
    loaded = RobustUMAP.load(path)
    np.testing.assert_array_equal(loaded.transform(_adata(X, labels)), fitted.transform(_adata(X, labels)))
    np.testing.assert_array_equal(loaded.embedding_, fitted.embedding_)
    assert loaded.genes_ == fitted.genes_ and loaded.a_ == fitted.a_


def test_bytes_round_trip(fitted, data):
    X, labels = data
    blob = fitted.to_bytes()
    assert isinstance(blob, bytes) and blob == fitted.to_bytes()  # deterministic bytes
    again = RobustUMAP.from_bytes(bytearray(blob))
    np.testing.assert_array_equal(again.transform(X), fitted.transform(X))
    again2 = RobustUMAP.from_bytes(np.frombuffer(blob, dtype=np.uint8))
    np.testing.assert_array_equal(again2.embedding_, fitted.embedding_)
    with pytest.raises(ValueError, match="not a magmap RobustUMAP model"):
        RobustUMAP.from_bytes(b"garbage")


def test_reproducible_with_seed(plain, data):
    X, labels = data
    again = RobustUMAP(random_state=0, n_top_genes=30, robust=False, **FAST).fit(_adata(X, labels))
    np.testing.assert_array_equal(again.embedding_, plain.embedding_)
    other = RobustUMAP(random_state=1, n_top_genes=30, robust=False, **FAST).fit(_adata(X, labels))
    assert not np.allclose(other.embedding_, plain.embedding_)


def test_robust_false_is_the_phase1_map_of_a_robust_fit(plain, data):
    # documented: robust=False with the same seed gives the map the robust phase starts from
    X, labels = data
    robust = RobustUMAP(random_state=0, n_top_genes=30, robust_epochs=5, **FAST).fit(_adata(X, labels))
    np.testing.assert_array_equal(robust.embedding_phase1_, plain.embedding_)
    assert not np.array_equal(robust.embedding_, plain.embedding_)


def test_matrix_input_positional(data):
    X, _ = data
    m = RobustUMAP(random_state=0, n_top_genes=None, robust=False, **FAST).fit(sp.csr_matrix(X))
    np.testing.assert_allclose(m.transform(X), m.embedding_, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="has 39 columns but the model was fitted on 40"):
        m.transform(X[:, :-1])


@pytest.mark.parametrize("bad, message", [
    ("nan", r"`X` contains 1 NaN"),
    ("negative", r"`X` contains negative values"),
    ("empty", r"`X` has 1 all-zero cell"),
    ("few", r"`X` has 8 cells but `n_neighbors=10` needs at least 11"),
])
def test_bad_input_messages(data, bad, message):
    X, _ = data
    X = X.copy()
    if bad == "nan":
        X[3, 2] = np.nan
    elif bad == "negative":
        X[3, 2] = -1
    elif bad == "empty":
        X[5] = 0
    else:
        X = X[:8]
    with pytest.raises(ValueError, match=message):
        RobustUMAP(random_state=0, **FAST).fit(X)


def test_bad_input_at_transform(fitted, data):
    X, labels = data
    a = _adata(X, labels)
    a.X = a.X.toarray()
    a.X[0, list(a.var_names).index(fitted.genes_[0])] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fitted.transform(a)
    with pytest.raises(NotFittedError, match="not fitted"):
        RobustUMAP().transform(X)
    with pytest.raises(NotFittedError, match="not fitted"):
        RobustUMAP().certify(X)
    with pytest.raises(NotFittedError, match="not fitted"):
        RobustUMAP().gene_impact(X)


def test_bad_parameters():
    with pytest.raises(ValueError, match="`loss` must be one of"):
        RobustUMAP(loss="mse").fit(np.ones((20, 5)))
    with pytest.raises(ValueError, match="`bound_method` must be one of"):
        RobustUMAP(bound_method="lp").fit(np.ones((20, 5)))


def test_user_encoder_accepted_and_checked(data):
    X, _ = data
    net = torch.nn.Sequential(torch.nn.Linear(40, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    m = RobustUMAP(random_state=0, encoder=net, n_top_genes=None, robust=False, **FAST).fit(X)
    assert [l.out_features for l in m.encoder_ if isinstance(l, torch.nn.Linear)] == [16, 2]
    assert m.encoder_[0] is not net[0]  # copied, user module untouched
    bad = torch.nn.Sequential(torch.nn.Linear(40, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    with pytest.raises(ValueError, match="only nn.Linear and nn.ReLU"):
        RobustUMAP(encoder=bad, n_top_genes=None, **FAST).fit(X)
    relu_out = torch.nn.Sequential(torch.nn.Linear(40, 2), torch.nn.ReLU())
    with pytest.raises(ValueError, match="end with nn.Linear"):
        RobustUMAP(encoder=relu_out, n_top_genes=None, **FAST).fit(X)


def test_loss_finite_at_coincident_points():
    z = torch.zeros(6, 2, requires_grad=True)
    loss = umap_loss(z, z.clone(), torch.full((6,), 0.5), a=1.577, b=0.895, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and torch.all(torch.isfinite(z.grad))
    lq, l1q = log_q_terms(torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 0.0]]), 1.577, 0.895)
    q = 1 / (1 + 1.577)
    assert float(lq) == pytest.approx(np.log(q), rel=1e-5) and float(l1q) == pytest.approx(np.log(1 - q), rel=1e-5)


def test_gradient_flows_through_bound_loss(fitted):
    net = fitted.encoder_
    x = torch.randn(8, net[0].in_features)
    for method in ("crown", "crown-ibp", "ibp"):
        net.zero_grad()
        lo, up = output_bounds(net, x, 0.2, method=method)
        bound_area_loss(lo, up).backward()
        grads = [p.grad for p in net.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(float(g.abs().sum()) for g in grads) > 0
    net.zero_grad()


def test_certify_sound_and_exact_at_zero(fitted, data):
    X, _ = data
    cert0 = fitted.certify(X, epsilon=0.0)
    np.testing.assert_allclose(cert0.lower, fitted.embedding_, atol=1e-4)
    np.testing.assert_allclose(cert0.upper, fitted.embedding_, atol=1e-4)
    cert = fitted.certify(X)
    assert cert.epsilon == 0.02 and cert.lower.shape == (X.shape[0], 2)
    assert np.all(cert.lower <= fitted.embedding_ + 1e-5) and np.all(fitted.embedding_ <= cert.upper + 1e-5)
    Xz = torch.from_numpy(fitted.preprocess(X))
    with torch.no_grad():
        for _ in range(5):
            z = fitted.encoder_(Xz + cert.epsilon * (2 * torch.rand_like(Xz) - 1)).numpy()
            assert np.all(cert.lower <= z + 1e-4) and np.all(z <= cert.upper + 1e-4)
    s = cert.summary()
    assert s["mean_relative_area"] > 0 and set(s) >= {"mean_relative_area", "median_relative_area", "epsilon"}


def test_robust_phase_raises_certified_radius(fitted, data):
    X, _ = data
    phase1 = copy.copy(fitted)
    phase1.encoder_, phase1.embedding_ = fitted.encoder_phase1_, fitted.embedding_phase1_
    r0 = np.median(phase1.certified_radius(X))
    r1 = np.median(fitted.certified_radius(X))
    # trained at 3x the phase-1 median radius for 40 steps; measured x1.26-1.40 over seeds 0-3 and two BLAS kernels
    assert fitted.robust_epsilon_ == pytest.approx(3.3 * fitted.phase1_radius_)
    assert r1 > 1.15 * r0
    rob = fitted.history_["robust"]
    assert len({round(h["loss"], 6) for h in rob}) > len(rob) // 2  # the reported loss moves
    assert rob[0]["epsilon"] < rob[-1]["epsilon"] == pytest.approx(fitted.robust_epsilon_)


def test_robust_progress_bar_shows_current_loss(data, monkeypatch):
    import magmap.umap.training as training

    shown: list[str] = []

    class Bar(list):
        def set_postfix(self, **kw):
            shown.append(kw["loss"])

    monkeypatch.setattr(training, "progress", lambda it, **kw: Bar(it))
    X, _ = data
    m = RobustUMAP(random_state=0, n_top_genes=30, robust_epochs=6, robust_cells=16,
                   **{**FAST, "n_epochs": 5, "verbose": True}).fit(X)
    assert len(shown) == 5 + 6  # one update per phase-1 epoch and per robust step
    assert len(set(shown[5:])) > 1
    assert shown[-1] == f"{m.history_['robust'][-1]['loss']:.4f}"


def test_gene_impact(fitted, data):
    X, _ = data
    imp = fitted.gene_impact(X)
    assert list(imp.index) == fitted.genes_ and np.all(imp.to_numpy() >= 0)
    # oracle: finite differences on one gene, one cell
    Xz = torch.from_numpy(fitted.preprocess(X[:1])).double()
    net = fitted.encoder_.double()
    g = 3
    h = 1e-6
    xp, xm = Xz.clone(), Xz.clone()
    xp[0, g] += h
    xm[0, g] -= h
    with torch.no_grad():
        fd = ((net(xp) - net(xm)) / (2 * h)).abs().sum().item()
    fitted.encoder_.float()
    assert fitted.gene_impact(X[:1]).iloc[g] == pytest.approx(fd, rel=1e-3, abs=1e-6)
    l2 = fitted.gene_impact(X, norm="l2")
    assert np.all(l2.to_numpy() <= imp.to_numpy() + 1e-9)


def test_top_level_export():
    assert magmap.RobustUMAP is RobustUMAP


def test_dask_input_is_projected_lazily(fitted, data):
    da = pytest.importorskip("dask.array")
    X, _ = data
    lazy = da.from_array(X, chunks=(17, X.shape[1]))
    np.testing.assert_allclose(fitted.transform(lazy, chunk_size=25), fitted.transform(X), rtol=1e-4, atol=1e-4)


def test_duplicate_cells_train_finite(data):
    X, _ = data
    Xd = np.vstack([X[:40], X[:40]])  # every cell twice: zero distances in the graph and in negatives
    m = RobustUMAP(random_state=0, n_top_genes=None, robust=False, **FAST).fit(Xd)
    assert np.all(np.isfinite(m.embedding_))


def test_loss_equations_against_closed_form():
    a, b = 1.577, 0.895
    zi, zj = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.6, 0.8]])  # distance 1
    q = 1.0 / (1.0 + a)
    p = torch.tensor([0.3])
    prob = umap_loss(zi, zj, p, a=a, b=b, loss="probability", negative_sample_rate=0)
    assert float(prob) == pytest.approx(-(0.3 * np.log(q) + 0.7 * np.log(1 - q)), rel=1e-5)  # Eq. 3
    graph = umap_loss(zi, zj, p, a=a, b=b, loss="graph", negative_sample_rate=0)
    assert float(graph) == pytest.approx(-np.log(q), rel=1e-5)  # Eq. 4
    # negatives: a single edge's permuted tail is itself, weighted by eta
    both = umap_loss(zi, zj, p, a=a, b=b, loss="graph", negative_sample_rate=2, repulsion_strength=0.5,
                     generator=torch.Generator().manual_seed(0))
    assert float(both) == pytest.approx(-np.log(q) - 0.5 * 2 * np.log(1 - q), rel=1e-5)


def test_probability_loss_trains(data):
    X, _ = data
    m = RobustUMAP(random_state=0, loss="probability", n_top_genes=None, robust=False, **FAST).fit(X)
    assert np.all(np.isfinite(m.embedding_)) and m.history_["umap"][-1]["loss"] < m.history_["umap"][0]["loss"]


def test_scikit_learn_contract(data):
    from sklearn.base import clone

    X, _ = data
    m = RobustUMAP(n_neighbors=7, random_state=3, **{k: v for k, v in FAST.items() if k != "n_neighbors"})
    c = clone(m)
    assert c.get_params() == m.get_params() and c is not m
    c.set_params(n_neighbors=9, robust=False)
    assert (c.n_neighbors, c.robust, m.n_neighbors) == (9, False, 7)
    with pytest.raises(ValueError, match="Invalid parameter"):
        c.set_params(n_neighbours=9)
    fitted = clone(c).fit(X)
    assert not hasattr(c, "encoder_")  # clone and fit leave the template unfitted
    np.testing.assert_array_equal(fitted.fit_transform(X), clone(c).fit(X).embedding_)


def test_fuzzy_graph_matches_umap_learn(data):
    from umap.umap_ import fuzzy_simplicial_set

    X, _ = data
    rng = np.random.default_rng(0)
    for Y in (np.log1p(X), np.vstack([X[:30], X[:30], X[30:60]])):  # the second has duplicated cells
        Y = Y + 1e-3 * rng.normal(size=Y.shape) * (Y is not X)
        ind, dist = nearest_neighbors(Y.astype(np.float32), 12)
        ours = fuzzy_graph(ind, dist)
        ref = fuzzy_simplicial_set(sp.coo_matrix((Y.shape[0], 1)), 12, np.random.RandomState(0), "euclidean",
                                   knn_indices=ind, knn_dists=dist)[0].tocsr()
        assert ours.nnz == ref.nnz and abs(ours - ref).max() < 1e-6
        assert abs(ours - ours.T).max() == 0


def test_edge_schedule_counts():
    w = np.array([1.0, 0.5, 0.3, 0.01, 0.999])
    counts = np.zeros(w.size, dtype=int)
    for e in range(1, 201):
        counts[due_edges(w, e)] += 1
    np.testing.assert_array_equal(counts, np.floor(200 * w / w.max()))  # umap-learn: floor(n_epochs * w/w_max)


def test_umap_forces_are_the_cross_entropy_gradient():
    a, b = 1.577, 0.895
    z = torch.tensor([[0.0, 0.0], [0.3, 0.4], [2.0, -1.0], [-0.5, 0.2]], dtype=torch.float64)
    heads, tails = torch.tensor([0, 1]), torch.tensor([1, 3])
    grad, loss = umap_forces(z, heads, tails, torch.tensor([2, 2]), a=a, b=b)  # one negative per edge: cell 2
    zr = z.clone().requires_grad_()
    d2 = lambda i, j: ((zr[i] - zr[j]) ** 2).sum()  # noqa: E731
    attract = sum(torch.log1p(a * d2(i, j) ** b) for i, j in ((0, 1), (1, 3)))
    attract.backward()
    # repulsion as umap-learn applies it: 2b / ((0.001 + d²)(1 + a d^{2b})) (z_i − z_k), head only
    rep = torch.zeros_like(z)
    for i in (0, 1):
        dd = float(d2(i, 2).detach())
        rep[i] -= 2 * b / ((0.001 + dd) * (1 + a * dd ** b)) * (z[i] - z[2])
    np.testing.assert_allclose(grad.numpy(), (zr.grad + rep).numpy() / 2, rtol=1e-10, atol=1e-12)
    q = lambda i, j: 1 / (1 + a * float(d2(i, j).detach()) ** b)  # noqa: E731
    expected = -(np.log(q(0, 1)) + np.log(q(1, 3)) + np.log(1 - q(0, 2)) + np.log(1 - q(1, 2))) / 2
    assert float(loss) == pytest.approx(expected, rel=1e-10)
    # anchored (transform-like): only heads move, tails/negatives read from `other`
    g2, _ = umap_forces(z, heads, tails, torch.tensor([2, 2]), a=a, b=b, other=z.clone())
    assert torch.all(g2[[2, 3]] == 0) and torch.allclose(g2[[0]], grad[[0]])
    # coincident points: finite, and each coordinate's force is clipped at 4 (before the 1/n_edges mean)
    g3, l3 = umap_forces(torch.zeros(3, 2), torch.tensor([0]), torch.tensor([1]), torch.tensor([2]), a=a, b=b)
    assert torch.isfinite(g3).all() and torch.isfinite(l3)
    near = torch.tensor([[0.0, 0.0], [0.01, 0.0]])  # repulsion 2b/((0.001 + 1e-4)(1 + a·d^2b))·0.01 ≈ 16
    g4, _ = umap_forces(near, torch.tensor([0]), torch.tensor([0]), torch.tensor([1]), a=a, b=b)
    np.testing.assert_allclose(g4.numpy(), [[4.0, 0.0], [0.0, 0.0]])


def test_batch_norm_and_projection_fold_exactly():
    torch.manual_seed(0)
    comp = torch.linalg.qr(torch.randn(20, 6, dtype=torch.float64))[0].T.float()  # 6 orthonormal axes
    X = torch.randn(50, 20)
    net = with_batch_norm(make_encoder(6, 2, (8, 8)))
    for m in net:
        if isinstance(m, torch.nn.BatchNorm1d):
            torch.nn.init.uniform_(m.weight, 0.5, 2.0)
            torch.nn.init.uniform_(m.bias, -1.0, 1.0)
    Y = X @ comp.T / 3.0
    net.train()
    with torch.no_grad():
        expected = net(Y)  # batch statistics of the whole data
    plain = fold_input_projection(fold_batch_norm(net, Y), comp, 3.0)
    assert [type(m).__name__ for m in plain] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert plain[0].in_features == 20
    with torch.no_grad():
        np.testing.assert_allclose(plain(X).numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)


def test_default_preprocessing_and_paper_recipe(data):
    X, labels = data
    a = _adata(X, labels)
    m = RobustUMAP(random_state=0, n_top_genes=30, robust=False, n_pcs=10, **FAST).fit(a)
    assert m.preprocessor_.log1p and not m.preprocessor_.scale and np.all(m.std_ == 1)
    Xz = m.preprocess(a)
    np.testing.assert_allclose(Xz.mean(axis=0), 0, atol=1e-5)  # centred, not scaled
    assert m.components_.shape == (10, 30)
    np.testing.assert_allclose(m.components_ @ m.components_.T, np.eye(10), atol=1e-5)
    paper = RobustUMAP(random_state=0, n_top_genes=30, log1p=False, scale=True, n_pcs=None, robust=False,
                       **FAST).fit(a)
    assert paper.components_ is None and not paper.preprocessor_.log1p
    np.testing.assert_allclose(paper.preprocess(a).std(axis=0, ddof=1), 1, rtol=1e-4)
    np.testing.assert_allclose(paper.transform(a), paper.embedding_, rtol=1e-4, atol=1e-4)


def test_format1_model_file_still_loads():
    from pathlib import Path

    path = Path(__file__).parent / "data" / "robust_umap_format1.magmap"
    # written by magmap's format-1 code (z-scored inputs, no PCA) for these seeded counts
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    base = rng.gamma(2.0, 1.0, size=(3, 40)) * rng.choice([0.2, 5.0], size=(3, 40))
    X = rng.poisson(base[labels]).astype(np.float64)
    X[:, 0] += 1
    m = RobustUMAP.load(path)
    assert m.manifest_["format_version"] == 1 and m.scale and m.n_pcs is None and m.components_ is None
    assert m.preprocessor_.scale and not np.all(m.std_ == 1)
    np.testing.assert_allclose(m.transform(X), m.embedding_, rtol=1e-4, atol=1e-4)
    again = RobustUMAP.from_bytes(m.to_bytes())  # re-saved as the current format
    assert json.loads(zipfile.ZipFile(io.BytesIO(m.to_bytes())).read("manifest.json"))["format_version"] == 2
    np.testing.assert_array_equal(again.transform(X), m.transform(X))


def test_new_parameter_errors():
    with pytest.raises(ValueError, match="`robust_epsilon` must be a positive number"):
        RobustUMAP(robust_epsilon=-1.0).fit(np.ones((20, 5)))
    with pytest.raises(ValueError, match="`n_pcs`"):
        RobustUMAP(n_pcs=0).fit(np.ones((20, 5)))
    with pytest.raises(ValueError, match="`robust_bound_method` must be one of"):
        RobustUMAP(robust_bound_method="lp").fit(np.ones((20, 5)))


def test_hidden_interval_bounds_sound_and_contain_crown_ibp():
    from magmap.umap.training import hidden_interval_bounds

    torch.manual_seed(0)
    net = make_encoder(30, 2, (16, 16)).double()
    x = torch.randn(20, 30, dtype=torch.float64)
    lo, up = hidden_interval_bounds(net, x, 0.05)
    # oracle: generic CROWN-IBP of the network above the first layer, from the first layer's exact box
    # (an identity layer in front keeps the first ReLU's relaxation where it is)
    w1 = net[0].weight
    identity = torch.nn.Linear(w1.shape[0], w1.shape[0]).double()
    with torch.no_grad():
        identity.weight.copy_(torch.eye(w1.shape[0]))
        identity.bias.zero_()
    tail = torch.nn.Sequential(identity, *list(net)[1:])
    oracle = output_bounds(tail, net[0](x), 0.05 * w1.abs().sum(dim=1), method="crown-ibp")
    torch.testing.assert_close(lo, oracle[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(up, oracle[1], rtol=0, atol=1e-12)
    ref_lo, ref_up = output_bounds(net, x, 0.05, method="crown-ibp")
    # same relaxations; the first layer's interval replaces the last backward step: never tighter
    assert torch.all(lo <= ref_lo + 1e-10) and torch.all(up >= ref_up - 1e-10)
    with torch.no_grad():
        for _ in range(20):
            z = net(x + 0.05 * torch.sign(torch.randn_like(x)))  # corners of the L-inf ball
            assert torch.all(lo <= z + 1e-10) and torch.all(z <= up + 1e-10)
    lo0, up0 = hidden_interval_bounds(net, x, 0.0)
    np.testing.assert_allclose(lo0.detach().numpy(), net(x).detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(up0.detach().numpy(), net(x).detach().numpy(), atol=1e-10)
    # the training step passes the first layer's output it already has: same bounds, same gradients
    reused = hidden_interval_bounds(net, x, 0.05, first_output=net[0](x))
    torch.testing.assert_close(reused[0], lo, rtol=0, atol=1e-12)
    torch.testing.assert_close(reused[1], up, rtol=0, atol=1e-12)


def test_robust_phase_adaptive_length(data):
    """robust_epochs=None stops at the first check where the median sampled cell is certified at the training
    radius (checks after steps 60, 70, …), at most 300 steps; past the nominal 100 steps the hinge weight grows."""
    from magmap.umap import estimator as est

    X, _ = data
    real = est._median_box_within
    diag = np.linalg.norm(np.ptp(RobustUMAP(random_state=0, n_top_genes=30, robust=False, **FAST)
                                 .fit(X).embedding_, axis=0))
    sample = np.sort(np.random.default_rng(1).permutation(X.shape[0])[:64])

    def fit(**kw):
        calls = []

        def spy(net, x, epsilon, limit):
            calls.append(real(net, x, epsilon, limit))
            return calls[-1]

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(est, "_median_box_within", spy)
            m = RobustUMAP(random_state=0, n_top_genes=30, robust_weight=0.05, **FAST, **kw).fit(X)
        assert m.robust_epochs_ == len(m.history_["robust"])
        # the check is the certificate itself: the final network meets it exactly when the phase stopped early
        x = torch.from_numpy(m.preprocess(X)[sample])
        assert real(m.encoder_, x, m.robust_epsilon_, 0.05 * diag) == (m.robust_epochs_ < 300)
        return m, calls

    m, calls = fit(robust_epsilon=1e-4)  # certified at once: stops at the first check
    assert m.robust_epochs_ == 60 and calls == [True]
    m, calls = fit()  # this toy map never gets there: runs to the cap, asked after 60, 70, ..., 290 steps
    assert m.robust_epochs_ == 300 and calls == [False] * 24
    weights = [h["weight"] for h in m.history_["robust"]]
    assert weights[:100] == [0.05] * 100 and weights[-1] == pytest.approx(0.05 * 3)
    fixed = RobustUMAP(random_state=0, n_top_genes=30, robust_epochs=7, robust_weight=0.05, **FAST).fit(X)
    assert fixed.robust_epochs_ == len(fixed.history_["robust"]) == 7
