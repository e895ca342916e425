"""Tests for magmap.crown: fixture parity with auto_LiRPA, soundness, exactness, gradients, errors."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from magmap.crown import bound_area_loss, crown_bounds, output_bounds

METHODS = ["ibp", "crown", "crown-ibp"]
FIXTURE_KEYS = {"ibp": "ibp", "crown": "crown", "crown-ibp": "crown_ibp"}


def _crown_dir() -> Path:
    env = os.environ.get("MAGMAP_SHARED")
    repo = Path(__file__).resolve().parents[1]
    for cand in ([Path(env)] if env else []) + [repo.parent / "shared", repo.parent.parent / "shared"]:
        if (cand / "crown").is_dir():
            return cand / "crown"
    return repo.parent / "shared" / "crown"


CROWN_DIR = _crown_dir()
CASES = ["mlp_20_16_16_2", "mlp_300_100_100_100_2"]


def _fixture(case: str):
    path = CROWN_DIR / f"{case}.npz"
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CROWN fixture missing on CI: {path}")
        pytest.skip(f"CROWN fixture not available: {path}")
    return np.load(path)


def _net_from_fixture(data) -> nn.Sequential:
    n = len([k for k in data.files if k.startswith("W")])
    layers: list[nn.Module] = []
    for i in range(n):
        w = torch.tensor(data[f"W{i}"])
        lin = nn.Linear(w.shape[1], w.shape[0]).double()
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(torch.tensor(data[f"b{i}"]))
        layers.append(lin)
        if i < n - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _mlp(widths, seed=0, dtype=torch.float64) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).to(dtype)


# ------------------------------------------------------------------------------------------------
# Parity with the auto_LiRPA 0.7.1 reference bounds
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("eps", [0.0, 0.05, 0.2])
def test_fixture_parity(case, method, eps):
    data = _fixture(case)
    widths = json.loads((CROWN_DIR / "cases.json").read_text())[case]["widths"]
    net = _net_from_fixture(data)
    assert [m.in_features for m in net if isinstance(m, nn.Linear)] == widths[:-1]
    x = torch.tensor(data["X"])
    with torch.no_grad():
        lower, upper = output_bounds(net, x, eps, method)
    assert lower.dtype == torch.float64 and lower.shape == (64, widths[-1])
    key = FIXTURE_KEYS[method]
    tol = 1e-12 if method == "ibp" else 1e-6  # IBP is the same arithmetic as auto_LiRPA
    np.testing.assert_allclose(lower.numpy(), data[f"lb_{key}_eps{eps}"], rtol=0, atol=tol)
    np.testing.assert_allclose(upper.numpy(), data[f"ub_{key}_eps{eps}"], rtol=0, atol=tol)
    fwd = data["forward"]
    assert np.all(lower.numpy() <= fwd + 1e-12) and np.all(fwd <= upper.numpy() + 1e-12)


def test_crown_tighter_than_ibp_on_fixture():
    data = _fixture("mlp_300_100_100_100_2")
    net = _net_from_fixture(data)
    x = torch.tensor(data["X"])
    with torch.no_grad():
        widths = {m: (lambda b: (b[1] - b[0]).mean().item())(output_bounds(net, x, 0.2, m)) for m in METHODS}
    assert widths["crown"] < widths["crown-ibp"] <= widths["ibp"] + 1e-12


# ------------------------------------------------------------------------------------------------
# ε = 0, linear networks, soundness
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_eps_zero_is_forward(method):
    net = _mlp([12, 16, 16, 3], seed=1)
    x = torch.randn(9, 12, dtype=torch.float64)
    lower, upper = output_bounds(net, x, 0.0, method)
    assert torch.equal(lower, upper)
    torch.testing.assert_close(lower, net(x), rtol=0, atol=1e-12)
    # a zero per-sample radius in a mixed batch still gives the forward output for that row
    eps = torch.tensor([0.0] + [0.1] * 8, dtype=torch.float64)
    lo2, up2 = output_bounds(net, x, eps, method)
    torch.testing.assert_close(lo2[0], net(x)[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(up2[0], net(x)[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_linear_network_exact_range(method):
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(7, 5), nn.Linear(5, 2)).double()
    x = torch.randn(4, 7, dtype=torch.float64)
    eps = 0.3
    lower, upper = output_bounds(net, x, eps, method)
    w = net[1].weight @ net[0].weight
    c = net(x)
    r = eps * w.abs().sum(1)
    torch.testing.assert_close(lower, c - r, rtol=0, atol=1e-12)
    torch.testing.assert_close(upper, c + r, rtol=0, atol=1e-12)


def _pgd(net, x, eps, out_idx, sign, steps=40, lr=None):
    """Projected sign-gradient ascent of sign * net(x')[:, out_idx] inside the L∞ ball."""
    lr = lr if lr is not None else eps / 8
    delta = (torch.rand_like(x) * 2 - 1) * eps
    for _ in range(steps):
        delta.requires_grad_(True)
        obj = sign * net(x + delta)[:, out_idx].sum()
        (g,) = torch.autograd.grad(obj, delta)
        delta = (delta.detach() + lr * g.sign()).clamp(-eps, eps)
    return (x + delta).detach()


@pytest.mark.parametrize("method", METHODS)
def test_soundness_random_and_pgd(method):
    net = _mlp([20, 32, 32, 32, 2], seed=4)
    torch.manual_seed(5)
    x = torch.randn(16, 20, dtype=torch.float64)
    eps = 0.2
    lower, upper = output_bounds(net, x, eps, method)
    assert torch.all(lower <= upper)
    with torch.no_grad():
        for _ in range(20):
            y = net(x + (torch.rand_like(x) * 2 - 1) * eps)
            assert torch.all(y >= lower - 1e-10) and torch.all(y <= upper + 1e-10)
        corners = net(x + eps * torch.sign(torch.randn(200, *x.shape, dtype=x.dtype)))
        assert torch.all(corners >= lower - 1e-10) and torch.all(corners <= upper + 1e-10)
    for j in range(2):
        for sign in (1.0, -1.0):
            xa = _pgd(net, x, eps, j, sign)
            assert (xa - x).abs().max() <= eps + 1e-12
            with torch.no_grad():
                y = net(xa)[:, j]
            assert torch.all(y >= lower[:, j] - 1e-10) and torch.all(y <= upper[:, j] + 1e-10)
    # PGD reaches a meaningful part of the box (the bound is not vacuous)
    if method == "crown":
        xa_hi, xa_lo = _pgd(net, x, eps, 0, 1.0), _pgd(net, x, eps, 0, -1.0)
        with torch.no_grad():
            hi, lo = net(xa_hi)[:, 0], net(xa_lo)[:, 0]
        assert torch.all((hi - lo) > 0.05 * (upper[:, 0] - lower[:, 0]))


def test_soundness_per_feature_eps_and_clipped_box():
    net = _mlp([10, 24, 24, 2], seed=6)
    torch.manual_seed(7)
    x = torch.randn(8, 10, dtype=torch.float64)
    eps = torch.rand(8, 10, dtype=torch.float64) * 0.4
    xl, xu = x - 0.15, x + 0.5  # clip the ball asymmetrically
    lower, upper = output_bounds(net, x, eps, "crown", x_lower=xl, x_upper=xu)
    lo_box, hi_box = torch.maximum(x - eps, xl), torch.minimum(x + eps, xu)
    with torch.no_grad():
        pts = lo_box + (hi_box - lo_box) * torch.rand(500, *x.shape, dtype=x.dtype)
        y = net(pts)
    assert torch.all(y >= lower - 1e-10) and torch.all(y <= upper + 1e-10)
    # the explicit box alone gives the same as the ε-ball with the same corners
    l2, u2 = output_bounds(net, x, None, "crown", x_lower=lo_box, x_upper=hi_box)
    torch.testing.assert_close(l2, lower, rtol=0, atol=1e-12)
    torch.testing.assert_close(u2, upper, rtol=0, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(
    widths=st.lists(st.integers(1, 9), min_size=2, max_size=5),
    seed=st.integers(0, 10_000),
    eps=st.floats(0.0, 1.0),
    method=st.sampled_from(METHODS),
)
def test_soundness_property(widths, seed, eps, method):
    net = _mlp(widths, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3, widths[0], dtype=torch.float64, generator=gen)
    lower, upper = output_bounds(net, x, eps, method)
    with torch.no_grad():
        pts = x + eps * (2 * torch.rand(64, *x.shape, dtype=x.dtype, generator=gen) - 1)
        pts[:32] = x + eps * torch.sign(pts[:32] - x)
        y = net(pts)
    assert torch.all(y >= lower - 1e-9) and torch.all(y <= upper + 1e-9)


# ------------------------------------------------------------------------------------------------
# Batch, dtype, chunking, network forms
# ------------------------------------------------------------------------------------------------
def test_batch_independent_and_chunked():
    net = _mlp([15, 20, 20, 2], seed=8)
    x = torch.randn(11, 15, dtype=torch.float64)
    lower, upper = output_bounds(net, x, 0.1)
    lc, uc = output_bounds(net, x, 0.1, chunk_size=3)
    torch.testing.assert_close(lc, lower, rtol=0, atol=1e-12)
    torch.testing.assert_close(uc, upper, rtol=0, atol=1e-12)
    l1, u1 = output_bounds(net, x[4:5], 0.1)
    torch.testing.assert_close(l1, lower[4:5], rtol=0, atol=1e-12)
    torch.testing.assert_close(u1, upper[4:5], rtol=0, atol=1e-12)


def test_float32_follows_network():
    net32 = _mlp([15, 20, 20, 2], seed=9, dtype=torch.float32)
    net64 = _mlp([15, 20, 20, 2], seed=9, dtype=torch.float64)
    x = torch.randn(6, 15, dtype=torch.float64)
    l32, u32 = output_bounds(net32, x, 0.1)  # x is cast to the network's dtype
    l64, u64 = output_bounds(net64, x, 0.1)
    assert l32.dtype == torch.float32 and u32.dtype == torch.float32
    torch.testing.assert_close(l32.double(), l64, rtol=0, atol=1e-4)
    torch.testing.assert_close(u32.double(), u64, rtol=0, atol=1e-4)


def test_network_forms_equivalent():
    net = _mlp([6, 8, 8, 2], seed=10)
    x = torch.randn(5, 6, dtype=torch.float64)
    ref = output_bounds(net, x, 0.2)

    class WithLayers(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(nn.Flatten(), *net, nn.Identity())

        def forward(self, z):
            return self.layers(z)

    class WithChildren(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(net[0], net[1], nn.Sequential(net[2], net[3]))
            self.head = net[4]

    nested = nn.Sequential(nn.Sequential(*list(net)[:2]), nn.ReLU(), *list(net)[2:])  # ReLU twice
    for other in (WithLayers(), WithChildren(), nested):
        got = output_bounds(other, x, 0.2)
        torch.testing.assert_close(got[0], ref[0], rtol=0, atol=1e-12)
        torch.testing.assert_close(got[1], ref[1], rtol=0, atol=1e-12)


def test_one_layer_walker_for_bounds_and_user_encoders():
    from magmap.crown import linear_relu_layers
    from magmap.umap.encoder import as_sequential

    net = _mlp([6, 8, 8, 2], seed=11)
    nested = nn.Sequential(nn.Sequential(net[0], net[1]), nn.ModuleList([net[2], net[3]]), nn.Identity(), net[4])
    assert linear_relu_layers(nested) == [net[0], net[1], net[2], net[3], nested[2], net[4]]
    flat = as_sequential(nested, 6, 2)  # the encoder check walks the same way, dropping the no-op
    assert list(flat) == list(net)
    x = torch.randn(4, 6, dtype=torch.float64)
    torch.testing.assert_close(flat(x), net(x), rtol=0, atol=0)
    bad = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Sequential(nn.Linear(8, 8), nn.Sigmoid()), nn.Linear(8, 2))
    with pytest.raises(TypeError, match=r"unsupported layers \['Sigmoid', 'Tanh'\]"):
        output_bounds(bad, x.float(), 0.1)
    with pytest.raises(ValueError, match=r"`encoder` may contain only nn.Linear and nn.ReLU layers \(unsupported "
                                         r"layers \['Sigmoid', 'Tanh'\]"):
        as_sequential(bad, 6, 2)


def test_leading_and_trailing_relu_sound():
    torch.manual_seed(11)
    net = nn.Sequential(nn.ReLU(), nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3), nn.ReLU()).double()
    x = torch.randn(6, 5, dtype=torch.float64)
    lower, upper = output_bounds(net, x, 0.3)
    assert torch.all(lower >= 0)
    with torch.no_grad():
        y = net(x + 0.3 * (2 * torch.rand(300, *x.shape, dtype=x.dtype) - 1))
    assert torch.all(y >= lower - 1e-10) and torch.all(y <= upper + 1e-10)


# ------------------------------------------------------------------------------------------------
# Gradients
# ------------------------------------------------------------------------------------------------
def test_gradcheck_crown_weights_and_input():
    net = _mlp([4, 8, 8, 2], seed=12)
    x = torch.randn(3, 4, dtype=torch.float64)
    params = [p.detach().clone().requires_grad_(True) for p in net.parameters()]

    def bounds_of(x_in, *ps):
        layers, it = [], iter(ps)
        for m in net:
            if isinstance(m, nn.Linear):
                w, b = next(it), next(it)
                layers.append(_FunctionalLinear(w, b))
            else:
                layers.append(nn.ReLU())
        lo, up = output_bounds(nn.Sequential(*layers), x_in, 0.25, "crown")
        return torch.cat([lo, up], 1)

    x_in = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(bounds_of, (x_in, *params), eps=1e-6, atol=1e-5)


class _FunctionalLinear(nn.Linear):
    """nn.Linear whose weight/bias are given tensors (so gradcheck can perturb them)."""

    def __init__(self, w, b):
        nn.Module.__init__(self)
        self.in_features, self.out_features = w.shape[1], w.shape[0]
        self.weight, self.bias = w, b  # plain tensors, not Parameters


@pytest.mark.parametrize("method", METHODS)
def test_bound_area_loss_gradients_reach_weights(method):
    net = _mlp([10, 16, 16, 2], seed=13, dtype=torch.float32)
    x = torch.randn(32, 10)
    lower, upper = output_bounds(net, x, 0.2, method)
    loss = bound_area_loss(lower, upper)
    loss.backward()
    for p in net.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()
    assert net[0].weight.grad.abs().sum() > 0


def test_bound_area_loss_value_and_errors():
    lower = torch.tensor([[0.0, 1.0], [-1.0, -1.0]])
    upper = torch.tensor([[2.0, 4.0], [1.0, 0.0]])
    assert bound_area_loss(lower, upper).item() == pytest.approx((6 + 2) / 2)
    assert bound_area_loss(lower, upper, reduction="sum").item() == pytest.approx(8)
    torch.testing.assert_close(bound_area_loss(lower, upper, reduction="none"), torch.tensor([6.0, 2.0]))
    with pytest.raises(ValueError, match="shape mismatch"):
        bound_area_loss(lower, upper[:1])
    with pytest.raises(ValueError, match="reduction"):
        bound_area_loss(lower, upper, reduction="max")


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------
def test_errors():
    net = _mlp([4, 5, 2], seed=14)
    x = torch.randn(3, 4, dtype=torch.float64)
    with pytest.raises(TypeError, match="Tanh"):
        output_bounds(nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2)), x, 0.1)
    with pytest.raises(TypeError, match="Conv1d"):
        output_bounds(nn.Conv1d(1, 1, 1), x, 0.1)
    with pytest.raises(ValueError, match=">= 0"):
        output_bounds(net, x, -0.1)
    with pytest.raises(ValueError, match=">= 0"):
        output_bounds(net, x, torch.tensor([0.1, -1.0, 0.1]))
    with pytest.raises(ValueError, match="shape mismatch: `x` has 5 features but the first nn.Linear expects 4"):
        output_bounds(net, torch.randn(3, 5), 0.1)
    with pytest.raises(ValueError, match="does not broadcast"):
        output_bounds(net, x, torch.full((2, 2), 0.1))
    with pytest.raises(ValueError, match="ambiguous"):
        output_bounds(_mlp([3, 4, 2]), torch.randn(3, 3), torch.full((3,), 0.1))
    with pytest.raises(ValueError, match="unknown method"):
        output_bounds(net, x, 0.1, "alpha-crown")
    with pytest.raises(ValueError, match="NaN"):
        output_bounds(net, x, float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        output_bounds(net, torch.full((3, 4), float("nan")), 0.1)
    with pytest.raises(ValueError, match="x_lower"):
        output_bounds(net, x, None)
    with pytest.raises(ValueError, match="empty input box"):
        output_bounds(net, x, None, x_lower=x + 1, x_upper=x)


# ------------------------------------------------------------------------------------------------
# Optional auto_LiRPA backend (oracle)
# ------------------------------------------------------------------------------------------------
def _lirpa_or_skip():
    from magmap.crown._lirpa import load_auto_lirpa

    try:
        return load_auto_lirpa()
    except ImportError as exc:
        pytest.skip(f"auto_LiRPA not importable even with the shim: {exc}")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script inside auto_LiRPA 0.3
@pytest.mark.parametrize("method", METHODS)
def test_native_matches_auto_lirpa(method):
    _lirpa_or_skip()
    net = _mlp([9, 12, 12, 12, 3], seed=15)
    torch.manual_seed(16)
    x = torch.randn(20, 9, dtype=torch.float64)
    grads = []
    results = []
    for backend in ("native", "auto_lirpa"):
        net.zero_grad()
        lower, upper = output_bounds(net, x, 0.15, method, backend=backend)
        bound_area_loss(lower, upper).backward()
        results.append((lower.detach(), upper.detach()))
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    (nl, nu), (ll, lu) = results
    torch.testing.assert_close(nl, ll, rtol=0, atol=1e-9)
    torch.testing.assert_close(nu, lu, rtol=0, atol=1e-9)
    # gradients of the bound-area loss agree too (auto_LiRPA shares the network's parameters)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-7, atol=1e-9)


def test_missing_auto_lirpa_error_says_how_to_install(monkeypatch):
    import sys

    from magmap.crown._lirpa import load_auto_lirpa

    monkeypatch.setitem(sys.modules, "auto_LiRPA", None)  # makes `import auto_LiRPA` fail
    with pytest.raises(ImportError, match=r"pip install --no-deps auto_LiRPA==0\.3"):
        load_auto_lirpa()
    net = _mlp([3, 4, 2])
    with pytest.raises(ImportError, match="optional backend"):
        output_bounds(net, torch.randn(2, 3, dtype=torch.float64), 0.1, backend="auto_lirpa")
    # the native default never needs it
    output_bounds(net, torch.randn(2, 3, dtype=torch.float64), 0.1)


def test_flatten_first_accepts_multidimensional_input():
    torch.manual_seed(17)
    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2)).double()
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    lower, upper = output_bounds(net, x, 0.0)
    torch.testing.assert_close(lower, net(x), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"must have shape \(batch, n_features\)"):
        output_bounds(nn.Sequential(*list(net)[1:]), x, 0.1)


# ------------------------------------------------------------------------------------------------
# crown_bounds: CROWN that skips neurons whose sign is already known
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("eps", [0.05, 0.2])
def test_crown_bounds_fixture_parity(case, eps):
    data = _fixture(case)
    net = _net_from_fixture(data)
    x = torch.tensor(data["X"])
    with torch.no_grad():
        res = crown_bounds(net, x, eps)
    # it intersects CROWN's intervals with IBP's: never looser than auto_LiRPA's CROWN, equal almost everywhere
    lb, ub = data[f"lb_crown_eps{eps}"], data[f"ub_crown_eps{eps}"]
    assert np.all(res.lower.numpy() >= lb - 1e-6) and np.all(res.upper.numpy() <= ub + 1e-6)
    same = np.isclose(res.lower.numpy(), lb, rtol=0, atol=1e-6) & np.isclose(res.upper.numpy(), ub, rtol=0, atol=1e-6)
    assert same.mean() >= 0.95
    fwd = data["forward"]
    assert np.all(res.lower.numpy() <= fwd + 1e-12) and np.all(fwd <= res.upper.numpy() + 1e-12)


@pytest.mark.parametrize("eps", [0.01, 0.05, 0.3])
def test_crown_bounds_sparse_equals_dense_and_full_crown(eps):
    net = _mlp([30, 40, 40, 40, 2], seed=21)
    torch.manual_seed(22)
    x = torch.randn(50, 30, dtype=torch.float64)
    eps_rows = torch.linspace(0.5, 1.5, 50, dtype=torch.float64) * eps
    with torch.no_grad():
        sparse = crown_bounds(net, x, eps_rows)
        dense = crown_bounds(net, x, eps_rows, sparse=False)
        lo, up = output_bounds(net, x, eps_rows.reshape(-1, 1))
    torch.testing.assert_close(sparse.lower, dense.lower, rtol=0, atol=1e-12)
    torch.testing.assert_close(sparse.upper, dense.upper, rtol=0, atol=1e-12)
    assert sparse.n_backward_rows <= dense.n_backward_rows == 50 * 80
    # never looser than full CROWN; the skipped neurons' relaxations are exact
    assert torch.all(sparse.lower >= lo - 1e-10) and torch.all(sparse.upper <= up + 1e-10)
    torch.testing.assert_close(sparse.upper - sparse.lower, up - lo, rtol=1e-6, atol=1e-9)
    if eps == 0.01:
        assert sparse.n_backward_rows < 0.5 * dense.n_backward_rows


def test_crown_bounds_reference_from_a_larger_ball_is_sound():
    net = _mlp([20, 32, 32, 32, 2], seed=4)
    torch.manual_seed(5)
    x = torch.randn(16, 20, dtype=torch.float64)
    eps = 0.05
    with torch.no_grad():
        plain = crown_bounds(net, x, eps)
        big = crown_bounds(net, x, 1.5 * eps)
        res = crown_bounds(net, x, eps, reference=big.intermediate)
        dense = crown_bounds(net, x, eps, reference=big.intermediate, sparse=False)
    assert res.n_backward_rows < plain.n_backward_rows
    torch.testing.assert_close(res.lower, dense.lower, rtol=0, atol=1e-12)
    assert torch.all(res.lower >= plain.lower - 1e-10) and torch.all(res.upper <= plain.upper + 1e-10)
    for (l, u), (lb, ub) in zip(res.intermediate, big.intermediate):
        assert torch.all(l >= lb) and torch.all(u <= ub)  # intersected with the reference
    with torch.no_grad():
        corners = net(x + eps * torch.sign(torch.randn(300, *x.shape, dtype=x.dtype)))
    assert torch.all(corners >= res.lower - 1e-10) and torch.all(corners <= res.upper + 1e-10)
    for j in range(2):
        for sign in (1.0, -1.0):
            xa = _pgd(net, x, eps, j, sign)
            with torch.no_grad():
                y = net(xa)[:, j]
            assert torch.all(y >= res.lower[:, j] - 1e-10) and torch.all(y <= res.upper[:, j] + 1e-10)


def test_crown_bounds_errors():
    net = _mlp([4, 5, 2], seed=14)
    x = torch.randn(3, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="one radius per row"):
        crown_bounds(net, x, torch.full((1, 4), 0.1))
    with pytest.raises(ValueError, match="finite and >= 0"):
        crown_bounds(net, x, -0.1)
    with pytest.raises(TypeError, match="starts with nn.Linear"):
        crown_bounds(nn.Sequential(nn.ReLU(), nn.Linear(4, 2)), x, 0.1)
    with pytest.raises(ValueError, match="`reference` must hold 1"):
        crown_bounds(net, x, 0.1, reference=[(torch.zeros(3, 4), torch.zeros(3, 4))])
