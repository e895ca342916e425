"""Block-wise projection for R: ``projectRobustUMAP()`` on a DelayedArray (e.g. HDF5-backed) sends one
block of cells at a time; a :class:`BlockProjector` projects, certifies and explains each block as it
arrives and keeps only the per-cell results, which :meth:`BlockProjector.result` returns in the layout
of :func:`magmap.rbridge.api.robust_umap_project` (the in-memory path). Arguments and results use the R
boundary codec (:mod:`magmap.rbridge.codec`)."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import fields
from typing import Any

import numpy as np

from .codec import decode, encode

__all__ = ["BlockProjector"]


@contextmanager
def _warn_once(projector: "BlockProjector"):
    """Let each distinct magmap warning (e.g. missing genes filled with zeros) through once per projection,
    not once per block and method."""
    seen = projector.warned

    def once(record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        msg = record.getMessage()
        if msg in seen:
            return False
        seen.add(msg)
        return True

    log = logging.getLogger("magmap")
    log.addFilter(once)
    try:
        yield
    finally:
        log.removeFilter(once)


class BlockProjector:
    """Accumulates the per-cell results of a model over blocks of cells (R calls ``add`` per block).

    Parameters
    ----------
    model
        Model bytes (``RobustUMAP.to_bytes``), as R holds them.
    certify, missing_genes, epsilon, fraction, top_genes, refine
        As in :func:`magmap.rbridge.api.robust_umap_project`.
    n_cells
        With ``refine``: the number of cells over all blocks, which sets the refinement's epochs as for one
        call on all of them (each block's cells are then refined as in that call).
    """

    def __init__(self, model: Any, certify: bool = True, missing_genes: str = "error", epsilon: Any = None,
                 fraction: Any = None, top_genes: Any = None, refine: bool = False, n_cells: Any = None) -> None:
        from ..umap import RobustUMAP
        from ..umap.refine import check_refinable, default_refine_epochs
        from .api import _certify_args

        self.epsilon, self.fraction, self.top_genes = _certify_args(epsilon, fraction, top_genes)
        self.model = RobustUMAP.from_bytes(bytes(model))
        self.refine_epochs = None
        if refine:
            if n_cells is None:
                raise ValueError("`n_cells` (cells over all blocks) is needed with `refine=True`.")
            check_refinable(self.model)
            self.refine_epochs = default_refine_epochs(int(n_cells))
        self.certify = bool(certify)
        self.missing_genes = str(missing_genes)
        self.embedding: list[np.ndarray] = []
        self.certificates: list[Any] = []
        self.tops: list[Any] = []
        self.n_blocks = 0
        self.n_cells = 0
        self.warned: set[str] = set()

    def add(self, x: Any, feature_names: Any = None) -> int:
        """Project one block (a genes × cells matrix from R, genes named by ``feature_names``); returns the
        number of cells so far."""
        import anndata as ad
        import pandas as pd

        from ..umap.refine import refine_projection

        X = decode(x)
        names = decode(feature_names)
        q = X if names is None else ad.AnnData(X=X, var=pd.DataFrame(index=[str(n) for n in names]))
        m, mg = self.model, self.missing_genes
        with _warn_once(self):
            Z = m.transform(q, missing_genes=mg)
            if self.refine_epochs is not None:
                Z = refine_projection(m, q, Z, layer=None, missing_genes=mg, chunk_size=16384,
                                      n_epochs=self.refine_epochs, first_cell=self.n_cells)
            self.embedding.append(Z)
            if self.certify:
                self.certificates.append(m.certify(q, self.epsilon, fraction=self.fraction, missing_genes=mg))
            if self.top_genes is not None:
                top = m.cell_gene_impact(q, n_top=self.top_genes, missing_genes=mg)
                k = int(top["rank"].max()) if len(top) else 0
                # cells as 1-based positions over all blocks: R puts its own cell names back
                top["cell"] = np.repeat(np.arange(self.n_cells + 1, self.n_cells + X.shape[0] + 1, dtype=np.int64), k)
                self.tops.append(top)
        self.n_blocks += 1
        self.n_cells += X.shape[0]
        return self.n_cells

    def result(self) -> dict[str, Any]:
        """All blocks' results, as :func:`magmap.rbridge.api.robust_umap_project` returns them for the whole matrix,
        plus ``n_blocks``."""
        import pandas as pd

        from ..umap.certify import Certificate

        k = int(self.model.n_components)
        emb = np.concatenate(self.embedding) if self.embedding else np.zeros((0, k), np.float32)
        out: dict[str, Any] = {"embedding": np.asarray(emb, dtype=np.float64), "n_blocks": self.n_blocks}
        if self.certify and self.certificates:
            # per-cell fields concatenate; the settings are the same for every block
            first = self.certificates[0]
            cert = Certificate(**{f.name: np.concatenate([getattr(c, f.name) for c in self.certificates])
                                  if isinstance(getattr(first, f.name), np.ndarray) else getattr(first, f.name)
                                  for f in fields(Certificate)})
            out.update(certified_radius=np.asarray(cert.radius, dtype=np.float64),
                       certified_box=np.asarray(cert.relative_diagonal, dtype=np.float64),
                       box_lower=np.asarray(cert.lower, dtype=np.float64),
                       box_upper=np.asarray(cert.upper, dtype=np.float64),
                       certificate={**{key: float(v) for key, v in cert.summary().items()}, "method": cert.method})
        if self.top_genes is not None and self.tops:
            out["top_genes"] = pd.concat(self.tops, ignore_index=True)
        return encode(out)
