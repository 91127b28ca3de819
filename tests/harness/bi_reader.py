"""A BI client for tests/test_bi_access.py: queries the published scores in a tight loop.

Run as its own process (``python tests/harness/bi_reader.py --mode duckdb ...``) while scoring runs and
dbt builds the warehouse. Every read opens a new connection, runs the checks below and closes
it, the way a dashboard with a fresh (or NullPool) connection per query reads:

- every scored set (as_of_date, model_name, model_version) is complete: as many rows as
  customers with features at its as-of date (``--expected``), no customer twice, deciles 1..10;
- ``duckdb`` and ``sqlalchemy`` modes (the published DuckDB file, one connection = one
  publication): ``clv_scores_latest_by_model`` has one row per (customer, model) of
  ``clv_scores``, ``clv_scores_latest`` one per customer of the champion's sets, the
  customers of ``clv_by_segment`` and ``clv_by_cohort`` add up to each set, and
  ``bi_publication`` names one publication whose row count of clv_scores is right;
- ``parquet`` mode (``parquet/current`` resolved once per read, then its files, which never
  change): the sets of ``clv_scores.parquet`` are complete, ``clv_by_segment.parquet`` adds up
  to them, and both carry the same publication id.

A query that raises counts as a failed read, a check that does not hold as an inconsistent
read. When the ``--stop`` file appears, writes a JSON summary to ``--out``: reads (with their
times), failures, inconsistencies (the first messages) and the publications seen.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import duckdb

SETS_SQL = """
select cast(as_of_date as varchar), model_name, model_version, count(*),
       count(distinct customer_id), min(clv_decile), max(clv_decile), count(distinct clv_decile)
from {scores}
group by all
"""


def check_sets(rows: list[tuple], expected: dict[str, int]) -> list[str]:
    """Problems with the scored sets in ``rows`` (the result of :data:`SETS_SQL`)."""
    problems = []
    if not rows:
        problems.append("no scored set")
    for as_of, model, version, n, distinct, lo, hi, deciles in rows:
        where = f"{as_of}/{model}/{version}"
        if n != expected.get(as_of):
            problems.append(f"{where}: {n} rows, expected {expected.get(as_of)}")
        if distinct != n:
            problems.append(f"{where}: {n} rows but {distinct} customers")
        if (lo, hi, deciles) != (1, 10, 10):
            problems.append(f"{where}: deciles {lo}..{hi} ({deciles} distinct)")
    return problems


def read_database(run, expected: dict[str, int]) -> tuple[str, list[str]]:
    """One read of the published DuckDB file through ``run(sql) -> rows``: (publication id,
    problems)."""
    sets = run(SETS_SQL.format(scores="clv_scores"))
    problems = check_sets(sets, expected)
    per_set = {(s[0], s[1], s[2]): s[3] for s in sets}
    for view, expected, what in (
            ("clv_scores_latest_by_model",
             "select count(*) from (select distinct customer_id, model_name from clv_scores)",
             "customer-models"),
            ("clv_scores_latest",
             "select count(distinct customer_id) from clv_scores where is_champion",
             "customers with a champion score")):
        rows, want = run(f"select (select count(*) from {view}), ({expected})")[0]
        if rows != want:
            problems.append(f"{view} has {rows} rows for {want} {what}")
    for model in ("clv_by_segment", "clv_by_cohort"):
        totals = {(a, m, v): n for a, m, v, n in run(
            f"select cast(as_of_date as varchar), model_name, model_version, sum(customers) "
            f"from {model} group by all")}
        if totals != per_set:
            problems.append(f"{model} does not add up to clv_scores")
    publication = run("select publication_id, count(distinct publication_id), "
                      "max(row_count) filter (where table_name = 'clv_scores') "
                      "from bi_publication group by all")
    if len(publication) != 1 or publication[0][2] != sum(per_set.values()):
        problems.append(f"bi_publication {publication} does not match clv_scores")
    return (publication[0][0] if publication else ""), problems


def read_parquet(current: Path, expected: dict[str, int]) -> tuple[str, list[str]]:
    """One read of the Parquet exports: resolve the ``current`` link once, then read that
    publication's files (they never change): (publication id, problems)."""
    folder = Path(os.path.realpath(current))
    scores, segments = folder / "clv_scores.parquet", folder / "clv_by_segment.parquet"
    with duckdb.connect() as con:
        sets = con.execute(SETS_SQL.format(scores=f"read_parquet('{scores}')")).fetchall()
        problems = check_sets(sets, expected)
        per_set = {(s[0], s[1], s[2]): s[3] for s in sets}
        totals = {(a, m, v): n for a, m, v, n in con.execute(
            "select cast(as_of_date as varchar), model_name, model_version, sum(customers) "
            "from read_parquet(?) group by all", [str(segments)]).fetchall()}
        if totals != per_set:
            problems.append("clv_by_segment.parquet does not add up to clv_scores.parquet")
        ids = {value.decode() for (value,) in con.execute(
            "select value from parquet_kv_metadata(?) where key = 'publication_id'",
            [[str(scores), str(segments)]]).fetchall()}
    if len(ids) != 1 or folder.name not in ids:
        problems.append(f"{folder.name} holds files of publications {sorted(ids)}")
    return folder.name, problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["duckdb", "sqlalchemy", "parquet"], required=True)
    parser.add_argument("--bi-dir", type=Path, required=True)
    parser.add_argument("--expected", type=Path, required=True,
                        help="JSON {as_of_date: customers with features at that date}")
    parser.add_argument("--stop", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--pause", type=float, default=0.05,
                        help="Seconds between reads (leaves the writers some CPU).")
    args = parser.parse_args()
    expected = json.loads(args.expected.read_text())
    database = args.bi_dir / "clv_bi.duckdb"
    engine = None
    if args.mode == "sqlalchemy":
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        # The URL form a BI tool is given; NullPool: a new connection (publication) per read.
        engine = sqlalchemy.create_engine(f"duckdb:///{database}?access_mode=read_only",
                                          poolclass=NullPool)

    def read_once() -> tuple[str, list[str]]:
        if args.mode == "parquet":
            return read_parquet(args.bi_dir / "parquet" / "current", expected)
        if engine is not None:
            with engine.connect() as conn:
                return read_database(
                    lambda sql: [tuple(r) for r in conn.exec_driver_sql(sql).fetchall()],
                    expected)
        with duckdb.connect(str(database), read_only=True) as con:
            return read_database(lambda sql: con.execute(sql).fetchall(), expected)

    reads: list[float] = []
    failures: list[str] = []
    inconsistent: list[str] = []
    publications: list[str] = []
    while not args.stop.exists():
        started = time.time()
        try:
            publication, problems = read_once()
        except Exception as exc:  # noqa: BLE001 - every failed query is counted
            failures.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.01)
            continue
        reads.append(started)
        time.sleep(args.pause)
        if problems:
            inconsistent.append("; ".join(problems[:3]))
        if publication not in publications:
            publications.append(publication)
    args.out.write_text(json.dumps({
        "mode": args.mode, "reads": reads, "failures": len(failures),
        "failure_messages": failures[:5], "inconsistent": len(inconsistent),
        "inconsistent_messages": inconsistent[:5], "publications": publications,
    }))


if __name__ == "__main__":
    main()
