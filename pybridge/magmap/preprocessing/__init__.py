"""Gene selection before fitting: the published MED-MAGMA real-data recipe, and highly variable genes on counts."""
from ._hvg import select_hvg
from ._square import square_gene_subset

__all__ = ["square_gene_subset", "select_hvg"]
