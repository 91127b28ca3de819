"""Make a large feature set for materialization benchmarks from a small built shop.

Building a real 1M-customer shop takes more than half an hour here (``clv bench warehouse``);
the online-store writers only care about the number of customers, the feature views' columns,
types and widths. This script takes the latest as-of date of every feature export of a built
data directory and copies its rows under new customer ids (``<id>~<copy>``) until there are
``--customers`` customers, writing the same Parquet files (labels excluded) to ``DEST``. The
values repeat; the shape is real.

Usage::

    python scripts/replicate_features.py data/features /tmp/features-1m --customers 1000000
    clv --data-dir /tmp/big --set online_store.type=redis \\
        --set online_store.redis_url=redis://127.0.0.1:6379/5 features --full-refresh

(with ``/tmp/big/features`` a link to ``/tmp/features-1m`` and the shop's ``raw`` beside it).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import duckdb

from clv_models.core.sql import literal

LABELS = "customer_clv_labels.parquet"


def replicate(source: Path, dest: Path, customers: int) -> dict[str, int]:
    """Write every feature export of ``source`` to ``dest`` with ``customers`` customers at
    its latest as-of date; rows written per file."""
    dest.mkdir(parents=True, exist_ok=True)
    written = {}
    with duckdb.connect() as con:
        for path in sorted(source.glob("customer_*.parquet")):
            if path.name == LABELS:
                continue
            con.execute("create or replace temp table latest as select * from read_parquet(?) "
                        "where as_of_date = (select max(as_of_date) from read_parquet(?))",
                        [str(path), str(path)])
            base = con.execute("select count(*) from latest").fetchone()[0]
            copies = math.ceil(customers / base)
            out = dest / path.name
            con.execute(
                "create or replace temp table big as "
                "select * replace (customer_id || '~' || k as customer_id) "
                "from latest, range(?) as copies(k) "
                "order by k, customer_id limit ?", [copies, customers])
            con.execute(f"copy big to {literal(out)} (format parquet)")
            written[path.name] = con.execute("select count(*) from big").fetchone()[0]
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a built data directory's features/ folder")
    parser.add_argument("dest", type=Path, help="where to write the large feature set")
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    for name, rows in replicate(args.source, args.dest, args.customers).items():
        print(f"{name}: {rows:,} rows")


if __name__ == "__main__":
    main()
