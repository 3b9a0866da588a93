"""The `drift.detector` section: one tagged union of river's detectors."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from streamer.config.types import Section, default_type


class AdwinDetector(Section):
    """river's ADWIN: adaptive window, for changes in the mean. It compares sub-windows
    of the signal by their own spread, so by default (`warmup` 0) it sees the raw
    signal; with `warmup` N it sees it standardised by a reference learnt over N values
    per series (as `page_hinkley` does). It assumes independent values: on
    autocorrelated ones (most real series) it fires often."""

    type: Literal["adwin"]
    delta: Annotated[float, Field(gt=0, lt=1)] = 0.002
    warmup: Annotated[int, Field(ge=0)] = 0


class PageHinkleyDetector(Section):
    """river's Page-Hinkley test (a two-sided CUSUM), for sustained changes in the mean;
    the default. It sees each value in standard deviations of the series' reference
    (learnt over `warmup` values per series, and again after each detection), so
    `delta` (the allowance: moves smaller than this are ignored) and `threshold` (how
    far the summed excess over the allowance must go) are in those units. The defaults
    give at most 1 alarm per 10,000 steps on stationary noise, AR(1) 0.8 included, and
    find a 3-sd level shift in about 20 steps; `alpha` 1 sums without fading (a fading
    sum wanders on long runs and fires by itself)."""

    type: Literal["page_hinkley"]
    threshold: Annotated[float, Field(gt=0)] = 40.0
    min_instances: Annotated[int, Field(ge=1)] = 30
    delta: Annotated[float, Field(ge=0)] = 1.0
    alpha: Annotated[float, Field(gt=0, le=1)] = 1.0
    warmup: Annotated[int, Field(ge=0)] = 200


class KswinDetector(Section):
    """river's KSWIN: a Kolmogorov-Smirnov test of the `stat_size` latest values
    against as many drawn from the older ones in a sliding window of `window_size`, for
    changed shapes (a spread that grows, not only a mean that moves). Rank-based, so by
    default (`warmup` 0) it sees the raw signal; `warmup` as for `adwin`. It assumes
    independent values: on autocorrelated ones it fires often. It runs on arrays, every
    series at once, and keeps `window_size` values per series and signal."""

    type: Literal["kswin"]
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.005
    window_size: Annotated[int, Field(ge=2)] = 100
    stat_size: Annotated[int, Field(ge=1)] = 30
    seed: int = 0
    warmup: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _stat_fits_window(self) -> KswinDetector:
        if 2 * self.stat_size > self.window_size:
            raise ValueError(
                f"stat_size ({self.stat_size}) must be at most half of window_size "
                f"({self.window_size}): its sample is drawn from the window's older values"
            )
        return self


Detector = Annotated[
    AdwinDetector | PageHinkleyDetector | KswinDetector,
    Field(discriminator="type"),
    default_type("page_hinkley"),
]
