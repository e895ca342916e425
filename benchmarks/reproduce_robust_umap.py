"""Robust parametric UMAP paper (Zhang & Xu 2023): its experiments with magmap's ``RobustUMAP``, umap-learn beside it.

Data: the scVelo pancreas (3,696 cells × 2,000 genes, label ``clusters``; major branches ``clusters_coarse``).
magmap runs with its defaults (log1p + centring, 50 PCs, phase 1 + robust CROWN phase); umap-learn
``UMAP(random_state=seed)`` is fitted on the same input (RobustUMAP's 50 principal components of the
preprocessed counts, training statistics), and new cells reach it through ``UMAP.transform``.
Sections (``--sections``), each writing ``benchmarks/results/reproduce_robust_umap_<section>.{json,png}``:

* ``strength`` (Fig. 1B) — negative-sample strength η of the graph-based loss (``repulsion_strength``, no
  CROWN phase as in the paper's Fig. 1;
  umap-learn's ``repulsion_strength`` for the baseline): trustworthiness(15) in the PC space, leave-one-out
  15-NN accuracy of ``clusters`` (within-branch resolution) and ``clusters_coarse`` (major branches), and the
  silhouette of the major branches.
* ``fraction`` (Fig. 2) — fit on 5/10/30/50 % of the cells, project the rest: 15-NN accuracy of the projected
  cells from the training cells' labels, Alpha-vs-Beta accuracy of the projected Alpha and Beta cells (the
  fine structure the paper lost at 5 %), trustworthiness of the whole map (training + projected).
* ``heldout`` (Fig. 3, on pancreas instead of the dentate gyrus) — clusters left out of training, then
  projected; where unseen cells land is measured by the *distance to their true neighbours' centroid*
  (defined in the JSON's ``metric`` and in :func:`centroid_distance`).
* ``dropout`` (Fig. 4B/C, 5C) — one model trained on all cells, inputs with extra dropouts (each non-zero
  count zeroed with probability r, r = 0…80 %): Pearson r of each embedding axis with the unperturbed
  embedding, averaged over the two axes, for the model without the CROWN phase (``robust=False``), with it
  (defaults), and umap-learn's ``transform`` (fewer repeats: seconds per call).
* ``impact`` (Fig. 5B, 5D) — gene impact ``I_g = Σ_c ‖∂U/∂x_cg‖₁`` with and without the CROWN phase; the
  top-impact gene of the model without it perturbed alone, and all genes perturbed (model-input noise).

Usage (quality numbers; no timings are claimed, so no CPU lock)::

    nice -n 19 .venv/bin/python benchmarks/reproduce_robust_umap.py [--sections strength,fraction,...]
        [--seed 0] [--dropout-repeats 100] [--umap-dropout-repeats 2] [--cache-dir /tmp/rru_cache]

The work is about 8 full-data RobustUMAP fits (≈10 s each on 2 idle cores, docs/robust_umap.md), as many
umap-learn fits, ~25 umap-learn transforms and 1,800 magmap projections of 3,696 cells: roughly 10–15
minutes on 2 idle cores; each JSON records the seconds its section took. On a loaded machine run the sections as separate
processes with ``OMP_NUM_THREADS=1`` and a shared ``--cache-dir`` (fitted models are pickled there and
reused). Dropout: 100 repeats per rate for magmap as in the paper, 2 for umap-learn (each of its
``transform`` calls takes seconds); one seed per experiment; the JSON records what was used.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))
from bench_robust_umap import PANCREAS, graph_input, load, warm_numba  # noqa: E402  (shared data loader)

SECTIONS = ("strength", "fraction", "heldout", "dropout", "impact")
STRENGTHS = (1.0, 0.5, 0.25, 0.1)
FRACTIONS = (0.05, 0.10, 0.30, 0.50)
DROPOUT_RATES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
UMAP_DROPOUT_RATES = (0.2, 0.4, 0.6, 0.8)
#: Left-out cluster sets: an intermediate state between two that stay (the paper's Nbl cells), a late
#: intermediate, and three clusters along the trajectory at once (the paper's Fig. 3E).
HELDOUT = {
    "Ngn3 high EP": ("Ngn3 high EP",),
    "Pre-endocrine": ("Pre-endocrine",),
    "Ngn3 low EP + Pre-endocrine + Epsilon": ("Ngn3 low EP", "Pre-endocrine", "Epsilon"),
}
K = 15
PERTURB_SD = 3.0  # the strength drawn in the figure
PERTURB_SWEEP = (1.0, 3.0, 10.0)
CENTROID_METRIC = (
    "For each projected cell i: N_i = its 15 nearest training cells in expression (Euclidean, the 50 PCs of the "
    "model's preprocessing with training statistics), c_i = the mean of N_i's embedding coordinates, d_i = "
    "||z_i - c_i||. Scale D = the median of the same distance for the training cells (their 15 nearest other "
    "training cells). Reported: median and 90th percentile of d_i / D (1 = a projected cell sits as close to its "
    "true neighbours' centroid as a training cell does to its own), median d_i / the training map's diagonal.")
COARSE = "clusters_coarse"
PAPER = {
    "strength": "Fig. 1B (figure only): lowering η separates the major branches better and loses resolution "
                "inside each branch. Values of η not given.",
    "fraction": "Fig. 2 (figure only): cell types separated with 5 % of the cells for training; alpha/beta "
                "divergence lost at 5 %, recovered at 10 %; train and projected cells on the same map.",
    "heldout": "Fig. 3 (dentate gyrus, figure only): clusters absent from training are projected 'where they "
               "belong', next to the clusters they connect, even with four clusters removed.",
    "dropout": "Fig. 4B (figure only): coordinates 'remain highly correlated even when 80 % of the non-zero "
               "counts have been set to zero', 100 repeats per ratio; Fig. 5C: the CROWN-regularised model "
               "correlates higher, especially at low dropout.",
    "impact": "Fig. 5B (figure only): gene impact of the regularised model has a much taller peak near zero "
              "and a smaller variance; Fig. 5D: perturbing the top-impact gene wrecks the unregularised "
              "embedding, barely moves the regularised one; perturbing all genes wrecks both.",
}


# ----------------------------------------------------------------------------- shared helpers
def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=HERE, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _provenance() -> dict:
    import magmap
    import torch
    from magmap._utils import versions
    from magmap.umap import RobustUMAP

    return {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "git_commit": _git("rev-parse", "--short", "HEAD"),
            "magmap_imported_from": str(Path(magmap.__file__).parent),
            # set when magmap is imported from an exported snapshot (git archive) rather than this checkout
            "magmap_code_commit": os.environ.get("MAGMAP_CODE_COMMIT", "this checkout"),
            "uncommitted_changes_in_umap_or_crown": _git("status", "--porcelain", "--", "../pybridge/magmap/umap",
                                                         "../pybridge/magmap/crown").splitlines(),
            "versions": versions(), "robust_umap_defaults": {k: v for k, v in RobustUMAP().get_params().items()
                                                             if k != "encoder"},
            "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                        "platform": platform.platform()}}


def dump(section: str, payload: dict, seconds: float, load_before: tuple) -> Path:
    out = RESULTS / f"reproduce_robust_umap_{section}.json"
    payload = {"benchmark": f"robust-UMAP paper, {section}", "paper": PAPER[section], **_provenance(),
               "load_avg_before": list(load_before), "load_avg_after": list(os.getloadavg()),
               "seconds": round(seconds, 1),
               "timing_note": "run under nice -n 19 without the CPU lock: times are informational only",
               **payload}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=1, default=float))
    print(f"wrote {out}", flush=True)
    return out


class Data:
    """The pancreas counts, labels and, fitted once per process, the models several sections share."""

    def __init__(self, seed: int, n_cells: int | None = None, cache_dir: str | None = None) -> None:
        self.seed = seed
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.a, self.y = load(*PANCREAS)
        if n_cells is not None and n_cells < self.a.n_obs:
            keep = np.sort(np.random.default_rng(seed).choice(self.a.n_obs, n_cells, replace=False))
            self.a, self.y = self.a[keep].copy(), self.y[keep]
        self.coarse = self.a.obs[COARSE].astype(str).to_numpy()
        self._cache: dict = {}
        self.cached: set[str] = set()  # keys reloaded from cache_dir (their fit times are not measured)

    def fit(self, key: str, make):
        """``make()`` (a fitted model), pickled under ``cache_dir`` so a rerun of a section skips its fits."""
        import pickle

        self.cached.discard(key)
        if self.cache_dir is None:
            return make()
        path = self.cache_dir / f"{key}_seed{self.seed}_n{self.a.n_obs}.pkl"
        if path.exists():
            self.cached.add(key)
            return pickle.loads(path.read_bytes())
        model = make()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        try:  # written aside, then renamed: a section running in another process never reads half a file
            tmp.write_bytes(pickle.dumps(model))
            tmp.replace(path)
        except Exception as err:  # a cache is optional
            print(f"could not cache {key}: {err}", flush=True)
        return model

    def robust(self, robust: bool = True):
        """RobustUMAP with the defaults (``robust=False``: no CROWN phase) on all cells."""
        key = ("robust", robust)
        if key not in self._cache:
            from magmap.umap import RobustUMAP

            self._cache[key] = self.fit(f"robust{int(robust)}", lambda: RobustUMAP(
                random_state=self.seed, robust=robust, verbose=False).fit(self.a))
        return self._cache[key]

    def pcs(self) -> np.ndarray:
        """umap-learn's input: the principal components of all cells. Preprocessing and PCA depend only on
        the data and the seed, so a one-epoch fit without the CROWN phase gives the same components."""
        if "pcs" not in self._cache:
            from magmap.umap import RobustUMAP

            m = self._cache.get(("robust", False)) or self._cache.get(("robust", True)) or RobustUMAP(
                random_state=self.seed, robust=False, n_epochs=1, verbose=False).fit(self.a)
            self._cache["pcs"] = graph_input(m, self.a)
        return self._cache["pcs"]

    def umap_learn(self):
        if "umap" not in self._cache:
            import umap

            self._cache["umap"] = self.fit("umap", lambda: umap.UMAP(random_state=self.seed).fit(self.pcs()))
        return self._cache["umap"]


def palette(labels: np.ndarray) -> dict:
    import matplotlib

    cats = sorted(set(labels))
    cmap = matplotlib.colormaps["tab10"]
    return {c: cmap(i % 10) for i, c in enumerate(cats)}


def scatter(ax, Z: np.ndarray, labels: np.ndarray, colors: dict, *, marker: str = "o", s: float = 2.0,
            alpha: float = 0.8, legend: bool = False) -> None:
    for c, col in colors.items():
        m = labels == c
        if m.any():
            ax.scatter(Z[m, 0], Z[m, 1], s=s, color=col, marker=marker, alpha=alpha,
                       linewidths=0.4 if marker == "x" else 0, label=c, rasterized=True)
    ax.set_xticks([])
    ax.set_yticks([])
    if legend:  # every cluster once, as a dot, whatever markers were drawn
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], ls="", marker="o", ms=4, color=col, label=c) for c, col in colors.items()]
        ax.legend(handles=handles, fontsize=6, frameon=False, loc="best")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


PAIR_KEYS = ("magmap", "umap_learn")
PAIR_NAMES = {"magmap": "magmap RobustUMAP", "umap_learn": "umap-learn transform"}


def projection_grid(path: Path, y: np.ndarray, panels: list, title, *, width: float, suptitle: str,
                    left_out: bool = False) -> None:
    """Rows magmap / umap-learn, one column per experiment: training cells as crosses, projected cells as dots
    (``left_out``: projected cells drawn large over faint training cells, as the paper's Fig. 3).
    ``panels`` holds ``(Z_train, Z_projected, train_mask)`` row by row; ``title(name, column, key)``."""
    plt = _plt()
    colors = palette(y)
    ncol = len(panels) // len(PAIR_KEYS)
    fig, axes = plt.subplots(len(PAIR_KEYS), ncol, figsize=(width * ncol, 8 if left_out else 7))
    for i, key in enumerate(PAIR_KEYS):
        for j in range(ncol):
            Ztr, Zp, train = panels[i * ncol + j]
            ax = axes[i, j]
            first = i == 0 and j == 0
            if left_out:
                scatter(ax, Ztr, y[train], colors, marker="x", s=6, alpha=0.35, legend=first)
                scatter(ax, Zp, y[~train], colors, s=7, alpha=1.0)
            else:
                scatter(ax, Zp, y[~train], colors, s=2, alpha=0.6, legend=first)
                scatter(ax, Ztr, y[train], colors, marker="x", s=10, alpha=1.0)
            ax.set_title(title(PAIR_NAMES[key], j, key), fontsize=8)
    fig.suptitle(suptitle, fontsize=9 if left_out else 10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def diagonal(Z: np.ndarray) -> float:
    return float(np.linalg.norm(Z.max(axis=0) - Z.min(axis=0)))


def embedding_scores(X: np.ndarray, Z: np.ndarray, y: np.ndarray, coarse: np.ndarray) -> dict:
    from sklearn.metrics import silhouette_score

    from magmap.metrics import knn_accuracy, trustworthiness

    return {"trustworthiness": trustworthiness(X, Z, n_neighbors=K, max_cells=None),
            "knn_accuracy_clusters": knn_accuracy(Z, y, n_neighbors=K),
            "knn_accuracy_coarse": knn_accuracy(Z, coarse, n_neighbors=K),
            "silhouette_coarse": float(silhouette_score(Z, coarse))}


# ----------------------------------------------------------------------------- strength (Fig. 1B)
def section_strength(d: Data, args) -> dict:
    import umap

    from magmap.umap import RobustUMAP

    X = d.pcs()
    rows, embs = [], {}
    for eta in STRENGTHS:
        m = d.robust(False) if eta == 1.0 else d.fit(f"strength{eta}", lambda: RobustUMAP(
            random_state=d.seed, repulsion_strength=eta, robust=False, verbose=False).fit(d.a))
        ref = d.umap_learn() if eta == 1.0 else d.fit(f"umap_strength{eta}", lambda: umap.UMAP(
            random_state=d.seed, repulsion_strength=eta).fit(X))
        row = {"eta": eta, "magmap": embedding_scores(X, m.embedding_, d.y, d.coarse),
               "umap_learn": embedding_scores(X, ref.embedding_, d.y, d.coarse)}
        rows.append(row)
        embs[eta] = (m.embedding_, ref.embedding_)
        print(f"eta {eta}: magmap {row['magmap']}  umap-learn {row['umap_learn']}", flush=True)
    plt = _plt()
    colors = palette(d.y)
    fig, axes = plt.subplots(2, len(STRENGTHS), figsize=(3.2 * len(STRENGTHS), 6.6))
    for j, eta in enumerate(STRENGTHS):
        for i, (name, key) in enumerate((("magmap RobustUMAP", "magmap"), ("umap-learn", "umap_learn"))):
            ax = axes[i, j]
            scatter(ax, embs[eta][i], d.y, colors, legend=(i == 0 and j == 0))
            r = rows[j][key]
            ax.set_title(f"{name}, η = {eta:g}\ntrust {r['trustworthiness']:.3f}, acc {r['knn_accuracy_clusters']:.3f}"
                         f" / coarse {r['knn_accuracy_coarse']:.3f}", fontsize=8)
    fig.suptitle("Negative-sample strength η (graph-based loss), pancreas 3,696 cells (paper Fig. 1B)", fontsize=10)
    fig.tight_layout()
    fig.savefig(RESULTS / "reproduce_robust_umap_strength.png", dpi=110)
    plt.close(fig)
    return {"strengths": rows, "seed": d.seed,
            "params": {"magmap": "RobustUMAP(random_state=seed, repulsion_strength=η, robust=False), defaults "
                                 "otherwise (graph-based loss); without the CROWN phase, as the paper's Fig. 1 "
                                 "(plain pUMAP), which also saves a third of each fit",
                       "umap_learn": "UMAP(random_state=seed, repulsion_strength=η) on the same 50 PCs"},
            "metric": {"trustworthiness": "sklearn, 15 neighbours, all cells, in the 50-PC space",
                       "knn_accuracy": "leave-one-out 15-NN majority vote in the embedding (clusters: 8 types; "
                                       "coarse: 5 major branches)",
                       "silhouette_coarse": "sklearn silhouette of the 5 major branches in the embedding"},
            "figure": "reproduce_robust_umap_strength.png"}


# ----------------------------------------------------------------------------- fraction (Fig. 2)
def _alpha_beta(Z_test, y_test, Z_train, y_train) -> float | None:
    """Accuracy of the projected Alpha/Beta cells by a 15-NN classifier on the training Alpha/Beta cells."""
    from magmap.metrics import knn_accuracy

    tr, te = np.isin(y_train, ("Alpha", "Beta")), np.isin(y_test, ("Alpha", "Beta"))
    if tr.sum() < K or not te.any():
        return None
    return knn_accuracy(Z_test[te], y_test[te], Z_train=Z_train[tr], labels_train=y_train[tr], n_neighbors=K)


def section_fraction(d: Data, args) -> dict:
    import umap

    from magmap.metrics import knn_accuracy, trustworthiness
    from magmap.umap import RobustUMAP

    rows, pics = [], {}
    X_all = d.pcs()
    for frac in FRACTIONS:
        train = np.zeros(d.a.n_obs, dtype=bool)
        train[np.random.default_rng(d.seed).choice(d.a.n_obs, int(round(frac * d.a.n_obs)), replace=False)] = True
        tr, te = d.a[train].copy(), d.a[~train].copy()
        t = time.perf_counter()
        m = d.fit(f"fraction{frac}", lambda: RobustUMAP(random_state=d.seed, verbose=False).fit(tr))
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        Zte = m.transform(te)
        proj_s = time.perf_counter() - t
        Ytr, Yte = graph_input(m, tr), graph_input(m, te)
        t = time.perf_counter()
        ref = d.fit(f"umap_fraction{frac}", lambda: umap.UMAP(random_state=d.seed).fit(Ytr))
        ufit_s = time.perf_counter() - t
        t = time.perf_counter()
        Ute = ref.transform(Yte)
        uproj_s = time.perf_counter() - t
        res = {"fraction": frac, "n_train": int(train.sum()), "n_projected": int((~train).sum())}
        fit_s = None if f"fraction{frac}" in d.cached else fit_s
        ufit_s = None if f"umap_fraction{frac}" in d.cached else ufit_s
        for key, Ztr, Zp, fs, ps in (("magmap", m.embedding_, Zte, fit_s, proj_s),
                                     ("umap_learn", ref.embedding_, Ute, ufit_s, uproj_s)):
            Zall = np.empty((d.a.n_obs, 2), dtype=np.float64)
            Zall[train], Zall[~train] = Ztr, Zp
            res[key] = {"projected_knn_accuracy": knn_accuracy(Zp, d.y[~train], Z_train=Ztr, labels_train=d.y[train],
                                                               n_neighbors=K),
                        "projected_alpha_beta_accuracy": _alpha_beta(Zp, d.y[~train], Ztr, d.y[train]),
                        "trustworthiness_all_cells": trustworthiness(X_all, Zall, n_neighbors=K, max_cells=None),
                        "fit_s": None if fs is None else round(fs, 2), "project_s": round(ps, 2)}
            pics[(frac, key)] = (Ztr, Zp, train)
        rows.append(res)
        print(f"fraction {frac}: magmap {res['magmap']}  umap-learn {res['umap_learn']}", flush=True)
    def title(name, j, key):
        r, frac = rows[j][key], FRACTIONS[j]
        ab = r["projected_alpha_beta_accuracy"]
        return (f"{name}, train {frac:.0%}\nprojected acc {r['projected_knn_accuracy']:.3f}, α/β {ab:.3f}"
                if ab is not None else f"{name}, train {frac:.0%}")

    projection_grid(RESULTS / "reproduce_robust_umap_fraction.png", d.y, [pics[(f, k)] for k in PAIR_KEYS
                                                                          for f in FRACTIONS], title, width=3.4,
                    suptitle="Trained on a fraction of the cells (crosses), the rest projected (dots) (paper Fig. 2C)")
    return {"fractions": rows, "seed": d.seed,
            "params": {"split": "uniform random training cells, numpy default_rng(seed)",
                       "magmap": "RobustUMAP(random_state=seed).fit(train counts); transform(other counts) with the "
                                 "training statistics",
                       "umap_learn": "UMAP(random_state=seed).fit(training PCs).transform(other cells' PCs); PCs from "
                                     "the magmap model of that split (training statistics)"},
            "metric": {"projected_knn_accuracy": "15-NN classifier on the training cells' embedding predicts the "
                                                 "projected cells' clusters",
                       "projected_alpha_beta_accuracy": "the same, training and projected cells restricted to Alpha "
                                                        "and Beta (does the map separate them?)",
                       "trustworthiness_all_cells": "sklearn, 15 neighbours, training + projected cells, in the "
                                                    "50-PC space of the default model on all cells",
                       "fit_s, project_s": "wall seconds under nice -n 19 on a shared machine, informational; fit_s "
                                           "is null when the model was reloaded from --cache-dir"},
            "not_reproduced": "the paper's comparison of z-scores from the training set vs the full set: magmap "
                              "always applies the training statistics (stored in the model)",
            "figure": "reproduce_robust_umap_fraction.png"}


# ----------------------------------------------------------------------------- heldout (Fig. 3)
def centroid_distance(X_train: np.ndarray, Z_train: np.ndarray, X_new: np.ndarray, Z_new: np.ndarray) -> dict:
    """Where projected cells land relative to their expression neighbours (see ``CENTROID_METRIC``)."""
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=K + 1).fit(X_train)
    own = nn.kneighbors(X_train, return_distance=False)[:, 1:]
    d_train = np.linalg.norm(Z_train - Z_train[own].mean(axis=1), axis=1)
    nb = nn.kneighbors(X_new, n_neighbors=K, return_distance=False)
    d_new = np.linalg.norm(Z_new - Z_train[nb].mean(axis=1), axis=1)
    ref = float(np.median(d_train))
    return {"median_over_training_median": float(np.median(d_new) / ref),
            "q90_over_training_median": float(np.quantile(d_new, 0.9) / ref),
            "median_over_map_diagonal": float(np.median(d_new) / diagonal(Z_train)),
            "training_median_over_map_diagonal": float(ref / diagonal(Z_train)),
            "_nb_expression": nb}


def _majority(labels: np.ndarray, nb: np.ndarray) -> np.ndarray:
    out = []
    for row in nb:
        vals, counts = np.unique(labels[row], return_counts=True)
        out.append(vals[np.argmax(counts)])
    return np.asarray(out)


def section_heldout(d: Data, args) -> dict:
    import umap
    from sklearn.neighbors import NearestNeighbors

    from magmap.umap import RobustUMAP

    rows, pics = [], {}
    for name, clusters in HELDOUT.items():
        train = ~np.isin(d.y, clusters)
        tr, te = d.a[train].copy(), d.a[~train].copy()
        tag = "_".join(c.replace(" ", "") for c in clusters)
        m = d.fit(f"heldout_{tag}", lambda: RobustUMAP(random_state=d.seed, verbose=False).fit(tr))
        Zte = m.transform(te)
        Xtr, Xte = graph_input(m, tr), graph_input(m, te)
        ref = d.fit(f"umap_heldout_{tag}", lambda: umap.UMAP(random_state=d.seed).fit(Xtr))
        Ute = ref.transform(Xte)
        res = {"left_out": list(clusters), "n_train": int(train.sum()), "n_projected": int((~train).sum())}
        for key, Ztr, Zp in (("magmap", m.embedding_, Zte), ("umap_learn", ref.embedding_, Ute)):
            cd = centroid_distance(Xtr, Ztr, Xte, Zp)
            nb_expr = cd.pop("_nb_expression")
            nb_emb = NearestNeighbors(n_neighbors=K).fit(Ztr).kneighbors(Zp, return_distance=False)
            ytr = d.y[train]
            cd["neighbour_label_agreement"] = float(np.mean(_majority(ytr, nb_expr) == _majority(ytr, nb_emb)))
            # which training clusters the projected cells land next to, in the embedding and in expression
            cd["landing_clusters_embedding"] = {str(k): int(v) for k, v in zip(*np.unique(_majority(ytr, nb_emb),
                                                                                         return_counts=True))}
            cd["landing_clusters_expression"] = {str(k): int(v) for k, v in zip(*np.unique(_majority(ytr, nb_expr),
                                                                                          return_counts=True))}
            res[key] = cd
            pics[(name, key)] = (Ztr, Zp, train)
        rows.append(res)
        print(f"left out {name}: magmap {res['magmap']}\n  umap-learn {res['umap_learn']}", flush=True)
    def title(label, j, key):
        r = rows[j][key]
        return (f"{label}: without {list(HELDOUT)[j]}\ndistance/training {r['median_over_training_median']:.2f}, "
                f"label agreement {r['neighbour_label_agreement']:.2f}")

    projection_grid(RESULTS / "reproduce_robust_umap_heldout.png", d.y, [pics[(n, k)] for k in PAIR_KEYS
                                                                         for n in HELDOUT], title, width=4.2,
                    suptitle="Clusters left out of training (crosses: training cells; dots: the left-out cells, "
                             "projected) (paper Fig. 3)", left_out=True)
    return {"scenarios": rows, "seed": d.seed,
            "metric": {"distance_to_true_neighbours_centroid": CENTROID_METRIC,
                       "neighbour_label_agreement": "fraction of projected cells whose 15 nearest training cells in "
                                                    "the embedding have the same majority cluster as their 15 nearest "
                                                    "training cells in expression (50 PCs)",
                       "note": "umap-learn's transform starts each new cell at the membership-weighted mean of its "
                               "nearest training cells' positions (in the same PC space) before optimising, so this "
                               "metric is close to its own initialisation; magmap's network has no such anchor"},
            "params": {"magmap": "RobustUMAP(random_state=seed) fitted on the remaining cells' counts",
                       "umap_learn": "UMAP(random_state=seed) on the remaining cells' PCs (magmap model's "
                                     "preprocessing), transform of the left-out cells' PCs"},
            "figure": "reproduce_robust_umap_heldout.png"}


# ----------------------------------------------------------------------------- dropout (Fig. 4B/C, 5C)
def section_dropout(d: Data, args) -> dict:
    from magmap.metrics import dropout_correlation

    with_crown, without = d.robust(True), d.robust(False)
    ref = d.umap_learn()
    same_phase1 = float(np.abs(with_crown.embedding_phase1_ - without.embedding_).max())
    res, t_models = {}, {}
    for key, m in (("without_crown", without), ("with_crown", with_crown)):
        t = time.perf_counter()
        res[key] = dropout_correlation(m.transform, d.a.X, rates=DROPOUT_RATES, n_repeats=args.dropout_repeats,
                                       random_state=d.seed)
        t_models[key] = round(time.perf_counter() - t, 1)
        print(key, {r: round(float(np.median(v)), 4) for r, v in res[key].items()}, flush=True)

    def umap_embed(counts):
        return ref.transform(graph_input(with_crown, counts))

    t = time.perf_counter()
    res["umap_learn"] = dropout_correlation(umap_embed, d.a.X, rates=UMAP_DROPOUT_RATES,
                                            n_repeats=args.umap_dropout_repeats, random_state=d.seed)
    t_models["umap_learn"] = round(time.perf_counter() - t, 1)
    print("umap_learn", {r: round(float(np.median(v)), 4) for r, v in res["umap_learn"].items()}, flush=True)

    # Fig. 4C: example embeddings of the model with the CROWN phase at 0, 30, 40, 70 % dropout
    from magmap.metrics._embedding import dropout_counts

    rng = np.random.default_rng(d.seed + 1)
    examples = {r: with_crown.transform(dropout_counts(d.a.X, r, rng)) if r else with_crown.transform(d.a.X)
                for r in (0.0, 0.3, 0.4, 0.7)}
    plt = _plt()
    colors = palette(d.y)
    fig = plt.figure(figsize=(14, 7.5))
    gs = fig.add_gridspec(2, 4, height_ratios=[1.2, 1])
    ax = fig.add_subplot(gs[0, :])
    styles = (("without_crown", "magmap, no CROWN phase", "#d62728", -0.25),
              ("with_crown", "magmap, with CROWN phase", "#1f77b4", 0.0),
              ("umap_learn", "umap-learn transform", "#7f7f7f", 0.25))
    for key, label, col, off in styles:
        rates = sorted(res[key])
        bp = ax.boxplot([res[key][r] for r in rates], positions=[10 * r + off for r in rates], widths=0.22,
                        patch_artist=True, showfliers=False, manage_ticks=False)
        for patch in bp["boxes"]:
            patch.set(facecolor=col, alpha=0.6)
        # the boxes are thin (repeats agree to ~1e-3): a line through the medians shows each model's curve
        ax.plot([10 * r + off for r in rates], [np.median(res[key][r]) for r in rates], "-o", ms=4, color=col,
                label=f"{label} ({len(res[key][rates[-1]])} repeats)")
    ax.set_xticks([10 * r for r in DROPOUT_RATES], [f"{r:.0%}" for r in DROPOUT_RATES])
    ax.set_xlabel("dropout ratio (fraction of non-zero counts set to zero)")
    ax.set_ylabel("correlation with the unperturbed embedding")
    ax.legend(fontsize=8, frameon=False, loc="lower left")
    ax.set_title("Dropout robustness (paper Fig. 4B, 5C), pancreas 3,696 cells, one model trained on all cells",
                 fontsize=10)
    for j, (r, Z) in enumerate(examples.items()):
        a2 = fig.add_subplot(gs[1, j])
        scatter(a2, Z, d.y, colors, legend=(j == 0))
        a2.set_title(f"with CROWN phase, dropout {r:.0%}", fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "reproduce_robust_umap_dropout.png", dpi=110)
    plt.close(fig)

    def summary(v):
        return {str(r): {"median": float(np.median(x)), "q05": float(np.quantile(x, 0.05)),
                         "q95": float(np.quantile(x, 0.95)), "values": [round(float(s), 6) for s in x]}
                for r, x in v.items()}

    return {"seed": d.seed, "correlation": {k: summary(v) for k, v in res.items()},
            "repeats": {"magmap": args.dropout_repeats, "umap_learn": args.umap_dropout_repeats,
                        "paper": 100, "why_fewer": "umap-learn: each transform of 3,696 cells takes seconds, so "
                                                    "its repeats are cut to keep the script near 15 minutes"},
            "seconds_per_model": t_models,
            "check_phase1_equals_robust_false_max_abs_diff": same_phase1,
            "params": {"perturbation": "each non-zero raw count set to zero with probability r (independently), "
                                       "then the model's own preprocessing with the training statistics",
                       "correlation": "Pearson r of each embedding axis with the unperturbed embedding (the same "
                                      "model's transform of the unperturbed counts), averaged over the 2 axes",
                       "models": "RobustUMAP(random_state=seed, robust=False) and RobustUMAP(random_state=seed) on "
                                 "all cells; umap-learn UMAP(random_state=seed) on their 50 PCs, perturbed cells "
                                 "through transform()",
                       "paper_ambiguity": "Fig. 4B's caption says models *trained* with dropouts; its text (used "
                                          "here) says one model trained on the full data, applied to dropout data"},
            "figure": "reproduce_robust_umap_dropout.png"}


# ----------------------------------------------------------------------------- impact (Fig. 5B, 5D)
def _encode(model, Xz: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return model.encoder_(torch.from_numpy(np.ascontiguousarray(Xz, dtype=np.float32))).numpy().astype(np.float64)


def section_impact(d: Data, args) -> dict:
    from magmap.metrics import gene_impact_summary, knn_accuracy, knn_preservation

    with_crown, without = d.robust(True), d.robust(False)
    ref = d.umap_learn()
    models = {"without_crown": without, "with_crown": with_crown}
    impacts = {k: m.gene_impact(d.a) for k, m in models.items()}
    # both fits share phase 1 (same seed), so the same reference area scales both
    scale = {k: np.sqrt(m.area_ref_) for k, m in models.items()}
    summ = {k: gene_impact_summary(impacts[k].to_numpy(), scale=scale[k]) for k in models}
    top = {k: list(impacts[k].sort_values(ascending=False).index[:10]) for k in models}
    target = top["without_crown"][0]
    gi = list(with_crown.genes_).index(target)
    Xz = with_crown.preprocess(d.a).astype(np.float64)
    sd = Xz.std(axis=0, ddof=1)
    rng = np.random.default_rng(d.seed)
    noise = rng.standard_normal(Xz.shape)
    comps = with_crown.components_
    Z0 = {k: _encode(m, Xz) for k, m in models.items()}
    Z0["umap_learn"] = ref.transform((Xz @ comps.T).astype(np.float32))
    sweep, pics = {}, {}
    for strength in PERTURB_SWEEP:
        # the same noise draw at every strength, so the strengths differ only in size
        perturbed = {"single_gene": Xz.copy(), "all_genes": Xz + strength * sd * noise}
        perturbed["single_gene"][:, gi] += strength * sd[gi] * noise[:, gi]
        out = sweep[f"{strength:g}"] = {}
        for kind, Xp in perturbed.items():
            out[kind] = {}
            for key in ("without_crown", "with_crown", "umap_learn"):
                Zp = ref.transform((Xp @ comps.T).astype(np.float32)) if key == "umap_learn" else \
                    _encode(models[key], Xp)
                disp = np.linalg.norm(Zp - Z0[key], axis=1) / diagonal(Z0[key])
                out[kind][key] = {"median_displacement_over_map_diagonal": float(np.median(disp)),
                                  "q90_displacement_over_map_diagonal": float(np.quantile(disp, 0.9)),
                                  "knn_accuracy_clusters": knn_accuracy(Zp, d.y, n_neighbors=K),
                                  "knn_preservation_vs_unperturbed": knn_preservation(Z0[key], Zp, n_neighbors=K,
                                                                                      max_cells=None)}
                if strength == PERTURB_SD:
                    pics[(kind, key)] = Zp
            print(f"strength {strength:g} sd, {kind}", out[kind], flush=True)
    out = sweep[f"{PERTURB_SD:g}"]
    unperturbed = {key: {"knn_accuracy_clusters": knn_accuracy(Z0[key], d.y, n_neighbors=K)} for key in Z0}
    plt = _plt()
    colors = palette(d.y)
    fig = plt.figure(figsize=(15, 11))
    gs = fig.add_gridspec(3, 3, height_ratios=[0.9, 1, 1])
    ax = fig.add_subplot(gs[0, :2])
    allv = np.concatenate([impacts[k].to_numpy() / scale[k] for k in models])
    bins = np.linspace(0, np.quantile(allv, 0.995), 80)
    for k, col in (("without_crown", "#d62728"), ("with_crown", "#1f77b4")):
        v = impacts[k].to_numpy() / scale[k]
        ax.hist(v, bins=bins, alpha=0.55, color=col,
                label=f"{k.replace('_', ' ')} (sd {summ[k]['sd']:.1f}, q95 {summ[k]['q95']:.1f})")
    ax.set_xlabel("gene impact Σ_c ‖∂U/∂x_cg‖₁ / √(map area)")
    ax.set_ylabel("genes")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title("Gene impact distribution (paper Fig. 5B), 2,000 genes", fontsize=10)
    ax = fig.add_subplot(gs[0, 2])
    ax.axis("off")
    ax.text(0, 1, f"top-impact gene (no CROWN phase): {target}\nperturbation: x_cg + {PERTURB_SD:g}·sd_g·N(0,1),\n"
                  f"model-input units (centred log-normalised)\n\n"
                  f"top 5 without CROWN: {', '.join(top['without_crown'][:5])}"
                  f"\ntop 5 with CROWN: {', '.join(top['with_crown'][:5])}", va="top", fontsize=8)
    for i, kind in enumerate(("single_gene", "all_genes")):
        for j, (key, title) in enumerate((("without_crown", "no CROWN phase"), ("with_crown", "with CROWN phase"),
                                          ("umap_learn", "umap-learn transform"))):
            a2 = fig.add_subplot(gs[i + 1, j])
            scatter(a2, pics[(kind, key)], d.y, colors, legend=(i == 0 and j == 0))
            r = out[kind][key]
            what = f"gene {target}" if kind == "single_gene" else "all genes"
            a2.set_title(f"{title}, {what} perturbed\nacc {r['knn_accuracy_clusters']:.3f} (unperturbed "
                         f"{unperturbed[key]['knn_accuracy_clusters']:.3f}), kNN kept "
                         f"{r['knn_preservation_vs_unperturbed']:.2f}", fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "reproduce_robust_umap_impact.png", dpi=110)
    plt.close(fig)
    return {"seed": d.seed, "gene_impact_summary_scaled_by_sqrt_area_ref": summ, "top_genes": top,
            "gene_impact_raw": {k: {"median": float(impacts[k].median()), "max": float(impacts[k].max())}
                                for k in models},
            "perturbation": {"target_gene": target, "strength_sd": PERTURB_SD, "unperturbed": unperturbed, **out,
                             "by_strength_sd": sweep},
            "params": {"gene_impact": "RobustUMAP.gene_impact(all cells, norm='l1'): Σ over cells of |∂U1/∂x_cg| + "
                                      "|∂U2/∂x_cg|, x in model-input units; divided by √area_ref (phase-1 map "
                                      "bounding-box area, shared by both fits) to compare maps",
                       "perturbation": "model input x (centred log-normalised expression of the 2,000 model genes); "
                                       "single_gene: x_cg* += s·sd_g*·ξ_c for the top-impact gene g* of the model "
                                       "without the CROWN phase; all_genes: x_cg += s·sd_g·ξ_cg for every gene; ξ "
                                       "standard normal (one draw for all strengths), s = strength_sd (figure and "
                                       "top-level numbers) or each of by_strength_sd, sd the training SD of the "
                                       "gene; magmap "
                                       "networks evaluated on x, umap-learn transform on x's 50 PCs",
                       "metrics": "displacement ‖z_pert − z‖ / the unperturbed map's diagonal; leave-one-out 15-NN "
                                  "accuracy of the perturbed map; fraction of each cell's 15 map neighbours kept"},
            "not_in_umap_learn": "gene impact needs a differentiable map: umap-learn's non-parametric UMAP has none",
            "figure": "reproduce_robust_umap_impact.png"}


def main(argv=None) -> None:
    global RESULTS
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dropout-repeats", type=int, default=100, help="repeats per dropout ratio, magmap (paper: 100)")
    p.add_argument("--umap-dropout-repeats", type=int, default=2, help="repeats per ratio, umap-learn transform")
    p.add_argument("--n-cells", type=int, default=None, help="random subsample of cells (smoke tests only)")
    p.add_argument("--out-dir", default=str(RESULTS), help="where the JSON and PNG files go")
    p.add_argument("--cache-dir", default=None, help="pickle fitted models here and reuse them on a rerun "
                                                      "(fit times in the JSON then measure the reload)")
    args = p.parse_args(argv)
    RESULTS = Path(args.out_dir)
    RESULTS.mkdir(parents=True, exist_ok=True)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    bad = [s for s in sections if s not in SECTIONS]
    if bad:
        p.error(f"unknown section(s) {bad}; choose from {', '.join(SECTIONS)}")
    import logging
    import warnings

    logging.getLogger("magmap").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warm_numba()
    d = Data(args.seed, args.n_cells, args.cache_dir)
    funcs = {"strength": section_strength, "fraction": section_fraction, "heldout": section_heldout,
             "dropout": section_dropout, "impact": section_impact}
    for s in sections:
        load_before, t = os.getloadavg(), time.perf_counter()
        payload = funcs[s](d, args)
        payload.update(dataset={"file": PANCREAS[0], "label": PANCREAS[1], "coarse_label": COARSE,
                                "n_cells": int(d.a.n_obs), "n_genes": int(d.a.n_vars)},
                       # fits reloaded from --cache-dir by this process so far (any section): "seconds" excludes them
                       models_reloaded_from_cache=sorted(d.cached))
        dump(s, payload, time.perf_counter() - t, load_before)


if __name__ == "__main__":
    main()
