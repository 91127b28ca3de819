"""The raw data directory: which tables it holds, in which format, and whether it was replaced.

The raw input contract (``docs/contracts.md``) has one required table (orders) and three optional
ones; the format of ``orders`` decides the format of all four.
"""

from __future__ import annotations

from pathlib import Path

from clv_models.core.errors import DataError

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
                raise DataError(f"{path} is an empty file (0 bytes): orders are required")
            return fmt
    raise DataError(f"no raw data in {raw_dir} (expected orders.parquet or orders.csv): "
                   "run `clv generate` or `clv import` first")


