"""Perturbation curves (robin's ``robinRobust`` fast "independent" path).

For every level p (percent of the edge count m) and every repeat, an independent perturbed copy of
the **original** graph is drawn with ``z_p = round(p·m/100)`` rewiring trials (Python's ``round``
halves to even, like R's), partitioned, and compared with the partition of the unperturbed graph.
The null graph gets the same ``z_p``. Column 0 (no perturbation) is all zeros.

Reproducibility (an improvement on robin): each (curve, level, repeat) task draws from its own
generator seeded from ``(seed, task key)``, so the curves depend on the seed only, never on
``n_jobs`` or scheduling.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import igraph as ig
import numpy as np

from .._utils import progress
from .communities import membership
from .measures import normalised_distance
from .null import igraph_rng, perturb, task_seed

__all__ = ["DEFAULT_LEVELS", "trial_counts", "partition", "robust_curves", "compare_curves"]

#: robin's hard-coded perturbation levels, in percent of the edge count.
DEFAULT_LEVELS: tuple[int, ...] = (5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60)

# Task-key roots (never change them: they define what a seed means).
_K_INIT, _K_REAL, _K_NULL, _K_CMP = 0, 1, 2, 3


def trial_counts(n_edges: int, levels: Sequence[float] = DEFAULT_LEVELS) -> list[int]:
    """Rewiring trials per level: ``round(p · m / 100)`` with round-half-to-even (robin's ``z_p``).

    >>> trial_counts(613)[:4]
    [31, 61, 92, 123]
    """
    return [int(round(p * n_edges / 100)) for p in levels]


def partition(g: ig.Graph, method: str | Callable[..., Any], method_args: dict[str, Any], seed: int) -> list[int]:
    """Membership of ``g`` under ``method``, with igraph drawing from a generator seeded by ``seed``."""
    with igraph_rng(seed):
        return membership(g, method, method_args)


def _robust_chunk(graphs, refs, tasks, z, weighted, method, method_args, measure, n, seed):
    out = []
    for kind, li, rep in tasks:
        with igraph_rng(task_seed(seed, kind, li, rep)) as rng:
            h = perturb(graphs[kind - 1], z[li], weighted, rng)
            memb = membership(h, method, method_args)
        out.append((kind, li, rep, normalised_distance(memb, refs[kind - 1], measure, n)))
    return out


def _compare_chunk(g, refs, tasks, z, weighted, methods, methods_args, measure, n, seed):
    out = []
    for li, rep in tasks:
        with igraph_rng(task_seed(seed, _K_CMP, li, rep)) as rng:
            h = perturb(g, z[li], weighted, rng)
            d = [normalised_distance(membership(h, m, a), r, measure, n) for m, a, r in zip(methods, methods_args, refs)]
        out.append((li, rep, d[0], d[1]))
    return out


def _run(fn, fixed: tuple, tasks: list, n_jobs: int, verbose: bool, desc: str) -> list:
    """Run ``fn(*fixed[:2], chunk, *fixed[2:])`` over chunks of ``tasks``, in order, with a progress bar."""
    if n_jobs == 1:
        size = 1
    else:
        from joblib import effective_n_jobs

        size = math.ceil(len(tasks) / min(len(tasks), 4 * effective_n_jobs(n_jobs)))
    chunks = [tasks[i:i + size] for i in range(0, len(tasks), size)]
    results: list = []
    bar = progress(total=len(tasks), verbose=verbose, desc=desc, leave=False)
    try:
        if n_jobs == 1:
            for ch in chunks:
                results.extend(fn(*fixed[:2], ch, *fixed[2:]))
                bar.update(len(ch))
        else:
            from joblib import Parallel, delayed

            par = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator")
            for res in par(delayed(fn)(*fixed[:2], ch, *fixed[2:]) for ch in chunks):
                results.extend(res)
                bar.update(len(res))
    finally:
        bar.close()
    return results


def robust_curves(
    g: ig.Graph,
    g_null: ig.Graph,
    ref_real: list[int],
    ref_null: list[int],
    *,
    method: str | Callable[..., Any],
    method_args: dict[str, Any],
    measure: str,
    levels: Sequence[float],
    n_repeats: int,
    weighted: str | None,
    seed: int,
    n_jobs: int = 1,
    verbose: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """``(curve_real, curve_null)``: two ``n_repeats × (1 + len(levels))`` matrices, column 0 zeros."""
    z = trial_counts(g.ecount(), levels)
    tasks = [(kind, li, rep) for kind in (_K_REAL, _K_NULL) for li in range(len(levels)) for rep in range(n_repeats)]
    res = _run(_robust_chunk, ((g, g_null), (ref_real, ref_null), z, weighted, method, method_args, measure,
                               g.vcount(), seed), tasks, n_jobs, verbose, "robin")
    curves = np.zeros((2, n_repeats, len(levels) + 1))
    for kind, li, rep, d in res:
        curves[kind - 1, rep, li + 1] = d
    return curves[0], curves[1]


def compare_curves(
    g: ig.Graph,
    refs: tuple[list[int], list[int]],
    *,
    methods: tuple[Any, Any],
    methods_args: tuple[dict[str, Any], dict[str, Any]],
    measure: str,
    levels: Sequence[float],
    n_repeats: int,
    weighted: str | None,
    seed: int,
    n_jobs: int = 1,
    verbose: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """robinCompare curves: one perturbed graph per (level, repeat), both methods applied to it."""
    z = trial_counts(g.ecount(), levels)
    tasks = [(li, rep) for li in range(len(levels)) for rep in range(n_repeats)]
    res = _run(_compare_chunk, (g, refs, z, weighted, methods, methods_args, measure, g.vcount(), seed),
               tasks, n_jobs, verbose, "robin compare")
    c1 = np.zeros((n_repeats, len(levels) + 1))
    c2 = np.zeros_like(c1)
    for li, rep, d1, d2 in res:
        c1[rep, li + 1] = d1
        c2[rep, li + 1] = d2
    return c1, c2
