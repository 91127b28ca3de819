"""The naive baseline an analyst would compute by hand: each customer's historical spend rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from clv_models.models.base import CLVModel, Prediction

MIN_AGE_DAYS = 7


class NaiveCLV(CLVModel):
    """Predict net revenue over the horizon as the customer's past net revenue per day.

    ``predicted_clv = max(net_revenue, 0) / max(t_days, 7) * horizon_days`` and
    ``p_purchase = 1 - exp(-order_count / max(t_days, 7) * horizon_days)`` (a Poisson process at
    the historical order rate). ``t_days`` is the customer's age since the first purchase; the
    7-day floor keeps brand-new customers from extrapolating one order to a daily habit. Nothing
    is learned: ``fit`` only records the horizon.
    """

    name = "naive"

    def __init__(self, horizon_days: int = 180) -> None:
        self.horizon_days = horizon_days
        self.feature_names = ["net_revenue", "order_count", "t_days"]
        self.metadata = {"horizon_days": horizon_days}

    def fit(self, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame | None = None,
            y_val: np.ndarray | None = None) -> NaiveCLV:
        self._check_features(X)
        return self

    def predict(self, X: pd.DataFrame, explain: bool = False) -> Prediction:
        net, orders, age = self._check_features(X).T
        age = np.maximum(np.nan_to_num(age), MIN_AGE_DAYS)
        clv = np.maximum(np.nan_to_num(net), 0) / age * self.horizon_days
        p = 1 - np.exp(-np.nan_to_num(orders) / age * self.horizon_days)
        return Prediction(predicted_clv=clv, p_purchase=p)

    def _save_weights(self, directory: Path) -> None:
        (directory / "naive.txt").write_text(f"horizon_days={self.horizon_days}\n")

    def _load_weights(self, directory: Path) -> None:
        self.horizon_days = int(self.metadata["horizon_days"])
