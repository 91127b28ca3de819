"""Importers on small hand-made files in the CDNOW, UCI Online Retail and generic formats."""

from pathlib import Path

import pandas as pd
import pytest

from clv_models.ingest import importers
from clv_models.ingest.importers import InputFormatError
from clv_models.warehouse import dbt as warehouse
from tests.conftest import small_config

FIXTURES = Path(__file__).parent / "fixtures"


def raw(cfg, table):
    return pd.read_parquet(cfg.resolved().raw_dir / f"{table}.parquet")


def test_cdnow_lines_become_orders(tmp_path):
    cfg = small_config(tmp_path)
    result = importers.import_cdnow(cfg, FIXTURES / "cdnow_sample.txt")
    assert result.rows == {"orders": 5}
    orders = raw(cfg, "orders")
    assert list(orders["customer_id"]) == ["00001", "00002", "00002", "00003", "00003"]
    assert orders["order_id"].is_unique  # two records of 00002 on the same day stay apart
    assert orders["order_total"].sum() == pytest.approx(11.77 + 12 + 77 + 20.76 * 2)
    assert str(orders["ordered_at"][0]) == "1997-01-01 00:00:00+00:00"
    assert list(orders["item_count"]) == [1, 1, 5, 2, 2]


def test_cdnow_header_line_is_skipped(tmp_path):
    path = tmp_path / "with_header.txt"
    path.write_text("customer_id date number_of_cds dollar_value\n 00001 19970101 1 11.77\n")
    assert len(importers.read_cdnow(path)) == 1


@pytest.mark.parametrize("line, message", [
    ("00001 19970101 1", "expected 4 fields \\(customer yyyymmdd cds dollars\\)"),
    ("00001 1997-01-01 1 11.77", "date is not yyyymmdd"),
    ("00001 19970101 one 11.77", "CD count is not an integer"),
    ("00001 19970101 1 $11.77", "dollar amount is not a number"),
])
def test_cdnow_malformed_lines_name_the_line(tmp_path, line, message):
    path = tmp_path / "bad.txt"
    path.write_text(" 00009 19970105 1 5.00\n" + line + "\n")
    with pytest.raises(InputFormatError, match=f"bad.txt: {message} at line\\(s\\) 2"):
        importers.read_cdnow(path)


def test_cdnow_empty_file(tmp_path):
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(InputFormatError, match="empty file"):
        importers.read_cdnow(tmp_path / "empty.txt")


def check_online_retail(cfg):
    orders, returns, customers = raw(cfg, "orders"), raw(cfg, "returns"), raw(cfg, "customers")
    assert list(orders["order_id"]) == ["536365", "536366", "536367", "536370", "536414"]
    first = orders.iloc[0]
    assert first["order_total"] == pytest.approx(6 * 2.55 + 6 * 3.39)
    assert first["item_count"] == 12
    assert str(first["ordered_at"]) == "2010-12-01 08:26:00+00:00"  # GMT in December
    blank = orders[orders["order_id"] == "536414"].iloc[0]
    assert pd.isna(blank["customer_id"])  # kept; the warehouse quarantines it
    assert list(returns["return_id"]) == ["C536379", "C536383"]
    assert returns["refund_amount"].tolist() == pytest.approx([27.5, 4.65])
    assert str(returns["returned_at"][1]) == "2011-06-01 08:49:00+00:00"  # BST -> UTC
    assert returns["order_id"].isna().all()
    assert dict(zip(customers["customer_id"], customers["country"])) == {
        "12583": "France", "13047": "United Kingdom", "14527": "United Kingdom",
        "15311": "United Kingdom", "17850": "United Kingdom"}


def test_online_retail_csv(tmp_path):
    cfg = small_config(tmp_path)
    result = importers.import_online_retail(cfg, FIXTURES / "online_retail_sample.csv")
    assert result.rows == {"orders": 5, "returns": 2, "customers": 5}
    check_online_retail(cfg)


def test_online_retail_excel_and_parquet_and_the_ii_column_names(tmp_path):
    lines = pd.read_csv(FIXTURES / "online_retail_sample.csv", dtype=str, keep_default_na=False)
    xlsx = tmp_path / "retail.xlsx"
    lines.assign(Quantity=pd.to_numeric(lines["Quantity"]), UnitPrice=pd.to_numeric(lines["UnitPrice"]),
                 CustomerID=pd.to_numeric(lines["CustomerID"]),  # Excel: ids become floats
                 InvoiceDate=pd.to_datetime(lines["InvoiceDate"], format="%m/%d/%Y %H:%M")
                 ).to_excel(xlsx, index=False)
    cfg = small_config(tmp_path / "x")
    importers.import_online_retail(cfg, xlsx)
    check_online_retail(cfg)
    parquet = tmp_path / "retail_ii.parquet"
    lines.rename(columns={"InvoiceNo": "Invoice", "UnitPrice": "Price",
                          "CustomerID": "Customer ID"}).to_parquet(parquet)
    cfg = small_config(tmp_path / "p")
    importers.import_online_retail(cfg, parquet)
    check_online_retail(cfg)


def test_online_retail_bad_files(tmp_path):
    header_only = tmp_path / "h.csv"
    header_only.write_text((FIXTURES / "online_retail_sample.csv").read_text().splitlines()[0] + "\n")
    with pytest.raises(InputFormatError, match="header only"):
        importers.read_online_retail(header_only)
    missing = tmp_path / "m.csv"
    missing.write_text("InvoiceNo,Quantity\n1,2\n")
    with pytest.raises(InputFormatError, match="missing column.*InvoiceDate"):
        importers.read_online_retail(missing)
    bad = tmp_path / "b.csv"
    text = (FIXTURES / "online_retail_sample.csv").read_text().replace(",6,12/1/2010 8:28,", ",six,12/1/2010 8:28,")
    bad.write_text(text)
    with pytest.raises(InputFormatError, match="Quantity is not a number at line\\(s\\) 4; e.g. 'six'"):
        importers.read_online_retail(bad)
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(InputFormatError, match="unsupported file type"):
        importers.read_table_file(tmp_path / "x.json")


@pytest.mark.e2e
def test_generic_import_with_a_mapping_then_build(tmp_path):
    cfg = small_config(tmp_path, **{"as_of.start": "2024-02-01", "horizon_days": 30})
    src = tmp_path / "shop_orders.csv"
    src.write_text("OrderNo,Client,When,Amount,Extra\n"
                   "A1,c1,2024-01-05T10:00:00+01:00,10.5,x\n"
                   "A2,c1,2024-03-05,20,y\n"
                   "A3,c2,2024-03-09,-3,z\n")
    mapping = {"order_id": "OrderNo", "customer_id": "Client", "ordered_at": "When",
               "order_total": "Amount"}
    result = importers.import_table(cfg, "orders", src, mapping)
    assert result.rows == {"orders": 3}
    assert str(raw(cfg, "orders")["ordered_at"][0]) == "2024-01-05 09:00:00+00:00"
    warehouse.run_dbt(cfg, ["build"])  # orders only: the other tables read as empty
    counts = warehouse.table_counts(cfg)
    assert counts["raw.orders"] == 3 and counts["stg_raw__orders"] == 2
    assert counts["quarantined.orders"] == 1  # the negative amount
    with pytest.raises(InputFormatError, match="required orders column.*order_total.*--map"):
        importers.import_table(cfg, "orders", src, {"order_id": "OrderNo"})
    with pytest.raises(InputFormatError, match="not in the file"):
        importers.import_table(cfg, "orders", src, {**mapping, "currency": "Cur"})
    with pytest.raises(InputFormatError, match="unknown orders column"):
        importers.import_table(cfg, "orders", src, {**mapping, "colour": "Extra"})
    bad = tmp_path / "bad.csv"
    bad.write_text("order_id,customer_id,ordered_at,order_total\nA1,c1,yesterday,1\n")
    with pytest.raises(InputFormatError, match="ordered_at is not an ISO-8601 timestamp.* at line\\(s\\) 2"):
        importers.import_table(cfg, "orders", bad)


def test_importing_removes_a_generated_shops_other_tables_and_truth(tmp_path):
    from clv_models.ingest.generate import generate_shop

    cfg = small_config(tmp_path, customers=50)
    generate_shop(cfg)
    importers.import_cdnow(cfg, FIXTURES / "cdnow_sample.txt")
    files = sorted(p.name for p in cfg.resolved().raw_dir.iterdir())
    assert files == [".replaced", "orders.parquet"]  # the next build rebuilds incrementals whole
    assert not cfg.resolved().truth_dir.exists()


def test_generic_import_keeps_the_other_tables_untouched(tmp_path):
    from clv_models.ingest.generate import generate_shop

    cfg = small_config(tmp_path, customers=50)
    generate_shop(cfg)
    raw_dir = cfg.resolved().raw_dir
    before = {t: (raw_dir / f"{t}.parquet").stat().st_mtime_ns for t in ("returns", "page_views")}
    src = tmp_path / "c.csv"
    src.write_text("id,country\nC00000001,NL\n")
    result = importers.import_table(cfg, "customers", src, {"customer_id": "id"})
    assert result.rows == {"customers": 1}
    after = {t: (raw_dir / f"{t}.parquet").stat().st_mtime_ns for t in ("returns", "page_views")}
    assert after == before  # kept as they were, not read back and rewritten
    assert (raw_dir / "orders.parquet").exists()
