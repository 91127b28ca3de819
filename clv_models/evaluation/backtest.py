"""Rolling-origin backtests: every model, the blend and the champion refitted and evaluated at
successive cutoffs.

At each cutoff ``c`` (an as-of date with a complete label) the time split of
:func:`clv_models.models.training.make_split` is applied to the as-of dates up to ``c``: the models
are fitted on the dates whose label horizon ends on or before ``c`` (the latest of them held out
for early stopping, the blend weights and the champion choice), and evaluated on the rows at ``c``.
No fitted row is at or after its cutoff, and no decision sees the cutoff's labels.

Per model and metric the result holds the value at each cutoff, their mean and spread, and the
difference to BG/NBD + Gamma-Gamma with a paired bootstrap interval: customers are resampled with
replacement at each cutoff, both models are scored on the same resample, and the replicate's
differences are averaged over the cutoffs.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clv_models.core import atomic, metrics
from clv_models.core.config import Config
from clv_models.core.errors import DataError
from clv_models.evaluation import champion
from clv_models.models import Prediction, training
from clv_models.models.training import TARGET, Split, TrainingSet, make_split

DEFAULT_CUTOFFS = 3
DEFAULT_BOOTSTRAP = 200
#: Metrics of the backtest table (all of :func:`clv_models.core.metrics.evaluate`).
METRICS = ("mae", "rmse", "normalized_gini", "top_decile_capture", "decile_mape", "total_ratio",
           "auc", "spearman", "mae_p50", "coverage_80")
#: Metrics with a bootstrap interval of the difference to the reference.
BOOTSTRAP_METRICS = ("mae", "rmse", "normalized_gini", "top_decile_capture")
BACKTEST_FILE = "backtest.json"


def feasible_splits(as_of_dates: list[dt.date], horizon_days: int) -> list[Split]:
    """The time split of every as-of date that has one (at least two earlier dates whose
    horizon ends by it), oldest first."""
    dates = sorted(set(as_of_dates))
    feasible = []
    for cutoff in dates:
        try:
            feasible.append(make_split([d for d in dates if d <= cutoff], horizon_days))
        except DataError:
            continue
    return feasible


def backtest_splits(as_of_dates: list[dt.date], horizon_days: int,
                    cutoffs: int = DEFAULT_CUTOFFS) -> list[Split]:
    """The time splits of the last ``cutoffs`` as-of dates that have one.

    Raises
    ------
    DataError
        When fewer than ``cutoffs`` as-of dates have at least two earlier dates whose horizon
        ends by them.
    """
    feasible = feasible_splits(as_of_dates, horizon_days)
    if len(feasible) < cutoffs:
        raise DataError(
            f"a backtest over {cutoffs} cutoffs needs {cutoffs} as-of dates, each with two "
            f"earlier dates whose {horizon_days}-day horizon ends by it; this data has "
            f"{len(feasible)}", hint="use fewer --cutoffs, a denser as-of schedule "
            "(as_of.unit: week) or a shorter horizon_days")
    return feasible[-cutoffs:]


def _scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    err = pred - y
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err**2).mean())),
            "normalized_gini": metrics.normalized_gini(y, pred),
            "top_decile_capture": metrics.top_decile_capture(y, pred)}


@dataclass
class BacktestResult:
    """Per-cutoff metric rows, the champion of each cutoff, and the summary per model."""

    reference: str
    cutoffs: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    summary: list[dict[str, Any]] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.summary).set_index("model")

    def to_json(self) -> str:
        def clean(v):
            return None if isinstance(v, float) and not np.isfinite(v) else v
        payload = {"reference": self.reference, "cutoffs": self.cutoffs,
                   "rows": [{k: clean(v) for k, v in r.items()} for r in self.rows],
                   "summary": [{k: clean(v) for k, v in r.items()} for r in self.summary]}
        return json.dumps(payload, indent=2, default=str)


@dataclass
class CutoffForecasts:
    """What one cutoff's refit forecast for the cutoff's rows, before any metric."""

    split: Split
    actual: np.ndarray
    purchased: np.ndarray
    predictions: dict[str, Prediction]
    champion: str
    weights: dict[str, float]
    #: How the cutoff is named in the result (default: its evaluation date).
    label: str = ""


#: Maps ``(cutoff index, model name, prediction)`` to the prediction that is scored.
Transform = Callable[[int, str, Prediction], Prediction]


def fit_cutoffs(cfg: Config, data: TrainingSet, cutoffs: int = DEFAULT_CUTOFFS,
                on_cutoff: Callable[[int, Split], None] | None = None,
                splits: list[Split] | None = None) -> list[CutoffForecasts]:
    """Refit every model, the blend and the champion at each of the last ``cutoffs`` feasible
    cutoffs of ``data`` (or at ``splits``) and forecast the cutoff's rows."""
    if splits is None:
        splits = backtest_splits(list(data.frame["as_of_date"].unique()), cfg.horizon_days,
                                 cutoffs)
    out = []
    for i, split in enumerate(splits):
        if on_cutoff:
            on_cutoff(i, split)
        frame = data.frame[data.frame["as_of_date"] <= split.evaluation_date]
        sub = TrainingSet(frame=frame, feature_names=data.feature_names, split=split,
                          services=data.services)
        models = training.fit_models(cfg, sub)
        choice, blend = champion.choose(models, sub)
        rows = sub.part("evaluation")
        X = rows[data.feature_names]
        preds: dict[str, Prediction] = {n: m.predict(X) for n, m in models.items()}
        preds["blend"] = blend.combine(preds)
        out.append(CutoffForecasts(
            split=split, actual=rows[TARGET].to_numpy(dtype=float),
            purchased=rows["label_purchase_days"].to_numpy() > 0, predictions=preds,
            champion=choice.champion, weights=choice.weights))
    return out


def score_cutoffs(forecasts: list[CutoffForecasts], bootstrap: int = DEFAULT_BOOTSTRAP,
                  seed: int = 0, transform: Transform | None = None,
                  with_champion: bool = True) -> BacktestResult:
    """Every metric per cutoff and model, and the summary with the paired bootstrap intervals
    of the differences to the reference (see the module docstring).

    ``transform`` changes each forecast before it is scored (e.g. a calibration fitted on the
    other cutoffs); ``with_champion`` adds each cutoff's champion as the model ``champion``.
    """
    reference = champion.REFERENCE
    result = BacktestResult(reference=reference)
    rng = np.random.default_rng(seed)
    diffs: dict[str, dict[str, list[np.ndarray]]] = {}
    for i, f in enumerate(forecasts):
        split, y, purchased = f.split, f.actual, f.purchased
        preds = {n: (transform(i, n, p) if transform else p) for n, p in f.predictions.items()}
        if with_champion:
            preds["champion"] = preds[f.champion]
        label = f.label or str(split.evaluation_date)
        result.cutoffs.append({"cutoff": label,
                               "fit_dates": [str(d) for d in split.fit_dates],
                               "validation_date": str(split.validation_date),
                               "customers": len(y), "champion": f.champion,
                               "weights": f.weights})
        for name, p in preds.items():
            result.rows.append({"cutoff": label, "model": name,
                                **metrics.evaluate(y, p.predicted_clv, p.p_purchase,
                                                   purchased, p.quantiles)})
        samples = rng.integers(0, len(y), size=(bootstrap, len(y)))
        ref = [_scores(y[idx], preds[reference].predicted_clv[idx]) for idx in samples]
        for name, p in preds.items():
            per = diffs.setdefault(name, {m: [] for m in BOOTSTRAP_METRICS})
            d = np.zeros((bootstrap, len(BOOTSTRAP_METRICS)))
            for b, idx in enumerate(samples):
                mine = _scores(y[idx], p.predicted_clv[idx])
                d[b] = [mine[m] - ref[b][m] for m in BOOTSTRAP_METRICS]
            for j, m in enumerate(BOOTSTRAP_METRICS):
                per[m].append(d[:, j])
    result.summary = summarise(result.rows, diffs, reference)
    return result


def run(cfg: Config, data: TrainingSet, cutoffs: int = DEFAULT_CUTOFFS,
        bootstrap: int = DEFAULT_BOOTSTRAP,
        on_cutoff: Callable[[int, Split], None] | None = None) -> BacktestResult:
    """Refit and evaluate every model, the blend and the champion at each cutoff.

    Parameters
    ----------
    data
        The training set of all as-of dates (:func:`clv_models.models.training.load_training_set`).
    cutoffs
        How many successive cutoffs (the latest ones with a feasible split).
    bootstrap
        Bootstrap replicates of the paired differences to the reference (0: none).
    on_cutoff
        Called with ``(index, split)`` before each cutoff is fitted.
    """
    return score_cutoffs(fit_cutoffs(cfg, data, cutoffs, on_cutoff), bootstrap, cfg.seed)


def summarise(rows: list[dict[str, Any]], diffs: dict[str, dict[str, list[np.ndarray]]],
              reference: str) -> list[dict[str, Any]]:
    """Mean and spread (standard deviation over cutoffs) of each metric per model, and the mean
    difference to ``reference`` with its 95 % paired bootstrap interval."""
    frame = pd.DataFrame(rows)
    out = []
    for name, group in frame.groupby("model", sort=False):
        row: dict[str, Any] = {"model": name, "cutoffs": len(group)}
        ref = frame[frame["model"] == reference].set_index("cutoff")
        for m in METRICS:
            values = group[m].to_numpy(dtype=float)
            row[f"{m}_mean"] = float(np.nanmean(values)) if np.isfinite(values).any() else None
            row[f"{m}_std"] = float(np.nanstd(values)) if np.isfinite(values).any() else None
        for m in BOOTSTRAP_METRICS:
            point = group.set_index("cutoff")[m] - ref[m]
            row[f"{m}_diff"] = float(point.mean())
            reps = diffs.get(name, {}).get(m, [])
            if reps and len(reps[0]):
                mean_rep = np.mean(np.vstack(reps), axis=0)
                lo, hi = np.percentile(mean_rep, [2.5, 97.5])
                row[f"{m}_diff_low"], row[f"{m}_diff_high"] = float(lo), float(hi)
        out.append(row)
    return out


def write(cfg: Config, result: BacktestResult) -> Any:
    """Write ``reports/backtest.json`` and return its path."""
    out = cfg.resolved().reports_dir
    out.mkdir(parents=True, exist_ok=True)
    path = out / BACKTEST_FILE
    atomic.write_text(path, result.to_json())
    return path
