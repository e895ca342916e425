"""``RobustUMAP``: parametric UMAP with a certified-robustness phase (Zhang & Xu 2023), scikit-learn style."""
from __future__ import annotations

import copy
import logging
import time
import warnings
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .._utils import check_memory, resolve_device, seed_everything, versions
from .._validation import check_choice, check_matrix, check_positive_int, matrix_from_adata
from . import io as _io
from .encoder import DEFAULT_HIDDEN_LAYERS, as_sequential, layer_widths, make_encoder, rebuild
from .graph import default_n_epochs, edge_list, fuzzy_graph, nearest_neighbors
from .losses import LOSSES, find_ab_params
from .preprocess import MISSING_GENES, Preprocessor
from .training import EdgeSampler, bound_fn, box_area, train_umap

logger = logging.getLogger("magmap")

__all__ = ["RobustUMAP", "Certificate", "BOUND_METHODS"]

BOUND_METHODS = ("crown", "crown-ibp", "ibp")
_PARAMS = ("n_neighbors", "n_components", "min_dist", "spread", "metric", "n_epochs", "batch_size", "learning_rate",
           "negative_sample_rate", "repulsion_strength", "loss", "hidden_layers", "n_top_genes", "log1p", "input_type", "epsilon",
           "robust", "robust_weight", "robust_epochs", "robust_cells", "bound_method", "device", "random_state",
           "verbose")


@dataclass
class Certificate:
    """Certified output boxes: for every cell, every input within ``epsilon`` (L∞, z-score units) maps
    into ``[lower, upper]``.

    Attributes
    ----------
    lower, upper
        ``(n_cells, n_components)`` bounds.
    area
        Box volume ``Π_j (upper_j − lower_j)`` per cell, in embedding units.
    relative_area
        ``area / area_ref``, where ``area_ref`` is the volume of the training embedding's bounding box
        (comparable across models with different embedding scales).
    epsilon, method
        Perturbation radius and bound method used.
    """

    lower: np.ndarray
    upper: np.ndarray
    area: np.ndarray
    relative_area: np.ndarray
    epsilon: float
    method: str

    def summary(self) -> dict[str, float]:
        """Mean, median and 90th percentile of the relative box area; mean box side per dimension."""
        r = self.relative_area
        width = self.upper - self.lower
        return {"mean_relative_area": float(r.mean()), "median_relative_area": float(np.median(r)),
                "q90_relative_area": float(np.quantile(r, 0.9)), "mean_area": float(self.area.mean()),
                **{f"mean_width_{j}": float(width[:, j].mean()) for j in range(width.shape[1])},
                "epsilon": float(self.epsilon)}


def _is_anndata(X: Any) -> bool:
    return hasattr(X, "obs") and hasattr(X, "var_names") and hasattr(X, "X")


def _is_dask(X: Any) -> bool:
    return type(X).__module__.startswith("dask") and hasattr(X, "compute")


def _row_blocks(M: Any, chunk_size: int):
    """Row blocks of ``M``: CSR views for scipy CSR input (no copy), computed blocks for dask arrays, CSR for
    other sparse formats, arrays otherwise."""
    n = M.shape[0]
    if sp.issparse(M) and M.format == "csr":
        indptr, indices, data = M.indptr, M.indices, M.data
        for s in range(0, n, chunk_size):
            e = min(s + chunk_size, n)
            p0, p1 = int(indptr[s]), int(indptr[e])
            yield sp.csr_matrix((data[p0:p1], indices[p0:p1], indptr[s:e + 1] - p0), shape=(e - s, M.shape[1]),
                                copy=False)
        return
    for s in range(0, n, chunk_size):
        block = M[s:s + chunk_size]
        if _is_dask(block):
            block = block.compute()
        yield sp.csr_matrix(block) if sp.issparse(block) else np.asarray(block)


#: Rows per block of ``transform`` (within each ``chunk_size`` chunk): the ~100-wide activations stay in cache.
_BLOCK_ROWS = 4096


def _in_inference(fn, *args):
    with torch.inference_mode():
        return fn(*args)


def _torch_csr(block: sp.csr_matrix, data: np.ndarray) -> torch.Tensor:
    """A torch sparse CSR tensor sharing ``block``'s index arrays (int32 when they fit: faster with MKL)."""
    indices = block.indices
    indptr = block.indptr.astype(indices.dtype, copy=False) if indices.dtype == np.int32 and block.nnz < 2**31 \
        else block.indptr.astype(np.int64, copy=False)
    if indptr.dtype != indices.dtype:
        indices = indices.astype(indptr.dtype)
    # no invariant check: torch's requires sorted, duplicate-free indices, which scipy CSR need not have
    # (the product is right either way); index ranges are as trusted as in scipy's own toarray()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
        return torch.sparse_csr_tensor(torch.from_numpy(np.ascontiguousarray(indptr)),
                                       torch.from_numpy(np.ascontiguousarray(indices)),
                                       torch.from_numpy(np.ascontiguousarray(data)), size=block.shape,
                                       check_invariants=False)


class RobustUMAP:
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

    # ------------------------------------------------------------------ helpers
    def get_params(self, deep: bool = False) -> dict[str, Any]:
        """Hyper-parameters (scikit-learn convention; ``encoder`` is omitted when ``None``)."""
        out = {k: getattr(self, k) for k in _PARAMS}
        out["encoder"] = self.encoder
        return out

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

    @staticmethod
    def _unpack(X: Any, layer: str | None) -> tuple[Any, list[str] | None]:
        if _is_anndata(X):
            return matrix_from_adata(X, layer), [str(g) for g in X.var_names]
        if layer is not None:
            raise ValueError("`layer` applies only to AnnData input; pass the matrix itself instead.")
        return X, None

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
        M, names = self._unpack(X, layer)
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
                      "bounds": bound_fn(self.bound_method), "n_cells": int(self.robust_cells),
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
            raise RuntimeError("This RobustUMAP is not fitted yet; call fit(X) or RobustUMAP.load(path) first.")

    def _query(self, X: Any, layer: str | None, missing_genes: str) -> tuple[Any, np.ndarray, np.ndarray, int]:
        """The query matrix, the query columns ``src`` holding model genes and their model positions ``dst``."""
        self._check_fitted()
        check_choice(missing_genes, "missing_genes", MISSING_GENES)
        M, names = self._unpack(X, layer)
        if not (sp.issparse(M) or _is_dask(M) or isinstance(M, np.ndarray)):
            M = np.asarray(M)
        if M.ndim != 2:
            raise ValueError(f"`X` must be 2-D (cells × genes), got shape {M.shape}.")
        if self.features_positional_:
            names = None
        cols = self.preprocessor_.column_map(names, M.shape[1], self.n_features_in_, missing_genes)
        present = cols >= 0
        return M, cols[present], np.flatnonzero(present), cols.size

    def _check_values(self, vals: np.ndarray | torch.Tensor, sub: Any, finite: bool | None = None) -> None:
        """Cheap check of a chunk's values (NaN/Inf, negative counts); on failure ``check_matrix`` raises its
        standard message about ``sub`` (a matrix, or a callable returning it). ``finite``: finiteness already
        known (``None``: scan for it)."""
        tensor = isinstance(vals, torch.Tensor)
        if not (vals.numel() if tensor else vals.size):
            return
        if finite is None:
            finite = bool(torch.isfinite(vals).all()) if tensor else bool(np.isfinite(vals).all())
        if not finite or (self.preprocessor_.counts and not bool(vals.min() >= 0)):  # NaN compares False too
            check_matrix(sub() if callable(sub) else sub, name="X", nonnegative=self.preprocessor_.counts, min_cells=1,
                         min_genes=0, allow_empty_cells=True, allow_empty_genes=True)  # raises the standard message

    def _aligned_chunks(self, X: Any, layer: str | None, missing_genes: str, chunk_size: int):
        """Yield count chunks with exactly the model genes as columns (missing genes as zero columns)."""
        M, src, dst, n_model = self._query(X, layer, missing_genes)
        complete = dst.size == n_model
        identity = complete and n_model == M.shape[1] and np.array_equal(src, np.arange(n_model))
        for block in _row_blocks(M, chunk_size):
            if sp.issparse(block):
                sub = block if identity else block[:, src]
                if not complete:
                    sub = sp.csr_matrix((sub.data, dst[sub.indices], sub.indptr), shape=(sub.shape[0], n_model))
                self._check_values(sub.data, sub)
            else:
                sub = block if identity else block[:, src]
                if not complete:
                    full = np.zeros((sub.shape[0], n_model), dtype=sub.dtype)
                    full[:, dst] = sub
                    sub = full
                self._check_values(sub, sub)
            yield sub

    def _chunks(self, X: Any, layer: str | None, missing_genes: str, chunk_size: int):
        """Yield z-scored float32 model inputs, chunk by chunk."""
        ident = np.arange(len(self.preprocessor_.genes))
        for sub in self._aligned_chunks(X, layer, missing_genes, chunk_size):
            yield self.preprocessor_.transform_chunk(sub, ident)

    def _folded_first_layer(self) -> tuple[torch.Tensor, torch.Tensor]:
        """First Linear layer with the z-scoring folded in: ``W (x − μ)/σ + b = (W/σ) x + (b − W μ/σ)``."""
        lin = self.encoder_[0]
        W = lin.weight.detach().cpu().double().numpy()
        mean, std = self.preprocessor_.mean, self.preprocessor_.std
        Wf = np.ascontiguousarray((W / std).T, dtype=np.float32)
        bf = (lin.bias.detach().cpu().double().numpy() - W @ (mean / std)).astype(np.float32)
        return torch.from_numpy(Wf), torch.from_numpy(bf)

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
        M, src, dst, n_model = self._query(X, layer, missing_genes)
        pre = self.preprocessor_
        device = next(self.encoder_.parameters()).device
        Wf, bf = self._folded_first_layer()
        n_hidden = Wf.shape[1]
        # [W | 1 | 0…]: the ones column gives the library size (sum over the model genes) in the same product;
        # padding to a multiple of 8 columns is faster for MKL's sparse × dense product
        width = n_hidden + 1 if pre.counts else n_hidden
        width = -(-width // 8) * 8
        W = torch.zeros(n_model, width, dtype=torch.float32)
        W[:, :n_hidden] = Wf
        if pre.counts:
            W[:, n_hidden] = 1.0
        # every query column is a model gene (same genes, any order): permute the weights, not the data
        permute = src.size == M.shape[1]
        if permute:
            Wq = torch.zeros(M.shape[1], width, dtype=torch.float32)
            Wq[torch.from_numpy(src)] = W[torch.from_numpy(dst)]
        else:
            Wq = W[torch.from_numpy(dst)].contiguous()
        Wq, bf = Wq.to(device), bf.to(device)
        layers = [(None, None) if isinstance(m, nn.ReLU) else (m.weight.detach().t(), m.bias.detach())
                  for m in self.encoder_[1:]]
        n_out = self.encoder_[-1].out_features
        out = np.empty((M.shape[0], n_out), np.float32)

        def project(block: Any, row: int, chunk: Any) -> int:
            if not permute:
                block = block[:, src]
            n = block.shape[0]

            def whole():  # bad values: report on the whole chunk's model genes, as check_matrix always did
                return chunk if permute else chunk[:, src]

            if sp.issparse(block):
                data = block.data if block.dtype == np.float32 else block.data.astype(np.float32)
                if pre.counts and pre.log1p:
                    lib = np.asarray(block.sum(axis=1, dtype=np.float64)).ravel()
                    self._check_values(data, whole, finite=bool(np.isfinite(lib).all()))
                    lib[lib == 0] = 1.0
                    data = np.log1p(data * np.repeat((pre.target_sum / lib).astype(np.float32), np.diff(block.indptr)))
                else:  # counts: finiteness is read off the library sizes below
                    self._check_values(data, whole, finite=True if pre.counts else None)
                x = _torch_csr(block, data).to(device)
            else:
                arr = np.asarray(block)
                x = torch.from_numpy(arr if arr.dtype == np.float32 else arr.astype(np.float32)).to(device)
                if pre.counts and pre.log1p:
                    lib = x.sum(dim=1, keepdim=True, dtype=torch.float64)
                    self._check_values(x, whole, finite=bool(torch.isfinite(lib).all()))
                    lib[lib == 0] = 1.0
                    x = torch.log1p(x * (pre.target_sum / lib).float())
                else:
                    self._check_values(x, whole, finite=True if pre.counts else None)
            h = x @ Wq
            del x
            hid = h[:, :n_hidden]
            if pre.counts and not pre.log1p:  # diag(s) X W = diag(s) (X W): scale the 100-wide product
                lib = h[:, n_hidden:n_hidden + 1]
                if not bool(torch.isfinite(lib).all()):  # NaN/Inf in the chunk
                    self._check_values(h, whole, finite=False)
                hid.mul_(pre.target_sum / torch.where(lib == 0, 1.0, lib))
            z = hid.add_(bf)
            for weight, bias in layers:
                z = z.relu_() if weight is None else torch.addmm(bias, z, weight)
            out[row:row + n] = z.float().cpu().numpy()
            return n

        blocks = ((block, chunk) for chunk in _row_blocks(M, chunk_size) for block in _row_blocks(chunk, _BLOCK_ROWS))
        # CPU: one intra-op thread per worker and blocks spread over torch.get_num_threads() workers. On cores
        # shared with other jobs, torch's own threading made the small 100-wide layers wait at every barrier
        # (2-4x slower than one thread); independent workers lose nothing then and use both cores when free
        workers = min(torch.get_num_threads(), -(-M.shape[0] // _BLOCK_ROWS)) if device.type == "cpu" else 1
        row = 0
        if workers <= 1:
            with torch.inference_mode():
                for block, chunk in blocks:
                    row += project(block, row, chunk)
            return out[:row]
        from concurrent.futures import ThreadPoolExecutor

        n_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(workers) as pool:
                pending: deque = deque()
                for block, chunk in blocks:
                    pending.append(pool.submit(_in_inference, project, block, row, chunk))
                    row += block.shape[0]
                    if len(pending) > 2 * workers:  # bounded: at most 2 blocks queued per worker
                        pending.popleft().result()
                while pending:
                    pending.popleft().result()  # in order: the first bad chunk's error is the one raised
        finally:
            torch.set_num_threads(n_threads)
        return out[:row]

    def preprocess(self, X: Any, *, layer: str | None = None, missing_genes: str = "error") -> np.ndarray:
        """The model inputs (z-scored selected genes, float32) for counts ``X``."""
        return np.concatenate(list(self._chunks(X, layer, missing_genes, 1 << 30)))

    # ----------------------------------------------------------------- certify
    def certify(self, X: Any, epsilon: float | None = None, *, layer: str | None = None, method: str | None = None,
                missing_genes: str = "error", batch_size: int = 256) -> Certificate:
        """Certified output boxes of cells ``X`` (counts) for z-score perturbations of L∞ size ``epsilon``.

        Returns a :class:`Certificate` (``lower``, ``upper``, ``area``, ``relative_area``, ``summary()``).
        """
        eps = float(self.epsilon if epsilon is None else epsilon)
        if eps < 0:
            raise ValueError(f"`epsilon` must be ≥ 0, got {eps}.")
        self._check_fitted()
        method = check_choice(method or self.bound_method, "method", BOUND_METHODS)
        bounds = bound_fn(method)
        device = next(self.encoder_.parameters()).device
        lo, up = [], []
        with torch.no_grad():
            for Z in self._chunks(X, layer, missing_genes, 16384):
                for i in range(0, Z.shape[0], batch_size):
                    l, u = bounds(self.encoder_, torch.from_numpy(Z[i:i + batch_size]).to(device), eps)
                    lo.append(l.float().cpu().numpy())
                    up.append(u.float().cpu().numpy())
        lower, upper = np.concatenate(lo), np.concatenate(up)
        area = box_area(torch.from_numpy(lower), torch.from_numpy(upper)).numpy()
        return Certificate(lower, upper, area, area / max(self.area_ref_, 1e-12), eps, method)

    # ------------------------------------------------------------- gene impact
    def gene_impact(self, X: Any, *, layer: str | None = None, norm: str = "l1", missing_genes: str = "error",
                    batch_size: int = 4096):
        """Per-gene impact ``I_g = Σ_c ‖∂f(x_c)/∂x_cg‖`` (paper §3.5), by autograd on the z-scored inputs.

        ``norm="l1"`` sums ``|∂f_1/∂x| + |∂f_2/∂x| + …``; ``"l2"`` takes the Euclidean norm over output
        dimensions (the paper's ‖·‖ of a 2-vector is ambiguous). Returns a ``pandas.Series`` indexed by gene.
        """
        import pandas as pd

        check_choice(norm, "norm", ("l1", "l2"))
        device = next(self.encoder_.parameters()).device
        total = np.zeros(len(self.genes_), dtype=np.float64)
        for Z in self._chunks(X, layer, missing_genes, batch_size):
            x = torch.from_numpy(Z).to(device).requires_grad_(True)
            out = self.encoder_(x)
            jac = []
            for k in range(out.shape[1]):
                (g,) = torch.autograd.grad(out[:, k].sum(), x, retain_graph=k < out.shape[1] - 1)
                jac.append(g.detach().double())
            J = torch.stack(jac)  # (d, cells, genes)
            per = J.abs().sum(0) if norm == "l1" else J.pow(2).sum(0).sqrt()
            total += per.sum(0).cpu().numpy()
        return pd.Series(total, index=list(self.genes_), name="gene_impact")

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

    def _manifest(self) -> dict[str, Any]:
        params = {k: getattr(self, k) for k in _PARAMS}
        params["hidden_layers"] = list(params["hidden_layers"]) if params["hidden_layers"] is not None else None
        params["encoder"] = None if self.encoder is None else "user-supplied (architecture in 'encoder')"
        return {
            "format": _io.FORMAT, "format_version": _io.FORMAT_VERSION, "versions": versions(),
            "params": params, "random_state": self.random_state_,
            "feature_names_in": [str(g) for g in self.feature_names_in_], "features_positional": self.features_positional_,
            "n_features_in": int(self.n_features_in_), "preprocess": self.preprocessor_.to_manifest(),
            "encoder": {"type": "mlp_linear_relu", "widths": layer_widths(self.encoder_), "output_activation": None},
            "a": self.a_, "b": self.b_, "area_ref": self.area_ref_, "n_epochs": self.n_epochs_,
            "batch_size": self.batch_size_, "robust_epochs": self.robust_epochs_,
            "fit_time_s": self.fit_time_, "final_loss": {k: v[-1] if v else None for k, v in self.history_.items()},
        }

    def to_bytes(self) -> bytes:
        """The whole model as one byte blob (zip: ``manifest.json`` + ``weights.safetensors``; no pickle)."""
        self._check_fitted()
        arrays = {f"encoder.{k}": v.detach().cpu().numpy() for k, v in self.encoder_.state_dict().items()}
        arrays.update(self.preprocessor_.arrays())
        if getattr(self, "embedding_", None) is not None:
            arrays["embedding"] = np.asarray(self.embedding_, dtype=np.float32)
        return _io.pack_model(self._manifest(), arrays)

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_bytes` to ``path`` (conventionally ``*.magmap.zip``); returns the path."""
        path = Path(path)
        path.write_bytes(self.to_bytes())
        return path

    @classmethod
    def from_bytes(cls, blob: bytes | bytearray | np.ndarray, *, device: str = "cpu") -> "RobustUMAP":
        """Rebuild a fitted model from :meth:`to_bytes` output (JSON + raw arrays; runs no code)."""
        manifest, arrays = _io.unpack_model(blob)
        params = dict(manifest["params"])
        params.pop("encoder", None)
        params["hidden_layers"] = tuple(params["hidden_layers"]) if params.get("hidden_layers") is not None else None
        self = cls(**params)
        net = rebuild(manifest["encoder"]["widths"])
        state = {k[len("encoder."):]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("encoder.")}
        net.load_state_dict(state)
        self.encoder_ = net.to(resolve_device(device)).eval()
        self.preprocessor_ = Preprocessor.from_manifest(manifest["preprocess"], arrays)
        self.hvg_flavor_ = self.preprocessor_.hvg_flavor
        self.feature_names_in_ = np.asarray(manifest["feature_names_in"], dtype=object)
        self.features_positional_ = bool(manifest["features_positional"])
        self.n_features_in_ = int(manifest["n_features_in"])
        self.a_, self.b_ = float(manifest["a"]), float(manifest["b"])
        self.area_ref_ = float(manifest["area_ref"])
        self.n_epochs_, self.batch_size_ = manifest["n_epochs"], manifest["batch_size"]
        self.robust_epochs_ = manifest["robust_epochs"]
        self.random_state_ = manifest["random_state"]
        self.fit_time_ = manifest["fit_time_s"]
        self.history_ = {k: [v] if v is not None else [] for k, v in manifest["final_loss"].items()}
        self.embedding_ = arrays.get("embedding")
        self.manifest_ = manifest
        return self

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


#: Default optimiser steps of phase 1 (see ``RobustUMAP._budget``).
_DEFAULT_STEPS = 600
