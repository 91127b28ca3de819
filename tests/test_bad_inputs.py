"""The bad-input corpus (tests/harness/bad_inputs.py) through the product: `clv import`, `clv build`.

Each defect ends in an error that names its file and line or column (exit code 1, no
traceback), in quarantine rows with their reason, or is read as the raw contract says; and in
each shared shop, raw rows = clean rows + quarantined rows + removed duplicates per raw table.
Run with ``-s`` to see the table of defects and outcomes (also: python tests/harness/bad_inputs.py
--check).
"""

import dataclasses
import json

import pytest

from tests.harness import bad_inputs as corpus

pytestmark = pytest.mark.e2e  # dbt builds, Feast, servers or the whole chain


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    observed, runs = corpus.run_corpus(tmp_path_factory.mktemp("bad-inputs"))
    print("\n" + corpus.summary(observed, runs)[0])
    return observed, {run.name: run for run in runs}


def test_the_corpus_covers_every_kind_of_defect():
    decided = [d for d in corpus.DEFECTS if d.outcome.kind != "accepted"]
    assert len(decided) >= 25  # distinct defects ending in an error or a quarantine row
    for item, names in corpus.ISSUE_ITEMS.items():
        assert names and all(n in corpus.BY_NAME for n in names), item
    covered = {n for names in corpus.ISSUE_ITEMS.values() for n in names}
    # every raw table and every importer has defects of its own
    assert {d.table for d in corpus.DEFECTS if d.source.startswith("raw-")} == set(corpus.TABLES)
    assert {d.source for d in corpus.DEFECTS} == {"raw-csv", "raw-parquet", "cdnow",
                                                  "online-retail", "csv-import"}
    assert covered <= set(corpus.BY_NAME)


@pytest.mark.parametrize("name", list(corpus.BY_NAME))
def test_defect_ends_as_expected(ran, name):
    observed, _ = ran
    assert corpus.verify(corpus.BY_NAME[name], observed[name]) == []


@pytest.mark.parametrize("shop", ["csv shop", "parquet shop"])
def test_nothing_vanished(ran, shop):
    _, runs = ran
    run = runs[shop]
    # exactly the rows the defects call for are quarantined: no valid row, nothing else
    assert run.quarantined == corpus.expected_quarantine(run)
    expected = {t: sum(1 for row in run.quarantined if row[0] == t) for t in corpus.TABLES}
    for table, n in corpus.reconciliation(run).items():
        assert n["raw"] > 0, table
        assert n["raw"] == n["clean"] + n["quarantined"] + n["duplicates"], (table, n)
        assert n["quarantined"] + n["duplicates"] == expected[table], (table, n)
    # the warehouse's own check ran in the same build and passed
    assert any("assert_raw_rows_reconcile" in ln and "PASS" in ln for ln in run.log)


def test_the_checks_fail_on_a_wrong_expectation(ran):
    observed, _ = ran

    def wrong(name, **changes):
        defect = corpus.BY_NAME[name]
        return dataclasses.replace(defect, outcome=dataclasses.replace(defect.outcome, **changes))

    assert corpus.verify(wrong("negative-order-total", reason="non-finite order_total"),
                         observed["negative-order-total"])
    assert corpus.verify(wrong("csv-line-with-extra-field", names=("orders.csv", "line 5")),
                         observed["csv-line-with-extra-field"])
    assert corpus.verify(wrong("csv-line-with-extra-field", exception="InputFormatError"),
                         observed["csv-line-with-extra-field"])
    assert corpus.verify(wrong("timestamp-without-offset",
                               rows={"q-naive": {"ordered_at": "2024-02-22 04:30:00"}}),
                         observed["timestamp-without-offset"])
    assert corpus.verify(wrong("anonymous-page-views-only",
                               rows={"anon-3": {"customer_id": None}}),
                         observed["anonymous-page-views-only"])


def test_every_defect_is_written_alone_with_its_expectation(tmp_path):
    corpus.write_corpus(tmp_path)
    for defect in corpus.DEFECTS:
        expected = json.loads((tmp_path / defect.name / "expected.json").read_text())
        assert expected["outcome"]["kind"] == defect.outcome.kind
        if defect.source.startswith("raw-") and defect.name != "returns-without-orders-file":
            assert (tmp_path / defect.name / "raw" / f"orders.{defect.source[4:]}").exists()
    # a row defect alone: the valid shop plus its rows
    orders = (tmp_path / "negative-order-total" / "raw" / "orders.csv").read_text().splitlines()
    assert len(orders) == 1 + 6 + 1 and orders[-1].startswith("q-negative,c1,")
