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

__all__ = ["DEFAULT_LEVELS", "trial_counts", "partition", "curves"]

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


def _chunk(arms, tasks, z, weighted, measure, n, seed):
    out = []
    for ai, li, rep in tasks:
        g, root, uses = arms[ai]
        with igraph_rng(task_seed(seed, root, li, rep)) as rng:
            h = perturb(g, z[li], weighted, rng)
            d = [normalised_distance(membership(h, m, a), ref, measure, n) for m, a, ref in uses]
        out.append((ai, li, rep, d))
    return out


def _run(arms, tasks: list, rest: tuple, n_jobs: int, verbose: bool, desc: str) -> list:
    """Run :func:`_chunk` over chunks of ``tasks``, in order, with a progress bar."""
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
                results.extend(_chunk(arms, ch, *rest))
                bar.update(len(ch))
        else:
            from joblib import Parallel, delayed

            par = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator")
            for res in par(delayed(_chunk)(arms, ch, *rest) for ch in chunks):
                results.extend(res)
                bar.update(len(res))
    finally:
        bar.close()
    return results


def curves(
    arms: Sequence[tuple[ig.Graph, int, Sequence[tuple[Any, dict[str, Any], list[int]]]]],
    *,
    measure: str,
    levels: Sequence[float],
    n_repeats: int,
    weighted: str | None,
    seed: int,
    n_jobs: int = 1,
    verbose: bool = True,
    desc: str = "robin",
) -> list[np.ndarray]:
    """Perturbation curves, one ``n_repeats × (1 + len(levels))`` matrix (column 0 zeros) per method use.

    ``arms`` are ``(graph, key root, uses)``; each (level, repeat) draws one perturbed copy of ``graph``
    from the generator of ``(seed, key root, level, repeat)``, and every ``(method, method_args,
    reference membership)`` in ``uses`` partitions it. robin's real-vs-null test is two arms with one
    use each (roots ``_K_REAL``, ``_K_NULL``); robinCompare is one arm (``_K_CMP``) with two uses.
    The trial counts ``z_p`` come from the first arm's graph and apply to every arm. Curves come in
    the order of the arms, then of their uses.
    """
    g = arms[0][0]
    z = trial_counts(g.ecount(), levels)
    tasks = [(ai, li, rep) for ai in range(len(arms)) for li in range(len(levels)) for rep in range(n_repeats)]
    res = _run(arms, tasks, (z, weighted, measure, g.vcount(), seed), n_jobs, verbose, desc)
    offsets = np.cumsum([0] + [len(uses) for _, _, uses in arms])
    out = np.zeros((int(offsets[-1]), n_repeats, len(levels) + 1))
    for ai, li, rep, d in res:
        out[offsets[ai]:offsets[ai + 1], rep, li + 1] = d
    return list(out)
