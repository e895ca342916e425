"""Native bound propagation (IBP, CROWN, CROWN-IBP) for Linear/ReLU networks.

The maths follows CROWN (Zhang et al. 2018) and CROWN-IBP and reproduces auto_LiRPA's defaults:

* IBP propagates the box as centre/radius through ``nn.Linear`` (``W·mid ± |W|·rad + b``) and
  ``relu`` of both ends through ReLU, exactly as auto_LiRPA's ``interval_propagate``.
* CROWN (auto_LiRPA ``method="backward"``) bounds every pre-activation feeding a ReLU by a backward
  linear pass (the first layer's bounds are the exact IBP ones), relaxes each unstable ReLU with the
  upper line ``s·(y − l)``, ``s = u/(u − l)`` and the *adaptive* lower line ``α·y`` with
  ``α = 1[s > 0.5]`` (``u > −l``; a tie ``u = −l`` gives ``α = 0``), and concretises over the input
  box with centre/radius, i.e. ``ε·‖Λ‖₁`` for an L∞ ball.
* CROWN-IBP takes the intermediate bounds from IBP and runs the CROWN backward pass for the output.

Everything is batched (no Python loop over samples) and differentiable with respect to the network
parameters and the input; the batch is processed in chunks when the backward-pass intermediates
(``batch × 2·width × width``) would be large.
"""
from __future__ import annotations

import logging
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

logger = logging.getLogger(__name__)

__all__ = ["output_bounds", "bound_area_loss", "linear_relu_layers", "METHODS"]

#: Accepted ``method`` names (case-insensitive; ``"backward"`` is an alias of ``"crown"``).
METHODS = ("ibp", "crown", "crown-ibp")
_ALIASES = {
    "ibp": "ibp",
    "crown": "crown",
    "backward": "crown",
    "crown-ibp": "crown-ibp",
    "crown_ibp": "crown-ibp",
    "crownibp": "crown-ibp",
}

#: Default memory budget (bytes) for the largest backward-pass intermediates of one chunk.
DEFAULT_CHUNK_BYTES = 256 * 2**20

# Same guard as auto_LiRPA's ReLU relaxation: u_r = max(u⁺, l⁻ + 1e-8) keeps u − l > 0.
_RELU_GUARD = 1e-8

Affine = Tuple[Tensor, Optional[Tensor]]
EpsilonLike = Union[float, int, Tensor, None]


# --------------------------------------------------------------------------------------------------
# Network parsing
# --------------------------------------------------------------------------------------------------
_LAYER_TYPES = (nn.Linear, nn.ReLU, nn.Flatten, nn.Identity)


def linear_relu_layers(network: nn.Module) -> List[nn.Module]:
    """The layers of a Linear/ReLU network in order, nested ``Sequential``/``ModuleList`` expanded.

    The top-level module may also be a plain ``nn.Module`` holding its layers in ``.layers`` or as its
    children. ``nn.Flatten`` and ``nn.Identity`` are kept (no-ops to the bounds). Raises ``TypeError``
    naming every unsupported layer: CROWN bounds (and the robust UMAP encoder) are Linear/ReLU only.
    """
    if isinstance(network, _LAYER_TYPES):
        return [network]
    if isinstance(network, (nn.Sequential, nn.ModuleList)):
        children: Iterable[nn.Module] = list(network)
    elif isinstance(getattr(network, "layers", None), (nn.Sequential, nn.ModuleList, list, tuple)):
        children = list(network.layers)
    elif isinstance(network, nn.Module):
        children = list(network.children())
        if not children:
            raise TypeError(
                f"output_bounds supports nn.Linear / nn.ReLU networks; got a "
                f"{type(network).__name__} with no sub-layers"
            )
    else:
        raise TypeError(f"`network` must be a torch.nn.Module, got {type(network).__name__}")
    layers: List[nn.Module] = []
    bad: List[str] = []

    def walk(modules: Iterable[nn.Module]) -> None:
        for child in modules:
            if not isinstance(child, nn.Module):
                raise TypeError(f"`network.layers` must hold nn.Module objects, got {type(child).__name__}")
            if isinstance(child, _LAYER_TYPES):
                layers.append(child)
            elif isinstance(child, (nn.Sequential, nn.ModuleList)):
                walk(child)
            else:
                bad.append(type(child).__name__)

    walk(children)
    if bad:
        raise TypeError(
            f"unsupported layers {sorted(set(bad))} in the network: CROWN bounds support only nn.Linear and "
            "nn.ReLU layers (nn.Flatten and nn.Identity are accepted as no-ops)"
        )
    return layers


def _parse(network: nn.Module) -> Tuple[bool, List[Affine], bool]:
    """Canonicalise a Linear/ReLU network.

    Returns
    -------
    lead_relu
        Whether a ReLU acts on the input before the first linear layer.
    affines
        Linear maps ``(W, b)`` (``b`` may be ``None``) with exactly one ReLU between consecutive
        entries; consecutive ``nn.Linear`` layers are composed, repeated ReLUs collapsed.
    tail_relu
        Whether a ReLU follows the last linear layer.
    """
    layers = linear_relu_layers(network)
    lead_relu = False
    affines: List[Affine] = []
    pending_relu = False  # a ReLU seen after the last affine
    for layer in layers:
        if isinstance(layer, nn.ReLU):
            if affines:
                pending_relu = True
            else:
                lead_relu = True
        elif isinstance(layer, nn.Linear):
            w, b = layer.weight, layer.bias
            if affines and not pending_relu:
                # Compose Linear∘Linear: W2(W1 x + b1) + b2.
                w1, b1 = affines[-1]
                new_b = None
                if b1 is not None:
                    new_b = b1 @ w.t() if b is None else b1 @ w.t() + b
                else:
                    new_b = b
                affines[-1] = (w @ w1, new_b)
            else:
                affines.append((w, b))
            pending_relu = False
        # nn.Flatten / nn.Identity: no-ops on (batch, features) inputs.
    return lead_relu, affines, pending_relu


# --------------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------------
def _as_tensor(value: EpsilonLike, name: str, like: Tensor) -> Tensor:
    if isinstance(value, Tensor):
        t = value.to(device=like.device, dtype=like.dtype)
    else:
        try:
            t = torch.as_tensor(value, dtype=like.dtype, device=like.device)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(f"`{name}` must be a number or a tensor, got {type(value).__name__}") from exc
    if torch.isnan(t).any():
        raise ValueError(f"`{name}` contains NaN")
    return t


def _broadcast_eps(eps: Tensor, batch: int, n_features: int) -> Tensor:
    """Shape ``epsilon`` to broadcast against ``x`` of shape ``(batch, n_features)``."""
    if eps.ndim == 0:
        return eps.reshape(1, 1)
    if eps.ndim == 1:
        n = eps.shape[0]
        if n == batch and n == n_features and n != 1:
            raise ValueError(
                f"1-D `epsilon` of length {n} is ambiguous because batch size == number of features; "
                "pass shape (batch, 1) for per-sample or (1, n_features) for per-feature radii"
            )
        if n == batch:
            return eps.reshape(batch, 1)
        if n == n_features or n == 1:
            return eps.reshape(1, n)
        raise ValueError(
            f"`epsilon` of shape {tuple(eps.shape)} matches neither the batch size ({batch}) "
            f"nor the number of features ({n_features})"
        )
    if eps.ndim == 2:
        ok_rows = eps.shape[0] in (1, batch)
        ok_cols = eps.shape[1] in (1, n_features)
        if ok_rows and ok_cols:
            return eps
    raise ValueError(
        f"`epsilon` of shape {tuple(eps.shape)} does not broadcast to x of shape ({batch}, {n_features}); "
        "use a scalar, shape (batch,), (n_features,), (batch, 1), (1, n_features) or (batch, n_features)"
    )


def _input_box(
    x: Tensor, epsilon: EpsilonLike, x_lower: EpsilonLike, x_upper: EpsilonLike
) -> Tuple[Tensor, Tensor]:
    """Lower and upper corners of the input box, shape ``(batch, n_features)``."""
    batch, n_features = x.shape
    if epsilon is None and (x_lower is None or x_upper is None):
        raise ValueError("give `epsilon`, or both `x_lower` and `x_upper`")
    if epsilon is not None:
        eps = _as_tensor(epsilon, "epsilon", x)
        if (eps < 0).any():
            raise ValueError(f"`epsilon` must be >= 0, got min {float(eps.min()):g}")
        if torch.isinf(eps).any():
            raise ValueError("`epsilon` must be finite")
        eps = _broadcast_eps(eps, batch, n_features)
        lo, hi = x - eps, x + eps
    else:
        lo = hi = None
    bounds = []
    for name, val in (("x_lower", x_lower), ("x_upper", x_upper)):
        if val is None:
            bounds.append(None)
            continue
        t = _as_tensor(val, name, x)
        try:
            t = torch.broadcast_to(t, x.shape)
        except RuntimeError as exc:
            raise ValueError(
                f"`{name}` of shape {tuple(t.shape)} does not broadcast to x of shape {tuple(x.shape)}"
            ) from exc
        bounds.append(t)
    xl, xu = bounds
    if lo is None:
        lo, hi = xl, xu
        if torch.isinf(lo).any() or torch.isinf(hi).any():
            raise ValueError("`x_lower` and `x_upper` must be finite")
    else:
        # Clip the ε-ball to the given box (e.g. the data range), as auto_LiRPA's training examples do.
        if xl is not None:
            lo = torch.maximum(lo, xl)
        if xu is not None:
            hi = torch.minimum(hi, xu)
    if (lo > hi).any():
        raise ValueError("empty input box: some lower corner exceeds its upper corner")
    return lo, hi


def _check_x(
    x: Tensor, n_in: Optional[int], dtype: torch.dtype, device: torch.device, flatten: bool = False
) -> Tensor:
    if not isinstance(x, Tensor):
        x = torch.as_tensor(x)
    if x.ndim == 1:
        x = x.unsqueeze(0)
    if x.ndim > 2 and flatten:
        x = x.flatten(1)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"`x` must have shape (batch, n_features) with batch > 0, got {tuple(x.shape)}")
    if n_in is not None and x.shape[1] != n_in:
        raise ValueError(
            f"shape mismatch: `x` has {x.shape[1]} features but the first nn.Linear expects {n_in}"
        )
    if x.dtype != dtype or x.device != device:
        logger.debug("casting x from %s/%s to %s/%s", x.dtype, x.device, dtype, device)
        x = x.to(device=device, dtype=dtype)
    if torch.isnan(x).any():
        raise ValueError("`x` contains NaN")
    return x


# --------------------------------------------------------------------------------------------------
# Bound propagation
# --------------------------------------------------------------------------------------------------
def _linear_interval(lo: Tensor, hi: Tensor, w: Tensor, b: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
    """IBP through ``y = x Wᵀ + b`` (auto_LiRPA's centre/deviation form, same rounding)."""
    mid = (hi + lo) / 2.0
    rad = (hi - lo) / 2.0
    center = mid.matmul(w.t())
    deviation = rad.matmul(w.abs().t())
    if b is None:
        return center - deviation, center + deviation
    return center - deviation + b, center + deviation + b


def _ibp_pre_activations(lo: Tensor, hi: Tensor, affines: Sequence[Affine]) -> Tuple[List[Tuple[Tensor, Tensor]], Tuple[Tensor, Tensor]]:
    """Return IBP bounds of each ReLU's pre-activation and of the output."""
    pre: List[Tuple[Tensor, Tensor]] = []
    for k, (w, b) in enumerate(affines):
        lo, hi = _linear_interval(lo, hi, w, b)
        if k < len(affines) - 1:
            pre.append((lo, hi))
            lo, hi = torch.relu(lo), torch.relu(hi)
    return pre, (lo, hi)


def _relaxation(lo: Tensor, hi: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """ReLU linear relaxation from pre-activation bounds (auto_LiRPA's default, 'adaptive').

    Returns the upper slope ``s``, upper intercept ``t`` (upper line ``s·y + t``) and the lower
    slope ``α`` (lower line ``α·y``), each of shape ``(batch, width)``.
    """
    lo_r = lo.clamp(max=0)
    hi_r = torch.maximum(hi.clamp(min=0), lo_r + _RELU_GUARD)
    s = hi_r / (hi_r - lo_r)
    t = -lo_r * s
    alpha = (s > 0.5).to(s.dtype)
    return s, t, alpha


def _backward(
    w_last: Tensor,
    b_last: Optional[Tensor],
    affines: Sequence[Affine],
    relax: Sequence[Tuple[Tensor, Tensor, Tensor]],
    center: Tensor,
    radius: Tensor,
    row_radius: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    """CROWN backward pass for the rows of ``w_last`` applied to the output of ``affines[-1]``'s ReLU.

    ``affines`` are the layers *below* the target layer and ``relax[j]`` the relaxation of the ReLU
    after ``affines[j]``; an affine ``(None, None)`` is the identity (only first: the box
    ``center ± radius`` is then on the pre-activations of the first ReLU). Upper (index 0) and lower
    (index 1) coefficient matrices are stacked on a leading axis so that each layer costs one
    elementwise pass and one matrix product.
    ``row_radius`` (``(batch, 1)``), when given, is the common radius of each row's box and allows
    a cheaper ℓ1 term. Returns ``(lower, upper)`` of shape ``(batch, n_spec)``.
    """
    batch = center.shape[0]
    n_spec = w_last.shape[0]
    # Coefficients (2, 1, n_spec, width), shared by the batch until the first ReLU.
    a = w_last.unsqueeze(0).unsqueeze(0).expand(2, 1, n_spec, w_last.shape[1])
    const: Optional[Tensor] = None
    if b_last is not None:
        const = b_last.reshape(1, 1, n_spec).expand(2, batch, n_spec)
    for j in range(len(affines) - 1, -1, -1):
        s, t, alpha = relax[j]  # (batch, width)
        # Upper bound: positive coefficients take the upper line (slope s, intercept t), negative
        # ones the lower line (slope α). Lower bound: the reverse.
        # Written as A·neg + A⁺·(pos − neg): one fused addcmul instead of a masked select.
        neg_slope = torch.stack((alpha, s)).unsqueeze(2)  # (2, batch, 1, width)
        gap = s - alpha
        slope_gap = torch.stack((gap, -gap)).unsqueeze(2)
        a_pos = a.clamp(min=0)
        if a.shape[1] == 1:  # shared coefficients: intercept term as (batch, w) @ (w, n_spec)
            c_up = t.matmul(a_pos[0, 0].t())
            c_lo = t.matmul((a[1, 0] - a_pos[1, 0]).t())
        else:  # A⁻·t = A·t − A⁺·t (matrix-vector products, no extra elementwise pass)
            t_col = t.unsqueeze(-1)
            c_up = a_pos[0].matmul(t_col).squeeze(-1)
            c_lo = (a[1].matmul(t_col) - a_pos[1].matmul(t_col)).squeeze(-1)
        c = torch.stack((c_up, c_lo))
        const = c if const is None else const + c
        a = torch.addcmul(a * neg_slope, a_pos, slope_gap)  # (2, batch, n_spec, width)
        del a_pos
        w, b = affines[j]
        if b is not None:
            const = const + a.matmul(b)
        if w is None:  # identity layer: the box is given on this layer's output
            if j == 0:
                lin = a.matmul(center.unsqueeze(-1)).squeeze(-1)
            continue
        if j == 0:
            # A·centre through the first layer without reading the wide product twice.
            lin = a.matmul(center.matmul(w.t()).unsqueeze(-1)).squeeze(-1)  # (2, batch, n_spec)
        a = a.matmul(w)  # one GEMM for both bounds: (2·batch·n_spec, width) @ (width, n_in)
    # Concretise over the box: A·centre ± |A|·radius.
    # |A| in place when no gradient is recorded (saves one pass over the widest tensor).
    a_abs = a.abs_() if not (torch.is_grad_enabled() and a.requires_grad) else a.abs()
    if row_radius is not None:
        dev = a_abs.sum(dim=-1) * row_radius
    else:
        dev = a_abs.matmul(radius.unsqueeze(-1)).squeeze(-1)
    upper = lin[0] + dev[0]
    lower = lin[1] - dev[1]
    if const is not None:
        upper = upper + const[0]
        lower = lower + const[1]
    return lower, upper


def _bounds_chunk(lo: Tensor, hi: Tensor, affines: Sequence[Affine], method: str) -> Tuple[Tensor, Tensor]:
    """Output bounds of the affine/ReLU chain for one chunk of input boxes."""
    if method == "ibp":
        _, out = _ibp_pre_activations(lo, hi, affines)
        return out
    center = (hi + lo) / 2.0
    radius = (hi - lo) / 2.0
    row_radius = radius[:, :1]
    if not bool((radius == row_radius).all()):
        row_radius = None
    if method == "crown-ibp":
        pre, _ = _ibp_pre_activations(lo, hi, affines)
        relax = [_relaxation(l_, u_) for l_, u_ in pre]
    else:  # crown
        relax = []
        for k in range(len(affines) - 1):
            w, b = affines[k]
            if k == 0:
                # First layer: IBP is exact (auto_LiRPA uses IBP here too).
                l_k, u_k = _linear_interval(lo, hi, w, b)
            else:
                l_k, u_k = _backward(w, b, affines[:k], relax, center, radius, row_radius)
            relax.append(_relaxation(l_k, u_k))
    w, b = affines[-1]
    if len(affines) == 1:
        return _linear_interval(lo, hi, w, b)
    return _backward(w, b, affines[:-1], relax, center, radius, row_radius)


def _chunk_size(batch: int, affines: Sequence[Affine], method: str, itemsize: int, budget: int) -> int:
    """Largest chunk whose biggest backward intermediates stay under ``budget`` bytes."""
    if method == "ibp" or len(affines) <= 1:
        return batch
    widths = [affines[0][0].shape[1]] + [w.shape[0] for w, _ in affines]
    n_spec = max(widths[1:-1]) if method == "crown" else widths[-1]
    # ~4 live tensors of shape (2, chunk, n_spec, width): A, slopes, product, |A|.
    per_sample = 4 * 2 * n_spec * max(widths) * itemsize
    return max(1, min(batch, budget // max(per_sample, 1)))


def output_bounds(
    network: nn.Module,
    x: Tensor,
    epsilon: EpsilonLike,
    method: str = "crown",
    *,
    x_lower: EpsilonLike = None,
    x_upper: EpsilonLike = None,
    chunk_size: Optional[int] = None,
    backend: str = "native",
) -> Tuple[Tensor, Tensor]:
    """Certified lower/upper bounds of a Linear/ReLU network's outputs over an input box.

    Parameters
    ----------
    network
        ``torch.nn.Sequential`` of ``nn.Linear`` / ``nn.ReLU`` layers (``nn.Flatten`` and
        ``nn.Identity`` are ignored; nested ``Sequential`` is expanded), or a module whose
        ``layers`` attribute or ``children()`` form such a sequence. Any other layer type raises
        ``TypeError`` naming it. Consecutive ``Linear`` layers are composed exactly; a trailing
        ReLU is applied to the output bounds (sound, as tight as relaxing it).
    x
        Inputs, shape ``(batch, n_features)`` (1-D is one sample; more dimensions only when the
        network starts with ``nn.Flatten``). Cast to the dtype/device of the
        network's parameters; bounds are differentiable w.r.t. ``x`` and the parameters.
    epsilon
        Radius of the L∞ ball around each row: a scalar, per-sample ``(batch,)``/``(batch, 1)``,
        per-feature ``(n_features,)``/``(1, n_features)`` or ``(batch, n_features)``; must be
        ``>= 0``. May be ``None`` when ``x_lower`` and ``x_upper`` are both given.
    method
        ``"ibp"``, ``"crown"`` (auto_LiRPA's ``"backward"``: CROWN intermediate bounds, adaptive
        lower ReLU slope ``α = 1[u > −l]``) or ``"crown-ibp"`` (IBP intermediate bounds, CROWN for
        the output).
    x_lower, x_upper
        Optional explicit box corners (broadcast to ``x``). Without ``epsilon`` the box is
        ``[x_lower, x_upper]``; with ``epsilon`` the ε-ball is clipped to it (e.g. the data range).
    chunk_size
        Rows per chunk for CROWN/CROWN-IBP; ``None`` picks it from a memory estimate
        (``DEFAULT_CHUNK_BYTES`` for the largest ``chunk × 2·width × width`` intermediates).
        Under autograd the saved tensors of all chunks are kept until ``backward``.
    backend
        ``"native"`` (default) or ``"auto_lirpa"`` (optional auto_LiRPA 0.3 through the
        compatibility shim in :mod:`magmap.crown._lirpa`; slow for full CROWN).

    Returns
    -------
    lower, upper
        Tensors of shape ``(batch, n_out)`` with ``lower <= network(x') <= upper`` for every
        ``x'`` in the box. With a zero-width box both equal ``network(x)`` exactly.
    """
    key = str(method).lower().strip()
    if key not in _ALIASES:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    method = _ALIASES[key]
    if backend not in ("native", "auto_lirpa"):
        raise ValueError(f"unknown backend {backend!r}; choose 'native' or 'auto_lirpa'")

    lead_relu, affines, tail_relu = _parse(network)
    starts_flat = isinstance(next(iter(linear_relu_layers(network)), None), nn.Flatten)
    params = [w for w, _ in affines]
    if params:
        dtype, device = params[0].dtype, params[0].device
    else:
        xt = x if isinstance(x, Tensor) else torch.as_tensor(x)
        dtype = xt.dtype if xt.is_floating_point() else torch.get_default_dtype()
        device = xt.device
    n_in = affines[0][0].shape[1] if affines else None
    x = _check_x(x, n_in, dtype, device, flatten=starts_flat)
    lo, hi = _input_box(x, epsilon, x_lower, x_upper)

    if backend == "auto_lirpa":
        from ._lirpa import lirpa_output_bounds

        return lirpa_output_bounds(network, lo, hi, method)

    if lead_relu:  # elementwise monotone: the image of a box is the box of the images
        lo, hi = torch.relu(lo), torch.relu(hi)
    if not affines:
        return lo, hi

    if bool((hi == lo).all()):
        # Zero-width box: the bounds are the forward output itself (exact, identical tensors).
        out = lo
        for k, (w, b) in enumerate(affines):
            out = out.matmul(w.t()) if b is None else out.matmul(w.t()) + b
            if k < len(affines) - 1 or tail_relu:
                out = torch.relu(out)
        return out, out.clone()

    batch = lo.shape[0]
    if chunk_size is None:
        chunk_size = _chunk_size(batch, affines, method, lo.element_size(), DEFAULT_CHUNK_BYTES)
    elif int(chunk_size) < 1:
        raise ValueError(f"`chunk_size` must be >= 1, got {chunk_size}")
    chunk_size = int(chunk_size)
    if chunk_size >= batch:
        lower, upper = _bounds_chunk(lo, hi, affines, method)
    else:
        logger.debug("bounding %d rows in chunks of %d", batch, chunk_size)
        parts = [
            _bounds_chunk(lo[i : i + chunk_size], hi[i : i + chunk_size], affines, method)
            for i in range(0, batch, chunk_size)
        ]
        lower = torch.cat([p[0] for p in parts])
        upper = torch.cat([p[1] for p in parts])
    if tail_relu:
        lower, upper = torch.relu(lower), torch.relu(upper)
    return lower, upper


def bound_area_loss(lower: Tensor, upper: Tensor, *, reduction: str = "mean") -> Tensor:
    """Bound-area loss of the robust-UMAP paper (Eq. 5–6), without the scale λ.

    ``L_b = (1/|C|) Σ_i Π_j (u_ij − l_ij)``: the area (volume for ``n_out > 2``) of each cell's
    certified output box, averaged over the cells of the batch. Multiply by λ (the spec's
    ``λ₀ / A_ref``) in the caller. Widths are clamped at 0 against rounding.

    Parameters
    ----------
    lower, upper
        Bounds of shape ``(n_cells, n_out)``, e.g. from :func:`output_bounds`.
    reduction
        ``"mean"`` (default, the spec's choice), ``"sum"`` (the paper's literal Σ) or ``"none"``
        (per-cell areas, shape ``(n_cells,)``).

    Returns
    -------
    Tensor
        Scalar loss (or per-cell areas), differentiable w.r.t. the bounds.
    """
    if lower.shape != upper.shape:
        raise ValueError(f"shape mismatch: lower {tuple(lower.shape)} vs upper {tuple(upper.shape)}")
    if lower.ndim != 2:
        raise ValueError(f"bounds must have shape (n_cells, n_out), got {tuple(lower.shape)}")
    area = (upper - lower).clamp(min=0).prod(dim=1)
    if reduction == "mean":
        return area.mean()
    if reduction == "sum":
        return area.sum()
    if reduction == "none":
        return area
    raise ValueError(f"unknown reduction {reduction!r}; choose 'mean', 'sum' or 'none'")
