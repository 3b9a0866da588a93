"""The `model` section: one tagged union of the forecasters a config can name."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from streamer.config.types import Section, default_type


class ModelBase(Section):
    """What every forecaster has: how many steps ahead it forecasts."""

    horizon: Annotated[int, Field(ge=1, le=1000)] = 12


class NetSettings(Section):
    """The recurrent net: one LSTM (or GRU) shared by all series, each series with its own
    state, plus a linear highway on the last `lags` scaled values."""

    cell: Literal["lstm", "gru"] = "lstm"
    hidden_size: Annotated[int, Field(ge=1)] = 32
    num_layers: Annotated[int, Field(ge=1)] = 1
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    learning_rate: Annotated[float, Field(gt=0)] = 1e-3
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    seed: int = 0
    calendar: bool = False
    scale_halflife: Annotated[int, Field(ge=1)] | None = None
    price_inputs: Literal["levels", "returns"] = "levels"
    season_length: Annotated[int, Field(ge=1)] = 24
    lags: Annotated[int, Field(ge=0)] | None = None
    lag_memory: Annotated[float, Field(gt=0)] = 5000.0

    @property
    def lag_count(self) -> int:
        """Lags the linear highway reads: `lags`, or two seasons when unset."""
        return 2 * self.season_length if self.lags is None else self.lags


class LstmModel(ModelBase, NetSettings):
    """The recurrent net alone. Until its weights have been trained on `min_train_steps`
    (and, with `serve_if: better`, while its recent live error is not below the
    baseline's), a baseline forecasts instead."""

    type: Literal["lstm"]
    min_train_steps: Annotated[int, Field(ge=0)] = 10_000
    serve_if: Literal["better", "trained"] = "better"
    baseline: Literal["seasonal_naive", "last_value", "holtwinters", "snarimax"] = "seasonal_naive"


EnsembleMember = Literal["lstm", "last_value", "seasonal_naive"]
DEFAULT_MEMBERS: tuple[EnsembleMember, ...] = ("lstm", "last_value", "seasonal_naive")


class EnsembleModel(ModelBase, NetSettings):
    """An online combination of `members`, weighted per series and horizon by their
    recent live squared errors: the best member carries the forecast, near-equals share
    it. The net's settings are those of its `lstm` member."""

    type: Literal["ensemble"]
    members: Annotated[list[EnsembleMember], Field(min_length=2)] = Field(
        default_factory=lambda: list(DEFAULT_MEMBERS)
    )
    halflife: Annotated[float, Field(gt=0)] = 200.0
    sharpness: Annotated[float, Field(ge=0)] = 10.0

    @field_validator("members")
    @classmethod
    def _members_unique(cls, members: list[str]) -> list[str]:
        if len(set(members)) != len(members):
            raise ValueError(f"each member may be named once; got {members}")
        return members


class LastValueModel(ModelBase):
    """Baseline: every horizon forecasts the last observed value."""

    type: Literal["last_value"]


class SeasonalNaiveModel(ModelBase):
    """Baseline: each horizon forecasts the value one season earlier."""

    type: Literal["seasonal_naive"]
    season_length: Annotated[int, Field(ge=1)] = 24


class SnarimaxModel(ModelBase):
    """river's SNARIMAX(2,1,1)(0,1,1)[season_length], learnt online per series. One
    Python model per series: for tens or hundreds of series, not for 100k."""

    type: Literal["snarimax"]
    season_length: Annotated[int, Field(ge=1)] = 24


class HoltWintersModel(ModelBase):
    """river's additive Holt-Winters (level and season, no trend), per series. One Python
    model per series: for tens or hundreds of series, not for 100k."""

    type: Literal["holtwinters"]
    season_length: Annotated[int, Field(ge=1)] = 24


Model = Annotated[
    LstmModel
    | EnsembleModel
    | LastValueModel
    | SeasonalNaiveModel
    | SnarimaxModel
    | HoltWintersModel,
    Field(discriminator="type"),
    default_type("lstm"),
]
