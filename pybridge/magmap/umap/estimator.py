"""``RobustUMAP``: parametric UMAP with a certified-robustness phase (Zhang & Xu 2023), scikit-learn style.

This module holds the estimator and its fitting; projection (:mod:`.inference`), certification
(:mod:`.certify`), gene impact (:mod:`.impact`), query alignment (:mod:`._inputs`) and model files
(:mod:`.io`) live in their own modules.
"""
from __future__ import annotations

import copy
import functools
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError
from torch import nn

from .._utils import check_memory, resolve_device, seed_everything
from .._validation import check_choice, check_flag, check_matrix, check_number, check_positive_int
from ..crown import crown_bounds, output_bounds
from . import io as _io
from ._inputs import model_inputs, unpack
from .certify import (BOUND_METHODS, DEFAULT_FRACTION, DEFAULT_RTOL, Certificate, bisect_radius, certified_radius,
                      certify)
from .encoder import (DEFAULT_HIDDEN_LAYERS, as_sequential, fold_batch_norm, fold_input_projection, make_encoder,
                      with_batch_norm)
from .graph import default_n_epochs, edge_list, fuzzy_graph, nearest_neighbors
from .impact import cell_gene_impact, gene_impact
from .inference import project
from .losses import LOSSES, find_ab_params
from .preprocess import Preprocessor
from .refine import refine_projection
from .training import TRAINING_BOUNDS, EdgeSchedule, hidden_interval_bounds, train_phase1, train_robust

logger = logging.getLogger("magmap")

__all__ = ["RobustUMAP", "Certificate", "BOUND_METHODS"]

#: Defaults measured in docs/robust_umap.md: phase-1 epochs up to 10,000 cells (200 beyond, as umap-learn
#: halves its own budget there), the robust phase's nominal length (its radius ramp and learning-rate
#: schedule), when it first checks its target, how often, and its cap, the robust phase's training radius
#: as a multiple of the phase-1 network's median certified radius, cells per robust step for the
#: UMAP/reconstruction terms, training cells whose certificates estimate the phase-1 radius (the first
#: ``_RADIUS_ESTIMATE``) and check the target (all ``_RADIUS_SAMPLE``), and the weight of ‖z − ẑ‖².
_DEFAULT_EPOCHS = 300
_DEFAULT_EPOCHS_LARGE = 200
_DEFAULT_ROBUST_EPOCHS = 100
_ROBUST_CHECK_FROM = 60
_ROBUST_CHECK_EVERY = 10
_ROBUST_MAX_EPOCHS = 300
_RADIUS_GAIN = 3.3
_ROBUST_BATCH_FACTOR = 4
_RADIUS_SAMPLE = 64
_RADIUS_ESTIMATE = 32
_ROBUST_LR_FACTOR = 1.0 / 3.0
_RECON_WEIGHT = 3.0


def _median_box_within(net: nn.Module, x: torch.Tensor, epsilon: float, limit: float) -> bool:
    """Whether the median row of ``x`` has a CROWN box at ``epsilon`` with diagonal ≤ ``limit``, i.e. a
    certified radius ≥ ``epsilon`` (one bound evaluation instead of a bisection)."""
    with torch.no_grad():
        b = crown_bounds(net, x, epsilon)
        return bool(np.median(torch.linalg.vector_norm(b.upper - b.lower, dim=1).cpu().numpy()) <= limit)


class RobustUMAP(TransformerMixin, BaseEstimator):
    """Robust parametric UMAP (Zhang & Xu 2023) on single-cell counts.

    **Phase 1** trains a Linear/ReLU encoder with umap-learn's optimiser: each step is one umap-learn
    epoch (edges sampled in proportion to their membership, ``negative_sample_rate`` uniform negatives
    each), the encoder evaluated once per cell, the cross-entropy's gradient with respect to the
    embedding computed as umap-learn's SGD does and back-propagated into the network (Adam). With
    ``n_pcs`` the kNN graph is built on the principal components of the model input and the first layer
    is trained on them (a fixed projection), then folded back into one ``Linear`` on the genes.
    **Robust phase** (``robust``): the same UMAP gradient, ``3‖z − ẑ‖²`` to the frozen phase-1 embedding ẑ
    and a hinge on each cell's certified output box (L∞ ball of radius ``robust_epsilon`` around its
    model input): ``robust_weight · mean(max(0, box diagonal / D − 0.05))`` with D the phase-1
    embedding's bounding-box diagonal, on random cell batches.

    Preprocessing is part of the model: seurat_v3 HVGs on counts, ``normalize_total`` (1e4, over the
    selected genes), ``log1p``, centring (``scale``: z-scoring) with the training statistics. The
    defaults (2,000 genes, log1p, centring, 50 PCs) were chosen by measurement (docs/robust_umap.md). The
    robust-UMAP paper's recipe is ``n_top_genes=300, log1p=False, scale=True, n_pcs=None``.

    Parameters
    ----------
    n_neighbors, n_components, min_dist, spread, metric
        As in umap-learn. The kNN graph is exact below 4,096 cells, pynndescent otherwise.
    n_epochs
        umap-learn epochs of phase 1 (one optimiser step each unless ``batch_size`` splits them).
        ``None``: 300 up to 10,000 cells, 200 beyond.
    batch_size
        Largest number of positive edges per optimiser step (each with ``negative_sample_rate``
        negatives); an epoch with more due edges is split into several steps. ``None``: one step per
        epoch (up to 2²¹ edges).
    learning_rate
        Adam learning rate of phase 1 (3e-3, decaying linearly to 0; the robust phase uses a third of it).
    negative_sample_rate, repulsion_strength
        Negatives per edge (5) and their weight γ (1), as in umap-learn.
    loss
        ``"graph"`` (Eq. 4, default): edges sampled by membership, targets 1 (umap-learn's objective).
        ``"probability"`` (Eq. 3): every edge every epoch, attraction weighted by its membership ``p``
        and repulsion by ``1 − p``.
    hidden_layers, encoder
        Widths of the default MLP (umap-learn's 100-100-100), or a user ``nn.Module`` made only of
        ``nn.Linear``/``nn.ReLU`` layers ending in ``nn.Linear`` taking the model genes (it is copied,
        not modified, and trained on the genes directly, without the PCA factorisation).
    n_top_genes, log1p, scale
        HVG count (``None`` or ≥ the number of genes: all genes), whether to log1p after normalising, and
        whether to divide by the training SDs after centring (z-scores) or only centre.
    n_pcs
        Principal components of the model input for the kNN graph and the factored first layer (50);
        ``None``: graph on the model genes, first layer trained on the genes.
    input_type
        ``"counts"`` (default): the preprocessing above. ``"features"``: the columns are already features,
        e.g. PCA coordinates (signed values allowed): no gene selection or normalisation, centring only.
    epsilon
        L∞ radius of the boxes :meth:`certify` reports by default, in model input units (log-normalised
        expression, centred; z-scores with ``scale=True``). 0.02: the largest radius whose median box
        stayed within 4 % of the map's diagonal on the benchmark sets (docs/robust_umap_certificates.md);
        each cell's own limit is its certified radius.
    robust, robust_weight, robust_epochs, robust_cells
        Whether to run the robust phase, the weight of its box hinge (1), its length in optimiser steps,
        and cells per step whose boxes are bounded (64; the UMAP and reconstruction terms use 4× as
        many cells). ``robust_epochs=None`` runs until its target is met: from step 60 on, every 10
        steps, it stops once the median of 64 training cells has a CROWN box within 5 % of the map at
        ``robust_epsilon`` (its radius schedule assumes 100 steps; past step 100 the hinge weight grows
        as ``robust_weight · step / 100``), at most 300 steps. A number fixes the length. The steps
        taken: ``robust_epochs_``. The robust phase aims at a 3× larger median certified radius: ×3.1–3.4
        on the benchmark sets, where it changed 15-NN label accuracy by −0.012 to +0.005 per seed (median
        −0.001 on pancreas); where it costs accuracy, small populations pay most (pancreas: Delta and
        Epsilon cells). ``embedding_phase1_`` keeps the map from before it; ``robust=False`` with the
        same ``random_state`` draws exactly that map (the robust phase uses no random numbers before it).
    robust_epsilon
        Radius the robust phase trains at. ``None``: 3.3 × the median certified radius of the phase-1
        network (CROWN, on up to 32 training cells), so the robust phase aims at boxes within 5 % of
        the map for perturbations 3.3× larger than phase 1 certified (the margin over 3×: the
        phase ends when the median cell reaches it). Resolved value: ``robust_epsilon_``.
    robust_bound_method
        Bounds inside the robust phase's loss: ``"crown-ibp-hidden"`` (default: exact intervals of the
        first layer, CROWN-IBP above it; no pass over the genes per cell), ``"crown-ibp"`` (its backward
        pass reaches the genes: tighter, ~2× slower per step), ``"crown"`` (~100× slower per cell) or
        ``"ibp"`` (cheapest, far looser).
    bound_method
        Bounds :meth:`certify` reports (``"crown"``, ``"crown-ibp"`` or ``"ibp"``).
    device
        ``"auto"`` (CUDA if visible, else CPU) or a torch device string.
    random_state
        Seed for torch, NumPy, the PCA, the kNN and the samplers; the same seed gives the same embedding
        on CPU.
    verbose
        Progress bars (tqdm) and info logging.

    Attributes
    ----------
    embedding_, encoder_
        Training-cell coordinates and the fitted network (``nn.Sequential`` of Linear/ReLU on the model
        genes, eval mode).
    encoder_phase1_, embedding_phase1_
        Network and embedding at the end of phase 1 (before the robust phase; not saved to disk).
    a_, b_
        Low-dimensional kernel parameters from ``min_dist``/``spread``.
    history_
        ``{"umap": [...], "robust": [...]}`` per-step losses.
    feature_names_in_, n_features_in_, genes_, preprocessor_, mean_, std_, components_, hvg_flavor_
        Training genes, selected model genes, preprocessing statistics and principal axes.
    area_ref_
        Area of the phase-1 embedding's bounding box (box areas are reported relative to it).
    robust_epsilon_, phase1_radius_
        Training radius of the robust phase and the phase-1 median certified radius it was derived from
        (``None`` when ``robust_epsilon`` was given or there was no robust phase).
    n_epochs_, batch_size_, robust_epochs_, fit_time_, random_state_, graph_
        Resolved budget (``robust_epochs_``: robust-phase steps taken), timings (s), seed used and the
        fuzzy kNN graph (CSR).
    graph_coords_
        Training cells' coordinates in the space of the kNN graph (principal components; model inputs
        without PCA), float32; ``transform(refine=True)`` finds new cells' neighbours among them.
    """

    def __init__(
        self, n_neighbors: int = 15, n_components: int = 2, min_dist: float = 0.1, spread: float = 1.0,
        metric: str = "euclidean", n_epochs: int | None = None, batch_size: int | None = None,
        learning_rate: float = 3e-3, negative_sample_rate: int = 5, repulsion_strength: float = 1.0,
        loss: str = "graph", hidden_layers: tuple[int, ...] = DEFAULT_HIDDEN_LAYERS,
        encoder: nn.Module | None = None, n_top_genes: int | None = 2000, log1p: bool = True,
        scale: bool = False, n_pcs: int | None = 50, input_type: str = "counts",
        epsilon: float = 0.02, robust: bool = True, robust_weight: float = 1.0, robust_epochs: int | None = None,
        robust_cells: int = 64, robust_epsilon: float | None = None, robust_bound_method: str = "crown-ibp-hidden",
        bound_method: str = "crown", device: str = "auto", random_state: int | None = None, verbose: bool = True,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.n_components = n_components
        self.min_dist = min_dist
        self.spread = spread
        self.metric = metric
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.negative_sample_rate = negative_sample_rate
        self.repulsion_strength = repulsion_strength
        self.loss = loss
        self.hidden_layers = hidden_layers
        self.encoder = encoder
        self.n_top_genes = n_top_genes
        self.log1p = log1p
        self.scale = scale
        self.n_pcs = n_pcs
        self.input_type = input_type
        self.epsilon = epsilon
        self.robust = robust
        self.robust_weight = robust_weight
        self.robust_epochs = robust_epochs
        self.robust_cells = robust_cells
        self.robust_epsilon = robust_epsilon
        self.robust_bound_method = robust_bound_method
        self.bound_method = bound_method
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self) -> None:
        check_positive_int(self.n_neighbors, "n_neighbors", minimum=2)
        check_positive_int(self.n_components, "n_components")
        check_positive_int(self.negative_sample_rate, "negative_sample_rate", minimum=0)
        for name in ("n_epochs", "batch_size", "robust_epochs", "n_pcs"):
            if getattr(self, name) is not None:
                check_positive_int(getattr(self, name), name, minimum=0 if name == "robust_epochs" else 1)
        check_positive_int(self.robust_cells, "robust_cells")
        check_choice(self.loss, "loss", LOSSES)
        check_choice(self.input_type, "input_type", ("counts", "features"))
        check_choice(self.bound_method, "bound_method", BOUND_METHODS)
        check_choice(self.robust_bound_method, "robust_bound_method", TRAINING_BOUNDS)
        if not self.learning_rate > 0:
            raise ValueError(f"`learning_rate` must be positive, got {self.learning_rate}.")
        check_number(self.min_dist, "min_dist")
        check_number(self.epsilon, "epsilon")  # L∞ radius in model input units
        check_flag(self.robust, "robust")
        check_flag(self.log1p, "log1p")
        if self.robust_epsilon is not None and not (np.isfinite(self.robust_epsilon) and self.robust_epsilon > 0):
            raise ValueError(f"`robust_epsilon` must be a positive number (L∞ radius in model input units) or None "
                             f"(3.3 × the phase-1 median certified radius), got {self.robust_epsilon}.")
        if not self.robust_weight >= 0:
            raise ValueError(f"`robust_weight` must be ≥ 0, got {self.robust_weight}.")
        if self.n_top_genes is not None:
            check_positive_int(self.n_top_genes, "n_top_genes", minimum=2)

    # --------------------------------------------------------------------- fit
    def fit(self, X: Any, y: Any = None, *, layer: str | None = None) -> "RobustUMAP":
        """Fit on counts: an AnnData (``adata.X`` or ``layer``; genes named by ``var_names``) or a cells × genes
        matrix (ndarray or scipy sparse; genes are then positional).

        Raises
        ------
        ValueError
            NaN/Inf, negative values, all-zero cells, fewer cells than ``n_neighbors + 1``, bad parameters.
        """
        self._check_params()
        t_start = time.perf_counter()
        M, names = unpack(X, layer)
        counts = self.input_type == "counts"
        M = check_matrix(M, name="X", nonnegative=counts, min_cells=2, min_genes=2, allow_empty_genes=True,
                         allow_empty_cells=not counts)
        n_cells, n_genes = M.shape
        if n_cells <= self.n_neighbors:
            raise ValueError(
                f"`X` has {n_cells} cells but `n_neighbors={self.n_neighbors}` needs at least {self.n_neighbors + 1}; "
                f"lower n_neighbors (e.g. n_neighbors={max(2, n_cells // 3)}) or pass more cells."
            )
        n_sel = n_genes if self.n_top_genes is None else min(self.n_top_genes, n_genes)
        check_memory(n_cells * n_sel * 8 * 3, "RobustUMAP.fit (dense model-input training matrix)",
                     fix="Fit on a subsample of cells and project the rest with transform().")
        rng = seed_everything(self.random_state)
        seed = int(rng.integers(0, 2**31 - 1)) if self.random_state is None else int(self.random_state)
        device = torch.device(resolve_device(self.device))

        self.feature_names_in_ = np.asarray(names if names is not None else [str(i) for i in range(n_genes)], dtype=object)
        self.features_positional_ = names is None
        self.n_features_in_ = n_genes
        pre = Preprocessor(n_top_genes=self.n_top_genes, log1p=bool(self.log1p) and counts,
                           scale=bool(self.scale) and counts, n_pcs=self.n_pcs, counts=counts)
        Xz = pre.fit(M, self.feature_names_in_, random_state=seed)
        del M
        self.preprocessor_ = pre
        self.hvg_flavor_ = pre.hvg_flavor
        t_graph = time.perf_counter()
        Y = pre.pca(Xz)
        ind, dist = nearest_neighbors(Y, int(self.n_neighbors), metric=self.metric, random_state=seed)
        graph = fuzzy_graph(ind, dist)
        heads, tails, weights = edge_list(graph, prune_epochs=default_n_epochs(n_cells))
        self.graph_ = graph
        self.graph_coords_ = np.asarray(Y, dtype=np.float32)
        self._refine_index = None  # transform(refine=True)'s search index belongs to the previous fit
        t_graph = time.perf_counter() - t_graph
        self.a_, self.b_ = find_ab_params(self.spread, self.min_dist)

        torch.manual_seed(seed)
        gen = torch.Generator(device=device).manual_seed(seed)
        edges = EdgeSchedule.build(heads, tails, weights, self.loss, device)
        Xt = torch.from_numpy(Xz).to(device)
        factored = self.encoder is None and pre.components is not None
        if factored:
            # train on the principal components, scaled to unit root-mean-square norm per cell
            pc_scale = float(np.sqrt(np.mean(np.sum(Y.astype(np.float64) ** 2, axis=1)))) or 1.0
            train_in = torch.from_numpy(np.ascontiguousarray(Y / pc_scale, dtype=np.float32)).to(device)
            base = make_encoder(train_in.shape[1], int(self.n_components), self.hidden_layers)
        else:
            train_in = Xt
            base = make_encoder(Xz.shape[1], int(self.n_components), self.hidden_layers) if self.encoder is None \
                else as_sequential(copy.deepcopy(self.encoder), Xz.shape[1], int(self.n_components))
        del Y
        net = with_batch_norm(base.to(device=device, dtype=torch.float32))
        self.n_epochs_ = int(self.n_epochs) if self.n_epochs is not None else \
            (_DEFAULT_EPOCHS if n_cells <= 10_000 else _DEFAULT_EPOCHS_LARGE)
        self.batch_size_ = int(self.batch_size) if self.batch_size is not None else 1 << 21
        common = dict(a=self.a_, b=self.b_, negative_sample_rate=int(self.negative_sample_rate),
                      repulsion_strength=float(self.repulsion_strength), generator=gen, verbose=bool(self.verbose))
        t1 = time.perf_counter()
        net.train()
        self.history_ = {"umap": train_phase1(net, train_in, edges, n_epochs=self.n_epochs_,
                                              learning_rate=float(self.learning_rate), batch_size=self.batch_size_,
                                              **common)}
        net = fold_batch_norm(net, train_in)
        if factored:
            net = fold_input_projection(net, torch.from_numpy(pre.components), pc_scale)
        del train_in
        net.eval()
        t1 = time.perf_counter() - t1
        targets = self._forward(net, Xt)
        self.encoder_phase1_ = copy.deepcopy(net)
        self.embedding_phase1_ = targets
        self.area_ref_ = float(np.prod(targets.max(axis=0) - targets.min(axis=0)))
        self.robust_epsilon_, self.phase1_radius_ = None, None
        t2 = 0.0
        r_epochs = 0
        if self.robust:
            r_epochs = int(self.robust_epochs) if self.robust_epochs is not None else _DEFAULT_ROBUST_EPOCHS
        if r_epochs > 0:
            t2 = time.perf_counter()
            diagonal = float(np.linalg.norm(targets.max(axis=0) - targets.min(axis=0))) or 1.0
            limit = DEFAULT_FRACTION * diagonal
            sample = Xt[torch.from_numpy(np.sort(
                np.random.default_rng(seed + 1).permutation(n_cells)[:_RADIUS_SAMPLE])).to(device)]
            if self.robust_epsilon is None:
                self.phase1_radius_ = float(np.median(bisect_radius(net, sample[:_RADIUS_ESTIMATE], limit,
                                                                    method="crown", rtol=0.1).radius))
                self.robust_epsilon_ = _RADIUS_GAIN * self.phase1_radius_
            else:
                self.robust_epsilon_ = float(self.robust_epsilon)
            adaptive = {}
            if self.robust_epochs is None:  # until the median sampled cell is certified at the training radius
                adaptive = dict(stop=functools.partial(_median_box_within, x=sample, epsilon=self.robust_epsilon_,
                                                       limit=limit),
                                check_from=_ROBUST_CHECK_FROM, check_every=_ROBUST_CHECK_EVERY,
                                max_epochs=_ROBUST_MAX_EPOCHS)
            net.train()
            self.history_["robust"] = train_robust(
                net, Xt, edges, torch.from_numpy(targets).to(device), n_epochs=r_epochs,
                epsilon=self.robust_epsilon_, weight=float(self.robust_weight), fraction=DEFAULT_FRACTION,
                diagonal=diagonal, bounds=hidden_interval_bounds if self.robust_bound_method == "crown-ibp-hidden"
                else functools.partial(output_bounds, method=self.robust_bound_method),
                cells=_ROBUST_BATCH_FACTOR * int(self.robust_cells), bound_cells=int(self.robust_cells),
                recon_weight=_RECON_WEIGHT, learning_rate=float(self.learning_rate) * _ROBUST_LR_FACTOR, **common, **adaptive)
            t2 = time.perf_counter() - t2
            r_epochs = len(self.history_["robust"])
        self.robust_epochs_ = r_epochs
        net.eval()
        self.encoder_ = net
        self.embedding_ = self._forward(net, Xt)
        self.random_state_ = seed
        self.fit_time_ = {"graph": t_graph, "phase1": t1, "robust": t2, "total": time.perf_counter() - t_start}
        logger.info("RobustUMAP fitted on %d cells × %d genes (graph %.1f s, phase 1 %.1f s, robust %.1f s)",
                    n_cells, Xz.shape[1], t_graph, t1, t2)
        return self

    @staticmethod
    def _forward(net: nn.Module, Xt: torch.Tensor, chunk: int = 65536) -> np.ndarray:
        with torch.inference_mode():
            return np.concatenate([net(Xt[i:i + chunk]).float().cpu().numpy() for i in range(0, Xt.shape[0], chunk)]) \
                if Xt.shape[0] else np.zeros((0, net[-1].out_features), np.float32)

    def fit_transform(self, X: Any, y: Any = None, *, layer: str | None = None) -> np.ndarray:
        """Fit and return ``embedding_`` (the training cells' coordinates)."""
        return self.fit(X, layer=layer).embedding_

    # --------------------------------------------------------------- transform
    def _check_fitted(self) -> None:
        if not hasattr(self, "encoder_"):
            raise NotFittedError("This RobustUMAP is not fitted yet; call fit(X) or RobustUMAP.load(path) first.")

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "encoder_")

    def transform(self, X: Any, *, layer: str | None = None, missing_genes: str = "error",
                  chunk_size: int = 16384, refine: bool = False, refine_epochs: int | None = None) -> np.ndarray:
        """Project new cells (counts) with the training preprocessing statistics.

        ``X`` is an AnnData (genes aligned by ``var_names``), a matrix with the training columns, or a
        dask array (processed lazily, ``chunk_size`` cells at a time, so memory stays bounded).
        ``missing_genes="zero"`` fills model genes absent from the query with zero counts; the default
        ``"error"`` raises, naming the missing genes. The z-scoring is folded into the first layer, so
        the result equals ``encoder_(preprocess(X))`` up to float32 rounding.

        Sparse input is never densified: each chunk is multiplied as a sparse matrix by the folded
        first-layer weights (library sizes come from an extra all-ones weight column; the library-size
        scaling is applied to the 100-wide product; ``log1p`` acts on the stored values only). When the
        query's columns are exactly the model genes in another order (or a subset, with
        ``missing_genes="zero"``), the weights are permuted instead of the data.

        ``refine=True`` then optimises each projected cell's position against the frozen training map, as
        umap-learn's ``transform`` does (attraction to its ``n_neighbors`` nearest training cells in the
        graph's PC space, repulsion from random training cells; ``refine_epochs``, default 100 up to
        10,000 cells and 30 beyond, at its learning rate, a quarter of its fit's): cells between two
        populations settle in one of them, so labels transfer more accurately (docs/robust_umap.md §3),
        at the cost of a neighbour search and the optimisation (thousands instead of ~10⁵ cells/s). The
        refined coordinates are no longer the network's output: :meth:`certify` bounds the encoder's
        output (the refinement's start), not them. Deterministic for a given model and query. Sparse,
        dense and dask input start from the same positions up to float32 rounding and almost every cell
        ends at the same place; a cell at a tipping point between two populations can settle in either
        (as with umap-learn's ``transform``), so a few cells in a hundred may differ between input types
        or CPUs.
        """
        self._check_fitted()
        check_positive_int(chunk_size, "chunk_size")
        check_flag(refine, "refine")
        if refine_epochs is not None:
            check_positive_int(refine_epochs, "refine_epochs", minimum=0)
        Z = project(self, X, layer=layer, missing_genes=missing_genes, chunk_size=chunk_size)
        if refine:
            Z = refine_projection(self, X, Z, layer=layer, missing_genes=missing_genes, chunk_size=chunk_size,
                                  n_epochs=refine_epochs)
        return Z

    def preprocess(self, X: Any, *, layer: str | None = None, missing_genes: str = "error") -> np.ndarray:
        """The model inputs (z-scored selected genes, float32) for counts ``X``."""
        self._check_fitted()
        return np.concatenate(list(model_inputs(self, X, layer, missing_genes, 1 << 30)))

    # ----------------------------------------------------------------- certify
    def certify(self, X: Any, epsilon: float | None = None, *, radius: bool = True,
                fraction: float = DEFAULT_FRACTION, rtol: float = DEFAULT_RTOL, layer: str | None = None,
                method: str | None = None, missing_genes: str = "error", batch_size: int = 4096) -> Certificate:
        """Certificates of cells ``X`` (counts): output boxes at ``epsilon`` and certified radii.

        Every input within ``epsilon`` (L∞, model input units: z-scores for count models; ``None``: the
        model's ``epsilon``) maps into the cell's box; every input within the cell's ``radius`` maps into a
        box whose diagonal is ≤ ``fraction`` × the training embedding's diagonal (see
        :meth:`certified_radius`; ``radius=False`` skips it, which is ~8× cheaper).

        Returns a :class:`Certificate` (``lower``, ``upper``, ``diagonal``, ``relative_diagonal``, ``area``,
        ``relative_area``, ``radius``, ``summary()``).
        """
        return certify(self, X, epsilon, radius=radius, fraction=fraction, rtol=rtol, layer=layer, method=method,
                       missing_genes=missing_genes, batch_size=batch_size)

    def certified_radius(self, X: Any, *, fraction: float = DEFAULT_FRACTION, rtol: float = DEFAULT_RTOL,
                         layer: str | None = None, method: str | None = None, missing_genes: str = "error",
                         batch_size: int = 4096) -> np.ndarray:
        """Certified radius of each cell of ``X`` (counts): the largest L∞ ε (model input units) for which the
        certified output box (``method``, default ``bound_method``) has diagonal ≤ ``fraction`` × the
        diagonal of the training embedding's bounding box, found by bisection on the bound to relative
        precision ``rtol``. All cells bisect together. 0: the box exceeds the limit already at ε = 1e-6.
        """
        return certified_radius(self, X, fraction=fraction, rtol=rtol, layer=layer, method=method,
                                missing_genes=missing_genes, batch_size=batch_size)

    # ------------------------------------------------------------- gene impact
    def gene_impact(self, X: Any, *, layer: str | None = None, norm: str = "l1", missing_genes: str = "error",
                    batch_size: int = 4096):
        """Per-gene impact ``I_g = Σ_c ‖∂f(x_c)/∂x_cg‖`` (paper §3.5), by autograd on the z-scored inputs.

        ``norm="l1"`` sums ``|∂f_1/∂x| + |∂f_2/∂x| + …``; ``"l2"`` takes the Euclidean norm over output
        dimensions. Returns a ``pandas.Series`` indexed by gene.
        """
        return gene_impact(self, X, layer=layer, norm=norm, missing_genes=missing_genes, batch_size=batch_size)

    def cell_gene_impact(self, X: Any, *, n_top: int = 10, norm: str = "l2", layer: str | None = None,
                         missing_genes: str = "error", batch_size: int = 2048):
        """The ``n_top`` genes that move each cell's embedding most: ``‖∂f(x_c)/∂x_cg‖`` per cell and gene.

        Gradients are taken with respect to the model inputs (the units of ``epsilon``): for z-scored
        inputs, per training standard deviation of the gene, so genes on different expression scales
        compare. ``norm="l2"`` (default) is the distance the cell's embedding moves per input unit (to
        first order); ``"l1"`` sums over embedding dimensions.
        Returns a tidy ``pandas.DataFrame`` with one row per cell and rank: ``cell`` (obs name, or row
        position for a matrix), ``rank`` (1 = largest), ``gene``, ``impact`` (``n_top`` is capped at the
        number of model genes).
        """
        return cell_gene_impact(self, X, n_top=n_top, norm=norm, layer=layer, missing_genes=missing_genes,
                                batch_size=batch_size)

    # --------------------------------------------------------------- save/load
    @property
    def genes_(self) -> list[str]:
        """Names of the model's input genes (selected HVGs), in input order."""
        self._check_fitted()
        return list(self.preprocessor_.genes)

    @property
    def mean_(self) -> np.ndarray:
        """Training means of the model genes (after normalisation/log1p)."""
        return self.preprocessor_.mean

    @property
    def std_(self) -> np.ndarray:
        """Training SDs of the model genes (all 1 when ``scale=False``: centring only; zero-variance genes: 1)."""
        return self.preprocessor_.std

    @property
    def components_(self) -> np.ndarray | None:
        """Principal axes ``(n_pcs, n_genes)`` of the training model input (``None`` without PCA): the kNN
        graph was built on ``preprocess(X) @ components_.T``."""
        return self.preprocessor_.components

    def to_bytes(self) -> bytes:
        """The whole model as one byte blob (zip: ``manifest.json`` + ``weights.safetensors``; no pickle)."""
        self._check_fitted()
        return _io.model_to_bytes(self)

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_bytes` to ``path`` (conventionally ``*.magmap.zip``); returns the path."""
        path = Path(path)
        path.write_bytes(self.to_bytes())
        return path

    @classmethod
    def from_bytes(cls, blob: bytes | bytearray | np.ndarray, *, device: str = "cpu") -> "RobustUMAP":
        """Rebuild a fitted model from :meth:`to_bytes` output (JSON + raw arrays; runs no code)."""
        return _io.model_from_bytes(cls, blob, device=device)

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> "RobustUMAP":
        """Load a model written by :meth:`save` (no pickle, no code execution)."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"`path={str(path)!r}` does not exist; pass the file written by RobustUMAP.save().")
        return cls.from_bytes(path.read_bytes(), device=device)

    def __repr__(self) -> str:
        fitted = hasattr(self, "encoder_")
        return (f"RobustUMAP(n_neighbors={self.n_neighbors}, n_components={self.n_components}, loss={self.loss!r}, "
                f"robust={self.robust}, epsilon={self.epsilon}, random_state={self.random_state})"
                + (f" fitted on {len(self.genes_)} genes" if fitted else ""))
