"""Feast on small shops of their own: the online store follows rebuilds, a failed full refresh
loses no customer, and stages out of order say what to run."""

import sqlite3

import duckdb
import pandas as pd
import pytest

from clv_models.core.config import Config
from clv_models.features import store as features
from clv_models.ingest.generate import generate_shop
from clv_models.models import training
from clv_models.warehouse import dbt as warehouse
from tests.conftest import small_config
from tests.harness import checksums

pytestmark = pytest.mark.e2e  # dbt builds and Feast


def online_matches_offline(cfg: Config) -> float:
    """Share of customers whose online order_count equals their latest offline row's."""
    offline = pd.read_parquet(cfg.features_dir / "customer_rfm.parquet")
    latest = offline[offline["as_of_date"] == offline["as_of_date"].max()]
    online = features.online_features(cfg, list(latest["customer_id"]))
    merged = latest.merge(online, on="customer_id", suffixes=("", "_online"))
    return float((merged["order_count"] == merged["order_count_online"]).mean())


def test_online_store_follows_a_rebuilt_shop(tmp_path):
    cfg = small_config(tmp_path, customers=400)
    generate_shop(cfg)
    warehouse.run_dbt(cfg, ["build"])
    assert not features.apply(cfg).skipped
    assert features.apply(cfg).skipped  # same definitions: no second apply, nothing printed
    first = features.materialize(cfg)
    assert first.online_rows == 400
    assert online_matches_offline(cfg) == 1.0
    # Same customers and as-of dates, other purchases: an incremental run must pick them up.
    generate_shop(small_config(tmp_path, customers=400, **{"shop.seed": 99}))
    warehouse.run_dbt(cfg, ["build"])  # a replaced shop: incremental models are rebuilt whole
    assert not (cfg.resolved().raw_dir / warehouse.REPLACED_MARKER).exists()
    with duckdb.connect(str(cfg.resolved().warehouse_path), read_only=True) as con:
        built = con.execute("select sum(view_count) from int_customer_views_aggregated").fetchone()
        raw = con.execute("select count(*) from read_parquet(?) where customer_id is not null",
                          [str(cfg.resolved().raw_dir / "page_views.parquet")]).fetchone()
    assert built == raw  # nothing of the first shop's page views is left
    again = features.materialize(cfg)
    assert again.intervals  # the latest as-of date is always reloaded
    assert online_matches_offline(cfg) == 1.0


def test_a_full_refresh_that_fails_midway_leaves_every_customer_and_prunes_when_done(
        tmp_path, monkeypatch):
    from feast import FeatureStore

    cfg = small_config(tmp_path, customers=300).resolved()
    generate_shop(cfg)
    warehouse.run_dbt(cfg, ["build"])
    features.apply(cfg)
    features.materialize(cfg)
    online_db = cfg.feast_dir / "online_store.db"
    with sqlite3.connect(online_db) as con:  # a customer the sources no longer have
        con.execute("insert into clv_customer_rfm select x'00', feature_name, value, "
                    "value_text, vector_value, event_ts, created_ts from clv_customer_rfm "
                    "limit 1")
    before = checksums.online_entity_checksums(cfg)
    calls = []
    real = FeatureStore.materialize

    def crash_after_one_view(self, *args, **kwargs):
        calls.append(kwargs["feature_views"])
        if len(calls) > 1:
            raise RuntimeError("crash")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(FeatureStore, "materialize", crash_after_one_view)
    with pytest.raises(RuntimeError, match="crash"):
        features.materialize(cfg, full_refresh=True)
    # Nothing was emptied first: every customer keeps a complete row in every view.
    assert checksums.online_entity_checksums(cfg) == before
    monkeypatch.undo()
    features.materialize(cfg, full_refresh=True)
    after = checksums.online_entity_checksums(cfg)
    assert [k for k in before if k not in after] == ["clv_customer_rfm/00"]
    assert features.online_customer_count(cfg) == 300


def test_stages_out_of_order_say_what_to_run(tmp_path):
    cfg = small_config(tmp_path, customers=100)
    with pytest.raises(FileNotFoundError, match="clv features"):
        features.materialize(cfg)
    with pytest.raises(FileNotFoundError, match="clv build"):
        training.load_training_set(cfg)
    generate_shop(cfg)
    warehouse.run_dbt(cfg, ["build"])
    with pytest.raises(FileNotFoundError, match="clv features"):
        training.load_training_set(cfg)
