"""BG/NBD + Gamma-Gamma (``clv_models.models.btyd``): published fits, closed forms, simulation.

The published check uses ``tests/fixtures/cdnow_sample_btyd.csv``: the calibration summary of the
CDNOW 1/10 sample (2,357 customers) made by :func:`cdnow_calibration_summary` below from
``CDNOW_sample.txt`` of the ``lifetimes`` 0.11.3 wheel (MIT licence; the data are Fader and
Hardie's). Regenerate it with::

    pip download --no-deps lifetimes==0.11.3 -d /tmp/lt && unzip -o -q /tmp/lt/*.whl -d /tmp/lt
    .venv/bin/python tests/test_btyd.py /tmp/lt/lifetimes/datasets/CDNOW_sample.txt \\
        > tests/fixtures/cdnow_sample_btyd.csv
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clv_models.models import BGNBDGammaGammaCLV, load_model
from clv_models.models.btyd import (
    QUANTILE_LEVELS,
    BGNBDParams,
    GammaGammaParams,
    bgnbd_expected_given_alive_quad,
    bgnbd_expected_purchases,
    bgnbd_gg_quantiles,
    bgnbd_log_likelihood,
    bgnbd_p_purchase,
    bgnbd_prob_alive,
    fit_bgnbd,
    fit_gamma_gamma,
    gamma_gamma_expected_spend,
)

FIXTURE = Path(__file__).parent / "fixtures" / "cdnow_sample_btyd.csv"
CALIBRATION_END = "1997-09-30"  # inclusive: T is counted to this day, as in the papers

# Fader, Hardie & Lee (2005), "Counting your customers the easy way", CDNOW sample, weeks.
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_BGNBD_LL = -9582.4
# Fader & Hardie (2013), "The Gamma-Gamma model of monetary value", same customers (946 with x>0).
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def cdnow_calibration_summary(path: str | Path) -> pd.DataFrame:
    """Per-customer (x, t_x, T, z̄) in days from ``CDNOW_sample.txt`` (Fader-Hardie layout:
    master id, sample id, yyyymmdd, CDs, dollars).

    Purchases on the same day are merged into one transaction (as the papers and the warehouse
    do); x counts repeat purchase days before the end of the calibration period, t_x and T run
    from the first purchase day to the last one and to 1997-09-30, z̄ is the mean value of the
    repeat days (0 without one).
    """
    raw = pd.read_csv(path, sep=r"\s+", header=None, dtype={"date": str},
                      names=["master_id", "sample_id", "date", "cds", "dollars"])
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    cal = raw[raw["date"] <= CALIBRATION_END]
    days = (cal.groupby(["sample_id", "date"], as_index=False)["dollars"].sum()
            .sort_values(["sample_id", "date"]))
    g = days.groupby("sample_id")
    first, last, n = g["date"].min(), g["date"].max(), g.size()
    first_value = days.drop_duplicates("sample_id").set_index("sample_id")["dollars"]
    x = n - 1
    out = pd.DataFrame({
        "customer_id": first.index, "x": x.to_numpy(),
        "t_x": (last - first).dt.days.to_numpy(),
        "T": (pd.Timestamp(CALIBRATION_END) - first).dt.days.to_numpy(),
        "zbar": np.where(x > 0, (g["dollars"].sum() - first_value) / x.clip(lower=1), 0.0),
    })
    out["zbar"] = out["zbar"].round(6)
    return out


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(FIXTURE, comment="#")


# -- the published CDNOW fits ----------------------------------------------------------------------
def test_fixture_is_the_published_sample(cdnow):
    assert len(cdnow) == 2_357
    assert (cdnow["x"] > 0).sum() == 946
    assert cdnow["x"].sum() == 2_457  # repeat transactions in the calibration period
    assert cdnow["T"].max() == 272 and (cdnow["t_x"] <= cdnow["T"]).all()


def test_bgnbd_reproduces_the_published_fit_in_weeks(cdnow):
    params = fit_bgnbd(cdnow["x"], cdnow["t_x"] / 7, cdnow["T"] / 7)
    np.testing.assert_allclose([params.r, params.alpha, params.a, params.b],
                               list(PUBLISHED_BGNBD.values()), atol=1e-3, rtol=0)
    log_params = np.log([params.r, params.alpha, params.a, params.b])
    ll, grad = bgnbd_log_likelihood(log_params, cdnow["x"].to_numpy(float),
                                    cdnow["t_x"].to_numpy() / 7, cdnow["T"].to_numpy() / 7)
    assert ll * len(cdnow) == pytest.approx(PUBLISHED_BGNBD_LL, abs=0.1)
    np.testing.assert_allclose(grad, 0, atol=1e-5)  # a stationary point


def test_bgnbd_in_days_scales_alpha_by_seven(cdnow):
    weeks = fit_bgnbd(cdnow["x"], cdnow["t_x"] / 7, cdnow["T"] / 7)
    days = fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert days.alpha == pytest.approx(7 * weeks.alpha, rel=1e-4)
    assert days.alpha / 7 == pytest.approx(PUBLISHED_BGNBD["alpha"], abs=1e-3)
    for name in ("r", "a", "b"):
        assert getattr(days, name) == pytest.approx(getattr(weeks, name), rel=1e-4)


def test_gamma_gamma_reproduces_the_published_fit(cdnow):
    params = fit_gamma_gamma(cdnow["x"], cdnow["zbar"])
    np.testing.assert_allclose([params.p, params.q, params.gamma], list(PUBLISHED_GG.values()),
                               atol=0.01, rtol=0)


def test_conditional_expectations_match_hardies_spreadsheets(cdnow):
    # E[Y(39) | x=2, t_x=30.43, T=38.86] = 1.226 at the published parameters (weeks).
    weekly = BGNBDParams(**PUBLISHED_BGNBD)
    e = bgnbd_expected_purchases(weekly, 39.0, np.array([2.0]), np.array([30.43]),
                                 np.array([38.86]))
    assert e[0] == pytest.approx(1.226, abs=5e-4)
    # Expected spend per transaction of the first ten customers (Hardie's Gamma-Gamma sheet).
    spend = gamma_gamma_expected_spend(fit_gamma_gamma(cdnow["x"], cdnow["zbar"]),
                                       cdnow["x"][:10], cdnow["zbar"][:10])
    np.testing.assert_allclose(
        spend, [24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17], atol=0.01)


def test_the_estimator_fits_the_cdnow_features(cdnow):
    X = cdnow.rename(columns={"x": "frequency", "t_x": "recency_days", "T": "t_days",
                              "zbar": "monetary_value"})
    model = BGNBDGammaGammaCLV(horizon_days=273).fit(X, None)
    assert model.bgnbd.alpha / 7 == pytest.approx(PUBLISHED_BGNBD["alpha"], abs=1e-3)
    assert model.gamma_gamma.p == pytest.approx(PUBLISHED_GG["p"], abs=0.01)
    pred = model.predict(X)
    # predicted_clv is BG/NBD purchases times Gamma-Gamma spend, customer by customer.
    purchases = bgnbd_expected_purchases(model.bgnbd, 273.0,
                                         *[X[c].to_numpy(float) for c in
                                           ("frequency", "recency_days", "t_days")])
    spend = gamma_gamma_expected_spend(model.gamma_gamma, X["frequency"], X["monetary_value"])
    np.testing.assert_allclose(pred.predicted_clv, purchases * spend)
    assert (pred.clv_p10 <= pred.clv_p50).all() and (pred.clv_p50 <= pred.clv_p90).all()


# -- closed forms against independent derivations --------------------------------------------------
@pytest.mark.parametrize("params", [BGNBDParams(0.243, 30.9, 0.793, 2.426),
                                    BGNBDParams(2.0, 5.0, 1.5, 0.3),
                                    BGNBDParams(0.1, 1.0, 0.2, 0.5),
                                    BGNBDParams(0.5, 100.0, 1.0, 4.0)])
def test_expected_purchases_closed_form_equals_quadrature(params):
    """The Euler-transformed ₂F₁ form against E_p[(1 - E_λ e^(-λpt))/p] integrated numerically,
    including frequencies for which the paper's form overflows."""
    for x in (0.0, 1.0, 7.0, 300.0, 5_000.0):
        for T in (0.0, 40.0, 700.0):
            tx = np.array([T * 0.6 if x else 0.0])
            for t in (1.0, 90.0, 3_650.0):
                closed = bgnbd_expected_purchases(params, t, np.array([x]), tx, np.array([T]))[0]
                alive = bgnbd_prob_alive(params, np.array([x]), tx, np.array([T]))[0]
                quad = alive * bgnbd_expected_given_alive_quad(params, t, x, T)
                assert np.isfinite(closed)
                assert closed == pytest.approx(quad, rel=1e-5, abs=1e-12), (x, T, t)


def simulate_bgnbd(params: BGNBDParams, T: np.ndarray, horizon: float, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histories (x, t_x) over (0, T] and purchases in (T, T+horizon] drawn from the BG/NBD story.

    λ ~ Gamma(r, α), p ~ Beta(a, b); purchases follow a Poisson(λ) process after the first one at
    0, and after each repeat purchase the customer drops out with probability p, so at most
    J ~ Geometric(p) repeat purchases ever happen.
    """
    rng = np.random.default_rng(seed)
    n = len(T)
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    cap = rng.geometric(p)
    in_cal = rng.poisson(lam * T)
    in_hold = rng.poisson(lam * horizon)
    x = np.minimum(in_cal, cap)
    # The x-th of in_cal uniform arrival times on (0, T] is T * Beta(x, in_cal - x + 1).
    tx = np.where(x > 0, T * rng.beta(np.maximum(x, 1), in_cal - x + 1), 0.0)
    future = np.minimum(in_cal + in_hold, cap) - x
    return x.astype(float), tx, future.astype(float)


def test_fit_recovers_simulated_bgnbd_parameters():
    truth = BGNBDParams(r=0.6, alpha=25.0, a=0.7, b=2.5)
    T = np.random.default_rng(1).uniform(30, 720, 30_000).round()
    x, tx, _ = simulate_bgnbd(truth, T, horizon=1.0, seed=2)
    fitted = fit_bgnbd(x, tx, T)
    for name in ("r", "alpha", "a", "b"):
        assert getattr(fitted, name) == pytest.approx(getattr(truth, name), rel=0.15), name


def test_conditional_predictions_are_calibrated_on_simulated_customers():
    """At the true parameters, expected future purchases and P(any purchase) agree with what
    simulated customers go on to do, overall and within frequency groups."""
    truth = BGNBDParams(r=0.6, alpha=25.0, a=0.7, b=2.5)
    T = np.random.default_rng(3).uniform(30, 720, 60_000).round()
    horizon = 180.0
    x, tx, future = simulate_bgnbd(truth, T, horizon, seed=4)
    expected = bgnbd_expected_purchases(truth, horizon, x, tx, T)
    p_any = bgnbd_p_purchase(truth, horizon, x, tx, T)
    for group in (x == 0, x == 1, (x >= 2) & (x < 5), x >= 5):
        assert expected[group].sum() == pytest.approx(future[group].sum(), rel=0.05)
        assert p_any[group].mean() == pytest.approx((future[group] > 0).mean(), abs=0.01)


def test_spend_quantiles_are_calibrated_on_simulated_customers():
    """At the true parameters the 10/50/90 % quantiles of the posterior predictive spend hold
    their share of what simulated customers go on to spend (the spend has an atom at 0, so
    P(actual < q) <= level <= P(actual <= q)), and their simulated mean is the closed form."""
    truth = BGNBDParams(r=0.6, alpha=25.0, a=0.7, b=2.5)
    spend = GammaGammaParams(p=4.0, q=5.0, gamma=100.0)
    rng = np.random.default_rng(8)
    T = rng.uniform(30, 720, 30_000).round()
    horizon = 180.0
    x, tx, future = simulate_bgnbd(truth, T, horizon, seed=9)
    nu = rng.gamma(spend.q, 1.0 / spend.gamma, len(T))
    repeat = np.maximum(x, 1)
    zbar = np.where(x > 0, rng.gamma(spend.p * repeat, 1.0 / (repeat * nu)), 0.0)
    actual = np.where(future > 0, rng.gamma(spend.p * np.maximum(future, 1), 1.0 / nu), 0.0)
    q = bgnbd_gg_quantiles(truth, spend, horizon, x, tx, T, zbar)
    for j, level in enumerate(QUANTILE_LEVELS):
        assert (actual < q[:, j]).mean() <= level + 0.015, level
        assert (actual <= q[:, j]).mean() >= level - 0.015, level
    # one customer alone gets the quantiles it gets in a batch
    np.testing.assert_array_equal(bgnbd_gg_quantiles(truth, spend, horizon, x[7:8], tx[7:8],
                                                     T[7:8], zbar[7:8])[0], q[7])
    fine = bgnbd_gg_quantiles(truth, spend, horizon, x[:300], tx[:300], T[:300], zbar[:300],
                              levels=tuple(np.linspace(0.0005, 0.9995, 1000)), draws=8192)
    model = BGNBDGammaGammaCLV(int(horizon))
    model.bgnbd, model.gamma_gamma = truth, spend
    mean = model.components(pd.DataFrame({"frequency": x[:300], "recency_days": tx[:300],
                                          "t_days": T[:300], "monetary_value": zbar[:300]}))
    assert fine.mean(axis=1).sum() == pytest.approx(mean["predicted_clv"].sum(), rel=0.03)


def test_gamma_gamma_recovery_and_shrinkage():
    truth = GammaGammaParams(p=4.0, q=5.0, gamma=100.0)
    rng = np.random.default_rng(5)
    n = 20_000
    nu = rng.gamma(truth.q, 1.0 / truth.gamma, n)
    x = rng.integers(1, 12, n).astype(float)
    zbar = rng.gamma(truth.p * x, 1.0 / (x * nu)) + 0.0  # mean of x Gamma(p, ν) values
    fitted = fit_gamma_gamma(x, zbar)
    for name in ("p", "q", "gamma"):
        assert getattr(fitted, name) == pytest.approx(getattr(truth, name), rel=0.2), name
    true_mean = truth.p / nu
    shrunk = gamma_gamma_expected_spend(fitted, x, zbar)
    assert np.mean((shrunk - true_mean) ** 2) < 0.9 * np.mean((zbar - true_mean) ** 2)
    assert shrunk.mean() == pytest.approx(true_mean.mean(), rel=0.03)


# -- the estimator ---------------------------------------------------------------------------------
def rfm_frame(n: int = 8_000, seed: int = 0) -> pd.DataFrame:
    truth = BGNBDParams(r=0.6, alpha=25.0, a=0.7, b=2.5)
    rng = np.random.default_rng(seed)
    T = rng.uniform(1, 720, n).round()
    x, tx, _ = simulate_bgnbd(truth, T, horizon=1.0, seed=seed)
    nu = rng.gamma(5.0, 1 / 100.0, n)
    zbar = np.where(x > 0, rng.gamma(4.0 * np.maximum(x, 1), 1 / (np.maximum(x, 1) * nu)), 0.0)
    return pd.DataFrame({"frequency": x, "recency_days": tx.round(), "t_days": T,
                         "monetary_value": zbar, "order_count": x + 1})


def test_estimator_predictions_are_sane_and_survive_a_save_load_round_trip(tmp_path):
    X = rfm_frame()
    model = BGNBDGammaGammaCLV(horizon_days=90)
    assert model.fit(X, np.zeros(len(X))) is model
    pred = model.predict(X)
    assert np.all(np.isfinite(pred.predicted_clv)) and np.all(pred.predicted_clv >= 0)
    assert np.all((pred.p_purchase >= 0) & (pred.p_purchase <= 1))
    # Customers who bought more often recently are worth more than those who lapsed.
    keen = X.assign(frequency=10.0, recency_days=X["t_days"], monetary_value=50.0)
    lapsed = keen.assign(recency_days=0.1 * X["t_days"])
    assert np.all(model.predict(keen).predicted_clv > model.predict(lapsed).predicted_clv)

    version = model.save(tmp_path / "m", extra={"horizon_days": 90})
    assert json.loads((tmp_path / "m" / "btyd.json").read_text())["bgnbd"]["r"] > 0
    again = load_model(tmp_path / "m")
    assert isinstance(again, BGNBDGammaGammaCLV) and again.version == version
    assert again.horizon_days == 90
    back = again.predict(X)
    np.testing.assert_array_equal(back.predicted_clv, pred.predicted_clv)
    np.testing.assert_array_equal(back.p_purchase, pred.p_purchase)
    assert model.save(tmp_path / "m2") == version  # the version is a content hash
    refit = BGNBDGammaGammaCLV(horizon_days=90).fit(rfm_frame(seed=1), None)
    assert refit.save(tmp_path / "m3") != version


def test_longer_horizons_predict_more():
    X = rfm_frame(2_000)
    short = BGNBDGammaGammaCLV(horizon_days=30).fit(X, None)
    long = BGNBDGammaGammaCLV(horizon_days=365).fit(X, None)
    assert np.all(long.predict(X).predicted_clv > short.predict(X).predicted_clv)
    assert np.all(long.predict(X).p_purchase > short.predict(X).p_purchase)


def test_degenerate_rows_give_finite_predictions():
    model = BGNBDGammaGammaCLV(horizon_days=180).fit(rfm_frame(3_000), None)
    odd = pd.DataFrame({
        "frequency": [0, 0, 5, 100_000, 3, np.nan, -2, 4],
        "recency_days": [0, 0, 0, 700, 900, 10, 5, np.nan],
        "t_days": [0, 365, 0, 700, 10, 20, 30, 40],
        "monetary_value": [0.0, 0.0, 0.0, 20.0, np.nan, 5.0, 10.0, 1e9],
    })
    pred = model.predict(odd)
    assert np.all(np.isfinite(pred.predicted_clv)) and np.all(pred.predicted_clv >= 0)
    assert np.all((pred.p_purchase >= 0) & (pred.p_purchase <= 1))
    # A customer who bought on 100,000 days and last bought today is nearly sure to buy again.
    assert pred.p_purchase[3] > 0.99


def test_fit_survives_degenerate_calibration_rows():
    X = rfm_frame(3_000)
    odd = pd.DataFrame({"frequency": [0, 50_000, 2, 1], "recency_days": [0, 400, 0, 3],
                        "t_days": [0, 400, 0, 3], "monetary_value": [0.0, 12.0, 0.0, 0.0],
                        "order_count": [1, 50_001, 3, 2]})
    model = BGNBDGammaGammaCLV(horizon_days=90).fit(pd.concat([X, odd]), None)
    assert all(np.isfinite(v) and v > 0 for v in vars(model.bgnbd).values())
    assert all(np.isfinite(v) and v > 0 for v in vars(model.gamma_gamma).values())


def test_fit_uses_one_cross_section_and_ignores_labels():
    good = rfm_frame(4_000, seed=3)
    other = good.assign(frequency=0.0, recency_days=0.0, monetary_value=0.0)
    y = np.arange(len(good), dtype=float)
    on_val = BGNBDGammaGammaCLV(horizon_days=90).fit(other, y, good, y)
    alone = BGNBDGammaGammaCLV(horizon_days=90).fit(good, -y)
    assert on_val.bgnbd == alone.bgnbd and on_val.gamma_gamma == alone.gamma_gamma
    # Without a validation frame, the latest as-of date of the training rows is used.
    dated = pd.concat([other.assign(as_of_date=pd.Timestamp("2024-01-01")),
                       good.assign(as_of_date=pd.Timestamp("2024-06-01"))])
    assert BGNBDGammaGammaCLV(horizon_days=90).fit(dated, None).bgnbd == alone.bgnbd


def test_missing_feature_column_is_named():
    model = BGNBDGammaGammaCLV(horizon_days=90).fit(rfm_frame(1_000), None)
    with pytest.raises(KeyError, match="monetary_value"):
        model.predict(rfm_frame(10).drop(columns=["monetary_value"]))


def test_registered_as_a_reference_model():
    from clv_models.core.config import load_config
    from clv_models.evaluation import evaluation
    from clv_models.models import training

    assert "bgnbd_gg" in training.MODEL_NAMES and "bgnbd_gg" not in training.LEARNED_MODELS
    assert "bgnbd_gg" in evaluation.REFERENCE_MODELS
    cfg = load_config(None, {"horizon_days": 120})
    model = training.build_models(cfg)["bgnbd_gg"]
    assert isinstance(model, BGNBDGammaGammaCLV) and model.horizon_days == 120


if __name__ == "__main__":  # regenerate the fixture (see the module docstring)
    source = sys.argv[1]
    print("# Calibration summary of the CDNOW 1/10 sample (2,357 customers), 1997-01-01..09-30,")
    print("# same-day purchases merged; days. Made by tests/test_btyd.py from CDNOW_sample.txt of")
    print("# the lifetimes 0.11.3 wheel (MIT licence, (c) 2015 Cameron Davidson-Pilon); the data")
    print("# are Fader & Hardie's CDNOW sample (brucehardie.com).")
    print("# x: repeat purchase days; t_x, T: first purchase to last / to 1997-09-30; zbar: mean")
    print("# value of the repeat days.")
    print(cdnow_calibration_summary(source).to_csv(index=False), end="")
