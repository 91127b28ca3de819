"""Live order and return events: a customer's online features updated between batch builds.

The batch chain (``clv build`` then ``clv features``) recomputes every feature exactly, as of the
latest as-of date. Between two builds a new order or return would otherwise stay invisible to
the online store, and so to the CLV endpoint. :func:`push_event` reads the customer's current
online rows, adds the event to them and writes the changed rows back through the feature views'
Feast push sources (``<view>_push``, ``PushMode.ONLINE``), so the next online read, a
``feast serve`` request or ``GET /v1/clv/{customer_id}`` sees the new values at once.

Semantics (approximate until the next build):

* The event counts as if it had happened on the last day the row covers (the day before its
  as-of date ``t``). The row keeps its as-of date, so the day-relative features (``t_days``,
  ``tenure_days``, ``days_since_last_view``) and the trailing windows do not roll forward:
  30-day and other windows gain the event but lose nothing, until a build recomputes them at a
  later as-of date. ``days_since_last_order`` becomes 1.
* An order of ``amount`` adds one order and ``amount`` to the gross and net revenue (to date,
  every trailing window, the 90-day trend, week 0 of the weekly sequence); a new purchase day
  adds one repeat purchase day (BTYD ``frequency``) and updates ``recency_days``,
  ``monetary_value`` and the inter-purchase statistics exactly.
* A return of ``amount`` adds one return and ``amount`` to the refunds, and subtracts it from
  the net revenue (to date, windows, trend, week 0). ``mean_days_to_return`` is left as it is
  (the returned order's date is not part of the event).
* An event dated before the row's as-of date is refused: the batch row already holds it.
* The next ``clv features`` overwrites the live rows with the batch rows (it always reloads the
  latest as-of date), so events must also reach the raw orders/returns for the build to keep
  them. Pushing the same event twice counts it twice; concurrent pushes for one customer from
  several processes can lose one of them (read-modify-write without a lock across processes).
* Only customers already in the online store can be updated; a new customer appears after the
  next build.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from clv_models.core.config import Config
from clv_models.core.errors import CLVError, DataError
from clv_models.features import store as features

if TYPE_CHECKING:
    from feast import FeatureStore

#: Feature views with a push source (``<view>_push``) that events update.
LIVE_VIEWS = ("customer_rfm", "customer_timeseries", "customer_returns", "customer_engagement")
#: A trailing-window column of customer_timeseries; the windows themselves are the dbt var
#: ``trailing_windows``, and an event updates whichever windows the row has.
_WINDOW_COLUMN = re.compile(r"orders_(\d+)d")
#: The features :func:`push_event` reports before and after (what apps usually look at).
SUMMARY_FEATURES = ("order_count", "days_since_last_order", "gross_revenue", "refund_amount",
                    "net_revenue", "orders_30d", "net_revenue_30d", "return_count")
EventKind = Literal["order", "return"]
#: Largest order or refund accepted: far above any real one, and small enough that sums of
#: such amounts stay finite floats (an unbounded amount could push ``inf`` into the store).
MAX_AMOUNT = 1e12
#: Longest customer id accepted (as the CLV endpoint's).
MAX_ID_LENGTH = 128
#: How far ``at`` may lie in the future (clock skew between the sender and this machine).
FUTURE_SLACK = dt.timedelta(days=1)
_lock = threading.Lock()  # one read-modify-write at a time within a process


class UnknownCustomerError(CLVError, ValueError):
    """The customer has no row in the online store (not built yet, or a wrong id)."""


@dataclass(frozen=True)
class LiveEvent:
    """One order or return of a customer.

    ``amount`` is the gross order total or the refund (0 to :data:`MAX_AMOUNT`, currency
    units); ``at`` is when it happened (default: now, UTC; a naive time is read as UTC; at most
    :data:`FUTURE_SLACK` ahead of now). ``customer_id``: 1 to :data:`MAX_ID_LENGTH` printable
    characters. Anything else raises ``ValueError`` before the online store is read.
    """

    customer_id: str
    kind: EventKind
    amount: float
    at: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("order", "return"):
            raise DataError(f"event kind must be 'order' or 'return', got {self.kind!r}")
        if not math.isfinite(self.amount) or not 0 <= self.amount <= MAX_AMOUNT:
            raise DataError(f"event amount must be a number from 0 to {MAX_AMOUNT:g}, got "
                             f"{self.amount!r}")
        if not self.customer_id:
            raise DataError("event customer_id is empty")
        if len(self.customer_id) > MAX_ID_LENGTH or not self.customer_id.isprintable():
            raise DataError(f"event customer_id must be at most {MAX_ID_LENGTH} printable "
                             f"characters, got {self.customer_id[:MAX_ID_LENGTH + 1]!r}")
        if self.timestamp() > dt.datetime.now(dt.timezone.utc) + FUTURE_SLACK:
            raise DataError(f"event at {self.timestamp().isoformat()} is in the future")

    def timestamp(self) -> dt.datetime:
        """``at`` as an aware UTC datetime (now when not given)."""
        at = self.at or dt.datetime.now(dt.timezone.utc)
        return at.replace(tzinfo=dt.timezone.utc) if at.tzinfo is None else at


@dataclass
class PushResult:
    """What one pushed event changed: the views written, the summary features before and
    after, the row's as-of date and the seconds from the read to the end of the push."""

    customer_id: str
    as_of: dt.datetime
    views: list[str]
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def _number(value: Any, default: float = 0.0) -> float:
    """A feature value as a float; None or NaN (a missing value) as ``default``."""
    if value is None:
        return default
    value = float(value)
    return default if math.isnan(value) else value


def apply_event(rows: dict[str, dict[str, Any]], event: LiveEvent) -> dict[str, dict[str, Any]]:
    """The rows of the views an event changes, updated (the module docstring's rules).

    Pure: ``rows`` (view name -> feature name -> value, as read from the online store, for
    every view in :data:`LIVE_VIEWS`) is not modified. Returns only the views whose values
    change.

    Parameters
    ----------
    rows
        The customer's current online values per feature view.
    event
        The order or return to add.
    """
    rows = copy.deepcopy(rows)
    rfm, ts = rows["customer_rfm"], rows["customer_timeseries"]
    ret, eng = rows["customer_returns"], rows["customer_engagement"]
    amount = float(event.amount)
    changed = {"customer_rfm", "customer_timeseries"}
    if event.kind == "order":
        orders = int(_number(rfm["order_count"])) + 1
        gross = _number(rfm["gross_revenue"]) + amount
        days_since = int(_number(rfm["days_since_last_order"], 1.0))
        frequency = int(_number(rfm["frequency"]))
        monetary = _number(rfm["monetary_value"])
        gap_sum = _number(rfm["recency_days"])  # sum of gaps between purchase days
        gap_sq = _gap_squares(frequency, gap_sum, ts["inter_purchase_days_mean"],
                              ts["inter_purchase_days_std"])
        if days_since > 1:  # a new purchase day: the day before the as-of date
            gap = days_since - 1
            monetary = (monetary * frequency + amount) / (frequency + 1)
            frequency += 1
            gap_sum, gap_sq = gap_sum + gap, gap_sq + gap * gap
            rfm["recency_days"] = int(gap_sum)
            ts["inter_purchase_days_mean"] = gap_sum / frequency
            ts["inter_purchase_days_std"] = (
                math.sqrt(max(gap_sq / frequency - (gap_sum / frequency) ** 2, 0.0))
                if frequency >= 2 else None)
        elif frequency > 0:  # a repeat purchase day that already has an order
            monetary += amount / frequency
        else:  # the first purchase day, which is also the last one
            rfm["first_order_value"] = _number(rfm["first_order_value"]) + amount
        rfm.update(frequency=frequency, monetary_value=monetary, days_since_last_order=1,
                   order_count=orders, gross_revenue=gross,
                   net_revenue=_number(rfm["net_revenue"]) + amount,
                   avg_order_value=gross / orders)
        for w in _windows(ts):
            ts[f"orders_{w}d"] = int(_number(ts[f"orders_{w}d"])) + 1
            ts[f"gross_revenue_{w}d"] = _number(ts[f"gross_revenue_{w}d"]) + amount
            ts[f"net_revenue_{w}d"] = _number(ts[f"net_revenue_{w}d"]) + amount
        ts["order_trend_90d"] = int(_number(ts["order_trend_90d"])) + 1
        ts["net_revenue_trend_90d"] = _number(ts["net_revenue_trend_90d"]) + amount
        _add_to_week0(ts, amount)
        return_count = int(_number(ret["return_count"]))
        refunds = _number(rfm["refund_amount"])
        if return_count or refunds:
            ret["returns_per_order"] = return_count / orders
            ret["refund_share"] = refunds / gross if gross > 0 else None
            changed.add("customer_returns")
        sessions = int(_number(eng["session_count"]))
        if sessions > 0 or _number(eng["views_since_last_order"]) != 0:
            eng["orders_per_session"] = orders / sessions if sessions > 0 else None
            eng["views_since_last_order"] = 0
            changed.add("customer_engagement")
    else:
        refunds = _number(rfm["refund_amount"]) + amount
        gross = _number(rfm["gross_revenue"])
        orders = int(_number(rfm["order_count"]))
        rfm["refund_amount"] = refunds
        rfm["net_revenue"] = _number(rfm["net_revenue"]) - amount
        for w in _windows(ts):
            ts[f"refunds_{w}d"] = _number(ts[f"refunds_{w}d"]) + amount
            ts[f"net_revenue_{w}d"] = _number(ts[f"net_revenue_{w}d"]) - amount
        ts["net_revenue_trend_90d"] = _number(ts["net_revenue_trend_90d"]) - amount
        _add_to_week0(ts, -amount)
        return_count = int(_number(ret["return_count"])) + 1
        ret["return_count"] = return_count
        ret["returns_per_order"] = return_count / orders if orders > 0 else None
        ret["refund_share"] = refunds / gross if gross > 0 else None
        changed.add("customer_returns")
    return {view: rows[view] for view in LIVE_VIEWS if view in changed}


def _windows(ts: dict[str, Any]) -> list[int]:
    """The trailing windows (days) of a customer_timeseries row, from its column names."""
    return sorted(int(m.group(1)) for k in ts if (m := _WINDOW_COLUMN.fullmatch(k)))


def _gap_squares(gaps: int, gap_sum: float, mean: Any, std: Any) -> float:
    """Sum of squared gaps between purchase days, recovered from the mart's mean and
    (population) standard deviation: ``n (std² + mean²)``; one gap: its square."""
    if gaps <= 0:
        return 0.0
    if gaps == 1:
        return gap_sum * gap_sum
    m = _number(mean, gap_sum / gaps)
    return gaps * (_number(std) ** 2 + m * m)


def _add_to_week0(ts: dict[str, Any], amount: float) -> None:
    """Add ``amount`` to week 0 (the week before the as-of date) of the weekly net revenue."""
    weeks = ts.get("weekly_net_revenue_52w")
    if weeks is None or len(weeks) == 0:
        return
    weeks = [float(v) if v is not None else 0.0 for v in weeks]
    weeks[0] += amount
    ts["weekly_net_revenue_52w"] = weeks


def view_features(store: FeatureStore, views: tuple[str, ...] = LIVE_VIEWS) -> dict[str, list]:
    """Feature names per feature view, as registered."""
    return {v: [f.name for f in store.get_feature_view(v).features] for v in views}


def read_rows(store: FeatureStore, customer_id: str,
              names: dict[str, list[str]]) -> tuple[dt.datetime, dict[str, dict[str, Any]]]:
    """The customer's online rows of the live views and their as-of date (the timestamp of
    the ``customer_rfm`` row). Raises :class:`UnknownCustomerError` without a row."""
    refs = [f"{view}:{name}" for view, cols in names.items() for name in cols]
    out = store.get_online_features(features=refs, entity_rows=[{features.ENTITY_KEY:
                                                                  customer_id}])
    values = out.to_dict(include_event_timestamps=True)
    stamp = values.get("order_count__ts", [0])[0]
    if values["order_count"][0] is None or not stamp:
        raise UnknownCustomerError(
            f"customer {customer_id!r} is not in the online store: live events update known "
            "customers; new customers appear after the next `clv build` and `clv features`")
    as_of = dt.datetime.fromtimestamp(int(stamp), tz=dt.timezone.utc)
    return as_of, {view: {name: values[name][0] for name in cols} for view, cols in names.items()}


def push_event(cfg: Config, event: LiveEvent, store: FeatureStore | None = None,
               names: dict[str, list[str]] | None = None) -> PushResult:
    """Add one order or return to a customer's online features, through the push sources.

    Reads the customer's rows of :data:`LIVE_VIEWS` from the online store, applies
    :func:`apply_event` and pushes each changed row to ``<view>_push`` with
    ``PushMode.ONLINE`` (the row keeps its as-of date as event timestamp). Serialised within
    the process by a lock. See the module docstring for what is approximate.

    Parameters
    ----------
    cfg
        The configuration (data directory of the Feast repo).
    event
        The order or return.
    store, names
        A Feast store and :func:`view_features` to reuse (a long-running caller keeps them).
    """
    from feast.data_source import PushMode

    store = store or features.feature_store(cfg)
    names = names or view_features(store)
    with _lock:
        start = time.perf_counter()
        as_of, rows = read_rows(store, event.customer_id, names)
        at = event.timestamp()
        if at < as_of:
            raise DataError(
                f"event at {at.isoformat()} is before the online row's as-of date "
                f"{as_of.date()}: the batch features already hold it")
        updated = apply_event(rows, event)
        stamp = pd.Timestamp(as_of)
        for view, row in updated.items():
            frame = pd.DataFrame([{features.ENTITY_KEY: event.customer_id,
                                   "event_timestamp": stamp, **row}])
            store.push(f"{view}_push", frame, to=PushMode.ONLINE)
        seconds = time.perf_counter() - start
    flat_before = {k: v for row in rows.values() for k, v in row.items()}
    flat_after = {**flat_before, **{k: v for row in updated.values() for k, v in row.items()}}
    keys = [k for k in SUMMARY_FEATURES if k in flat_before]
    return PushResult(customer_id=event.customer_id, as_of=as_of, views=list(updated),
                      before={k: flat_before[k] for k in keys},
                      after={k: flat_after[k] for k in keys}, seconds=seconds)
