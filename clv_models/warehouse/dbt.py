"""Running the dbt project in ``warehouse/`` and reading what it built.

dbt runs in its own process (the real ``dbt`` CLI), so the DuckDB file lock it holds is released
when it exits; the other stages open the warehouse only after it finished.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

from clv_models.core.config import Config
from clv_models.core.errors import CLVError, DataError
from clv_models.ingest import csv_check
from clv_models.ingest.raw import (
    OPTIONAL_TABLES,
    REPLACED_MARKER,
    missing_tables,
    raw_format,
)

_PROGRESS = re.compile(r"\b(\d+) of (\d+) (START|OK|PASS|ERROR|FAIL|WARN|SKIP|NO-OP)\b")


class DbtError(CLVError, RuntimeError):
    """``dbt`` exited with an error; the message carries the failing lines."""


@dataclass
class DbtResult:
    """What a dbt invocation did."""

    command: list[str]
    returncode: int
    nodes_total: int
    passed: int
    log: list[str]


def dbt_executable() -> str:
    """The ``dbt`` next to the running interpreter (the project's venv), else on ``PATH``."""
    candidate = Path(sys.executable).parent / "dbt"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("dbt")
    if not found:
        raise DbtError("the dbt CLI is not installed (pip install -e . installs dbt-duckdb)")
    return found


def project_var(cfg: Config, name: str):
    """A var's default in ``dbt_project.yml``."""
    project = yaml.safe_load((cfg.warehouse_dir / "dbt_project.yml").read_text())
    return project["vars"][name]


def raw_csv_options(cfg: Config) -> str:
    """The ``read_csv`` options the dbt sources read raw CSV files with (var raw_csv_options).

    Read from ``dbt_project.yml``, so that counting raw rows here reads a file as dbt does.
    """
    return project_var(cfg, "raw_csv_options")


def _raw_csv_problems(cfg: Config, dbt_output: str) -> list[str]:
    """The first unreadable line of each raw CSV file that a failed dbt run names.

    DuckDB's own message on a malformed CSV file may be about its dialect sniffer or quote
    another line (see :mod:`clv_models.ingest.csv_check`); this names the line and what is wrong.
    """
    problems = []
    for table in ("orders", *OPTIONAL_TABLES):
        path = cfg.raw_dir / f"{table}.csv"
        if str(path) in dbt_output and path.exists():
            problem = csv_check.first_problem(path)
            if problem:
                problems.append(problem)
    return problems


def run_dbt(
    cfg: Config,
    args: Sequence[str] = ("build",),
    progress: Callable[[int, int, str], None] | None = None,
    echo: Callable[[str], None] | None = None,
) -> DbtResult:
    """Run ``dbt <args>`` on the warehouse project with the configured paths and vars.

    Parameters
    ----------
    cfg
        Supplies the data paths (as environment variables read by ``profiles.yml`` and the
        sources) and the vars (horizon, as-of schedule).
    args
        The dbt sub-command and its options, e.g. ``["build", "--select", "marts"]``.
    progress
        Called with ``(done, total, line)`` as dbt reports finished nodes.
    echo
        Called with every output line (e.g. to print it).
    """
    cfg = cfg.resolved()
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    cfg.features_dir.mkdir(parents=True, exist_ok=True)
    args, user_vars = _split_vars(args)
    replaced = cfg.raw_dir / REPLACED_MARKER
    if replaced.exists() and args and args[0] in {"build", "run"} and "--full-refresh" not in args:
        args = [*args, "--full-refresh"]
    dbt_vars = {**project_vars(cfg), **user_vars}
    cmd = [dbt_executable(), *args, "--project-dir", str(cfg.warehouse_dir),
           "--profiles-dir", str(cfg.warehouse_dir), "--vars", json.dumps(dbt_vars, default=str)]
    env = {**os.environ, **cfg.env(), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
           "DBT_USE_COLORS": "false"}
    log: list[str] = []
    done = total = passed = 0
    proc = subprocess.Popen(cmd, cwd=cfg.warehouse_dir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        log.append(line)
        if echo:
            echo(line)
        finished = finished_node(line)
        if finished:
            # dbt numbers nodes by start order and reports them as they finish (two threads),
            # so its own numbers jump back and forth: count the finished nodes instead.
            status, total = finished
            done += 1
            passed += status in {"OK", "PASS", "WARN", "NO-OP"}
            if progress:
                progress(done, total, line)
    returncode = proc.wait()
    if returncode != 0:
        # dbt repeats every failure with its message after "Completed with ...".
        summary = [i for i, ln in enumerate(log) if "Completed with" in ln]
        detail = "\n".join(log[summary[-1] + 1:] if summary else log[-25:])
        if dbt_vars["raw_format"] == "csv":
            detail = "\n".join([*_raw_csv_problems(cfg, "\n".join(log)), detail])
        raise DbtError(f"dbt {' '.join(args)} failed (exit {returncode}):\n{detail}")
    if "--full-refresh" in args and not any(a in args for a in ("--select", "-s", "--exclude")):
        replaced.unlink(missing_ok=True)  # every incremental model has been rebuilt
    return DbtResult(command=cmd, returncode=returncode, nodes_total=total, passed=passed,
                     log=log)


def finished_node(line: str) -> tuple[str, int] | None:
    """``(status, nodes in the run)`` when a dbt output line reports a finished node (not a
    node starting, not an on-run-start hook); else ``None``."""
    m = _PROGRESS.search(line)
    if m is None or m.group(3) == "START" or " hook: " in line:
        return None
    return m.group(3), int(m.group(2))


def order_date_range(cfg: Config) -> tuple[dt.date, dt.date] | None:
    """The first and last order dates (UTC) of the raw orders on or after the project's
    ``data_start``, read as dbt reads them; ``None`` when there is no such order."""
    cfg = cfg.resolved()
    fmt = raw_format(cfg.raw_dir)
    path = cfg.raw_dir / f"orders.{fmt}"
    reader = "read_parquet(?)" if fmt == "parquet" else f"read_csv(?, {raw_csv_options(cfg)})"
    data_start = project_var(cfg, "data_start")
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        first, last = con.execute(
            "with t as (select try_cast(ordered_at as timestamptz) as ordered_ts "  # noqa: S608 - fixed SQL
            f"from {reader}) select min(ordered_ts)::date, max(ordered_ts)::date from t "
            "where ordered_ts >= cast(? as timestamptz)", [str(path), data_start]).fetchone()
    return None if first is None else (first, last)


def resolved_as_of_start(cfg: Config) -> dt.date:
    """The first as-of date for the raw data in ``cfg.raw_dir``.

    ``as_of.start: auto`` derives it from the first order (:class:`ScheduleConfig`). Either way,
    a schedule with no as-of date inside the data stops here with the data's date range.
    """
    try:
        span = order_date_range(cfg)
    except duckdb.Error:  # an unreadable file or column: dbt's checks name the problem
        span = None
    if span is None:  # no usable order: the build reports it (e.g. "orders.csv has no rows")
        return cfg.as_of.start or dt.date.fromisoformat(str(project_var(cfg, "data_start")))
    first, last = span
    start = cfg.as_of.first_date(first, last)
    if start > last + dt.timedelta(days=1):
        raise DataError(
            f"the as-of schedule starts at {start} but the orders cover {first} to {last}: "
            "no as-of date falls inside the data",
            hint="use --set as_of.start=auto (derived from the data) or a date between "
                 f"{first + dt.timedelta(days=1)} and {last + dt.timedelta(days=1)}")
    return start


def project_vars(cfg: Config) -> dict:
    """Every dbt ``--vars`` value the project needs for ``cfg``: the horizon and the as-of
    schedule (with ``as_of_start: auto`` resolved from the data), and the raw files' format and
    the optional tables they lack. ``clv env`` prints the same, for running dbt by hand."""
    return {**cfg.dbt_vars(), "as_of_start": resolved_as_of_start(cfg).isoformat(),
            "raw_format": raw_format(cfg.raw_dir),
            "raw_missing_tables": missing_tables(cfg.raw_dir)}


def _split_vars(args: Sequence[str]) -> tuple[list[str], dict]:
    """Take a user's ``--vars`` out of dbt arguments, to merge over the configured ones."""
    args = list(args)
    user: dict = {}
    for i, arg in enumerate(args):
        if arg == "--vars" and i + 1 < len(args):
            user = yaml.safe_load(args[i + 1]) or {}
            del args[i: i + 2]
            break
        if arg.startswith("--vars="):
            user = yaml.safe_load(arg.split("=", 1)[1]) or {}
            del args[i]
            break
    if not isinstance(user, dict):
        raise DbtError(f"--vars must be a YAML or JSON mapping, got {user!r}")
    return args, user


def table_counts(cfg: Config) -> dict[str, int]:
    """Row counts of the raw inputs and the main models, for the run summary."""
    cfg = cfg.resolved()
    counts: dict[str, int] = {}
    with duckdb.connect(str(cfg.warehouse_path), read_only=True) as con:
        existing = {r[0] for r in con.execute(
            "select table_name from information_schema.tables").fetchall()}
        fmt = raw_format(cfg.raw_dir)
        reader = ("read_parquet(?)" if fmt == "parquet"
                  else f"read_csv(?, {raw_csv_options(cfg)})")
        absent = missing_tables(cfg.raw_dir)
        for name in ("orders", "returns", "page_views", "customers"):
            raw = cfg.raw_dir / f"{name}.{fmt}"
            if name not in absent:
                counts[f"raw.{name}"] = con.execute(
                    f"select count(*) from {reader}", [str(raw)]).fetchone()[0]  # noqa: S608 - fixed SQL
        for model in ("stg_raw__orders", "stg_raw__returns", "stg_raw__page_views",
                      "stg_raw__customers", "stg_raw__quarantined_rows", "customer_rfm",
                      "customer_clv_labels", "clv_scores"):
            if model in existing:
                counts[model] = con.execute(f'select count(*) from "{model}"').fetchone()[0]  # noqa: S608 - fixed names
        if "stg_raw__quarantined_rows" in existing:
            for table, n in con.execute("select source_table, count(*) from "
                                        "stg_raw__quarantined_rows group by 1").fetchall():
                counts[f"quarantined.{table}"] = n
    return counts
