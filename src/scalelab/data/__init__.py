"""Datasets: where raw files come from, how they are prepared, and how batches reach the model."""
