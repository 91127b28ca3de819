"""The scores published for BI tools, so that dashboards keep working while pipelines run.

DuckDB lets only one process open a database file while it is written, readers included
(shared/NOTES.md): a dashboard holding ``data/warehouse.duckdb`` open makes ``dbt build`` and
``clv score`` fail, and while either of them runs the dashboard cannot open it. So BI tools never
open the warehouse. After every successful ``clv build`` and ``clv score`` (and on
``clv publish``) the scores and the BI models are copied out of the warehouse into

- ``data/bi/clv_bi.duckdb``: one DuckDB file holding every published table, and
- ``data/bi/parquet/<table>.parquet``: the same tables, one Parquet file each.

Each file is written under a temporary name in the same folder and then renamed over the
published name (:func:`os.replace`, an atomic rename on POSIX file systems):

- a reader that opens the path gets the previous complete file or the new complete file, never
  a partly written one; no process ever writes to a published file, so readers (which open it
  read-only) take no lock the publisher needs, and the publisher none they need;
- a reader that already has the old file open keeps reading it (its inode lives on until it is
  closed): one connection sees one publication, consistent across its tables; a new
  connection sees the newest.

The DuckDB file is consistent across tables. The Parquet files are each complete but renamed
one after another, so a query that joins two of them can straddle two publications: each file
carries its ``publication_id`` in its key-value metadata (DuckDB: ``parquet_kv_metadata``), and
the ``bi_publication`` table lists every table of a publication with its row count.

Before swapping a snapshot in, :func:`publish` checks that its BI models add up to its scores
(per scored set), so a published file is never internally inconsistent.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from clv_models import scoring, warehouse
from clv_models.config import Config

DATABASE_FILE = "clv_bi.duckdb"
PARQUET_DIR = "parquet"
#: The dbt models built on the scores (their data tests included): staging/clv, marts/scores.
SCORE_MODELS_SELECTOR = "source:clv+"
#: dbt models copied next to the scores, when the warehouse has them.
BI_MODELS = ("clv_by_segment", "clv_by_cohort", "segment_movements")
#: Every table of a publication, in the order they are written.
TABLES = ("clv_scores", "clv_scores_latest", *BI_MODELS, "bi_publication")
#: Temporary files older than this are left over from a publisher that died: removed.
STALE_SECONDS = 3600
_SCORE_SET = ("as_of_date", "model_name", "model_version")


class PublishError(RuntimeError):
    """The snapshot could not be published; the previous publication stays in place."""


@dataclass
class Publication:
    """One publication: where it went, what it held and how long it took."""

    publication_id: str
    published_at: dt.datetime
    database: Path
    parquet_dir: Path
    rows: dict[str, int]
    missing: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for the terminal."""
        missing = f"; not in the warehouse yet: {', '.join(self.missing)}" if self.missing else ""
        return (f"{self.rows.get('clv_scores', 0):,} score rows, {len(self.rows)} tables -> "
                f"{self.database} (+ {self.parquet_dir}/<table>.parquet){missing}")


def database_path(cfg: Config) -> Path:
    """The published DuckDB file BI tools open read-only."""
    return cfg.resolved().bi_dir / DATABASE_FILE


def refresh(cfg: Config, echo: Callable[[str], None] | None = None) -> Publication:
    """Rebuild the dbt models on the scores (with their tests), then :func:`publish`.

    ``clv score`` runs this after writing ``clv_scores``: the BI models are dbt tables, so they
    only reflect new scores once rebuilt, and a failing data test stops before anything is
    published (BI keeps the previous publication).
    """
    warehouse.run_dbt(cfg, ["build", "--select", SCORE_MODELS_SELECTOR], echo=echo)
    return publish(cfg)


def publish(cfg: Config) -> Publication:
    """Copy the scores and the BI models into a new snapshot and swap it in atomically.

    Reads the warehouse read-only (the stage that wrote it has finished), writes
    ``clv_bi.duckdb`` and the Parquet files under temporary names, checks that the BI models
    reconcile with the scores, then renames each file over its published name.

    Raises
    ------
    FileNotFoundError
        When there is no warehouse, or it has no ``clv_scores`` table (run ``clv build``).
    PublishError
        When the BI models do not add up to the scores (rebuild them: ``clv publish``).
    """
    start = time.perf_counter()
    cfg = cfg.resolved()
    if not cfg.warehouse_path.exists():
        raise FileNotFoundError(f"no warehouse at {cfg.warehouse_path}: run `clv build` first")
    parquet_dir = cfg.bi_dir / PARQUET_DIR
    parquet_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(cfg.bi_dir)
    _remove_stale_temporaries(parquet_dir)
    publication_id = uuid.uuid4().hex[:12]
    published_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    staged: list[tuple[Path, Path]] = []  # (temporary, published)
    database = cfg.bi_dir / DATABASE_FILE
    staged_database = cfg.bi_dir / f".{DATABASE_FILE}.{publication_id}.tmp"
    try:
        with duckdb.connect(str(staged_database)) as con:
            rows, missing = _copy_tables(con, cfg.warehouse_path, publication_id, published_at)
            _check_consistent(con, [t for t in BI_MODELS if t not in missing])
            for table in rows:
                target = parquet_dir / f"{table}.parquet"
                temporary = parquet_dir / f".{table}.parquet.{publication_id}.tmp"
                con.execute(f"copy (select * from {table}) to '{_literal(temporary)}' "  # noqa: S608 - fixed names
                            f"(format parquet, kv_metadata {{publication_id: '{publication_id}'}})")
                staged.append((temporary, target))
            con.execute("checkpoint")
        _fsync(staged_database)
        for temporary, _ in staged:
            _fsync(temporary)
        os.replace(staged_database, database)
        for temporary, target in staged:
            os.replace(temporary, target)
        _fsync(cfg.bi_dir, directory=True)
        _fsync(parquet_dir, directory=True)
    finally:
        for path in (staged_database, Path(f"{staged_database}.wal"),
                     *(temporary for temporary, _ in staged)):
            path.unlink(missing_ok=True)
    return Publication(publication_id=publication_id, published_at=published_at,
                       database=database, parquet_dir=parquet_dir, rows=rows, missing=missing,
                       seconds=time.perf_counter() - start)


def _copy_tables(con: duckdb.DuckDBPyConnection, warehouse_path: Path, publication_id: str,
                 published_at: dt.datetime) -> tuple[dict[str, int], list[str]]:
    """Copy the published tables from the warehouse into ``con``'s database; return the row
    count per table and the BI models the warehouse does not have yet."""
    try:
        con.execute(f"attach '{_literal(warehouse_path)}' as warehouse (read_only)")
    except duckdb.IOException as exc:
        raise PublishError(f"cannot read {warehouse_path} (another process is writing it?): "
                           f"{exc}") from exc
    present = {name for (name,) in con.execute(
        "select table_name from information_schema.tables "
        "where table_catalog = 'warehouse' and table_schema = 'main'").fetchall()}
    if "clv_scores" not in present:
        raise FileNotFoundError(f"no clv_scores in {warehouse_path}: run `clv build` (creates "
                                "it empty) or `clv score`")
    con.execute("create table clv_scores as select * from warehouse.main.clv_scores "  # noqa: S608
                f"order by {', '.join(_SCORE_SET)}, customer_id")
    con.execute(f"create table clv_scores_latest as {scoring.LATEST_SELECT} "  # noqa: S608 - fixed SQL
                "order by model_name, customer_id")
    missing = [t for t in BI_MODELS if t not in present]
    for table in BI_MODELS:
        if table not in missing:
            con.execute(f"create table {table} as select * from warehouse.main.{table}")  # noqa: S608 - fixed names
    con.execute("detach warehouse")
    tables = [t for t in TABLES if t not in missing and t != "bi_publication"]
    rows = {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in tables}  # noqa: S608
    con.execute("create table bi_publication (publication_id varchar, published_at timestamp, "
                "table_name varchar, row_count bigint)")
    con.executemany("insert into bi_publication values (?, ?, ?, ?)",
                    [(publication_id, published_at, t, n) for t, n in rows.items()])
    rows["bi_publication"] = len(rows)
    return rows, missing


def _check_consistent(con: duckdb.DuckDBPyConnection, models: list[str]) -> None:
    """Raise :class:`PublishError` unless every BI model's customers add up to the scores'
    per scored set (``segment_movements`` only for the sets it describes)."""
    keys = ", ".join(_SCORE_SET)
    for model in models:
        join = "inner join" if model == "segment_movements" else "full outer join"
        bad = con.execute(f"""
            with scores as (
                select {keys}, count(*) as customers from clv_scores group by {keys}
            ),
            bi as (
                select {keys}, sum(customers) as customers from {model} group by {keys}
            )
            select count(*) from scores {join} bi using ({keys})
            where scores.customers is distinct from bi.customers
        """).fetchone()[0]  # noqa: S608 - fixed names
        if bad:
            raise PublishError(
                f"{model} does not add up to clv_scores for {bad} scored set(s): the BI models "
                "are older than the scores; `clv publish` rebuilds them first")


def _remove_stale_temporaries(folder: Path) -> None:
    cutoff = time.time() - STALE_SECONDS
    for path in folder.glob(".*.tmp*"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except FileNotFoundError:
            pass


def _fsync(path: Path, directory: bool = False) -> None:
    """Flush a file (or a folder's entries) to disk, so a rename never publishes lost data."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _literal(path: Path) -> str:
    """A path as the body of a SQL string literal."""
    return str(path).replace("'", "''")
