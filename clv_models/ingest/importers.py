"""Importers: public and custom export formats into the raw contract (docs/contracts.md).

Each importer writes Parquet files named after the raw tables into the raw directory, replacing
what was there (a generated shop's tables and its ground truth included, so nothing of another
shop is mixed in). Malformed input stops with an error that names the file, the line or row and
the column; rows that are well-formed but untrustworthy (a blank customer, a negative amount) are
kept, so that the warehouse quarantines them with a reason and the counts reconcile.
"""

from __future__ import annotations

import codecs
import datetime as dt
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from clv_models.core.config import Config
from clv_models.core.errors import DataError
from clv_models.ingest import csv_check
from clv_models.ingest.generate import RAW_TABLES, SCHEMAS
from clv_models.ingest.raw import mark_raw_replaced

REQUIRED = {
    "orders": ["order_id", "customer_id", "ordered_at", "order_total"],
    "returns": ["return_id", "customer_id", "returned_at", "refund_amount"],
    "page_views": ["customer_id", "viewed_at"],
    "customers": ["customer_id"],
}
MAX_REPORTED = 5


class InputFormatError(DataError):
    """The input file is malformed; the message names the file, rows and columns."""


@dataclass
class ImportResult:
    """Rows written per raw table, and where."""

    rows: dict[str, int]
    raw_dir: Path


def _fail(path: Path, problem: str, rows: pd.Index | list, sample: pd.Series | None = None):
    rows = list(rows)
    shown = ", ".join(str(r) for r in rows[:MAX_REPORTED])
    more = f" and {len(rows) - MAX_REPORTED} more" if len(rows) > MAX_REPORTED else ""
    detail = ""
    if sample is not None:
        detail = "; e.g. " + ", ".join(repr(v) for v in sample.head(MAX_REPORTED).tolist())
    raise InputFormatError(f"{path}: {problem} at line(s) {shown}{more}{detail}")


def write_raw(cfg: Config, tables: Mapping[str, pd.DataFrame],
              keep_others: bool = False) -> ImportResult:
    """Write ``tables`` as the raw contract's Parquet files; remove the other raw tables.

    Columns are cast to the contract's types (timestamps in UTC, microseconds). Files are written
    to a temporary name and renamed, so a reader never sees half a file. With ``keep_others``,
    the other tables' Parquet files stay as they are (CSV files are removed either way: the raw
    directory then holds Parquet only).
    """
    raw = cfg.resolved().raw_dir
    raw.mkdir(parents=True, exist_ok=True)
    for table in RAW_TABLES:
        if table in tables:
            continue
        for old in (raw / f"{table}.csv", *(() if keep_others else (raw / f"{table}.parquet",))):
            old.unlink(missing_ok=True)
    shutil.rmtree(cfg.resolved().truth_dir, ignore_errors=True)
    mark_raw_replaced(raw)
    rows = {}
    for table, frame in tables.items():
        schema = SCHEMAS[table]
        missing = [c for c in REQUIRED[table] if c not in frame.columns]
        if missing:
            raise InputFormatError(f"{table}: required column(s) missing: {', '.join(missing)}")
        columns = {}
        for field in schema:
            if field.name in frame.columns:
                values = frame[field.name]
                if pa.types.is_timestamp(field.type):
                    values = pd.to_datetime(values, utc=True).astype("datetime64[us, UTC]")
                elif pa.types.is_string(field.type):
                    values = values.astype("string")
                columns[field.name] = pa.array(values, type=field.type, from_pandas=True)
            else:
                columns[field.name] = pa.nulls(len(frame), type=field.type)
        path = raw / f"{table}.parquet"
        tmp = path.with_suffix(".parquet.tmp")
        pq.write_table(pa.Table.from_pydict(columns, schema=schema), tmp, compression="zstd")
        tmp.replace(path)
        rows[table] = len(frame)
    return ImportResult(rows=rows, raw_dir=raw)


# -- CDNOW --------------------------------------------------------------------------------------

def read_cdnow(path: Path) -> pd.DataFrame:
    """Orders from ``CDNOW_master.txt``: whitespace-separated ``customer yyyymmdd cds dollars``.

    The 1/10 sample's layout (``CDNOW_sample.txt``: ``customer sample_id yyyymmdd cds
    dollars``, 5 fields on every line) is read too; the sample id is dropped. An optional first
    line of column names (no digits) is skipped. Every line is one purchase
    record; ``order_id`` is ``<customer>-<yyyymmdd>-<line>`` and
    the timestamp midnight UTC of the day (the file has no time of day).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputFormatError(f"{csv_check.non_utf8_message(path)} (CDNOW files are ASCII)"
                               ) from exc
    lines = text.splitlines()
    parts = [ln.split() for ln in lines]
    keep = [i for i, p in enumerate(parts) if p]  # blank lines carry nothing
    if keep and not any(ch.isdigit() for ch in "".join(parts[keep[0]])):
        keep = keep[1:]  # a header line (the copy in the lifetimes package has one)
    if not keep:
        raise InputFormatError(f"{path}: no purchase records (empty file)")
    if all(len(parts[i]) == 5 for i in keep):  # the 1/10 sample: drop its sample id
        parts = [p[:1] + p[2:] if len(p) == 5 else p for p in parts]
    bad_width = [i + 1 for i in keep if len(parts[i]) != 4]
    if bad_width:
        _fail(path, "expected 4 fields (customer yyyymmdd cds dollars)", bad_width)
    df = pd.DataFrame([parts[i] for i in keep], columns=["customer", "date", "cds", "dollars"])
    df.index = pd.Index([i + 1 for i in keep], name="line")
    dates = pd.to_datetime(df["date"], format="%Y%m%d", errors="coerce", utc=True)
    if dates.isna().any():
        _fail(path, "date is not yyyymmdd", df.index[dates.isna()], df["date"][dates.isna()])
    cds = pd.to_numeric(df["cds"], errors="coerce")
    if cds.isna().any() or (cds % 1 != 0).any():
        bad = cds.isna() | (cds % 1 != 0)
        _fail(path, "CD count is not an integer", df.index[bad], df["cds"][bad])
    dollars = pd.to_numeric(df["dollars"], errors="coerce")
    if dollars.isna().any() or not np.isfinite(dollars).all():
        bad = ~np.isfinite(dollars.fillna(np.inf))
        _fail(path, "dollar amount is not a number", df.index[bad], df["dollars"][bad])
    return pd.DataFrame({
        "order_id": df["customer"] + "-" + df["date"] + "-" + df.index.astype(str),
        "customer_id": df["customer"],
        "ordered_at": dates,
        "order_total": dollars.astype(float),
        "currency": "USD",
        "item_count": cds.astype("int32"),
    }).reset_index(drop=True)


def import_cdnow(cfg: Config, path: Path) -> ImportResult:
    """``clv import cdnow``: orders only (no returns, page views or customer attributes)."""
    return write_raw(cfg, {"orders": read_cdnow(Path(path))})


# -- UCI Online Retail ---------------------------------------------------------------------------

# Online Retail (2011) and Online Retail II (2009-2011) name some columns differently.
UCI_ALIASES = {"Invoice": "InvoiceNo", "Price": "UnitPrice", "Customer ID": "CustomerID"}
UCI_COLUMNS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
               "CustomerID", "Country"]


def read_table_file(path: Path, encoding: str = "utf-8", fallback: str | None = None
                    ) -> pd.DataFrame:
    """A CSV, Parquet or Excel file as strings/objects, by extension.

    CSV text is decoded as ``encoding``; a file that is not is read as ``fallback`` when one is
    given (the UCI Online Retail CSV circulates in Latin-1), else refused with the line and byte
    that are not (a guess would garble every non-ASCII character of a UTF-8 file with one stray
    byte). A malformed CSV line (a field too many or too few, a quote never closed) is named
    by its line in the file.
    """
    suffix = path.suffix.lower()
    if not path.exists():
        raise InputFormatError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InputFormatError(f"{path}: empty file (0 bytes)")
    try:
        if suffix in {".xlsx", ".xls"}:
            return pd.read_excel(path, dtype=object)
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in {".csv", ".txt"}:
            return _read_csv(path, encoding, fallback)
    except InputFormatError:
        raise
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise InputFormatError(f"{path}: cannot be read as {suffix[1:]} ({exc})") from exc
    raise InputFormatError(
        f"{path}: unsupported file type {suffix!r} (use .csv, .parquet or .xlsx)")


def _read_csv(path: Path, encoding: str, fallback: str | None) -> pd.DataFrame:
    try:
        codecs.lookup(encoding)
    except LookupError as exc:
        raise InputFormatError(f"unknown text encoding {encoding!r}") from exc
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
    except UnicodeDecodeError as exc:
        if fallback:
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=fallback)
        where = (csv_check.non_utf8_message(path) if encoding.replace("-", "").lower() == "utf8"
                 else f"{path}: not {encoding} text ({exc})")
        raise InputFormatError(f"{where}; save the file as UTF-8, or name its encoding "
                               "(clv import csv --encoding latin-1)") from exc
    except pd.errors.ParserError as exc:
        if encoding.replace("-", "").lower() == "utf8":
            problem = csv_check.first_problem(path)
            if problem:
                raise InputFormatError(problem) from exc
        raise


def read_online_retail(path: Path, timezone: str = "Europe/London"
                       ) -> dict[str, pd.DataFrame]:
    """Orders, returns and customers from UCI Online Retail invoice lines.

    Lines are grouped by invoice: an invoice is an order (total = sum of quantity x unit price,
    items = sum of quantities); an invoice whose number starts with ``C`` is a cancellation,
    imported as a return of that value (UCI does not say which invoice it cancels, so the
    return's ``order_id`` is empty). A blank ``CustomerID`` is kept blank (the warehouse
    quarantines those invoices). Invoice dates are local time in ``timezone`` (the shop is in
    the UK) and converted to UTC. ``customers`` carries each customer's country.
    """
    path = Path(path)
    df = read_table_file(path, fallback="latin-1").rename(columns=UCI_ALIASES)
    missing = [c for c in UCI_COLUMNS if c not in df.columns]
    if missing:
        raise InputFormatError(f"{path}: missing column(s) {', '.join(missing)}; found "
                           f"{', '.join(map(str, df.columns))}")
    if df.empty:
        raise InputFormatError(f"{path}: no invoice lines (header only)")
    df.index = pd.RangeIndex(2, len(df) + 2, name="line")  # file line numbers (header = 1)
    invoice = df["InvoiceNo"].astype(str).str.strip()
    if (invoice == "").any():
        _fail(path, "empty InvoiceNo", df.index[invoice == ""])
    quantity = pd.to_numeric(df["Quantity"], errors="coerce")
    price = pd.to_numeric(df["UnitPrice"], errors="coerce")
    for name, values in (("Quantity", quantity), ("UnitPrice", price)):
        if values.isna().any():
            _fail(path, f"{name} is not a number", df.index[values.isna()],
                  df[name][values.isna()])
    when = pd.to_datetime(df["InvoiceDate"], errors="coerce", format="mixed", dayfirst=False)
    if when.isna().any():
        _fail(path, "InvoiceDate is not a date", df.index[when.isna()],
              df["InvoiceDate"][when.isna()])
    when = when.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="shift_forward")
    customer = df["CustomerID"].astype(str).str.strip().replace({"nan": "", "None": ""})
    customer = customer.str.replace(r"\.0$", "", regex=True)  # Excel reads ids as floats
    customer = customer.mask(customer == "")  # blank: no customer (quarantined downstream)
    lines = pd.DataFrame({"invoice": invoice, "customer_id": customer, "at": when,
                          "value": quantity * price, "quantity": quantity,
                          "country": df["Country"].astype(str).str.strip()})
    invoices = lines.groupby("invoice", sort=True, dropna=False).agg(
        customer_id=("customer_id", "first"), at=("at", "min"), value=("value", "sum"),
        quantity=("quantity", "sum")).reset_index()
    cancelled = invoices["invoice"].str.upper().str.startswith("C")
    orders = invoices[~cancelled]
    returns = invoices[cancelled]
    customers = (lines.dropna(subset=["customer_id"]).groupby("customer_id", sort=True)["country"]
                 .first().reset_index())
    return {
        "orders": pd.DataFrame({
            "order_id": orders["invoice"], "customer_id": orders["customer_id"],
            "ordered_at": orders["at"], "order_total": orders["value"].round(2),
            "currency": "GBP", "item_count": orders["quantity"].astype("int32"),
        }),
        "returns": pd.DataFrame({
            "return_id": returns["invoice"], "customer_id": returns["customer_id"],
            "returned_at": returns["at"], "refund_amount": (-returns["value"]).round(2),
            "order_id": None, "item_count": (-returns["quantity"]).astype("int32"),
        }),
        "customers": pd.DataFrame({"customer_id": customers["customer_id"],
                                   "country": customers["country"]}),
    }


def import_online_retail(cfg: Config, path: Path, timezone: str = "Europe/London"
                         ) -> ImportResult:
    """``clv import online-retail``: orders, returns and customers (no page views)."""
    return write_raw(cfg, read_online_retail(Path(path), timezone))


# -- generic CSV / Parquet -----------------------------------------------------------------------

def import_table(cfg: Config, table: str, path: Path, mapping: Mapping[str, str] | None = None,
                 keep_others: bool = True, encoding: str = "utf-8") -> ImportResult:
    """``clv import csv``: one raw table from a CSV/Parquet/Excel file with a column mapping.

    Refused, with the file, line(s) and column: a file with no rows (a header only), a
    malformed CSV line, text that is not in ``encoding``, a required column missing, a
    timestamp that is not ISO-8601 (``01/02/2024`` is January or February depending on the
    exporter's locale: guessing would misdate rows without a trace, and a column mixing formats
    is refused for the lines that differ), an amount that is not a finite number. Columns
    outside the contract are dropped. Timestamps without an offset are UTC, as in the raw
    contract.

    Parameters
    ----------
    table
        ``orders``, ``returns``, ``page_views`` or ``customers``.
    mapping
        ``{contract column: file column}``; unmapped contract columns are taken by name.
    keep_others
        Keep the other raw tables already in the raw directory (import one table at a time).
    encoding
        Text encoding of a CSV file.
    """
    if table not in RAW_TABLES:
        raise InputFormatError(f"unknown table {table!r}; one of {', '.join(RAW_TABLES)}")
    path = Path(path)
    df = read_table_file(path, encoding=encoding)
    if df.empty:
        raise InputFormatError(f"{path}: no rows (a header only): nothing to import")
    mapping = dict(mapping or {})
    unknown = [c for c in mapping if c not in SCHEMAS[table].names]
    if unknown:
        raise InputFormatError(f"--map names unknown {table} column(s) {', '.join(unknown)}; the "
                           f"contract has {', '.join(SCHEMAS[table].names)}")
    absent = [src for src in mapping.values() if src not in df.columns]
    if absent:
        raise InputFormatError(f"{path}: mapped column(s) {', '.join(absent)} not in the file; "
                           f"found {', '.join(map(str, df.columns))}")
    df = df.rename(columns={src: dst for dst, src in mapping.items()})
    missing = [c for c in REQUIRED[table] if c not in df.columns]
    if missing:
        raise InputFormatError(f"{path}: required {table} column(s) {', '.join(missing)} missing; "
                           f"map them with --map {missing[0]}=<file column> (found "
                           f"{', '.join(map(str, df.columns))})")
    frame = df[[c for c in SCHEMAS[table].names if c in df.columns]].copy()
    for col in frame.columns:
        field = SCHEMAS[table].field(col)
        given = frame[col].notna() & (frame[col].astype(str).str.strip() != "")
        if pa.types.is_timestamp(field.type):
            parsed = _iso_timestamps(frame[col])
            bad = parsed.isna() & given
            if bad.any():
                _fail(path, f"{col} is not an ISO-8601 timestamp (e.g. 2024-01-31 or "
                      "2024-01-31T13:45:00+01:00; a date like 01/02/2024 is ambiguous)",
                      frame.index[bad] + 2, frame[col][bad])
            frame[col] = parsed
        elif pa.types.is_floating(field.type) or pa.types.is_integer(field.type):
            parsed = pd.to_numeric(frame[col], errors="coerce")
            bad = ~np.isfinite(parsed.astype(float).fillna(np.inf)) & given
            if bad.any():
                _fail(path, f"{col} is not a finite number", frame.index[bad] + 2,
                      frame[col][bad])
            frame[col] = parsed.astype("Int32" if pa.types.is_integer(field.type) else float)
    return write_raw(cfg, {table: frame}, keep_others=keep_others)


def _iso_timestamps(values: pd.Series) -> pd.Series:
    """UTC timestamps from ISO-8601 text (no offset: UTC) or datetime cells; NaT otherwise."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.to_datetime(values, utc=True)
    cells = values.map(lambda v: isinstance(v, dt.datetime))  # Excel date cells
    parsed = pd.to_datetime(values.where(~cells).astype("string").str.strip(),
                            errors="coerce", utc=True, format="ISO8601")
    if cells.any():
        parsed[cells] = pd.to_datetime(values[cells].tolist(), utc=True)
    return parsed
