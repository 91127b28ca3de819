"""``clv bench cdnow`` on a small CDNOW-format file: the folds, the file lookup, the verdicts and
one end-to-end run through the CLI (real import, dbt, Feast, XGBoost and torch; tiny models)."""

import datetime as dt
import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from clv_models.bench import cdnow as bench_cdnow
from clv_models.bench.cdnow import (
    PUBLISHED_REFERENCE_ROWS,
    beats,
    cdnow_master_path,
    customer_folds,
    fold_parts,
    targets,
)
from clv_models.cli import main
from clv_models.core import metrics
from clv_models.core.config import load_config
from clv_models.core.metrics import METRIC_KEYS
from clv_models.models import Prediction, XGBoostCLV

FIXTURE = Path(__file__).parent / "fixtures" / "cdnow_sample.txt"


def cdnow_file(path: Path, customers: int = 240, seed: int = 3) -> Path:
    """The fixture's lines plus seeded synthetic customers in CDNOW's format and period.

    Everyone's first purchase is in Q1 1997, as in CDNOW; repeat purchases follow a Poisson
    process until a geometric dropout; the last record is on 1998-06-30, as in CDNOW.
    """
    rng = np.random.default_rng(seed)
    lines = FIXTURE.read_text().splitlines()
    start, end = dt.date(1997, 1, 1), dt.date(1998, 6, 30)
    for i in range(customers):
        day = start + dt.timedelta(days=int(rng.integers(0, 90)))
        rate, spend = rng.gamma(0.6, 1 / 40), rng.lognormal(3.2, 0.6)
        while day <= end:
            cds = int(rng.integers(1, 4))
            lines.append(f" {i + 10:05d} {day:%Y%m%d} {cds} {spend * cds / 2:.2f}")
            if rng.random() < 0.15:
                break
            day += dt.timedelta(days=1 + int(rng.exponential(1 / max(rate, 1e-3))))
    lines.append(f" 00001 {end:%Y%m%d} 1 9.99")  # the data end on the holdout's last day
    path.write_text("\n".join(lines) + "\n")
    return path


# -- folds ---------------------------------------------------------------------------------------
def test_folds_are_customer_disjoint_balanced_and_seeded():
    ids = np.array([f"C{i % 53:03d}" for i in range(400)])  # customers on several rows
    folds = customer_folds(ids, 5, seed=7)
    for c in np.unique(ids):
        assert len(set(folds[ids == c])) == 1  # one fold per customer
    sizes = np.bincount([folds[ids == c][0] for c in np.unique(ids)], minlength=5)
    assert sizes.max() - sizes.min() <= 1 and sizes.sum() == 53
    assert (customer_folds(ids[::-1], 5, seed=7) == folds[::-1]).all()  # order does not matter
    assert not (customer_folds(ids, 5, seed=8) == folds).all()
    with pytest.raises(ValueError, match="at least 2 folds"):
        customer_folds(ids, 1)


def test_fold_parts_never_train_on_the_predicted_customers():
    ids = np.array([f"C{i % 97:03d}" for i in range(500)])
    folds = customer_folds(ids, 5, seed=1)
    tested = np.zeros(len(ids), dtype=int)
    for fold in range(5):
        fit, val, test = fold_parts(ids, folds, fold, validation_share=0.2, seed=1)
        assert (fit.astype(int) + val + test == 1).all()  # a partition of the rows
        fit_ids, val_ids, test_ids = set(ids[fit]), set(ids[val]), set(ids[test])
        assert not fit_ids & test_ids and not val_ids & test_ids and not fit_ids & val_ids
        assert 0.1 < len(val_ids) / (len(fit_ids) + len(val_ids)) < 0.3
        tested += test
    assert (tested == 1).all()  # every row predicted exactly once


class RecordingXGBoost(XGBoostCLV):
    """The real XGBoost baseline, recording the rows it is fitted, validated and asked on."""

    calls: list[dict] = []

    def fit(self, X, y, X_val=None, y_val=None):
        RecordingXGBoost.calls.append({"fit": X.index.copy(), "val": X_val.index.copy()})
        return super().fit(X, y, X_val, y_val)

    def predict(self, X, explain=False):
        # the first call predicts the fold, the next ones its validation part (the champion's)
        RecordingXGBoost.calls[-1].setdefault("test", X.index.copy())
        RecordingXGBoost.calls[-1].setdefault("predicted", []).append(X.index.copy())
        return super().predict(X, explain)


def test_cross_fit_trains_on_every_date_and_never_on_a_predicted_customer(monkeypatch):
    rng = np.random.default_rng(0)
    dates = [dt.date(1997, m, 1) for m in (2, 6, 10)]
    ids = [f"C{i:03d}" for i in range(60)]
    frame = pd.DataFrame([{"customer_id": c, "as_of_date": d, "frequency": int(rng.integers(4)),
                           "label_net_revenue": float(rng.gamma(0.5, 40) * (rng.random() < .4))}
                          for d in dates for c in ids])
    frame = frame.sort_values(["as_of_date", "customer_id"]).reset_index(drop=True)
    cfg = load_config(None, {"xgboost.n_estimators": 5, "xgboost.n_jobs": 1})
    RecordingXGBoost.calls = []
    monkeypatch.setattr(bench_cdnow.training, "build_models", lambda c: {
        "xgboost": RecordingXGBoost(c.xgboost, seed=c.seed)})
    services = {"clv_v1": ["frequency"]}
    validation: list[bench_cdnow.FoldForecasts] = []
    preds = bench_cdnow.cross_fit(cfg, frame, services, folds=3, names=("xgboost",),
                                  as_of=dates[-1], echo=lambda line: None,
                                  validation=validation)
    assert len(preds["xgboost"].predicted_clv) == len(ids)  # one per customer at the date
    assert not np.isnan(preds["xgboost"].predicted_clv).any()
    predicted = set()
    for call in RecordingXGBoost.calls:
        fit, val, test = (frame.loc[call[k]] for k in ("fit", "val", "test"))
        assert set(fit["as_of_date"]) == set(dates)  # earlier cutoffs train too
        assert set(val["as_of_date"]) == set(test["as_of_date"]) == {dates[-1]}
        fit_c, val_c, test_c = (set(part["customer_id"]) for part in (fit, val, test))
        assert not (fit_c | val_c) & test_c and not fit_c & val_c  # no label of a predicted one
        predicted |= test_c
    assert predicted == set(ids) and len(RecordingXGBoost.calls) == 3
    at = frame[frame["as_of_date"] == dates[-1]].reset_index(drop=True)
    for call, fold in zip(RecordingXGBoost.calls, validation, strict=True):
        # the fold's validation part is forecast too (the champion is chosen on it), and its
        # positions name the same customers as the rows the fold's model was validated on
        assert [list(p) for p in call["predicted"]] == [list(call["test"]), list(call["val"])]
        assert set(at.loc[fold.validation, "customer_id"]) == set(frame.loc[call["val"],
                                                                             "customer_id"])
        assert set(at.loc[fold.test, "customer_id"]) == set(frame.loc[call["test"],
                                                                       "customer_id"])
        assert len(fold.predictions["xgboost"].predicted_clv) == len(fold.validation)


def test_metric_diagnostics_tie_the_one_timers_and_scale_to_the_reference_total():
    rng = np.random.default_rng(1)
    n = 400
    frequency = rng.integers(0, 4, n) * (rng.random(n) < 0.5)
    y = rng.gamma(0.5, 30, n) * (rng.random(n) < 0.3 + 0.15 * frequency)
    model = Prediction(predicted_clv=rng.gamma(2, 10, n) * (1 + frequency),
                       p_purchase=rng.random(n))
    reference = Prediction(predicted_clv=0.5 * model.predicted_clv + 1, p_purchase=rng.random(n))
    rows = bench_cdnow.metric_diagnostics(y, y > 0, frequency,
                                          {"xgboost": model, "bgnbd_gg": reference})
    by = {(r["model"], r["transform"].split(" (")[0]): r for r in rows}
    tied = by["xgboost", "one-time buyers tied"]
    expected = model.predicted_clv.copy()
    expected[frequency == 0] = expected[frequency == 0].mean()
    assert tied["spearman"] == pytest.approx(
        pd.Series(expected).corr(pd.Series(y), method="spearman"), abs=1e-4)
    scaled = by["xgboost", "scaled to bgnbd_gg's total"]
    assert scaled["total_ratio"] == pytest.approx(reference.predicted_clv.sum() / y.sum(), abs=1e-4)
    assert scaled["normalized_gini"] == pytest.approx(  # ranks unchanged
        metrics.normalized_gini(y, model.predicted_clv), abs=1e-4)
    assert by["bgnbd_gg", "scaled to the actual total"]["total_ratio"] == pytest.approx(1, abs=1e-4)
    lowest = by["xgboost", "lowest 50% tied"]
    expected = model.predicted_clv.copy()
    low = expected <= np.median(expected)
    expected[low] = expected[low].mean()
    assert lowest["normalized_gini"] == pytest.approx(metrics.normalized_gini(y, expected), abs=1e-4)
    assert len(rows) == 3 + len(bench_cdnow.TIED_SHARES)


def test_the_frontier_runs_from_bgnbd_to_the_learner_and_names_its_best_point():
    rng = np.random.default_rng(2)
    n = 600
    y = rng.gamma(0.5, 30, n) * (rng.random(n) < 0.4)
    learner = Prediction(predicted_clv=y * rng.uniform(0.5, 1.5, n) + rng.gamma(1, 5, n),
                         p_purchase=np.clip((y > 0) * 0.6 + rng.random(n) * 0.4, 0, 1))
    reference = Prediction(predicted_clv=np.full(n, y.mean()), p_purchase=np.full(n, 0.4))
    refs = [{"model": "ref", "reference": True, "rmse": 1e9, "normalized_gini": 0.1,
             "top_decile_capture": 0.1, "decile_mape": 1e9, "auc": 0.5}]
    rows = bench_cdnow.target_frontier(y, y > 0, {"xgboost": learner, "bgnbd_gg": reference},
                                       refs)
    assert [r["weight"] for r in rows] == list(bench_cdnow.FRONTIER_WEIGHTS)
    ends = {r["weight"]: r for r in rows}
    assert ends[0.0]["rmse"] == pytest.approx(np.sqrt(np.mean((y - y.mean()) ** 2)), abs=1e-3)
    assert ends[1.0]["normalized_gini"] == pytest.approx(
        metrics.normalized_gini(y, learner.predicted_clv), abs=1e-4)
    assert ends[0.0]["targets_met"] < ends[1.0]["targets_met"]
    best = bench_cdnow.frontier_summary(rows)
    assert best["targets_met"] == max(r["targets_met"] for r in rows)
    assert best["all_targets_reachable"] == (best["targets_met"] == len(bench_cdnow.FRONTIER_KEYS))
    assert bench_cdnow.target_frontier(y, y > 0, {"xgboost": learner}, refs) == []


# -- the file and the verdicts --------------------------------------------------------------------
def test_cdnow_file_lookup_says_how_to_get_it(monkeypatch, tmp_path):
    assert cdnow_master_path(FIXTURE) == FIXTURE
    with pytest.raises(FileNotFoundError, match="no such file"):
        cdnow_master_path(tmp_path / "missing.txt")
    monkeypatch.setattr(bench_cdnow.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"pip install 'clv-models\[bench\]'.*--cdnow"):
        cdnow_master_path()


@pytest.mark.skipif(importlib.util.find_spec("lifetimes") is None, reason="lifetimes absent")
def test_the_one_in_ten_sample_reads_as_the_same_shop_in_small():
    from clv_models.ingest.importers import read_cdnow

    sample = read_cdnow(cdnow_master_path(name=bench_cdnow.CDNOW_SAMPLE_FILE))
    assert sample["customer_id"].nunique() == 2_357
    assert sample["ordered_at"].min() == pd.Timestamp("1997-01-01", tz="UTC")
    assert (sample["order_total"] >= 0).all()


def test_cdnow_file_comes_from_the_lifetimes_wheel():
    path = cdnow_master_path()
    assert path.name == "CDNOW_master.txt" and path.parent.parent.name == "lifetimes"


def test_beating_every_reference_row():
    refs = [{**r, "reference": True} for r in PUBLISHED_REFERENCE_ROWS]
    assert targets(refs)["normalized_gini"] == "> 0.718"
    assert targets(refs)["mae"] == "< 32.680"
    assert beats("normalized_gini", 0.72, refs) and not beats("normalized_gini", 0.718, refs)
    assert beats("rmse", 90.0, refs) and not beats("mae", 32.9, refs)  # all zeros: 32.96
    assert beats("total_ratio", 0.97, refs) and not beats("total_ratio", 1.07, refs)
    assert not beats("auc", None, refs)


# -- end to end -----------------------------------------------------------------------------------
@pytest.mark.e2e
def test_bench_cdnow_end_to_end(tmp_path):
    source = cdnow_file(tmp_path / "CDNOW_small.txt")
    out = tmp_path / "cdnow.json"
    result = CliRunner().invoke(main, [
        "--data-dir", str(tmp_path / "data"), "--set", "deep.epochs=2",
        "--set", "deep.hidden=16", "--set", "deep.batch_size=256",
        "--set", "xgboost.n_estimators=20", "--set", "xgboost.n_jobs=1",
        "bench", "cdnow", "--cdnow", str(source), "--folds", "2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "cross-fitting by customer" in result.output and "target" in result.output
    payload = json.loads(out.read_text())
    assert payload["benchmark"] == "cdnow" and "cores" in payload["device"]
    assert payload["customers"] == 243  # the fixture's 3 customers + 240
    rows = {r["model"]: r for r in payload["rows"]}
    for row in rows.values():
        assert {"model", "reference", *METRIC_KEYS} <= set(row)
    assert {m for m, r in rows.items() if not r["reference"]} == {"champion", "blend", "xgboost",
                                                                  "deep_ziln"}
    # the champion: chosen on the folds' validation parts by the product's rule
    assert payload["champion"] in {"naive", "bgnbd_gg", "xgboost", "deep_ziln", "blend"}
    evidence = {r["model"]: r for r in payload["champion_evidence"]}
    assert evidence[payload["champion"]]["admissible"] and evidence["bgnbd_gg"]["admissible"]
    assert payload["champion"] in rows["champion"]["source"]
    assert payload["beats_references"] == {k: rows["champion"]["beats_references"][k]
                                           for k in bench_cdnow.TARGET_KEYS}
    assert rows["naive"]["reference"] and rows["bgnbd_gg"]["reference"]
    design = [r for r in payload["rows"] if r["source"] == "published"]
    assert len(design) == 4 and all(r["reference"] for r in design)
    assert design[0]["normalized_gini"] == 0.672
    for name in ("xgboost", "deep_ziln"):
        assert 0 < rows[name]["total_ratio"] < 10 and -1 <= rows[name]["normalized_gini"] <= 1
        assert set(rows[name]["beats_references"]) == {*METRIC_KEYS, "mae_p50"}
    assert set(payload["beats_references"]) == set(bench_cdnow.TARGET_KEYS)
    assert payload["targets"]["mae_p50"] == payload["targets"]["mae"]
    assert payload["horizon_days"] == 273 and payload["as_of_date"] == "1997-10-01"
    assert payload["training_as_of_dates"][0] == "1997-02-01"  # sliding monthly cutoffs
    assert payload["training_as_of_dates"][-1] == "1997-10-01"
    assert payload["training_rows"] > payload["customers"]
    transforms = {(r["model"], r["transform"].split(" (")[0]) for r in payload["diagnostics"]}
    assert ("deep_ziln", "one-time buyers tied") in transforms
    assert ("bgnbd_gg", "scaled to the actual total") in transforms
    assert "What Spearman and MAE reward" in result.output
    assert {r["learner"] for r in payload["frontier"]} == {"xgboost", "deep_ziln"}
    assert payload["frontier_best"]["best"] in {r["model"] for r in payload["frontier"]}
    assert "The frontier" in result.output
