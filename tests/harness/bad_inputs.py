"""The bad-input corpus: one small shop or importer file per defect, with its expected outcome.

Every defect sits on top of an otherwise valid shop (four customers, six orders, two returns,
four page views) or a valid importer file, and states what the product must do with it:

- ``Error``: the command stops (exit code 1, no traceback) with a message naming the file and
  the line or column (``InputFormatError`` from ``clv import``, ``DbtError`` from ``clv build``);
- ``Quarantine``: the rows land in ``stg_raw__quarantined_rows`` with this ``reason``, and raw rows
  = clean rows + quarantined rows (duplicates included) for every raw table;
- ``Accepted``: not a defect of the data, read as the contract says (an id with quotes kept
  verbatim, a timestamp without offset read as UTC, anonymous page views kept as anonymous).

As a script::

    python tests/harness/bad_inputs.py OUTDIR           # writes OUTDIR/<defect>/ (raw/ or an importer
                                                # file, and expected.json) for every defect
    python tests/harness/bad_inputs.py --check [WORKDIR]  # runs them all through the product and prints
                                                  # one line per defect with its outcome

``tests/test_bad_inputs.py`` runs the same corpus (:func:`run_corpus`). To stay fast it shares
one dbt build among the defects that can share a shop: one CSV shop holds every CSV row defect,
one Parquet shop every Parquet row defect and what the importers kept; each defect has its own
ids, so each is still checked on its own rows. Errors run one by one, on the one staging model
that reads the broken table.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import math
import os
import shutil
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click
import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

from clv_models.cli import main as clv
from clv_models.core.config import load_config
from clv_models.ingest.generate import SCHEMAS
from clv_models.warehouse import dbt as warehouse

Row = dict[str, object]
TABLES = ("orders", "returns", "page_views", "customers")
#: The clean staging model and the column identifying a row (record_id in the quarantine).
KEYS = {"orders": "order_id", "returns": "return_id", "page_views": "session_id",
        "customers": "customer_id"}
NAN, INF = float("nan"), float("inf")


# -- outcomes ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Error:
    """The command stops: exit code 1, ``exception`` named, every string of ``names`` in the
    message (the file, the line or column), no Python traceback."""

    exception: str
    names: tuple[str, ...]
    kind: str = "error"


@dataclass(frozen=True)
class Quarantine:
    """These rows of ``table``, as ``(record_id, customer_id)``, quarantined with ``reason``.

    ``also``: rows the defect's setup quarantines besides, as ``(table, record_id,
    customer_id, reason)`` (e.g. the negative order whose return is then unmatched).
    """

    table: str
    reason: str
    rows: tuple[tuple[str | None, str | None], ...]
    also: tuple[tuple[str, str | None, str | None, str], ...] = ()
    kind: str = "quarantine"

    def expected(self) -> set[tuple[str, str | None, str | None, str]]:
        return {(self.table, r, c, self.reason) for r, c in self.rows} | set(self.also)


@dataclass(frozen=True)
class Accepted:
    """Clean rows of ``stg_raw__<table>``: ``{key value: {column: expected value}}``.

    With ``complete``, these are all the table's clean rows; ``warning``: a line of the build
    log must contain it.
    """

    table: str
    rows: dict[str, dict[str, object]]
    how: str
    complete: bool = False
    warning: str | None = None
    kind: str = "accepted"


Outcome = Error | Quarantine | Accepted


# -- the valid shop -------------------------------------------------------------------------------

@dataclass
class Shop:
    """Raw tables as rows; ``extra_columns`` are written after the contract's columns,
    ``dropped`` contract columns are not written."""

    tables: dict[str, list[Row]]
    extra_columns: dict[str, list[str]] = field(default_factory=dict)
    dropped: dict[str, list[str]] = field(default_factory=dict)
    #: Parquet only: column -> Arrow type replacing the contract's (wrong-type defects).
    types: dict[str, dict[str, pa.DataType]] = field(default_factory=dict)

    def add(self, table: str, *rows: Row) -> None:
        self.tables[table].extend(rows)

    def columns(self, table: str) -> list[str]:
        return [*(c for c in SCHEMAS[table].names if c not in self.dropped.get(table, [])),
                *self.extra_columns.get(table, [])]


def valid_shop() -> Shop:
    """Four customers with orders, returns (one without order_id) and page views (one anonymous)."""
    return Shop({
        "customers": [
            {"customer_id": "c1", "signup_at": "2023-12-01T00:00:00Z", "country": "NL"},
            {"customer_id": "c2", "signup_at": "2023-12-05T00:00:00Z", "country": "DE"},
            {"customer_id": "c3", "signup_at": "2024-01-02T00:00:00Z", "country": "FR"},
            {"customer_id": "c4", "signup_at": None, "country": None},
        ],
        "orders": [
            {"order_id": "o1", "customer_id": "c1", "ordered_at": "2024-01-05T10:00:00Z",
             "order_total": 100.0, "currency": "EUR", "item_count": 2},
            {"order_id": "o2", "customer_id": "c1", "ordered_at": "2024-02-10T12:00:00Z",
             "order_total": 40.0, "currency": "EUR", "item_count": 1},
            {"order_id": "o3", "customer_id": "c2", "ordered_at": "2024-01-20T08:30:00Z",
             "order_total": 80.0, "currency": "EUR", "item_count": 3},
            {"order_id": "o4", "customer_id": "c3", "ordered_at": "2024-02-01T16:45:00Z",
             "order_total": 25.5, "currency": "EUR", "item_count": 1},
            {"order_id": "o5", "customer_id": "c4", "ordered_at": "2024-03-03T09:00:00Z",
             "order_total": 60.0, "currency": "EUR", "item_count": 2},
            {"order_id": "o6", "customer_id": "c2", "ordered_at": "2024-03-15T19:20:00Z",
             "order_total": 15.0, "currency": "EUR", "item_count": 1},
        ],
        "returns": [
            {"return_id": "r1", "customer_id": "c1", "returned_at": "2024-01-15T11:00:00Z",
             "refund_amount": 30.0, "order_id": "o1", "item_count": 1},
            {"return_id": "r2", "customer_id": "c2", "returned_at": "2024-02-01T10:00:00Z",
             "refund_amount": 10.0, "order_id": None, "item_count": 1},
        ],
        "page_views": [
            {"customer_id": "c1", "viewed_at": "2024-01-05T09:55:00Z", "session_id": "s1",
             "page_type": "product"},
            {"customer_id": None, "viewed_at": "2024-01-06T10:00:00Z", "session_id": "s2",
             "page_type": "home"},
            {"customer_id": "c3", "viewed_at": "2024-02-01T16:30:00Z", "session_id": "s3",
             "page_type": "category"},
            {"customer_id": "c2", "viewed_at": "2024-03-15T19:00:00Z", "session_id": "s4",
             "page_type": "cart"},
        ],
    })


def _text(value: object) -> str:
    """A value as CSV text: NaN and infinities as DuckDB and pandas spell them."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


def write_csv_shop(shop: Shop, raw_dir: Path) -> None:
    """Every table as RFC 4180 CSV (UTF-8, header, quotes where needed)."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    for table in TABLES:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        columns = shop.columns(table)
        writer.writerow(columns)
        for row in shop.tables[table]:
            writer.writerow([_text(row.get(c)) for c in columns])
        (raw_dir / f"{table}.csv").write_text(out.getvalue(), encoding="utf-8")


def write_parquet_shop(shop: Shop, raw_dir: Path) -> None:
    """Every table as Parquet with the contract's types (or the shop's replacements)."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    for table in TABLES:
        arrays, names = [], []
        for name in shop.columns(table):
            values = [row.get(name) for row in shop.tables[table]]
            kind = shop.types.get(table, {}).get(name)
            if kind is None:
                kind = SCHEMAS[table].field(name).type if name in SCHEMAS[table].names \
                    else pa.string()
            if pa.types.is_timestamp(kind):
                values = [None if v is None else pd.Timestamp(v) for v in values]
            arrays.append(pa.array(values, type=kind))
            names.append(name)
        pq.write_table(pa.Table.from_arrays(arrays, names=names), raw_dir / f"{table}.parquet")


# -- defects --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Defect:
    """One defect, where it enters the product, and what must come of it.

    ``source``: ``raw-csv`` / ``raw-parquet`` (a raw shop in the data directory, built with
    ``clv build``), or an importer: ``cdnow``, ``online-retail``, ``csv-import``
    (``clv import csv TABLE``). A raw defect is a ``patch`` of the valid shop (rows or columns
    added), and may also ``corrupt`` a written file's bytes; ``table`` is the raw table it
    breaks (its base staging model is what an error run builds). An importer defect writes its
    input file with ``make_input``; what the importer keeps then goes through the warehouse.
    """

    name: str
    what: str
    source: str
    outcome: Outcome
    table: str = "orders"
    patch: Callable[[Shop], None] | None = None
    corrupt: Callable[[Path], None] | None = None
    make_input: Callable[[Path], Path] | None = None
    import_args: tuple[str, ...] = ()


def _insert_line(path: Path, line: int, text: bytes) -> None:
    """Put ``text`` in as line ``line`` (1 = the header) of the file."""
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(line - 1, text + b"\n")
    path.write_bytes(b"".join(lines))


def _replace(path: Path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert data.count(old) == 1, (path, old)
    path.write_bytes(data.replace(old, new))


def _rows(table: str, *rows: Row) -> Callable[[Shop], None]:
    def patch(shop: Shop) -> None:
        shop.add(table, *rows)
    return patch


def _both(*patches: Callable[[Shop], None]) -> Callable[[Shop], None]:
    def patch(shop: Shop) -> None:
        for p in patches:
            p(shop)
    return patch


def _order(order_id, customer_id="c1", at="2024-02-20T10:00:00Z", total=10.0) -> Row:
    return {"order_id": order_id, "customer_id": customer_id, "ordered_at": at,
            "order_total": total}


def _return(return_id, order_id=None, customer_id="c1", at="2024-02-25T10:00:00Z",
            amount=5.0) -> Row:
    return {"return_id": return_id, "customer_id": customer_id, "returned_at": at,
            "refund_amount": amount, "order_id": order_id}


def _customer_with_order(customer_id: str, order_id: str) -> Callable[[Shop], None]:
    """A customer (in customers) with one order: the id must survive both tables verbatim."""
    return _both(_rows("customers", {"customer_id": customer_id}),
                 _rows("orders", _order(order_id, customer_id)))


def _no_column(table: str, column: str) -> Callable[[Shop], None]:
    def patch(shop: Shop) -> None:
        shop.dropped.setdefault(table, []).append(column)
    return patch


def _anonymous_only(shop: Shop) -> None:
    shop.tables["page_views"] = [
        {"customer_id": None, "viewed_at": f"2024-01-{d:02d}T12:00:00Z", "session_id": f"anon-{d}",
         "page_type": "home"} for d in (3, 9, 17)]


def _typed(table: str, column: str, kind: pa.DataType, value: Callable[[object], object]
           ) -> Callable[[Shop], None]:
    """Store ``column`` as ``kind`` (Parquet), converting each value with ``value``."""
    def patch(shop: Shop) -> None:
        shop.types.setdefault(table, {})[column] = kind
        for row in shop.tables[table]:
            row[column] = value(row.get(column))
    return patch


def _epoch_seconds(value: object) -> int | None:
    return None if value is None else int(pd.Timestamp(value).timestamp())


def _write(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_bytes(data)
        return path
    return make


CDNOW_LINES = [b" 00001 19970101  1   11.77\n", b" 00002 19970112  1   12.00\n",
               b" 00003 19970102  2   20.76\n"]
CDNOW_OK = b"".join(CDNOW_LINES)
UCI_HEADER = b"InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"


def _uci_ok(first_invoice: int, customer: int) -> bytes:
    """Two valid invoices (three item lines) of one customer; each defect its own numbers."""
    a, b = first_invoice, first_invoice + 1
    return (f"{a},85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,{customer},"
            f"United Kingdom\n{a},71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,{customer},"
            f"United Kingdom\n{b},84879,ASSORTED COLOUR BIRD ORNAMENT,32,12/1/2010 8:34,1.69,"
            f"{customer},United Kingdom\n").encode()


UCI_OK = _uci_ok(536365, 17850)
ORDERS_HEADER = b"order_id,customer_id,ordered_at,order_total\n"
ORDERS_OK = b"i1,c1,2024-01-05T10:00:00Z,10.5\ni2,c2,2024-01-06T11:00:00Z,20\n"
HOSTILE_IDS = {  # defect name -> (customer id, order id)
    "customer-id-with-quotes": ("O'Brien \"Bob\"", "q-quotes"),
    "customer-id-with-semicolons": ("c;5;\"x,y\"", "q-semicolons"),
    "customer-id-with-sql": ("x'); DROP TABLE stg_raw__orders; --", "q-sql"),
    "customer-id-with-unicode": ("Zoë-客户-🙂", "q-unicode"),
}


def _defects() -> list[Defect]:
    d: list[Defect] = []
    # -- malformed files and tables: errors --------------------------------------------------
    d += [
        Defect("csv-line-with-extra-field", "orders.csv line 4 has 8 fields, the header 7",
               "raw-csv", Error("DbtError", ("orders.csv", "line 4", "8 field(s) where the "
                                             "header has 7")),
               corrupt=lambda raw: _insert_line(raw / "orders.csv", 4,
                                                b"o9,c1,2024-02-01T10:00:00Z,12.0,EUR,1,web,x")),
        Defect("csv-line-with-missing-field", "page_views.csv line 3 has 2 fields, the header 6",
               "raw-csv", Error("DbtError", ("page_views.csv", "line 3", "2 field(s) where the "
                                             "header has 6")),
               table="page_views",
               corrupt=lambda raw: _insert_line(raw / "page_views.csv", 3,
                                                b"c1,2024-01-07T10:00:00Z")),
        Defect("csv-unterminated-quote", "returns.csv line 3 opens a quote it never closes",
               "raw-csv", Error("DbtError", ("returns.csv", "line 3", "never closed")),
               table="returns",
               corrupt=lambda raw: _insert_line(raw / "returns.csv", 3,
                                                b'r9,"c1,2024-02-01T10:00:00Z,5.0,o1,1')),
        Defect("csv-non-utf8-bytes", "customers.csv line 3 has a Latin-1 byte (R\\xe9union)",
               "raw-csv", Error("DbtError", ("customers.csv", "line 3, byte", "not UTF-8")),
               table="customers",
               corrupt=lambda raw: _replace(raw / "customers.csv", b",DE", b",R\xe9union")),
        Defect("orders-header-only", "orders.csv holds the header line only", "raw-csv",
               Error("DbtError", ("orders.csv", "has no rows")),
               corrupt=lambda raw: (raw / "orders.csv").write_bytes(
                   (raw / "orders.csv").read_bytes().splitlines(keepends=True)[0])),
        Defect("orders-empty-file", "orders.csv is 0 bytes", "raw-csv",
               Error("DataError", ("orders.csv", "empty file")),
               corrupt=lambda raw: (raw / "orders.csv").write_bytes(b"")),
        Defect("returns-without-orders-file", "returns, page views and customers but no orders "
               "file", "raw-parquet", Error("DataError", ("no raw data", "orders.parquet")),
               corrupt=lambda raw: (raw / "orders.parquet").unlink()),
        Defect("missing-required-column", "returns.csv has no refund_amount column", "raw-csv",
               Error("DbtError", ("returns.csv", "missing required column(s) refund_amount")),
               table="returns", patch=_no_column("returns", "refund_amount")),
        Defect("timestamp-column-as-integers", "orders.parquet ordered_at holds epoch seconds "
               "(BIGINT)", "raw-parquet",
               Error("DbtError", ("orders.parquet", "ordered_at is BIGINT")),
               patch=_typed("orders", "ordered_at", pa.int64(), _epoch_seconds)),
        Defect("amount-column-as-booleans", "returns.parquet refund_amount is BOOLEAN",
               "raw-parquet", Error("DbtError", ("returns.parquet", "refund_amount is BOOLEAN")),
               table="returns",
               patch=_typed("returns", "refund_amount", pa.bool_(), lambda v: v is not None)),
    ]
    # -- CSV rows: quarantined -----------------------------------------------------------------
    q = Quarantine
    d += [
        Defect("amount-not-a-number", "order_total '12,50 EUR'", "raw-csv",
               q("orders", "missing or non-numeric order_total", (("q-text", "c1"),)),
               patch=_rows("orders", _order("q-text", total="12,50 EUR"))),
        Defect("mixed-date-formats", "ordered_at '01/05/2024' and '5 Jan 2024' beside ISO dates",
               "raw-csv", q("orders", "missing or unparseable ordered_at",
                            (("q-us-date", "c1"), ("q-text-date", "c2"))),
               patch=_rows("orders", _order("q-us-date", at="01/05/2024"),
                           _order("q-text-date", "c2", at="5 Jan 2024"))),
        Defect("timestamp-garbage", "viewed_at 'yesterday'", "raw-csv",
               q("page_views", "missing or unparseable viewed_at", (("q-s-garbage", "c1"),)),
               table="page_views",
               patch=_rows("page_views", {"customer_id": "c1", "viewed_at": "yesterday",
                                          "session_id": "q-s-garbage"})),
        Defect("duplicate-order-id", "order o3 twice, the copy later and smaller", "raw-csv",
               q("orders", "duplicate order_id", (("o3", "c2"),)),
               patch=_rows("orders", _order("o3", "c2", at="2024-01-21T08:30:00Z", total=8.0))),
        Defect("duplicate-return-id", "return r1 twice (an exact copy)", "raw-csv",
               q("returns", "duplicate return_id", (("r1", "c1"),)), table="returns",
               patch=lambda shop: shop.add("returns", dict(shop.tables["returns"][0]))),
        Defect("duplicate-customer-id", "customer c3 twice, the copy signed up later",
               "raw-csv", q("customers", "duplicate customer_id", (("c3", "c3"),)),
               table="customers",
               patch=_rows("customers", {"customer_id": "c3",
                                         "signup_at": "2024-01-09T00:00:00Z"})),
        Defect("negative-order-total", "order_total -25", "raw-csv",
               q("orders", "negative order_total", (("q-negative", "c1"),)),
               patch=_rows("orders", _order("q-negative", total=-25.0))),
        Defect("negative-refund", "refund_amount -5", "raw-csv",
               q("returns", "negative refund_amount", (("q-r-negative", "c1"),)),
               table="returns", patch=_rows("returns", _return("q-r-negative", amount=-5.0))),
        Defect("nan-amount-text", "order_total 'NaN'", "raw-csv",
               q("orders", "non-finite order_total", (("q-nan", "c1"),)),
               patch=_rows("orders", _order("q-nan", total=NAN))),
        Defect("infinite-refund-text", "refund_amount 'inf' and '-inf'", "raw-csv",
               q("returns", "non-finite refund_amount",
                 (("q-r-inf", "c1"), ("q-r-minus-inf", "c2"))),
               table="returns",
               patch=_rows("returns", _return("q-r-inf", amount=INF),
                           _return("q-r-minus-inf", customer_id="c2", amount=-INF))),
        Defect("overflowing-amount-text", "refund_amount '1e400' (beyond a double)", "raw-csv",
               q("returns", "non-finite refund_amount", (("q-r-1e400", "c1"),)),
               table="returns", patch=_rows("returns", _return("q-r-1e400", amount="1e400"))),
        Defect("huge-amount", "order_total 4111111111111111 (a card number in the amount)",
               "raw-csv", q("orders", "order_total above max_amount", (("q-huge", "c1"),)),
               patch=_rows("orders", _order("q-huge", total="4111111111111111"))),
        Defect("future-order", "ordered_at 2099-01-01", "raw-csv",
               q("orders", "ordered_at in the future", (("q-future", "c1"),)),
               patch=_rows("orders", _order("q-future", at="2099-01-01T00:00:00Z"))),
        Defect("future-page-view", "viewed_at 2099-06-01 (an anonymous visitor)", "raw-csv",
               q("page_views", "viewed_at in the future", (("q-s-future", None),)),
               table="page_views",
               patch=_rows("page_views", {"customer_id": None, "viewed_at": "2099-06-01",
                                          "session_id": "q-s-future"})),
        Defect("future-signup", "signup_at 2099-01-01 (the customer's order stays clean)",
               "raw-csv",
               q("customers", "signup_at in the future", (("q-c-future", "q-c-future"),)),
               table="customers",
               patch=_both(_rows("customers", {"customer_id": "q-c-future",
                                               "signup_at": "2099-01-01T00:00:00Z"}),
                           _rows("orders", _order("q-o-future-signup", "q-c-future")))),
        Defect("epoch-zero-timestamp", "ordered_at 1970-01-01 (before data_start)", "raw-csv",
               q("orders", "ordered_at before data_start", (("q-epoch", "c1"),)),
               patch=_rows("orders", _order("q-epoch", at="1970-01-01T00:00:00Z"))),
        Defect("return-without-order", "a return naming order o404, which does not exist",
               "raw-csv", q("returns", "unknown order_id", (("q-r-orphan", "c1"),)),
               table="returns", patch=_rows("returns", _return("q-r-orphan", "o404"))),
        Defect("return-of-quarantined-order", "a return of order q-neg-2, quarantined for its "
               "negative total", "raw-csv",
               q("returns", "unknown order_id", (("q-r-of-negative", "c3"),),
                 also=(("orders", "q-neg-2", "c3", "negative order_total"),)), table="returns",
               patch=_both(_rows("orders", _order("q-neg-2", "c3", total=-1.0)),
                           _rows("returns", _return("q-r-of-negative", "q-neg-2", "c3")))),
        Defect("refund-above-order", "refunds of order o4 (25.50): 20, then 10", "raw-csv",
               q("returns", "refund exceeds its order", (("q-r-over", "c3"),)),
               table="returns",
               patch=_rows("returns", _return("q-r-under", "o4", "c3", amount=20.0),
                           _return("q-r-over", "o4", "c3", at="2024-02-26T10:00:00Z",
                                   amount=10.0))),
        Defect("return-of-another-customers-order", "c4 returns c2's order o6", "raw-csv",
               q("returns", "order_id of another customer", (("q-r-other", "c4"),)),
               table="returns", patch=_rows("returns", _return("q-r-other", "o6", "c4"))),
        Defect("blank-customer-id", "an order whose customer_id is '  '", "raw-csv",
               q("orders", "missing customer_id", (("q-no-customer", None),)),
               patch=_rows("orders", _order("q-no-customer", "  "))),
        Defect("blank-order-id", "an order without order_id", "raw-csv",
               q("orders", "missing order_id", ((None, "c4"),)),
               patch=_rows("orders", _order(None, "c4"))),
        Defect("unknown-customer", "an order of c99, who is not in customers", "raw-csv",
               q("orders", "unknown customer_id", (("q-stranger", "c99"),)),
               patch=_rows("orders", _order("q-stranger", "c99"))),
        Defect("unparseable-signup", "signup_at '31.12.2023'", "raw-csv",
               q("customers", "unparseable signup_at", (("q-c-date", "q-c-date"),)),
               table="customers",
               patch=_rows("customers", {"customer_id": "q-c-date", "signup_at": "31.12.2023"})),
    ]
    # -- CSV rows: read as the contract says ---------------------------------------------------
    d += [
        Defect("timestamp-without-offset", "ordered_at '2024-02-21 23:30:00' (no offset) beside "
               "'2024-02-21T23:30:00-05:00'", "raw-csv",
               Accepted("orders", {"q-naive": {"ordered_at": "2024-02-21 23:30:00"},
                                   "q-offset": {"ordered_at": "2024-02-22 04:30:00"}},
                        "no offset: UTC; an offset: converted to UTC"),
               patch=_rows("orders", _order("q-naive", at="2024-02-21 23:30:00"),
                           _order("q-offset", at="2024-02-21T23:30:00-05:00"))),
        Defect("extra-columns", "orders.csv has coupon_code and Item_Cnt beside the contract's "
               "columns", "raw-csv",
               Accepted("orders", {"o1": {"order_total": 100.0}},
                        "ignored, the build log names them",
                        warning="column(s) coupon_code, item_cnt not in the raw contract"),
               patch=lambda shop: shop.extra_columns.setdefault("orders", []).extend(
                   ["coupon_code", "Item_Cnt"])),
        Defect("padded-ids", "order ' q-padded ' of customer ' c2 '", "raw-csv",
               Accepted("orders", {"q-padded": {"customer_id": "c2"}}, "ids trimmed"),
               patch=_rows("orders", _order(" q-padded ", " c2 "))),
    ]
    for name, (customer, order) in HOSTILE_IDS.items():
        d.append(Defect(name, f"customer_id {customer!r} (in customers and orders)", "raw-csv",
                        Accepted("orders", {order: {"customer_id": customer}}, "kept verbatim"),
                        patch=_customer_with_order(customer, order)))
    # -- Parquet rows --------------------------------------------------------------------------
    d += [
        Defect("nan-amount", "order_total NaN (a double)", "raw-parquet",
               q("orders", "non-finite order_total", (("p-nan", "c1"),)),
               patch=_rows("orders", _order("p-nan", total=NAN))),
        Defect("negative-infinite-amount", "order_total -inf (a double)", "raw-parquet",
               q("orders", "non-finite order_total", (("p-minus-inf", "c2"),)),
               patch=_rows("orders", _order("p-minus-inf", "c2", total=-INF))),
        Defect("infinite-refund", "refund_amount +inf (a double)", "raw-parquet",
               q("returns", "non-finite refund_amount", (("p-r-inf", "c1"),)), table="returns",
               patch=_rows("returns", _return("p-r-inf", amount=INF))),
        Defect("huge-amount-double", "order_total 1e300", "raw-parquet",
               q("orders", "order_total above max_amount", (("p-huge", "c3"),)),
               patch=_rows("orders", _order("p-huge", "c3", total=1e300))),
        Defect("null-timestamp", "ordered_at null", "raw-parquet",
               q("orders", "missing or unparseable ordered_at", (("p-no-time", "c4"),)),
               patch=_rows("orders", _order("p-no-time", "c4", at=None))),
        Defect("anonymous-page-views-only", "page_views.parquet: three views, all anonymous",
               "raw-parquet",
               Accepted("page_views", {f"anon-{d}": {"customer_id": None} for d in (3, 9, 17)},
                        "kept as anonymous views (no customer's engagement)", complete=True),
               table="page_views", patch=_anonymous_only),
    ]
    # -- importers: errors -----------------------------------------------------------------------
    e = Error
    d += [
        Defect("cdnow-line-with-3-fields", "a CDNOW line without its dollar amount", "cdnow",
               e("InputFormatError", ("bad.txt", "expected 4 fields", "line(s) 3")),
               make_input=_write("bad.txt", b"".join(CDNOW_LINES[:2]) + b" 00004 19970103  1\n"
                                 + CDNOW_LINES[2])),
        Defect("cdnow-iso-date", "a CDNOW date written 1997-01-02 (mixed date formats)", "cdnow",
               e("InputFormatError", ("bad.txt", "date is not yyyymmdd", "line(s) 4",
                                      "'1997-01-02'")),
               make_input=_write("bad.txt", CDNOW_OK + b" 00004 1997-01-02  1   5.00\n")),
        Defect("cdnow-nan-and-inf-dollars", "CDNOW dollar amounts 'nan' and 'inf'", "cdnow",
               e("InputFormatError", ("bad.txt", "dollar amount is not a number",
                                      "line(s) 4, 5")),
               make_input=_write("bad.txt", CDNOW_OK + b" 00004 19970103  1   nan\n"
                                 b" 00005 19970103  1   inf\n")),
        Defect("cdnow-non-utf8", "a CDNOW line with byte \\xa0", "cdnow",
               e("InputFormatError", ("bad.txt", "line 2, byte", "not UTF-8")),
               make_input=_write("bad.txt", CDNOW_OK.replace(b"00002 19970112  1",
                                                             b"00002 19970112\xa01", 1))),
        Defect("cdnow-empty-file", "a CDNOW file of blank lines", "cdnow",
               e("InputFormatError", ("bad.txt", "empty file")),
               make_input=_write("bad.txt", b"\n\n")),
        Defect("uci-header-only", "an Online Retail CSV with its header only", "online-retail",
               e("InputFormatError", ("retail.csv", "header only")),
               make_input=_write("retail.csv", UCI_HEADER)),
        Defect("uci-empty-file", "an Online Retail CSV of 0 bytes", "online-retail",
               e("InputFormatError", ("retail.csv", "empty file")),
               make_input=_write("retail.csv", b"")),
        Defect("uci-missing-column", "an Online Retail CSV without InvoiceDate",
               "online-retail", e("InputFormatError", ("retail.csv", "missing column(s) "
                                                       "InvoiceDate")),
               make_input=_write("retail.csv", b"InvoiceNo,StockCode,Description,Quantity,"
                                 b"UnitPrice,CustomerID,Country\n1,A,B,1,2.0,3,UK\n")),
        Defect("uci-quantity-not-a-number", "Quantity 'six' on line 3", "online-retail",
               e("InputFormatError", ("retail.csv", "Quantity is not a number", "line(s) 3",
                                      "'six'")),
               make_input=_write("retail.csv", UCI_HEADER + UCI_OK.replace(b",6,12/1/2010 8:26,"
                                                                           b"3.39", b",six,12/1/"
                                                                           b"2010 8:26,3.39"))),
        Defect("uci-unparseable-date", "InvoiceDate '31/31/2010' on line 4", "online-retail",
               e("InputFormatError", ("retail.csv", "InvoiceDate is not a date", "line(s) 4")),
               make_input=_write("retail.csv", UCI_HEADER + UCI_OK.replace(b"12/1/2010 8:34",
                                                                           b"31/31/2010 8:34"))),
        Defect("import-mixed-date-formats", "ordered_at '01/06/2024' and '6 Jan 2024' beside "
               "ISO dates", "csv-import",
               e("InputFormatError", ("orders.csv", "ordered_at is not an ISO-8601 timestamp",
                                      "line(s) 4, 5")),
               make_input=_write("orders.csv", ORDERS_HEADER + ORDERS_OK
                                 + b"i3,c3,01/06/2024,5\ni4,c4,6 Jan 2024,5\n"),
               import_args=("orders",)),
        Defect("import-non-utf8", "a Latin-1 customer name on line 3", "csv-import",
               e("InputFormatError", ("orders.csv", "line 3, byte", "not UTF-8", "--encoding")),
               make_input=_write("orders.csv", ORDERS_HEADER + ORDERS_OK.replace(b",c2,",
                                                                             b",Jos\xe9,")),
               import_args=("orders",)),
        Defect("import-header-only", "a CSV with its header only", "csv-import",
               e("InputFormatError", ("orders.csv", "no rows")),
               make_input=_write("orders.csv", ORDERS_HEADER), import_args=("orders",)),
        Defect("import-empty-file", "a CSV of 0 bytes", "csv-import",
               e("InputFormatError", ("orders.csv", "empty file")),
               make_input=_write("orders.csv", b""), import_args=("orders",)),
        Defect("import-line-with-extra-field", "line 3 has 5 fields, the header 4",
               "csv-import", e("InputFormatError", ("orders.csv", "line 3", "5 field(s)")),
               make_input=_write("orders.csv", ORDERS_HEADER + b"i1,c1,2024-01-05,10\n"
                                 b"i2,c2,2024-01-06,20,x\n"), import_args=("orders",)),
        Defect("import-unterminated-quote", "line 3 opens a quote it never closes",
               "csv-import", e("InputFormatError", ("orders.csv", "line 3", "never closed")),
               make_input=_write("orders.csv", ORDERS_HEADER + b"i1,c1,2024-01-05,10\n"
                                 b'i2,"c2,2024-01-06,20\ni3,c3,2024-01-07,5\n'),
               import_args=("orders",)),
        Defect("import-amount-not-a-number", "order_total '12,50' (quoted) and 'NaN'",
               "csv-import",
               e("InputFormatError", ("orders.csv", "order_total is not a finite number",
                                      "line(s) 4, 5", "'12,50'")),
               make_input=_write("orders.csv", ORDERS_HEADER + ORDERS_OK
                                 + b'i3,c3,2024-01-07,"12,50"\ni4,c4,2024-01-07,NaN\n'),
               import_args=("orders",)),
        Defect("import-missing-required-column", "no order_total column and no --map for it",
               "csv-import",
               e("InputFormatError", ("orders.csv", "order_total", "--map")),
               make_input=_write("orders.csv", b"order_id,customer_id,ordered_at\n"
                                 b"i1,c1,2024-01-05\n"), import_args=("orders",)),
        Defect("import-mapped-column-absent", "--map order_total=Amount, the file has Total",
               "csv-import", e("InputFormatError", ("orders.csv", "Amount", "not in the file")),
               make_input=_write("orders.csv", b"order_id,customer_id,ordered_at,Total\n"
                                 b"i1,c1,2024-01-05,10\n"),
               import_args=("orders", "--map", "order_total=Amount")),
    ]
    # -- importers: what they keep goes through the warehouse ----------------------------------
    d += [
        Defect("cdnow-negative-dollars", "a CDNOW purchase of -5.00 dollars", "cdnow",
               q("orders", "negative order_total", (("00004-19970103-4", "00004"),)),
               make_input=_write("cdnow.txt", CDNOW_OK + b" 00004 19970103  1   -5.00\n")),
        Defect("uci-blank-customer", "an Online Retail invoice with a blank CustomerID",
               "online-retail", q("orders", "missing customer_id", (("536414", None),)),
               make_input=_write("retail.csv", UCI_HEADER + _uci_ok(536400, 17001)
                                 + b"536414,22139,,56,12/1/2010 11:52,0,,United Kingdom\n")),
        Defect("uci-negative-invoice", "an Online Retail invoice of -11062.06 (UCI's 'Adjust "
               "bad debt' lines)", "online-retail",
               q("orders", "negative order_total", (("A563186", "17002"),)),
               make_input=_write("retail.csv", UCI_HEADER + _uci_ok(536500, 17002)
                                 + b"A563186,B,Adjust bad debt,1,8/12/2011 14:51,-11062.06,17002,"
                                 b"United Kingdom\n")),
        Defect("import-hostile-customer-ids", "customer ids with quotes, a semicolon, SQL and "
               "emoji", "csv-import",
               Accepted("orders", {"h1": {"customer_id": "O'Brien \"Bob\""},
                                   "h2": {"customer_id": "x'); DROP TABLE orders; --"},
                                   "h3": {"customer_id": "Zoë;客户;🙂"}}, "kept verbatim"),
               make_input=_write("orders.csv", ORDERS_HEADER
                                 + "h1,\"O'Brien \"\"Bob\"\"\",2024-01-05,1\n"
                                   "h2,x'); DROP TABLE orders; --,2024-01-05,2\n"
                                   "h3,Zoë;客户;🙂,2024-01-05,3\n".encode()),
               import_args=("orders",)),
        Defect("import-timestamp-without-offset", "ordered_at '2024-01-05 23:30' (no offset) "
               "and '2024-01-05T23:30:00+01:00'", "csv-import",
               Accepted("orders", {"t1": {"ordered_at": "2024-01-05 23:30:00"},
                                   "t2": {"ordered_at": "2024-01-05 22:30:00"}},
                        "no offset: UTC; an offset: converted to UTC"),
               make_input=_write("orders.csv", ORDERS_HEADER + b"t1,c1,2024-01-05 23:30,1\n"
                                 b"t2,c1,2024-01-05T23:30:00+01:00,2\n"),
               import_args=("orders",)),
        Defect("import-extra-columns", "an export with Voucher and Notes columns", "csv-import",
               Accepted("orders", {"x1": {"order_total": 7.5}}, "dropped at import"),
               make_input=_write("orders.csv", b"order_id,customer_id,ordered_at,order_total,"
                                 b"Voucher,Notes\nx1,c1,2024-01-05,7.5,SUMMER,gift\n"),
               import_args=("orders",)),
    ]
    return d


DEFECTS = _defects()
BY_NAME = {x.name: x for x in DEFECTS}
assert len(BY_NAME) == len(DEFECTS), "defect names must be unique"

#: The kinds of defect covered, and the corpus entries that cover each.
ISSUE_ITEMS = {
    "malformed CSV lines": ["csv-line-with-extra-field", "csv-line-with-missing-field",
                            "csv-unterminated-quote", "import-line-with-extra-field",
                            "import-unterminated-quote", "cdnow-line-with-3-fields"],
    "wrong types": ["amount-not-a-number", "timestamp-garbage", "timestamp-column-as-integers",
                    "amount-column-as-booleans", "uci-quantity-not-a-number",
                    "import-amount-not-a-number"],
    "missing required columns": ["missing-required-column", "uci-missing-column",
                                 "import-missing-required-column", "import-mapped-column-absent"],
    "unexpected extra columns": ["extra-columns", "import-extra-columns"],
    "empty files": ["orders-empty-file", "cdnow-empty-file", "uci-empty-file",
                    "import-empty-file"],
    "a header only": ["orders-header-only", "uci-header-only", "import-header-only"],
    "duplicate ids": ["duplicate-order-id", "duplicate-return-id", "duplicate-customer-id"],
    "negative amounts": ["negative-order-total", "negative-refund", "cdnow-negative-dollars",
                         "uci-negative-invoice"],
    "NaN/inf amounts": ["nan-amount-text", "infinite-refund-text", "nan-amount",
                        "negative-infinite-amount", "infinite-refund",
                        "cdnow-nan-and-inf-dollars"],
    "huge values": ["huge-amount", "huge-amount-double", "overflowing-amount-text"],
    "future timestamps": ["future-order", "future-page-view", "future-signup"],
    "timestamps without offset": ["timestamp-without-offset", "import-timestamp-without-offset"],
    "mixed date formats": ["mixed-date-formats", "import-mixed-date-formats", "cdnow-iso-date"],
    "non-UTF-8 bytes": ["csv-non-utf8-bytes", "cdnow-non-utf8", "import-non-utf8"],
    "returns without orders": ["return-without-order", "return-of-quarantined-order",
                               "returns-without-orders-file"],
    "refunds above the order": ["refund-above-order"],
    "customer ids with quotes, semicolons, SQL keywords or unicode": [
        "customer-id-with-quotes", "customer-id-with-semicolons", "customer-id-with-sql",
        "customer-id-with-unicode", "import-hostile-customer-ids"],
    "page views of anonymous visitors only": ["anonymous-page-views-only"],
}


def shared(defect: Defect) -> bool:
    """Whether the defect can share a shop: not an error, a row-level change of its own ids."""
    return defect.outcome.kind != "error"


# -- writing ---------------------------------------------------------------------------------

def raw_shop(defects: list[Defect]) -> Shop:
    """The valid shop with each defect's patch applied, in order."""
    shop = valid_shop()
    for defect in defects:
        if defect.patch:
            defect.patch(shop)
    return shop


def write_defect(defect: Defect, folder: Path) -> Path:
    """Write one defect alone under ``folder`` (``raw/`` or its importer file) with
    ``expected.json``; returns the importer file, or the raw directory."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "expected.json").write_text(json.dumps(
        {"name": defect.name, "what": defect.what, "source": defect.source,
         "table": defect.table, "import_args": list(defect.import_args),
         "outcome": asdict(defect.outcome)}, indent=2, ensure_ascii=False, default=str) + "\n")
    if defect.make_input:
        return defect.make_input(folder)
    raw = folder / "raw"
    shop = raw_shop([defect])
    if defect.source == "raw-csv":
        write_csv_shop(shop, raw)
    else:
        write_parquet_shop(shop, raw)
    if defect.corrupt:
        defect.corrupt(raw)
    return raw


def write_corpus(out: Path) -> list[Path]:
    """Every defect in its own folder under ``out``."""
    return [write_defect(defect, out / defect.name) for defect in DEFECTS]


# -- running -------------------------------------------------------------------------------------

@dataclass
class Observed:
    """What the product did with one defect."""

    exit_code: int | None = None
    exception: str | None = None
    message: str = ""
    shop: str | None = None
    quarantined: set[tuple[str, str | None, str | None, str]] = field(default_factory=set)
    rows: dict[str, dict[str, object]] = field(default_factory=dict)
    all_keys: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class ShopRun:
    """One shared shop's build: its quarantine, counts and log."""

    name: str
    defects: list[str]
    quarantined: set[tuple[str, str | None, str | None, str]]
    counts: dict[str, int]
    log: list[str]


@contextlib.contextmanager
def _own_dbt_target(workdir: Path) -> Iterator[None]:
    """dbt's target and log folders inside ``workdir`` while the corpus runs.

    Other dbt runs on the same checkout write ``warehouse/target`` too; an own folder keeps
    partial parsing between this corpus's runs and leaves theirs alone.
    """
    saved = {k: os.environ.get(k) for k in ("DBT_TARGET_PATH", "DBT_LOG_PATH")}
    os.environ["DBT_TARGET_PATH"] = str(workdir / "dbt-target")
    os.environ["DBT_LOG_PATH"] = str(workdir / "dbt-logs")
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _invoke(args: list[str]) -> Observed:
    """Run ``clv ARGS`` as a user would (in-process): exit code, the error it names, output."""
    result = CliRunner().invoke(clv, args, standalone_mode=False)
    exc = result.exception
    if isinstance(exc, click.ClickException):  # what `clv` prints: "Error: <message>"
        cause = exc.__cause__
        return Observed(exit_code=1, exception=type(cause).__name__ if cause else None,
                        message=f"{result.output}Error: {exc.format_message()}\n")
    if exc is not None and not isinstance(exc, SystemExit):  # a bug: clv shows its traceback
        trace = "".join(traceback.format_exception(exc))
        return Observed(exit_code=1, exception=type(exc).__name__, message=result.output + trace)
    return Observed(exit_code=result.exit_code, exception=None, message=result.output)


def _import_args(defect: Defect, path: Path) -> list[str]:
    if defect.source == "csv-import":
        return ["import", "csv", defect.import_args[0], str(path), *defect.import_args[1:]]
    return ["import", defect.source, str(path)]


def _use_raw(raw: Path, data_dir: Path) -> None:
    """Make ``raw`` the raw tables of ``data_dir``.

    Every build of the corpus runs in one data directory: dbt re-parses the whole project
    when its profile (the warehouse path) changes, and parses only what changed otherwise.
    """
    target = data_dir / "raw"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(raw, target)


def run_error(defect: Defect, folder: Path, data_dir: Path) -> Observed:
    """An error defect through the CLI: ``clv import ...``, or ``clv build`` (in ``data_dir``)
    of the base staging model of the broken table."""
    written = write_defect(defect, folder)
    if defect.make_input:
        return _invoke(["--data-dir", str(folder / "data"), *_import_args(defect, written)])
    _use_raw(written, data_dir)
    return _invoke(["--data-dir", str(data_dir), "build", "--select",
                    f"base_raw__{defect.table}"])


def _imported_rows(defect: Defect, folder: Path) -> tuple[dict[str, list[Row]], Observed]:
    """Import the defect's file with ``clv import`` into its own data directory; its rows."""
    path = write_defect(defect, folder)
    data = folder / "data"
    observed = _invoke(["--data-dir", str(data), *_import_args(defect, path)])
    tables = {}
    if observed.exit_code == 0:
        for file in sorted((data / "raw").glob("*.parquet")):
            tables[file.stem] = pq.read_table(file).to_pylist()
    return tables, observed


def build_shop(name: str, shop: Shop, fmt: str, folder: Path, data_dir: Path) -> ShopRun:
    """Write ``shop`` to ``folder/raw`` and ``dbt build`` its staging models, quarantine and
    reconciliation test (in ``data_dir``)."""
    (write_csv_shop if fmt == "csv" else write_parquet_shop)(shop, folder / "raw")
    _use_raw(folder / "raw", data_dir)
    cfg = load_config(None, {"data_dir": data_dir})
    result = warehouse.run_dbt(cfg, ["build", "--select", "+assert_raw_rows_reconcile"])
    with duckdb.connect(str(cfg.resolved().warehouse_path), read_only=True) as con:
        quarantined = set(con.execute(
            "select source_table, record_id, customer_id, reason "
            "from stg_raw__quarantined_rows").fetchall())
    return ShopRun(name, [], quarantined, warehouse.table_counts(cfg), result.log)


def _clean_rows(data_dir: Path, table: str, keys: list[str]) -> tuple[dict, list[str]]:
    """The clean staging rows of ``table`` with these keys, and every key of the table."""
    cfg = load_config(None, {"data_dir": data_dir})
    key = KEYS[table]
    with duckdb.connect(str(cfg.resolved().warehouse_path), read_only=True) as con:
        frame = con.execute(f"select * from stg_raw__{table}").df()  # noqa: S608 - fixed names
    frame = frame.astype(object).where(frame.notna(), None)
    records = {r[key]: r for r in frame.to_dict("records")}
    rows = {k: {c: (str(v) if isinstance(v, dt.datetime | pd.Timestamp) else v)
                for c, v in records[k].items()} for k in keys if k in records}
    return rows, sorted(str(k) for k in records)


def run_corpus(workdir: Path, defects: list[Defect] | None = None
               ) -> tuple[dict[str, Observed], list[ShopRun]]:
    """Run every defect through the product; what happened to each, and the shared builds."""
    defects = DEFECTS if defects is None else defects
    observed: dict[str, Observed] = {}
    runs: list[ShopRun] = []
    data_dir = workdir / "builds"
    groups = {  # shared shop -> its format and defects
        "csv shop": ("csv", [x for x in defects if shared(x) and x.source == "raw-csv"]),
        "parquet shop": ("parquet", [x for x in defects if shared(x) and x.source != "raw-csv"]),
    }
    with _own_dbt_target(workdir):
        for defect in defects:  # importer errors: no dbt
            if not shared(defect) and defect.make_input:
                observed[defect.name] = run_error(defect, workdir / defect.name, data_dir)
        # raw errors and the shared shop, one format after the other: the format is a dbt var,
        # and runs with the same vars reuse the parsed project
        for name, (fmt, members) in groups.items():
            for defect in defects:
                if not shared(defect) and defect.source == f"raw-{fmt}":
                    observed[defect.name] = run_error(defect, workdir / defect.name, data_dir)
            if members:
                runs.append(_run_shop(name, fmt, members, workdir, data_dir, observed))
    return observed, runs


def _run_shop(name: str, fmt: str, members: list[Defect], workdir: Path, data_dir: Path,
              observed: dict[str, Observed]) -> ShopRun:
    """Build one shop holding every defect of ``members``; record what each defect got."""
    shop = raw_shop([x for x in members if x.source.startswith("raw-")])
    for defect in members:
        if defect.make_input:
            tables, observed[defect.name] = _imported_rows(defect, workdir / defect.name)
            _merge(shop, tables)
    run = build_shop(name, shop, fmt, workdir / name.replace(" ", "-"), data_dir)
    run.defects = [x.name for x in members]
    for defect in members:
        seen = observed.setdefault(defect.name, Observed(exit_code=0))
        seen.shop = name
        seen.warnings = [ln for ln in run.log if "not in the raw contract" in ln]
        out = defect.outcome
        if isinstance(out, Quarantine):
            keys = {row[:3] for row in out.expected()}
            seen.quarantined = {row for row in run.quarantined if row[:3] in keys}
        elif isinstance(out, Accepted):
            seen.rows, seen.all_keys = _clean_rows(data_dir, out.table, list(out.rows))
    return run


def _merge(shop: Shop, tables: dict[str, list[Row]]) -> None:
    """Add an importer's tables to the shop; its customers become known to the shop's
    customers table (CDNOW has none), so only the defect itself is quarantined."""
    for table, rows in tables.items():
        shop.add(table, *rows)
    known = {r["customer_id"] for r in shop.tables["customers"]}
    for table in ("orders", "returns"):
        for row in tables.get(table, []):
            customer = row.get("customer_id")
            if customer is not None and customer not in known:
                shop.add("customers", {"customer_id": customer})
                known.add(customer)


# -- checking --------------------------------------------------------------------------------

def verify(defect: Defect, seen: Observed) -> list[str]:
    """What differs between the defect's expected outcome and what the product did."""
    out = defect.outcome
    problems = []
    if isinstance(out, Error):
        if seen.exit_code != 1:
            problems.append(f"exit code {seen.exit_code}, expected 1")
        if seen.exception != out.exception:
            problems.append(f"error {seen.exception}, expected {out.exception}")
        problems += [f"message does not name {s!r}" for s in out.names if s not in seen.message]
        if "Traceback" in seen.message:
            problems.append("a Python traceback")
        return problems
    if seen.exit_code != 0:
        problems.append(f"import failed: {seen.message.strip()[-300:]}")
    if isinstance(out, Quarantine):
        if seen.quarantined != out.expected():
            problems.append(f"quarantined {sorted(seen.quarantined, key=str)}, expected "
                            f"{sorted(out.expected(), key=str)}")
    else:
        for key, columns in out.rows.items():
            got = seen.rows.get(key)
            if got is None:
                problems.append(f"no clean {out.table} row {key!r}")
                continue
            problems += [f"{key!r}.{c} = {got.get(c)!r}, expected {v!r}"
                         for c, v in columns.items() if got.get(c) != v]
        if out.complete and seen.all_keys != sorted(out.rows):
            problems.append(f"clean {out.table} rows {seen.all_keys}, expected {sorted(out.rows)}")
        if out.warning and not any(out.warning in w for w in seen.warnings):
            problems.append(f"no warning {out.warning!r} in the build log")
    return problems


def expected_quarantine(run: ShopRun) -> set[tuple[str, str | None, str | None, str]]:
    """Every quarantined row a shared shop's defects call for (and nothing else)."""
    return {row for n in run.defects if isinstance(BY_NAME[n].outcome, Quarantine)
            for row in BY_NAME[n].outcome.expected()}


def reconciliation(run: ShopRun) -> dict[str, dict[str, int]]:
    """Per raw table: raw, clean, quarantined (without duplicates) and duplicate rows."""
    duplicates: dict[str, int] = {}
    for table, _, _, reason in run.quarantined:
        if reason.startswith("duplicate "):
            duplicates[table] = duplicates.get(table, 0) + 1
    out = {}
    for table in TABLES:
        quarantined = run.counts.get(f"quarantined.{table}", 0)
        out[table] = {"raw": run.counts.get(f"raw.{table}", 0),
                      "clean": run.counts.get(f"stg_raw__{table}", 0),
                      "quarantined": quarantined - duplicates.get(table, 0),
                      "duplicates": duplicates.get(table, 0)}
    return out


def outcome_text(defect: Defect, seen: Observed | None = None) -> str:
    """The outcome in a few words: the error message's first line, the reason, or how read."""
    out = defect.outcome
    if isinstance(out, Error):
        if seen is None:
            return f"{out.exception} naming {', '.join(out.names)}"
        lines = [ln.strip().removeprefix(f"Error: {out.exception}: ")
                 for ln in seen.message.splitlines() if ln.strip()]
        first = next((ln for ln in lines if any(s in ln for s in out.names[1:] or out.names)),
                     lines[0] if lines else "")
        return f"{out.exception}: {first[:160]}"
    if isinstance(out, Quarantine):
        return f"quarantined ({out.table}): '{out.reason}'"
    return f"accepted ({out.table}): {out.how}"


def summary(observed: dict[str, Observed], runs: list[ShopRun]) -> tuple[str, bool]:
    """One line per defect (ok or what differs), the shared builds' reconciliation; all ok?"""
    lines, ok = [], True
    kinds = {k: sum(1 for x in DEFECTS if x.outcome.kind == k and x.name in observed)
             for k in ("error", "quarantine", "accepted")}
    lines.append(f"{len(observed)} defects: {kinds['error']} errors, {kinds['quarantine']} "
                 f"quarantined, {kinds['accepted']} accepted as the contract reads them")
    for defect in DEFECTS:
        if defect.name not in observed:
            continue
        problems = verify(defect, observed[defect.name])
        ok &= not problems
        status = "ok  " if not problems else "FAIL"
        lines.append(f"{status} {defect.name:36} {defect.source:13} {defect.what[:60]:60} -> "
                     f"{outcome_text(defect, observed[defect.name])}")
        lines += [f"       {p}" for p in problems]
    for run in runs:
        extra = run.quarantined ^ expected_quarantine(run)
        ok &= not extra
        lines.append(f"{run.name}: {len(run.defects)} defects; quarantine "
                     f"{'as expected' if not extra else f'differs: {sorted(extra, key=str)}'}")
        for table, n in reconciliation(run).items():
            balanced = n["raw"] == n["clean"] + n["quarantined"] + n["duplicates"]
            ok &= balanced
            lines.append(f"  {table:10} raw {n['raw']:3} = clean {n['clean']:3} + quarantined "
                         f"{n['quarantined']:3} + duplicates {n['duplicates']}"
                         f"{'' if balanced else '  DOES NOT ADD UP'}")
    return "\n".join(lines), ok


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--check":
        import tempfile

        workdir = Path(argv[1]) if len(argv) > 1 else Path(tempfile.mkdtemp(prefix="bad-inputs-"))
        observed, runs = run_corpus(workdir)
        text, ok = summary(observed, runs)
        print(text)
        print(f"work directory: {workdir}")
        return 0 if ok else 1
    if len(argv) != 1:
        print(__doc__)
        return 2
    out = Path(argv[0])
    write_corpus(out)
    print(f"wrote {len(DEFECTS)} defects to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
