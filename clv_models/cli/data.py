"""Raw data in: ``clv generate`` (a synthetic shop) and ``clv import`` (public and custom
formats)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from clv_models.cli.common import config, console, parse_set, pipeline

if TYPE_CHECKING:
    from clv_models.ingest.importers import ImportResult


@click.command()
@click.option("--customers", type=int, help="Number of customers (default 20,000).")
@click.option("--seed", type=int, help="Random seed (same seed and size: same shop).")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), help="First day of the shop.")
@click.option("--end", type=click.DateTime(["%Y-%m-%d"]), help="Day after the last day.")
@click.pass_context
def generate(ctx: click.Context, customers, seed, start, end) -> None:
    """Write a synthetic shop (raw tables + ground truth) to DATA_DIR/raw and DATA_DIR/truth."""
    cfg = config(ctx, **{"shop.customers": customers, "shop.seed": seed,
                          "shop.start": start.date() if start else None,
                          "shop.end": end.date() if end else None})
    p = pipeline(cfg)
    p.generate()


@click.group("import")
def import_() -> None:
    """Turn public or custom export formats into the raw contract in DATA_DIR/raw.

    Importing replaces the raw tables (and any generated ground truth) in DATA_DIR; then run
    `clv run --skip-generate` with an as-of schedule inside the data (--set as_of.start=...).
    """


def _imported(result: ImportResult) -> None:
    rows = ", ".join(f"{table} {n:,}" for table, n in result.rows.items())
    console.print(f"[green]✓[/green] imported {rows} -> {result.raw_dir}")


@import_.command("cdnow")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def import_cdnow(ctx: click.Context, path: Path) -> None:
    """CDNOW_master.txt (customer, yyyymmdd, CD count, dollars per line) as orders."""
    from clv_models.ingest import importers

    cfg = config(ctx)
    _imported(importers.import_cdnow(cfg, path))


@import_.command("online-retail")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--timezone", default="Europe/London", show_default=True,
              help="Time zone of InvoiceDate.")
@click.pass_context
def import_online_retail(ctx: click.Context, path: Path, timezone: str) -> None:
    """UCI Online Retail (I or II) invoice lines, .xlsx/.csv/.parquet: orders, returns (C
    invoices) and customers."""
    from clv_models.ingest import importers

    cfg = config(ctx)
    _imported(importers.import_online_retail(cfg, path, timezone))


@import_.command("csv")
@click.argument("table", type=click.Choice(["orders", "returns", "page_views", "customers"]))
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--map", "mapping", multiple=True, metavar="COLUMN=FILE_COLUMN",
              help="Contract column from a differently named file column (repeatable).")
@click.option("--encoding", default="utf-8", show_default=True,
              help="Text encoding of a CSV file (e.g. latin-1, cp1252).")
@click.pass_context
def import_csv(ctx: click.Context, table: str, path: Path, mapping: tuple[str, ...],
               encoding: str) -> None:
    """One raw table from a CSV, Parquet or Excel file, renaming columns with --map.

    Other raw tables already in DATA_DIR/raw are kept, so tables can be imported one by one:
    `clv import csv orders orders.csv --map order_id=OrderNo --map ordered_at=Date ...`.
    Timestamps are ISO-8601 (without an offset: UTC); a malformed line, a value of the wrong
    type or text that is not in the encoding stops the import, naming the line(s).
    """
    from clv_models.ingest import importers

    cfg = config(ctx)
    _imported(importers.import_table(cfg, table, path, parse_set(mapping), encoding=encoding))
