"""The tables the package writes into the warehouse, as the dbt project declares them.

``clv_scores`` and ``clv_scoring_thresholds`` are declared once, as the source ``clv`` in
``warehouse/models/staging/clv/_clv__sources.yml`` (column names, types and ``meta.not_null``).
dbt's on-run-start hook creates the tables from that declaration; scoring reads the same
declaration here, so the tables dbt creates and the rows Python writes cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

SOURCES_FILE = Path("models") / "staging" / "clv" / "_clv__sources.yml"
SCORES_TABLE = "clv_scores"
THRESHOLDS_TABLE = "clv_scoring_thresholds"
#: What identifies a scored set in both tables (a scoring run replaces its own sets).
SCORE_SET = ("as_of_date", "model_name", "model_version")


@dataclass(frozen=True)
class Column:
    """One declared column."""

    name: str
    data_type: str
    not_null: bool


@cache
def _columns(sources_file: Path, table: str) -> tuple[Column, ...]:
    doc = yaml.safe_load(sources_file.read_text())
    source = next(s for s in doc["sources"] if s["name"] == "clv")
    declared = next(t for t in source["tables"] if t["name"] == table)
    return tuple(Column(c["name"], c["data_type"], bool((c.get("meta") or {}).get("not_null")))
                 for c in declared["columns"])


def columns(warehouse_dir: Path, table: str = SCORES_TABLE) -> tuple[Column, ...]:
    """The declared columns of ``table`` in order, from the dbt project in ``warehouse_dir``."""
    return _columns((Path(warehouse_dir) / SOURCES_FILE).resolve(), table)


def column_names(warehouse_dir: Path, table: str = SCORES_TABLE) -> list[str]:
    """The names of :func:`columns`."""
    return [c.name for c in columns(warehouse_dir, table)]


def ddl(warehouse_dir: Path, table: str = SCORES_TABLE) -> str:
    """``create table if not exists <table> (...)``, as the on-run-start hook runs it."""
    body = ",\n".join(f"    {c.name} {c.data_type}{' not null' if c.not_null else ''}"
                      for c in columns(warehouse_dir, table))
    return f"create table if not exists {table} (\n{body}\n)"


def migrations(warehouse_dir: Path, table: str = SCORES_TABLE) -> list[str]:
    """``alter table ... add column if not exists`` for every declared column, as the
    on-run-start hook runs them: a table created by an earlier release gains the columns
    declared since, as nullable columns, and keeps its rows."""
    return [f"alter table {table} add column if not exists {c.name} {c.data_type}"
            for c in columns(warehouse_dir, table)]
