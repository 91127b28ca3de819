"""The Redis online store for real: a redis-server started on a free loopback port, the
pipeline's features materialized into it, reads equal to SQLite's, `clv serve` and the push
path on Redis.

Needs the `redis-server` binary (Debian package redis-server). Without it these tests are
skipped, unless CLV_REQUIRE_REDIS=1 (set by .ci/run, which installs the package): then they
fail, so CI can never pass without having run them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import pandas as pd
import pytest

from clv_models.bench.serving import redis_server, store_data_dir
from clv_models.core.config import ConfigError, OnlineStoreConfig, load_config
from clv_models.evaluation import champion
from clv_models.features import live
from clv_models.features import store as features
from tests.conftest import REPO as PROJECT_ROOT
from tests.test_serving import (
    TOKEN,
    assert_lookup_equals_feast,
    free_port,
    request,
    same,
    scored,
    server,
)

pytestmark = pytest.mark.e2e  # dbt builds, Feast, servers or the whole chain


def test_redis_url_becomes_feast_connection_string(tmp_path):
    cfg = load_config(None, {"data_dir": tmp_path, "online_store.type": "redis",
                             "online_store.redis_url": "rediss://:s3cret@cache:6380/2"})
    block = json.loads(cfg.env()["CLV_ONLINE_STORE"])
    assert block == {"type": "redis", "skip_dedup": True,
                     "connection_string": "cache:6380,db=2,password=s3cret,ssl=true"}
    assert OnlineStoreConfig("redis", "10.0.0.1:6379,db=1").feast_config(tmp_path) == {
        "type": "redis", "connection_string": "10.0.0.1:6379,db=1", "skip_dedup": True}
    with pytest.raises(ConfigError, match="online_store.type"):
        load_config(None, {"online_store.type": "postgres"})
    with pytest.raises(ConfigError, match="database must be a number"):
        load_config(None, {"online_store.type": "redis", "online_store.redis_url": "redis://h/x"})


def test_feature_store_yaml_takes_either_store(tmp_path):
    from feast.repo_config import load_repo_config

    repo = PROJECT_ROOT / "feature_repo"
    for store, kind in [(OnlineStoreConfig(), "SqliteOnlineStoreConfig"),
                        (OnlineStoreConfig("redis", "redis://127.0.0.1:6390/3"),
                         "RedisOnlineStoreConfig")]:
        cfg = load_config(None, {"data_dir": tmp_path})
        cfg.online_store = store
        old = dict(os.environ)
        try:
            os.environ.update(cfg.env())
            config = load_repo_config(repo, repo / "feature_store.yaml")
        finally:
            os.environ.clear()
            os.environ.update(old)
        assert type(config.online_store).__name__ == kind
    assert config.online_store.connection_string == "127.0.0.1:6390,db=3"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """A real redis-server on a free loopback port, no persistence, stopped afterwards."""
    if shutil.which("redis-server") is None:
        message = ("redis-server is not installed (Debian: apt-get install redis-server); "
                   ".ci/run installs it")
        if os.environ.get("CLV_REQUIRE_REDIS") == "1":
            pytest.fail(f"CLV_REQUIRE_REDIS=1 but {message}")
        pytest.skip(message)
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="module")
def redis_cfg(pipeline_run, redis_url, tmp_path_factory):
    """The pipeline run's data with its own Feast registry and a Redis online store,
    materialized from scratch."""
    cfg = store_data_dir(pipeline_run.cfg, tmp_path_factory.mktemp("redis-data"),
                         OnlineStoreConfig("redis", redis_url))
    features.apply(cfg)
    result = features.materialize(cfg, full_refresh=True)
    return cfg, result


def test_materialized_redis_reads_equal_sqlite(redis_cfg, pipeline_run):
    cfg, result = redis_cfg
    sqlite_cfg = pipeline_run.cfg
    assert features.feature_store(cfg).config.online_store.type == "redis"
    expected = features.online_customer_count(sqlite_cfg)
    assert result.online_rows == expected > 0
    assert set(result.seconds) == set(result.intervals)
    offline = pd.read_parquet(sqlite_cfg.features_dir / "customer_rfm.parquet")
    ids = sorted(offline.loc[offline["as_of_date"] == offline["as_of_date"].max(),
                             "customer_id"])[::40][:100]
    ids.append("NO_SUCH_CUSTOMER")
    for service in ("clv_v1", "clv_v2"):
        on_sqlite = features.online_features(sqlite_cfg, ids, service=service)
        on_redis = features.online_features(cfg, ids, service=service)
        # Same columns; their order in Feast's answer may differ between stores (models
        # select their features by name).
        assert sorted(on_redis.columns) == sorted(on_sqlite.columns)
        for column in on_sqlite.columns:
            for a, b in zip(on_sqlite[column], on_redis[column], strict=True):
                a = None if not isinstance(a, (list, str)) and pd.isna(a) else a
                b = None if not isinstance(b, (list, str)) and pd.isna(b) else b
                assert same(a, b), (service, column, a, b)
    # An incremental run keeps the count; emptying clears this project's keys only.
    assert features.materialize(cfg).online_rows == expected
    features.empty_online_store(cfg)
    assert features.online_customer_count(cfg) == 0
    assert features.online_customer_count(sqlite_cfg) == expected  # SQLite untouched
    assert features.materialize(cfg, full_refresh=True).online_rows == expected



def test_a_full_refresh_prunes_only_this_projects_stale_customers_on_redis(redis_cfg):
    """The prune step of a full refresh deletes the key of a customer no source has (the
    keys built as bytes must equal Feast's), and nothing else: not the kept customers, not
    another project's key."""
    from feast.infra.online_stores.helpers import _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    cfg, result = redis_cfg
    store = features.feature_store(cfg)
    client, _ = features._redis_keys(store)

    def key(project: str, customer: str) -> bytes:
        return _redis_key(project, EntityKey(join_keys=[features.ENTITY_KEY],
                                             entity_values=[Value(string_val=customer)]), 3)

    gone, other = key(store.project, "GONE'; drop"), key("other_project", "GONE'; drop")
    client.hset(gone, "_ts:customer_rfm", b"x")
    client.hset(other, "_ts:customer_rfm", b"x")
    assert features.online_customer_count(cfg) == result.online_rows + 1
    assert features.prune_online_store(cfg, store) == 1
    assert not client.exists(gone) and client.exists(other)
    assert features.online_customer_count(cfg) == result.online_rows
    client.delete(other)


def test_the_prepared_lookup_reads_what_feast_reads_on_redis(redis_cfg):
    cfg, _ = redis_cfg  # a row missing on Redis comes back with the epoch as its timestamp
    _, entities = features.scoring_entities(cfg)
    assert_lookup_equals_feast(cfg, [*entities["customer_id"][::97], "NO_SUCH_CUSTOMER"])


def test_bulk_load_writes_the_bytes_feast_writes(redis_cfg, redis_url, tmp_path_factory):
    """The bulk loader (clv_models.features.online_load, the default on Redis) against Feast's own
    Redis writer: every key and every hash field identical, byte for byte."""
    import redis

    cfg, result = redis_cfg
    assert result.writer == "bulk"
    feast_url = redis_url.rsplit("/", 1)[0] + "/1"
    feast_cfg = store_data_dir(cfg, tmp_path_factory.mktemp("redis-feast-writer"),
                               OnlineStoreConfig("redis", feast_url, bulk_load=False))
    features.apply(feast_cfg)
    assert features.materialize(feast_cfg, full_refresh=True).writer == "feast"
    features.materialize(cfg, full_refresh=True)  # a test before may have pushed events
    bulk, feast = redis.Redis.from_url(redis_url), redis.Redis.from_url(feast_url)
    keys = sorted(bulk.scan_iter(count=10_000))
    assert keys == sorted(feast.scan_iter(count=10_000))
    assert len(keys) == result.online_rows > 0
    for key in keys:
        assert bulk.hgetall(key) == feast.hgetall(key), key
    # The registry records the interval as Feast's own materialization does (the bulk store
    # was materialized more often: compare the latest interval).
    intervals = {fv.name: fv.materialization_intervals[-1]
                 for fv in features.feature_store(cfg).list_feature_views()}
    assert intervals == {fv.name: fv.materialization_intervals[-1]
                         for fv in features.feature_store(feast_cfg).list_feature_views()}
    feast.flushdb()


def test_clv_serve_and_the_push_path_on_redis(redis_cfg, pipeline_run, tmp_path):
    cfg, _ = redis_cfg
    chosen = champion.load(pipeline_run.cfg).champion  # what `clv serve` serves by default
    expected = scored(pipeline_run.cfg, model=chosen, n=3)
    port = free_port()
    env = {**os.environ, "CLV_API_TOKEN": TOKEN}
    cmd = [sys.executable, "-m", "clv_models.cli", "--data-dir", str(cfg.data_dir),
           "--set", "online_store.type=redis",
           "--set", f"online_store.redis_url={cfg.online_store.redis_url}",
           "serve", "--port", str(port), "--log-level", "warning"]
    with server(cmd, port, tmp_path / "serve.log", PROJECT_ROOT, env) as base:
        status, health = request(base + "/health")
        assert status == 200, health
        assert health["online_store"]["ok"] and health["online_store"]["type"] == "redis"
        assert health["model_name"] == chosen
        for _, row in expected.iterrows():  # the batch's values, as on SQLite
            status, got = request(f"{base}/v1/clv/{row['customer_id']}", token=TOKEN)
            assert status == 200, got
            assert got["predicted_clv"] == pytest.approx(row["predicted_clv"], rel=1e-5)
            assert got["clv_decile"] == row["clv_decile"] and got["segment"] == row["segment"]
        status, body = request(f"{base}/v1/clv", {"customer_ids": [*expected["customer_id"],
                                                                   "NO_SUCH_CUSTOMER"]},
                               token=TOKEN)
        assert status == 200 and len(body["results"]) == 3
        assert body["not_found"] == ["NO_SUCH_CUSTOMER"]

        # The push path writes to Redis; the endpoint predicts from the new row at once.
        cid = expected["customer_id"][1]
        store = features.feature_store(cfg)
        names = live.view_features(store)
        _, original = live.read_rows(store, cid, names)
        _, before = request(f"{base}/v1/clv/{cid}", token=TOKEN)
        result = live.push_event(cfg, live.LiveEvent(cid, "order", 300.0), store=store,
                                 names=names)
        assert result.after["order_count"] == result.before["order_count"] + 1
        _, rows = live.read_rows(store, cid, names)  # a row at the same timestamp is written
        assert rows["customer_rfm"]["order_count"] == result.after["order_count"]
        assert rows["customer_rfm"]["days_since_last_order"] == 1
        sqlite_rows = live.read_rows(features.feature_store(pipeline_run.cfg), cid,
                                     names)[1]  # the SQLite store of the same data ...
        assert all(same(sqlite_rows[v][k], original[v][k])  # ... is untouched
                   for v in original for k in original[v])
        _, after = request(f"{base}/v1/clv/{cid}", token=TOKEN)
        assert after["predicted_clv"] != pytest.approx(before["predicted_clv"])
    # The next materialization reloads the latest as-of date over the live row, as on SQLite.
    features.materialize(cfg)
    _, rows = live.read_rows(store, cid, names)
    assert all(same(rows[v][k], original[v][k]) for v in original for k in original[v])
