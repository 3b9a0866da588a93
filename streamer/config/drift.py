"""Drift detectors built from `drift.detector` sections (`DETECTORS`), and the drift
monitor and response a config asks for."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from models.base import Forecaster
from streamer.config import schema as cfg
from streamer.config.registry import Registry
from streamer.core.errors import ConfigError, ConfigProblem
from streamer.engine.drift import DetectorFactory, DriftMonitor, Feeds, Signal
from streamer.engine.drift_response import DriftResponse
from streamer.engine.kswin import KswinFeeds, KswinParams
from streamer.engine.page_hinkley import PageHinkleyFeeds, PageHinkleyParams
from streamer.engine.retrain import Retrainer


def _adwin(section: cfg.AdwinDetector) -> Any:
    from river import drift

    return drift.ADWIN(delta=section.delta)  # type: ignore[no-untyped-call]


def _page_hinkley(section: cfg.PageHinkleyDetector) -> Any:
    from river import drift

    return drift.PageHinkley(
        min_instances=section.min_instances,
        delta=section.delta,
        threshold=section.threshold,
        alpha=section.alpha,
    )


def _kswin(section: cfg.KswinDetector) -> Any:
    from river import drift

    return drift.KSWIN(
        alpha=section.alpha,
        window_size=section.window_size,
        stat_size=section.stat_size,
        seed=section.seed,
    )


DETECTORS: Registry[Any, Callable[[Any], Any]] = Registry("detector")
DETECTORS.add(cfg.AdwinDetector, _adwin)
DETECTORS.add(cfg.PageHinkleyDetector, _page_hinkley)
DETECTORS.add(cfg.KswinDetector, _kswin)


def make_detector(section: cfg.Detector) -> DetectorFactory:
    """A factory of river detectors, one per (signal, series), for a `drift.detector`;
    for Page-Hinkley and KSWIN also their feeds on arrays, which the monitor runs."""
    build = DETECTORS.builder(section, "drift.detector.type")
    arrays: Callable[[int], Feeds] | None = None
    if isinstance(section, cfg.PageHinkleyDetector):
        page_hinkley = PageHinkleyParams(
            min_instances=section.min_instances,
            delta=section.delta,
            threshold=section.threshold,
            alpha=section.alpha,
        )
        arrays = partial(PageHinkleyFeeds, page_hinkley)
    elif isinstance(section, cfg.KswinDetector):
        kswin = KswinParams(section.alpha, section.window_size, section.stat_size, section.seed)
        arrays = partial(KswinFeeds, kswin)
    return DetectorFactory(lambda: build(section), section.warmup, arrays)


def build_drift(
    config: cfg.StreamerConfig, forecaster: Forecaster, retrainer: Retrainer | None
) -> tuple[DriftMonitor | None, DriftResponse | None]:
    """The drift detectors and what is done on a detection, or (None, None) if off."""
    d = config.drift
    if not d.enabled:
        return None, None
    if d.on_drift == "retrain" and retrainer is None:
        raise ConfigError(
            "drift",
            [
                ConfigProblem(
                    "drift.on_drift",
                    "retrain needs a model that retrains (model.type lstm with retrain.enabled); "
                    "use alert or reset_state",
                )
            ],
        )
    signals: tuple[Signal, ...] = ("error", "input") if d.signal == "both" else (d.signal,)
    monitor = DriftMonitor(make_detector(d.detector), d.detector.type, signals)
    response = DriftResponse(
        d.on_drift,
        d.cooldown_seconds(config.window.step.total_seconds()),
        (lambda reason: retrainer.request(reason, fresh_data=True)) if retrainer else None,
        forecaster.reset,
    )
    return monitor, response
