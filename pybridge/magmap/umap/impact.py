"""Gene impact: how strongly each gene moves the embedding (gradients of the encoder w.r.t. its inputs).

Both measures differentiate the encoder with respect to its *model inputs* (the units of ε and of the
certified radius): for a model that z-scores its genes, a gradient is the embedding's movement per
training standard deviation of the gene; for a centring-only model, per unit of normalised expression.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .._validation import check_choice, check_positive_int
from ._inputs import is_anndata, model_inputs

__all__ = ["jacobian", "gene_impact", "cell_gene_impact", "IMPACT_NORMS"]

#: Norms over the embedding dimensions of a gene's gradient.
IMPACT_NORMS = ("l1", "l2")


def jacobian(network: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-row Jacobian ``∂f(x_c)/∂x_c`` of ``network`` at the rows of ``x``, shape ``(n, n_out, n_in)``.

    Rows are independent, so the gradient of ``Σ_c f_k(x_c)`` gives row ``c``'s ``∂f_k/∂x_c`` for every
    ``c`` at once: one backward pass per output dimension.
    """
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        out = network(x)
        rows = []
        for k in range(out.shape[1]):
            (g,) = torch.autograd.grad(out[:, k].sum(), x, retain_graph=k < out.shape[1] - 1)
            rows.append(g)
    return torch.stack(rows, dim=1).detach()


def _norm(J: torch.Tensor, norm: str) -> torch.Tensor:
    """``‖J[:, :, g]‖`` over the output axis (axis 1) of a ``(n, n_out, n_in)`` Jacobian."""
    return J.abs().sum(1) if norm == "l1" else J.pow(2).sum(1).sqrt()


def _device(model: Any) -> torch.device:
    return next(model.encoder_.parameters()).device


def gene_impact(model: Any, X: Any, *, layer: str | None = None, norm: str = "l1", missing_genes: str = "error",
                batch_size: int = 4096):
    """Per-gene impact ``I_g = Σ_c ‖∂f(x_c)/∂x_cg‖`` over the cells of ``X`` (see :meth:`RobustUMAP.gene_impact`)."""
    import pandas as pd

    check_choice(norm, "norm", IMPACT_NORMS)
    model._check_fitted()
    device = _device(model)
    total = np.zeros(len(model.genes_), dtype=np.float64)
    for Z in model_inputs(model, X, layer, missing_genes, batch_size):
        J = jacobian(model.encoder_, torch.from_numpy(Z).to(device)).double()
        total += _norm(J, norm).sum(0).cpu().numpy()
    return pd.Series(total, index=list(model.genes_), name="gene_impact")


def cell_gene_impact(model: Any, X: Any, *, n_top: int = 10, norm: str = "l2", layer: str | None = None,
                     missing_genes: str = "error", batch_size: int = 2048):
    """The ``n_top`` genes that move each cell's embedding most (see :meth:`RobustUMAP.cell_gene_impact`)."""
    import pandas as pd

    check_choice(norm, "norm", IMPACT_NORMS)
    n_top = check_positive_int(n_top, "n_top")
    model._check_fitted()
    device = _device(model)
    genes = np.asarray(model.genes_, dtype=object)
    k = min(n_top, genes.size)
    idx, val = [], []
    for Z in model_inputs(model, X, layer, missing_genes, batch_size):
        imp = _norm(jacobian(model.encoder_, torch.from_numpy(Z).to(device)).double(), norm)
        # ties (e.g. genes with zero gradient) are ordered by gene position so the result is deterministic
        order = np.argsort(-imp.cpu().numpy(), axis=1, kind="stable")[:, :k]
        idx.append(order)
        val.append(np.take_along_axis(imp.cpu().numpy(), order, axis=1))
    order = np.concatenate(idx) if idx else np.zeros((0, k), dtype=np.int64)
    impact = np.concatenate(val) if val else np.zeros((0, k))
    n = order.shape[0]
    cells = np.asarray([str(c) for c in X.obs_names], dtype=object) if is_anndata(X) else np.arange(n)
    return pd.DataFrame({
        "cell": np.repeat(cells, k),
        "rank": np.tile(np.arange(1, k + 1), n),
        "gene": genes[order.ravel()].astype(str),
        "impact": impact.ravel(),
    })
