"""Training: the point-in-time training set from Feast, the time-based split, and fitting.

The split is by as-of date, never by customer:

* **evaluation** date ``t_eval``: the latest as-of date whose label horizon is complete;
* **training** dates: every as-of date ``t`` with ``t + horizon <= t_eval``, so no training label
  looks at anything on or after ``t_eval``;
* **validation** (early stopping): the latest training date, held out of the fit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from clv_models.core.config import Config
from clv_models.core.errors import DataError
from clv_models.features import store as features
from clv_models.models import (
    BGNBDGammaGammaCLV,
    CLVModel,
    DeepCLV,
    NaiveCLV,
    XGBoostCLV,
    load_model,
)
from clv_models.models.deep.estimator import EpochProgress

TARGET = "label_net_revenue"
# Every model family, all trained, evaluated and scored; naive and bgnbd_gg (BG/NBD +
# Gamma-Gamma) are the references the learned models are judged against.
MODEL_NAMES = ("naive", "bgnbd_gg", "xgboost", "deep_ziln")
#: The models that learn from labels (the benchmarks cross-fit and time them).
LEARNED_MODELS = ("xgboost", "deep_ziln")


@dataclass
class Split:
    """The as-of dates of each part of the time-based split."""

    fit_dates: list[dt.date]
    validation_date: dt.date
    evaluation_date: dt.date


@dataclass
class TrainingSet:
    """Feature rows joined point-in-time to their labels, one row per (customer, as-of date).

    ``feature_names`` are all retrieved feature columns (the union of the feature services);
    ``services`` maps each feature service to its columns, so every model gets its own input
    set from one retrieval (:meth:`columns`).
    """

    frame: pd.DataFrame
    feature_names: list[str]
    split: Split
    services: dict[str, list[str]] = field(default_factory=dict)

    def columns(self, service: str) -> list[str]:
        """The feature columns of ``service`` (all columns when no services are known)."""
        if not self.services:
            return self.feature_names
        if service not in self.services:
            raise KeyError(f"feature service {service!r} was not retrieved; "
                           f"known: {sorted(self.services)}")
        return self.services[service]

    def part(self, name: str) -> pd.DataFrame:
        """Rows of ``fit``, ``validation`` or ``evaluation``."""
        dates = {"fit": self.split.fit_dates, "validation": [self.split.validation_date],
                 "evaluation": [self.split.evaluation_date]}[name]
        return self.frame[self.frame["as_of_date"].isin(dates)]

    def fingerprint(self) -> str:
        """Content hash of the training rows (fit + validation), stored with each model."""
        rows = self.frame[~(self.frame["as_of_date"] == self.split.evaluation_date)]
        cols = ["customer_id", "as_of_date", TARGET, *self.feature_names]
        arrays = [c for c in cols if rows[c].dtype == object
                  and any(isinstance(v, (list, np.ndarray)) for v in rows[c].head(100))]
        h = pd.util.hash_pandas_object(rows[[c for c in cols if c not in arrays]], index=False)
        digest = hashlib.sha256(h.to_numpy().tobytes())
        for c in arrays:  # array features (weekly sequences): their float32 values, row by row
            length = next((len(v) for v in rows[c] if isinstance(v, (list, np.ndarray))), 0)
            digest.update(features.sequence_array(rows[c], length).tobytes())
        return digest.hexdigest()[:16]


def make_split(as_of_dates: list[dt.date], horizon_days: int) -> Split:
    """The time-based split over the as-of dates that have complete labels."""
    dates = sorted(set(as_of_dates))
    if not dates:
        raise DataError("no as-of date has a complete label horizon: the data covers less "
                         "than one horizon after the first as-of date (as_of.start)")
    evaluation = dates[-1]
    train = [d for d in dates if d + dt.timedelta(days=horizon_days) <= evaluation]
    if len(train) < 2:
        raise DataError(
            f"need at least 2 as-of dates ending a horizon ({horizon_days} days) before the "
            f"evaluation date {evaluation}; found {len(train)}. Use a longer history, a shorter "
            "horizon or a denser as-of schedule.")
    return Split(fit_dates=train[:-1], validation_date=train[-1], evaluation_date=evaluation)


def check_horizon(built: int, cfg: Config, what: str) -> None:
    """Fail when the labels or models were made for another horizon than the configuration's."""
    if built != cfg.horizon_days:
        raise DataError(
            f"{what} {built} days but the configuration says horizon_days = {cfg.horizon_days}: "
            f"rebuild (`clv build`, then `clv features` and `clv train`) or use "
            f"--set horizon_days={built}")


def load_training_set(cfg: Config) -> TrainingSet:
    """Labels as the entity frame, features through Feast's point-in-time retrieval.

    The labels must have been built for the configured horizon (the split depends on it).
    """
    labels = features.label_frame(cfg)
    if labels.empty:
        raise DataError(
            f"no labels: no as-of date has a complete {cfg.horizon_days}-day horizon. The "
            f"schedule starts at as_of.start = {cfg.as_of.start or 'auto'}; use auto (the "
            "default) or set it (clv.yaml or --set as_of.start=YYYY-MM-DD) to a date inside "
            "your data, at least one horizon before its end, and run `clv build` again")
    for built in labels["horizon_days"].unique():
        check_horizon(int(built), cfg, "the labels were built for a horizon of")
    split = make_split(list(labels["as_of_date"].unique()), cfg.horizon_days)
    store = features.feature_store(cfg)
    services = features.service_features(store)  # every model input set, retrieved once
    frame = features.historical_features(cfg, labels, store, tuple(services))
    names = list(dict.fromkeys(c for cols in services.values() for c in cols))
    return TrainingSet(frame=frame, feature_names=names, split=split, services=services)


def build_models(cfg: Config) -> dict[str, CLVModel]:
    """Fresh, unfitted estimators for every model name."""
    return {
        "naive": NaiveCLV(horizon_days=cfg.horizon_days),
        "bgnbd_gg": BGNBDGammaGammaCLV(horizon_days=cfg.horizon_days),
        "xgboost": XGBoostCLV(cfg.xgboost, seed=cfg.seed, horizon_days=cfg.horizon_days),
        "deep_ziln": DeepCLV(cfg.deep, seed=cfg.seed, horizon_days=cfg.horizon_days),
    }


def fit_models(cfg: Config, data: TrainingSet, names: tuple[str, ...] = MODEL_NAMES,
               on_start: Callable[[str], None] | None = None,
               on_epoch: Callable[[EpochProgress], None] | None = None,
               ) -> dict[str, CLVModel]:
    """Fresh models fitted on ``data``'s fit rows (early stopping on its validation rows).

    Nothing is saved (:func:`train` saves; backtests refit at each cutoff). A model that
    :attr:`~clv_models.models.base.CLVModel.takes_dates` gets the rows' ``as_of_date`` too.
    """
    fit, val = data.part("fit"), data.part("validation")
    models = build_models(cfg)
    if on_epoch is not None:
        models["deep_ziln"].on_epoch = on_epoch
    out: dict[str, CLVModel] = {}
    for name in names:
        model = models[name]
        if on_start:
            on_start(name)
        cols = data.columns(model.feature_service)  # the model's own input set
        X = fit[[*cols, "as_of_date"]] if model.takes_dates else fit[cols]
        model.fit(X, fit[TARGET].to_numpy(), val[cols], val[TARGET].to_numpy())
        out[name] = model
    return out


def train(cfg: Config, data: TrainingSet, names: tuple[str, ...] = MODEL_NAMES,
          on_model: Callable[[str, CLVModel], None] | None = None,
          on_start: Callable[[str], None] | None = None,
          on_epoch: Callable[[EpochProgress], None] | None = None) -> dict[str, CLVModel]:
    """Fit the models on the fit rows (early stopping on validation) and save them.

    Parameters
    ----------
    on_model
        Called with ``(name, model)`` after each model is fitted and saved.
    on_start
        Called with a model's name before it is fitted.
    on_epoch
        Called after each epoch of the deep model (:class:`EpochProgress`).
    """
    fingerprint = data.fingerprint()
    out: dict[str, CLVModel] = {}
    for name in names:  # one at a time, so progress shows each model as it is saved
        model = fit_models(cfg, data, (name,), on_start, on_epoch)[name]
        model.save(cfg.models_dir / name, extra=training_metadata(cfg, data, model, fingerprint))
        out[name] = model
        if on_model:
            on_model(name, model)
    return out


def training_metadata(cfg: Config, data: TrainingSet, model: CLVModel,
                      fingerprint: str) -> dict:
    """What a saved model records about its training: input set, horizon, split, rows."""
    return {
        "feature_service": model.feature_service,
        "horizon_days": cfg.horizon_days, "training_fingerprint": fingerprint,
        "fit_dates": [str(d) for d in data.split.fit_dates],
        "validation_date": str(data.split.validation_date),
        "evaluation_date": str(data.split.evaluation_date),
        "fit_rows": len(data.part("fit")), "validation_rows": len(data.part("validation")),
        "trained_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def load_models(cfg: Config, names: tuple[str, ...] = MODEL_NAMES) -> dict[str, CLVModel]:
    """The saved models (see :func:`clv_models.models.load_model`), checked against the
    configured horizon."""
    models = {name: load_model(cfg.models_dir / name) for name in names}
    for name, model in models.items():
        check_horizon(int(model.metadata["horizon_days"]), cfg,
                      f"model {name} was trained for a horizon of")
    return models

