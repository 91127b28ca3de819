"""The HTML evaluation report, from small hand-made arrays (no pipeline run)."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest

from clv_models.core import metrics
from clv_models.evaluation.evaluation import EvaluationReport
from clv_models.evaluation.report import (
    METRIC_COLUMNS,
    PNG_MAGIC,
    format_metric,
    write_html_report,
)
from clv_models.models import Prediction, XGBoostCLV

NOW = dt.datetime(2025, 7, 2, 12, 0, tzinfo=dt.timezone.utc)


def make_report(predictions: dict[str, Prediction],
                importance: dict[str, dict[str, float]] | None = None,
                data_source: str = "generated shop: 200 customers") -> EvaluationReport:
    """An evaluation of ``predictions`` on 200 made-up customers, as evaluation.evaluate does."""
    rng = np.random.default_rng(3)
    n = 200
    purchased = rng.random(n) < 0.4
    actual = np.where(purchased, rng.gamma(2.0, 50.0, n), 0.0)
    actual[:5] = 0.0  # bought, then refunded everything: purchased but no net revenue
    report = EvaluationReport(
        as_of_date=dt.date(2025, 7, 1), customers=n, actual_total=float(actual.sum()),
        horizon_days=180, data_source=data_source,
        split={"fit_dates": ["2024-01-01", "2024-06-01"], "validation_date": "2024-07-01",
               "evaluation_date": "2025-07-01",
               "rows": {"fit": 1234, "validation": 567, "evaluation": n}},
        actual=actual, purchased=purchased, feature_importance=importance or {})
    for name, pred in predictions.items():
        report.predictions[name] = pred
        report.rows.append({"model": name, "model_version": f"v-{name}",
                            "reference": name in ("naive", "oracle"),
                            **metrics.evaluate(actual, pred.predicted_clv, pred.p_purchase,
                                               purchased)})
        report.deciles[name] = metrics.decile_table(actual, pred.predicted_clv)
    return report


def predictions(names: list[str], with_p: bool = True,
                quantiles: tuple[str, ...] = ()) -> dict[str, Prediction]:
    rng = np.random.default_rng(5)
    out = {}
    for name in names:
        clv = rng.gamma(1.0, 40.0, 200)
        p = 1 - np.exp(-clv / 40) if with_p else None
        q = (0.0 * clv, 0.5 * clv, 3.0 * clv) if name in quantiles else (None, None, None)
        out[name] = Prediction(predicted_clv=clv, p_purchase=p, clv_p10=q[0], clv_p50=q[1],
                               clv_p90=q[2])
    return out


def referenced_files(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', page)


def test_report_page_has_every_model_metric_and_valid_png(tmp_path):
    names = ["naive", "xgboost", "deep_ziln", "oracle"]
    importance = {"xgboost": {"frequency": 0.8, "recency_days": 0.5, "net_revenue": 0.1}}
    report = make_report(predictions(names, quantiles=("deep_ziln",)), importance)
    report.training_curves = {"deep_ziln": {"validation ZILN loss per epoch": [3.0, 2.5, 2.6]}}
    attachment = tmp_path / "evaluation.json"
    attachment.write_text("{}")
    out = write_html_report(report, tmp_path / "reports", attachments=[attachment],
                            run_id="run1", now=NOW)

    assert out.index == tmp_path / "reports" / "runs" / "run1" / "index.html"
    assert out.latest == tmp_path / "reports" / "latest" / "index.html"
    page = out.index.read_text(encoding="utf-8")
    assert out.latest.read_text(encoding="utf-8") == page
    for name in names:
        assert name in page and f"v-{name}" in page
    for label in METRIC_COLUMNS.values():
        assert f"<th>{label}</th>" in page
    for row in report.rows:
        for key in METRIC_COLUMNS:
            assert f"<td>{format_metric(row[key])}</td>" in page
    for text in ("2024-07-01", "1,234", "567", "generated shop: 200 customers", "180 days"):
        assert text in page
    # Every chart drawn, every reference relative and present, every PNG a real PNG.
    pngs = [f for f in referenced_files(page) if f.endswith(".png")]
    assert sorted(pngs) == sorted(f"{k}.png" for k in
                                  ("gain", "lift", "deciles", "calibration", "coverage", "roc",
                                   "training", "feature_importance"))
    assert "<dt>norm. Gini</dt>" in page  # the glossary
    for folder in (out.run_dir, out.latest.parent):
        for ref in referenced_files(page):
            assert "/" not in ref and ":" not in ref  # next to the page, no network
            assert (folder / ref).is_file()
        for png in pngs:
            assert (folder / png).read_bytes()[:8] == PNG_MAGIC
    assert "evaluation.json" in referenced_files(page)
    assert sorted(p.name for p in out.figures) == sorted(pngs)
    assert "Without a global feature importance: naive, deep_ziln, oracle." in page


def test_text_is_escaped(tmp_path):
    evil = '<script>alert("x")</script>'
    report = make_report(predictions([evil]), {evil: {"a & <b>": 1.0}},
                         data_source="raw files in /tmp/<shop> & co")
    page = write_html_report(report, tmp_path, run_id="r", now=NOW).index.read_text()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "raw files in /tmp/&lt;shop&gt; &amp; co" in page


def test_charts_without_their_inputs_are_left_out_with_a_note(tmp_path):
    report = make_report(predictions(["naive"], with_p=False))
    out = write_html_report(report, tmp_path, run_id="r", now=NOW)
    page = out.index.read_text()
    assert sorted(f for f in referenced_files(page)) == ["deciles.png", "gain.png", "lift.png"]
    assert "No calibration plot" in page and "No ROC curve" in page
    assert "No coverage plot" in page and "No training curves" in page
    assert "No feature importance" in page
    assert not (out.run_dir / "roc.png").exists()


def test_latest_is_the_newest_run_and_runs_are_kept(tmp_path):
    first = write_html_report(make_report(predictions(["naive"])), tmp_path, run_id="same",
                              now=NOW)
    second = write_html_report(make_report(predictions(["xgboost"])), tmp_path, run_id="same",
                               now=NOW)
    assert first.run_dir.name == "same" and second.run_dir.name == "same-2"
    assert "<td>v-naive</td>" in first.index.read_text()
    assert second.latest.read_text() == second.index.read_text()
    assert "<td>v-naive</td>" not in second.latest.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "runs"]  # no leftovers


def test_xgboost_stores_mean_abs_shap_importance_at_fit_time(tmp_path):
    from clv_models.core.config import XGBoostConfig
    from clv_models.models import load_model

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(1_200, 4)), columns=["strong", "weak", "noise", "zero"])
    X["zero"] = 0.0
    y = np.where(rng.random(1_200) < 0.5, np.exp(1.5 * X["strong"] + 0.3 * X["weak"]), 0.0)
    model = XGBoostCLV(XGBoostConfig(n_estimators=40, n_jobs=1)).fit(X[:800], y[:800],
                                                                      X[800:], y[800:])
    importance = model.metadata["feature_importance"]
    assert list(importance)[0] == "strong"
    assert set(importance) == set(X.columns)
    assert importance["zero"] == 0.0
    assert importance["strong"] > importance["weak"] > 0
    model.save(tmp_path / "xgb")
    assert load_model(tmp_path / "xgb").metadata["feature_importance"] == pytest.approx(importance)


def test_backtest_summary_and_the_champion_are_on_the_page(tmp_path):
    report = make_report(predictions(["naive", "bgnbd_gg"]))
    report.rows[1]["champion"] = True
    report.rows[1]["reference"] = True
    assert "No backtest yet" in write_html_report(report, tmp_path, run_id="a",
                                                  now=NOW).index.read_text()
    report.backtest = {
        "reference": "bgnbd_gg",
        "cutoffs": [{"cutoff": "2025-01-01", "champion": "bgnbd_gg"}],
        "summary": [{"model": "bgnbd_gg", "rmse_mean": 10.0, "rmse_std": 1.0},
                    {"model": "naive", "rmse_mean": 12.5, "rmse_std": 0.5, "rmse_diff": 2.5,
                     "rmse_diff_low": 1.25, "rmse_diff_high": 3.75}]}
    page = write_html_report(report, tmp_path, run_id="b", now=NOW).index.read_text()
    assert "bgnbd_gg * (champion)" in page
    assert "+2.500 [+1.250, +3.750]" in page and "2025-01-01 (bgnbd_gg)" in page


def test_champion_evidence_calibration_and_history_warning_are_on_the_page(tmp_path):
    report = make_report(predictions(["naive", "bgnbd_gg"]))
    report.choice = {
        "champion": "bgnbd_gg", "basis": "3 validation cutoffs", "rule": "the rule",
        "weights": {"naive": 0.0, "bgnbd_gg": 0.93},
        "validation_cutoffs": ["2024-05-01", "2024-06-01", "2024-07-01"],
        "cutoff_evidence": [
            {"model": "bgnbd_gg", "rmse_mean": 10.0, "normalized_gini_mean": 0.6,
             "total_ratio_mean": 1.1, "admissible": True},
            {"model": "naive", "rmse_mean": 12.0, "normalized_gini_mean": 0.4,
             "total_ratio_mean": 0.8, "rmse_diff": 2.0, "rmse_diff_low": 1.0,
             "rmse_diff_high": 3.0, "admissible": False}]}
    report.calibration = [{"model": "bgnbd_gg", "clv_scale": 0.8125, "total_ratio_raw": 1.2,
                           "total_ratio": 0.98, "p_purchase_ece_raw": 0.07,
                           "p_purchase_ece": 0.02}]
    report.warnings = ["seasonality not observable: a test"]
    page = write_html_report(report, tmp_path, run_id="c", now=NOW).index.read_text()
    assert "<h2>Champion: bgnbd_gg</h2>" in page and "Chosen on 3 validation cutoffs" in page
    assert "+2.000 [+1.000, +3.000]" in page and "bgnbd_gg 0.93" in page
    assert "2024-05-01, 2024-06-01, 2024-07-01" in page
    assert "<td>0.812</td>" in page and "<td>0.980</td>" in page
    assert '<p class="warning">seasonality not observable: a test</p>' in page


def test_a_history_shorter_than_a_year_and_a_horizon_is_flagged():
    from clv_models.evaluation.evaluation import history_warnings
    from clv_models.models.training import TrainingSet, make_split

    def data(months: int) -> TrainingSet:
        dates = [dt.date(2024 + m // 12, m % 12 + 1, 1) for m in range(months)]
        frame = pd.DataFrame({"as_of_date": dates})
        return TrainingSet(frame=frame, feature_names=[], split=make_split(dates, 90))

    assert "seasonality not observable" in history_warnings(data(12), 90)[0]
    assert history_warnings(data(16), 90) == []  # 15 months before the evaluation date
