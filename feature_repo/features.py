"""Feast definitions: the customer entity, feature views over the dbt marts, feature services.

The sources are the Parquet files that dbt exports (``warehouse/models/marts``); their location
comes from ``CLV_FEATURES_DIR`` (set by the ``clv`` CLI), defaulting to ``data/features`` at the
repository root, and is always absolute so nothing depends on the current directory.
"""

import os
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int32

FEATURES_DIR = Path(
    os.environ.get("CLV_FEATURES_DIR", Path(__file__).resolve().parent.parent / "data/features")
).resolve()

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.STRING,
    description="A shop customer (raw customer_id).",
)

customer_rfm_source = FileSource(
    name="customer_rfm_source",
    path=str(FEATURES_DIR / "customer_rfm.parquet"),
    timestamp_field="event_timestamp",
    description="dbt mart customer_rfm: one row per customer and as-of date.",
)

# A feature row at as-of date t holds events before t. Every customer has a row at every as-of
# date after their first order, so the TTL only bounds how stale a row may be when features are
# asked for between as-of dates (e.g. "now"): a little over a year.
customer_rfm = FeatureView(
    name="customer_rfm",
    entities=[customer],
    ttl=timedelta(days=400),
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
    source=customer_rfm_source,
    tags={"owner": "clv", "dbt_model": "customer_rfm"},
)

# One feature service per model input set: training retrieval and online reads use the same one.
clv_v1 = FeatureService(
    name="clv_v1",
    features=[customer_rfm],
    description="Inputs of the v1 CLV models (XGBoost baseline and deep ZILN regressor).",
)
