"""The service around the engine: the daemon, its HTTP endpoints, logs and the CLI."""
