"""Robust parametric UMAP (Zhang & Xu 2023): graph, encoder, losses, preprocessing, training, estimator."""
from .estimator import BOUND_METHODS, Certificate, RobustUMAP
from .losses import find_ab_params

__all__ = ["RobustUMAP", "Certificate", "BOUND_METHODS", "find_ab_params"]
