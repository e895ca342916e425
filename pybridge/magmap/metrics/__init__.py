"""Evaluation metrics for graphs (edge precision, assortativity, clustering agreement) and embeddings."""
from ._embedding import dropout_correlation, dropout_counts, gene_impact_summary, knn_accuracy, knn_preservation, trustworthiness
from ._graphs import assortativity, best_leiden_ami, edge_average_precision, edge_precision_recall, topk_graph

__all__ = [
    "edge_average_precision", "edge_precision_recall", "topk_graph", "assortativity", "best_leiden_ami",
    "trustworthiness", "knn_preservation", "knn_accuracy", "dropout_counts", "dropout_correlation", "gene_impact_summary",
]
