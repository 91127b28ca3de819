"""Backtest splits, the blend and the champion choice, on small hand-made data (no pipeline run).

The champion fixtures are BTYD worlds: customer histories and future purchases drawn from the
BG/NBD story (tests/test_btyd.py), spend per purchase from Gamma-Gamma, so BG/NBD + Gamma-Gamma is
the right model and a learner can only beat it with information it does not have.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from clv_models.core.config import DeepConfig, XGBoostConfig, load_config
from clv_models.core.errors import DataError
from clv_models.evaluation import backtest, champion, selection
from clv_models.evaluation.backtest import backtest_splits, feasible_splits
from clv_models.models import (
    BGNBDGammaGammaCLV,
    BlendCLV,
    CLVModel,
    NaiveCLV,
    Prediction,
    load_model,
    training,
)
from clv_models.models.blend import convex_weights
from clv_models.models.btyd import BTYD_INPUTS, BGNBDParams
from clv_models.models.deep import DeepCLV
from clv_models.models.training import TARGET, Split, TrainingSet, make_split
from clv_models.models.xgb import XGBoostCLV
from tests.test_btyd import simulate_bgnbd

HORIZON = 180
FIT, VALIDATION, EVALUATION = dt.date(2024, 1, 1), dt.date(2024, 7, 1), dt.date(2025, 1, 1)


def btyd_world(n: int, seed: int, date: dt.date) -> pd.DataFrame:
    """One as-of date's cross-section: RFM features and the net revenue of the next HORIZON
    days, drawn from BG/NBD + Gamma-Gamma; ``segment`` marks half the customers."""
    truth = BGNBDParams(r=0.6, alpha=25.0, a=0.7, b=2.5)
    rng = np.random.default_rng(seed)
    T = rng.uniform(30, 720, n).round()
    x, tx, future = simulate_bgnbd(truth, T, HORIZON, seed=seed)
    nu = rng.gamma(5.0, 1 / 100.0, n)
    zbar = np.where(x > 0, rng.gamma(4.0 * np.maximum(x, 1), 1 / (np.maximum(x, 1) * nu)), 0.0)
    spend = np.array([rng.gamma(4.0, 1 / v, int(k)).sum() for v, k in zip(nu, future)])
    return pd.DataFrame({
        "customer_id": [f"c{seed}-{i}" for i in range(n)], "as_of_date": date,
        "frequency": x, "recency_days": tx.round(), "t_days": T, "monetary_value": zbar,
        "order_count": x + 1, "net_revenue": (x + 1) * np.where(x > 0, zbar, 40.0),
        "segment": (np.arange(n) % 2).astype(float), TARGET: spend,
        "label_purchase_days": future})


def training_set(frame: pd.DataFrame) -> TrainingSet:
    return TrainingSet(frame=frame.reset_index(drop=True),
                       feature_names=["frequency", "recency_days", "t_days", "monetary_value",
                                      "order_count", "net_revenue", "segment"],
                       split=Split([FIT], VALIDATION, EVALUATION))


class Column(CLVModel):
    """A test double (no ``name`` of its own, so never registered): predicts a column."""

    def __init__(self, column: str) -> None:
        self.column, self.feature_names, self.metadata = column, [column], {}

    def predict(self, X, explain=False) -> Prediction:
        return Prediction(predicted_clv=np.asarray(X[self.column], float))


def fitted_references(data: TrainingSet) -> dict[str, CLVModel]:
    fit, val = data.part("fit"), data.part("validation")
    out: dict[str, CLVModel] = {}
    for model in (NaiveCLV(horizon_days=HORIZON), BGNBDGammaGammaCLV(horizon_days=HORIZON)):
        cols = model.feature_names
        out[model.name] = model.fit(fit[cols], fit[TARGET].to_numpy(), val[cols],
                                    val[TARGET].to_numpy())
    return out


def test_bgnbd_wins_in_its_own_world_and_evaluation_labels_are_never_looked_at():
    frame = pd.concat([btyd_world(3_000, s, d) for s, d in
                       ((1, FIT), (2, VALIDATION), (3, EVALUATION))])
    models = fitted_references(training_set(frame))
    # A learner that is BG/NBD's forecast with multiplicative noise: worse by construction.
    val = frame["as_of_date"] == VALIDATION
    noise = np.random.default_rng(9).lognormal(-0.32, 0.8, len(frame))
    frame["noisy"] = models["bgnbd_gg"].predict(frame).predicted_clv * noise
    # On the evaluation date the label is exactly the noisy learner's forecast: a choice that
    # peeked at it would pick the learner.
    evaluation = frame["as_of_date"] == EVALUATION
    frame.loc[evaluation, TARGET] = frame.loc[evaluation, "noisy"]
    data = training_set(frame)
    data.feature_names.append("noisy")
    choice, blend = champion.choose({**models, "xgboost": Column("noisy")}, data)
    evidence = {r["model"]: r for r in choice.evidence}
    assert evidence["xgboost"]["rmse"] > evidence["bgnbd_gg"]["rmse"]
    assert choice.champion != "xgboost"
    assert choice.champion == "bgnbd_gg" or (evidence[choice.champion]["rmse_difference_high"] < 0
                                             and blend.weights["xgboost"]
                                             < blend.weights["bgnbd_gg"])
    assert choice.validation_date == str(VALIDATION) and val.sum() == 3_000


def test_a_learner_with_information_bgnbd_lacks_becomes_champion():
    frame = pd.concat([btyd_world(3_000, s, d) for s, d in
                       ((1, FIT), (2, VALIDATION), (3, EVALUATION))])
    # Customers of segment 1 spend three times as much: BG/NBD cannot know, the learner does.
    frame[TARGET] *= np.where(frame["segment"] == 1, 3.0, 1.0)
    models = fitted_references(training_set(frame))
    base = models["bgnbd_gg"].predict(frame).predicted_clv
    frame["informed"] = base * np.where(frame["segment"] == 1, 3.0, 1.0) * 1.5
    data = training_set(frame)
    data.feature_names.append("informed")
    choice, _ = champion.choose({**models, "xgboost": Column("informed")}, data)
    assert choice.champion in ("xgboost", "blend")
    reference = next(r for r in choice.evidence if r["model"] == "bgnbd_gg")
    for r in choice.evidence:  # the rule, row by row
        assert r["admissible"] == (r["model"] == "bgnbd_gg" or (
            r["rmse_difference_high"] < 0 and champion.admissible(r, reference)))


def test_convex_weights_are_on_the_simplex_and_recover_a_mixture():
    rng = np.random.default_rng(0)
    a, b, c = rng.gamma(1.0, 10.0, (3, 2_000))
    w = convex_weights(np.column_stack([a, b, c]), 0.3 * a + 0.7 * b)
    assert w == pytest.approx([0.3, 0.7, 0.0], abs=1e-6)
    w = convex_weights(np.column_stack([a, b]), a - b)  # the best convex fit is all of a
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0) and w[0] == pytest.approx(1.0)
    # A level shift is not the blend's to fit: twice a gives all of a, not weight 2.
    assert convex_weights(np.column_stack([a, b]), 2 * a) == pytest.approx([1.0, 0.0])


def test_cross_fitted_blend_never_uses_a_customers_own_label():
    rng = np.random.default_rng(1)
    forecasts = {"one": rng.gamma(1.0, 10.0, 500), "two": rng.gamma(1.0, 10.0, 500)}
    y = forecasts["one"] + rng.normal(0, 1, 500)
    ids = np.array([f"c{i}" for i in range(500)])
    before = champion.cross_fitted_blend(forecasts, y, ids)
    changed = y.copy()
    changed[7] = 1e6
    after = champion.cross_fitted_blend(forecasts, changed, ids)
    assert after[7] == before[7]  # its own fold's weights never saw it
    assert not np.allclose(after, before)  # other folds did


def test_backtest_splits_never_fit_on_or_after_their_cutoff():
    dates = [dt.date(2023 + m // 12, m % 12 + 1, 1) for m in range(30)]
    splits = backtest_splits(dates, HORIZON, cutoffs=3)
    assert [s.evaluation_date for s in splits] == dates[-3:]
    for s in splits:
        horizon = dt.timedelta(days=HORIZON)
        assert all(d + horizon <= s.evaluation_date for d in s.fit_dates)
        assert s.validation_date + horizon <= s.evaluation_date
        assert max(s.fit_dates) < s.validation_date < s.evaluation_date
    with pytest.raises(DataError, match="needs 30 as-of dates"):
        backtest_splits(dates, HORIZON, cutoffs=30)


def test_blend_round_trip_and_a_changed_component_is_refused(tmp_path):
    frame = pd.concat([btyd_world(1_500, s, d) for s, d in ((1, FIT), (2, VALIDATION))])
    data = training_set(frame)
    models = fitted_references(data)
    for name, model in models.items():
        model.save(tmp_path / name)
    val = data.part("validation")
    blend = BlendCLV(models).fit(val, val[TARGET].to_numpy())
    blend.save(tmp_path / "blend")
    loaded = load_model(tmp_path / "blend")
    np.testing.assert_allclose(loaded.predict(val).predicted_clv, blend.predict(val).predicted_clv)
    assert set(loaded.weights) == {"naive", "bgnbd_gg"}
    refit = data.part("fit")  # another cross-section, other parameters, another version
    models["bgnbd_gg"].fit(refit, refit[TARGET].to_numpy()).save(tmp_path / "bgnbd_gg")
    with pytest.raises(DataError, match="blend of bgnbd_gg"):
        load_model(tmp_path / "blend")


@pytest.mark.parametrize("name", ["xgboost", "deep_ziln"])
def test_learners_take_btyd_inputs_fitted_per_as_of_date(tmp_path, name):
    frame = pd.concat([btyd_world(1_500, s, d) for s, d in ((1, FIT), (2, VALIDATION))])
    fit, val = frame[frame["as_of_date"] == FIT], frame[frame["as_of_date"] == VALIDATION]
    cols = ["frequency", "recency_days", "t_days", "monetary_value", "segment"]
    model = (XGBoostCLV(XGBoostConfig(n_estimators=30, n_jobs=1), horizon_days=HORIZON)
             if name == "xgboost" else
             DeepCLV(DeepConfig(epochs=3, batch_size=512), horizon_days=HORIZON))
    model.fit(fit[[*cols, "as_of_date"]], fit[TARGET].to_numpy(), val[cols],
              val[TARGET].to_numpy())
    assert model.feature_names == cols  # the date is never an input
    assert model.input_names == cols + BTYD_INPUTS
    assert set(BTYD_INPUTS) <= set(model.metadata["feature_importance"])
    # scoring rows (no date) use the fit of the validation cross-section, as bgnbd_gg does
    assert model.btyd.state() == BGNBDGammaGammaCLV(HORIZON).fit(val[cols]).state()
    by_frame = model.predict(val[cols]).predicted_clv
    by_columns = model.predict({c: val[c].tolist() for c in cols}).predicted_clv
    np.testing.assert_allclose(by_columns, by_frame, rtol=1e-6)
    model.save(tmp_path / name)
    np.testing.assert_allclose(load_model(tmp_path / name).predict(val[cols]).predicted_clv,
                               by_frame, rtol=1e-6)


def test_the_choice_over_validation_cutoffs_never_sees_the_evaluation_labels():
    """Every model refitted at two validation cutoffs of a BTYD world; the evaluation date's
    labels are NaN, so any use of them would fail or leave NaN in the evidence."""
    dates = [dt.date(2023 + m // 12, m % 12 + 1, 1) for m in range(0, 24, 2)]
    frame = pd.concat([btyd_world(400, s, d) for s, d in enumerate(dates)], ignore_index=True)
    evaluation = frame["as_of_date"] == dates[-1]
    frame.loc[evaluation, TARGET] = np.nan
    data = TrainingSet(frame=frame, feature_names=training_set(frame).feature_names,
                       split=make_split(dates, HORIZON))
    cfg = load_config(None, {"horizon_days": HORIZON, "deep.epochs": 2, "deep.batch_size": 512,
                             "xgboost.n_estimators": 40, "xgboost.n_jobs": 1,
                             "champion.cutoffs": 2, "champion.bootstrap": 50})
    models = training.fit_models(cfg, data)
    seen: list[Split] = []
    choice, blend = selection.choose(cfg, models, data, on_cutoff=lambda _, s: seen.append(s))
    assert choice.validation_cutoffs == [str(s.evaluation_date) for s in seen]
    first, last = (s.evaluation_date for s in seen)
    # predicted_clv maps are judged only where a label window ended before a cutoff
    assert choice.basis == ("2 validation cutoffs, calibrated out of cutoff"
                            if (last - first).days >= HORIZON else
                            "2 validation cutoffs, p_purchase calibrated out of cutoff (no "
                            "cutoff's label window ends before another's: predicted_clv left "
                            "as forecast)")
    assert all(s.evaluation_date <= data.split.validation_date for s in seen)
    assert seen[-1].evaluation_date == data.split.validation_date
    rows = {r["model"]: r for r in choice.cutoff_evidence}
    assert set(rows) == {*champion.CANDIDATES}
    assert all(np.isfinite(r["rmse_mean"]) and r["cutoffs"] == 2 for r in rows.values())
    reference = rows[champion.REFERENCE]
    for r in rows.values():  # the rule, row by row
        assert r["admissible"] == selection.admissible(r, reference)
    assert rows[choice.champion]["admissible"]
    assert choice.champion == min((r for r in rows.values() if r["admissible"]),
                                  key=lambda r: r["rmse_mean"])["model"]
    assert set(blend.weights) == set(training.MODEL_NAMES)


def test_validation_cutoffs_are_spread_over_the_year_where_the_data_allow():
    dates = [dt.date(2023 + m // 12, m % 12 + 1, 1) for m in range(30)]
    feasible = feasible_splits(dates, HORIZON)
    chosen = [s.evaluation_date for s in selection.spread_splits(feasible, 3)]
    assert chosen[-1] == dates[-1] and len(chosen) == 3
    assert all((b - a).days >= 365 // 3 for a, b in zip(chosen, chosen[1:]))
    short = feasible[-4:]  # four months: not enough to spread, the latest ones instead
    assert [s.evaluation_date for s in selection.spread_splits(short, 3)] == [
        s.evaluation_date for s in short[-3:]]
    # Only cutoffs whose refit sees enough of the history: spread over those.
    enough = len(feasible[-1].fit_dates) - 6
    chosen = selection.spread_splits(feasible, 3, min_fit_dates=enough)
    assert all(len(s.fit_dates) >= enough for s in chosen) and len(chosen) == 3
    assert chosen[-1].evaluation_date == dates[-1]
    assert chosen[0].evaluation_date < chosen[1].evaluation_date
    # ... and the latest ones when too few cutoffs have that much.
    late = selection.spread_splits(feasible, 3, min_fit_dates=len(feasible[-1].fit_dates))
    assert [s.evaluation_date for s in late] == [s.evaluation_date for s in feasible[-3:]]


def test_calibration_is_judged_on_cutoffs_after_a_finished_label_window():
    def cutoff(date, seed):
        rng = np.random.default_rng(seed)
        y = rng.gamma(0.5, 40.0, 300)
        forecast = Prediction(predicted_clv=y * 0.5 + 5, p_purchase=np.full(300, 0.5))
        return backtest.CutoffForecasts(split=Split([], date, date), actual=y,
                                        purchased=y > 0, predictions={"bgnbd_gg": forecast},
                                        champion="", weights={})

    dates = [dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 7, 1)]
    forecasts = [cutoff(d, i) for i, d in enumerate(dates)]
    # In time: only the cutoff with an earlier, finished label window is judged, by the
    # maps of those earlier cutoffs.
    maps = selection.judging_maps(forecasts, horizon_days=90)
    assert list(maps) == [2]
    pooled = selection.fit_calibrations(forecasts, only=[0, 1])
    assert maps[2]["bgnbd_gg"].to_dict() == pooled["bgnbd_gg"].to_dict()
    assert selection.judging_maps(forecasts[:2], horizon_days=90) == {}
    # Exchangeable parts of one date: every part, by the others.
    assert list(selection.judging_maps(forecasts, horizon_days=None)) == [0, 1, 2]
    # A forecast at half the level: the map helps where it is judged, and is kept.
    _, evidence, calibrations, how = selection.judge(forecasts, 20, 0, horizon_days=90)
    assert how == "calibrated out of cutoff" and calibrations["bgnbd_gg"].clv_knots_x
    # Overlapping windows only: no evidence, the p_purchase map alone.
    _, _, calibrations, how = selection.judge(forecasts[:2], 20, 0, horizon_days=90)
    assert not calibrations["bgnbd_gg"].clv_knots_x and how.startswith("p_purchase calibrated")
