"""The one table of models: a config `model.type` and how to build it.

The daemon and `streamer evaluate` both build their forecasters here, so a name means
the same model in a config file and on evaluate's command line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from models.base import Forecaster
from models.baseline import LastValue, SeasonalNaive
from models.ensemble import Ensemble
from models.river_models import holt_winters, snarimax
from streamer.config import schema as cfg
from streamer.config.registry import Registry
from streamer.core.errors import ConfigError, ConfigProblem

if TYPE_CHECKING:  # torch is imported only when a net is built (the CLI starts fast)
    from models.recurrent import RecurrentForecaster
    from streamer.engine.retrain import RetrainSettings


@dataclass(frozen=True)
class BuiltModel:
    """A forecaster, and the recurrent net inside it that retraining keeps learning
    (None for models that do not train)."""

    forecaster: Forecaster
    net: RecurrentForecaster | None = None


Builder = Callable[[Any, cfg.RetrainConfig, str], BuiltModel]


def _lstm(model: cfg.LstmModel, retrain: cfg.RetrainConfig, device: str) -> BuiltModel:
    from models.cold_start import ColdStart

    net = build_recurrent(model, retrain, model.horizon, device)
    baseline = _member(model.baseline, model.horizon, model.season_length, "model.baseline")
    cold_start = ColdStart(net, baseline, model.min_train_steps, compare=model.serve_if == "better")
    return BuiltModel(cold_start, net)


def _ensemble(model: cfg.EnsembleModel, retrain: cfg.RetrainConfig, device: str) -> BuiltModel:
    net = None
    members: dict[str, Forecaster] = {}
    for name in model.members:
        if name == "lstm":
            net = build_recurrent(model, retrain, model.horizon, device)
            members[name] = net
        else:
            members[name] = _member(name, model.horizon, model.season_length, "model.members")
    return BuiltModel(Ensemble(members, model.halflife, model.sharpness), net)


def _last_value(model: cfg.LastValueModel, retrain: cfg.RetrainConfig, device: str) -> BuiltModel:
    return BuiltModel(LastValue(model.horizon))


def _seasonal(model: cfg.SeasonalNaiveModel, retrain: cfg.RetrainConfig, device: str) -> BuiltModel:
    return BuiltModel(SeasonalNaive(model.horizon, model.season_length))


def _snarimax(model: cfg.SnarimaxModel, retrain: cfg.RetrainConfig, device: str) -> BuiltModel:
    return BuiltModel(snarimax(model.horizon, model.season_length))


def _holt_winters(
    model: cfg.HoltWintersModel, retrain: cfg.RetrainConfig, device: str
) -> BuiltModel:
    return BuiltModel(holt_winters(model.horizon, model.season_length))


MODELS: Registry[cfg.ModelBase, Builder] = Registry("model")
MODELS.add(cfg.LstmModel, _lstm)
MODELS.add(cfg.EnsembleModel, _ensemble)
MODELS.add(cfg.LastValueModel, _last_value)
MODELS.add(cfg.SeasonalNaiveModel, _seasonal)
MODELS.add(cfg.SnarimaxModel, _snarimax)
MODELS.add(cfg.HoltWintersModel, _holt_winters)

COMPARED = ("lstm", "ensemble", "last_value", "seasonal_naive")  # evaluate's default set
RETRAIN_SEASONS = 10  # evaluate's default retrain period, in seasons of event time


def build_model(model: cfg.ModelBase, retrain: cfg.RetrainConfig) -> BuiltModel:
    """The forecaster a `model` section describes."""
    build = MODELS.builder(model, "model.type")
    device = _device(model.device) if isinstance(model, cfg.NetSettings) else "cpu"
    return build(model, retrain, device)


def model_config(
    name: str, horizon: int, season: int, net: cfg.NetSettings | None = None
) -> cfg.ModelBase:
    """The `model` section for a model named on a command line: its horizon and season,
    and the net's settings from `net` (a config's model section) where it has a net."""
    kind = MODELS.entry(name, "model.type").section
    values: dict[str, Any] = {"type": name, "horizon": horizon}
    if net is not None and issubclass(kind, cfg.NetSettings):
        values |= net.model_dump(include=set(cfg.NetSettings.model_fields))
    if "season_length" in kind.model_fields:
        values["season_length"] = season
    return kind.model_validate(values)


def build_recurrent(
    model: cfg.NetSettings, retrain: cfg.RetrainConfig, horizon: int, device: str = "cpu"
) -> RecurrentForecaster:
    """The LSTM (or GRU) a model section describes, recording into a replay buffer."""
    from models.recurrent import RecurrentForecaster
    from models.replay_buffer import ReplayBuffer

    r = retrain
    return RecurrentForecaster(
        horizon,
        cell=model.cell,
        hidden_size=model.hidden_size,
        num_layers=model.num_layers,
        dropout=model.dropout,
        seed=model.seed,
        calendar=model.calendar,
        returns=model.price_inputs == "returns",
        scale_halflife=model.scale_halflife,
        lags=model.lag_count,
        lag_memory=model.lag_memory,
        device=device,
        replay=ReplayBuffer(r.window, r.window - r.burn_in - horizon, r.buffer_steps),
    )


def retrain_settings(model: cfg.NetSettings, retrain: cfg.RetrainConfig) -> RetrainSettings:
    """How a retrain trains and decides, from the model and retrain sections."""
    from streamer.engine.retrain import RetrainSettings

    r = retrain
    return RetrainSettings(
        burn_in=r.burn_in,
        epochs=r.epochs,
        batch_size=r.batch_size,
        learning_rate=model.learning_rate,
        validation_fraction=r.validation_fraction,
        promote=r.promote,
        promote_tolerance=r.promote_tolerance,
        max_duration=r.max_duration.total_seconds(),
        min_new_steps=r.min_new_steps,
        threads=r.threads,
        seed=model.seed,
    )


def _member(name: str, horizon: int, season: int, where: str) -> Forecaster:
    """A model without a net, by its type: a cold-start fallback or an ensemble member."""
    section = model_config(name, horizon, season)
    return MODELS.entry(name, where).build(section, cfg.RetrainConfig(), "cpu").forecaster


def _device(wanted: str) -> str:
    import torch

    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if wanted == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "model", [ConfigProblem("model.device", "cuda was asked for, but no GPU is visible")]
        )
    return wanted
