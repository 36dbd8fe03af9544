"""Scaling laws: fit loss against model size, bootstrap its uncertainty, report and plot it."""
