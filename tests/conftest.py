"""Test-wide settings: hypothesis without per-example deadlines.

Timing is measured in bench/, never in tests; a deadline would only make property tests
flaky on a loaded machine (CI runs them next to Kafka and InfluxDB).
"""

from hypothesis import settings

settings.register_profile("streamer", deadline=None)
settings.load_profile("streamer")
