"""Atlas scale: project, certify and explain cells that do not fit in memory, with Dask.

:func:`project` runs :class:`magmap.RobustUMAP`'s ``transform``, ``certify`` and ``cell_gene_impact``
chunk by chunk on a dask.distributed cluster (or dask's threaded scheduler), reading each chunk lazily
from ``.h5ad``/``.zarr`` and writing results to a resumable zarr store; :func:`open_projection` reads
them back lazily; :func:`robust_umap_transform` is the scanpy-style front door for lazy AnnData.
"""
from ._input import DEFAULT_CHUNK_ROWS, LazyInput, open_input
from ._run import ProjectionRun, active_client, project
from ._store import open_projection
from ._tl import robust_umap_transform

__all__ = ["project", "open_projection", "open_input", "robust_umap_transform", "ProjectionRun", "LazyInput",
           "active_client", "DEFAULT_CHUNK_ROWS"]
