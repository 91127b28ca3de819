"""Synthetic shop generator: raw orders, page views, returns and customers plus ground truth.

Generative process (documented in docs/evaluation.md, "The synthetic shop and the oracle"):

* **Cohorts.** Customers are acquired over ``[start, end)`` with an intensity that grows linearly
  (the shop doubles its acquisition rate over the period) and follows the seasonality below. A
  customer's first order is at acquisition; ``signup_at`` is up to two days earlier.
* **Profile.** ``country`` and ``acquisition_channel`` are drawn per customer; the channel scales
  the purchase rate (referral and e-mail customers buy more often, paid social less) and the
  country scales the spend level, so profile attributes carry real signal.
* **Purchases** (Pareto/NBD-like). Each customer has a latent purchase rate ``lambda`` (per day,
  gamma distributed across customers) and a latent dropout rate ``mu``; the customer is alive for
  an exponential lifetime ``tau ~ Exp(mu)`` after acquisition and then goes quiet for good. While
  alive, repeat orders arrive as a Poisson process with intensity ``lambda * s(t)``, where ``s``
  is a weekly x yearly seasonality with mean 1 (weekends and November/December are busier).
* **Spend.** A latent spend level ``m`` (log-normal); each order's total is Gamma with mean ``m``.
* **Returns.** A latent return propensity ``rho`` (beta); each order is returned with probability
  ``rho`` a few days later, refunding 30-100 % of the order total.
* **Browsing.** A latent browsing intensity, correlated with ``lambda``: background sessions while
  alive, plus a session just before every order and, often, a research session in the week before
  (views cluster before purchases). Anonymous visitors add views with an empty ``customer_id``.

Ground truth (``truth/``): every customer's latent parameters, and the **oracle**: for each as-of
date ``t``, the expected net revenue in ``[t, t + horizon)`` given the true latent parameters and
the customer's observed order history before ``t`` (the probability of still being alive follows
the Pareto/NBD formula with the seasonal intensity averaged over the inactive spell). It is the
best prediction a model can make from the data; it ignores the per-customer floor at zero and
refunds of pre-``t`` orders that fall inside the horizon, both small.

Customers are generated in fixed-size chunks, each with its own seeded random stream, and every
table is appended chunk by chunk to a Parquet file, so memory stays bounded and the output for a
given seed and customer count is identical on every run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from clv_models.core.config import Config
from clv_models.ingest.raw import mark_raw_replaced

CHUNK_SIZE = 25_000
US_PER_DAY = 86_400 * 1_000_000
REFUND_FRACTION_LOW, REFUND_FRACTION_HIGH = 0.3, 1.0

COUNTRIES = np.array(["US", "GB", "DE", "FR", "NL", "ES"])
COUNTRY_P = np.array([0.40, 0.18, 0.15, 0.12, 0.08, 0.07])
COUNTRY_SPEND = np.array([1.10, 1.00, 1.05, 0.95, 1.00, 0.85])
ACQ_CHANNELS = np.array(["organic", "paid_search", "paid_social", "referral", "email"])
ACQ_P = np.array([0.35, 0.25, 0.20, 0.10, 0.10])
ACQ_RATE = np.array([1.00, 0.90, 0.60, 1.40, 1.20])
ORDER_CHANNELS = np.array(["web", "app", "store"])
ORDER_CHANNEL_P = np.array([0.6, 0.3, 0.1])
CATEGORIES = np.array(
    ["books", "music", "video", "games", "toys", "home", "garden", "kitchen", "beauty", "health",
     "fashion", "shoes", "sports", "outdoor", "electronics", "computers", "phones", "office",
     "pets", "baby"]
)
PAGE_TYPES = pa.array(["home", "category", "product", "search", "cart", "checkout"])
HOME, CATEGORY, PRODUCT, SEARCH, CART, CHECKOUT = range(6)
BROWSE_P = np.array([0.15, 0.30, 0.45, 0.10])
N_PRODUCTS = 5_000

TIMESTAMP = pa.timestamp("us", tz="UTC")
SCHEMAS = {
    "customers": pa.schema([
        ("customer_id", pa.string()), ("signup_at", TIMESTAMP), ("country", pa.string()),
        ("acquisition_channel", pa.string()),
    ]),
    "orders": pa.schema([
        ("order_id", pa.string()), ("customer_id", pa.string()), ("ordered_at", TIMESTAMP),
        ("order_total", pa.float64()), ("currency", pa.string()), ("item_count", pa.int32()),
        ("channel", pa.string()),
    ]),
    "page_views": pa.schema([
        ("customer_id", pa.string()), ("viewed_at", TIMESTAMP), ("session_id", pa.string()),
        ("page_type", pa.string()), ("product_id", pa.string()), ("category", pa.string()),
    ]),
    "returns": pa.schema([
        ("return_id", pa.string()), ("customer_id", pa.string()), ("returned_at", TIMESTAMP),
        ("refund_amount", pa.float64()), ("order_id", pa.string()), ("item_count", pa.int32()),
    ]),
    "customer_params": pa.schema([
        ("customer_id", pa.string()), ("acquired_at", TIMESTAMP),
        ("purchase_rate_per_day", pa.float64()), ("dropout_rate_per_day", pa.float64()),
        ("dropout_at", TIMESTAMP), ("mean_order_value", pa.float64()),
        ("return_propensity", pa.float64()), ("browse_rate_per_day", pa.float64()),
    ]),
    "oracle": pa.schema([
        ("customer_id", pa.string()), ("as_of_date", pa.date32()), ("horizon_days", pa.int32()),
        ("p_alive", pa.float64()), ("p_purchase", pa.float64()),
        ("expected_purchases", pa.float64()), ("expected_net_revenue", pa.float64()),
    ]),
}
RAW_TABLES = ("customers", "orders", "page_views", "returns")
TRUTH_TABLES = ("customer_params", "oracle")


@dataclass
class ShopSummary:
    """Row counts written per table and where."""

    rows: dict[str, int]
    raw_dir: Path
    truth_dir: Path


# -- time grid --------------------------------------------------------------------------------

class SeasonalClock:
    """Daily seasonality ``s(d)`` (mean 1 over the shop period) and its cumulative integral.

    Times are float days since the shop start; the grid extends past the end of the shop so the
    oracle can integrate over horizons that reach beyond the observed data.
    """

    WEEKDAY = np.array([0.92, 0.90, 0.95, 1.00, 1.05, 1.13, 1.05])  # Monday .. Sunday

    def __init__(self, start: dt.date, end: dt.date, extra_days: int) -> None:
        self.start = start
        self.n_days = (end - start).days
        days = np.arange(self.n_days + extra_days)
        dates = np.datetime64(start) + days
        doy = (dates - dates.astype("datetime64[Y]")).astype(int)
        weekday = (dates.astype("datetime64[D]").astype(int) + 3) % 7  # 1970-01-01 was Thursday
        yearly = 1.0 + 0.3 * np.cos(2 * np.pi * (doy - 340) / 365.25)
        s = yearly * self.WEEKDAY[weekday]
        self.s = s / s[: self.n_days].mean()
        self.cum = np.concatenate([[0.0], np.cumsum(self.s)])

    def integral(self, t: np.ndarray) -> np.ndarray:
        """``S(t) = integral of s from 0 to t`` (piecewise linear between days)."""
        t = np.clip(t, 0, len(self.s) - 1e-9)
        k = np.floor(t).astype(np.int64)
        return self.cum[k] + (t - k) * self.s[k]

    def inverse(self, u: np.ndarray) -> np.ndarray:
        """The time ``t`` with ``S(t) = u``."""
        k = np.clip(np.searchsorted(self.cum, u, side="right") - 1, 0, len(self.s) - 1)
        return k + (u - self.cum[k]) / self.s[k]

    def sample(self, rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """One time per interval, with density proportional to ``s`` on ``[lo, hi)``."""
        a, b = self.integral(lo), self.integral(hi)
        return np.minimum(self.inverse(a + rng.random(len(lo)) * (b - a)), hi - 1e-7)


# -- helpers ----------------------------------------------------------------------------------

def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix`` + zero-padded numbers, built in Arrow (fast for tens of millions of rows)."""
    digits = pc.utf8_lpad(pa.array(numbers.astype(np.int64)).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def _timestamps(start_us: int, days: np.ndarray) -> pa.Array:
    return pa.array(start_us + np.round(days * US_PER_DAY).astype(np.int64), type=TIMESTAMP)


def _choice(rng: np.random.Generator, p: np.ndarray, n: int) -> np.ndarray:
    """Indices drawn with probabilities ``p``."""
    return rng.choice(len(p), size=n, p=p)


def _segments(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ``counts`` per parent: the parent index and the position within the parent, per row."""
    parent = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return parent, np.arange(len(parent)) - starts[parent]


class _Writers:
    """Append-only Parquet writers, one per table."""

    def __init__(self, tables: dict[str, Path]) -> None:
        self.paths = tables
        self.rows = dict.fromkeys(tables, 0)
        self._writers: dict[str, pq.ParquetWriter] = {}
        for name, path in tables.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".parquet.tmp")
            self._writers[name] = pq.ParquetWriter(tmp, SCHEMAS[name], compression="zstd")

    def write(self, name: str, columns: dict[str, pa.Array | np.ndarray]) -> None:
        table = pa.Table.from_pydict(columns, schema=SCHEMAS[name])
        self._writers[name].write_table(table)
        self.rows[name] += table.num_rows

    def close(self, ok: bool) -> None:
        for name, writer in self._writers.items():
            writer.close()
            tmp = self.paths[name].with_suffix(".parquet.tmp")
            if ok:
                tmp.replace(self.paths[name])  # atomic: readers never see half a file
            else:
                tmp.unlink(missing_ok=True)


# -- the generator ----------------------------------------------------------------------------

def generate_shop(
    cfg: Config, progress: Callable[[int, int], None] | None = None
) -> ShopSummary:
    """Write the raw tables and the ground truth of a synthetic shop.

    Parameters
    ----------
    cfg
        Uses ``cfg.shop`` (size, period, seed), ``cfg.as_of`` and ``cfg.horizon_days`` (for the
        oracle) and writes under ``cfg.raw_dir`` and ``cfg.truth_dir``.
    progress
        Called with ``(customers_done, customers_total)`` after each chunk.
    """
    shop = cfg.shop
    clock = SeasonalClock(shop.start, shop.end, extra_days=cfg.horizon_days + 1)
    as_of_dates = cfg.as_of.dates(shop.end, first_event=shop.start)
    paths = {t: cfg.raw_dir / f"{t}.parquet" for t in RAW_TABLES}
    paths |= {t: cfg.truth_dir / f"{t}.parquet" for t in TRUTH_TABLES}
    writers = _Writers(paths)
    ok = False
    try:
        n_chunks = -(-shop.customers // CHUNK_SIZE)
        for chunk in range(n_chunks):
            first = chunk * CHUNK_SIZE
            n = min(CHUNK_SIZE, shop.customers - first)
            rng = np.random.default_rng([shop.seed, chunk])
            _generate_chunk(cfg, clock, as_of_dates, rng, chunk, first, n, writers)
            if progress:
                progress(first + n, shop.customers)
        ok = True
    finally:
        writers.close(ok)
    if ok:
        mark_raw_replaced(cfg.raw_dir)
    return ShopSummary(rows=writers.rows, raw_dir=cfg.raw_dir, truth_dir=cfg.truth_dir)


def _generate_chunk(
    cfg: Config,
    clock: SeasonalClock,
    as_of_dates: list[dt.date],
    rng: np.random.Generator,
    chunk: int,
    first: int,
    n: int,
    out: _Writers,
) -> None:
    shop = cfg.shop
    n_days = clock.n_days
    start_us = int(np.datetime64(shop.start, "us").astype(np.int64))
    cust_ids = _ids("C", np.arange(first, first + n) + 1, 8)

    # Acquisition: intensity grows linearly (x2 over the period) times seasonality -> rejection
    # sampling from the seasonal clock.
    acquired = clock.sample(rng, np.zeros(n), np.full(n, float(n_days)))
    keep = rng.random(n) < (1 + acquired / n_days) / 2
    while not keep.all():
        redo = ~keep
        acquired[redo] = clock.sample(rng, np.zeros(redo.sum()), np.full(redo.sum(), n_days))
        keep[redo] = rng.random(redo.sum()) < (1 + acquired[redo] / n_days) / 2

    country = _choice(rng, COUNTRY_P, n)
    acq = _choice(rng, ACQ_P, n)
    lam = rng.gamma(0.9, 1 / 30, n) * ACQ_RATE[acq]            # repeat orders per day
    mu = rng.gamma(1.2, 1 / (1.2 * 450), n)                     # dropouts per day
    tau = rng.exponential(1 / mu)                               # lifetime in days
    spend = np.exp(rng.normal(3.7, 0.55, n)) * COUNTRY_SPEND[country]
    rho = rng.beta(1.2, 8.0, n)
    browse = lam * rng.gamma(2.0, 0.2, n) + 0.001               # background sessions per day
    alive_until = np.minimum(acquired + tau, n_days)

    signup = np.maximum(acquired - rng.random(n) * 2, 0.0)
    out.write("customers", {
        "customer_id": cust_ids, "signup_at": _timestamps(start_us, signup),
        "country": COUNTRIES[country], "acquisition_channel": ACQ_CHANNELS[acq],
    })
    out.write("customer_params", {
        "customer_id": cust_ids, "acquired_at": _timestamps(start_us, acquired),
        "purchase_rate_per_day": lam, "dropout_rate_per_day": mu,
        "dropout_at": _timestamps(start_us, np.minimum(acquired + tau, 1e6)),
        "mean_order_value": spend, "return_propensity": rho, "browse_rate_per_day": browse,
    })

    # Orders: the first at acquisition, repeats from the seasonal Poisson process while alive.
    exposure = lam * (clock.integral(alive_until) - clock.integral(acquired))
    n_repeat = rng.poisson(exposure)
    rep_cust, _ = _segments(n_repeat)
    rep_t = clock.sample(rng, acquired[rep_cust], alive_until[rep_cust])
    o_cust = np.concatenate([np.arange(n), rep_cust])
    o_t = np.concatenate([acquired, rep_t])
    order = np.lexsort((o_t, o_cust))
    o_cust, o_t = o_cust[order], o_t[order]
    n_orders = len(o_cust)
    q = 3.0
    o_total = np.round(rng.gamma(q, spend[o_cust] / q) + 0.99, 2)
    order_numbers = (np.int64(chunk) * 100_000_000) + np.arange(n_orders) + 1
    order_ids = _ids("O", order_numbers, 11)
    out.write("orders", {
        "order_id": order_ids, "customer_id": cust_ids.take(o_cust),
        "ordered_at": _timestamps(start_us, o_t), "order_total": o_total,
        "currency": np.full(n_orders, "USD"),
        "item_count": (1 + rng.poisson(0.8, n_orders)).astype(np.int32),
        "channel": ORDER_CHANNELS[_choice(rng, ORDER_CHANNEL_P, n_orders)],
    })

    # Returns of a share rho of orders, 2-30 days later; only those observed before the end.
    returned = rng.random(n_orders) < rho[o_cust]
    r_idx = np.flatnonzero(returned)
    r_t = o_t[r_idx] + 2 + rng.gamma(2.0, 4.0, len(r_idx))
    seen = r_t < n_days
    r_idx, r_t = r_idx[seen], r_t[seen]
    frac = rng.uniform(REFUND_FRACTION_LOW, REFUND_FRACTION_HIGH, len(r_idx))
    out.write("returns", {
        "return_id": _ids("R", order_numbers[r_idx], 11),
        "customer_id": cust_ids.take(o_cust[r_idx]),
        "returned_at": _timestamps(start_us, r_t),
        "refund_amount": np.round(o_total[r_idx] * frac, 2),
        "order_id": order_ids.take(r_idx),
        "item_count": np.ones(len(r_idx), dtype=np.int32),
    })

    _write_page_views(cfg, clock, rng, chunk, start_us, cust_ids, acquired, alive_until, browse,
                      o_cust, o_t, out)
    _write_oracle(cfg, clock, as_of_dates, cust_ids, acquired, lam, mu, spend, rho, o_cust, o_t,
                  out)


def _write_page_views(
    cfg: Config, clock: SeasonalClock, rng: np.random.Generator, chunk: int, start_us: int,
    cust_ids: pa.Array, acquired: np.ndarray, alive_until: np.ndarray, browse: np.ndarray,
    o_cust: np.ndarray, o_t: np.ndarray, out: _Writers,
) -> None:
    n_days = clock.n_days
    # Sessions: one right before each order, a research session in the week before ~30 % of
    # orders, background sessions while alive, and anonymous sessions.
    research = rng.random(len(o_t)) < 0.3
    bg_counts = rng.poisson(browse * (clock.integral(alive_until) - clock.integral(acquired)))
    bg_cust, _ = _segments(bg_counts)
    n_anon = int(round(cfg.shop.anonymous_view_share * (len(o_t) * 1.3 + len(bg_cust))))
    anon_t = clock.sample(rng, np.zeros(n_anon), np.full(n_anon, float(n_days)))

    pre_end = o_t - rng.uniform(30, 600, len(o_t)) / 86_400
    res_end = o_t[research] - rng.uniform(0.5, 7.0, research.sum())
    bg_end = clock.sample(rng, acquired[bg_cust], alive_until[bg_cust])
    sess_cust = np.concatenate([o_cust, o_cust[research], bg_cust, np.full(n_anon, -1)])
    sess_end = np.concatenate([pre_end, res_end, bg_end, anon_t])
    sess_kind = np.concatenate([
        np.zeros(len(o_t), np.int8), np.ones(research.sum(), np.int8),
        np.full(len(bg_cust), 2, np.int8), np.full(n_anon, 3, np.int8),
    ])
    n_sess = len(sess_end)
    views_per = 1 + rng.poisson(np.where(sess_kind == 0, 2.0, 1.5))
    v_sess, v_pos = _segments(views_per)
    n_views = len(v_sess)
    # View times: the session's last view is at its end; earlier ones ~1 minute apart each.
    gaps = rng.exponential(60.0, n_views) / 86_400
    back = np.bincount(v_sess, weights=gaps, minlength=n_sess)  # session duration
    before = np.cumsum(gaps) - (np.cumsum(back) - back)[v_sess]  # elapsed up to this view
    v_t = sess_end[v_sess] - back[v_sess] + before
    from_last = views_per[v_sess] - 1 - v_pos
    kind = sess_kind[v_sess]
    page = rng.choice(len(BROWSE_P), size=n_views, p=BROWSE_P)
    page[(kind == 0) & (from_last == 1) & (views_per[v_sess] > 2)] = CART
    page[(kind == 0) & (from_last == 0) & (views_per[v_sess] > 1)] = CHECKOUT
    product = (rng.zipf(1.3, n_views) % N_PRODUCTS) + 1
    has_product = (page == PRODUCT) | (page == CART)
    has_category = has_product | (page == CATEGORY)

    observed = (v_t >= 0) & (v_t < n_days)
    v_cust = sess_cust[v_sess]
    order = np.flatnonzero(observed)
    order = order[np.argsort(v_t[order], kind="stable")]
    customer = cust_ids.take(pa.array(np.where(v_cust[order] < 0, 0, v_cust[order])))
    customer = pc.if_else(pa.array(v_cust[order] < 0), pa.scalar(None, pa.string()), customer)
    product_ids = _ids("P", product[order], 5)
    product_ids = pc.if_else(pa.array(has_product[order]), product_ids,
                             pa.scalar(None, pa.string()))
    out.write("page_views", {
        "customer_id": customer,
        "viewed_at": _timestamps(start_us, v_t[order]),
        "session_id": _ids(f"S{chunk:04d}-", v_sess[order], 9),
        "page_type": PAGE_TYPES.take(pa.array(page[order])),
        "product_id": product_ids,
        "category": pc.if_else(pa.array(has_category[order]),
                               pa.array(CATEGORIES).take(pa.array(product[order] % 20)),
                               pa.scalar(None, pa.string())),
    })


def _write_oracle(
    cfg: Config, clock: SeasonalClock, as_of_dates: list[dt.date], cust_ids: pa.Array,
    acquired: np.ndarray, lam: np.ndarray, mu: np.ndarray, spend: np.ndarray, rho: np.ndarray,
    o_cust: np.ndarray, o_t: np.ndarray, out: _Writers,
) -> None:
    h = cfg.horizon_days
    n = len(acquired)
    mean_refund = rho * (REFUND_FRACTION_LOW + REFUND_FRACTION_HIGH) / 2
    k = np.arange(h) + 0.5
    for as_of in as_of_dates:
        t = float((as_of - cfg.shop.start).days)
        cust = np.flatnonzero(acquired < t)
        if len(cust) == 0:
            continue
        last = np.full(n, -np.inf)
        before = o_t < t
        np.maximum.at(last, o_cust[before], o_t[before])
        t_x = last[cust]
        lam_c, mu_c = lam[cust], mu[cust]
        # P(alive at t | lambda, mu, last purchase t_x): Pareto/NBD, seasonal intensity averaged
        # over the quiet spell (t_x, t).
        gap = np.maximum(t - t_x, 1e-9)
        lam_bar = lam_c * (clock.integral(np.full_like(t_x, t)) - clock.integral(t_x)) / gap
        expo = np.minimum((lam_bar + mu_c) * gap, 700.0)
        p_alive = 1.0 / (1.0 + mu_c / (lam_bar + mu_c) * np.expm1(expo))
        # Given alive at t: expected purchases and P(no purchase) over the horizon, daily grid.
        s = clock.s[int(t): int(t) + h]
        expected = np.empty(len(cust))
        p_none = np.empty(len(cust))
        for lo in range(0, len(cust), 4096):
            sl = slice(lo, lo + 4096)
            survive = np.exp(-mu_c[sl, None] * k[None, :])          # alive at day k
            rate = lam_c[sl, None] * s[None, :]
            expected[sl] = (rate * survive).sum(axis=1)
            cum_rate = np.cumsum(rate, axis=1)
            dropout_density = mu_c[sl, None] * survive
            p_none[sl] = (dropout_density * np.exp(-cum_rate)).sum(axis=1) + np.exp(
                -mu_c[sl] * h - cum_rate[:, -1])
        exp_purchases = p_alive * expected
        out.write("oracle", {
            "customer_id": cust_ids.take(cust),
            "as_of_date": pa.array(np.full(len(cust), as_of), pa.date32()),
            "horizon_days": np.full(len(cust), h, np.int32),
            "p_alive": p_alive,
            "p_purchase": p_alive * (1 - np.clip(p_none, 0, 1)),
            "expected_purchases": exp_purchases,
            "expected_net_revenue": exp_purchases * (spend[cust] + 0.99) * (1 - mean_refund[cust]),
        })
