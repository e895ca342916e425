"""Gene selection before fitting networks: the published MED-MAGMA real-data recipe."""
from ._square import square_gene_subset

__all__ = ["square_gene_subset"]
