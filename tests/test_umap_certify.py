"""Certified radii and boxes (magmap.umap.certify): bisection brackets, soundness, oracles, model files."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

from magmap.umap import RobustUMAP
from magmap.umap.certify import (MAX_EPSILON, MIN_EPSILON, bisect_radius, box_diagonal, embedding_diagonal,
                                 reference_diagonal)
from magmap.crown import output_bounds
from magmap.umap.encoder import make_encoder

METHODS = ["crown", "crown-ibp", "ibp"]
FAST = dict(n_neighbors=10, n_epochs=15, batch_size=512, hidden_layers=(32, 32, 32), verbose=False,
            n_top_genes=30, robust_epochs=3)


def _mlp(widths, seed=0) -> nn.Sequential:
    """The estimator's encoder architecture (Glorot weights, zero biases), in float64."""
    torch.manual_seed(seed)
    return make_encoder(widths[0], widths[-1], widths[1:-1]).double()


def _diag(net, x, eps, method="crown"):
    lo, up = output_bounds(net, x, torch.as_tensor(eps, dtype=x.dtype).reshape(-1, 1), method=method)
    return box_diagonal(lo.detach().numpy(), up.detach().numpy())


@pytest.fixture(scope="module")
def net_x():
    net = _mlp([12, 24, 24, 2], seed=1)
    torch.manual_seed(2)
    return net, torch.randn(40, 12, dtype=torch.float64)


# ------------------------------------------------------------------------------------------------
# the bisection on a network
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_radius_meets_limit_and_upper_end_exceeds_it(net_x, method):
    net, x = net_x
    limit, rtol = 0.3, 0.01
    res = bisect_radius(net, x, limit, method=method, rtol=rtol)
    assert np.all(res.radius > 0) and np.all(np.isfinite(res.upper))
    assert np.all(_diag(net, x, res.radius, method) <= limit)
    assert np.all(_diag(net, x, res.upper, method) > limit)
    assert np.all(res.upper <= res.radius * (1 + rtol)) and np.all(res.radius < res.upper)
    assert res.n_evaluations.max() <= 20


def test_linear_network_radius_matches_closed_form():
    # f(x) = W x + b: every bound is exact, the box side j is 2ε‖W_j‖₁, so r* = limit / (2‖(‖W_j‖₁)_j‖₂)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(9, 3)).double()
    x = torch.randn(25, 9, dtype=torch.float64)
    limit, rtol = 0.7, 1e-3
    r_star = limit / (2 * np.linalg.norm(net[0].weight.detach().abs().sum(1).numpy()))
    res = bisect_radius(net, x, limit, rtol=rtol)
    assert np.all(res.radius <= r_star * (1 + 1e-12)) and np.all(res.upper > r_star * (1 - 1e-12))
    np.testing.assert_allclose(res.radius, r_star, rtol=rtol)


def test_points_within_the_radius_stay_in_its_box(net_x):
    net, x = net_x
    limit = 0.25
    r = torch.from_numpy(bisect_radius(net, x, limit).radius).reshape(-1, 1)
    lo, up = output_bounds(net, x, r)
    with torch.no_grad():
        for _ in range(10):
            y = net(x + r * (2 * torch.rand_like(x) - 1))
            assert torch.all(y >= lo - 1e-10) and torch.all(y <= up + 1e-10)
        corners = net(x + r * torch.sign(torch.randn(100, *x.shape, dtype=x.dtype)))
        assert torch.all(corners >= lo - 1e-10) and torch.all(corners <= up + 1e-10)
    # PGD: push each cell's embedding as far as possible from where it is; it moves at most `limit`
    z0 = net(x).detach()
    delta = r * (2 * torch.rand_like(x) - 1)
    for _ in range(60):
        delta.requires_grad_(True)
        (g,) = torch.autograd.grad((net(x + delta) - z0).pow(2).sum(), delta)
        delta = torch.maximum(torch.minimum(delta.detach() + r / 10 * g.sign(), r), -r)
    with torch.no_grad():
        moved = (net(x + delta) - z0).norm(dim=1)
        y = net(x + delta)
    assert torch.all(moved <= limit) and torch.all(y >= lo - 1e-10) and torch.all(y <= up + 1e-10)
    assert moved.max() > 0.2 * limit  # the attack is not idle: the radius is not vacuously small


def test_radius_is_monotone_in_the_limit(net_x):
    net, x = net_x
    rtol = 0.01
    radii = [bisect_radius(net, x, limit, rtol=rtol).radius for limit in (0.05, 0.1, 0.3, 1.0)]
    for small, large in zip(radii, radii[1:]):
        assert np.all(small <= large * (1 + rtol))
    assert np.median(radii[-1]) > 2 * np.median(radii[0])


def test_vectorised_equals_per_cell_bisection(net_x):
    net, x = net_x
    together = bisect_radius(net, x, 0.3)
    for i in range(0, x.shape[0], 7):
        alone = bisect_radius(net, x[i:i + 1], 0.3)
        np.testing.assert_allclose(alone.radius, together.radius[i:i + 1], rtol=1e-9)
        np.testing.assert_allclose(alone.upper, together.upper[i:i + 1], rtol=1e-9)
    # per-cell limits bisect independently too
    limits = np.linspace(0.1, 0.5, x.shape[0])
    mixed = bisect_radius(net, x, limits)
    for i in (0, 17, 39):
        np.testing.assert_allclose(bisect_radius(net, x[i:i + 1], limits[i]).radius, mixed.radius[i:i + 1],
                                   rtol=1e-9)


def test_reusing_intervals_gives_the_full_crown_radius(net_x):
    net, x = net_x
    fast = bisect_radius(net, x, 0.3)
    full = bisect_radius(net, x, 0.3, reuse_intervals=False)
    # where IBP or the reference interval is tighter than CROWN's the bound is tighter, the path may differ
    np.testing.assert_allclose(fast.radius, full.radius, rtol=0.01)
    assert np.all(_diag(net, x, fast.radius) <= 0.3)  # verified with full CROWN too


def test_radius_zero_and_search_ceiling():
    steep = _mlp([5, 8, 2], seed=0)
    with torch.no_grad():
        for p in steep.parameters():
            p.mul_(1e4)
    x = torch.randn(3, 5, dtype=torch.float64)
    res = bisect_radius(steep, x, 1e-6)
    assert np.all(res.radius == 0) and np.all(res.upper <= MIN_EPSILON * (1 + 1e-6))
    flat = _mlp([5, 8, 2], seed=0)
    with torch.no_grad():
        flat[2].weight.zero_()
    res = bisect_radius(flat, x, 0.1)
    assert np.all(res.radius == MAX_EPSILON) and np.all(np.isinf(res.upper))


def test_bisect_radius_errors(net_x):
    net, x = net_x
    with pytest.raises(ValueError, match="`limit` must be a positive finite number"):
        bisect_radius(net, x, 0.0)
    with pytest.raises(ValueError, match="`limit` must be a positive finite number"):
        bisect_radius(net, x, np.ones(3))
    with pytest.raises(ValueError, match=r"`rtol` .* must be in \[1e-5, 1\]"):
        bisect_radius(net, x, 0.1, rtol=0)
    with pytest.raises(ValueError, match="need 0 < `min_epsilon` < `max_epsilon`"):
        bisect_radius(net, x, 0.1, min_epsilon=1.0, max_epsilon=0.5)
    with pytest.raises(ValueError, match="`x` must have shape"):
        bisect_radius(net, x[0], 0.1)
    with pytest.raises(ValueError, match="`method` must be one of"):
        bisect_radius(net, x, 0.1, method="exact")
    with pytest.raises(ValueError, match="`probe` must be a finite ε > 0"):
        bisect_radius(net, x, 0.1, probe=0.0)


# ------------------------------------------------------------------------------------------------
# the model API: certify(), certified_radius(), model files
# ------------------------------------------------------------------------------------------------
def _counts(n_cells=120, n_genes=40, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n_cells // 3)
    base = rng.gamma(2.0, 1.0, size=(3, n_genes))
    base[:, : n_genes // 2] *= rng.choice([0.2, 5.0], size=(3, n_genes // 2))
    X = rng.poisson(base[labels] * rng.uniform(0.8, 1.2, size=(n_cells, 1))).astype(np.float64)
    X[:, 0] += 1
    return X


@pytest.fixture(scope="module")
def model_X():
    X = _counts()
    return RobustUMAP(random_state=0, **FAST).fit(X), X


def test_model_radius_definition(model_X):
    model, X = model_X
    rad = model.certified_radius(X)
    diag_ref = embedding_diagonal(model.embedding_)
    assert reference_diagonal(model) == pytest.approx(diag_ref)
    assert diag_ref == pytest.approx(np.linalg.norm(np.ptp(model.embedding_, axis=0)))
    Xz = torch.from_numpy(model.preprocess(X))
    assert np.all(_diag(model.encoder_, Xz, rad) <= 0.05 * diag_ref)
    assert np.all(rad > 0)
    # a looser limit never gives a smaller radius
    assert np.all(rad <= model.certified_radius(X, fraction=0.1) * 1.01)


def test_certify_boxes_and_radius_agree(model_X):
    model, X = model_X
    eps = float(np.median(model.certified_radius(X)))
    cert = model.certify(X, epsilon=eps)
    assert cert.epsilon == eps and cert.radius.shape == (X.shape[0],)
    # a search that starts at ε instead of the first-order radius ends within the same precision
    np.testing.assert_allclose(cert.radius, model.certified_radius(X), rtol=cert.rtol * 1.001)
    np.testing.assert_allclose(cert.diagonal, np.linalg.norm(cert.upper - cert.lower, axis=1), rtol=1e-6)
    np.testing.assert_allclose(cert.relative_diagonal, cert.diagonal / cert.diagonal_ref)
    # ε is a point of the radius search: a box within the limit at ε means radius ≥ ε, and vice versa
    within = cert.diagonal <= cert.fraction * cert.diagonal_ref
    assert 0 < within.sum() < X.shape[0]
    assert np.all(cert.radius[within] >= np.float32(eps)) and np.all(cert.radius[~within] < eps)
    # the boxes are CROWN's (computed with fewer backward passes)
    lo, up = output_bounds(model.encoder_, torch.from_numpy(model.preprocess(X)), eps)
    np.testing.assert_allclose(cert.lower, lo.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(cert.upper, up.detach().numpy(), rtol=1e-4, atol=1e-4)
    s = cert.summary()
    assert s["radius_median"] == pytest.approx(np.median(cert.radius))
    assert s["radius_q90"] == pytest.approx(np.quantile(cert.radius, 0.9))
    assert s["median_relative_diagonal"] == pytest.approx(np.median(cert.relative_diagonal))
    assert s["n_radius_zero"] == 0 and s["fraction"] == 0.05
    no_radius = model.certify(X, epsilon=eps, radius=False)
    assert no_radius.radius is None and "radius_median" not in no_radius.summary()
    np.testing.assert_array_equal(no_radius.lower, cert.lower)


def test_certify_errors(model_X):
    model, X = model_X
    with pytest.raises(ValueError, match="`fraction` .* must be a positive number"):
        model.certified_radius(X, fraction=0)
    with pytest.raises(ValueError, match="`fraction`"):
        model.certify(X, fraction=float("nan"))
    with pytest.raises(ValueError, match="`epsilon` must be a finite number ≥ 0"):
        model.certify(X, epsilon=-1.0)
    with pytest.raises(ValueError, match="`rtol`"):
        model.certified_radius(X, rtol=2.0)
    with pytest.raises(ValueError, match="`method` must be one of"):
        model.certified_radius(X, method="exact")


def _rewrite_manifest(blob: bytes, edit) -> bytes:
    from magmap.umap.io import pack_model, unpack_model

    manifest, arrays = unpack_model(blob)
    edit(manifest, arrays)
    return pack_model(manifest, arrays)


def test_reference_diagonal_in_model_file(model_X):
    model, X = model_X
    blob = model.to_bytes()
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["diagonal_ref"] == pytest.approx(embedding_diagonal(model.embedding_))
    expected = model.certified_radius(X[:20])
    np.testing.assert_array_equal(RobustUMAP.from_bytes(blob).certified_radius(X[:20]), expected)
    # files written before the field existed: computed from the stored embedding
    old = RobustUMAP.from_bytes(_rewrite_manifest(blob, lambda m, a: m.pop("diagonal_ref")))
    np.testing.assert_array_equal(old.certified_radius(X[:20]), expected)
    # no embedding stored: the manifest's value is used ...
    no_emb = RobustUMAP.from_bytes(_rewrite_manifest(blob, lambda m, a: a.pop("embedding")))
    assert no_emb.embedding_ is None
    np.testing.assert_array_equal(no_emb.certified_radius(X[:20]), expected)
    # ... and with neither, a clear error (the model still projects)
    neither = RobustUMAP.from_bytes(_rewrite_manifest(blob, lambda m, a: (m.pop("diagonal_ref"), a.pop("embedding"))))
    assert neither.transform(X[:3]).shape == (3, 2)
    with pytest.raises(ValueError, match="neither its training embedding nor its reference diagonal"):
        neither.certified_radius(X[:3])
    assert neither.to_bytes()  # and it can still be saved


# ------------------------------------------------------------------------------------------------
# per-cell gene impact
# ------------------------------------------------------------------------------------------------
def _autograd_oracle(model, Xz, norm):
    """Per-cell impacts from each cell's own Jacobian (torch.autograd.functional.jacobian, one cell at a time)."""
    net = model.encoder_
    rows = []
    for c in range(Xz.shape[0]):
        J = torch.autograd.functional.jacobian(lambda v: net(v.unsqueeze(0))[0], Xz[c]).double()  # (n_out, n_in)
        rows.append(J.abs().sum(0) if norm == "l1" else J.pow(2).sum(0).sqrt())
    return torch.stack(rows).numpy()


@pytest.mark.parametrize("norm", ["l2", "l1"])
def test_cell_gene_impact_matches_autograd_oracle(model_X, norm):
    import anndata as ad
    import pandas as pd

    model, X = model_X
    adata = ad.AnnData(X[:12], obs=pd.DataFrame(index=[f"cell{i}" for i in range(12)]))
    adata.var_names = [str(j) for j in range(X.shape[1])]
    top = model.cell_gene_impact(adata, n_top=5, norm=norm)
    assert list(top.columns) == ["cell", "rank", "gene", "impact"] and len(top) == 12 * 5
    assert list(top["cell"][:5]) == ["cell0"] * 5 and list(top["rank"][:5]) == [1, 2, 3, 4, 5]
    oracle = _autograd_oracle(model, torch.from_numpy(model.preprocess(X[:12])), norm)
    genes = np.asarray(model.genes_)
    for c in range(12):
        rows = top[top["cell"] == f"cell{c}"]
        expect = np.sort(oracle[c])[::-1][:5]
        np.testing.assert_allclose(rows["impact"].to_numpy(), expect, rtol=1e-5)
        got_pos = [model.genes_.index(g) for g in rows["gene"]]
        np.testing.assert_allclose(oracle[c, got_pos], expect, rtol=1e-5)
        assert set(rows["gene"]) <= set(genes)


def test_cell_gene_impact_finite_differences_and_gene_impact(model_X):
    model, X = model_X
    full = model.cell_gene_impact(X[:6], n_top=1000)  # capped at the number of model genes
    n_genes = len(model.genes_)
    assert len(full) == 6 * n_genes and full["cell"].tolist()[:1] == [0]
    # central finite differences of the float64 network on one cell
    net = nn.Sequential(*[type(m)(m.in_features, m.out_features) if isinstance(m, nn.Linear) else m
                          for m in model.encoder_]).double()
    net.load_state_dict({k: v.double() for k, v in model.encoder_.state_dict().items()})
    x0 = torch.from_numpy(model.preprocess(X[2:3])).double()
    h = 1e-6
    fd = np.empty(n_genes)
    with torch.no_grad():
        for g in range(n_genes):
            e = torch.zeros_like(x0)
            e[0, g] = h
            fd[g] = ((net(x0 + e) - net(x0 - e)) / (2 * h)).norm().item()
    cell2 = full[full["cell"] == 2].set_index("gene")["impact"]
    np.testing.assert_allclose(cell2.loc[model.genes_].to_numpy(), fd, rtol=1e-3, atol=1e-7)
    # summing the per-cell impacts over cells gives the per-gene impact of the same norm
    per_gene = full.groupby("gene")["impact"].sum()
    np.testing.assert_allclose(per_gene.loc[model.genes_].to_numpy(),
                               model.gene_impact(X[:6], norm="l2").to_numpy(), rtol=1e-6)


def test_cell_gene_impact_errors(model_X):
    model, X = model_X
    with pytest.raises(ValueError, match="`n_top` must be"):
        model.cell_gene_impact(X, n_top=0)
    with pytest.raises(ValueError, match="`norm` must be one of"):
        model.cell_gene_impact(X, norm="max")
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError, match="not fitted"):
        RobustUMAP().cell_gene_impact(X)


def test_certify_no_cells(model_X):
    model, X = model_X
    cert = model.certify(X[:0])
    assert cert.lower.shape == (0, 2) and cert.radius.shape == (0,)
    assert cert.summary() == {"n_cells": 0, "epsilon": model.epsilon}
