"""``report.html`` of ``magmap run``: one self-contained page (figures as data URIs, inline CSS, no script)."""
from __future__ import annotations

import base64
import html
import json
from typing import Any

__all__ = ["render_report"]

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
.reading{background:#f3f6fa;border-left:4px solid #4c72b0;padding:.6em .9em;margin:.8em 0}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#555}
table{border-collapse:collapse;font-size:.9em;margin:.6em 0}th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left}
th{background:#f7f7f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
nav a{margin-right:1em}pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.8em;max-height:30em}
.muted{color:#666;font-size:.9em}
"""


def _esc(v: Any) -> str:
    return html.escape(str(v))


def _num(v: Any, fmt: str = ".3g") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return format(v, fmt)
    return _esc(v)


def _figure(png: bytes | None, alt: str, caption: str) -> str:
    if png is None:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_esc(alt)}">'
            f"<figcaption>{_esc(caption)}</figcaption></figure>")


def _reading(text: str | None) -> str:
    return f'<p class="reading">{_esc(text)}</p>' if text else ""


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f'<td class="num">{_num(c)}</td>' if isinstance(c, (int, float)) or c is None else f"<td>{_esc(c)}</td>"
        for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_report(summary: dict[str, Any], figures: dict[str, bytes], files: list[str]) -> str:
    """The report page for ``summary`` (as written to ``summary.json``), its ``figures`` (PNG bytes by section)
    and the ``files`` written next to it (linked relatively, so the folder can be moved or zipped)."""
    r = summary["readings"]
    inp, label = summary["input"], summary["input"].get("label")
    parts: list[str] = []
    add = parts.append
    add(f"<h1>magmap run: {_esc(inp['source'])}</h1>")
    add(f'<p class="muted">magmap {_esc(summary["versions"].get("magmap", "?"))}, seed {summary["settings"]["seed"]}, '
        f"{summary['timings']['total']:.0f} s. Labels: {_esc(label) if label else 'none (label-free analysis)'}.</p>")
    add('<nav><a href="#data">Data</a><a href="#embedding">Embedding</a><a href="#networks">Cell networks</a>'
        '<a href="#modules">Gene modules</a><a href="#robustness">Robustness</a><a href="#impact">Gene impact</a>'
        '<a href="#files">Files and parameters</a></nav>')

    add('<h2 id="data">Data</h2>' + _reading(r["input"]))
    pre = summary["preprocessing"]
    add(_table(["", "value"], [["counts taken from", inp["matrix"]], ["values", inp["values"]],
                               ["cells analysed", inp["n_cells"]], ["genes in the file", inp["n_genes"]],
                               ["network genes (highly variable, closest to square)", pre["n_genes"]],
                               ["expression cut (fraction of cells)", pre["expressed_fraction"]]]))

    add('<h2 id="embedding">Robust embedding</h2>')
    what = f"'{label}'" if label else "MED-MAGMA community"
    add(_figure(figures.get("embedding_groups"), "embedding by group",
                f"RobustUMAP embedding of every cell, coloured by {what}."))
    add(_figure(figures.get("embedding_radius"), "embedding by certified radius",
                "The same embedding coloured by each cell's certified radius (larger: more stable position)."))
    add(_reading(r.get("embedding")))

    add('<h2 id="networks">Cell networks: MED-MAGMA and GmGM</h2>')
    add(_figure(figures.get("cell_networks"), "cell networks",
                "Cell networks (each cell linked to its strongest partial correlations), drawn with a force layout."))
    cl = summary["clusters"]
    rows = [[name, cl[key]["n_clusters"], cl[key].get("ami"), cl[key].get("assortativity")]
            for key, name in (("medmagma", "MED-MAGMA"), ("gmgm", "GmGM"))]
    add(_table(["method", "communities", f"AMI vs {label or 'labels'}", "label assortativity"], rows))
    add(_figure(figures.get("method_scores"), "MED-MAGMA vs GmGM scores",
                "How well each method's cell network matches the labels."))
    add(_reading(r.get("clusters")))

    add('<h2 id="modules">Gene modules</h2>')
    add(_figure(figures.get("gene_network"), "gene network", "MED-MAGMA gene network, genes coloured by Leiden module."))
    add(_figure(figures.get("module_heatmap"), "module heatmap",
                f"Mean share of each cell's counts taken by each module, per {what} (standardised per module)"
                + (", with the one-way ANOVA p-value." if label else ".")))
    mods = summary["modules"]["modules"]
    header = ["module", "genes", "example genes", "mean share %"] + (["ANOVA F", "p"] if label else [])
    add(_table(header, [[m["module"], m["n_genes"], ", ".join(m["genes"][:6]), m["mean_share_percent"]]
                        + ([m.get("anova_F"), m.get("anova_p")] if label else []) for m in mods]))
    add(_reading(r.get("modules")))

    add('<h2 id="robustness">Robustness of the MED-MAGMA networks</h2>')
    add(_figure(figures.get("robustness"), "robustness curves",
                "Distance between the communities before and after rewiring a growing fraction of edges, for the "
                "network and for a random graph with the same degrees (robin procedure)."))
    rob = summary["robustness"]
    add(_table(["network", "ln Bayes factor", "AUC network", "AUC random graph"],
               [[n, rob[n]["bayes_factor_ln"], rob[n]["auc"][0], rob[n]["auc"][1]] for n in ("cells", "genes")]))
    add(_reading(r.get("robustness_cells")) + _reading(r.get("robustness_genes")))

    add('<h2 id="impact">Gene impact on the embedding</h2>')
    add(_figure(figures.get("gene_impact"), "gene impact", "The 15 genes with the largest impact on the embedding."))
    add(_reading(r.get("gene_impact")))

    add('<h2 id="files">Files and parameters</h2><ul>')
    for f in files:
        add(f'<li><a href="{_esc(f)}">{_esc(f)}</a></li>')
    add("</ul><details><summary>Settings, seeds, timings and versions</summary><pre>"
        + _esc(json.dumps({k: summary[k] for k in ("settings", "timings", "versions", "command")}, indent=2))
        + "</pre></details>")
    body = "\n".join(p for p in parts if p)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>magmap report</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>'
            f"<body>\n{body}\n</body></html>\n")
