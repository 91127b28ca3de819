"""Metrics against values worked out by hand (docs/contracts.md definitions)."""

import numpy as np
import pytest

from clv_models.core import metrics

ACTUAL = np.array([10.0, 0.0, 5.0, 0.0])


def test_gini_by_hand():
    # Ordered by prediction: 10, 5, 0, 0 -> g = 2/3, 1, 1, 1 -> mean 11/12 -> raw 5/6.
    assert metrics.raw_gini(ACTUAL, np.array([0.9, 0.1, 0.5, 0.3])) == pytest.approx(5 / 6)
    assert metrics.normalized_gini(ACTUAL, np.array([0.9, 0.1, 0.5, 0.3])) == pytest.approx(1.0)
    # Ordered: 0, 5, 0, 10 -> g = 0, 1/3, 1/3, 1 -> mean 5/12 -> raw -1/6 -> normalized -0.2.
    assert metrics.normalized_gini(ACTUAL, np.array([0.1, 0.9, 0.5, 0.3])) == pytest.approx(-0.2)


def test_ties_are_averaged_not_broken_by_position():
    pred = np.array([0.5, 0.5, 0.2, 0.1])
    # Tie group {10, 0} -> both count 5: g = 1/3, 2/3, 1, 1 -> mean 3/4 -> raw 1/2.
    assert metrics.raw_gini(ACTUAL, pred) == pytest.approx(0.5)
    swapped = np.array([0.0, 10.0, 5.0, 0.0])
    assert metrics.raw_gini(swapped, pred) == pytest.approx(0.5)
    # A constant prediction is a random ordering: raw Gini 1/n.
    assert metrics.raw_gini(ACTUAL, np.ones(4)) == pytest.approx(0.25)


def test_top_decile_capture_and_decile_mape_by_hand():
    actual = np.arange(1.0, 21.0)
    # The best 10 % (2 of 20) hold 20 + 19 of 210.
    assert metrics.top_decile_capture(actual, actual) == pytest.approx(39 / 210)
    assert metrics.decile_mape(actual, actual) == pytest.approx(0.0)
    assert metrics.decile_mape(actual, 2 * actual) == pytest.approx(1.0)
    table = metrics.decile_table(actual, actual)
    assert list(table["mean_actual"]) == [19.5, 17.5, 15.5, 13.5, 11.5, 9.5, 7.5, 5.5, 3.5, 1.5]
    # Top decile capture reads the Lorenz curve at exactly 10 %: 15 customers -> 1.5 of them.
    actual15 = np.array([10.0, 6.0] + [1.0] * 13)
    assert metrics.top_decile_capture(actual15, actual15) == pytest.approx(13 / 29)


def test_auc_by_hand():
    score = np.array([0.9, 0.8, 0.3, 0.2])
    positive = np.array([True, False, True, False])
    assert metrics.roc_auc(positive, score) == pytest.approx(0.75)
    assert metrics.roc_auc(np.array([True, False]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert np.isnan(metrics.roc_auc(np.array([True, True]), np.array([0.1, 0.2])))


def test_evaluate_collects_every_design_metric():
    actual = np.array([0.0, 0.0, 10.0, 30.0, 0.0, 5.0, 0.0, 0.0, 2.0, 1.0])
    pred = np.array([1.0, 2.0, 8.0, 20.0, 0.5, 6.0, 1.0, 0.0, 1.0, 2.0])
    m = metrics.evaluate(actual, pred, p_purchase=pred / 20)
    assert set(m) == {*metrics.METRIC_KEYS, *metrics.QUANTILE_KEYS}
    assert m["mae"] == pytest.approx(np.abs(pred - actual).mean())
    assert m["rmse"] == pytest.approx(np.sqrt(((pred - actual) ** 2).mean()))
    assert m["total_ratio"] == pytest.approx(41.5 / 48)
    assert 0 < m["normalized_gini"] <= 1
    assert m["auc"] > 0.8


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="finite"):
        metrics.evaluate(np.array([1.0, np.nan]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="same length"):
        metrics.raw_gini(np.array([1.0, 2.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="positive total"):
        metrics.normalized_gini(np.zeros(3), np.ones(3))


def test_auc_target_is_any_purchase_not_positive_net_revenue():
    actual = np.array([0.0, 0.0, 10.0, 0.0])  # customer 1 bought but refunded everything
    purchased = np.array([False, True, True, False])
    p = np.array([0.1, 0.95, 0.9, 0.2])
    assert metrics.evaluate(actual, p * 10, p, purchased)["auc"] == pytest.approx(1.0)
    assert metrics.evaluate(actual, p * 10, p)["auc"] == pytest.approx(2 / 3)


def _area(x, y):
    """Trapezoidal area (numpy 1.26 has no ``np.trapezoid``; 2.x deprecates ``np.trapz``)."""
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def test_roc_curve_by_hand_and_its_area_is_the_auc():
    score = np.array([0.9, 0.8, 0.3, 0.2])
    positive = np.array([True, False, True, False])
    fpr, tpr = metrics.roc_curve(positive, score)
    # Thresholds 0.9, 0.8, 0.3, 0.2 let in P, N, P, N in turn.
    np.testing.assert_allclose(fpr, [0.0, 0.0, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(tpr, [0.0, 0.5, 0.5, 1.0, 1.0])
    assert _area(fpr, tpr) == pytest.approx(metrics.roc_auc(positive, score))
    # A tie is one diagonal step, never a staircase that depends on the row order.
    fpr, tpr = metrics.roc_curve(np.array([False, True, True]), np.array([0.5, 0.5, 0.1]))
    np.testing.assert_allclose(fpr, [0.0, 1.0, 1.0])
    np.testing.assert_allclose(tpr, [0.0, 0.5, 1.0])
    assert _area(fpr, tpr) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="both positives and negatives"):
        metrics.roc_curve(np.array([True, True]), np.array([0.1, 0.2]))


def test_calibration_table_by_hand():
    p = np.array([0.05, 0.15, 0.12, 0.95, 1.0])
    positive = np.array([False, True, False, True, True])
    table = metrics.calibration_table(positive, p, bins=10)
    assert list(table["bin_low"]) == pytest.approx([0.0, 0.1, 0.9])
    assert list(table["customers"]) == [1, 2, 2]  # p = 1 falls in the last bin
    assert list(table["mean_predicted"]) == pytest.approx([0.05, 0.135, 0.975])
    assert list(table["observed_rate"]) == pytest.approx([0.0, 0.5, 1.0])


def test_median_mae_and_interval_coverage():
    actual = np.array([0.0, 10.0, 20.0, 30.0, 100.0])
    p10, p50, p90 = np.zeros(5), np.full(5, 15.0), np.full(5, 25.0)
    scores = metrics.quantile_scores(actual, p10, p50, p90)
    assert scores["coverage_80"] == pytest.approx(3 / 5)  # 0, 10, 20 inside [0, 25]
    assert scores["mae_p50"] == pytest.approx((15 + 5 + 5 + 15 + 85) / 5)
    without = metrics.evaluate(actual, np.full(5, 30.0))
    assert np.isnan(without["mae_p50"]) and np.isnan(without["coverage_80"])
    full = metrics.evaluate(actual, np.full(5, 30.0), quantiles=(p10, p50, p90))
    assert full["coverage_80"] == scores["coverage_80"]
