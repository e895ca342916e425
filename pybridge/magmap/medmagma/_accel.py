"""Anderson acceleration of the EM on the scalings of the fiber mode.

Without the Laplace term, one fast-mode EM iteration is a map of the scalings alone: ``s ↦ z*(s) ↦ Ψ
(M-step) ↦ s'`` (the flip-flop from ``s`` under that Ψ). Its fixed points are the EM fixed points, and
on count data it contracts slowly (ratio 0.75–0.9 per iteration). Anderson mixing of the last few
iterates (in log space, each axis centred: the scalings' scale is a gauge) changes only the path.
Measurements in ``docs/medmagma.md`` ("Many cells").
"""
from __future__ import annotations

import torch

__all__ = ["Anderson"]


class Anderson:
    """Type-II Anderson mixing with memory ``m`` and a restart when the residual grows.

    ``step(x, fx)`` takes the current iterate ``x`` and the map's value ``fx = F(x)`` and returns the
    next iterate. Vectors are 1-D tensors (the two axes' centred log-scalings, concatenated).
    """

    def __init__(self, m: int = 5, restart_growth: float = 2.0, regularization: float = 1e-10) -> None:
        self.m = m
        self.restart_growth = restart_growth
        self.reg = regularization
        self.xs: list[torch.Tensor] = []
        self.fs: list[torch.Tensor] = []
        self.best = float("inf")
        self.restarts = 0

    def step(self, x: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
        res = fx - x
        norm = float(torch.linalg.norm(res))
        if self.xs and norm > self.restart_growth * self.best:
            self.xs, self.fs = [], []  # mixing went astray: start again from the plain iterate
            self.restarts += 1
            self.best = norm
            self.xs.append(x)
            self.fs.append(fx)
            return fx
        self.best = min(self.best, norm)
        self.xs.append(x)
        self.fs.append(fx)
        if len(self.xs) > self.m + 1:
            self.xs.pop(0)
            self.fs.pop(0)
        if len(self.xs) < 2:
            return fx
        g = torch.stack([f - xx for f, xx in zip(self.fs, self.xs)], dim=1)  # residuals, oldest first
        dg = g[:, 1:] - g[:, :-1]
        df = torch.stack(self.fs, dim=1)
        df = df[:, 1:] - df[:, :-1]
        gram = dg.T @ dg
        gram.diagonal().add_(self.reg * float(gram.diagonal().max()) + 1e-300)
        gamma = torch.linalg.solve(gram, dg.T @ g[:, -1])
        return fx - df @ gamma
