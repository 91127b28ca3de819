"""Checksums of everything a pipeline run produces, to tell whether two runs made the same tables.

One checksum per table, file, feature view and model, grouped in sections:

============  ==============================================================================
section       what is summed
============  ==============================================================================
raw           the raw input files (``DATA_DIR/raw``): the same input gives the same output
warehouse     every table and view of ``warehouse.duckdb`` (``clv_scores`` included)
scores        ``clv_scores`` per scored set (as_of_date/model_name/model_version): a re-scoring
              replaces a whole set, so each set is old or new, never part of both
features      the feature Parquet exports dbt writes (``DATA_DIR/features``)
online        the Feast online store (SQLite): per feature view, every row's entity key,
              feature name, serialized value and event timestamp
models        per saved model: its version (the content hash of its weight files) and its
              metadata
metrics       ``reports/evaluation.json``: the metrics of every model, the split, the
              customers and the actual total
bi            the tables of the published BI copy (``bi/clv_bi.duckdb``) and of its current
              Parquet folder
============  ==============================================================================

A table's checksum is ``"<rows>:<sum of row hashes mod 2**64, hex>"``: DuckDB's ``hash`` of each
row, summed, so it does not depend on row order (which carries no meaning in the warehouse) and,
unlike an XOR, a duplicated row changes it. Floats are hashed by their exact value: on the CPU
the same seed must give the same bits, and rounding here would hide a product bug.

Left out because they legitimately differ between two runs on the same input:

* the columns :data:`VOLATILE_COLUMNS` of every table: ``scored_at`` and ``run_id`` (when and by
  which run a score was written; ``clv_by_segment`` and ``clv_by_cohort`` carry ``scored_at``
  too), and the BI copy's ``publication_id`` and ``published_at`` (the ``bi_publication``
  table holds nothing else and is skipped);
* the metadata keys :data:`VOLATILE_METADATA` of a model: when it was trained and how fast;
* ``data_source`` of ``evaluation.json``, which names the data directory;
* the HTML report (it prints the time), the Feast registry (it stores update times) and the
  online store's ``created_ts`` (Feast writes none here; it would be a load time).

A table that cannot be read (a missing or torn file behind a view) gets
``"unreadable: <error>"`` instead of a checksum, so a comparison fails and says why.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import duckdb

from clv_models.core.config import Config
from clv_models.models.base import METADATA_FILE, content_version

#: Columns whose values are per run (times, run and publication ids): never summed.
VOLATILE_COLUMNS = frozenset({"scored_at", "run_id", "publication_id", "published_at"})
#: Tables holding nothing but per-run values, and diagnostic views computed from tables that are
#: summed themselves (``score_sets_unreconciled`` lists the sets whose BI models lag the scores,
#: as they do between `clv score`'s write and its rebuild of the BI models).
VOLATILE_TABLES = frozenset({"bi_publication", "score_sets_unreconciled"})
#: Model metadata keys that are times or speeds, not results.
VOLATILE_METADATA = frozenset({"trained_at", "train_seconds", "samples_per_second"})
#: evaluation.json keys that name paths rather than results.
VOLATILE_REPORT_KEYS = frozenset({"data_source"})
#: Columns of a SQLite online-store row that are summed (created_ts is a load time).
ONLINE_COLUMNS = ("entity_key", "feature_name", "value", "event_ts")
SECTIONS = ("raw", "warehouse", "scores", "features", "online", "models", "metrics", "bi")

Checksums = dict[str, dict[str, str]]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def relation_checksum(con: duckdb.DuckDBPyConnection, relation: str,
                      columns: list[str]) -> str:
    """``"<rows>:<hex>"`` of ``relation`` (SQL text: a quoted name or ``read_parquet(...)``)
    over ``columns`` minus :data:`VOLATILE_COLUMNS`; order-independent (see the module)."""
    kept = [_quote(c) for c in columns if c not in VOLATILE_COLUMNS]
    row = f"hash({', '.join(kept)})" if kept else "0"
    try:
        n, total = con.execute(
            f"select count(*), coalesce(sum({row}::hugeint), 0) from {relation}"  # noqa: S608 - quoted names
        ).fetchone()
    except duckdb.Error as exc:
        return f"unreadable: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    return f"{n}:{int(total) % 2**64:016x}"


def database_checksums(path: Path) -> dict[str, str]:
    """Every table and view of a DuckDB file (opened read-only), by name.

    Raises
    ------
    FileNotFoundError
        When there is no such file.
    """
    if not path.exists():
        raise FileNotFoundError(f"no DuckDB file at {path}")
    out: dict[str, str] = {}
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name, list(column_name order by ordinal_position) "
            "from information_schema.columns group by all order by all").fetchall()
        for schema, table, columns in tables:
            if table in VOLATILE_TABLES:
                continue
            name = table if schema == "main" else f"{schema}.{table}"
            out[name] = relation_checksum(con, f"{_quote(schema)}.{_quote(table)}", columns)
    return out


def score_set_checksums(path: Path) -> dict[str, str]:
    """``clv_scores`` of a warehouse per scored set, keyed ``as_of_date/model_name/version``
    (empty without the table)."""
    if not path.exists():
        return {}
    with duckdb.connect(str(path), read_only=True) as con:
        columns = [r[0] for r in con.execute(
            "select column_name from information_schema.columns where table_name = "
            "'clv_scores' and table_schema = 'main' order by ordinal_position").fetchall()]
        if not columns:
            return {}
        sets = con.execute("select distinct as_of_date, model_name, model_version "
                           "from clv_scores order by all").fetchall()
        out = {}
        for as_of, model, version in sets:
            where = (f"(select * from clv_scores where as_of_date = {_literal(str(as_of))} "  # noqa: S608 - escaped literals
                     f"and model_name = {_literal(model)} "
                     f"and model_version = {_literal(version)})")
            out[f"{as_of}/{model}/{version}"] = relation_checksum(con, where, columns)
        return out


def parquet_checksum(path: Path) -> str:
    """The checksum of one Parquet file, like a table's (:func:`relation_checksum`)."""
    with duckdb.connect() as con:
        relation = f"read_parquet({_literal(str(path))})"
        try:
            columns = [r[0] for r in con.execute(f"describe select * from {relation}").fetchall()]  # noqa: S608 - escaped literal
        except duckdb.Error as exc:
            return f"unreadable: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        return relation_checksum(con, relation, columns)


def folder_checksums(folder: Path, pattern: str = "*.parquet") -> dict[str, str]:
    """The Parquet files of a folder by file name (raw CSV files: their bytes)."""
    out = {}
    for path in sorted(folder.glob(pattern)) if folder.is_dir() else []:
        if path.name.startswith("."):
            continue  # temporary files of a writer
        out[path.name] = (parquet_checksum(path) if path.suffix == ".parquet"
                          else hashlib.sha256(path.read_bytes()).hexdigest()[:16])
    return out


def online_table_rows(online_db: Path) -> dict[str, list[tuple]]:
    """The rows of every table of a Feast SQLite online store (:data:`ONLINE_COLUMNS`,
    sorted), by table name (``<project>_<feature view>``)."""
    if not online_db.exists():
        return {}
    # Not read-only: after a crash SQLite rolls a hot journal back on open, as Feast's own
    # connections do; a read-only one would refuse to read instead.
    con = sqlite3.connect(online_db)
    try:
        tables = [r[0] for r in con.execute(
            "select name from sqlite_master where type = 'table' order by name")]
        cols = ", ".join(ONLINE_COLUMNS)
        return {t: con.execute(f"select {cols} from {_quote(t)} order by entity_key, "  # noqa: S608 - quoted name
                               "feature_name").fetchall() for t in tables}
    finally:
        con.close()


def _rows_digest(rows: list[tuple]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        for value in row:
            data = value if isinstance(value, bytes) else repr(value).encode()
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
    return f"{len(rows)}:{digest.hexdigest()[:16]}"


def _online_db(cfg: Config) -> Path:
    cfg = cfg.resolved()
    if cfg.online_store.type != "sqlite":
        raise NotImplementedError(f"online-store checksums read SQLite only, not "
                                  f"{cfg.online_store.type!r}")
    return Path(cfg.online_store.feast_config(cfg.feast_dir)["path"])


def online_entity_checksums(cfg: Config) -> dict[str, str]:
    """Per feature view and customer of the SQLite online store, keyed
    ``<table>/<entity key, hex>``: the digest of that customer's rows of the view (all its
    features with their event timestamp). Feast writes a customer's row of a view in one
    transaction, so after a crash each must be the old row or the new one."""
    out = {}
    for table, rows in online_table_rows(_online_db(cfg)).items():
        groups: dict[bytes, list[tuple]] = {}
        for row in rows:
            groups.setdefault(row[0], []).append(row)
        for key, group in groups.items():
            out[f"{table}/{key.hex()}"] = _rows_digest(group)
    return out


def online_checksums(cfg: Config) -> dict[str, str]:
    """Per feature view of the SQLite online store: rows and a digest of their sorted rows.

    Raises
    ------
    NotImplementedError
        For a Redis online store (the trials and tests use SQLite).
    """
    return {table: _rows_digest(rows)
            for table, rows in online_table_rows(_online_db(cfg)).items()}


def model_checksums(models_dir: Path) -> dict[str, str]:
    """Per saved model: ``"<version>:<digest of its metadata without the volatile keys>"``.

    The version is the content hash of the weight files as found
    (:func:`clv_models.models.base.content_version`); one that differs from the metadata's
    ``model_version`` (weights of one training beside the metadata of another) reads
    ``"torn: ..."``.
    """
    out = {}
    for directory in sorted(models_dir.iterdir()) if models_dir.is_dir() else []:
        meta_path = directory / METADATA_FILE
        if directory.name.startswith(".") or not meta_path.exists():
            continue
        try:
            meta = json.loads(meta_path.read_text())
            version = content_version(directory)
        except (OSError, ValueError) as exc:
            out[directory.name] = f"unreadable: {exc}"
            continue
        if version != meta.get("model_version"):
            out[directory.name] = (f"torn: files hash to {version}, metadata says "
                                   f"{meta.get('model_version')}")
            continue
        kept = {k: v for k, v in meta.items() if k not in VOLATILE_METADATA}
        text = json.dumps(kept, sort_keys=True, default=str).encode()
        out[directory.name] = f"{meta.get('model_version')}:{hashlib.sha256(text).hexdigest()[:16]}"
    return out


def metrics(reports_dir: Path) -> dict | None:
    """``evaluation.json`` without :data:`VOLATILE_REPORT_KEYS` (None when absent)."""
    path = reports_dir / "evaluation.json"
    if not path.exists():
        return None
    payload = json.loads(path.read_text())
    return {k: v for k, v in payload.items() if k not in VOLATILE_REPORT_KEYS}


def metrics_checksums(reports_dir: Path) -> dict[str, str]:
    """Per evaluated model, a digest of its metrics row; ``split`` for the rest of the report."""
    payload = metrics(reports_dir)
    if payload is None:
        return {}

    def digest(value) -> str:
        return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]

    out = {row["model"]: digest(row) for row in payload.pop("rows", [])}
    out["split"] = digest(payload)
    return out


def compute(cfg: Config, sections: tuple[str, ...] = SECTIONS) -> Checksums:
    """The checksums of a data directory, by section (see the module), for what exists.

    A missing warehouse, BI copy, online store, model or report gives an empty section.
    """
    cfg = cfg.resolved()
    out: Checksums = {}
    for section in sections:
        if section == "raw":
            out[section] = folder_checksums(cfg.raw_dir, "*.*")
        elif section == "warehouse":
            out[section] = (database_checksums(cfg.warehouse_path)
                            if cfg.warehouse_path.exists() else {})
        elif section == "scores":
            out[section] = score_set_checksums(cfg.warehouse_path)
        elif section == "features":
            out[section] = folder_checksums(cfg.features_dir)
        elif section == "online":
            out[section] = online_checksums(cfg)
        elif section == "models":
            out[section] = model_checksums(cfg.models_dir)
        elif section == "metrics":
            out[section] = metrics_checksums(cfg.reports_dir)
        elif section == "bi":
            database = cfg.bi_dir / "clv_bi.duckdb"
            tables = database_checksums(database) if database.exists() else {}
            parquet = folder_checksums(cfg.bi_dir / "parquet" / "current")
            out[section] = {**tables, **{f"parquet/{k}": v for k, v in parquet.items()
                                         if Path(k).stem not in VOLATILE_TABLES}}
        else:
            raise ValueError(f"unknown checksum section {section!r}; known: {SECTIONS}")
    return out


def differences(a: Checksums, b: Checksums) -> list[str]:
    """What differs between two :func:`compute` results, one line per item (empty: equal)."""
    out = []
    for section in sorted(set(a) | set(b)):
        left, right = a.get(section, {}), b.get(section, {})
        for key in sorted(set(left) | set(right)):
            if left.get(key) != right.get(key):
                out.append(f"{section}/{key}: {left.get(key, 'absent')} != "
                           f"{right.get(key, 'absent')}")
    return out


def unexplained(previous: Checksums, new: Checksums, after: Checksums,
                ignore: Callable[[str, str], bool] | None = None) -> tuple[list[str], dict]:
    """Items of ``after`` that are neither their ``previous`` nor their ``new`` version.

    The test of "never torn": after a crash each table, file, scored set, model and online
    row must be what it was before the interrupted stage or what the stage writes when it
    completes (absent counts as a version where it is absent before or after). ``ignore``
    ``(section, key)`` skips leftovers that are allowed (temporary relations of a killed dbt).

    Returns
    -------
    problems, counts
        One line per unexplained item; and how many items equal their previous version only
        (``previous``), their new version only (``new``), both (``same``), and were ignored.
    """
    problems: list[str] = []
    counts = {"previous": 0, "new": 0, "same": 0, "ignored": 0}
    for section in sorted(set(previous) | set(new) | set(after)):
        p, n, a = previous.get(section, {}), new.get(section, {}), after.get(section, {})
        for key in sorted(set(p) | set(n) | set(a)):
            if ignore is not None and ignore(section, key):
                counts["ignored"] += 1
                continue
            got = a.get(key)
            if got == p.get(key) and got == n.get(key):
                counts["same"] += 1
            elif got == p.get(key):
                counts["previous"] += 1
            elif got == n.get(key):
                counts["new"] += 1
            else:
                problems.append(f"{section}/{key}: {got or 'absent'}, previous "
                                f"{p.get(key, 'absent')}, new {n.get(key, 'absent')}")
    return problems, counts
