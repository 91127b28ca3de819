"""Estimator behaviour on small synthetic arrays (no warehouse needed)."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch

from clv_models.core.config import DeepConfig, XGBoostConfig
from clv_models.core.errors import ConfigError
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
    from clv_models.core.metrics import normalized_gini

    assert normalized_gini(yv, model.predict(Xv).predicted_clv) > 0.2


def test_device_selection():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
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


# -- the deep model's categorical and sequence inputs ------------------------------------------
def sequence_frame(n=3_000, seed=0, weeks=52):
    """Noise as numeric and categorical features; the signal only in the weekly sequences:
    customers who bought in the last 6 weeks (week 0 = the most recent) buy again far more
    often, although their 52-week totals look alike."""
    rng = np.random.default_rng(seed)
    active = rng.random((n, weeks)) < rng.gamma(1, 0.06, (n, 1))
    revenue = np.where(active, rng.gamma(2, 30, (n, weeks)), 0).astype(np.float32)
    views = (revenue * 0.1 + rng.poisson(1, (n, weeks))).astype(np.float32)
    recent = (revenue[:, :6] > 0).any(axis=1)
    buys = rng.random(n) < np.where(recent, 0.8, 0.1)
    y = np.where(buys, rng.lognormal(4, 0.5, n), 0.0)
    X = pd.DataFrame({
        "noise": rng.normal(size=n), "net_revenue": rng.gamma(2, 50, n),
        "country": rng.choice(["US", "DE", "FR"], n),
        "weekly_net_revenue_52w": list(revenue),
        "weekly_views_52w": [list(v) for v in views],  # lists, as Feast's online store gives
    })
    return X, y


SMALL = DeepConfig(hidden=[32], epochs=8, batch_size=256, patience=3, conv_channels=8,
                   sequence_dim=16, embedding_dim=4, device="cpu")
TABULAR = ["noise", "net_revenue", "country"]


@pytest.fixture(scope="module")
def seq_data():
    X, y = sequence_frame()
    return X[:2_000], y[:2_000], X[2_000:].reset_index(drop=True), y[2_000:]


@pytest.fixture(scope="module")
def seq_model(seq_data):
    X, y, Xv, yv = seq_data
    return DeepCLV(SMALL, seed=0).fit(X, y, Xv, yv)


def test_deep_model_finds_a_signal_that_is_only_in_the_sequences(seq_data, seq_model):
    from clv_models.core.metrics import normalized_gini

    X, y, Xv, yv = seq_data
    assert seq_model.metadata["sequence_features"] == ["weekly_net_revenue_52w",
                                                       "weekly_views_52w"]
    assert seq_model.metadata["categorical_features"] == ["country"]
    tabular = DeepCLV(SMALL, seed=0).fit(X[TABULAR], y, Xv[TABULAR], yv)
    with_seq = normalized_gini(yv, seq_model.predict(Xv).predicted_clv)
    without = normalized_gini(yv, tabular.predict(Xv[TABULAR]).predicted_clv)
    assert with_seq > 0.4 and with_seq > without + 0.3
    importance = seq_model.metadata["feature_importance"]
    assert set(importance) == set(X.columns) and min(importance.values()) >= 0
    assert max(importance, key=importance.get) == "weekly_net_revenue_52w"


def test_deep_model_with_sequences_is_reproducible_on_cpu(seq_data):
    X, y, Xv, yv = seq_data
    params = dataclasses.replace(SMALL, epochs=2)
    a = DeepCLV(params, seed=5).fit(X, y, Xv, yv).predict(Xv)
    b = DeepCLV(params, seed=5).fit(X, y, Xv, yv).predict(Xv)
    np.testing.assert_array_equal(a.predicted_clv, b.predicted_clv)
    np.testing.assert_array_equal(a.clv_p90, b.clv_p90)


def test_deep_save_load_roundtrip_keeps_vocabularies_and_predictions(seq_data, seq_model,
                                                                    tmp_path):
    _, _, Xv, _ = seq_data
    version = seq_model.save(tmp_path / "deep", extra={"feature_service": "clv_v2"})
    again = load_model(tmp_path / "deep")
    assert again.version == version
    meta = json.loads((tmp_path / "deep" / "metadata.json").read_text())
    assert meta["feature_service"] == "clv_v2"
    assert {"torch_version", "python_version", "validation_metrics",
            "feature_importance"} <= set(meta)
    norm = json.loads((tmp_path / "deep" / "normalisation.json").read_text())
    assert set(norm["vocabularies"]["country"]["values"]) == {"US", "DE", "FR"}
    a, b = seq_model.predict(Xv, explain=True), again.predict(Xv, explain=True)
    np.testing.assert_allclose(again.predict(Xv).predicted_clv, a.predicted_clv, rtol=1e-6)
    np.testing.assert_allclose(b.clv_p10, a.clv_p10, rtol=1e-6)
    assert b.top_drivers == a.top_drivers
    # Columns may come in any order and with extras; a missing one is named.
    shuffled = Xv[list(reversed(Xv.columns))].assign(extra=1)
    np.testing.assert_allclose(again.predict(shuffled).predicted_clv, a.predicted_clv,
                               rtol=1e-6)
    with pytest.raises(KeyError, match="weekly_views_52w"):
        again.predict(Xv.drop(columns=["weekly_views_52w"]))


def test_unknown_and_missing_categories_share_the_reserved_index(seq_data, seq_model):
    from clv_models.models.deep.preprocessing import encode as _encode

    vocab = seq_model._vocab["country"]
    assert vocab["unknown_count"] == 0  # every training country was frequent
    codes = _encode(pd.Series(["US", "ZZ", None, np.nan, "DE"]), vocab["values"])
    assert codes[0] > 0 and codes[4] > 0 and list(codes[1:4]) == [0, 0, 0]
    _, _, Xv, _ = seq_data
    rows = pd.concat([Xv.head(1)] * 3, ignore_index=True)
    rows["country"] = ["ZZ", None, "US"]
    pred = seq_model.predict(rows)
    assert np.isfinite(pred.predicted_clv).all()
    assert pred.predicted_clv[0] == pred.predicted_clv[1]  # unseen == missing
    # The reserved index was never trained on: it holds the mean embedding, not a random one.
    emb = seq_model.net.embeddings[0].weight.detach()
    counts = torch.tensor(vocab["counts"], dtype=torch.float32)
    torch.testing.assert_close(emb[0], (counts / counts.sum()) @ emb[1:])
    # Missing sequences are zeros (no activity), not an error.
    rows["weekly_views_52w"] = [None, None, None]
    assert np.isfinite(seq_model.predict(rows).predicted_clv).all()


def test_integrated_gradients_are_complete(seq_data, seq_model):
    _, _, Xv, _ = seq_data
    rows = Xv.head(20)
    attr = seq_model.attributions(rows, steps=256)
    assert attr.feature_names == list(rows.columns)
    predicted = seq_model.predict(rows).predicted_clv
    np.testing.assert_allclose(attr.values.sum(axis=1) + attr.baseline, predicted,
                               rtol=1e-2, atol=1e-2 * predicted.mean())
    drivers = json.loads(seq_model.predict(rows, explain=True).top_drivers[0])
    assert len(drivers) == 3 and {"feature", "contribution"} <= set(drivers[0])
    assert {d["feature"] for d in drivers} <= set(rows.columns)


def test_deep_model_without_sequences_or_categoricals_still_works(data):
    X, y, Xv, yv = data
    model = DeepCLV(dataclasses.replace(SMALL, epochs=2), seed=0).fit(X, y, Xv, yv)
    assert model.metadata["sequence_features"] == [] == model.metadata["categorical_features"]
    attr = model.attributions(Xv.head(5), steps=128)
    np.testing.assert_allclose(attr.values.sum(axis=1) + attr.baseline,
                               model.predict(Xv.head(5)).predicted_clv, rtol=2e-2)


def test_a_categorical_missing_in_every_training_row_maps_to_unknown(data):
    # No customers table: country is null in every row; values that appear later are unknown.
    X, y, Xv, yv = data
    model = DeepCLV(dataclasses.replace(SMALL, epochs=1), seed=0).fit(
        X.assign(country=None), y, Xv.assign(country=None), yv)
    assert model.metadata["categorical_features"] == ["country"]
    a = model.predict(Xv.assign(country=None)).predicted_clv
    b = model.predict(Xv.assign(country="US")).predicted_clv
    np.testing.assert_array_equal(a, b)


def test_seed_ensemble_is_the_mixture_of_its_members(seq_data, seq_model, tmp_path):
    from clv_models.models.ziln import ziln_mean

    X, y, Xv, yv = seq_data
    pair = DeepCLV(dataclasses.replace(SMALL, ensemble=2), seed=0).fit(X, y, Xv, yv)
    assert len(pair.nets) == 2 and [m["seed"] for m in pair.metadata["members"]] == [0, 1]
    # The first member is the single network of the same seed, bit for bit.
    single = seq_model.raw_outputs(Xv)[:, :, 0]
    np.testing.assert_array_equal(pair.raw_outputs(Xv)[:, :, 0], single)
    logit, mu, sigma = pair.raw_outputs(Xv).transpose(1, 0, 2)
    pred = pair.predict(Xv, explain=True)
    np.testing.assert_allclose(pred.predicted_clv, ziln_mean(logit, mu, sigma).mean(axis=1))
    np.testing.assert_allclose(pred.p_purchase, (1 / (1 + np.exp(-logit))).mean(axis=1))
    assert np.all(pred.clv_p10 <= pred.clv_p50) and np.all(pred.clv_p50 <= pred.clv_p90)
    # Completeness holds for the mixture's mean too (averaged attributions).
    rows = Xv.head(20)
    attr = pair.attributions(rows, steps=256)
    np.testing.assert_allclose(attr.values.sum(axis=1) + attr.baseline,
                               pair.predict(rows).predicted_clv, rtol=1e-2,
                               atol=1e-2 * pred.predicted_clv.mean())
    pair.save(tmp_path / "pair")
    again = load_model(tmp_path / "pair")
    assert len(again.nets) == 2
    np.testing.assert_allclose(again.predict(Xv).predicted_clv, pred.predicted_clv, rtol=1e-6)
    np.testing.assert_allclose(again.predict(Xv).clv_p90, pred.clv_p90, rtol=1e-6)


def test_mixture_quantile_inverts_the_mixture_distribution():
    from scipy import special

    from clv_models.models.ziln import ziln_mixture_quantile, ziln_quantile

    rng = np.random.default_rng(0)
    logit, mu = rng.normal(0, 2, (500, 3)), rng.normal(3, 1, (500, 3))
    sigma = rng.uniform(0.2, 2.0, (500, 3))
    p = special.expit(logit)
    for q in (0.1, 0.5, 0.9):
        x = ziln_mixture_quantile(q, logit, mu, sigma)
        zero = (1 - p).mean(axis=1) >= q
        assert np.all(x[zero] == 0) and np.all(x[~zero] > 0)
        pos = ~zero
        cdf = ((1 - p[pos]) + p[pos] * special.ndtr((np.log(x[pos])[:, None] - mu[pos])
                                                     / sigma[pos])).mean(axis=1)
        np.testing.assert_allclose(cdf, q, atol=1e-9)
    one = ziln_mixture_quantile(0.5, logit[:, :1], mu[:, :1], sigma[:, :1])
    np.testing.assert_array_equal(one, ziln_quantile(0.5, logit[:, 0], mu[:, 0], sigma[:, 0]))
