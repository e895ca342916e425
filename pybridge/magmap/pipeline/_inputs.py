"""Reading a user's file for ``magmap run`` and checking it is a labelled count matrix, with one-line errors."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["InputError", "load_input", "count_matrix", "cell_labels", "MIN_CELLS", "MIN_GENES", "BUNDLED_LABEL"]

MIN_CELLS = 20
MIN_GENES = 20
BUNDLED_LABEL = "cell_type"
# Largest value seen in log-transformed data in practice (log1p of 10^20 is 46); a non-integer matrix
# whose values all lie below it is almost surely logged, not counts.
_LOG_MAX = 50.0


class InputError(ValueError):
    """A problem with the user's input, stated in one line with its fix (shown without a traceback)."""


def load_input(path: str | Path | None) -> tuple[Any, str]:
    """Read ``path`` into an AnnData and say where it came from.

    ``None`` reads the bundled Baron (2016) pancreas subset. Otherwise, chosen by what ``path`` is: a
    10x Genomics matrix folder, a 10x ``.h5`` file, an ``.rds`` SingleCellExperiment or Seurat object
    (through rpy2), ``.h5ad``, or a CSV/TSV table with cells in rows.

    Raises
    ------
    InputError
        When the file is missing or cannot be read; the message names the file and the fix.
    """
    from ..datasets import baron2016_pancreas
    from ..io.readers import SUPPORTED, read

    if path is None:
        return baron2016_pancreas(), "bundled dataset: Baron et al. (2016) pancreas, 328 cells"
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"input {str(p)!r} does not exist; check the path (working directory: {Path.cwd()}).")
    try:
        with warnings.catch_warnings():
            # anndata's notices about old file layouts are not the user's problem
            warnings.simplefilter("ignore", FutureWarning)
            adata = read(p)
    except Exception as err:  # readers raise many types (h5py, pandas, rpy2) for a broken file
        if isinstance(err, ImportError) and p.name.lower().endswith(".rds"):
            raise InputError(f"reading {p.name} needs R with rpy2 and anndata2ri ({err}); install them "
                             "(pip install 'rpy2==3.5.17' anndata2ri) or save the object as .h5ad first.") from err
        msg = " ".join(str(err).split()).rstrip(".")
        raise InputError(f"could not read {str(p)!r}: {msg}. Supported inputs: {SUPPORTED}.") from err
    return adata, str(p)


def _looks_like_counts(M: Any) -> tuple[bool, str]:
    vals = M.data if sp.issparse(M) else np.asarray(M).ravel()
    if vals.size == 0:
        return False, "it holds no non-zero values"
    if not np.all(np.isfinite(vals)):
        return False, f"it holds {int(np.size(vals) - np.isfinite(vals).sum())} NaN or infinite values"
    vmin, vmax = float(vals.min()), float(vals.max())
    if vmin < 0:
        return False, f"it has negative values (min {vmin:.3g}), so it looks scaled or centred"
    integer = bool(np.all(vals == np.round(vals)))
    if not integer and vmax < _LOG_MAX:
        return False, f"its values are non-integers no larger than {vmax:.3g}, so it looks log-transformed"
    return True, "integer counts" if integer else "non-negative non-integer values (e.g. TPM or RPKM)"


def count_matrix(adata: Any, layer: str | None = None) -> tuple[Any, str, str]:
    """The cells × genes count matrix of ``adata`` and which slot it came from.

    With ``layer=None``: ``X`` when it holds counts, else a ``counts`` layer, else ``raw.X`` (when it has
    the same genes). Returns ``(matrix, slot, kind)`` with ``kind`` describing the values.

    Raises
    ------
    InputError
        Unknown layer, non-numeric data, or no slot holding non-negative counts.
    """
    if layer is not None:
        if layer not in adata.layers:
            raise InputError(f"--layer {layer!r} is not a layer of the input (layers: {list(adata.layers) or 'none'}); "
                             "omit --layer to use X.")
        candidates = [(f"layers[{layer!r}]", adata.layers[layer])]
    else:
        candidates = [("X", adata.X)]
        if "counts" in adata.layers:
            candidates.append(("layers['counts']", adata.layers["counts"]))
        if adata.raw is not None and adata.raw.n_vars == adata.n_vars and list(adata.raw.var_names) == list(adata.var_names):
            candidates.append(("raw.X", adata.raw.X))
    reasons = []
    for slot, M in candidates:
        if M is None:
            reasons.append(f"{slot} is empty")
            continue
        if not sp.issparse(M):
            M = np.asarray(M)
            if not np.issubdtype(M.dtype, np.number):
                raise InputError(f"{slot} holds {M.dtype} values, not numbers; the input must be a numeric "
                                 "cells × genes count matrix (text columns belong in obs).")
        ok, kind = _looks_like_counts(M)
        if ok:
            return M, slot, kind
        reasons.append(f"{slot}: {kind}")
    raise InputError(f"no counts found ({'; '.join(reasons)}); magmap run needs raw counts: pass a file whose X, "
                     "'counts' layer or raw.X holds them, or name the layer with --layer.")


def cell_labels(adata: Any, label: str | None) -> np.ndarray | None:
    """The ``label`` column of ``obs`` as strings (missing values become ``"NA"``).

    Raises
    ------
    InputError
        Unknown column, a single group, or one group per cell (an identifier, not a label).
    """
    if label is None:
        return None
    if label not in adata.obs:
        cols = list(adata.obs.columns)
        shown = ", ".join(map(str, cols[:12])) + (", …" if len(cols) > 12 else "")
        raise InputError(f"--label {label!r} is not a column of the cell annotations (obs columns: {shown or 'none'}); "
                         "pass one of them, or omit --label for the label-free analysis.")
    series = pd.Series(adata.obs[label].to_numpy(), dtype=object)
    labels = series.where(series.notna(), "NA").astype(str).to_numpy()
    n_groups = len(np.unique(labels))
    if n_groups < 2:
        raise InputError(f"--label {label!r} has a single value ({labels[0]!r}), so nothing can be compared across "
                         "groups; pass a column with at least two groups, or omit --label.")
    if n_groups > max(2, labels.size // 2):
        raise InputError(f"--label {label!r} has {n_groups} distinct values for {labels.size} cells, so it looks like an "
                         "identifier or a continuous value; pass a categorical column such as a cell type.")
    return labels
