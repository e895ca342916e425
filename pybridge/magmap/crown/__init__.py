"""Certified output bounds (IBP, CROWN, CROWN-IBP) for Linear/ReLU networks.

``output_bounds`` is the native, batched and differentiable implementation used by the robust
parametric UMAP (docs/robust_umap_certificates.md); ``bound_area_loss`` is the robust-UMAP paper's bound-area loss
(Eq. 5–6, §2.3); ``crown_bounds`` is CROWN for certification, bounding only neurons whose sign
is not yet known. auto_LiRPA 0.3 is an optional backend (``backend="auto_lirpa"``), never required.
"""
from ._bounds import DEFAULT_CHUNK_BYTES, METHODS, bound_area_loss, linear_relu_layers, output_bounds
from ._refine import CrownBounds, crown_bounds

__all__ = ["output_bounds", "crown_bounds", "CrownBounds", "bound_area_loss", "linear_relu_layers", "METHODS",
           "DEFAULT_CHUNK_BYTES"]
