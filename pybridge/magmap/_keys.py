"""The AnnData keys magmap writes, in one place: the Python modules that write or read them import them from here.

The R package names its slots the Bioconductor way (``reducedDim(x, "RobustUMAP")``,
``colData(x)$RobustUMAP.certified_radius``, ``colPair(x, "MedMagma")``), not with these keys."""
from __future__ import annotations

MEDMAGMA_KEY = "medmagma"
GMGM_KEY = "gmgm"
ROBUST_UMAP_KEY = "robust_umap"

# written by ``magmap run`` (:mod:`magmap.pipeline`)
RUN_KEY = "magmap_run"
ROBUSTNESS_KEY = f"{MEDMAGMA_KEY}_robustness"
NETWORK_GENE_KEY = "magmap_network_gene"
CLUSTER_SUFFIX = "_leiden"
MODULE_KEY = f"{MEDMAGMA_KEY}_module"
MODULE_SHARE_KEY = f"{MEDMAGMA_KEY}_module_share"
GENE_IMPACT_KEY = f"{ROBUST_UMAP_KEY}_gene_impact"
LOG_LAYER = "log1p"


def connectivities_key(key: str) -> str:
    """obsp/varp key of the graph written under ``key``."""
    return f"{key}_connectivities"


def distances_key(key: str) -> str:
    """obsp key of the distances matrix written under ``key`` (scanpy's NeighborsDict needs one)."""
    return f"{key}_distances"


def input_key(key: str) -> str:
    """obsm key of the cells × genes matrix a cell graph was learnt from (scanpy's ``use_rep``)."""
    return f"{key}_input"


def genes_used_key(key: str) -> str:
    """var column marking the genes a gene graph was learnt on."""
    return f"{key}_used"


def embedding_key(key: str) -> str:
    """obsm key of an embedding written under ``key``."""
    return f"X_{key}"


def certified_box_key(key: str) -> str:
    """obs column holding the per-cell certified-box size of an embedding (box diagonal at ε relative to
    the training embedding's diagonal)."""
    return f"{key}_certified_box"


def certified_radius_key(key: str) -> str:
    """obs column holding each cell's certified radius."""
    return f"{key}_certified_radius"


def box_corner_keys(key: str) -> tuple[str, str]:
    """obsm keys of the certified boxes' lower and upper corners."""
    return f"{key}_box_lower", f"{key}_box_upper"


def top_gene_key(key: str) -> str:
    """obs column naming the gene that moves each cell's embedding most."""
    return f"{key}_top_gene"


def top_genes_key(key: str) -> str:
    """obsm key of the per-cell table of top genes (``gene_1..k``, ``impact_1..k``)."""
    return f"{key}_top_genes"


def top_gene_index_keys(key: str) -> tuple[str, str]:
    """obsm keys of the out-of-core top-gene arrays: gene positions (in ``uns[key]["genes"]``) and impacts."""
    return f"{key}_top_gene_index", f"{key}_top_gene_impact"
