"""Real exports often have only orders: the whole chain runs without the optional tables."""

import duckdb
from rich.console import Console

from clv_models.generate import generate_shop
from clv_models.pipeline import Pipeline
from tests.conftest import small_config


def test_orders_only_shop_runs_end_to_end(tmp_path):
    cfg = small_config(tmp_path, customers=1_500, **{"deep.epochs": 5})
    generate_shop(cfg)
    (cfg.raw_dir / "page_views.parquet").unlink()
    (cfg.raw_dir / "returns.parquet").unlink()
    (cfg.raw_dir / "customers.parquet").write_bytes(b"")  # empty file: same as absent
    pipeline = Pipeline(cfg, console=Console(width=140, record=True))
    pipeline.run(generate=False)
    with duckdb.connect(str(cfg.resolved().warehouse_path), read_only=True) as con:
        refunds = con.execute("select sum(refund_amount) from customer_rfm").fetchone()[0]
        scored = con.execute("select count(distinct customer_id) from clv_scores").fetchone()[0]
        reconciled = con.execute("select count(*) from stg_raw__returns").fetchone()[0]
    assert refunds == 0
    assert reconciled == 0
    assert scored == 1_500
    assert pipeline.report.metric("xgboost", "normalized_gini") > 0
