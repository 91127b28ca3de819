"""`clv bench oracle` and `clv bench training` on a tiny shop: they run, their JSON has the
the contract's metric keys, the as-of join floor returns Feast's values, and ratios come from measured times."""

import datetime as dt
import json

import numpy as np
import pytest

from clv_models.bench.models import (
    CEILING,
    ORACLE_GINI_TARGET,
    asof_join_features,
    bench_oracle,
    bench_training,
    compare_features,
    gap_table,
    oracle_result,
)
from clv_models.core.metrics import METRIC_KEYS
from clv_models.features import store as features
from tests.conftest import small_config

pytestmark = pytest.mark.e2e  # dbt builds, Feast, servers or the whole chain


@pytest.fixture(scope="module")
def oracle_run(tmp_path_factory):
    """The oracle benchmark (the whole chain) on a 300-customer shop, run once."""
    cfg = small_config(tmp_path_factory.mktemp("bench_models") / "data", customers=300,
                       **{"deep.epochs": 2, "xgboost.n_estimators": 20})
    return cfg, bench_oracle(cfg)


def _rows(result) -> dict:
    return {r.get("measure") or r.get("ratio") or r.get("model") or r.get("check"): r
            for r in result.rows}


def test_bench_oracle_rows_are_models_with_every_metric(oracle_run):
    _, result = oracle_run
    payload = json.loads(json.dumps(result.as_json()))
    assert payload["benchmark"] == "oracle" and "cores" in payload["device"]
    rows = _rows(result)
    for name in ("naive", "bgnbd_gg", "xgboost", "deep_ziln", "oracle"):
        assert set(METRIC_KEYS) <= set(rows[name]), name
        assert rows[name]["reference"] is (name in ("naive", "bgnbd_gg", "oracle"))
    oracle = rows["oracle"]
    assert rows["oracle"]["gini_over_oracle"] == 1.0
    for name in ("xgboost", "deep_ziln"):
        assert rows[name]["gini_over_oracle"] == round(
            rows[name]["normalized_gini"] / oracle["normalized_gini"], 4)
        assert rows[name]["mae_over_oracle"] == round(rows[name]["mae"] / oracle["mae"], 4)
    # the feature ceiling: XGBoost fitted to the oracle's values, a reference row with the
    # ratios of the others and no AUC (its target has no zeros)
    ceiling = rows[CEILING]
    assert ceiling["reference"] is True and ceiling["auc"] is None
    assert ceiling["gini_over_oracle"] == round(
        ceiling["normalized_gini"] / oracle["normalized_gini"], 4)
    # the gap by order history: disjoint groups of the evaluated customers, every model's Gini
    groups = [r for r in result.rows if "gap_by_history" in r]
    assert groups and sum(g["customers"] for g in groups) <= oracle["customers"]
    assert all({"oracle", "deep_ziln", "xgboost", CEILING} <= set(g["normalized_gini"])
               for g in groups)
    assert gap_table(result).row_count == len(groups)
    check = rows["deep_ziln_target"]
    assert check["feature_ceiling_gini_over_oracle"] == ceiling["gini_over_oracle"]
    deep, xgb = rows["deep_ziln"], rows["xgboost"]
    assert check["beats_xgboost"] is (deep["normalized_gini"] > xgb["normalized_gini"])
    assert check["met"] is (deep["gini_over_oracle"] >= ORACLE_GINI_TARGET
                            and check["beats_xgboost"])


def test_oracle_target_check_on_given_metrics():
    def row(model, gini, mae, reference=False):
        return {"model": model, "reference": reference, "normalized_gini": gini, "mae": mae,
                **{k: 0.5 for k in METRIC_KEYS if k not in ("normalized_gini", "mae")}}

    base = [row("oracle", 0.9, 50.0, True), row("xgboost", 0.86, 60.0)]
    met = _rows(oracle_result([*base, row("deep_ziln", 0.88, 55.0)], 100, dt.date(2025, 1, 1)))
    assert met["deep_ziln"]["gini_over_oracle"] == round(0.88 / 0.9, 4)
    assert met["deep_ziln"]["mae_over_oracle"] == 1.1
    assert met["deep_ziln_target"]["met"] is True
    # above 0.97 of the oracle but not above xgboost: not met
    lost = _rows(oracle_result([row("oracle", 0.9, 50.0, True), row("xgboost", 0.89, 60.0),
                                row("deep_ziln", 0.88, 55.0)], 100, dt.date(2025, 1, 1)))
    assert lost["deep_ziln_target"]["met"] is False
    with pytest.raises(ValueError, match="oracle"):
        oracle_result(base[1:], 100, dt.date(2025, 1, 1))
    # The champion's targets: Gini over the feature ceiling's, decile MAPE and total ratio.
    ceiling = row(CEILING, 0.86, 58.0, True)
    good = {**row("blend", 0.858, 56.0), "champion": True, "decile_mape": 0.12,
            "total_ratio": 1.01}
    check = _rows(oracle_result([*base, ceiling, good], 100, dt.date(2025, 1, 1)))
    assert check["champion_target"]["champion"] == "blend"
    assert check["champion_target"]["met"] is True
    assert check["champion_target"]["gini_over_ceiling"] == round(0.858 / 0.86, 4)
    short = {**good, "total_ratio": 0.92, "normalized_gini": 0.80}
    check = _rows(oracle_result([*base, ceiling, short], 100, dt.date(2025, 1, 1)))
    assert check["champion_target"]["met"] is False
    assert check["champion_target"]["targets_missed"] == ["gini_over_ceiling", "total_ratio"]
    unmarked = _rows(oracle_result([*base, ceiling], 100, dt.date(2025, 1, 1)))
    assert unmarked["champion_target"]["met"] is None


def test_bench_training_measures_and_ratios(oracle_run):
    cfg, _ = oracle_run
    result = bench_training(cfg, entity_cap=1_500, deep_rows=2_000, deep_epochs=1,
                            batch_sizes=(512,), device="cpu", score_customers=120,
                            echo=lambda _: None)
    payload = json.loads(json.dumps(result.as_json(), default=str))
    assert payload["benchmark"] == "training"
    rows = _rows(result)
    entities = rows["entity_rows"]
    assert 0 < entities["value"] <= 1_500 and entities["as_of_dates"] > 2
    assert entities["label_rows_in_shop"] > entities["value"]  # whole customers were cut
    feast, floor = rows["feast_historical_features_seconds"], rows["asof_join_seconds"]
    assert floor["same_values_as_feast"] is True and floor["mismatched_columns"] == []
    ratio = rows["feast_over_asof_join"]
    # the seconds are reported rounded to 0.01 s: allow exactly the error that rounding can make
    f, g = feast["value"], floor["value"]
    assert (f - 0.005) / (g + 0.005) - 0.01 <= ratio["value"] <= (f + 0.005) / (g - 0.005) + 0.01
    assert ratio["met"] is (ratio["value"] <= 3)
    deep = rows["deep_train_samples_per_second"]
    assert deep["device"].startswith("cpu") and deep["rows"] == 2_000 and deep["epochs"] == 1
    fs = deep["fit_seconds"]  # reported rounded: allow the rounding error of 0.005 s
    assert 2_000 / (fs + 0.005) * 0.99 <= deep["value"] <= 2_000 / max(fs - 0.005, 1e-9) * 1.01
    cuda = rows["deep_samples_per_second_cuda"]
    assert cuda["value"] is None and cuda["met"] is None and "note" in cuda
    assert rows["models"]["value"] == "saved"  # the oracle run's models
    score = rows["score_seconds"]
    assert score["customers"] == 120 and score["rows_written"] == 240
    assert set(score["stage_seconds"]) == {"features", "score:xgboost", "score:deep_ziln",
                                           "write"}
    assert rows["score_customers_per_second"]["value"] == pytest.approx(
        120 / score["value"], rel=0.05)


def test_asof_join_floor_equals_feast_between_and_beyond_as_of_dates(oracle_run):
    """Entity timestamps between as-of dates take the previous row; past the TTL, nothing."""
    cfg, _ = oracle_run
    labels = features.label_frame(cfg)
    sample = labels.sample(400, random_state=1).reset_index(drop=True)
    # 10 days after an as-of date; every 4th row more than the TTL (400 days) after the last one
    beyond = dt.date(2027, 6, 1)
    sample["as_of_date"] = [beyond if i % 4 == 0 else d + dt.timedelta(days=10)
                            for i, d in enumerate(sample["as_of_date"])]
    store = features.feature_store(cfg)
    expected = features.historical_features(cfg, sample, store)
    actual = asof_join_features(sample, store)
    names = features.feature_names(store, features.SEQUENCE_SERVICE)
    assert compare_features(expected, actual, names) == []
    late = expected["as_of_date"] == beyond
    assert late.any() and expected.loc[late, "frequency"].isna().all()  # beyond the TTL
    assert expected.loc[~late, "frequency"].notna().any()

    # The check fails when a value differs.
    changed = actual.copy()
    row = int(np.flatnonzero(changed["net_revenue"].notna())[0])
    changed.loc[row, "net_revenue"] += 1.0
    seq = int(np.flatnonzero(changed["weekly_views_52w"].notna())[0])
    changed.at[seq, "weekly_views_52w"] = np.asarray(changed.at[seq, "weekly_views_52w"]) + 1
    assert compare_features(expected, changed, names) == [
        "net_revenue", "weekly_views_52w"]
