"""BI access while pipelines run: the published copy of the scores (clv_models/bi.py).

The concurrent test copies the session pipeline's data directory, starts real client processes
(tests/harness/bi_reader.py: DuckDB read-only, Parquet, SQLAlchemy with duckdb-engine) that query the
published scores in a loop, and meanwhile scores three as-of dates (one of them again, one
through the `clv score` command), runs a full ``dbt build`` and publishes after each. Every read
must succeed and see complete, consistent score sets. The other tests publish small hand-made
warehouses.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from rich.console import Console

from clv_models.cli import main as clv
from clv_models.evaluation import champion
from clv_models.features import store as features
from clv_models.models import NaiveCLV, training
from clv_models.pipeline import Pipeline
from clv_models.scoring import score as scoring
from clv_models.warehouse import bi, contract
from tests.conftest import small_config

pytestmark = pytest.mark.e2e  # dbt builds, Feast, servers or the whole chain

READER = Path(__file__).parent / "harness" / "bi_reader.py"
#: Seconds each reader waits between reads: three readers polling in a tight loop took the two
#: CI cores from the writers and stretched every phase; a read or so per second and reader
#: still covers every phase many times.
READER_PAUSE = 0.75
# duckdb-engine comes with the dev extra; without it, a second plain DuckDB reader.
MODES = ["duckdb", "parquet",
         "sqlalchemy" if importlib.util.find_spec("duckdb_engine") else "duckdb"]
SET_KEY = ["as_of_date", "model_name", "model_version"]


def warehouse_sql(cfg, sql):
    with duckdb.connect(str(cfg.warehouse_path), read_only=True) as con:
        return con.execute(sql).df()


@pytest.fixture(scope="module")
def concurrent_run(pipeline_run, tmp_path_factory):
    """Readers querying the published copy while scoring, dbt build and publishing run.

    Returns the pipeline on the copied data directory, the readers' summaries, the write
    phases as (name, start, end) and what each phase left in the warehouse.
    """
    base = tmp_path_factory.mktemp("bi")
    source = pipeline_run.cfg
    cfg = dataclasses.replace(source, data_dir=base / "data").resolved()
    # Not the Feast folder: its registry records the original online store's tables as
    # infrastructure, and `feast apply` on a copy would drop them from the original.
    shutil.copytree(source.data_dir, cfg.data_dir, symlinks=True,
                    ignore=shutil.ignore_patterns("reports", "feast"))
    before = scored_sets(cfg)
    features.apply(cfg)  # a registry of its own, with sources on the copied Parquet
    pipeline = Pipeline(cfg, console=Console(quiet=True))
    pipeline.models = training.load_models(cfg, training.LEARNED_MODELS)
    bi.publish(cfg)  # what the readers start on (the session run's scores)

    with duckdb.connect() as con:
        counts = dict(con.execute(
            "select cast(as_of_date as varchar), count(*) from read_parquet(?) group by 1",
            [str(cfg.features_dir / "customer_rfm.parquet")]).fetchall())
    dates = sorted(dt.date.fromisoformat(d) for d in counts)
    (base / "expected.json").write_text(json.dumps(counts))
    stop = base / "stop"
    readers = []
    for i, mode in enumerate(MODES):
        out = base / f"reader-{i}.json"
        readers.append((subprocess.Popen(
            [sys.executable, str(READER), "--mode", mode, "--pause", str(READER_PAUSE),
             "--bi-dir", str(cfg.bi_dir), "--expected", str(base / "expected.json"), "--stop", str(stop), "--out", str(out)],
            stderr=subprocess.PIPE, text=True), out))
    phases: list[tuple[str, float, float]] = []
    states: dict[str, pd.DataFrame] = {}

    def phase(name, *steps):
        start = time.time()
        for step in steps:
            step()
        phases.append((name, start, time.time()))
        states[name] = scored_sets(cfg)

    try:
        time.sleep(2)  # the readers are up and reading the first publication
        phase("score earlier date", lambda: pipeline.score(as_of=dates[-2]), pipeline.publish)
        phase("re-score latest date", lambda: pipeline.score(as_of=dates[-1]),
              pipeline.publish)
        phase("dbt build", pipeline.build, lambda: pipeline.publish(refresh=False))
        phase("clv score third date", lambda: subprocess.run(
            [sys.executable, "-m", "clv_models.cli", "--data-dir", str(cfg.data_dir), "score",
             "--as-of", dates[-3].isoformat()], check=True, capture_output=True))
        time.sleep(1)
    finally:
        stop.write_text("stop")
        summaries = []
        for proc, out in readers:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err[-3000:]
            summaries.append(json.loads(out.read_text()))
    for r in summaries:  # the figures, for `pytest -s` and docs/bi.md
        print(f"bi reader {r['mode']}: {len(r['reads'])} reads, {r['failures']} failed, "
              f"{r['inconsistent']} inconsistent, {len(r['publications'])} publications seen")
    for name, start, end in phases:
        print(f"bi phase {name}: {end - start:.1f} s, "
              f"{sum(start <= t <= end for r in summaries for t in r['reads'])} reads")
    return {"cfg": cfg, "pipeline": pipeline, "readers": summaries, "phases": phases,
            "states": states, "dates": dates, "counts": counts, "before": before}


def scored_sets(cfg) -> pd.DataFrame:
    """Rows, distinct customers and run of every scored set in the warehouse."""
    return warehouse_sql(cfg, f"select {', '.join(SET_KEY)}, count(*) as n, "
                              "count(distinct customer_id) as customers, "
                              "any_value(run_id) as run_id from clv_scores group by all "
                              "order by all")


def test_readers_never_fail_and_always_see_complete_sets(concurrent_run):
    readers, phases = concurrent_run["readers"], concurrent_run["phases"]
    assert {r["mode"] for r in readers} >= {"duckdb", "parquet"}
    for r in readers:
        assert r["failures"] == 0, r["failure_messages"]
        assert r["inconsistent"] == 0, r["inconsistent_messages"]
    # Reads happened while the warehouse was written: in every phase, and many in all.
    during = [sum(start <= t <= end for r in readers for t in r["reads"])
              for _, start, end in phases]
    assert all(n > 0 for n in during), dict(zip([p[0] for p in phases], during))
    assert sum(during) >= 20 * len(phases)
    # ... and they saw the publications change under them (the copy's first + 4 publishes).
    assert max(len(r["publications"]) for r in readers) >= 3


def test_rescoring_the_same_date_replaces_and_history_is_kept(concurrent_run):
    states, counts, dates = (concurrent_run[k] for k in ("states", "counts", "dates"))
    before = concurrent_run["before"]
    latest = pd.Timestamp(dates[-1])
    rescored = states["re-score latest date"]
    again = rescored[rescored["as_of_date"] == latest]
    first = before[before["as_of_date"] == latest]
    # the same sets (every model and the blend; same versions), as many rows, written anew
    pairs = first.merge(again, on=SET_KEY, suffixes=("_first", "_again"))
    assert len(pairs) == len(first) == len(again) == len(champion.CANDIDATES)
    assert (pairs["n_first"] == pairs["n_again"]).all()
    assert not set(pairs["run_id_first"]) & set(pairs["run_id_again"])
    final = states["clv score third date"]
    assert sorted(final["as_of_date"].unique()) == [pd.Timestamp(d) for d in dates[-3:]]
    assert (final["n"] == final["customers"]).all()  # no duplicates anywhere
    assert (final["n"] == final["as_of_date"].dt.strftime("%Y-%m-%d").map(counts)).all()
    assert final["n"].sum() == warehouse_sql(concurrent_run["cfg"],
                                             "select count(*) as n from clv_scores")["n"][0]


def test_published_copy_equals_the_warehouse(concurrent_run):
    cfg = concurrent_run["cfg"]
    with duckdb.connect(str(bi.database_path(cfg)), read_only=True) as con:
        published = {t: con.execute(f"select count(*) from {t}").fetchone()[0]
                     for t in bi.TABLES}
        listed = dict(con.execute("select table_name, row_count from bi_publication").fetchall())
        ids = con.execute("select distinct publication_id from bi_publication").fetchall()
        movements = con.execute("select count(distinct as_of_date) from segment_movements "
                                "where model_name = 'xgboost'").fetchone()[0]
    assert ids == [(os.readlink(cfg.bi_dir / "parquet" / "current"),)]  # the same publication
    assert listed == {t: n for t, n in published.items() if t != "bi_publication"}
    assert published["clv_scores"] == warehouse_sql(cfg, "select count(*) n from clv_scores")["n"][0]
    assert movements == 2  # three scored as-of dates: two movements per model
    with duckdb.connect() as con:
        for table in bi.TABLES:
            path = cfg.bi_dir / "parquet" / "current" / f"{table}.parquet"
            assert con.execute("select count(*) from read_parquet(?)",
                               [str(path)]).fetchone()[0] == published[table]
    assert not list(cfg.bi_dir.rglob(".*"))  # no temporary left behind


def test_dbt_creates_clv_scores_as_the_python_code_reads_it(concurrent_run):
    # The session run's first dbt build created clv_scores (on-run-start hook), before scoring.
    hook = warehouse_sql(concurrent_run["cfg"], "describe clv_scores")
    with duckdb.connect() as con:
        con.execute(contract.ddl(concurrent_run["cfg"].warehouse_dir))
        python = con.execute("describe clv_scores").df()
    cols = ["column_name", "column_type", "null"]
    pd.testing.assert_frame_equal(hook[cols], python[cols])


# -- publishing small hand-made warehouses ---------------------------------------------------

def write_naive_scores(cfg, as_of: dt.date, customers: int) -> None:
    """A scored set of the naive model (the champion) for ``customers`` made-up customers, and
    the dbt views over the scores (the models' own SQL, rendered without dbt)."""
    frame = pd.DataFrame({"customer_id": [f"C{i:04d}" for i in range(customers)],
                          "net_revenue": np.linspace(0, 500, customers), "order_count": 3,
                          "t_days": np.linspace(10, 700, customers)})
    model = NaiveCLV(horizon_days=90)
    rows = scoring.score_frame(model, frame, as_of, "run", dt.datetime(2025, 1, 2),
                               is_champion=True)
    scoring.write_scores(cfg, rows)
    with duckdb.connect(str(cfg.resolved().warehouse_path)) as con:
        for view, path in (("stg_clv__scores", "staging/clv/stg_clv__scores.sql"),
                           *((v, f"marts/scores/{v}.sql") for v in bi.LATEST_VIEWS)):
            con.execute(f"create or replace view {view} as {render_model(cfg, path)}")


def render_model(cfg, path: str) -> str:
    """A dbt model's SQL with ``source``/``ref`` as plain table names and ``config`` dropped."""
    import jinja2

    template = jinja2.Environment(autoescape=False).from_string(  # noqa: S701 - SQL, not HTML
        (cfg.warehouse_dir / "models" / path).read_text())
    return template.render(source=lambda _, table: table, ref=lambda model: model,
                           config=lambda **_: "")


def test_open_readers_keep_their_publication_while_a_new_one_is_swapped_in(tmp_path):
    cfg = small_config(tmp_path / "data")
    write_naive_scores(cfg, dt.date(2025, 1, 1), 50)
    first = bi.publish(cfg)
    assert first.missing == list(bi.BI_MODELS)  # no dbt build: only the scores
    path = bi.database_path(cfg)
    held = duckdb.connect(str(path), read_only=True)
    try:
        write_naive_scores(cfg, dt.date(2025, 2, 1), 60)
        second = bi.publish(cfg)  # replaces the file the held connection has open
        assert held.execute("select count(*) from clv_scores").fetchone()[0] == 50
        # Another process opens the new file (in this one, DuckDB hands new connections the
        # instance still open on the old file until its last connection closes).
        other = subprocess.run(
            [sys.executable, "-c", "import duckdb, sys; print(duckdb.connect(sys.argv[1], "
             "read_only=True).execute('select count(*) from clv_scores').fetchone()[0])",
             str(path)], capture_output=True, text=True, check=True)
        assert other.stdout.strip() == "110"
    finally:
        held.close()
    with duckdb.connect(str(path), read_only=True) as fresh:
        assert fresh.execute("select count(*) from clv_scores").fetchone()[0] == 110
        assert fresh.execute("select count(*) from clv_scores_latest").fetchone()[0] == 60
    parquet = cfg.bi_dir / "parquet"
    meta = duckdb.sql(f"select value from parquet_kv_metadata("
                      f"'{parquet / 'current' / 'clv_scores.parquet'}')").fetchall()
    assert meta == [(second.publication_id.encode(),)]
    assert os.readlink(parquet / "current") == second.publication_id
    assert sorted(os.listdir(cfg.bi_dir)) == ["clv_bi.duckdb", "parquet"]
    for _ in range(bi.KEEP_PARQUET):
        bi.publish(cfg)
    folders = sorted(p.name for p in parquet.iterdir() if not p.is_symlink())
    assert len(folders) == bi.KEEP_PARQUET and second.publication_id not in folders
    assert os.readlink(parquet / "current") == folders[-1]


def test_bi_models_that_do_not_add_up_are_not_published(pipeline_run, tmp_path):
    cfg = small_config(tmp_path / "data")
    cfg.resolved().data_dir.mkdir(parents=True)
    shutil.copy(pipeline_run.cfg.warehouse_path, cfg.resolved().warehouse_path)
    good = bi.publish(cfg)  # dbt built the BI models on these scores: they reconcile
    assert not good.missing
    write_naive_scores(cfg, dt.date(2025, 2, 1), 40)  # the BI models now lag the scores
    with pytest.raises(bi.PublishError, match="do not add up to clv_scores for 1 scored set"):
        bi.publish(cfg)
    with duckdb.connect(str(bi.database_path(cfg)), read_only=True) as con:
        assert con.execute("select distinct publication_id from bi_publication").fetchall() == [
            (good.publication_id,)]
    assert not [p for p in cfg.resolved().bi_dir.rglob(".*")]  # temporaries removed


def test_publish_needs_a_warehouse(tmp_path):
    with pytest.raises(FileNotFoundError, match="clv build"):
        bi.publish(small_config(tmp_path / "data"))


def test_a_locked_warehouse_is_one_clear_line_naming_the_holder(tmp_path):
    cfg = small_config(tmp_path / "data")
    write_naive_scores(cfg, dt.date(2025, 1, 1), 20)
    path = cfg.resolved().warehouse_path
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
         "print('holding', flush=True); time.sleep(60)", str(path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        result = CliRunner().invoke(clv, ["--data-dir", str(cfg.data_dir), "publish",
                                          "--skip-dbt"])
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 1
    assert f"is locked by process {holder.pid}" in result.output
    assert str(path) in result.output and "hint:" in result.output
    assert "Traceback" not in result.output and "Error: WarehouseLockedError" not in result.output


def test_a_clv_scores_table_of_an_earlier_release_gains_the_new_columns(tmp_path):
    """A table created without ``is_champion`` keeps its rows and gets the column (null on
    the old rows, false in the staging view) when new scores are written."""
    cfg = small_config(tmp_path / "data")
    cfg.resolved().warehouse_path.parent.mkdir(parents=True)
    old = [c for c in contract.columns(cfg.warehouse_dir) if c.name != "is_champion"]
    with duckdb.connect(str(cfg.resolved().warehouse_path)) as con:
        con.execute("create table clv_scores (" + ", ".join(
            f"{c.name} {c.data_type}" for c in old) + ")")
        con.execute("insert into clv_scores (customer_id, as_of_date, horizon_days, model_name, "
                    "model_version, predicted_clv, scored_at, run_id) values ('OLD', "
                    "'2024-12-01', 90, 'deep_ziln', 'v0', 1.5, '2024-12-02', 'old-run')")
    write_naive_scores(cfg, dt.date(2025, 1, 1), 20)
    with duckdb.connect(str(cfg.resolved().warehouse_path), read_only=True) as con:
        assert con.execute("select count(*), count(is_champion) from clv_scores"
                           ).fetchone() == (21, 20)
        assert con.execute("select is_champion from stg_clv__scores where customer_id = 'OLD'"
                           ).fetchone() == (False,)
        assert con.execute("select count(*) from clv_scores_latest").fetchone()[0] == 20
