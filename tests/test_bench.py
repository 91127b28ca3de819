"""The warehouse benchmark on a tiny shop: it runs, and its hand-written RFM equals dbt's."""

import json

import pytest

from clv_models.bench.warehouse import bench_warehouse
from tests.conftest import small_config

pytestmark = pytest.mark.e2e  # dbt builds, Feast, servers or the whole chain


def test_bench_warehouse_runs_and_the_rfm_agrees(tmp_path):
    cfg = small_config(tmp_path, customers=300)
    result = bench_warehouse(cfg, echo=lambda _: None)
    rows = {r.get("measure") or r.get("ratio"): r for r in result.rows}
    assert rows["raw_rows"]["customers"] == 300
    assert rows["rfm_handwritten_seconds"]["same_values_as_dbt"] is True
    rfm = rows["rfm_dbt_seconds"]
    assert rfm["customers"] > 100
    # the split of the dbt run: the mart is one of the models, the rest is dbt's own overhead
    assert 0 < rfm["mart_seconds"] <= rfm["models_seconds"] < rfm["value"]
    assert abs(rfm["dbt_overhead_seconds"] - (rfm["value"] - rfm["models_seconds"])) < 0.02
    for ratio in ("build_over_scan", "rfm_over_handwritten"):
        assert rows[ratio]["value"] > 0 and rows[ratio]["met"] in (True, False)
    assert rows["peak_memory_gib"]["value"] > 0
    # the output floor: every mart export copied once, timed
    rewrite = rows["mart_rewrite_seconds"]
    assert {"customer_rfm", "customer_timeseries", "customer_clv_labels"} <= set(rewrite)
    assert rewrite["value"] > 0 and rows["mart_rewrite_over_scan"]["value"] > 0
    payload = result.as_json()
    assert payload["benchmark"] == "warehouse" and "cores" in payload["device"]
    json.dumps(payload)  # serialisable
