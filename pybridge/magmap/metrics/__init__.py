"""Evaluation metrics for graphs (edge precision, assortativity, clustering agreement) and embeddings."""
__all__: list[str] = []
