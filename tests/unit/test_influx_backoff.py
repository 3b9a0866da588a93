from hypothesis import given
from hypothesis import strategies as st

from connectors.influx_sink import backoff


@given(st.integers(1, 40), st.floats(0.001, 5), st.floats(0.01, 60))
def test_backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half(
    attempt: int, first: float, cap: float
) -> None:
    ceiling = min(cap, first * 2 ** (attempt - 1))
    wait = backoff(attempt, first, cap)
    assert ceiling / 2 <= wait <= ceiling
