"""CROWN that bounds only the neurons whose sign is not yet known, for certification.

Full CROWN (:func:`output_bounds`) runs a backward pass for *every* neuron feeding a ReLU; on a
2000-gene encoder that is ~99 % of its cost. But a neuron's ReLU relaxation depends on its
pre-activation bounds only when it is *unstable* (lower < 0 < upper): a neuron known to be always
active is the identity, one known to be always off is 0, whatever its exact bounds. :func:`crown_bounds`
therefore

1. takes sound reference intervals for every pre-activation — interval arithmetic from the previous
   layer's final intervals (IBP on the first layer, where it is exact) and, optionally, intervals the
   caller already holds for a box containing this one (e.g. from a larger ε of a bisection) — and
   intersects them;
2. runs CROWN's backward pass only for the (cell, neuron) pairs still unstable, intersecting the result
   with the reference;
3. bounds the output with the full CROWN backward pass over these relaxations, intersected with IBP.

Every interval used is sound for the box, so the output bounds are sound; they are at least as tight as
CROWN's for every neuron whose intersection is decided by CROWN, and tighter where IBP or the reference
is tighter. With no stable neuron to skip it computes exactly what CROWN computes, plus the
intersections. Inputs are L∞ balls with one radius per row (the certification setting).
"""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ._bounds import (Affine, DEFAULT_CHUNK_BYTES, EpsilonLike, _as_tensor, _backward, _check_x, linear_relu_layers,
                      _ibp_pre_activations, _linear_interval, _parse, _relaxation)

__all__ = ["crown_bounds", "CrownBounds"]

# above this share of open (cell, neuron) pairs in a layer, the batched pass over all neurons is faster
_DENSE_SHARE = 0.9

Interval = Tuple[Tensor, Tensor]


class CrownBounds(NamedTuple):
    """Result of :func:`crown_bounds`."""

    #: Output bounds ``(batch, n_out)``.
    lower: Tensor
    upper: Tensor
    #: Pre-activation intervals of every ReLU layer, ``[(lower, upper), ...]`` each ``(batch, width)``:
    #: sound for this box and for any box inside it (pass them as ``reference`` there).
    intermediate: List[Interval]
    #: Number of (row, neuron) pairs whose bounds needed a CROWN backward pass.
    n_backward_rows: int


def _row_epsilon(epsilon: EpsilonLike, x: Tensor) -> Tensor:
    eps = _as_tensor(epsilon, "epsilon", x)
    if eps.ndim == 2 and eps.shape[1] == 1:
        eps = eps[:, 0]
    if eps.ndim == 0:
        eps = eps.expand(x.shape[0])
    if eps.ndim != 1 or eps.shape[0] != x.shape[0]:
        raise ValueError(f"`epsilon` must be a scalar or one radius per row ((batch,) or (batch, 1)), got shape "
                         f"{tuple(eps.shape)} for {x.shape[0]} rows; per-feature radii need output_bounds().")
    if bool((eps < 0).any()) or not bool(torch.isfinite(eps).all()):
        raise ValueError("`epsilon` must be finite and >= 0")
    return eps


def _rows_backward(rows: Tensor, cells: Tensor, affines: Sequence[Affine], relax: Sequence[Tuple[Tensor, Tensor, Tensor]],
                   center_w0: Tensor, eps: Tensor, const0: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
    """CROWN backward pass for individual (cell, spec) rows: ``rows`` ``(P, width)`` are the coefficients
    on the output of the last ReLU of ``affines``, for cell ``cells[p]``. Returns ``(lower, upper)`` of
    shape ``(P,)``. Same relaxation rules as :func:`magmap.crown._bounds._backward`."""
    a = torch.stack((rows, rows))  # (2, P, width): upper, lower
    const = torch.zeros(2, rows.shape[0], dtype=rows.dtype, device=rows.device)
    if const0 is not None:
        const = const + const0
    for j in range(len(affines) - 1, -1, -1):
        s, t, alpha = (r[cells] for r in relax[j])
        a_pos = a.clamp(min=0)
        const = const + torch.stack(((a_pos[0] * t).sum(-1), ((a[1] - a_pos[1]) * t).sum(-1)))
        gap = s - alpha
        a = torch.addcmul(a * torch.stack((alpha, s)), a_pos, torch.stack((gap, -gap)))
        del a_pos
        w, b = affines[j]
        if b is not None:
            const = const + a.matmul(b)
        if j == 0:
            lin = (a * center_w0[cells]).sum(-1)
            dev = a.matmul(w).abs_().sum(-1) * eps[cells]
        else:
            a = a.matmul(w)
    return lin[1] - dev[1] + const[1], lin[0] + dev[0] + const[0]


def crown_bounds(network: nn.Module, x: Tensor, epsilon: EpsilonLike, *,
                 reference: Optional[Sequence[Interval]] = None, sparse: bool = True,
                 chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> CrownBounds:
    """CROWN output bounds over L∞ balls, bounding only neurons not yet known to be stable.

    Parameters
    ----------
    network
        A Linear/ReLU network starting with ``nn.Linear`` (as for :func:`output_bounds`).
    x
        Ball centres ``(batch, n_features)``.
    epsilon
        Radius: a scalar or one per row (``(batch,)`` or ``(batch, 1)``).
    reference
        Optional sound pre-activation intervals for every ReLU layer (e.g. ``intermediate`` of a call
        on a box containing this one); ``-inf``/``inf`` entries mean unknown.
    sparse
        ``True`` skips neurons whose sign is already known (a layer where more than 90 % of the
        (row, neuron) pairs are open gets CROWN's batched pass over all its neurons instead, which is
        then faster); ``False`` always bounds every neuron before intersecting (the reference this
        function is tested against).
    chunk_bytes
        Memory budget of the widest backward-pass intermediates.

    Returns
    -------
    CrownBounds
        ``lower``, ``upper``, ``intermediate`` and ``n_backward_rows``.
    """
    lead_relu, affines, tail_relu = _parse(network)
    if lead_relu or not affines:
        raise TypeError("crown_bounds needs a network that starts with nn.Linear; use output_bounds() otherwise.")
    w0 = affines[0][0]
    starts_flat = isinstance(next(iter(linear_relu_layers(network)), None), nn.Flatten)
    x = _check_x(x, w0.shape[1], w0.dtype, w0.device, flatten=starts_flat)
    eps = _row_epsilon(epsilon, x)
    n_relu = len(affines) - 1
    if reference is not None and (len(reference) != n_relu or any(
            r[0].shape != (x.shape[0], affines[k][0].shape[0]) or r[1].shape != r[0].shape for k, r in enumerate(reference))):
        raise ValueError(f"`reference` must hold {n_relu} (lower, upper) pairs shaped (batch, layer width), one per "
                         "ReLU layer, as returned in `intermediate`.")
    lo, hi = x - eps[:, None], x + eps[:, None]
    ibp_pre, ibp_out = _ibp_pre_activations(lo, hi, affines)
    center_w0 = x.matmul(w0.t())  # A·x through the first layer without the (rows × genes) product
    relax, inter, n_rows = [], [], 0
    for k in range(n_relu):
        # interval arithmetic from the previous layer's (already tightened) intervals: sound, and much
        # tighter than IBP from the input once CROWN has tightened that layer
        low, up = ibp_pre[k] if k == 0 else _linear_interval(torch.relu(inter[-1][0]), torch.relu(inter[-1][1]),
                                                             *affines[k])
        if reference is not None:
            low, up = torch.maximum(low, reference[k][0].to(low)), torch.minimum(up, reference[k][1].to(up))
        if k > 0:
            w, b = affines[k]
            open_ = (low < 0) & (up > 0)
            n_open = int(open_.sum())
            if sparse and n_open <= _DENSE_SHARE * open_.numel():
                cells, neurons = torch.nonzero(open_, as_tuple=True)
                n_rows += n_open
                # rows per chunk: ~3 live (2, rows, n_features) tensors at the last backward step
                step = max(1, chunk_bytes // (6 * w0.shape[1] * x.element_size()))
                l_c, u_c = [], []
                for s in range(0, n_open, step):
                    c, nrn = cells[s:s + step], neurons[s:s + step]
                    lc, uc = _rows_backward(w[nrn], c, affines[:k], relax, center_w0, eps,
                                            None if b is None else b[nrn])
                    l_c.append(lc)
                    u_c.append(uc)
                if n_open:
                    low, up = low.clone(), up.clone()
                    low[cells, neurons] = torch.maximum(low[cells, neurons], torch.cat(l_c))
                    up[cells, neurons] = torch.minimum(up[cells, neurons], torch.cat(u_c))
            else:
                # most neurons open (large ε): CROWN's batched pass over every neuron is cheaper
                n_rows += open_.numel()
                step = max(1, chunk_bytes // (8 * w.shape[0] * w0.shape[1] * x.element_size()))
                parts = [_backward(w, b, affines[:k], [tuple(r[s:s + step] for r in rel) for rel in relax],
                                   x[s:s + step], (hi[s:s + step] - lo[s:s + step]) / 2, eps[s:s + step, None])
                         for s in range(0, x.shape[0], step)]
                low = torch.maximum(low, torch.cat([q[0] for q in parts]))
                up = torch.minimum(up, torch.cat([q[1] for q in parts]))
        inter.append((low, up))
        relax.append(_relaxation(low, up))
    w, b = affines[-1]
    if n_relu == 0:
        lower, upper = _linear_interval(lo, hi, w, b)
    else:
        width = max(a.shape[1] for a, _ in affines)
        step = max(1, chunk_bytes // (8 * w.shape[0] * width * x.element_size()))
        parts = [_backward(w, b, affines[:-1], [tuple(r[s:s + step] for r in rel) for rel in relax], x[s:s + step],
                           (hi[s:s + step] - lo[s:s + step]) / 2, eps[s:s + step, None])
                 for s in range(0, x.shape[0], step)]
        lower, upper = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        lower, upper = torch.maximum(lower, ibp_out[0]), torch.minimum(upper, ibp_out[1])
    if tail_relu:
        lower, upper = torch.relu(lower), torch.relu(upper)
    return CrownBounds(lower, upper, inter, n_rows)
