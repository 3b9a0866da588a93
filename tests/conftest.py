"""Test-wide settings: hypothesis without per-example deadlines, and assertion messages
for the contract suites (plain modules, not test files).

Timing is measured in bench/, never in tests; a deadline would only make property tests
flaky on a loaded machine (CI runs them next to Kafka and InfluxDB).
"""

import pytest
from hypothesis import settings

pytest.register_assert_rewrite("tests.contracts")

settings.register_profile("streamer", deadline=None)
settings.load_profile("streamer")
