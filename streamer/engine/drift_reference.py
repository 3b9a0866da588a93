"""The reference a drift feed standardises its values with (see `streamer.engine.drift`).

A (signal, series) learns its reference over `warmup` values: their median and MAD, so
that a few wild first values do not set it, give a winsorised mean and variance. It
then follows the values as an exponentially weighted mean and variance.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

WARMUP = 200  # values that set a reference, when the detector's config does not say
REFERENCE_HALFLIFE = 1_000  # values; the reference follows slower changes than this
CLIP = 5.0  # reference sds: what a detector sees of one value at most
RECENT_HALFLIFE = 4  # values; the reported level is this recent

MIN_WEIGHT = 1.0 - 0.5 ** (1.0 / REFERENCE_HALFLIFE)  # of a value in the reference
RECENT_WEIGHT = 1.0 - 0.5 ** (1.0 / RECENT_HALFLIFE)  # of a value in the reported level


def references(warm: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per row of `warm` [feeds, values]: the mean and variance of its values,
    winsorised at CLIP robust sds from their median (the std of them all where their
    MAD is 0).

    >>> mean, var = references(np.array([[1.0, 2.0, 3.0, 4.0, 1000.0], [5.0, 5.0, 5.0, 5.0, 6.0]]))
    >>> mean.round(3).tolist(), var.round(3).tolist()
    ([4.083, 5.2], [11.018, 0.16])
    """
    center = np.median(warm, axis=1)
    spread = 1.4826 * np.median(np.abs(warm - center[:, None]), axis=1)
    spread = np.where(spread != 0, spread, warm.std(axis=1))
    clipped = np.clip(warm, (center - CLIP * spread)[:, None], (center + CLIP * spread)[:, None])
    a = np.where((spread > 0)[:, None], clipped, warm)
    return a.mean(axis=1), a.var(axis=1)
