"""The dbt project on hand-made raw files: cutoffs, labels, cleaning and reconciliation.

Runs the real `dbt build` (models, data tests and dbt unit tests) on a few rows whose features
and labels are worked out by hand in the comments.
"""

import datetime as dt

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute
import pyarrow.parquet as pq
import pytest

from clv_models.core.errors import DataError
from clv_models.ingest.generate import SCHEMAS
from clv_models.warehouse import dbt as warehouse
from tests.conftest import small_config

T = dt.date(2024, 3, 1)  # the as-of date under test


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def write_parquet(raw_dir, name, rows):
    raw_dir.mkdir(parents=True, exist_ok=True)
    schema = SCHEMAS[name]
    cols = {f.name: [r.get(f.name) for r in rows] for f in schema}
    pq.write_table(pa.Table.from_pydict(cols, schema=schema), raw_dir / f"{name}.parquet")


def hand_made_shop(raw_dir):
    write_parquet(raw_dir, "orders", [
        {"order_id": "o1", "customer_id": "c1", "ordered_at": ts("2024-01-10 12:00"), "order_total": 100.0},
        {"order_id": "o1", "customer_id": "c1", "ordered_at": ts("2024-01-10 12:00"), "order_total": 100.0},  # exact duplicate
        {"order_id": "o4", "customer_id": "c1", "ordered_at": ts("2024-02-29 23:59:59.999"), "order_total": 20.0},
        {"order_id": "o2", "customer_id": "c1", "ordered_at": ts("2024-03-01 00:00:00"), "order_total": 50.0},  # exactly at t
        {"order_id": "o3", "customer_id": "c2", "ordered_at": ts("2024-02-15 08:00"), "order_total": 80.0},
        {"order_id": "o6", "customer_id": None, "ordered_at": ts("2024-02-01"), "order_total": 10.0},
        {"order_id": "o7", "customer_id": "c2", "ordered_at": ts("2024-02-02"), "order_total": -5.0},
        {"order_id": "o8", "customer_id": "c3", "ordered_at": ts("2024-12-31 10:00"), "order_total": 40.0},
        {"order_id": "o9", "customer_id": "c9", "ordered_at": ts("2024-02-01"), "order_total": 10.0},  # not in customers
        {"order_id": "o10", "customer_id": "c1", "ordered_at": ts("1970-01-01"), "order_total": 10.0},  # before data_start
    ])
    write_parquet(raw_dir, "returns", [
        # o3 (before t) is returned after t: features at t keep it, the label at t loses 30.
        {"return_id": "r1", "customer_id": "c2", "returned_at": ts("2024-03-05"), "refund_amount": 30.0, "order_id": "o3"},
        {"return_id": "r2", "customer_id": "c1", "returned_at": ts("2024-02-01"), "refund_amount": -1.0, "order_id": "o1"},
        {"return_id": "r3", "customer_id": "c1", "returned_at": ts("2024-01-20"), "refund_amount": 90.0, "order_id": "o1"},
        {"return_id": "r4", "customer_id": "c1", "returned_at": ts("2024-01-25"), "refund_amount": 20.0, "order_id": "o1"},  # 110 > 100
        {"return_id": "r5", "customer_id": "c1", "returned_at": ts("2024-01-26"), "refund_amount": 1.0, "order_id": "o404"},
        {"return_id": "r6", "customer_id": "c1", "returned_at": ts("2024-02-10"), "refund_amount": 5.0, "order_id": None},  # kept
        {"return_id": "r7", "customer_id": "c9", "returned_at": ts("2024-02-10"), "refund_amount": 5.0, "order_id": None},
    ])
    write_parquet(raw_dir, "page_views", [
        {"customer_id": "c1", "viewed_at": ts("2024-01-10 11:59"), "session_id": "s1", "page_type": "product"},
        {"customer_id": None, "viewed_at": ts("2024-01-11"), "session_id": "s2", "page_type": "home"},
        # after c2's only order before t; exactly at t (not counted at t)
        {"customer_id": "c2", "viewed_at": ts("2024-02-20 10:00"), "session_id": "s3", "page_type": "home"},
        {"customer_id": "c2", "viewed_at": ts("2024-02-20 10:05"), "session_id": "s3", "page_type": "product"},
        {"customer_id": "c2", "viewed_at": ts("2024-03-01 00:00"), "session_id": "s4", "page_type": "home"},
    ])
    write_parquet(raw_dir, "customers", [{"customer_id": c} for c in ("c1", "c2", "c3")])


@pytest.fixture(scope="module")
def hand_built_shop(tmp_path_factory):
    cfg = small_config(tmp_path_factory.mktemp("wh"), **{"as_of.start": "2024-02-01",
                                                          "horizon_days": 90})
    hand_made_shop(cfg.raw_dir)
    warehouse.run_dbt(cfg, ["build"])
    return cfg


def scalar(cfg, sql):
    with duckdb.connect(str(cfg.resolved().warehouse_path), read_only=True) as con:
        return con.execute(sql).fetchone()[0]


def rows(cfg, sql):
    with duckdb.connect(str(cfg.resolved().warehouse_path), read_only=True) as con:
        return con.execute(sql).df()


def test_features_use_only_events_before_the_cutoff(hand_built_shop):
    f = rows(hand_built_shop, f"select * from customer_rfm where as_of_date = '{T}' order by customer_id")
    assert list(f["customer_id"]) == ["c1", "c2"]  # c3's first order is after t
    c1 = f.iloc[0]
    # o1 (Jan 10, 100) and o4 (Feb 29 23:59:59.999, 20); o2 at exactly t is not included.
    assert c1["order_count"] == 2
    assert c1["gross_revenue"] == pytest.approx(120.0)
    assert c1["frequency"] == 1
    assert c1["recency_days"] == 50  # Jan 10 -> Feb 29
    assert c1["t_days"] == 51  # Jan 10 -> Mar 1
    assert c1["days_since_last_order"] == 1
    assert c1["monetary_value"] == pytest.approx(20.0)
    assert c1["first_order_value"] == pytest.approx(100.0)
    assert c1["refund_amount"] == pytest.approx(95.0)  # r3 + r6; r4 and r5 are quarantined
    c2 = f.iloc[1]
    assert c2["refund_amount"] == 0.0  # the return on Mar 5 is after t
    assert c2["net_revenue"] == pytest.approx(80.0)


def test_windows_sequences_and_engagement_at_the_cutoff(hand_built_shop):
    ts_ = rows(hand_built_shop, f"select * from customer_timeseries where as_of_date = '{T}' "
                      "order by customer_id")
    c1 = ts_.iloc[0]
    # c1 before t: order Jan 10 (100, with a product view), returns Jan 20 (90) and Feb 10 (5),
    # order Feb 29 (20); the order at exactly t is not included.
    assert (c1["orders_7d"], c1["gross_revenue_7d"]) == (1, pytest.approx(20.0))
    assert (c1["orders_30d"], c1["refunds_30d"]) == (1, pytest.approx(5.0))
    assert (c1["orders_90d"], c1["net_revenue_90d"]) == (2, pytest.approx(25.0))
    assert (c1["views_90d"], c1["sessions_90d"], c1["views_30d"]) == (1, 1, 0)
    # week 0 = [t - 7, t); Feb 10 is 20 days before t (week 2), Jan 20 41 (week 5), Jan 10 51
    expected = [0.0] * 52
    expected[0], expected[2], expected[5], expected[7] = 20.0, -5.0, -90.0, 100.0
    assert list(c1["weekly_net_revenue_52w"]) == pytest.approx(expected)
    views = [0.0] * 52
    views[7] = 1.0
    assert list(c1["weekly_views_52w"]) == views
    c2 = ts_.iloc[1]
    assert c2["views_7d"] == 0 and c2["views_30d"] == 2  # the view at exactly t is not counted
    assert list(c2["weekly_views_52w"])[1] == 2.0  # Feb 20 is 10 days before t

    eng = rows(hand_built_shop, f"select * from customer_engagement where as_of_date = '{T}' "
                      "order by customer_id").set_index("customer_id")
    assert eng.loc["c1", "view_count"] == 1 and eng.loc["c1", "views_since_last_order"] == 0
    assert eng.loc["c1", "days_since_last_view"] == 51
    assert eng.loc["c2", "view_count"] == 2 and eng.loc["c2", "session_count"] == 1
    assert eng.loc["c2", "product_view_count"] == 1
    assert eng.loc["c2", "views_since_last_order"] == 2  # both after the Feb 15 order
    assert eng.loc["c2", "days_since_last_view"] == 10


def test_labels_cover_the_horizon_from_the_cutoff(hand_built_shop):
    lab = rows(hand_built_shop, f"select * from customer_clv_labels where as_of_date = '{T}' "
                      "order by customer_id")
    assert list(lab["customer_id"]) == ["c1", "c2"]
    c1, c2 = lab.iloc[0], lab.iloc[1]
    assert c1["label_net_revenue"] == pytest.approx(50.0)  # o2 at exactly t
    assert c1["label_purchase_days"] == 1
    assert c2["label_refund_amount"] == pytest.approx(30.0)  # late return of an earlier order
    assert c2["label_net_revenue"] == 0.0  # floored at 0
    # Cutoffs whose window [t, t + 90) runs past the last event day (2024-12-31) have no
    # labels: 2024-10-01 + 90 days = 2024-12-30 is complete, 2024-11-01 is not.
    last = scalar(hand_built_shop, "select max(as_of_date) from customer_clv_labels")
    assert last == dt.date(2024, 10, 1)
    assert scalar(hand_built_shop, "select max(as_of_date) from customer_rfm") == dt.date(2025, 1, 1)


def test_bad_rows_are_quarantined_with_reasons_and_counts_reconcile(hand_built_shop):
    q = rows(hand_built_shop, "select source_table, record_id, reason from stg_raw__quarantined_rows "
                    "order by 1, 2")
    got = set(map(tuple, q.to_numpy()))
    assert got == {("orders", "o1", "duplicate order_id"), ("orders", "o6", "missing customer_id"),
                   ("orders", "o7", "negative order_total"), ("orders", "o9", "unknown customer_id"),
                   ("orders", "o10", "ordered_at before data_start"),
                   ("returns", "r2", "negative refund_amount"),
                   ("returns", "r4", "refund exceeds its order"),
                   ("returns", "r5", "unknown order_id"), ("returns", "r7", "unknown customer_id")}
    assert rows(hand_built_shop, "select count(*) n from stg_raw__orders")["n"][0] == 10 - 5
    assert rows(hand_built_shop, "select count(*) n from stg_raw__returns")["n"][0] == 7 - 4
    anonymous = rows(hand_built_shop, "select count(*) n from stg_raw__page_views where customer_id is null")
    assert anonymous["n"][0] == 1


@pytest.mark.e2e
def test_csv_input_with_offsets_and_garbage(tmp_path):
    cfg = small_config(tmp_path, **{"as_of.start": "2024-02-01", "horizon_days": 30})
    raw = cfg.raw_dir
    raw.mkdir(parents=True)
    (raw / "orders.csv").write_text(
        "order_id,customer_id,ordered_at,order_total\n"
        "a1,c1,2024-01-05T10:00:00+02:00,10.5\n"
        "a2,c1,2024-02-29T23:30:00-05:00,20\n"   # = 2024-03-01 04:30 UTC: after a Mar 1 cutoff
        "a3,c2,yesterday,5\n"
        "a4,c2,2024-01-07,abc\n"
        "a5,,2024-01-07,1\n"
        "a6,c2,2099-01-01T00:00:00Z,1\n"
        "a7,c2,2024-04-30,3\n")
    (raw / "returns.csv").write_text("return_id,customer_id,returned_at,refund_amount,order_id\n")
    (raw / "page_views.csv").write_text("customer_id,viewed_at,session_id,page_type\n")
    (raw / "customers.csv").write_text("customer_id,signup_at\nc1,2024-01-01\nc1,2023-12-01\nc2,\n")
    assert warehouse.raw_format(raw) == "csv"
    warehouse.run_dbt(cfg, ["build"])
    q = rows(cfg, "select record_id, reason from stg_raw__quarantined_rows order by 1")
    assert dict(q.to_numpy()) == {
        "a3": "missing or unparseable ordered_at", "a4": "missing or non-numeric order_total",
        "a5": "missing customer_id", "a6": "ordered_at in the future",
        "c1": "duplicate customer_id"}
    utc = rows(cfg, "select order_id, ordered_at from stg_raw__orders order by 1")
    assert str(utc["ordered_at"][0]) == "2024-01-05 08:00:00"
    assert str(utc["ordered_at"][1]) == "2024-03-01 04:30:00"
    feb = rows(cfg, "select order_count from customer_rfm where customer_id = 'c1' "
                    "and as_of_date = '2024-03-01'")
    assert feb["order_count"][0] == 1
    kept = rows(cfg, "select signup_at from stg_raw__customers where customer_id = 'c1'")
    assert str(kept["signup_at"][0]) == "2023-12-01 00:00:00"  # earliest copy wins


@pytest.mark.e2e
def test_dbt_failure_is_reported_with_its_lines(tmp_path):
    cfg = small_config(tmp_path)
    with pytest.raises(DataError, match="no raw data"):
        warehouse.run_dbt(cfg, ["build"])
    cfg.raw_dir.mkdir(parents=True)
    (cfg.raw_dir / "orders.csv").write_text("order_id,customer_id,ordered_at,order_total\n")
    # The marts alone, before anything upstream exists, fail in dbt: the error carries dbt's lines.
    with pytest.raises(warehouse.DbtError, match="(?s)failed.*Failure in model customer_rfm.*does not exist"):
        warehouse.run_dbt(cfg, ["build", "--select", "customer_rfm"])


@pytest.mark.e2e
def test_missing_required_column_is_named(tmp_path):
    cfg = small_config(tmp_path)
    raw = cfg.raw_dir
    raw.mkdir(parents=True)
    (raw / "orders.csv").write_text("order_id,customer_id,ordered_at\no1,c1,2024-01-01\n")
    for name, header in (("returns", "return_id,customer_id,returned_at,refund_amount"),
                         ("page_views", "customer_id,viewed_at"), ("customers", "customer_id")):
        (raw / f"{name}.csv").write_text(header + "\n")
    with pytest.raises(warehouse.DbtError, match="missing required column.*order_total"):
        warehouse.run_dbt(cfg, ["build"])


def test_user_vars_merge_over_the_configured_ones():
    args, user = warehouse._split_vars(["build", "--select", "marts", "--vars", "{horizon_days: 90}"])
    assert args == ["build", "--select", "marts"] and user == {"horizon_days": 90}
    args, user = warehouse._split_vars(["build", '--vars={"data_start": "2020-01-01"}'])
    assert args == ["build"] and user == {"data_start": "2020-01-01"}
    with pytest.raises(warehouse.DbtError, match="mapping"):
        warehouse._split_vars(["build", "--vars", "[1, 2]"])


@pytest.mark.e2e
def test_incremental_page_views_equal_a_full_refresh(tmp_path):
    from clv_models.ingest.generate import generate_shop

    cfg = small_config(tmp_path, customers=300)
    generate_shop(cfg)
    views_path = cfg.raw_dir / "page_views.parquet"
    views = pq.read_table(views_path)
    cut = pa.scalar(pd.Timestamp("2025-06-01", tz="UTC"), type=views.schema.field("viewed_at").type)
    early = views.filter(pa.compute.less(views["viewed_at"], cut))
    assert 0 < early.num_rows < views.num_rows
    pq.write_table(early, views_path)
    warehouse.run_dbt(cfg, ["build"])
    pq.write_table(views, views_path)  # the rest of the views arrive
    warehouse.run_dbt(cfg, ["build"])  # incremental
    queries = {
        "daily": "select * from int_customer_views_aggregated order by customer_id, view_date",
        "engagement": "select * from customer_engagement order by customer_id, as_of_date",
    }
    incremental = {k: rows(cfg, q) for k, q in queries.items()}
    warehouse.run_dbt(cfg, ["build", "--full-refresh"])
    for name, query in queries.items():
        pd.testing.assert_frame_equal(incremental[name], rows(cfg, query), check_like=False)
    assert incremental["daily"]["view_date"].max() > pd.Timestamp("2025-06-01")


def test_a_schedule_outside_the_data_names_the_data_range(tmp_path):
    cfg = small_config(tmp_path, **{"as_of.start": "2030-01-01"})
    cfg.raw_dir.mkdir(parents=True)
    (cfg.raw_dir / "orders.csv").write_text(
        "order_id,customer_id,ordered_at,order_total\no1,c1,2024-01-05,10\no2,c1,2024-03-09,5\n")
    with pytest.raises(DataError, match="2030-01-01.*2024-01-05 to 2024-03-09"):
        warehouse.project_vars(cfg)
    auto = small_config(tmp_path)  # as_of.start: auto
    assert warehouse.project_vars(auto)["as_of_start"] == "2024-02-01"  # short data: no warm-up
    assert warehouse.project_vars(auto)["raw_format"] == "csv"
    assert warehouse.project_vars(auto)["raw_missing_tables"] == ["returns", "page_views",
                                                                  "customers"]


def test_build_progress_counts_finished_nodes_only_forward():
    lines = [
        "12:00:01  1 of 1 START hook: clv.on-run-start.0 ..... [RUN]",
        "12:00:01  1 of 1 OK hook: clv.on-run-start.0 ....... [OK in 0.01s]",
        "12:00:02  1 of 3 START sql view model main.stg_raw__orders .... [RUN]",
        "12:00:02  2 of 3 START sql view model main.stg_raw__returns ... [RUN]",
        "12:00:03  2 of 3 OK created sql view model main.stg_raw__returns [OK in 0.1s]",
        "12:00:03  1 of 3 OK created sql view model main.stg_raw__orders . [OK in 0.2s]",
        "12:00:04  3 of 3 FAIL 1 not_null_stg_raw__orders_order_id ..... [FAIL 1 in 0.1s]",
        "12:00:05  Done. PASS=3 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=4",
    ]
    finished = [f for f in map(warehouse.finished_node, lines) if f]
    assert finished == [("OK", 3), ("OK", 3), ("FAIL", 3)]  # counted 1, 2, 3 of 3
