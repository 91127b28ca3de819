"""Feast definitions: the customer entity, feature views over the dbt marts, feature services.

The sources are the Parquet files that dbt exports (``warehouse/models/marts``); their location
comes from ``CLV_FEATURES_DIR`` (set by the ``clv`` CLI; by hand, ``eval "$(clv env)"``) and is
made absolute, so nothing depends on the current directory. Column
meanings are documented in the marts' YAML (``dbt docs``). The views that orders and returns
change read their mart through a push source (``<view>_push``), so live events can update a
customer's online row between builds (``clv push-event``, ``clv_models.live``).
"""

import os
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Array, Float32, Float64, Int32, String

if not all(os.environ.get(v) for v in ("CLV_FEAST_DIR", "CLV_FEATURES_DIR", "CLV_ONLINE_STORE")):
    raise RuntimeError('CLV_FEAST_DIR, CLV_FEATURES_DIR or CLV_ONLINE_STORE is not set: run '
                       '`eval "$(clv env)"` first (feature_store.yaml and the sources read their '
                       "paths and the online store from them)")
FEATURES_DIR = Path(os.environ["CLV_FEATURES_DIR"]).resolve()

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
    (materialization, training retrieval); ``clv push-event`` (``clv_models.live``) pushes a
    customer's updated row straight to the online store when an order or return arrives."""
    return PushSource(
        name=f"{model}_push",
        batch_source=mart_source(model),
        description=f"Live updates of {model} rows (order and return events).",
    )


customer_rfm = FeatureView(
    name="customer_rfm",
    entities=[customer],
    ttl=TTL,
    schema=[
        Field(name="frequency", dtype=Int32, description="Repeat purchase days (BTYD)."),
        Field(name="recency_days", dtype=Int32, description="First to last purchase day (BTYD)."),
        Field(name="t_days", dtype=Int32, description="First purchase day to as-of date (BTYD)."),
        Field(name="monetary_value", dtype=Float64, description="Mean repeat-day revenue (BTYD)."),
        Field(name="days_since_last_order", dtype=Int32, description="Days since last purchase."),
        Field(name="order_count", dtype=Int32, description="Orders before the as-of date."),
        Field(name="gross_revenue", dtype=Float64, description="Order totals to date."),
        Field(name="refund_amount", dtype=Float64, description="Refunds to date."),
        Field(name="net_revenue", dtype=Float64, description="Gross revenue minus refunds."),
        Field(name="avg_order_value", dtype=Float64, description="Gross revenue per order."),
        Field(name="first_order_value", dtype=Float64, description="First purchase day revenue."),
    ],
    online=True,
    source=live_source("customer_rfm"),
    tags={"dbt_model": "customer_rfm"},
)

customer_timeseries = FeatureView(
    name="customer_timeseries",
    entities=[customer],
    ttl=TTL,
    schema=[
        Field(name="orders_7d", dtype=Int32),
        Field(name="gross_revenue_7d", dtype=Float64),
        Field(name="refunds_7d", dtype=Float64),
        Field(name="net_revenue_7d", dtype=Float64),
        Field(name="views_7d", dtype=Int32),
        Field(name="sessions_7d", dtype=Int32),
        Field(name="orders_30d", dtype=Int32),
        Field(name="gross_revenue_30d", dtype=Float64),
        Field(name="refunds_30d", dtype=Float64),
        Field(name="net_revenue_30d", dtype=Float64),
        Field(name="views_30d", dtype=Int32),
        Field(name="sessions_30d", dtype=Int32),
        Field(name="orders_90d", dtype=Int32),
        Field(name="gross_revenue_90d", dtype=Float64),
        Field(name="refunds_90d", dtype=Float64),
        Field(name="net_revenue_90d", dtype=Float64),
        Field(name="views_90d", dtype=Int32),
        Field(name="sessions_90d", dtype=Int32),
        Field(name="orders_180d", dtype=Int32),
        Field(name="gross_revenue_180d", dtype=Float64),
        Field(name="refunds_180d", dtype=Float64),
        Field(name="net_revenue_180d", dtype=Float64),
        Field(name="views_180d", dtype=Int32),
        Field(name="sessions_180d", dtype=Int32),
        Field(name="orders_365d", dtype=Int32),
        Field(name="gross_revenue_365d", dtype=Float64),
        Field(name="refunds_365d", dtype=Float64),
        Field(name="net_revenue_365d", dtype=Float64),
        Field(name="views_365d", dtype=Int32),
        Field(name="sessions_365d", dtype=Int32),
        Field(name="order_trend_90d", dtype=Int32),
        Field(name="net_revenue_trend_90d", dtype=Float64),
        Field(name="inter_purchase_days_mean", dtype=Float64),
        Field(name="inter_purchase_days_std", dtype=Float64),
        Field(name="tenure_days", dtype=Int32),
        Field(name="weekly_net_revenue_52w", dtype=Array(Float32)),
        Field(name="weekly_views_52w", dtype=Array(Float32)),
    ],
    online=True,
    source=live_source("customer_timeseries"),
    tags={"dbt_model": "customer_timeseries"},
)

customer_returns = FeatureView(
    name="customer_returns",
    entities=[customer],
    ttl=TTL,
    schema=[
        Field(name="return_count", dtype=Int32),
        Field(name="returns_per_order", dtype=Float64),
        Field(name="refund_share", dtype=Float64),
        Field(name="mean_days_to_return", dtype=Float64),
    ],
    online=True,
    source=live_source("customer_returns"),
    tags={"dbt_model": "customer_returns"},
)

customer_engagement = FeatureView(
    name="customer_engagement",
    entities=[customer],
    ttl=TTL,
    schema=[
        Field(name="view_count", dtype=Int32),
        Field(name="session_count", dtype=Int32),
        Field(name="product_view_count", dtype=Int32),
        Field(name="orders_per_session", dtype=Float64),
        Field(name="days_since_last_view", dtype=Int32),
        Field(name="views_since_last_order", dtype=Int32),
    ],
    online=True,
    source=live_source("customer_engagement"),
    tags={"dbt_model": "customer_engagement"},
)

customer_profile = FeatureView(
    name="customer_profile",
    entities=[customer],
    ttl=TTL,
    schema=[
        Field(name="country", dtype=String),
        Field(name="acquisition_channel", dtype=String),
        Field(name="days_since_signup", dtype=Int32),
    ],
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
