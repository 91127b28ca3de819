"""The whole chain on a small generated shop, with the real dbt, Feast, XGBoost and torch."""

import dataclasses
import datetime as dt
import json
import subprocess
import sys

import duckdb
import numpy as np
import pandas as pd
import pytest

from clv_models.evaluation import champion
from clv_models.features import store as features
from clv_models.models import load_model, training
from clv_models.scoring import score as scoring

pytestmark = pytest.mark.e2e  # dbt builds, Feast, servers or the whole chain


def scores(cfg, sql="select * from clv_scores"):
    with duckdb.connect(str(cfg.warehouse_path), read_only=True) as con:
        return con.execute(sql).df()


def test_clv_scores_has_one_row_per_customer_and_model(pipeline_run):
    cfg = pipeline_run.cfg
    df = scores(cfg)
    latest = pipeline_run.scores.as_of_date
    with duckdb.connect() as con:
        expected = con.execute("select count(*) from read_parquet(?) where as_of_date = ?",
                               [str(cfg.features_dir / "customer_rfm.parquet"), latest]).fetchone()[0]
    assert expected > 3_000
    assert set(df["model_name"]) == set(champion.CANDIDATES)
    chosen = champion.load(cfg).champion
    flagged = df.groupby("model_name")["is_champion"].agg(["all", "any"])
    assert flagged.loc[chosen, "all"] and flagged["any"].sum() == 1
    for _, part in df.groupby("model_name"):
        assert len(part) == expected
        assert part["customer_id"].is_unique
        assert part["predicted_clv"].notna().all() and (part["predicted_clv"] >= 0).all()
        assert part["p_purchase"].between(0, 1).all()
        assert sorted(part["clv_decile"].unique()) == list(range(1, 11))
        # decile 1 holds the highest predictions
        by_decile = part.groupby("clv_decile")["predicted_clv"].mean()
        assert by_decile.is_monotonic_decreasing
    assert (df["as_of_date"] == pd.Timestamp(latest)).all()
    assert (df["horizon_days"] == cfg.horizon_days).all()
    assert df["run_id"].nunique() == 1
    for model in ("deep_ziln", "bgnbd_gg"):
        q = df[df["model_name"] == model]
        assert q["clv_p50"].notna().all()
        assert (q["clv_p10"] <= q["clv_p50"]).all() and (q["clv_p50"] <= q["clv_p90"]).all()
    for model in ("xgboost", "deep_ziln"):
        drivers = json.loads(df[df["model_name"] == model]["top_drivers"].iloc[0])
        assert len(drivers) == 3 and {"feature", "contribution"} <= set(drivers[0])
    assert df["segment"].isin(scoring.SEGMENTS).all()
    by_model = scores(cfg, "select count(*) n from clv_scores_latest_by_model")
    assert by_model["n"][0] == len(df)
    latest_view = scores(cfg, "select model_name, count(*) n from clv_scores_latest group by 1")
    assert latest_view.to_dict("records") == [{"model_name": chosen, "n": expected}]


def test_both_models_beat_the_naive_baseline(pipeline_run):
    table = pipeline_run.report.table()
    naive = table.loc["naive", "normalized_gini"]
    assert table.loc["xgboost", "normalized_gini"] > naive
    assert table.loc["deep_ziln", "normalized_gini"] > naive
    # ... and none beats the oracle (the best possible prediction on generated data).
    assert table.loc["oracle", "normalized_gini"] > table.loc["deep_ziln", "normalized_gini"]
    for model in ("xgboost", "deep_ziln"):
        assert table.loc[model, "mae"] < table.loc["naive", "mae"]
        assert 0.5 < table.loc[model, "total_ratio"] < 1.5
    report = json.loads((pipeline_run.cfg.reports_dir / "evaluation.json").read_text())
    assert {r["model"] for r in report["rows"]} == {"naive", "bgnbd_gg", "xgboost", "deep_ziln",
                                                   "blend", "oracle"}
    # the champion, chosen on the validation date, is marked in its row
    assert [r["model"] for r in report["rows"] if r["champion"]] == [report["champion"]]
    latest = pipeline_run.cfg.reports_dir / "latest"
    page = (latest / "index.html").read_text()
    assert pipeline_run.html.index.read_text() == page
    assert all(f"<td>{r['model_version']}</td>" in page for r in report["rows"])
    for chart in ("gain", "deciles", "calibration", "roc", "feature_importance"):  # xgboost's
        assert (latest / f"{chart}.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluation_is_on_a_later_date_than_training(pipeline_run):
    split = pipeline_run.training_set.split
    h = pipeline_run.cfg.horizon_days
    assert max(split.fit_dates) < split.validation_date < split.evaluation_date
    assert split.validation_date + dt.timedelta(days=h) <= split.evaluation_date


def test_online_read_matches_the_latest_offline_row(pipeline_run):
    cfg = pipeline_run.cfg
    latest = pipeline_run.scores.as_of_date
    offline = pd.read_parquet(cfg.features_dir / "customer_rfm.parquet")
    offline = offline[offline["as_of_date"] == latest].sort_values("customer_id")
    customer = offline.iloc[len(offline) // 2]
    online = features.online_features(cfg, [customer["customer_id"], "nobody"])
    row = online.iloc[0]
    for name in ("order_count", "frequency", "days_since_last_order"):
        assert row[name] == customer[name]
    assert row["net_revenue"] == pytest.approx(customer["net_revenue"])
    assert pd.isna(online.iloc[1]["order_count"])  # unknown customer: no features


def test_saved_models_reload_without_pickle_and_predict_the_same(pipeline_run):
    cfg = pipeline_run.cfg
    data = pipeline_run.training_set
    rows = data.part("evaluation").head(200)
    for name, model in pipeline_run.models.items():
        meta = json.loads((cfg.models_dir / name / "metadata.json").read_text())
        assert (meta["feature_names"] == data.columns(meta["feature_service"])
                or name in ("naive", "bgnbd_gg", "blend"))
        assert set(meta["feature_names"]) <= set(data.columns(meta["feature_service"]))
        assert meta["training_fingerprint"] == data.fingerprint()
        again = load_model(cfg.models_dir / name)
        assert again.version == model.version
        np.testing.assert_allclose(again.predict(rows).predicted_clv,
                                   model.predict(rows).predicted_clv, rtol=1e-6)


def test_rescoring_replaces_instead_of_duplicating(pipeline_run):
    cfg = pipeline_run.cfg
    before = scores(cfg)
    models, choice = scoring.scored_models(cfg)
    result = scoring.score(cfg, models, champion=choice.champion,
                           calibrations=champion.calibrations(choice))
    after = scores(cfg)
    assert len(after) == len(before)
    assert set(after["run_id"]) == {result.run_id}
    merged = before.merge(after, on=["customer_id", "model_name"])
    np.testing.assert_allclose(merged["predicted_clv_x"], merged["predicted_clv_y"], rtol=1e-9)


def test_cli_help_and_a_clear_error(pipeline_run, tmp_path):
    clv = [sys.executable, "-m", "clv_models.cli"]
    out = subprocess.run([*clv, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("run", "generate", "build", "features", "train", "evaluate", "score"):
        assert command in out
    proc = subprocess.run([*clv, "--data-dir", str(tmp_path / "empty"), "score"],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "clv train" in proc.stderr and "Traceback" not in proc.stderr


def test_a_horizon_other_than_the_built_one_is_refused(pipeline_run):
    other = dataclasses.replace(pipeline_run.cfg, horizon_days=90)
    with pytest.raises(ValueError, match="labels were built for a horizon of 180 days"):
        training.load_training_set(other)
    with pytest.raises(ValueError, match="trained for a horizon of 180 days"):
        training.load_models(other)
