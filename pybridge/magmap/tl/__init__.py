"""scanpy-style front doors: ``magmap.tl.<method>(adata, *, ..., key_added=..., copy=False)``."""
__all__: list[str] = []
from ._robust_umap import robust_umap, robust_umap_transform
from ._medmagma import med_magma, gmgm
