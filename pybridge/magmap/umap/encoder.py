"""The encoder network: a Linear/ReLU MLP with a linear output (no activation on the output layer)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["DEFAULT_HIDDEN_LAYERS", "make_encoder", "as_sequential", "layer_widths"]

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
    leaves = [m for m in module.modules() if len(list(m.children())) == 0]
    leaves = [m for m in leaves if not isinstance(m, (nn.Identity, nn.Flatten))]
    bad = [type(m).__name__ for m in leaves if not isinstance(m, (nn.Linear, nn.ReLU))]
    fix = "pass an nn.Sequential like nn.Sequential(nn.Linear(G, 100), nn.ReLU(), nn.Linear(100, 2))"
    if bad:
        raise ValueError(f"`encoder` may contain only nn.Linear and nn.ReLU layers, found {sorted(set(bad))}; {fix}.")
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
