"""Post-hoc calibration (clv_models.models.calibration) and the calibration error metric."""

from __future__ import annotations

import numpy as np
import pytest

from clv_models.core import metrics
from clv_models.models import Prediction
from clv_models.models.calibration import MAX_KNOTS, Calibration, apply_knots, isotonic


def test_isotonic_is_the_pool_adjacent_violators_fit_centred_on_its_blocks():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 5.0])
    y = np.array([1.0, 3.0, 2.0, 4.0, 6.0, 4.0])
    kx, ky = isotonic(x, y)
    assert kx.tolist() == [1.0, 2.5, 4.0, 5.0]  # 3 and 2 pooled into one block at x = 2.5
    assert ky.tolist() == [1.0, 2.5, 4.0, 5.0]  # ties at x = 5 averaged
    # read back: increasing between the knots, proportional beyond the largest
    assert apply_knots(np.array([2.0, 3.0, 10.0]), kx, ky, proportional=True).tolist() == [
        2.0, 3.0, 10.0]
    assert np.all(np.diff(isotonic(np.random.default_rng(0).random(5_000),
                                   np.random.default_rng(1).random(5_000))[1]) >= 0)
    assert len(isotonic(np.arange(10_000.0), np.arange(10_000.0))[0]) <= MAX_KNOTS


def test_calibration_fixes_level_and_probability_on_fresh_rows_and_keeps_the_ranking():
    rng = np.random.default_rng(2)

    def draw(n: int):
        true_p = rng.beta(1.0, 3.0, n)
        bought = rng.random(n) < true_p
        value = np.where(bought, rng.gamma(2.0, 50.0, n), 0.0)
        # a model that ranks well but is 40 % too high and over-confident in its probability
        return value, bought, Prediction(predicted_clv=1.4 * true_p * 100.0,
                                         p_purchase=np.sqrt(true_p),
                                         clv_p50=true_p * 80.0)

    value, bought, pred = draw(20_000)
    calibration = Calibration().fit(pred.predicted_clv, value, pred.p_purchase, bought)
    assert calibration.clv_scale == pytest.approx(1 / 1.4, rel=0.05)
    fresh_value, fresh_bought, fresh = draw(20_000)
    fixed = calibration.apply(fresh)
    assert metrics.total_ratio(fresh_value, fresh.predicted_clv) > 1.3
    assert metrics.total_ratio(fresh_value, fixed.predicted_clv) == pytest.approx(1.0, abs=0.05)
    before = metrics.calibration_error(fresh_bought, fresh.p_purchase)
    after = metrics.calibration_error(fresh_bought, fixed.p_purchase)
    assert before > 0.1 and after < 0.02
    order = np.argsort(fresh.predicted_clv)
    assert np.all(np.diff(fixed.predicted_clv[order]) >= 0)  # same ranking
    assert metrics.normalized_gini(fresh_value, fixed.predicted_clv) == pytest.approx(
        metrics.normalized_gini(fresh_value, fresh.predicted_clv), abs=0.002)
    rmse = [np.sqrt(np.mean((p - fresh_value) ** 2)) for p in (fresh.predicted_clv,
                                                                fixed.predicted_clv)]
    assert rmse[1] < rmse[0]
    assert np.allclose(fixed.clv_p50, fresh.clv_p50 * fixed.predicted_clv / fresh.predicted_clv)
    restored = Calibration.from_dict(calibration.to_dict())
    assert np.allclose(restored.apply(fresh).p_purchase, fixed.p_purchase)


def test_the_identity_changes_nothing():
    pred = Prediction(predicted_clv=np.array([1.0, 2.0]), p_purchase=np.array([0.2, 0.9]))
    same = Calibration().apply(pred)
    assert same.predicted_clv.tolist() == [1.0, 2.0] and same.p_purchase.tolist() == [0.2, 0.9]
    assert Calibration().apply(Prediction(predicted_clv=np.array([3.0]))).p_purchase is None


def test_calibration_error_is_zero_for_calibrated_and_large_for_overconfident():
    rng = np.random.default_rng(4)
    p = rng.random(50_000)
    bought = rng.random(50_000) < p
    assert metrics.calibration_error(bought, p) < 0.01
    assert metrics.calibration_error(bought, np.where(p > 0.5, 1.0, 0.0)) > 0.2
    assert np.isnan(metrics.calibration_error(bought, None))
