"""Robust parametric UMAP (Zhang & Xu 2023): graph, encoder, losses, preprocessing, training, estimator,
projection, certification, gene impact and model files."""
from .certify import BOUND_METHODS, Certificate
from .estimator import RobustUMAP
from .losses import find_ab_params

__all__ = ["RobustUMAP", "Certificate", "BOUND_METHODS", "find_ab_params"]
