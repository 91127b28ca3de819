"""Evaluation on the held-out as-of date: every model beside the baselines on the same rows.

On a generated shop the oracle (the expected value under the true latent parameters, see
:mod:`clv_models.generate`) is evaluated too, as the reference for the best achievable scores.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from clv_models import metrics
from clv_models.config import Config
from clv_models.models import CLVModel
from clv_models.training import TARGET, TrainingSet

REFERENCE_MODELS = ("naive", "oracle")


@dataclass
class EvaluationReport:
    """Metrics per model on one evaluation as-of date, and where the report files are."""

    as_of_date: dt.date
    customers: int
    actual_total: float
    rows: list[dict] = field(default_factory=list)
    deciles: dict[str, pd.DataFrame] = field(default_factory=dict)
    paths: list[Path] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows).set_index("model")

    def metric(self, model: str, key: str) -> float:
        return float(self.table().loc[model, key])


def oracle_frame(cfg: Config, as_of: dt.date) -> pd.DataFrame | None:
    """The generator's oracle at ``as_of`` (None when the data is not generated)."""
    path = cfg.resolved().truth_dir / "oracle.parquet"
    if not path.exists():
        return None
    with duckdb.connect() as con:
        df = con.execute(
            "select customer_id, expected_net_revenue, p_purchase from read_parquet(?) "
            "where as_of_date = ? and horizon_days = ?",
            [str(path), as_of, cfg.horizon_days]).df()
    return df if not df.empty else None


def evaluate(cfg: Config, data: TrainingSet, models: dict[str, CLVModel]) -> EvaluationReport:
    """Score every model on the evaluation rows and write the report files.

    Writes ``reports/evaluation.json`` (metrics, split, model versions) and
    ``reports/deciles.csv`` under the data directory.
    """
    rows = data.part("evaluation")
    y = rows[TARGET].to_numpy(dtype=float)
    purchased = rows["label_purchase_days"].to_numpy() > 0
    report = EvaluationReport(as_of_date=data.split.evaluation_date, customers=len(rows),
                              actual_total=float(y.sum()))
    for name, model in models.items():
        pred = model.predict(rows[data.feature_names])
        report.rows.append({"model": name, "model_version": model.version,
                            "reference": name in REFERENCE_MODELS,
                            **metrics.evaluate(y, pred.predicted_clv, pred.p_purchase,
                                               purchased)})
        report.deciles[name] = metrics.decile_table(y, pred.predicted_clv)
    oracle = oracle_frame(cfg, data.split.evaluation_date)
    if oracle is not None:
        joined = rows[["customer_id"]].merge(oracle, on="customer_id", how="left")
        if joined["expected_net_revenue"].notna().all():
            o_pred = joined["expected_net_revenue"].to_numpy()
            report.rows.append({"model": "oracle", "model_version": "ground-truth",
                                "reference": True,
                                **metrics.evaluate(y, o_pred, joined["p_purchase"].to_numpy(),
                                                   purchased)})
            report.deciles["oracle"] = metrics.decile_table(y, o_pred)
    report.paths = write_report(cfg, data, report)
    return report


def write_report(cfg: Config, data: TrainingSet, report: EvaluationReport) -> list[Path]:
    out = cfg.resolved().reports_dir
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "evaluation_date": str(report.as_of_date), "horizon_days": cfg.horizon_days,
        "customers": report.customers, "actual_total": report.actual_total,
        "split": {"fit_dates": [str(d) for d in data.split.fit_dates],
                  "validation_date": str(data.split.validation_date)},
        "rows": [{k: (None if isinstance(v, float) and np.isnan(v) else v)
                  for k, v in r.items()} for r in report.rows],
    }
    json_path = out / "evaluation.json"
    json_path.write_text(json.dumps(payload, indent=2))
    csv_path = out / "deciles.csv"
    pd.concat([d.assign(model=m) for m, d in report.deciles.items()]).to_csv(csv_path,
                                                                              index=False)
    return [json_path, csv_path]
