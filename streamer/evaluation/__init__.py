"""Offline evaluation: the live pipeline run over a file, once per model, and its report."""
