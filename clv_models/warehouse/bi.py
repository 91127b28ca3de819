"""The scores published for BI tools, so that dashboards keep working while pipelines run.

DuckDB lets only one process open a database file while it is written, readers included
(shared/NOTES.md): a dashboard holding ``data/warehouse.duckdb`` open makes ``dbt build`` and
``clv score`` fail, and while either of them runs the dashboard cannot open it. So BI tools never
open the warehouse. After every successful ``clv build`` and ``clv score`` (and on
``clv publish``) the scores and the BI models are copied out of the warehouse into

- ``data/bi/clv_bi.duckdb``: one DuckDB file holding every published table, and
- ``data/bi/parquet/<publication_id>/<table>.parquet``: the same tables as Parquet, one folder
  per publication, with the link ``data/bi/parquet/current`` to the newest folder.

**The DuckDB file** is written under a temporary name in the same folder and renamed over the
published name (:func:`os.replace`, an atomic rename on POSIX file systems). Opening the path
gives the previous complete file or the new one, never a partly written one; nothing ever
writes to a published file, so readers (which open it read-only) take no lock the publisher
needs, and the publisher none they need. A connection keeps reading the file it opened (the old
inode lives on until it is closed): one connection sees one publication, consistent across its
tables; a new connection sees the newest.

**The Parquet files** are never replaced in place: each publication writes a new folder (under a
temporary name, renamed into place when complete), then swaps the ``current`` link to it (a new
link renamed over the old one, atomic too). The folders of the last :data:`KEEP_PARQUET`
publications are kept, so a reader that resolved ``current`` once (``os.path.realpath``) reads
files that do not change under it. A rename-swapped file at a fixed path would not be safe:
DuckDB's ``read_parquet`` and pyarrow's ``read_table(path)`` open a file twice per read (footer,
then data; seen with strace), and a swap between the two opens tears the read.

Before swapping a snapshot in, :func:`publish` checks that its BI models add up to its scores
(per scored set), so a publication is never internally inconsistent. Every file carries its
``publication_id`` (the ``bi_publication`` table; Parquet key-value metadata).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from clv_models.core import sql
from clv_models.core.atomic import STALE_SECONDS, fsync
from clv_models.core.config import Config
from clv_models.core.errors import CLVError, NotBuiltError, lock_error
from clv_models.warehouse import contract
from clv_models.warehouse import dbt as warehouse

DATABASE_FILE = "clv_bi.duckdb"
PARQUET_DIR = "parquet"
#: The link in PARQUET_DIR to the newest publication's folder.
CURRENT = "current"
#: Parquet folders kept (the newest and the ones before): readers that resolved ``current``
#: a publication or two ago still find their files.
KEEP_PARQUET = 3
#: The dbt models built on the scores (their data tests included): staging/clv, marts/scores.
SCORE_MODELS_SELECTOR = "source:clv+"
#: dbt models copied next to the scores, when the warehouse has them.
BI_MODELS = ("clv_by_segment", "clv_by_cohort", "segment_movements")
#: The dbt view listing the scored sets whose BI models do not add up (empty when they do).
RECONCILIATION = "score_sets_unreconciled"
#: The dbt views of each customer's newest scores, copied as tables (the champion's; every
#: model's).
LATEST_VIEWS = ("clv_scores_latest", "clv_scores_latest_by_model")
#: Every table of a publication, in the order they are written.
TABLES = ("clv_scores", *LATEST_VIEWS, contract.THRESHOLDS_TABLE, *BI_MODELS,
          "bi_publication")


class PublishError(CLVError, RuntimeError):
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
    ``clv_bi.duckdb`` and the Parquet folder under temporary names, checks that the BI models
    reconcile with the scores, then renames the DuckDB file over the published one, the folder
    into place and a new ``current`` link over the old one; prunes old Parquet folders.

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
        raise NotBuiltError(f"no warehouse at {cfg.warehouse_path}: run `clv build` first")
    parquet_dir = cfg.bi_dir / PARQUET_DIR
    parquet_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(cfg.bi_dir)
    _remove_stale_temporaries(parquet_dir)
    published_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    # Sorts by time: the Parquet folders are pruned in this order.
    publication_id = f"{published_at:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:6]}"
    database = cfg.bi_dir / DATABASE_FILE
    staged_database = cfg.bi_dir / f".{DATABASE_FILE}.{publication_id}.tmp"
    staged_parquet = parquet_dir / f".{publication_id}.tmp"
    staged_link = parquet_dir / f".{CURRENT}.{publication_id}.tmp"
    staged_parquet.mkdir()
    try:
        with duckdb.connect(str(staged_database)) as con:
            rows, missing = _copy_tables(con, cfg, publication_id, published_at)
            for table in rows:
                path = staged_parquet / f"{table}.parquet"
                # COPY takes no bound parameters: the path and the id are quoted literals,
                # the table one of the fixed TABLES.
                con.execute(f"copy (select * from {sql.identifier(table, TABLES)}) to "  # noqa: S608 - quoted
                            f"{sql.literal(path)} (format parquet, kv_metadata "
                            f"{{publication_id: {sql.literal(publication_id)}}})")
                fsync(path)
            con.execute("checkpoint")
        fsync(staged_database)
        fsync(staged_parquet, directory=True)
        os.replace(staged_database, database)
        os.replace(staged_parquet, parquet_dir / publication_id)
        os.symlink(publication_id, staged_link)
        current = parquet_dir / CURRENT
        if current.is_dir() and not current.is_symlink():  # a copy that followed the link
            shutil.rmtree(current)
        os.replace(staged_link, current)
        fsync(cfg.bi_dir, directory=True)
        fsync(parquet_dir, directory=True)
    finally:
        for path in (staged_database, Path(f"{staged_database}.wal"), staged_link):
            path.unlink(missing_ok=True)
        shutil.rmtree(staged_parquet, ignore_errors=True)
    _prune_parquet(parquet_dir)
    return Publication(publication_id=publication_id, published_at=published_at,
                       database=database, parquet_dir=parquet_dir / CURRENT, rows=rows,
                       missing=missing, seconds=time.perf_counter() - start)


def _copy_tables(con: duckdb.DuckDBPyConnection, cfg: Config, publication_id: str,
                 published_at: dt.datetime) -> tuple[dict[str, int], list[str]]:
    """Copy the published tables from the warehouse into ``con``'s database; return the row
    count per table and the BI models the warehouse does not have yet."""
    warehouse_path, warehouse_dir = cfg.warehouse_path, cfg.warehouse_dir
    try:
        con.execute(f"attach {sql.literal(warehouse_path)} as warehouse (read_only)")
    except duckdb.IOException as exc:
        locked = lock_error(exc)
        if locked is not None:
            raise locked from exc
        raise PublishError(f"cannot read {warehouse_path}: {exc}") from exc
    present = {name for (name,) in con.execute(
        "select table_name from information_schema.tables "
        "where table_catalog = 'warehouse' and table_schema = 'main'").fetchall()}
    if "clv_scores" not in present:
        raise NotBuiltError(f"no clv_scores in {warehouse_path}: run `clv build` (creates "
                                "it empty) or `clv score`")
    con.execute("create table clv_scores as select * from warehouse.main.clv_scores "  # noqa: S608 - fixed names
                f"order by {', '.join(contract.SCORE_SET)}, customer_id")
    for view in LATEST_VIEWS:
        if view not in present:
            raise NotBuiltError(f"no {view} view in {warehouse_path}",
                                hint="run `clv build` (dbt creates the view)")
        con.execute(f"create table {view} as select * from warehouse.main.{view} "  # noqa: S608 - fixed names
                    "order by model_name, customer_id")
    # What the online endpoint ranks single predictions against; empty before any scoring.
    con.execute(contract.ddl(warehouse_dir, contract.THRESHOLDS_TABLE))
    if contract.THRESHOLDS_TABLE in present:
        con.execute(f"insert into {contract.THRESHOLDS_TABLE} select * from "  # noqa: S608 - fixed names
                    f"warehouse.main.{contract.THRESHOLDS_TABLE} "
                    f"order by {', '.join(contract.SCORE_SET)}")
    missing = [t for t in BI_MODELS if t not in present]
    if len(missing) < len(BI_MODELS):
        _check_reconciled(con, present)
    for table in BI_MODELS:
        if table not in missing:
            con.execute(f"create table {table} as select * from warehouse.main.{table}")  # noqa: S608 - fixed names
    con.execute("detach warehouse")
    tables = [t for t in TABLES if t not in missing and t != "bi_publication"]
    rows = {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in tables}  # noqa: S608 - fixed names
    con.execute("create table bi_publication (publication_id varchar, published_at timestamp, "
                "table_name varchar, row_count bigint)")
    con.executemany("insert into bi_publication values (?, ?, ?, ?)",
                    [(publication_id, published_at, t, n) for t, n in rows.items()])
    rows["bi_publication"] = len(rows)
    return rows, missing


def _check_reconciled(con: duckdb.DuckDBPyConnection, present: set[str]) -> None:
    """Raise :class:`PublishError` when the warehouse's BI models do not add up to its scores
    (the dbt model ``score_sets_unreconciled`` has rows; read from the attached warehouse, the
    state being copied)."""
    if RECONCILIATION not in present:
        raise NotBuiltError(f"the warehouse has BI models but no {RECONCILIATION} view",
                            hint="run `clv publish` (rebuilds the models on the scores)")
    bad = con.execute(f"select * from warehouse.main.{RECONCILIATION} "  # noqa: S608 - fixed name
                      "order by all").df()
    if len(bad):
        raise PublishError(
            f"the BI models do not add up to clv_scores for {len(bad)} scored set(s) "
            f"({RECONCILIATION}): the first is {bad.iloc[0].to_dict()}; the BI models are "
            "older than the scores",
            hint="`clv publish` rebuilds them first")


def _prune_parquet(parquet_dir: Path) -> None:
    """Delete the Parquet folders older than the newest :data:`KEEP_PARQUET` (never the one
    ``current`` points at)."""
    current = os.readlink(parquet_dir / CURRENT)
    folders = sorted(p.name for p in parquet_dir.iterdir()
                     if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))
    for name in folders[:-KEEP_PARQUET]:
        if name != current:
            shutil.rmtree(parquet_dir / name, ignore_errors=True)


def _remove_stale_temporaries(folder: Path) -> None:
    """Remove what a publisher that died left behind (temporary files, folders, links)."""
    cutoff = time.time() - STALE_SECONDS
    for path in folder.glob(".*.tmp*"):
        try:
            if path.lstat().st_mtime >= cutoff:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink()
        except FileNotFoundError:
            pass

