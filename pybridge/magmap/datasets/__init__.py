"""Datasets: the bundled real dataset, a count summary, and synthetic data generators.

File readers live in :mod:`magmap.io`; ``read``, ``read_h5ad``, ``read_10x_mtx`` and ``read_csv`` are the same
functions, importable from here too for code written against their former place."""
from ..io.readers import read, read_10x_mtx, read_csv, read_h5ad
from ._bundled import baron2016_pancreas, bundled_path
from ._summary import summarize_counts
from ._synthetic import synthetic_multiaxis

__all__ = ["baron2016_pancreas", "bundled_path", "summarize_counts", "synthetic_multiaxis",
           "read", "read_10x_mtx", "read_csv", "read_h5ad"]
