"""Real exports often have only orders: the whole chain runs without the optional tables."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from rich.console import Console

from clv_models.cli import main as clv
from clv_models.ingest.generate import generate_shop
from clv_models.pipeline import Pipeline
from tests.conftest import small_config

pytestmark = pytest.mark.e2e  # dbt builds, Feast, servers or the whole chain


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


def test_dbt_by_hand_with_clv_env_on_an_orders_only_shop(tmp_path):
    """The documented recipe: `eval "$(clv env)"`, then `dbt build --vars "$CLV_DBT_VARS"` in
    warehouse/, on raw data with orders alone."""
    cfg = small_config(tmp_path / "data", customers=200)
    generate_shop(cfg)
    for table in ("page_views", "returns", "customers"):
        (cfg.raw_dir / f"{table}.parquet").unlink()
    out = CliRunner().invoke(clv, ["--data-dir", str(cfg.data_dir), "env"])
    assert out.exit_code == 0, out.output
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLV_", "DBT_"))}
    for line in out.output.splitlines():
        if line.startswith("export "):
            key, value = line.removeprefix("export ").split("=", 1)
            env[key] = shlex.split(value)[0]
    assert json.loads(env["CLV_DBT_VARS"])["raw_missing_tables"] == [
        "returns", "page_views", "customers"]
    dbt = Path(sys.executable).parent / "dbt"
    proc = subprocess.run([str(dbt), "build", "--profiles-dir", ".", "--vars",
                           env["CLV_DBT_VARS"], "--select", "staging"],
                          cwd=cfg.warehouse_dir, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    with duckdb.connect(str(cfg.resolved().warehouse_path), read_only=True) as con:
        assert con.execute("select count(*) from stg_raw__orders").fetchone()[0] > 0
        assert con.execute("select count(*) from stg_raw__returns").fetchone()[0] == 0
    assert (cfg.resolved().dbt_target_dir / "run_results.json").exists()  # not in warehouse/
