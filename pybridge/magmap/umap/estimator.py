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
from .._validation import check_choice, check_matrix, check_positive_int
from ..crown import output_bounds
from . import io as _io
from ._inputs import model_inputs, unpack
from .certify import BOUND_METHODS, DEFAULT_FRACTION, DEFAULT_RTOL, Certificate, certified_radius, certify
from .encoder import DEFAULT_HIDDEN_LAYERS, as_sequential, make_encoder
from .graph import default_n_epochs, edge_list, fuzzy_graph, nearest_neighbors
from .impact import cell_gene_impact, gene_impact
from .inference import project
from .losses import LOSSES, find_ab_params
from .preprocess import Preprocessor
from .training import EdgeSampler, train_umap

logger = logging.getLogger("magmap")

__all__ = ["RobustUMAP", "Certificate", "BOUND_METHODS"]

#: Default optimiser steps of phase 1 (see ``RobustUMAP._budget``).
_DEFAULT_STEPS = 600


class RobustUMAP(TransformerMixin, BaseEstimator):
    """Robust parametric UMAP (Zhang & Xu 2023) on single-cell counts.

    Phase 1 trains a Linear/ReLU encoder on the UMAP loss of the paper (Eq. 3 ``loss="probability"``
    or Eq. 4 ``loss="graph"``) with permutation negative sampling. If ``robust``, phase 2 continues with
    ``L_UMAP + λ·mean box area (Eq. 5–6) + mean ‖z − ẑ‖² (Eq. 7)`` where the boxes are certified output
    bounds (CROWN by default) for inputs in an L∞ ball of radius ``epsilon`` around each cell's z-scores
    and ẑ is the frozen phase-1 embedding; λ = ``robust_weight`` / (area of the phase-1 embedding's
    bounding box).

    Preprocessing is part of the model (paper §2.3): seurat_v3 HVGs on counts, ``normalize_total``
    (1e4, over the selected genes), optional ``log1p``, z-scoring with the training statistics.

    Parameters
    ----------
    n_neighbors, n_components, min_dist, spread, metric
        As in umap-learn. The kNN graph is exact below 4,096 cells, pynndescent otherwise.
    n_epochs
        Passes over the pruned directed edge list (each edge once per epoch, uniform order). ``None``:
        about 600 optimiser steps, i.e. ``round(600 / ceil(n_edges / batch_size))`` epochs clipped to
        [5, 500] (46 epochs for the 3,696-cell pancreas, ~1 min on 2 CPU cores).
    batch_size
        Positive edges per optimiser step (each with ``negative_sample_rate`` negatives). ``None``:
        ``min(n_edges, 8192)``.
    learning_rate
        Adam learning rate (1e-3; gradients clipped element-wise at ±4 as in umap-learn).
    negative_sample_rate, repulsion_strength
        Negatives per edge (5) and their weight η (1).
    loss
        ``"graph"`` (Eq. 4, default: edges binarised) or ``"probability"`` (Eq. 3, memberships as targets).
        On the pancreas benchmark the graph loss matched umap-learn's trustworthiness and kNN-label
        accuracy within the training budget; the probability loss trailed (T 0.72 vs 0.74, accuracy
        0.78 vs 0.82 after 800 steps), because its ``(1 − p)·log(1 − q)`` term repels weak neighbours.
    hidden_layers, encoder
        Widths of the default MLP (umap-learn's 100-100-100), or a user ``nn.Module`` made only of
        ``nn.Linear``/``nn.ReLU`` layers ending in ``nn.Linear`` (it is copied, not modified).
    n_top_genes, log1p
        HVG count (``None`` or ≥ the number of genes: all genes) and whether to log1p after normalising.
    input_type
        ``"counts"`` (default): the paper's preprocessing (HVG, library-size normalisation, optional
        log1p, z-scoring). ``"features"``: the columns are already features, e.g. PCA coordinates
        (signed values allowed): no gene selection or normalisation, centring only, so ``epsilon`` is
        in the features' own units.
    epsilon
        L∞ radius of the certified ball, in z-score units (0.2) (input units for ``input_type="features"``).
    robust, robust_weight, robust_epochs, robust_cells
        Whether to run phase 2, its λ₀, its length in epochs (``None``: 10 % of phase 1), and cells per
        step for the bound loss (32: CROWN costs hundreds of forward passes per cell; on the 2,000-gene
        pancreas one CROWN bound + gradient for 128 cells took 3–11 s on 2 shared CPU cores).
    bound_method
        ``"crown"``, ``"crown-ibp"`` or ``"ibp"`` (``magmap.crown.output_bounds``).
    device
        ``"auto"`` (CUDA if visible, else CPU) or a torch device string.
    random_state
        Seed for torch, NumPy, the kNN and the samplers; the same seed gives the same embedding on CPU.
    verbose
        Progress bars (tqdm) and info logging.

    Attributes
    ----------
    embedding_, encoder_
        Training-cell coordinates and the fitted network (``nn.Sequential``, eval mode).
    encoder_phase1_, embedding_phase1_
        Network and embedding at the end of phase 1 (before the robust phase; not saved to disk).
    a_, b_
        Low-dimensional kernel parameters from ``min_dist``/``spread``.
    history_
        ``{"umap": [...], "robust": [...]}`` per-step losses.
    feature_names_in_, n_features_in_, genes_, preprocessor_, mean_, std_, hvg_flavor_
        Training genes, selected model genes and preprocessing statistics.
    area_ref_
        Area of the phase-1 embedding's bounding box (λ = robust_weight / area_ref_; box areas are reported
        relative to it).
    n_epochs_, batch_size_, robust_epochs_, fit_time_, random_state_, graph_
        Resolved budget, timings (s), seed used and the fuzzy kNN graph (CSR).
    """

    def __init__(
        self, n_neighbors: int = 15, n_components: int = 2, min_dist: float = 0.1, spread: float = 1.0,
        metric: str = "euclidean", n_epochs: int | None = None, batch_size: int | None = None,
        learning_rate: float = 1e-3, negative_sample_rate: int = 5, repulsion_strength: float = 1.0,
        loss: str = "graph", hidden_layers: tuple[int, ...] = DEFAULT_HIDDEN_LAYERS,
        encoder: nn.Module | None = None, n_top_genes: int | None = 2000, log1p: bool = False,
        input_type: str = "counts",
        epsilon: float = 0.2, robust: bool = True, robust_weight: float = 1.0, robust_epochs: int | None = None,
        robust_cells: int = 32, bound_method: str = "crown", device: str = "auto",
        random_state: int | None = None, verbose: bool = True,
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
        self.input_type = input_type
        self.epsilon = epsilon
        self.robust = robust
        self.robust_weight = robust_weight
        self.robust_epochs = robust_epochs
        self.robust_cells = robust_cells
        self.bound_method = bound_method
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self) -> None:
        check_positive_int(self.n_neighbors, "n_neighbors", minimum=2)
        check_positive_int(self.n_components, "n_components")
        check_positive_int(self.negative_sample_rate, "negative_sample_rate", minimum=0)
        for name in ("n_epochs", "batch_size", "robust_epochs"):
            if getattr(self, name) is not None:
                check_positive_int(getattr(self, name), name, minimum=0 if name == "robust_epochs" else 1)
        check_positive_int(self.robust_cells, "robust_cells")
        check_choice(self.loss, "loss", LOSSES)
        check_choice(self.input_type, "input_type", ("counts", "features"))
        check_choice(self.bound_method, "bound_method", BOUND_METHODS)
        if not self.learning_rate > 0:
            raise ValueError(f"`learning_rate` must be positive, got {self.learning_rate}.")
        if not self.epsilon >= 0:
            raise ValueError(f"`epsilon` must be ≥ 0 (L∞ radius in z-score units), got {self.epsilon}.")
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
        check_memory(n_cells * n_sel * 8 * 3, "RobustUMAP.fit (dense z-scored training matrix)",
                     fix="Fit on a subsample of cells and project the rest with transform().")
        rng = seed_everything(self.random_state)
        seed = int(rng.integers(0, 2**31 - 1)) if self.random_state is None else int(self.random_state)
        device = resolve_device(self.device)

        self.feature_names_in_ = np.asarray(names if names is not None else [str(i) for i in range(n_genes)], dtype=object)
        self.features_positional_ = names is None
        self.n_features_in_ = n_genes
        pre = Preprocessor(n_top_genes=self.n_top_genes, log1p=bool(self.log1p) and counts, counts=counts)
        Xz = pre.fit(M, self.feature_names_in_)
        del M
        self.preprocessor_ = pre
        self.hvg_flavor_ = pre.hvg_flavor
        t_graph = time.perf_counter()
        ind, dist = nearest_neighbors(Xz, int(self.n_neighbors), metric=self.metric, random_state=seed)
        graph = fuzzy_graph(ind, dist, random_state=seed)
        heads, tails, weights = edge_list(graph, prune_epochs=default_n_epochs(n_cells))
        self.graph_ = graph
        t_graph = time.perf_counter() - t_graph
        self.a_, self.b_ = find_ab_params(self.spread, self.min_dist)

        torch.manual_seed(seed)
        if self.encoder is None:
            net = make_encoder(Xz.shape[1], int(self.n_components), self.hidden_layers)
        else:
            net = as_sequential(copy.deepcopy(self.encoder), Xz.shape[1], int(self.n_components))
        net = net.to(device=device, dtype=torch.float32)
        Xt = torch.from_numpy(Xz).to(device)
        n_epochs, batch_size = self._budget(heads.size, n_cells)
        self.n_epochs_, self.batch_size_ = n_epochs, batch_size
        sampler = EdgeSampler(heads, tails, weights, batch_size, np.random.default_rng(seed))
        gen = torch.Generator(device=device).manual_seed(seed)
        n_steps = n_epochs * sampler.steps_per_epoch()
        common = dict(a=self.a_, b=self.b_, loss=self.loss, learning_rate=float(self.learning_rate),
                      negative_sample_rate=int(self.negative_sample_rate),
                      repulsion_strength=float(self.repulsion_strength), generator=gen, verbose=bool(self.verbose))
        t1 = time.perf_counter()
        net.train()
        self.history_ = {"umap": train_umap(net, Xt, sampler, n_steps=n_steps, desc="RobustUMAP phase 1", **common)}
        t1 = time.perf_counter() - t1
        targets = self._forward(net, Xt)
        self.encoder_phase1_ = copy.deepcopy(net).eval()
        self.embedding_phase1_ = targets
        self.area_ref_ = float(np.prod(targets.max(axis=0) - targets.min(axis=0)))
        t2 = 0.0
        if self.robust:
            r_epochs = self.robust_epochs if self.robust_epochs is not None else max(1, int(round(0.1 * n_epochs)))
            robust = {"targets": torch.from_numpy(targets).to(device), "epsilon": float(self.epsilon),
                      "lam": float(self.robust_weight) / max(self.area_ref_, 1e-12),
                      "bounds": functools.partial(output_bounds, method=self.bound_method), "n_cells": int(self.robust_cells),
                      "rng": np.random.default_rng(seed + 1), "recon_weight": 1.0}
            t2 = time.perf_counter()
            self.history_["robust"] = train_umap(net, Xt, sampler, n_steps=r_epochs * sampler.steps_per_epoch(),
                                                 desc="RobustUMAP robust phase", robust=robust, **common)
            t2 = time.perf_counter() - t2
            self.robust_epochs_ = r_epochs
        else:
            self.robust_epochs_ = 0
        net.eval()
        self.encoder_ = net
        self.embedding_ = self._forward(net, Xt)
        self.random_state_ = seed
        self.fit_time_ = {"graph": t_graph, "phase1": t1, "robust": t2, "total": time.perf_counter() - t_start}
        logger.info("RobustUMAP fitted on %d cells × %d genes (graph %.1f s, phase 1 %.1f s, robust %.1f s)",
                    n_cells, Xz.shape[1], t_graph, t1, t2)
        return self

    def _budget(self, n_edges: int, n_cells: int) -> tuple[int, int]:
        """Default batch size and epochs (see the class docstring)."""
        batch = int(self.batch_size) if self.batch_size is not None else int(min(n_edges, 8192))
        if self.n_epochs is not None:
            return int(self.n_epochs), batch
        steps_per_epoch = max(1, int(np.ceil(n_edges / batch)))
        target_steps = _DEFAULT_STEPS
        return int(max(5, min(500, round(target_steps / steps_per_epoch)))), batch

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
                  chunk_size: int = 16384) -> np.ndarray:
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
        """
        self._check_fitted()
        check_positive_int(chunk_size, "chunk_size")
        return project(self, X, layer=layer, missing_genes=missing_genes, chunk_size=chunk_size)

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
        """Training SDs of the model genes (zero-variance genes: 1)."""
        return self.preprocessor_.std

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
