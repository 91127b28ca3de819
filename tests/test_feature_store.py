"""Feast on the session shop: the contracts, the feature services and the workflow tour."""

import pytest

from clv_models.features import store as features

pytestmark = pytest.mark.e2e  # dbt builds, Feast, servers or the whole chain


def test_feast_serves_exactly_the_dbt_contracts_columns_with_their_types(pipeline_run):
    """The feature views are built from the marts' contracts; the Parquet files dbt exported
    carry those columns with the matching types, so the contract, the exports and Feast agree."""
    import pyarrow.parquet as pq
    import yaml
    from feast.types import Array, Float32, Float64, Int32, String

    cfg = pipeline_run.cfg
    contracts = yaml.safe_load((cfg.warehouse_dir / "models" / "marts" /
                                "_marts__models.yml").read_text())
    declared = {m["name"]: m["columns"] for m in contracts["models"]}
    arrow = {"integer": "int32", "double": "double", "varchar": "string",
             "float[]": "list<element: float>"}
    feast_types = {Int32: "integer", Float64: "double", String: "varchar",
                   Array(Float32): "float[]"}
    store = features.feature_store(cfg)
    views = store.list_feature_views()
    assert {v.name for v in views} == {"customer_rfm", "customer_timeseries", "customer_returns",
                                        "customer_engagement", "customer_profile"}
    for view in views:
        columns = [c for c in declared[view.name]
                   if c["name"] not in ("customer_id", "as_of_date", "event_timestamp")
                   and (c.get("meta") or {}).get("feature") is not False]
        assert [f.name for f in view.features] == [c["name"] for c in columns], view.name
        assert [feast_types[f.dtype] for f in view.features] == \
            [c["data_type"] for c in columns], view.name
        exported = pq.read_schema(cfg.features_dir / f"{view.name}.parquet")
        for c in declared[view.name]:
            if c["data_type"] in arrow:
                assert str(exported.field(c["name"]).type) == arrow[c["data_type"]], \
                    (view.name, c["name"])


def test_the_feast_workflow_tour_runs_on_a_built_store(pipeline_run, tmp_path):
    """feature_repo/workflow.py on a copy of the session run's data (its own registry and online
    store): apply, historical retrieval, materialize, online read, push and undo."""
    import importlib.util
    import shutil

    source = pipeline_run.cfg
    data = tmp_path / "data"
    shutil.copytree(source.data_dir, data, symlinks=True,
                    ignore=shutil.ignore_patterns("reports", "feast", "bi"))
    spec = importlib.util.spec_from_file_location("workflow",
                                                  source.feature_repo_dir / "workflow.py")
    workflow = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(workflow)
    shown = workflow.run(data)
    assert shown["views"] == sorted(["customer_rfm", "customer_timeseries", "customer_returns",
                                     "customer_engagement", "customer_profile"])
    assert shown["services"] == ["clv_v1", "clv_v2"]
    assert shown["historical_rows"] > 3
    before = shown["online"]["order_count"][0]
    assert before is not None
    assert shown["after_push"]["order_count"] == [before + 1]
    assert shown["restored"] == shown["online"]
