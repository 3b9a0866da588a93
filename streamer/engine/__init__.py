"""The streaming engine: window, pipeline, sink writer, checkpoint, drift, retraining, scoring."""
