"""The one config file: its schema, loading with env overrides, and building from it."""
