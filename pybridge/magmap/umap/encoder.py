"""The encoder network: a Linear/ReLU MLP with a linear output (no activation on the output layer).

Training may use a factored, batch-normalised copy (a fixed PCA projection in front, BatchNorm after the
hidden layers); :func:`fold_batch_norm` and :func:`fold_input_projection` turn it back into the plain
network every other part of magmap (transform, CROWN, model files) works with.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from ..crown import linear_relu_layers

__all__ = ["DEFAULT_HIDDEN_LAYERS", "make_encoder", "as_sequential", "layer_widths", "rebuild", "with_batch_norm",
           "fold_batch_norm", "fold_input_projection"]

#: umap-learn ParametricUMAP's default encoder: 3 hidden layers of 100 ReLU units.
DEFAULT_HIDDEN_LAYERS: tuple[int, ...] = (100, 100, 100)


def make_encoder(n_in: int, n_out: int, hidden_layers: Sequence[int] = DEFAULT_HIDDEN_LAYERS) -> nn.Sequential:
    """``Linear(n_in, h1)-ReLU-...-Linear(h_last, n_out)``, Glorot-uniform weights and zero biases (Keras)."""
    widths = [int(n_in), *[int(h) for h in hidden_layers], int(n_out)]
    if any(w < 1 for w in widths):
        raise ValueError(f"`hidden_layers` must hold positive integers, got {list(hidden_layers)!r}.")
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        lin = nn.Linear(widths[i], widths[i + 1])
        nn.init.xavier_uniform_(lin.weight)
        nn.init.zeros_(lin.bias)
        layers.append(lin)
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def as_sequential(module: nn.Module, n_in: int, n_out: int) -> nn.Sequential:
    """Check a user's encoder and return it as a flat ``nn.Sequential`` of Linear and ReLU layers.

    The network must alternate Linear and ReLU layers and end with a Linear layer (CROWN needs a
    Linear/ReLU network; an output ReLU would clip coordinates at 0), take ``n_in`` inputs and give
    ``n_out`` outputs.
    """
    fix = "pass an nn.Sequential like nn.Sequential(nn.Linear(G, 100), nn.ReLU(), nn.Linear(100, 2))"
    try:
        leaves = linear_relu_layers(module)
    except TypeError as err:
        raise ValueError(f"`encoder` may contain only nn.Linear and nn.ReLU layers ({err}); {fix}.") from None
    leaves = [m for m in leaves if not isinstance(m, (nn.Identity, nn.Flatten))]
    if not leaves or not isinstance(leaves[-1], nn.Linear) or not isinstance(leaves[0], nn.Linear):
        raise ValueError(f"`encoder` must start and end with nn.Linear (no output activation); {fix}.")
    for a, b in zip(leaves, leaves[1:]):
        if isinstance(a, nn.ReLU) and isinstance(b, nn.ReLU):
            raise ValueError(f"`encoder` has two consecutive ReLU layers; {fix}.")
    lins = [m for m in leaves if isinstance(m, nn.Linear)]
    for a, b in zip(lins, lins[1:]):
        if a.out_features != b.in_features:
            raise ValueError(f"`encoder` layer sizes do not chain ({a.out_features} → {b.in_features}).")
    if lins[0].in_features != n_in:
        raise ValueError(f"`encoder` takes {lins[0].in_features} inputs but the data has {n_in} selected genes; "
                         f"build it with nn.Linear({n_in}, ...) or change `n_top_genes`.")
    if lins[-1].out_features != n_out:
        raise ValueError(f"`encoder` gives {lins[-1].out_features} outputs but `n_components={n_out}`.")
    if any(l.bias is None for l in lins):
        raise ValueError("`encoder` Linear layers must have biases (bias=True).")
    return nn.Sequential(*leaves)


def layer_widths(net: nn.Sequential) -> list[int]:
    """Widths ``[n_in, h1, ..., n_out]`` of a Linear/ReLU Sequential (enough to rebuild it)."""
    lins = [m for m in net if isinstance(m, nn.Linear)]
    return [lins[0].in_features] + [m.out_features for m in lins]


def rebuild(widths: Sequence[int]) -> nn.Sequential:
    """An (uninitialised-in-meaning) network with the given widths, to load a state dict into."""
    with torch.no_grad():
        return make_encoder(widths[0], widths[-1], widths[1:-1])


def with_batch_norm(net: nn.Sequential) -> nn.Sequential:
    """A training copy of ``net`` with ``BatchNorm1d`` after every hidden ``Linear`` (before its ReLU).

    Only for optimisation: :func:`fold_batch_norm` turns the result back into a plain Linear/ReLU
    network computing the same function."""
    layers: list[nn.Module] = []
    lins = [m for m in net if isinstance(m, nn.Linear)]
    for m in net:
        layers.append(m)
        if isinstance(m, nn.Linear) and m is not lins[-1]:
            bn = nn.BatchNorm1d(m.out_features, momentum=None)  # momentum=None: exact averages if used
            layers.append(bn.to(device=m.weight.device, dtype=m.weight.dtype))
    return nn.Sequential(*layers)


@torch.no_grad()
def fold_batch_norm(net: nn.Sequential, X: torch.Tensor, chunk: int = 65536) -> nn.Sequential:
    """Plain Linear/ReLU network equal to ``net`` (BatchNorm in training mode) *with the statistics of all
    of* ``X``: each ``BatchNorm1d`` is replaced by the affine map it applies when its batch is the whole
    of ``X`` (population mean and biased variance, accumulated chunk by chunk) and folded into the
    preceding ``Linear``."""
    out: list[nn.Module] = []
    h = [X[i:i + chunk] for i in range(0, X.shape[0], chunk)]
    for m in net:
        if isinstance(m, nn.BatchNorm1d):
            lin = out[-1]
            n = sum(part.shape[0] for part in h)
            mean = sum(part.double().sum(0) for part in h) / n
            var = sum(((part.double() - mean) ** 2).sum(0) for part in h) / n
            s = m.weight.double() / torch.sqrt(var + m.eps)
            new = nn.Linear(lin.in_features, lin.out_features).to(device=lin.weight.device, dtype=lin.weight.dtype)
            new.weight.copy_((lin.weight.double() * s[:, None]).to(lin.weight.dtype))
            new.bias.copy_(((lin.bias.double() - mean) * s + m.bias.double()).to(lin.bias.dtype))
            out[-1] = new
            h = [((part.double() - mean) * s + m.bias.double()).to(part.dtype) for part in h]
        else:
            layer = copy.deepcopy(m)
            out.append(layer)
            h = [layer(part) for part in h]
    return nn.Sequential(*out)


@torch.no_grad()
def fold_input_projection(net: nn.Sequential, components: torch.Tensor, scale: float) -> nn.Sequential:
    """``net`` applied to ``x @ components.T / scale`` as one network on ``x``: its first layer becomes
    ``Linear(n_genes, h)`` with weight ``W · components / scale`` (the same function up to rounding)."""
    first = net[0]
    comp = components.to(device=first.weight.device, dtype=torch.float64)
    new = nn.Linear(comp.shape[1], first.out_features).to(device=first.weight.device, dtype=first.weight.dtype)
    new.weight.copy_((first.weight.double() @ comp / float(scale)).to(first.weight.dtype))
    new.bias.copy_(first.bias)
    return nn.Sequential(new, *[copy.deepcopy(m) for m in net[1:]])
