"""Evaluation metrics for graphs (edge precision, assortativity, clustering agreement) and embeddings."""
__all__: list[str] = []
from ._embedding import trustworthiness, knn_preservation, knn_accuracy, dropout_correlation, gene_impact_summary
from ._graphs import edge_average_precision, edge_precision_recall, topk_graph, assortativity, best_leiden_ami
