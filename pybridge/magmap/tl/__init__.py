"""scanpy-style front doors: ``magmap.tl.<method>(adata, *, ..., key_added=..., copy=False)``."""
from ._medmagma import gmgm, med_magma
from ._robust_umap import robust_umap, robust_umap_transform

__all__ = ["med_magma", "gmgm", "robust_umap", "robust_umap_transform"]
