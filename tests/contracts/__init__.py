"""Contract suites for the edges: every Source and every Sink, whatever its transport,
goes through the same checks (as every Forecaster does in tests/unit/test_forecasters.py).

A contract is a plain function taking a harness, a small object that knows how to feed
or read one transport. tests/unit/test_edge_contracts.py runs them over the in-memory,
replay and file edges; tests/integration/test_edge_contracts.py over Kafka, MQTT and
InfluxDB against the real servers.
"""
