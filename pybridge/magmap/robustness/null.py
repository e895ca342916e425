"""Null model and perturbations: degree-preserving rewiring as robin/igraph does it.

Unweighted (default): ``n`` rewiring *trials* in igraph's "simple" mode (R:
``rewire(g, keeping_degseq(loops=FALSE, niter=n))``). A trial swaps the ends of two random edges
and is rejected (but counted) when it would create a loop or a multi-edge; existing loops stay.
robin's null graph uses ``n = m`` trials (m = edge count), which changes about 3/4 of the edges:
a partially rewired graph, not a configuration-model sample.

Weighted (opt-in, robin 2.1 ``rewire.w.type``):

* ``"rewire"`` — the same rewiring; the new edges receive a random permutation of the weights of
  the removed edges; untouched edges keep theirs.
* ``"shuffle"`` — topology unchanged; the weights of two random disjoint sets of ⌈n/2⌉ edges are
  swapped pairwise.
* ``"perturbr"`` — robin 2.0.0 (CRAN) weighted path, perturbR's ``rewireR``: the null graph gives every
  vertex pair a geometric weight (successes before the first failure, success probability
  p* = 2W / (N(N−1) + 2W), W the total weight; draws above the maximum weight are redrawn); a
  perturbation permutes the weights of ``n`` random vertex pairs, non-edges included. Written from
  perturbR's documented behaviour; self-loops are left unchanged.

The null model is ``"rewire"`` with m trials (robin 2.1's ``random()`` default) for ``"rewire"`` and
``"shuffle"``, and the geometric model for ``"perturbr"``.
"""
from __future__ import annotations

import math
import random
from collections.abc import Iterator
from contextlib import contextmanager

import igraph as ig
import numpy as np

__all__ = ["WEIGHTED_TYPES", "rewire", "random_graph", "null_graph", "perturb", "igraph_rng", "task_seed"]

WEIGHTED_TYPES: tuple[str, ...] = ("rewire", "shuffle", "perturbr")


def task_seed(seed: int, *key: int) -> int:
    """A 64-bit seed for one task, derived from the run ``seed`` and an integer ``key`` path.

    The derivation does not depend on the order or the process in which tasks run, which makes
    results independent of ``n_jobs``.
    """
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=tuple(int(k) for k in key))
    return int(ss.generate_state(1, dtype=np.uint64)[0])


@contextmanager
def igraph_rng(seed: int) -> Iterator[random.Random]:
    """Make igraph draw from ``random.Random(seed)`` inside the block (restoring the default after)."""
    rng = random.Random(seed)
    ig.set_random_number_generator(rng)
    try:
        yield rng
    finally:
        ig.set_random_number_generator(random)


def _edge_key(e: tuple[int, int]) -> tuple[int, int]:
    a, b = e
    return (a, b) if a <= b else (b, a)


def rewire(g: ig.Graph, n_trials: int) -> ig.Graph:
    """A copy of ``g`` after ``n_trials`` degree-preserving rewiring trials (igraph "simple" mode).

    Uses igraph's current random number generator (seed it with ``igraph.set_random_number_generator``).
    Edge attributes are dropped; see :func:`perturb` for the weighted variants.
    """
    h = ig.Graph(n=g.vcount(), edges=g.get_edgelist(), directed=False)
    if n_trials > 0:
        h.rewire(n=int(n_trials), allowed_edge_types="simple")
    return h


def _weighted_rewire(g: ig.Graph, n_trials: int, rng: random.Random) -> ig.Graph:
    old = {}
    for e, w in zip(g.get_edgelist(), g.es["weight"]):
        old.setdefault(_edge_key(e), []).append(w)
    h = rewire(g, n_trials)
    new_edges = [_edge_key(e) for e in h.get_edgelist()]
    remaining = {k: list(v) for k, v in old.items()}
    weights: list[float | None] = []
    fresh: list[int] = []
    for i, k in enumerate(new_edges):
        if remaining.get(k):
            weights.append(remaining[k].pop())
        else:
            weights.append(None)
            fresh.append(i)
    removed = [w for ws in remaining.values() for w in ws]
    rng.shuffle(removed)
    for i, w in zip(fresh, removed):
        weights[i] = w
    h.es["weight"] = weights
    return h


def _shuffle_weights(g: ig.Graph, n_trials: int, rng: random.Random) -> ig.Graph:
    h = g.copy()
    w = list(h.es["weight"])
    k = min(math.ceil(n_trials / 2), len(w) // 2)
    if k > 0:
        idx = rng.sample(range(len(w)), 2 * k)
        for i, j in zip(idx[:k], idx[k:]):
            w[i], w[j] = w[j], w[i]
    h.es["weight"] = w
    return h


def _pair_index(k: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode linear indices of the strict upper triangle (row-major) into (i, j) pairs."""
    k = np.asarray(k, dtype=np.int64)
    i = n - 2 - np.floor(np.sqrt(-8.0 * k + 4.0 * n * (n - 1) - 7) / 2.0 - 0.5).astype(np.int64)
    j = k + i + 1 - n * (n - 1) // 2 + (n - i) * ((n - i) - 1) // 2
    return i, j


def _weighted_graph(n: int, pairs: dict[tuple[int, int], float]) -> ig.Graph:
    items = sorted((k, w) for k, w in pairs.items() if w != 0)
    h = ig.Graph(n=n, edges=[k for k, _ in items], directed=False)
    h.es["weight"] = [float(w) for _, w in items]
    return h


def _pair_permute(g: ig.Graph, n_trials: int, rng: random.Random) -> ig.Graph:
    n = g.vcount()
    n_pairs = n * (n - 1) // 2
    z = min(int(n_trials), n_pairs)
    pairs = {_edge_key(e): w for e, w in zip(g.get_edgelist(), g.es["weight"])}
    if z > 1:
        gen = np.random.default_rng(rng.getrandbits(64))
        idx = gen.choice(n_pairs, size=z, replace=False)
        ii, jj = _pair_index(idx, n)
        keys = list(zip(ii.tolist(), jj.tolist()))
        w = [pairs.get(k, 0.0) for k in keys]
        for k, v in zip(keys, gen.permutation(np.asarray(w, dtype=float)).tolist()):
            pairs[k] = v
    return _weighted_graph(n, pairs)


def _geometric_null(g: ig.Graph, rng: random.Random) -> ig.Graph:
    n = g.vcount()
    loops = {_edge_key(e): w for e, w in zip(g.get_edgelist(), g.es["weight"]) if e[0] == e[1]}
    w_all = np.asarray([w for e, w in zip(g.get_edgelist(), g.es["weight"]) if e[0] != e[1]], dtype=float)
    total, w_max = float(w_all.sum()), float(w_all.max(initial=0.0))
    n_pairs = n * (n - 1) // 2
    p_star = 2 * total / (n * (n - 1) + 2 * total)
    gen = np.random.default_rng(rng.getrandbits(64))
    draws = gen.geometric(1 - p_star, size=n_pairs) - 1.0
    bad = draws > w_max
    while bad.any():
        draws[bad] = gen.geometric(1 - p_star, size=int(bad.sum())) - 1.0
        bad = draws > w_max
    nz = np.flatnonzero(draws)
    ii, jj = _pair_index(nz, n)
    pairs = dict(zip(zip(ii.tolist(), jj.tolist()), draws[nz].tolist()))
    pairs.update(loops)
    return _weighted_graph(n, pairs)


def null_graph(g: ig.Graph, weighted: str | None, rng: random.Random) -> ig.Graph:
    """robin's null graph for the chosen path: m rewiring trials, or the geometric model (``"perturbr"``)."""
    if weighted == "perturbr":
        return _geometric_null(g, rng)
    return perturb(g, g.ecount(), "rewire" if weighted else None, rng)


def perturb(g: ig.Graph, n_trials: int, weighted: str | None, rng: random.Random) -> ig.Graph:
    """Perturb ``g`` with ``n_trials`` trials: plain rewiring, or a weighted scheme (see the module notes).

    ``rng`` must also be igraph's current generator so a task is reproducible from one seed.
    """
    if weighted is None:
        return rewire(g, n_trials)
    if weighted == "rewire":
        return _weighted_rewire(g, n_trials, rng)
    if weighted == "shuffle":
        return _shuffle_weights(g, n_trials, rng)
    if weighted == "perturbr":
        return _pair_permute(g, n_trials, rng)
    raise ValueError(f"`weighted` must be one of {list(WEIGHTED_TYPES)}, got {weighted!r}.")


def random_graph(g: ig.Graph, *, weighted: str | None = None, random_state: int | None = None) -> ig.Graph:
    """robin's ``random()``: the null graph, ``m`` rewiring trials of ``g`` (m = edge count).

    Parameters
    ----------
    g
        Undirected graph (loops are kept, not created).
    weighted
        ``None`` for the unweighted path; ``"perturbr"`` for the geometric (robin 2.0.0) model; any
        other weighted type uses the weighted ``"rewire"`` scheme.
    random_state
        Seed; ``None`` uses fresh entropy.

    Returns
    -------
    igraph.Graph
        Same vertex count, degree sequence and edge count as ``g``.
    """
    seed = int(np.random.SeedSequence(random_state).generate_state(1, dtype=np.uint64)[0])
    with igraph_rng(seed) as rng:
        return null_graph(g, weighted, rng)
