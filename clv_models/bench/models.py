"""Model benchmarks: ``clv bench oracle`` (accuracy against the generator's oracle) and
``clv bench training`` (training-set retrieval, deep-model throughput, batch scoring).

Every figure of a benchmark is measured in the same run; ratios compare two measurements of
that run. The printing, JSON format and machine description are shared with ``clv bench
warehouse`` (:mod:`clv_models.bench.warehouse`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pandas as pd
import psutil

from clv_models.bench.common import BenchResult, PeakMemory, ratio_row, timed
from clv_models.bench.warehouse import MARTS
from clv_models.core import metrics, sql
from clv_models.core.config import Config, DeepConfig
from clv_models.core.errors import ConfigError, DataError
from clv_models.evaluation import evaluation
from clv_models.features import store as features
from clv_models.ingest.generate import generate_shop
from clv_models.models import Prediction, training
from clv_models.models.xgb import XGBoostCLV
from clv_models.warehouse import dbt as warehouse

if TYPE_CHECKING:
    from feast import FeatureStore
    from rich.console import Console
    from rich.table import Table

ORACLE_GINI_TARGET = 0.97  # deep_ziln's normalized Gini / the oracle's
# The champion's targets: normalized Gini / the feature ceiling's, decile MAPE, total ratio.
CHAMPION_CEILING_TARGET = 0.99
CHAMPION_DECILE_MAPE_TARGET = 0.15
CHAMPION_TOTAL_RANGE = (0.97, 1.03)
CEILING = "feature_ceiling"  # the oracle benchmark's estimate of what the features allow
# Customers by the orders they had placed before the evaluation date (the gap breakdown).
HISTORY_GROUPS = (("1 order", 1, 1), ("2-3 orders", 2, 3), ("4+ orders", 4, None))
RETRIEVAL_RATIO_TARGET = 3.0  # Feast retrieval seconds / as-of join seconds
CUDA_SAMPLES_TARGET = 1_000_000  # deep-model training samples/s on one H100
COMPARE_ROWS = 20_000  # rows of the Feast / as-of join value check
PARTS = ("retrieval", "deep", "scoring")


# -- oracle -------------------------------------------------------------------------------------
def bench_oracle(cfg: Config, console: Console | None = None) -> BenchResult:
    """``clv bench oracle``: the whole product chain on a generated shop, scored against the
    generator's oracle.

    Runs the product's stages (:class:`clv_models.pipeline.Pipeline`): generate (only when the
    data directory holds no raw files, so the shop is generated once and reused), build,
    features, train, evaluate. Each evaluated model is one row with every contract metric, its
    normalized Gini as a share of the oracle's (``gini_over_oracle``) and its MAE over the
    oracle's (``mae_over_oracle``); reference rows (naive, BG/NBD + Gamma-Gamma, the oracle)
    carry ``"reference": true``. Two rows check the targets: deep_ziln reaches
    ``ORACLE_GINI_TARGET`` of the oracle's normalized Gini *and* a higher normalized Gini than
    XGBoost (``deep_ziln_target``); the champion (chosen on validation cutoffs) reaches
    ``CHAMPION_CEILING_TARGET`` of the feature ceiling's normalized Gini, a decile MAPE of at
    most ``CHAMPION_DECILE_MAPE_TARGET`` and a predicted/actual total within
    ``CHAMPION_TOTAL_RANGE`` (``champion_target``).

    Raises
    ------
    ValueError
        When the data has no oracle (imported rather than generated data).
    """
    from rich.console import Console

    from clv_models.pipeline import Pipeline

    pipeline = Pipeline(cfg, console=console or Console(quiet=True))
    cfg = pipeline.cfg
    generated = not _has_raw(cfg)
    if generated:
        pipeline.generate()
    pipeline.build()
    pipeline.features(full_refresh=generated)  # a new shop replaces every customer's rows
    pipeline.train()
    pipeline.evaluate()
    report, data = pipeline.report, pipeline.training_set
    ceiling = feature_ceiling(cfg, data, report)
    rows = report.rows + ([ceiling] if ceiling else [])
    result = oracle_result(rows, report.customers, report.as_of_date,
                           {s.name: round(s.seconds, 1) for s in pipeline.stages})
    result.rows += gap_by_history(data.part("evaluation"), report)
    return result


def feature_ceiling(cfg: Config, data: training.TrainingSet,
                    report: evaluation.EvaluationReport) -> dict | None:
    """An estimate of the best a model of these features can do: the ``feature_ceiling`` row.

    The oracle knows every customer's latent purchase rate, dropout rate and spend level; a
    model sees only features of the observed history. For features ``x`` the best prediction
    of the outcome ``y`` is ``E[y | x] = E[oracle | x]`` (the oracle is ``E[y | latent
    parameters, history]``, and the history is in ``x``). So XGBoost (the product's estimator
    and settings, on ``clv_v1``) is fitted to the oracle's expected values at the fit dates, a
    target without the outcome's noise, and early-stopped on the validation date's; its
    scores on the evaluation rows estimate the ceiling. It is an estimate from below (a better
    fit of ``E[oracle | x]`` would score higher), not a bound; its AUC is left out (the oracle
    target has no zeros to classify).

    Returns the row (reference) or ``None`` when the oracle does not cover every row.
    """
    if "oracle" not in report.predictions:
        return None
    fit, val, ev = (data.part(name) for name in ("fit", "validation", "evaluation"))
    oracle = evaluation.oracle_rows(cfg, pd.concat([fit, val]))  # one read of the oracle
    if oracle is None:
        return None
    targets = oracle["expected_net_revenue"].to_numpy(dtype=float)
    y_fit, y_val = targets[:len(fit)], targets[len(fit):]
    cols = data.columns("clv_v1")
    model = XGBoostCLV(cfg.xgboost, seed=cfg.seed, horizon_days=cfg.horizon_days).fit(
        fit[[*cols, "as_of_date"]], y_fit, val[cols], y_val)
    predicted = model.predict(ev[cols]).predicted_clv
    report.predictions[CEILING] = Prediction(predicted_clv=predicted,
                                             p_purchase=np.full(len(ev), np.nan))
    return {"model": CEILING, "model_version": "xgboost fitted to the oracle",
            "reference": True, **metrics.evaluate(report.actual, predicted)}


def gap_by_history(rows: pd.DataFrame, report: evaluation.EvaluationReport) -> list[dict]:
    """Normalized Gini of every model within groups of customers by their order count at the
    evaluation date: where the distance to the oracle lies (the oracle's knowledge of the
    latent parameters matters most where the history is short)."""
    counts = rows["order_count"].fillna(0).to_numpy()
    out = []
    for label, lo, hi in HISTORY_GROUPS:
        group = (counts >= lo) & (counts <= (np.inf if hi is None else hi))
        if group.sum() < 2 or report.actual[group].sum() <= 0:
            continue
        out.append({"gap_by_history": label, "customers": int(group.sum()),
                    "share_of_actual": round(float(report.actual[group].sum()
                                                   / report.actual.sum()), 4),
                    "normalized_gini": {
                        name: _clean(round(metrics.normalized_gini(
                            report.actual[group], pred.predicted_clv[group]), 4))
                        for name, pred in report.predictions.items()}})
    return out


def oracle_result(report_rows: list[dict], customers: int, as_of: dt.date,
                  stage_seconds: dict[str, float] | None = None) -> BenchResult:
    """The oracle benchmark's rows from an evaluation report's rows (one per model).

    Separate from :func:`bench_oracle` so the ratios and the target check can be tested on
    hand-made metrics.
    """
    by_model = {r["model"]: r for r in report_rows}
    if "oracle" not in by_model:
        raise DataError("no oracle in the evaluation: `clv bench oracle` needs a generated "
                         "shop (truth/oracle.parquet)")
    oracle = by_model["oracle"]
    res = BenchResult("oracle")
    for row in report_rows:
        out = {k: _clean(v) for k, v in row.items()}
        out["reference"] = bool(row.get("reference", False))
        out["gini_over_oracle"] = _share(row["normalized_gini"], oracle["normalized_gini"])
        out["mae_over_oracle"] = _share(row["mae"], oracle["mae"])
        out["customers"], out["as_of_date"] = customers, str(as_of)
        res.rows.append(out)
    deep, xgb = by_model.get("deep_ziln"), by_model.get("xgboost")
    share = None if deep is None else _share(deep["normalized_gini"], oracle["normalized_gini"])
    beats = None if deep is None or xgb is None else bool(
        deep["normalized_gini"] > xgb["normalized_gini"])
    ceiling = by_model.get(CEILING)
    res.rows.append({
        "check": "deep_ziln_target", "gini_over_oracle": share,
        "feature_ceiling_gini_over_oracle": None if ceiling is None else _share(
            ceiling["normalized_gini"], oracle["normalized_gini"]),
        "target": f">= {ORACLE_GINI_TARGET} of the oracle's normalized Gini and above xgboost's",
        "beats_xgboost": beats,
        "met": None if share is None or beats is None else bool(
            share >= ORACLE_GINI_TARGET and beats),
        **({"stage_seconds": stage_seconds} if stage_seconds else {}),
    })
    res.rows.append(champion_check(by_model))
    return res


def champion_check(by_model: dict[str, dict]) -> dict:
    """The ``champion_target`` row: the champion's normalized Gini over the feature ceiling's,
    its decile MAPE and total ratio against their targets (``met`` is ``None`` when the
    evaluation marks no champion or has no ceiling)."""
    chosen = next((r for r in by_model.values() if r.get("champion")), None)
    ceiling = by_model.get(CEILING)
    lo, hi = CHAMPION_TOTAL_RANGE
    row: dict[str, Any] = {
        "check": "champion_target", "champion": None if chosen is None else chosen["model"],
        "target": (f"Gini >= {CHAMPION_CEILING_TARGET} of {CEILING}'s, decile MAPE <= "
                   f"{CHAMPION_DECILE_MAPE_TARGET}, total ratio in {lo}-{hi}")}
    if chosen is None or ceiling is None:
        return {**row, "met": None}
    share = _share(chosen["normalized_gini"], ceiling["normalized_gini"])
    mape, total = _clean(chosen.get("decile_mape")), _clean(chosen.get("total_ratio"))
    parts = {"gini_over_ceiling": share is not None and share >= CHAMPION_CEILING_TARGET,
             "decile_mape": mape is not None and mape <= CHAMPION_DECILE_MAPE_TARGET,
             "total_ratio": total is not None and lo <= total <= hi}
    return {**row, "gini_over_ceiling": share, "decile_mape": mape, "total_ratio": total,
            "targets_missed": [k for k, ok in parts.items() if not ok],
            "met": all(parts.values())}


def oracle_table(result: BenchResult) -> Table:
    """The oracle benchmark as a terminal table: one line per model, then the target check."""
    from rich.table import Table

    from clv_models.evaluation.report import METRIC_COLUMNS, format_metric

    models = [r for r in result.rows if "model" in r]
    checks = {r["check"]: r for r in result.rows if r.get("check")}
    check = checks.get("deep_ziln_target", {})
    chosen = checks.get("champion_target", {})
    first = models[0] if models else {}
    table = Table(title=f"clv bench oracle: {first.get('customers', 0):,} customers at "
                        f"{first.get('as_of_date')}",
                  caption=f"target: deep_ziln {check.get('target')}: "
                          f"{'met' if check.get('met') else 'not met'} "
                          f"(deep_ziln/oracle Gini {check.get('gini_over_oracle')}, beats "
                          f"xgboost: {check.get('beats_xgboost')}); champion "
                          f"{chosen.get('champion')}: {chosen.get('target')}: "
                          f"{'met' if chosen.get('met') else 'not met'} "
                          f"(Gini ÷ ceiling {chosen.get('gini_over_ceiling')}, missed: "
                          f"{', '.join(chosen.get('targets_missed') or []) or 'none'})")
    columns = {"gini_over_oracle": "Gini ÷ oracle", "mae_over_oracle": "MAE ÷ oracle",
               **METRIC_COLUMNS}
    table.add_column("model", no_wrap=True)
    for header in columns.values():
        table.add_column(header, justify="right")
    for r in models:
        table.add_row(r["model"] + (" *" if r["reference"] else ""),
                      *[format_metric(r.get(k)) for k in columns])
    return table


def gap_table(result: BenchResult) -> Table:
    """Normalized Gini by order history (the ``gap_by_history`` rows) as a terminal table."""
    from rich.table import Table

    from clv_models.evaluation.report import format_metric

    groups = [r for r in result.rows if "gap_by_history" in r]
    names = list(groups[0]["normalized_gini"]) if groups else []
    table = Table(title="normalized Gini within customers grouped by orders before the "
                        "evaluation date")
    for header in ("customers by history", "customers", "share of actual", *names):
        table.add_column(header, justify="left" if header.startswith("customers by") else "right")
    for g in groups:
        table.add_row(g["gap_by_history"], f"{g['customers']:,}", f"{g['share_of_actual']:.3f}",
                      *[format_metric(g["normalized_gini"].get(n)) for n in names])
    return table


def _share(value: float, reference: float) -> float | None:
    value, reference = _clean(value), _clean(reference)
    if value is None or reference is None or reference == 0:
        return None
    return round(value / reference, 4)


def _clean(value):
    """JSON-friendly: NaN becomes None, NumPy scalars become Python ones."""
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


# -- training: the shop ---------------------------------------------------------------------------
def _has_raw(cfg: Config) -> bool:
    raw = cfg.resolved().raw_dir
    return (raw / "orders.parquet").exists() or (raw / "orders.csv").exists()


def ensure_shop(cfg: Config, echo: Callable[[str], None] = print) -> dict[str, float]:
    """Generate (raw files absent) and build (a mart export absent) the shop, and ``feast
    apply`` (no registry yet).

    The online store is not materialized: the benchmark reads only the offline store.
    Returns the seconds of each step that ran.
    """
    cfg = cfg.resolved()
    times: dict[str, float] = {}
    if not _has_raw(cfg):
        echo(f"generating {cfg.shop.customers:,} customers into {cfg.raw_dir} ...")
        with timed(times, "generate"):
            generate_shop(cfg)
    if not all((cfg.features_dir / f"{mart}.parquet").exists() for mart in MARTS):
        echo("dbt build ...")
        with timed(times, "build"):
            warehouse.run_dbt(cfg, ["build"])
    if not (cfg.feast_dir / "registry.db").exists():
        echo("feast apply ...")
        with timed(times, "feast_apply"):
            features.apply(cfg)
    return times


def entity_rows(cfg: Config, cap: int | None, seed: int = 0) -> tuple[pd.DataFrame, int]:
    """The labels mart (one row per customer and as-of date) as the entity frame, cut to about
    ``cap`` rows by keeping whole customers, in a seeded random order.

    Whole customers keep every as-of date, so the sample still has the time-based split of the
    full set. Returns the frame and the row count before the cut.
    """
    labels = features.label_frame(cfg)
    total = len(labels)
    if cap is not None and total > cap:
        counts = labels.groupby("customer_id", sort=True).size()
        counts = counts.iloc[np.random.default_rng(seed).permutation(len(counts))]
        keep = counts.index[counts.cumsum().to_numpy() <= cap]
        labels = labels[labels["customer_id"].isin(keep)].reset_index(drop=True)
    return labels, total


# -- training: retrieval --------------------------------------------------------------------------
def asof_join_sql(store: FeatureStore, services: Iterable[str] = features.SERVICES) -> str:
    """One DuckDB query doing Feast's point-in-time join by hand: the floor of the retrieval.

    For every row of the registered frame ``entities`` (``customer_id``, ``as_of_date``, any
    other columns) and every feature view of the services, the view's latest row with
    ``event_timestamp <= `` the entity's timestamp (midnight UTC of ``as_of_date``) and no older
    than the view's TTL, read straight from the view's Parquet source with DuckDB's
    ``ASOF JOIN``. Feature views, columns, sources and TTLs come from the Feast registry, so the
    query asks for exactly what :func:`clv_models.features.store.historical_features` asks for.
    Rows are ordered like that function's (``as_of_date``, then ``customer_id``).
    """
    refs = dict.fromkeys(ref for s in services for ref in features._service_refs(store, s))
    by_view: dict[str, list[str]] = {}
    for view, name in refs:
        by_view.setdefault(view, []).append(name)
    views = {fv.name: fv for fv in store.list_feature_views()}
    # Identifiers come from the registry and paths from its sources: quoted by clv_models.core.sql
    # (read_parquet's path could be a bound parameter, but not inside one prepared statement
    # per view); the TTL is an int.
    ctes, columns, joins = [], [], []
    key = sql.identifier(features.ENTITY_KEY)
    for i, (view, names) in enumerate(by_view.items()):
        fv = views[view]
        ts = sql.identifier(fv.batch_source.timestamp_field)
        path = sql.literal(fv.batch_source.path)
        ttl = int(fv.ttl.total_seconds()) if fv.ttl else None
        selected = ", ".join(sql.identifier(n) for n in names)
        # Only the entities' customers and the time range their rows can reach: what anyone
        # writing this join by hand would do, and it keeps the join's build side small.
        oldest = (f" and {ts} >= (select min(event_timestamp) from e) "  # noqa: S608 - quoted
                  f"- to_seconds({ttl})" if ttl else "")
        source = (f"select {key}, {ts}, {selected} from read_parquet({path}) "  # noqa: S608 - quoted
                  f"where {key} in (select {key} from e) "
                  f"and {ts} <= (select max(event_timestamp) from e){oldest}")
        within_ttl = f"where f.{ts} >= e.event_timestamp - to_seconds({ttl})" if ttl else ""
        picked = ", ".join(f"f.{sql.identifier(n)}" for n in names)
        ctes.append(f"v{i} as (select e._row, {picked} "  # noqa: S608 - quoted
                    f"from e asof join ({source}) as f "
                    f"on e.{key} = f.{key} and e.event_timestamp >= f.{ts} {within_ttl})")
        columns += [f"v{i}.{sql.identifier(n)}" for n in names]
        joins.append(f"left join v{i} using (_row)")
    head = ("with e as (select row_number() over () as _row, *, "
            "cast(cast(as_of_date as date) as timestamptz) as event_timestamp from entities)")
    tail = (f"select e.* exclude (_row), {', '.join(columns)} "  # noqa: S608 - quoted
            f"from e {' '.join(joins)} order by e.as_of_date, e.{key}, e._row")
    return f"{head}, {', '.join(ctes)} {tail}"


def asof_join_features(entities: pd.DataFrame, store: FeatureStore,
                       services: Iterable[str] = features.SERVICES,
                       memory_limit: str | None = None) -> pd.DataFrame:
    """The point-in-time join of :func:`asof_join_sql` as a pandas frame shaped like
    :func:`clv_models.features.store.historical_features`' (``as_of_date`` as dates).

    ``memory_limit`` caps DuckDB (e.g. ``"8GiB"``; it spills beyond), for when other large
    frames share the machine.
    """
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute("set preserve_insertion_order = false")  # the query orders its rows
        if memory_limit:
            con.execute(f"set memory_limit = {sql.literal(memory_limit)}")
        con.register("entities", entities)
        out = con.execute(asof_join_sql(store, services)).df()
    out["as_of_date"] = pd.to_datetime(out["as_of_date"]).dt.date
    return out


def sample_index(n: int, rows: int | None = COMPARE_ROWS, seed: int = 0) -> np.ndarray:
    """Sorted positions of a seeded sample of ``rows`` of ``n`` rows (all when fewer)."""
    if rows is None or n <= rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, rows, replace=False))


def compare_features(expected: pd.DataFrame, actual: pd.DataFrame,
                     columns: Iterable[str]) -> list[str]:
    """Columns whose values differ between two retrievals of the same entity rows, row by row
    (both ordered by ``as_of_date`` then ``customer_id``).

    Numbers must agree to 1e-9 relative (missing = missing), strings exactly, arrays element by
    element (a missing array only equals a missing array). A row-count or key mismatch fails
    every column.
    """
    columns = list(columns)
    keys = ["as_of_date", features.ENTITY_KEY]
    if len(expected) != len(actual) or not all(
            (expected[k].to_numpy() == actual[k].to_numpy()).all() for k in keys):
        return columns
    bad = []
    for c in columns:
        if c not in expected.columns or c not in actual.columns:
            bad.append(c)
        elif not _same_values(expected[c].to_numpy(dtype=object),
                              actual[c].to_numpy(dtype=object)):
            bad.append(c)
    return bad


def _missing(v) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v))


def _same_values(a: np.ndarray, b: np.ndarray) -> bool:
    for x, y in zip(a, b, strict=True):
        if _missing(x) or _missing(y):
            if not (_missing(x) and _missing(y)):
                return False
        elif isinstance(x, (list, tuple, np.ndarray)) or isinstance(y, (list, tuple, np.ndarray)):
            xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
            if xs.shape != ys.shape or not np.allclose(xs, ys, rtol=1e-6, equal_nan=True):
                return False
        elif isinstance(x, str) or isinstance(y, str):
            if x != y:
                return False
        elif not np.isclose(float(x), float(y), rtol=1e-9, atol=0.0):
            return False
    return True


def _warm_file_cache(paths: Iterable[str]) -> None:
    """Read each file once so neither timed retrieval pays for the first read from disk."""
    for path in paths:
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass


def bench_retrieval(cfg: Config, entities: pd.DataFrame, store: FeatureStore,
                    echo: Callable[[str], None] = print) -> tuple[list[dict], pd.DataFrame]:
    """Feast's ``get_historical_features`` (the product's retrieval) ÷ the as-of join floor.

    Both produce a pandas frame of the same entity rows and feature columns from the same
    Parquet files (read once beforehand, so both find them in the file cache); their values are
    compared on a seeded sample of ``COMPARE_ROWS`` rows. Returns the rows and Feast's frame
    (the training set). ``peak_rss_gib`` is this process's peak during each retrieval.
    """
    _warm_file_cache(fv.batch_source.path for fv in store.list_feature_views())
    times: dict[str, float] = {}
    # The floor runs first and keeps only the compared rows, so the two large frames never
    # share memory; DuckDB gets half of what is free.
    idx = sample_index(len(entities))
    limit = f"{max(1, int(psutil.virtual_memory().available * 0.5 / 2**30))}GiB"
    echo(f"{len(entities):,} entity rows by one DuckDB ASOF JOIN per feature view ...")
    with PeakMemory() as mem_floor, timed(times, "floor"):
        floor = asof_join_features(entities, store, memory_limit=limit)
    floor = floor.iloc[idx].reset_index(drop=True)
    echo("the same rows by Feast get_historical_features ...")
    with PeakMemory() as mem_feast, timed(times, "feast"):
        frame = features.historical_features(cfg, entities, store)
    names = list(dict.fromkeys(n for s in features.SERVICES
                               for n in features.feature_names(store, s)))
    bad = compare_features(frame.iloc[idx].reset_index(drop=True), floor, names)
    compared = len(idx)
    rows = [
        {"measure": "feast_historical_features_seconds", "value": round(times["feast"], 2),
         "entity_rows": len(entities), "features": len(names),
         "peak_rss_gib": round(mem_feast.peak / 2**30, 2)},
        {"measure": "asof_join_seconds", "value": round(times["floor"], 2),
         "same_values_as_feast": not bad, "compared_rows": compared,
         "mismatched_columns": bad, "peak_rss_gib": round(mem_floor.peak / 2**30, 2)},
        ratio_row("feast_over_asof_join", times["feast"] / max(times["floor"], 1e-9), "<=",
               RETRIEVAL_RATIO_TARGET),
    ]
    return rows, frame


# -- training: deep model throughput --------------------------------------------------------------
def synthetic_rows(n: int, seed: int = 0, sequences: bool = True
                   ) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows shaped like the deep model's real inputs, with a target that depends on them.

    RFM-like features and a zero-inflated, heavy-tailed spend; with ``sequences``, also the
    rest of ``clv_v2``: 52-week revenue and view sequences consistent with the order rate and
    recency, country and acquisition channel. For throughput measurements, where generating and
    building a shop of that many rows would cost more than the measurement.
    """
    rng = np.random.default_rng(seed)
    orders = rng.poisson(3, n) + 1
    age = rng.integers(30, 900, n)
    recency = np.minimum(rng.exponential(120, n).astype(int) + 1, age)
    aov = rng.lognormal(3.7, 0.5, n)
    X = pd.DataFrame({
        "order_count": orders, "frequency": orders - 1, "t_days": age,
        "days_since_last_order": recency, "recency_days": age - recency,
        "gross_revenue": orders * aov, "net_revenue": orders * aov * 0.9,
        "avg_order_value": aov, "monetary_value": aov * rng.uniform(0.8, 1.2, n),
        "first_order_value": aov * rng.uniform(0.5, 1.5, n), "refund_amount": orders * aov * 0.1,
    })
    rate = orders / age * np.exp(-recency / 150)
    if sequences:
        week = np.arange(52)
        since_last = (recency // 7)[:, None]
        active = (rng.random((n, 52)) < np.minimum(orders / age * 7, 1)[:, None]) & (
            week >= since_last) | (week == since_last)
        revenue = np.where(active, aov[:, None] * rng.lognormal(0, 0.3, (n, 52)), 0.0)
        X["weekly_net_revenue_52w"] = list(revenue.astype(np.float32))
        X["weekly_views_52w"] = list(rng.poisson(active * 3 + 0.3).astype(np.float32))
        X["country"] = rng.choice(["US", "GB", "DE", "FR", "NL", None], n)
        X["acquisition_channel"] = rng.choice(["organic", "paid", "referral", "email"], n)
    buys = rng.random(n) < 1 - np.exp(-rate * 180)
    y = np.where(buys, rng.lognormal(np.log(aov) + 0.5, 0.6), 0.0)
    return X, y


def resolve_devices(device: str) -> list[str]:
    """``auto``: the CPU, plus CUDA when torch sees it; ``cpu`` or ``cuda``: that one only."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda but torch sees no CUDA device")
    if device == "auto":
        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    return [device]


def device_name(device: str) -> str:
    """The GPU's name (``torch.cuda.get_device_name``) or ``cpu xTHREADS``."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name()
    return f"cpu x{torch.get_num_threads()}"


def deep_throughput(rows: int, epochs: int, batch_sizes: Iterable[int], devices: Iterable[str],
                    sequences: bool = True, validation_rows: int | None = None, seed: int = 0,
                    echo: Callable[[str], None] = print) -> list[dict]:
    """Train the deep ZILN model on ``rows`` synthetic rows per device and batch size.

    ``samples_per_second`` is fit rows × epochs run ÷ the seconds of the epoch loop (the
    model's ``train_seconds``: batches and the per-epoch validation loss; preparing the
    tensors and copying them to the device are excluded). Also reports the wall time of the
    whole ``fit``, the validation loss and normalized Gini (the same seed gives comparable
    learning on every device) and prediction throughput.
    """
    from clv_models.core.metrics import normalized_gini
    from clv_models.models.deep import DeepCLV

    validation_rows = validation_rows or max(1_000, min(100_000, rows // 10))
    X, y = synthetic_rows(rows + validation_rows, seed=seed, sequences=sequences)
    Xt, yt, Xv, yv = X[:rows], y[:rows], X[rows:], y[rows:]
    out = []
    for device in devices:
        for batch in batch_sizes:
            echo(f"deep model on {device}, batch {batch:,}: {rows:,} rows x {epochs} epochs ...")
            # the network alone: no BTYD fit before it (not the training loop's work)
            params = DeepConfig(epochs=epochs, patience=epochs, batch_size=int(batch),
                                device=device, btyd_inputs=False)
            start = time.perf_counter()
            model = DeepCLV(params, seed=seed).fit(Xt, yt, Xv, yv)
            wall = time.perf_counter() - start
            start = time.perf_counter()
            pred = model.predict(Xv)
            predict_seconds = time.perf_counter() - start
            m = model.metadata
            out.append({
                "measure": "deep_train_samples_per_second", "value": m["samples_per_second"],
                "device": device_name(device), "batch_size": int(batch), "rows": rows,
                "inputs": "tabular+cat+seq" if sequences else "tabular",
                "epochs": m["epochs_run"], "fit_seconds": m["train_seconds"],
                "fit_wall_seconds": round(wall, 2),
                "best_val_loss": round(m["best_val_loss"], 4),
                "normalized_gini": round(normalized_gini(yv, pred.predicted_clv), 4),
                "total_ratio": round(float(pred.predicted_clv.sum() / yv.sum()), 4),
                "predict_rows_per_second": round(len(Xv) / max(predict_seconds, 1e-9))})
            echo(f"  {m['samples_per_second']:,.0f} samples/s")
    return out


def throughput_target(runs: list[dict]) -> dict:
    """The target row: the best CUDA training throughput ≥ 1M samples/s (None when no
    CUDA run was made)."""
    import torch

    cuda = [r for r in runs if not r["device"].startswith("cpu")]
    best = max(cuda, key=lambda r: r["value"], default=None)
    row = ratio_row("deep_samples_per_second_cuda", None if best is None else best["value"], ">=",
                 CUDA_SAMPLES_TARGET)
    if best is None:
        row["note"] = ("no CUDA run (torch sees no GPU)" if not torch.cuda.is_available()
                       else "no CUDA run (--device cpu)")
    else:
        row["device"], row["batch_size"] = best["device"], best["batch_size"]
    return row


# -- training: scoring ----------------------------------------------------------------------------
def models_for_scoring(cfg: Config, frame: pd.DataFrame | None, entity_cap: int | None,
                       echo: Callable[[str], None] = print) -> tuple[dict, dict]:
    """The saved product models; trained on the benchmark's training set when absent.

    Training uses the product's :func:`clv_models.models.training.train` on the retrieved sample
    (``frame``, the Feast retrieval of the entity rows; retrieved here, about ``entity_cap``
    rows, when not given) with the configured settings (reduce them
    with ``--set deep.epochs=... --set xgboost.n_estimators=...`` on small machines). Returns
    the models and a row saying where they came from.
    """
    cfg = cfg.resolved()
    saved = all((cfg.models_dir / n / "metadata.json").exists() for n in training.LEARNED_MODELS)
    if saved:
        models = training.load_models(cfg, training.LEARNED_MODELS)
        return models, {"measure": "models", "value": "saved",
                        "versions": {k: m.version for k, m in models.items()}}
    if frame is None:
        frame = features.historical_features(cfg, entity_rows(cfg, entity_cap)[0])
    store = features.feature_store(cfg)
    services = features.service_features(store)
    data = training.TrainingSet(
        frame=frame, split=training.make_split(list(frame["as_of_date"].unique()),
                                               cfg.horizon_days),
        feature_names=list(dict.fromkeys(c for cols in services.values() for c in cols)),
        services=services)
    echo(f"no saved models: training {', '.join(training.LEARNED_MODELS)} on "
         f"{len(data.part('fit')):,} fit rows of the retrieved training set ...")
    times: dict[str, float] = {}
    with timed(times, "train"):
        models = training.train(cfg, data, training.LEARNED_MODELS)
    return models, {"measure": "models", "value": "trained by the benchmark",
                    "train_seconds": round(times["train"], 1),
                    "fit_rows": len(data.part("fit")),
                    "deep_epochs": cfg.deep.epochs,
                    "xgboost_n_estimators": cfg.xgboost.n_estimators,
                    "versions": {k: m.version for k, m in models.items()}}


def bench_scoring(cfg: Config, models: dict, customers: int | None,
                  echo: Callable[[str], None] = print) -> list[dict]:
    """Batch scoring end to end by the product's :func:`clv_models.scoring.score.score`: Feast
    retrieval at the latest as-of date, predictions and drivers of every model, segments, and
    the write to ``clv_scores``; with its stage split."""
    from clv_models.scoring import score as scoring

    echo(f"scoring up to {customers:,} customers ..." if customers else "scoring ...")
    times: dict[str, float] = {}
    with PeakMemory() as mem, timed(times, "score"):
        result = scoring.score(cfg, models, limit=customers)
    n = result.customers
    return [
        {"measure": "score_seconds", "value": round(times["score"], 2), "customers": n,
         "rows_written": sum(result.rows.values()), "models": list(result.rows),
         "as_of": str(result.as_of_date),
         "stage_seconds": {k: round(v, 2) for k, v in result.seconds.items()},
         "peak_rss_gib": round(mem.peak / 2**30, 2)},
        {"measure": "score_customers_per_second", "value": round(n / times["score"], 1),
         "rows_per_second": round(sum(result.rows.values()) / times["score"], 1)},
    ]


# -- training: all three --------------------------------------------------------------------------
def bench_training(cfg: Config, entity_cap: int | None = 1_000_000,
                   deep_rows: int = 1_000_000, deep_epochs: int = 2,
                   batch_sizes: Iterable[int] = (16_384,), device: str = "auto",
                   score_customers: int | None = 1_000_000, parts: Iterable[str] = PARTS,
                   echo: Callable[[str], None] = print) -> BenchResult:
    """``clv bench training``: the three measurements: retrieval, deep-model throughput, scoring.

    * ``feast_over_asof_join``: the training-set retrieval through Feast (the product's
      :func:`clv_models.features.store.historical_features`) of the labels mart's rows (customer ×
      as-of date; about ``entity_cap`` of them, whole customers) ÷ one DuckDB as-of join over
      the same Parquet files (:func:`asof_join_sql`), values checked equal on a sample;
    * deep-model training throughput in samples/s on ``deep_rows`` synthetic rows with the
      52-week sequences, on the CPU and on CUDA when present (:func:`deep_throughput`);
    * batch scoring of ``score_customers`` customers end to end (:func:`bench_scoring`).

    The shop in ``cfg`` is generated and built when absent (:func:`ensure_shop`); ``parts``
    picks the measurements (the deep-model one needs no shop).
    """
    parts = set(parts)
    res = BenchResult("training")
    frame = None
    if parts & {"retrieval", "scoring"}:
        setup = ensure_shop(cfg, echo)
        res.rows.append({"measure": "setup_seconds", "value": round(sum(setup.values()), 2),
                         **{k: round(v, 2) for k, v in setup.items()}})
    if "retrieval" in parts:
        entities, total = entity_rows(cfg, entity_cap)
        res.rows.append({"measure": "entity_rows", "value": len(entities),
                         "customers": int(entities["customer_id"].nunique()),
                         "as_of_dates": int(entities["as_of_date"].nunique()),
                         "label_rows_in_shop": total})
        store = features.feature_store(cfg)
        rows, frame = bench_retrieval(cfg, entities, store, echo)
        res.rows += rows
    if "deep" in parts:
        runs = deep_throughput(deep_rows, deep_epochs, batch_sizes, resolve_devices(device),
                               echo=echo)
        res.rows += [*runs, throughput_target(runs)]
    if "scoring" in parts:
        models, source = models_for_scoring(cfg, frame, entity_cap, echo)
        del frame
        res.rows.append(source)
        res.rows += bench_scoring(cfg, models, score_customers, echo)
    return res


def default_data_dir(cfg: Config, name: str, customers: int) -> Path:
    """``<data-dir>/bench-<name>-<customers>``: a benchmark's own shop."""
    return cfg.data_dir / f"bench-{name}-{customers}"
