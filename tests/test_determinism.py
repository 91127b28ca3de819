"""Determinism and idempotency: the same input and seed give identical tables, models and
metrics on the CPU, and re-running a stage on unchanged input changes nothing.

"Identical" is :mod:`tests.harness.checksums`: every table and view of the warehouse, each scored
set (without ``scored_at`` and ``run_id``), the feature exports, the online store per feature
view, the saved models (weights and metadata but the training time), the metrics and the BI
copy, all compared exactly. Re-scoring without duplicates is tested in test_e2e.py.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import pytest

from clv_models.core.config import Config
from tests.conftest import clv_command, clv_environment, small_config
from tests.harness import checksums

pytestmark = pytest.mark.e2e  # dbt builds, Feast, servers or the whole chain


def clv(cfg: Config, *args: str) -> None:
    """Run a ``clv`` command on ``cfg``'s data directory in its own process (its own hash
    seed, threads and imports, like a user's second run)."""
    proc = subprocess.run(clv_command(cfg, *args), cwd=cfg.data_dir.parent,
                          env=clv_environment(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]


@pytest.fixture(scope="module")
def second_run(pipeline_run, tmp_path_factory) -> Config:
    """``clv run --skip-generate`` on a copy of the session run's raw input (and ground truth,
    for the oracle row of the metrics) in another data directory."""
    first = pipeline_run.cfg
    cfg = small_config(tmp_path_factory.mktemp("again") / "data",
                       customers=first.shop.customers).resolved()
    for folder in (first.raw_dir, first.truth_dir):
        shutil.copytree(folder, cfg.data_dir / folder.name)
    clv(cfg, "run", "--skip-generate")
    return cfg


def _plain(row: dict) -> dict:
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}


def test_the_same_input_and_seed_give_identical_tables_models_and_metrics(pipeline_run,
                                                                          second_run):
    first = pipeline_run.checksums  # taken right after the session run
    again = checksums.compute(second_run)
    assert set(first) == set(checksums.SECTIONS)
    assert all(first[s] for s in checksums.SECTIONS), "every section has items"
    assert checksums.differences(first, again) == []
    # The metrics themselves, exactly: same seed, same numbers.
    rows = json.loads((second_run.reports_dir / "evaluation.json").read_text())["rows"]
    assert rows == [_plain(r) for r in pipeline_run.report.rows]


def test_rebuilding_and_rematerializing_unchanged_input_changes_nothing(second_run):
    before = checksums.compute(second_run)
    clv(second_run, "build")  # dbt build (the incremental page-view model appends) + publish
    clv(second_run, "features")  # feast apply + incremental materialization
    assert checksums.differences(before, checksums.compute(second_run)) == []


def test_checksums_see_a_changed_value_a_missing_row_and_ignore_row_order(tmp_path):
    import duckdb

    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create table t as select range as id, range / 10.0::double as x, "
                    "now() as scored_at from range(100)")
    base = checksums.database_checksums(path)

    def after(sql: str) -> str:
        with duckdb.connect(str(path)) as con:
            con.execute(sql)
        return checksums.database_checksums(path)["t"]

    assert after("update t set scored_at = now() + interval 1 day") == base["t"]  # volatile
    assert after("create or replace table t as select * from t order by id desc") == base["t"]
    assert after("update t set x = x + 1e-12 where id = 5") != base["t"]
    assert after("delete from t where id = 5").startswith("99:")
