"""What the recurrent model reads at each step, besides the series' scaled value.

Calendar features place a step in the day and the week (UTC), as sine and cosine so
that 23:00 is next to 00:00 and Sunday to Monday. For prices, the model may read log
returns rather than levels (`returns`): then its input is the scaled log return, and it
forecasts the cumulative log return to each horizon, which is mapped back to a price.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

CALENDAR_WIDTH = 4
_DAY_S = 86_400


def calendar(times_ns: NDArray[np.int64]) -> NDArray[np.float32]:
    """[..., 4]: sin and cos of the time of day, then of the day of the week (Monday 0).

    >>> calendar(np.array([0])).astype(float).round(3).tolist()  # 1970-01-01 00:00, a Thursday
    [[0.0, 1.0, 0.434, -0.901]]
    """
    seconds = np.asarray(times_ns, dtype=np.int64) // 1_000_000_000
    day = 2 * np.pi * (seconds % _DAY_S) / _DAY_S
    week = 2 * np.pi * ((seconds // _DAY_S + 3) % 7) / 7
    out = np.stack([np.sin(day), np.cos(day), np.sin(week), np.cos(week)], axis=-1)
    return out.astype(np.float32)


def log_returns(values: NDArray[np.float64], previous: NDArray[np.float64]) -> NDArray[np.float64]:
    """log(value / previous), and 0 where either is not a positive price (a first step).

    >>> log_returns(np.array([110.0, 5.0]), np.array([100.0, 0.0])).round(4).tolist()
    [0.0953, 0.0]
    """
    ok = (values > 0) & (previous > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(ok, np.log(np.where(ok, values, 1.0) / np.where(ok, previous, 1.0)), 0.0)
    result: NDArray[np.float64] = out
    return result
