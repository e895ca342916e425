"""``summary.json`` of ``magmap run``: plain values, and a short plain-language reading of each result."""
from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

__all__ = ["plain", "h5ad_safe", "readings", "evidence"]

_NAMES = {"medmagma": "MED-MAGMA", "gmgm": "GmGM"}


def plain(v: Any) -> Any:
    """Plain Python (dict, list, str, int, float, bool, None) for JSON; NaN and infinities become None."""
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return plain(v.tolist())
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if not math.isfinite(float(v)) else float(v)
    if v is None or isinstance(v, str):
        return v
    return str(v)


def h5ad_safe(v: Any) -> Any:
    """A form AnnData can write into ``uns``: no None (dropped), lists of records become JSON text."""
    if isinstance(v, dict):
        return {str(k): h5ad_safe(x) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        if v and all(isinstance(x, (bool, int, float, np.number)) for x in v):
            return np.asarray(v)
        if v and all(isinstance(x, (list, tuple)) for x in v):
            try:  # rectangular numeric tables (robustness curves) stay arrays
                arr = np.asarray(v, dtype=np.float64)
                if arr.ndim == 2:
                    return arr
            except (TypeError, ValueError):
                pass
        if all(isinstance(x, str) for x in v) and v:
            return np.asarray(v, dtype=object)
        return json.dumps(plain(list(v)))
    return v


def evidence(ln_bf: float | None) -> str:
    """Jeffreys/Kass–Raftery wording for a natural-log Bayes factor."""
    if ln_bf is None or not math.isfinite(ln_bf):
        return "no usable"
    a = abs(ln_bf)
    return ("decisive" if a > math.log(100) else "strong" if a > math.log(10) else
            "substantial" if a > math.log(3) else "barely any")


def _robust_reading(what: str, rec: dict[str, Any]) -> str:
    bf, (auc_real, auc_null) = rec["bayes_factor_ln"], rec["auc"]
    if bf is None:
        return f"The robustness test of the {what} was degenerate (no Bayes factor); see its curves."
    more = auc_real < auc_null
    return (f"The {what}'s communities are {'more' if more else 'less'} stable under edge rewiring than those of a "
            f"random graph with the same degrees: ln BF = {bf:.1f} ({evidence(bf)} evidence that the curves differ), "
            f"area under the curve {auc_real:.3f} against {auc_null:.3f} for the random graph (smaller means "
            f"communities change less when edges are perturbed).")


def readings(s: dict[str, Any]) -> dict[str, str]:
    """One or two sentences per result, in words a biologist reads without the methods section."""
    out: dict[str, str] = {}
    lab = s["input"].get("label")
    inp, pre = s["input"], s["preprocessing"]
    out["input"] = (f"{inp['n_cells']} cells and {inp['n_genes']} genes were analysed"
                    + (f" ({inp['n_cells_dropped']} cells without counts left out)" if inp["n_cells_dropped"] else "")
                    + (f", a random subset of {inp['n_cells_in_file']} cells" if inp["subsampled"] else "")
                    + f". The networks use {pre['n_genes']} of the {pre['n_hvg']} most variable genes: those expressed "
                    f"in more than {100 * pre['expressed_fraction']:.0f}% of cells, which makes the matrix closest to square.")
    if "robustness" in s:
        out["robustness_cells"] = _robust_reading("MED-MAGMA cell network", s["robustness"]["cells"])
        out["robustness_genes"] = _robust_reading("MED-MAGMA gene network", s["robustness"]["genes"])
    cl = s.get("clusters")
    if cl:
        m, g = cl["medmagma"], cl["gmgm"]
        if lab is not None:
            better = "MED-MAGMA" if m["ami"] > g["ami"] else "GmGM"
            out["clusters"] = (
                f"Communities of the MED-MAGMA cell network ({m['n_clusters']}) agree with '{lab}' with AMI = "
                f"{m['ami']:.2f}, those of GmGM ({g['n_clusters']}) with AMI = {g['ami']:.2f} (0: chance, 1: the same "
                f"grouping), so {better} recovers the labels better. Label assortativity (0: edges ignore labels, 1: "
                f"edges only within a label) is {m['assortativity']:.2f} for MED-MAGMA and {g['assortativity']:.2f} for GmGM.")
        else:
            out["clusters"] = (f"The MED-MAGMA cell network splits into {m['n_clusters']} communities, the GmGM one into "
                               f"{g['n_clusters']} (no --label given, so they are not compared with labels).")
    mods = s.get("modules")
    if mods:
        text = f"Leiden splits the MED-MAGMA gene network into {mods['n_modules']} modules."
        if lab is not None:
            sig = sorted((r for r in mods["modules"] if r.get("anova_p") is not None and r["anova_p"] < 0.05 / mods["n_modules"]),
                         key=lambda r: r["anova_p"])
            text += (f" {mods['n_significant_bonferroni']} of them take a different share of the counts in different "
                     f"'{lab}' groups (one-way ANOVA, p < 0.05 after Bonferroni correction)")
            text += (f"; the clearest is {sig[0]['module']} ({sig[0]['n_genes']} genes, e.g. "
                     f"{', '.join(sig[0]['genes'][:4])}; F = {sig[0]['anova_F']:.1f})." if sig else ".")
        out["modules"] = text
    emb = s.get("embedding")
    if emb:
        c = emb["certificate"]
        units = "standard deviations of every gene at once" if emb["input_scaled"] else \
            "units of log-normalised expression, in every gene at once"
        out["embedding"] = (
            f"Half of the cells have a certified radius of at least {c.get('radius_median', float('nan')):.3f} "
            f"({units}): no change of their input that small can move them by more than "
            f"{100 * c.get('fraction', 0.05):.0f}% of the map's diagonal. Cells with small radii sit where the map is "
            f"fragile; treat their position with care.")
        top = [t["gene"] for t in emb["top_genes"][:5]]
        out["gene_impact"] = f"The genes that move the embedding most are {', '.join(top)}."
    return out
