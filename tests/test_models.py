"""Estimator behaviour on small synthetic arrays (no warehouse needed)."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from clv_models.config import DeepConfig, XGBoostConfig
from clv_models.models import DeepCLV, NaiveCLV, XGBoostCLV, load_model
from clv_models.models.deep import resolve_device


def synthetic(n=3_000, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "order_count": rng.poisson(3, n) + 1,
        "net_revenue": rng.gamma(2, 50, n),
        "t_days": rng.integers(30, 700, n),
        "days_since_last_order": rng.integers(1, 400, n),
    })
    rate = X["order_count"] / X["t_days"] * np.exp(-X["days_since_last_order"] / 200)
    buys = rng.random(n) < 1 - np.exp(-rate * 90)
    y = np.where(buys, rng.gamma(2, X["net_revenue"] / X["order_count"] / 2), 0.0)
    return X, y


@pytest.fixture(scope="module")
def data():
    X, y = synthetic()
    return X[:2_000], y[:2_000], X[2_000:], y[2_000:]


def test_fit_returns_self_and_predictions_are_sane(data):
    X, y, Xv, yv = data
    for model in (XGBoostCLV(XGBoostConfig(n_estimators=50), seed=1),
                  DeepCLV(DeepConfig(epochs=3, batch_size=256, device="cpu"), seed=1),
                  NaiveCLV(horizon_days=90)):
        assert model.fit(X, y, Xv, yv) is model
        pred = model.predict(Xv)
        assert pred.predicted_clv.shape == (len(Xv),)
        assert np.all(np.isfinite(pred.predicted_clv)) and np.all(pred.predicted_clv >= 0)
        assert np.all((pred.p_purchase >= 0) & (pred.p_purchase <= 1))


def test_deep_model_is_reproducible_for_a_seed_on_cpu(data):
    X, y, Xv, yv = data
    params = DeepConfig(epochs=3, batch_size=256, device="cpu")
    a = DeepCLV(params, seed=3).fit(X, y, Xv, yv).predict(Xv).predicted_clv
    b = DeepCLV(params, seed=3).fit(X, y, Xv, yv).predict(Xv).predicted_clv
    c = DeepCLV(params, seed=4).fit(X, y, Xv, yv).predict(Xv).predicted_clv
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_deep_model_learns_something(data):
    X, y, Xv, yv = data
    model = DeepCLV(DeepConfig(epochs=15, batch_size=256, device="cpu"), seed=0).fit(X, y, Xv, yv)
    history = model.metadata["val_loss_history"]
    assert min(history) < history[0]
    from clv_models.metrics import normalized_gini

    assert normalized_gini(yv, model.predict(Xv).predicted_clv) > 0.2


def test_device_selection():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            resolve_device("cuda")


def test_validation_set_is_required(data):
    X, y, _, _ = data
    with pytest.raises(ValueError, match="validation"):
        XGBoostCLV().fit(X, y)
    with pytest.raises(ValueError, match="validation"):
        DeepCLV().fit(X, y)


def test_missing_feature_column_is_named(data):
    X, y, Xv, yv = data
    model = XGBoostCLV(XGBoostConfig(n_estimators=5)).fit(X, y, Xv, yv)
    with pytest.raises(KeyError, match="t_days"):
        model.predict(Xv.drop(columns=["t_days"]))


def test_save_load_roundtrip_and_version_is_a_content_hash(data, tmp_path):
    X, y, Xv, yv = data
    model = DeepCLV(DeepConfig(epochs=2, batch_size=256, device="cpu"), seed=0).fit(X, y, Xv, yv)
    v1 = model.save(tmp_path / "a")
    v2 = model.save(tmp_path / "b")
    assert v1 == v2 == model.version
    again = load_model(tmp_path / "a")
    np.testing.assert_allclose(again.predict(Xv).clv_p90, model.predict(Xv).clv_p90)
    with pytest.raises(FileNotFoundError, match="clv train"):
        load_model(tmp_path / "missing")
    meta = json.loads((tmp_path / "a" / "metadata.json").read_text())
    meta["model_name"] = "evil"
    (tmp_path / "a" / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="unknown model_name"):
        load_model(tmp_path / "a")
