"""Forecasters behind one interface (`Forecaster`), and what scores and trains them.

from models import Ensemble, LastValue, RecurrentForecaster
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamer.core.exports import lazy_exports

if TYPE_CHECKING:
    from models.base import Forecaster, Scorer, ScoresMembers, Trained
    from models.baseline import LastValue, SeasonalNaive
    from models.cold_start import ColdStart
    from models.ensemble import Ensemble
    from models.outcomes import Outcomes
    from models.recurrent import RecurrentForecaster
    from models.replay_buffer import ReplayBuffer
    from models.river_models import RiverForecaster, holt_winters, snarimax

_EXPORTS = {
    "Forecaster": "models.base",
    "Trained": "models.base",
    "Scorer": "models.base",
    "ScoresMembers": "models.base",
    "LastValue": "models.baseline",
    "SeasonalNaive": "models.baseline",
    "RiverForecaster": "models.river_models",
    "holt_winters": "models.river_models",
    "snarimax": "models.river_models",
    "RecurrentForecaster": "models.recurrent",
    "ColdStart": "models.cold_start",
    "Ensemble": "models.ensemble",
    "Outcomes": "models.outcomes",
    "ReplayBuffer": "models.replay_buffer",
}
__all__ = [
    "ColdStart",
    "Ensemble",
    "Forecaster",
    "LastValue",
    "Outcomes",
    "RecurrentForecaster",
    "ReplayBuffer",
    "RiverForecaster",
    "Scorer",
    "ScoresMembers",
    "SeasonalNaive",
    "Trained",
    "holt_winters",
    "snarimax",
]
__getattr__ = lazy_exports(__name__, _EXPORTS)
