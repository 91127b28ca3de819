"""Feast definitions: the customer entity, feature views over the dbt marts, feature services.

The sources are the Parquet files that dbt exports (``warehouse/models/marts``); their location
comes from ``CLV_FEATURES_DIR`` (set by the ``clv`` CLI; by hand, ``eval "$(clv env)"``) and is
made absolute, so nothing depends on the current directory. Each view's schema is read from its
mart's dbt contract (``_marts__models.yml``: names, types, descriptions, in order), so the
features Feast serves are the columns dbt guarantees; a column marked ``meta: {feature: false}``
(the same value under another view's name) and the keys are left out. The views that orders and
returns change read their mart through a push source (``<view>_push``), so live events can update a
customer's online row between builds (``clv push-event``, ``clv_models.features.live``).
"""

import os
from datetime import timedelta
from pathlib import Path

import yaml
from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Array, Float32, Float64, Int32, String

if not all(os.environ.get(v) for v in ("CLV_FEAST_DIR", "CLV_FEATURES_DIR", "CLV_ONLINE_STORE")):
    raise RuntimeError('CLV_FEAST_DIR, CLV_FEATURES_DIR or CLV_ONLINE_STORE is not set: run '
                       '`eval "$(clv env)"` first (feature_store.yaml and the sources read their '
                       "paths and the online store from them)")
FEATURES_DIR = Path(os.environ["CLV_FEATURES_DIR"]).resolve()
# The dbt project beside this folder (a checkout, or the copies an installed package carries).
MARTS_CONTRACTS = (Path(__file__).resolve().parent.parent / "warehouse" / "models" / "marts"
                   / "_marts__models.yml")
#: Feast's type of each dbt contract type the marts use.
FEAST_TYPES = {"integer": Int32, "double": Float64, "varchar": String,
               "float[]": Array(Float32)}
#: Mart columns that are keys and timestamps, not features.
KEYS = ("customer_id", "as_of_date", "event_timestamp")


def mart_schema(model: str) -> list[Field]:
    """The feature fields of the dbt mart ``model``, from its contract."""
    contracts = yaml.safe_load(MARTS_CONTRACTS.read_text())
    columns = next(m for m in contracts["models"] if m["name"] == model)["columns"]
    fields = []
    for column in columns:
        if column["name"] in KEYS or (column.get("meta") or {}).get("feature") is False:
            continue
        if column["data_type"] not in FEAST_TYPES:
            raise ValueError(f"{MARTS_CONTRACTS}: {model}.{column['name']} has data_type "
                             f"{column['data_type']!r}, which has no Feast type here "
                             f"(known: {', '.join(FEAST_TYPES)})")
        fields.append(Field(name=column["name"], dtype=FEAST_TYPES[column["data_type"]],
                            description=" ".join(column.get("description", "").split())))
    return fields

# A feature row at as-of date t holds events before t. Every customer has a row at every as-of
# date after their first order, so the TTL only bounds how stale a row may be when features are
# asked for between as-of dates (e.g. "now"): a little over a year.
TTL = timedelta(days=400)

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.STRING,
    description="A shop customer (raw customer_id).",
)


def mart_source(model: str) -> FileSource:
    """The Parquet export of the dbt mart ``model`` (one row per customer and as-of date)."""
    return FileSource(
        name=f"{model}_source",
        path=str(FEATURES_DIR / f"{model}.parquet"),
        timestamp_field="event_timestamp",
        description=f"dbt mart {model}: one row per customer and as-of date.",
    )


def live_source(model: str) -> PushSource:
    """A push source over the mart ``model``: batch rows come from its Parquet export
    (materialization, training retrieval); ``clv push-event`` (``clv_models.features.live``) pushes
    a customer's updated row straight to the online store when an order or return arrives."""
    return PushSource(
        name=f"{model}_push",
        batch_source=mart_source(model),
        description=f"Live updates of {model} rows (order and return events).",
    )


customer_rfm = FeatureView(
    name="customer_rfm",
    entities=[customer],
    ttl=TTL,
    schema=mart_schema("customer_rfm"),
    online=True,
    source=live_source("customer_rfm"),
    tags={"dbt_model": "customer_rfm"},
)

customer_timeseries = FeatureView(
    name="customer_timeseries",
    entities=[customer],
    ttl=TTL,
    schema=mart_schema("customer_timeseries"),
    online=True,
    source=live_source("customer_timeseries"),
    tags={"dbt_model": "customer_timeseries"},
)

customer_returns = FeatureView(
    name="customer_returns",
    entities=[customer],
    ttl=TTL,
    schema=mart_schema("customer_returns"),
    online=True,
    source=live_source("customer_returns"),
    tags={"dbt_model": "customer_returns"},
)

customer_engagement = FeatureView(
    name="customer_engagement",
    entities=[customer],
    ttl=TTL,
    schema=mart_schema("customer_engagement"),
    online=True,
    source=live_source("customer_engagement"),
    tags={"dbt_model": "customer_engagement"},
)

customer_profile = FeatureView(
    name="customer_profile",
    entities=[customer],
    ttl=TTL,
    schema=mart_schema("customer_profile"),
    online=True,
    source=mart_source("customer_profile"),
    tags={"dbt_model": "customer_profile"},
)

# ``features``, not ``schema``: Feast builds ``schema`` from a set, so its order changes with
# every process (hash randomization) and so would clv_v1's column order, and with it the trees
# XGBoost grows from the same data.
TABULAR_TIMESERIES = [f.name for f in customer_timeseries.features
                      if not f.name.startswith("weekly_")]

# One feature service per model input set; training retrieval and online reads use the same
# one (each model's metadata names its service). clv_v1: the numeric tabular features.
clv_v1 = FeatureService(
    name="clv_v1",
    features=[
        customer_rfm,
        customer_timeseries[TABULAR_TIMESERIES],
        customer_returns,
        customer_engagement,
    ],
    description="Numeric tabular inputs (XGBoost and the other tabular models).",
)

# clv_v2: the deep model's input set: clv_v1's numeric features, the two 52-week sequences for
# its sequence encoder, and the profile (country and acquisition channel for its embeddings,
# days since sign-up as a number). A superset of clv_v1, so one retrieval serves both.
clv_v2 = FeatureService(
    name="clv_v2",
    features=[
        customer_rfm,
        customer_timeseries,
        customer_returns,
        customer_engagement,
        customer_profile,
    ],
    description="Inputs of the deep ZILN model: clv_v1 + weekly sequences + customer profile.",
)
