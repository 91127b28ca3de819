"""Running the dbt project in ``warehouse/`` and reading what it built.

dbt runs in its own process (the real ``dbt`` CLI), so the DuckDB file lock it holds is released
when it exits; the other stages open the warehouse only after it finished.
"""

from __future__ import annotations

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

from clv_models import csv_check
from clv_models.config import Config

_PROGRESS = re.compile(r"\b(\d+) of (\d+) (START|OK|PASS|ERROR|FAIL|WARN|SKIP|NO-OP)\b")
_DONE = re.compile(r"Done\. PASS=(\d+) WARN=\d+ ERROR=\d+ SKIP=\d+ NO-OP=(\d+) TOTAL=(\d+)")


class DbtError(RuntimeError):
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


OPTIONAL_TABLES = ("returns", "page_views", "customers")
#: Written into the raw directory when its tables are replaced (a new shop, an import): the next
#: build must then rebuild incremental models whole instead of appending to another shop's rows.
REPLACED_MARKER = ".replaced"


def mark_raw_replaced(raw_dir: Path) -> None:
    """Record that the raw tables were replaced (see :data:`REPLACED_MARKER`)."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    (raw_dir / REPLACED_MARKER).write_text("the next dbt build runs with --full-refresh\n")


def missing_tables(raw_dir: Path) -> list[str]:
    """Optional raw tables with no file (or an empty one): dbt reads them as empty tables."""
    fmt = raw_format(raw_dir)
    paths = {t: raw_dir / f"{t}.{fmt}" for t in OPTIONAL_TABLES}
    return [t for t, p in paths.items() if not p.exists() or p.stat().st_size == 0]


def raw_format(raw_dir: Path) -> str:
    """``parquet`` or ``csv``: the format of the raw files (``orders.<format>`` decides).

    Orders are required: no orders file, or an empty one (0 bytes), stops here, before dbt.
    """
    for fmt in ("parquet", "csv"):
        path = raw_dir / f"orders.{fmt}"
        if path.exists():
            if path.stat().st_size == 0:
                raise DbtError(f"{path} is an empty file (0 bytes): orders are required")
            return fmt
    raise DbtError(f"no raw data in {raw_dir} (expected orders.parquet or orders.csv): "
                   "run `clv generate` or `clv import` first")


def raw_csv_options(cfg: Config) -> str:
    """The ``read_csv`` options the dbt sources read raw CSV files with (var raw_csv_options).

    Read from ``dbt_project.yml``, so that counting raw rows here reads a file as dbt does.
    """
    project = yaml.safe_load((cfg.warehouse_dir / "dbt_project.yml").read_text())
    return project["vars"]["raw_csv_options"]


def _raw_csv_problems(cfg: Config, dbt_output: str) -> list[str]:
    """The first unreadable line of each raw CSV file that a failed dbt run names.

    DuckDB's own message on a malformed CSV file may be about its dialect sniffer or quote
    another line (see :mod:`clv_models.csv_check`); this names the line and what is wrong.
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
    dbt_vars = {**cfg.dbt_vars(), "raw_format": raw_format(cfg.raw_dir),
                "raw_missing_tables": missing_tables(cfg.raw_dir), **user_vars}
    cmd = [dbt_executable(), *args, "--project-dir", str(cfg.warehouse_dir),
           "--profiles-dir", str(cfg.warehouse_dir), "--vars", json.dumps(dbt_vars, default=str)]
    env = {**os.environ, **cfg.env(), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
           "DBT_USE_COLORS": "false"}
    log: list[str] = []
    done = total = 0
    proc = subprocess.Popen(cmd, cwd=cfg.warehouse_dir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        log.append(line)
        if echo:
            echo(line)
        m = _PROGRESS.search(line)
        if m and m.group(3) != "START":
            done, total = int(m.group(1)), int(m.group(2))
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
    summary = next((_DONE.search(ln) for ln in reversed(log) if _DONE.search(ln)), None)
    passed = int(summary.group(1)) + int(summary.group(2)) if summary else done
    total = int(summary.group(3)) if summary else total
    return DbtResult(command=cmd, returncode=returncode, nodes_total=total, passed=passed,
                     log=log)


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
