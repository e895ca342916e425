"""Projection of new cells through a fitted encoder: the sparse inference kernel behind ``RobustUMAP.transform``.

The z-scoring is folded into the first layer, so sparse counts are multiplied as they are (never densified);
library sizes come from an extra all-ones weight column of the same product; blocks of rows go to
independent worker threads.
"""
from __future__ import annotations

import warnings
from collections import deque
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ._inputs import check_values, query_columns, row_blocks

__all__ = ["BLOCK_ROWS", "folded_first_layer", "project"]

#: Rows per block (within each ``chunk_size`` chunk): the ~100-wide activations stay in cache.
BLOCK_ROWS = 4096


def folded_first_layer(encoder: nn.Sequential, preprocessor: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """First Linear layer with the z-scoring folded in: ``W (x − μ)/σ + b = (W/σ) x + (b − W μ/σ)``.

    Returns ``(W_folded.T, b_folded)`` as float32 (genes × hidden, hidden)."""
    lin = encoder[0]
    W = lin.weight.detach().cpu().double().numpy()
    mean, std = preprocessor.mean, preprocessor.std
    Wf = np.ascontiguousarray((W / std).T, dtype=np.float32)
    bf = (lin.bias.detach().cpu().double().numpy() - W @ (mean / std)).astype(np.float32)
    return torch.from_numpy(Wf), torch.from_numpy(bf)


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


def project(model: Any, X: Any, *, layer: str | None, missing_genes: str, chunk_size: int) -> np.ndarray:
    """Embedding of the cells of ``X`` by ``model.encoder_`` after the model's preprocessing (float32)."""
    M, src, dst, n_model = query_columns(model, X, layer, missing_genes)
    pre = model.preprocessor_
    encoder = model.encoder_
    device = next(encoder.parameters()).device
    Wf, bf = folded_first_layer(encoder, pre)
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
              for m in encoder[1:]]
    n_out = encoder[-1].out_features
    out = np.empty((M.shape[0], n_out), np.float32)

    def check(vals: Any, sub: Any, finite: bool | None = None) -> None:
        check_values(vals, sub, counts=pre.counts, finite=finite)

    def project_block(block: Any, row: int, chunk: Any) -> int:
        if not permute:
            block = block[:, src]
        n = block.shape[0]

        def whole():  # bad values: report on the whole chunk's model genes
            return chunk if permute else chunk[:, src]

        if sp.issparse(block):
            data = block.data if block.dtype == np.float32 else block.data.astype(np.float32)
            if pre.counts and pre.log1p:
                lib = np.asarray(block.sum(axis=1, dtype=np.float64)).ravel()
                check(data, whole, finite=bool(np.isfinite(lib).all()))
                lib[lib == 0] = 1.0
                data = np.log1p(data * np.repeat((pre.target_sum / lib).astype(np.float32), np.diff(block.indptr)))
            else:  # counts: finiteness is read off the library sizes below
                check(data, whole, finite=True if pre.counts else None)
            x = _torch_csr(block, data).to(device)
        else:
            arr = np.asarray(block)
            x = torch.from_numpy(arr if arr.dtype == np.float32 else arr.astype(np.float32)).to(device)
            if pre.counts and pre.log1p:
                lib = x.sum(dim=1, keepdim=True, dtype=torch.float64)
                check(x, whole, finite=bool(torch.isfinite(lib).all()))
                lib[lib == 0] = 1.0
                x = torch.log1p(x * (pre.target_sum / lib).float())
            else:
                check(x, whole, finite=True if pre.counts else None)
        h = x @ Wq
        del x
        hid = h[:, :n_hidden]
        if pre.counts and not pre.log1p:  # diag(s) X W = diag(s) (X W): scale the 100-wide product
            lib = h[:, n_hidden:n_hidden + 1]
            if not bool(torch.isfinite(lib).all()):  # NaN/Inf in the chunk
                check(h, whole, finite=False)
            hid.mul_(pre.target_sum / torch.where(lib == 0, 1.0, lib))
        z = hid.add_(bf)
        for weight, bias in layers:
            z = z.relu_() if weight is None else torch.addmm(bias, z, weight)
        out[row:row + n] = z.float().cpu().numpy()
        return n

    block_rows = BLOCK_ROWS
    blocks = ((block, chunk) for chunk in row_blocks(M, chunk_size) for block in row_blocks(chunk, block_rows))
    # CPU: one intra-op thread per worker and blocks spread over torch.get_num_threads() workers. On shared
    # cores, torch's own threading made the small 100-wide layers wait at every barrier (2-4x slower)
    workers = min(torch.get_num_threads(), -(-M.shape[0] // block_rows)) if device.type == "cpu" else 1
    row = 0
    if workers <= 1:
        with torch.inference_mode():
            for block, chunk in blocks:
                row += project_block(block, row, chunk)
        return out[:row]
    from concurrent.futures import ThreadPoolExecutor

    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(workers) as pool:
            pending: deque = deque()
            for block, chunk in blocks:
                pending.append(pool.submit(_in_inference, project_block, block, row, chunk))
                row += block.shape[0]
                if len(pending) > 2 * workers:  # bounded: at most 2 blocks queued per worker
                    pending.popleft().result()
            while pending:
                pending.popleft().result()  # in order: the first bad chunk's error is the one raised
    finally:
        torch.set_num_threads(n_threads)
    return out[:row]
