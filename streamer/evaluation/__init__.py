"""Offline evaluation: the live pipeline run over a file, once per model, and its report
(`streamer.evaluation.evaluate.evaluate(options)`; `streamer evaluate` on the command line)."""
