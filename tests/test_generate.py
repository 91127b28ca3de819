import hashlib

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from clv_models.ingest import generate
from clv_models.ingest.generate import RAW_TABLES, SCHEMAS, generate_shop
from tests.conftest import small_config

REQUIRED = {
    "orders": ["order_id", "customer_id", "ordered_at", "order_total"],
    "page_views": ["viewed_at"],
    "returns": ["return_id", "customer_id", "returned_at", "refund_amount"],
    "customers": ["customer_id"],
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    cfg = small_config(tmp_path_factory.mktemp("gen"), customers=3_000)
    summary = generate_shop(cfg)
    return cfg, summary


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sql(cfg, query):
    con = duckdb.connect()
    for t in RAW_TABLES:
        con.execute(f"create view {t} as select * from read_parquet('{cfg.raw_dir / t}.parquet')")
    for t in ("customer_params", "oracle"):
        con.execute(f"create view {t} as select * from read_parquet('{cfg.truth_dir / t}.parquet')")
    return con.execute(query).fetchall()


def test_raw_contract_columns_and_required_values(shop):
    cfg, summary = shop
    for table in RAW_TABLES:
        schema = pq.read_schema(cfg.raw_dir / f"{table}.parquet")
        assert schema.names == SCHEMAS[table].names
        for col in REQUIRED[table]:
            nulls = _sql(cfg, f"select count(*) from {table} where {col} is null")[0][0]
            assert nulls == 0, f"{table}.{col} has nulls"
    assert summary.rows["customers"] == 3_000
    # about 10 orders and 50 page views per customer, as sized for the 1M-customer benchmark
    assert 6 < summary.rows["orders"] / 3_000 < 14
    assert 30 < summary.rows["page_views"] / 3_000 < 70
    ids = _sql(cfg, "select count(distinct order_id), count(*) from orders")[0]
    assert ids[0] == ids[1]


def test_same_seed_same_shop_other_seed_other_shop(tmp_path):
    a = small_config(tmp_path / "a", customers=300)
    b = small_config(tmp_path / "b", customers=300)
    c = small_config(tmp_path / "c", customers=300, **{"shop.seed": 12})
    for cfg in (a, b, c):
        generate_shop(cfg)
    for table in RAW_TABLES:
        assert _digest(a.raw_dir / f"{table}.parquet") == _digest(b.raw_dir / f"{table}.parquet")
    assert _digest(a.raw_dir / "orders.parquet") != _digest(c.raw_dir / "orders.parquet")


def test_chunked_generation_keeps_ids_unique(tmp_path, monkeypatch):
    monkeypatch.setattr(generate, "CHUNK_SIZE", 128)
    cfg = small_config(tmp_path, customers=500)
    summary = generate_shop(cfg)
    got = _sql(cfg, "select count(distinct customer_id), count(*) from customers")[0]
    assert got == (500, 500)
    orders = _sql(cfg, "select count(distinct order_id), count(*) from orders")[0]
    assert orders[0] == orders[1] == summary.rows["orders"]
    sessions = _sql(cfg, "select count(distinct session_id) from page_views")[0][0]
    assert sessions > 500


def test_latent_parameters_drive_behaviour(shop):
    cfg, _ = shop
    # Nobody orders after dropping out; the first order is at acquisition.
    late = _sql(cfg, """select count(*) from orders o join customer_params p using (customer_id)
                        where o.ordered_at > p.dropout_at + interval 1 second""")[0][0]
    assert late == 0
    first = _sql(cfg, """select max(abs(epoch(p.acquired_at) - epoch(f.first_at))) from
                         (select customer_id, min(ordered_at) first_at from orders group by 1) f
                         join customer_params p using (customer_id)""")[0][0]
    assert first < 1.0
    # A higher purchase rate means more orders per active day.
    corr = _sql(cfg, """with active as (
                            select customer_id, purchase_rate_per_day as rate, date_diff('day',
                              acquired_at, least(dropout_at, timestamptz '2026-01-01')) as days
                            from customer_params)
                        select corr(a.rate, (o.n - 1) / a.days)
                        from active a join (select customer_id, count(*) n from orders
                        group by 1) o using (customer_id) where a.days > 180""")[0][0]
    assert corr > 0.5
    # Refunds never exceed the order and come after it.
    bad = _sql(cfg, """select count(*) from returns r join orders o using (order_id)
                       where r.refund_amount > o.order_total or r.returned_at <= o.ordered_at""")
    assert bad[0][0] == 0
    # Spend level drives order totals.
    corr = _sql(cfg, """select corr(p.mean_order_value, o.aov) from customer_params p join
                        (select customer_id, avg(order_total) aov from orders group by 1) o
                        using (customer_id)""")[0][0]
    assert corr > 0.5


def test_views_cluster_before_purchases(shop):
    cfg, _ = shop
    with_view = _sql(cfg, """
        select avg(case when exists (
            select 1 from page_views v where v.customer_id = o.customer_id
              and v.viewed_at < o.ordered_at
              and v.viewed_at >= o.ordered_at - interval 1 hour) then 1 else 0 end)
        from orders o""")[0][0]
    assert with_view > 0.95
    anonymous = _sql(cfg, "select avg((customer_id is null)::int) from page_views")[0][0]
    assert 0.02 < anonymous < 0.15


def test_weekly_and_yearly_seasonality(shop):
    cfg, _ = shop
    by_month = dict(_sql(cfg, "select month(ordered_at), count(*) from orders "
                              "where year(ordered_at) = 2025 group by 1"))
    assert by_month[11] + by_month[12] > by_month[5] + by_month[6]
    by_dow = dict(_sql(cfg, "select isodow(ordered_at), count(*) from orders group by 1"))
    assert by_dow[6] > by_dow[2]


def test_oracle_is_calibrated_against_realised_revenue(shop):
    cfg, _ = shop
    as_of, h = "2025-01-01", cfg.horizon_days
    realised = dict(_sql(cfg, f"""
        with o as (select customer_id, sum(order_total) g from orders
                   where ordered_at >= timestamptz '{as_of}'
                     and ordered_at < timestamptz '{as_of}' + interval {h} day group by 1),
             r as (select customer_id, sum(refund_amount) f from returns
                   where returned_at >= timestamptz '{as_of}'
                     and returned_at < timestamptz '{as_of}' + interval {h} day group by 1)
        select 'net', sum(greatest(coalesce(g, 0) - coalesce(f, 0), 0))
        from oracle left join o using (customer_id) left join r using (customer_id)
        where as_of_date = date '{as_of}'
        union all
        select 'buyers', avg((o.g is not null)::int)
        from oracle left join o using (customer_id) where as_of_date = date '{as_of}'
    """))
    predicted = dict(_sql(cfg, f"""select 'net', sum(expected_net_revenue) from oracle
                                   where as_of_date = date '{as_of}' union all
                                   select 'buyers', avg(p_purchase) from oracle
                                   where as_of_date = date '{as_of}'"""))
    assert 0.85 < predicted["net"] / realised["net"] < 1.15
    assert abs(predicted["buyers"] - realised["buyers"]) < 0.04
    n = _sql(cfg, f"select count(*), count(distinct customer_id) from oracle "
                  f"where as_of_date = date '{as_of}'")[0]
    assert n[0] == n[1] > 0
    assert np.isfinite(_sql(cfg, "select max(expected_net_revenue) from oracle")[0][0])
