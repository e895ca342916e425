"""Datasets: the bundled real dataset, file readers, a count summary, and synthetic data generators."""
from ._bundled import baron2016_pancreas, bundled_path, read, read_10x_mtx, read_csv, read_h5ad
from ._summary import summarize_counts
from ._synthetic import synthetic_multiaxis

__all__ = ["baron2016_pancreas", "bundled_path", "read", "read_10x_mtx", "read_csv", "read_h5ad",
           "summarize_counts", "synthetic_multiaxis"]
