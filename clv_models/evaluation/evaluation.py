"""Evaluation on the held-out as-of date: every model beside the baselines on the same rows.

On a generated shop the oracle (the expected value under the true latent parameters, see
:mod:`clv_models.ingest.generate`) is evaluated too, as the reference for the best achievable
scores.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from clv_models.core import atomic, metrics
from clv_models.core.config import Config
from clv_models.evaluation.champion import ChampionChoice, calibrations
from clv_models.models import CLVModel, Prediction
from clv_models.models.training import TARGET, TrainingSet

REFERENCE_MODELS = ("naive", "bgnbd_gg", "oracle")


@dataclass
class EvaluationReport:
    """Metrics per model on one evaluation as-of date, and where the report files are.

    Besides the metrics it keeps what the HTML report (:mod:`clv_models.evaluation.report`) draws
    from, so the charts use the very arrays the metrics were computed on: the labels (``actual``,
    ``purchased``), each model's :class:`~clv_models.models.Prediction`, the split, the data
    source and each model's global ``feature_importance`` (from its metadata, where it has one).
    """

    as_of_date: dt.date
    customers: int
    actual_total: float
    rows: list[dict] = field(default_factory=list)
    deciles: dict[str, pd.DataFrame] = field(default_factory=dict)
    paths: list[Path] = field(default_factory=list)
    horizon_days: int | None = None
    data_source: str = ""
    split: dict[str, Any] = field(default_factory=dict)
    actual: np.ndarray = field(default_factory=lambda: np.zeros(0))
    purchased: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    predictions: dict[str, Prediction] = field(default_factory=dict)
    feature_importance: dict[str, dict[str, float]] = field(default_factory=dict)
    backtest: dict[str, Any] | None = None
    #: Per model: what the calibration does to the validation total, and the total ratio and
    #: p_purchase calibration error at the evaluation date before and after it.
    calibration: list[dict[str, Any]] = field(default_factory=list)
    #: The champion choice (``models/champion.json``) with its evidence, when known.
    choice: dict[str, Any] | None = None
    #: Per model: validation loss per epoch or boosting round (training curves).
    training_curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    #: Notes on what the data could not show (e.g. no full year of history: no seasonality).
    warnings: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows).set_index("model")

    def metric(self, model: str, key: str) -> float:
        return float(self.table().loc[model, key])


def oracle_rows(cfg: Config, rows: pd.DataFrame) -> pd.DataFrame | None:
    """The generator's oracle for each (``customer_id``, ``as_of_date``) row of ``rows``.

    Returns ``expected_net_revenue`` and ``p_purchase`` aligned with ``rows`` (same order and
    length), read once for the dates ``rows`` holds; ``None`` when the data is not generated or
    the oracle misses a row.
    """
    path = cfg.resolved().truth_dir / "oracle.parquet"
    if not path.exists():
        return None
    dates = sorted(set(rows["as_of_date"]))
    with duckdb.connect() as con:
        oracle = con.execute(
            "select customer_id, cast(as_of_date as date) as as_of_date, expected_net_revenue, "
            "p_purchase from read_parquet(?) where horizon_days = ? "
            "and cast(as_of_date as date) in (select unnest(?::date[]))",
            [str(path), cfg.horizon_days, dates]).df()
    oracle["as_of_date"] = pd.to_datetime(oracle["as_of_date"]).dt.date
    joined = rows[["customer_id", "as_of_date"]].merge(
        oracle, on=["customer_id", "as_of_date"], how="left")
    if joined.empty or joined["expected_net_revenue"].isna().any():
        return None
    return joined[["expected_net_revenue", "p_purchase"]].reset_index(drop=True)


def data_source(cfg: Config) -> str:
    """One line saying where the evaluated data came from: a generated shop or imported files.

    A generated shop leaves its ground truth in ``truth/``; importing removes it.
    """
    c = cfg.resolved()
    params = c.truth_dir / "customer_params.parquet"
    if params.exists():
        with duckdb.connect() as con:
            n = con.execute("select count(*) from read_parquet(?)", [str(params)]).fetchone()[0]
        return (f"generated shop: {n:,} customers, raw files in {c.raw_dir} "
                f"(ground truth in {c.truth_dir})")
    return f"raw files in {c.raw_dir} (imported or supplied; no ground truth)"


#: History (days before the evaluation date) from which a seasonal pattern can be observed:
#: one year, plus the horizon, so the same calendar window was seen once with its outcome.
SEASONAL_HISTORY_DAYS = 365


def history_warnings(data: TrainingSet, horizon_days: int) -> list[str]:
    """What the history is too short to show: with less than a year of as-of dates plus one
    horizon before the evaluation date, no model has seen the calendar window the evaluation
    horizon covers, so a peak season in it is not anticipated."""
    dates = sorted(data.frame["as_of_date"].unique())
    if not dates:
        return []
    span = (data.split.evaluation_date - dates[0]).days
    if span >= SEASONAL_HISTORY_DAYS + horizon_days:
        return []
    return [f"seasonality not observable: the training as-of dates span {span} days before "
            f"the evaluation date, less than a year plus the {horizon_days}-day horizon, so no "
            "model saw the calendar window the horizon covers; a peak season in it is not "
            "anticipated and forecasts there may be systematically low or high"]


def training_curves(model: CLVModel) -> dict[str, list[float]]:
    """The model's validation loss per epoch or boosting round, from its metadata."""
    meta = getattr(model, "metadata", {}) or {}
    curves = {}
    if meta.get("val_loss_history"):
        curves["validation ZILN loss per epoch"] = [float(v) for v in meta["val_loss_history"]]
    for key, values in (meta.get("validation_history") or {}).items():
        curves[f"validation {key} per round"] = [float(v) for v in values]
    return curves


def split_summary(data: TrainingSet) -> dict[str, Any]:
    """The time-based split: as-of dates of each part and its row count."""
    s = data.split
    return {"fit_dates": [str(d) for d in s.fit_dates],
            "validation_date": str(s.validation_date),
            "evaluation_date": str(s.evaluation_date),
            "rows": {part: len(data.part(part)) for part in ("fit", "validation", "evaluation")}}


def evaluate(cfg: Config, data: TrainingSet, models: dict[str, CLVModel],
             champion: ChampionChoice | str | None = None) -> EvaluationReport:
    """Score every model on the evaluation rows and write the report files.

    ``champion`` (chosen on validation cutoffs, :mod:`clv_models.evaluation.selection`) is
    marked in its row (``"champion": true``); the evaluation rows take no part in the choice.
    With the whole :class:`~clv_models.evaluation.champion.ChampionChoice`, each model's
    calibration is applied to its forecasts (as scoring and serving do), and the report shows
    the total ratio and the ``p_purchase`` calibration error before and after it.

    Writes ``reports/evaluation.json`` (metrics, split, model versions) and
    ``reports/deciles.csv`` under the data directory.
    """
    rows = data.part("evaluation")
    y = rows[TARGET].to_numpy(dtype=float)
    purchased = rows["label_purchase_days"].to_numpy() > 0
    report = EvaluationReport(as_of_date=data.split.evaluation_date, customers=len(rows),
                              actual_total=float(y.sum()), horizon_days=cfg.horizon_days,
                              data_source=data_source(cfg), split=split_summary(data),
                              actual=y, purchased=purchased)
    choice = champion if isinstance(champion, ChampionChoice) else None
    chosen = choice.champion if choice is not None else champion
    calibration = calibrations(choice) if choice is not None else {}
    if choice is not None:
        report.choice = asdict(choice)
    report.warnings = history_warnings(data, cfg.horizon_days)
    for name, model in models.items():
        pred = raw = model.predict(rows[data.feature_names])
        if name in calibration:
            pred = calibration[name].apply(raw)
            report.calibration.append({
                "model": name, "clv_scale": calibration[name].clv_scale,
                "total_ratio_raw": metrics.total_ratio(y, raw.predicted_clv),
                "total_ratio": metrics.total_ratio(y, pred.predicted_clv),
                "p_purchase_ece_raw": metrics.calibration_error(purchased, raw.p_purchase),
                "p_purchase_ece": metrics.calibration_error(purchased, pred.p_purchase)})
        curves = training_curves(model)
        if curves:
            report.training_curves[name] = curves
        report.predictions[name] = pred
        importance = getattr(model, "metadata", {}).get("feature_importance")
        if importance:
            report.feature_importance[name] = {k: float(v) for k, v in importance.items()}
        report.rows.append({"model": name, "model_version": model.version,
                            "reference": name in REFERENCE_MODELS,
                            "champion": name == chosen,
                            **metrics.evaluate(y, pred.predicted_clv, pred.p_purchase,
                                               purchased, pred.quantiles)})
        report.deciles[name] = metrics.decile_table(y, pred.predicted_clv)
    oracle = oracle_rows(cfg, rows)
    if oracle is not None:
        o_pred, o_prob = (oracle[c].to_numpy() for c in ("expected_net_revenue", "p_purchase"))
        report.predictions["oracle"] = Prediction(predicted_clv=o_pred, p_purchase=o_prob)
        report.rows.append({"model": "oracle", "model_version": "ground-truth",
                            "reference": True, "champion": False,
                            **metrics.evaluate(y, o_pred, o_prob, purchased)})
        report.deciles["oracle"] = metrics.decile_table(y, o_pred)
    backtest = cfg.resolved().reports_dir / "backtest.json"  # clv backtest's latest result
    if backtest.exists():
        report.backtest = json.loads(backtest.read_text())
    report.paths = write_report(cfg, data, report)
    return report


def write_report(cfg: Config, data: TrainingSet, report: EvaluationReport) -> list[Path]:
    out = cfg.resolved().reports_dir
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "evaluation_date": str(report.as_of_date),
        "champion": next((r["model"] for r in report.rows if r.get("champion")), None),
        "horizon_days": cfg.horizon_days,
        "customers": report.customers, "actual_total": report.actual_total,
        "split": report.split or split_summary(data), "data_source": report.data_source,
        "rows": [{k: (None if isinstance(v, float) and np.isnan(v) else v)
                  for k, v in r.items()} for r in report.rows],
        "calibration": [{k: (None if isinstance(v, float) and np.isnan(v) else v)
                         for k, v in r.items()} for r in report.calibration],
        "warnings": report.warnings,
    }
    json_path = out / "evaluation.json"
    atomic.write_text(json_path, json.dumps(payload, indent=2))  # never a torn file
    csv_path = out / "deciles.csv"
    atomic.write_text(csv_path, pd.concat([d.assign(model=m) for m, d in report.deciles.items()])
                      .to_csv(index=False))
    return [json_path, csv_path]
