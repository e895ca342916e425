"""Front doors: :func:`robin` (real graph vs null model) and :func:`compare` (two methods)."""
from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import igraph as ig
import numpy as np

from .._utils import versions
from .._validation import check_positive_int
from ._graph_input import as_graph, resolve_weighted
from .auc import auc as _auc
from .communities import canonical_method
from .gp import gp_test
from .measures import canonical_measure
from .null import igraph_rng, null_graph, task_seed
from .perturb import _K_CMP, _K_INIT, _K_NULL, _K_REAL, DEFAULT_LEVELS, curves, partition, trial_counts
from ..rbridge.robin import robin_available, robin_in_r
from .result import RobinResult

__all__ = ["robin", "compare"]

logger = logging.getLogger("magmap")


def _seed(random_state: int | np.random.Generator | None) -> int:
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)) or random_state < 0:
        raise ValueError(f"`random_state` must be None, a non-negative int or a numpy Generator, got {random_state!r}.")
    return int(random_state)


def _levels(levels: Sequence[float]) -> list[float]:
    lv = [float(p) for p in levels]
    if not lv or any(not 0 < p <= 100 for p in lv) or any(b <= a for a, b in zip(lv, lv[1:])):
        raise ValueError(f"`levels` must be increasing percentages in (0, 100], got {list(levels)!r}.")
    return [int(p) if p.is_integer() else p for p in lv]


def _type(type: str) -> str:
    if type == "independent":
        return type
    if type == "dependent":
        raise NotImplementedError(
            "type='dependent' (robin's legacy cumulative procedure) is not implemented in the "
            "Python backend; use type='independent' (robin's default)."
        )
    raise ValueError(f"`type` must be 'independent' (or robin's legacy 'dependent'), got {type!r}.")


def _method_name(m: str | Callable[..., Any]) -> str:
    return m if isinstance(m, str) else getattr(m, "__name__", "other")


def _check_partition(memb: list[int], what: str) -> None:
    k = len(set(memb))
    if k == len(memb):
        warnings.warn(f"The partition of the {what} is all singletons ({k} communities); the test is degenerate.",
                      RuntimeWarning, stacklevel=3)
    elif k == 1:
        warnings.warn(f"The partition of the {what} is a single community; the test is degenerate.",
                      RuntimeWarning, stacklevel=3)


def _common(n_repeats: int, levels: Sequence[float], measure: str, type: str, n_jobs: int):
    n_repeats = check_positive_int(n_repeats, "n_repeats", minimum=2)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        raise ValueError(f"`n_jobs` must be a non-zero int (-1 for all cores), got {n_jobs!r}.")
    return n_repeats, _levels(levels), canonical_measure(measure), _type(type)


def robin(
    graph: Any,
    *,
    method: str | Callable[..., Any] = "louvain",
    measure: str = "vi",
    type: str = "independent",
    n_repeats: int = 10,
    levels: Sequence[float] = DEFAULT_LEVELS,
    null: Any | None = None,
    weighted: bool | str | None = None,
    key: str | None = None,
    axis: str = "obs",
    random_state: int | np.random.Generator | None = None,
    n_jobs: int = 1,
    verbose: bool = True,
    backend: str = "python",
    **method_args: Any,
) -> RobinResult:
    """Robustness of a graph's community structure against a null model, as R's robin measures it.

    Implements ``random()`` + ``robinRobust()`` + ``robinGPTest()`` + ``robinAUC()``: the graph and
    a degree-preserving rewired null graph (m rewiring trials) are each partitioned; then for each
    level p in ``levels`` (percent of the edge count m) and each repeat, an independent copy with
    ``round(p·m/100)`` rewiring trials is partitioned and compared with the unperturbed partition.

    Parameters
    ----------
    graph
        Undirected graph: scipy sparse (or dense) symmetric adjacency, ``igraph.Graph``, networkx
        graph, or AnnData with ``key``. Self-loops are kept (robin does not remove them unless
        ``prepGraph`` is called; see :func:`~magmap.robustness.prep_graph`).
    method
        ``"louvain"`` (default), ``"leiden"`` (modularity objective, resolution 1 — not
        python-igraph's CPM default), ``"walktrap"``, ``"fastgreedy"``, ``"infomap"``,
        ``"label_propagation"``, ``"edge_betweenness"``, ``"leading_eigen"``, ``"spinglass"``,
        ``"optimal"`` (robin's spellings such as ``"fastGreedy"`` work), or a callable
        ``f(igraph.Graph, **method_args)`` returning a clustering or membership. Note: robin's own
        default is walktrap; magmap defaults to louvain.
    measure
        ``"vi"`` (VI / log2 N, natural-log VI as robin), ``"nmi"`` (1 − NMI), ``"split_join"``
        (SJ / 2N) or ``"ari"`` ((1 − ARI) / 2).
    type
        ``"independent"`` (robin's default; the legacy ``"dependent"`` is not implemented).
    n_repeats
        Repeats per level (robin: 10).
    levels
        Perturbation levels in percent (robin: 5, 10, …, 60).
    null
        Optional null graph (any accepted input type) with the same vertex count; default: robin's
        ``random()`` (m rewiring trials of ``graph``).
    weighted
        ``None``/``False``: unweighted robin path (weights ignored; ``None`` logs a warning if the
        input has non-uniform weights). ``True``/``"rewire"``: weighted rewiring that carries the
        removed edges' weights over to new edges; ``"shuffle"``: swap weights between edges;
        ``"perturbr"``: robin 2.0.0's (CRAN) geometric null and pair-weight permutation.
    key, axis
        For AnnData: the ``obsp`` (``axis="obs"``) or ``varp`` (``axis="var"``) entry.
    random_state
        Seed. ``None`` draws one (recorded in ``params["seed"]``). The same seed gives identical
        curves whatever ``n_jobs`` is (robin itself is not reproducible).
    n_jobs
        Parallel processes over (level, repeat) tasks (joblib/loky); ``-1`` for all cores.
    verbose
        Show a progress bar (on an interactive terminal; ``MAGMAP_PROGRESS=1`` forces it,
        ``MAGMAP_QUIET=1`` silences it).
    backend
        ``"python"`` (default): this implementation, reproducible with a seed. ``"robin"``: the CRAN
        robin package in R through rpy2 (robin's own defaults: 10 repeats, levels 5–60 %, its
        ``random()`` null; not reproducible across machines). ``"auto"``: robin when R has it, else
        Python. ``result.backend`` records which ran.
    **method_args
        Passed to the igraph community function (e.g. ``resolution=2``).

    Returns
    -------
    RobinResult
        ``curve_real``/``curve_null`` (``n_repeats × (1 + len(levels))``), ``levels``,
        ``bayes_factor`` (**natural-log** marginal-likelihood ratio, exactly robin's number),
        ``auc`` (real, null), ``communities_real``/``communities_null``, ``gp``, ``params``,
        ``backend="python"``; ``.plot()``, ``.to_dict()``.

    Raises
    ------
    ValueError
        Unknown method/measure/type, directed or empty graph, null graph of another size.
    KeyError
        AnnData ``key`` not found.
    """
    n_repeats, lv, measure, type = _common(n_repeats, levels, measure, type, n_jobs)
    if backend not in ("python", "robin", "auto"):
        raise ValueError(f"`backend` must be 'python', 'robin' or 'auto', got {backend!r}.")
    if backend == "robin" or (backend == "auto" and robin_available()):
        custom = [name for name, changed in (("null", null is not None), ("method_args", bool(method_args)),
                  ("n_repeats", n_repeats != 10), ("levels", lv != list(DEFAULT_LEVELS))) if changed]
        if custom:
            raise ValueError(f"backend='robin' runs robin's defaults only; {custom} cannot be passed to it. "
                             "Use backend='python'.")
        return robin_in_r(graph, method=method if isinstance(method, str) else "", measure=measure, type=type,
                          weighted=weighted, seed=None if random_state is None else _seed(random_state),
                          key=key, axis=axis)
    method = canonical_method(method)
    seed = _seed(random_state)
    g = as_graph(graph, key=key, axis=axis)
    scheme = resolve_weighted(g, weighted)
    if null is None:
        with igraph_rng(task_seed(seed, _K_INIT, 1)) as rng:
            g_null = null_graph(g, scheme, rng)
        null_kind = "rewired"
    else:
        g_null = as_graph(null, name="null")
        resolve_weighted(g_null, scheme if scheme else False)
        if g_null.vcount() != g.vcount():
            raise ValueError(f"`null` has {g_null.vcount()} vertices but `graph` has {g.vcount()}; they must match.")
        null_kind = "supplied"
    ref_real = partition(g, method, method_args, task_seed(seed, _K_INIT, 0))
    ref_null = partition(g_null, method, method_args, task_seed(seed, _K_INIT, 2))
    _check_partition(ref_real, "real graph")
    _check_partition(ref_null, "null graph")
    logger.info("robin: %d vertices, %d edges, method=%s, measure=%s, seed=%d", g.vcount(), g.ecount(),
                _method_name(method), measure, seed)
    A, B = curves([(g, _K_REAL, [(method, method_args, ref_real)]), (g_null, _K_NULL, [(method, method_args, ref_null)])],
                  measure=measure, levels=lv, n_repeats=n_repeats, weighted=scheme, seed=seed, n_jobs=n_jobs,
                  verbose=verbose)
    return _result(A, B, lv, ("real data", "null model"), "robust", (_method_name(method),), measure, type,
                   ref_real, ref_null, g, scheme, seed, n_repeats, n_jobs,
                   {"method_args": method_args, "null": null_kind})


def compare(
    graph: Any,
    *,
    method1: str | Callable[..., Any],
    method2: str | Callable[..., Any],
    args1: dict[str, Any] | None = None,
    args2: dict[str, Any] | None = None,
    measure: str = "vi",
    type: str = "independent",
    n_repeats: int = 10,
    levels: Sequence[float] = DEFAULT_LEVELS,
    weighted: bool | str | None = None,
    key: str | None = None,
    axis: str = "obs",
    random_state: int | np.random.Generator | None = None,
    n_jobs: int = 1,
    verbose: bool = True,
) -> RobinResult:
    """Compare the robustness of two community methods on one graph (robin's ``robinCompare``).

    No null graph: each perturbed graph (one per level and repeat) is partitioned by both methods,
    each compared with its own partition of the unperturbed graph. The Bayes factor and AUC then
    contrast method 1 (``curve_real``) with method 2 (``curve_null``); ``labels`` are the method
    names.

    Parameters
    ----------
    graph, measure, type, n_repeats, levels, weighted, key, axis, random_state, n_jobs, verbose
        As in :func:`robin`.
    method1, method2
        Community methods (names or callables, see :func:`robin`).
    args1, args2
        Extra arguments for each method (robin's ``args1``/``args2``).

    Returns
    -------
    RobinResult
        With ``mode="compare"``; ``curve_real``/``curve_null`` are robin's ``Mean1``/``Mean2`` and
        ``bayes_factor`` is on the natural-log scale.
    """
    n_repeats, lv, measure, type = _common(n_repeats, levels, measure, type, n_jobs)
    m1, m2 = canonical_method(method1), canonical_method(method2)
    a1, a2 = dict(args1 or {}), dict(args2 or {})
    seed = _seed(random_state)
    g = as_graph(graph, key=key, axis=axis)
    scheme = resolve_weighted(g, weighted)
    ref1 = partition(g, m1, a1, task_seed(seed, _K_INIT, 0))
    ref2 = partition(g, m2, a2, task_seed(seed, _K_INIT, 3))
    _check_partition(ref1, "graph by method1")
    _check_partition(ref2, "graph by method2")
    A, B = curves([(g, _K_CMP, [(m1, a1, ref1), (m2, a2, ref2)])], measure=measure, levels=lv, n_repeats=n_repeats,
                  weighted=scheme, seed=seed, n_jobs=n_jobs, verbose=verbose, desc="robin compare")
    names = (_method_name(m1), _method_name(m2))
    return _result(A, B, lv, names, "compare", names, measure, type, ref1, ref2, g, scheme, seed, n_repeats,
                   n_jobs, {"args1": a1, "args2": a2})


def _result(A, B, lv, labels, mode, methods, measure, type, ref_a, ref_b, g: ig.Graph, scheme, seed, n_repeats,
            n_jobs, extra) -> RobinResult:
    levels = np.asarray([0] + list(lv), dtype=float)
    gp = gp_test(A, B, levels=levels)
    params = {
        "seed": seed, "n_repeats": n_repeats, "levels": list(lv), "trial_counts": trial_counts(g.ecount(), lv),
        "weighted": scheme, "n_vertices": g.vcount(), "n_edges": g.ecount(), "n_jobs": int(n_jobs),
        **extra, "versions": versions(),
    }
    return RobinResult(curve_real=A, curve_null=B, levels=levels, bayes_factor=gp.bayes_factor,
                       auc=_auc(A, B, levels=levels), labels=labels, mode=mode, methods=methods, measure=measure,
                       type=type, communities_real=list(ref_a), communities_null=list(ref_b), gp=gp.to_dict(),
                       params=params)
