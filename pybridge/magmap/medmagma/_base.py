"""What MedMagma, GmGM and SingleAxis share: scikit-learn's estimator contract, one input check, the
memory guard, and the graph methods."""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from .._utils import check_memory
from .._validation import check_matrix
from ._graph import GraphMixin

__all__ = ["TwoAxisEstimator", "guard_memory", "MEMORY_FIX"]

MEMORY_FIX = ("Select fewer genes (e.g. highly variable genes, use_highly_variable=True) or subsample cells; if "
              "rows are genes, transpose the matrix (cells must be rows).")


def _shape(X: Any) -> tuple[int, ...]:
    shape = getattr(X, "shape", None)
    return tuple(int(v) for v in (np.shape(X) if shape is None else shape))


def guard_memory(shape: tuple[int, ...], what: str, n_bytes: int, fix: str = MEMORY_FIX) -> None:
    """Raise ``MemoryError`` from a shape alone, before any copy or densification.

    Input that is not 2-D is left to :func:`~magmap._validation.check_matrix`, which says what is wrong
    with it.
    """
    if len(shape) == 2:
        check_memory(n_bytes, f"{what} on {shape[0]} cells × {shape[1]} genes", fix=fix)


class TwoAxisEstimator(GraphMixin, BaseEstimator):
    """Base of the two-axis (cells and genes) estimators.

    Not a transformer: the result of a fit is a pair of precision matrices and the graphs drawn from
    them (``cell_graph``/``gene_graph``), not a new representation of the rows of ``X``, so there is
    no ``transform``/``fit_transform``. Subclasses define ``_check_params``, ``_memory`` and
    ``_fit_checked`` (which receives the checked float64 matrix, dense or CSR).
    """

    def _check_params(self) -> None:  # pragma: no cover - overridden
        pass

    def _memory(self, n_cells: int, n_genes: int) -> tuple[int, str]:  # pragma: no cover - overridden
        """Bytes of the fit's working set on that shape, and what the message calls the fit."""
        raise NotImplementedError

    def _fit_checked(self, X: Any) -> TwoAxisEstimator:  # pragma: no cover - overridden
        raise NotImplementedError

    def _guard(self, shape: tuple[int, ...]) -> None:
        """Check the hyper-parameters, then refuse a shape whose working set does not fit in memory."""
        self._check_params()
        if len(shape) == 2:
            n_bytes, what = self._memory(*shape)
            guard_memory(shape, what, n_bytes)

    def _check_input(self, X: Any, *, name: str = "X", nonnegative: bool = False, copy: bool = True) -> Any:
        """The one check of ``X`` a fit does; returns the float64 matrix the fit works on."""
        return check_matrix(X, name=name, nonnegative=nonnegative, copy=copy, sparse="keep")

    def fit(self, X: Any, y: Any = None) -> TwoAxisEstimator:
        """Fit on a cells × genes matrix (dense array-like or scipy sparse).

        Parameters
        ----------
        X
            Cells in rows, genes in columns; no NaN/Inf, at least 3 of each, no all-zero row or column.
        y
            Ignored (scikit-learn convention).

        Raises
        ------
        TypeError, ValueError
            Non-numeric data, NaN/Inf, fewer than 3 cells or genes, all-zero cells or genes, bad
            hyper-parameters (each message names the argument and the fix).
        MemoryError
            From the shape alone, before anything is copied, when the working set does not fit.
        """
        self._guard(_shape(X))
        return self._fit_checked(self._check_input(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # dense-only fits densify after the memory check
        tags.non_deterministic = False
        return tags
