"""Gene impact: how strongly each gene moves the embedding (gradients of the encoder w.r.t. its inputs)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._validation import check_choice
from ._inputs import model_inputs

__all__ = ["gene_impact"]


def gene_impact(model: Any, X: Any, *, layer: str | None = None, norm: str = "l1", missing_genes: str = "error",
                batch_size: int = 4096):
    """Per-gene impact ``I_g = Σ_c ‖∂f(x_c)/∂x_cg‖`` over the cells of ``X`` (see :meth:`RobustUMAP.gene_impact`)."""
    import pandas as pd

    check_choice(norm, "norm", ("l1", "l2"))
    model._check_fitted()
    device = next(model.encoder_.parameters()).device
    total = np.zeros(len(model.genes_), dtype=np.float64)
    for Z in model_inputs(model, X, layer, missing_genes, batch_size):
        x = torch.from_numpy(Z).to(device).requires_grad_(True)
        out = model.encoder_(x)
        jac = []
        for k in range(out.shape[1]):
            (g,) = torch.autograd.grad(out[:, k].sum(), x, retain_graph=k < out.shape[1] - 1)
            jac.append(g.detach().double())
        J = torch.stack(jac)  # (d, cells, genes)
        per = J.abs().sum(0) if norm == "l1" else J.pow(2).sum(0).sqrt()
        total += per.sum(0).cpu().numpy()
    return pd.Series(total, index=list(model.genes_), name="gene_impact")
