"""Partition distances with robin's normalisation.

Every value is a distance in which 0 means "partition unchanged"; ``N`` is the vertex count of the
*real* graph (also used for the null graph):

=============  ==================  =========================================================
measure        raw (igraph)        normalised (robin ≥ 1.1)
=============  ==================  =========================================================
``vi``         VI (Meilă 2007),    VI / log2(N) — natural-log VI over a base-2 log, so the
               natural logs        maximum is ln 2 ≈ 0.693 (robin's quirk, replicated)
``nmi``        NMI (Danon 2005)    1 − NMI
``split_join`` split-join          SJ / (2N); SJ is the *sum* of both projection distances
               (van Dongen 2000)
``ari``        ARI (Hubert &       (1 − ARI) / 2; NaN when both partitions are one cluster
               Arabie 1985)
=============  ==================  =========================================================
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import igraph as ig

__all__ = ["MEASURES", "canonical_measure", "raw_distance", "normalised_distance"]

MEASURES: tuple[str, ...] = ("vi", "nmi", "split_join", "ari")
_ALIASES = {
    "vi": "vi", "nmi": "nmi",
    "split_join": "split_join", "split.join": "split_join", "split-join": "split_join", "splitjoin": "split_join",
    "ari": "ari", "adjusted_rand": "ari", "adjusted.rand": "ari", "adjusted-rand": "ari",
}
_IGRAPH = {"vi": "vi", "nmi": "nmi", "split_join": "split-join", "ari": "adjusted_rand"}


def canonical_measure(measure: str) -> str:
    """Map robin's and igraph's spellings (``split.join``, ``adjusted.rand``, …) to ``vi|nmi|split_join|ari``."""
    key = measure.lower() if isinstance(measure, str) else measure
    if key not in _ALIASES:
        raise ValueError(
            f"Unknown measure {measure!r}; use one of {list(MEASURES)} "
            f"(robin's 'split.join' and 'adjusted.rand' are accepted too)."
        )
    return _ALIASES[key]


def raw_distance(a: Sequence[int], b: Sequence[int], measure: str) -> float:
    """igraph's ``compare_communities`` value (VI in nats, SJ as a sum, NMI, ARI)."""
    return float(ig.compare_communities(list(a), list(b), method=_IGRAPH[measure]))


def normalised_distance(a: Sequence[int], b: Sequence[int], measure: str, n: int) -> float:
    """robin's normalised distance between memberships ``a`` and ``b`` (``n`` = real graph's vertex count)."""
    v = raw_distance(a, b, measure)
    if measure == "vi":
        return v / math.log2(n)
    if measure == "nmi":
        return 1.0 - v
    if measure == "split_join":
        return v / (2.0 * n)
    return (1.0 - v) / 2.0
