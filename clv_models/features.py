"""Feast: registering the feature repo, materializing to the online store, and retrieving
point-in-time correct training and scoring frames through the feature service.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import sqlite3
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from clv_models.config import Config

if TYPE_CHECKING:
    from feast import FeatureStore

FEATURE_SERVICE = "clv_v1"
LABELS_FILE = "customer_clv_labels.parquet"
ENTITY_KEY = "customer_id"



class FeatureStoreError(RuntimeError):
    """A Feast step failed; the message says which and why."""


def _activate(cfg: Config) -> Config:
    """Export the paths ``feature_store.yaml`` and ``features.py`` read; create the folders."""
    cfg = cfg.resolved()
    os.environ.update(cfg.env())
    cfg.feast_dir.mkdir(parents=True, exist_ok=True)
    return cfg


def feature_store(cfg: Config) -> FeatureStore:
    """A :class:`feast.FeatureStore` for the configured data directory (after `clv features`)."""
    from feast import FeatureStore

    # Feast's DuckDB offline store (through ibis) calls a DuckDB method that DuckDB 1.5
    # deprecates: harmless and not ours to fix. Set after importing feast, which resets filters.
    warnings.filterwarnings("ignore", message=r"fetch_arrow_table\(\) is deprecated",
                            category=DeprecationWarning)
    cfg = _activate(cfg)
    if not (cfg.feast_dir / "registry.db").exists():
        raise FileNotFoundError(f"no Feast registry in {cfg.feast_dir}: run `clv features` first")
    return FeatureStore(repo_path=str(cfg.feature_repo_dir))


def apply(cfg: Config) -> str:
    """``feast apply`` on ``feature_repo/`` (the real CLI, in its own process)."""
    cfg = _activate(cfg)
    feast = Path(sys.executable).parent / "feast"
    cmd = [str(feast) if feast.exists() else "feast", "apply"]
    proc = subprocess.run(cmd, cwd=cfg.feature_repo_dir, env=os.environ.copy(),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise FeatureStoreError(f"feast apply failed:\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    return proc.stdout


@dataclass
class MaterializeResult:
    """One incremental materialization: the interval loaded per feature view, and how many
    customers the online store holds (in its largest feature view)."""

    intervals: dict[str, tuple[dt.datetime, dt.datetime]]
    online_rows: int


def _source_bounds(path: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    if not Path(path).exists():
        raise FileNotFoundError(f"no feature export at {path}: run `clv build` first")
    with duckdb.connect() as con:
        lo, hi = con.execute("select min(event_timestamp), max(event_timestamp) "
                             "from read_parquet(?)", [path]).fetchone()
    return lo, hi


def materialize(cfg: Config, full_refresh: bool = False) -> MaterializeResult:
    """Load new feature rows into the online store.

    Feast's own ``materialize_incremental`` starts at ``now - ttl`` the first time, which skips
    historical as-of dates. Here the first run (or ``full_refresh``, which empties the online
    store first) starts at the earliest row of each source; later runs start at the end of the
    previous interval but never after the latest as-of date, which is always reloaded: a
    rebuild that rewrote the latest rows (new data, a regenerated shop) reaches the online store,
    which therefore holds every customer's latest as-of row.
    """
    store = feature_store(cfg)
    if full_refresh:
        _empty_online_store(cfg)
    intervals = {}
    for fv in store.list_feature_views():
        lo, hi = _source_bounds(fv.batch_source.path)
        if hi is None:
            continue
        lo, hi = lo.replace(tzinfo=dt.timezone.utc), hi.replace(tzinfo=dt.timezone.utc)
        done = [end for _, end in fv.materialization_intervals]
        start = lo if full_refresh or not done else min(max(done), hi)
        end = hi + dt.timedelta(seconds=1)
        with contextlib.redirect_stdout(io.StringIO()):  # Feast prints its own progress
            store.materialize(start_date=start, end_date=end, feature_views=[fv.name])
        intervals[fv.name] = (start, end)
    counts = _online_tables(cfg, "select count(distinct entity_key) from {table}")
    return MaterializeResult(intervals=intervals, online_rows=max(counts, default=0))


def _online_tables(cfg: Config, sql: str) -> list:
    """Run ``sql`` (with ``{table}``) on every table of the SQLite online store."""
    online_db = cfg.resolved().feast_dir / "online_store.db"
    if not online_db.exists():
        return []
    with sqlite3.connect(online_db) as con:
        tables = [r[0] for r in con.execute(
            "select name from sqlite_master where type = 'table' and name like 'clv_%'")]
        out = [con.execute(sql.format(table=f'"{t}"')).fetchone() for t in tables]
        con.commit()
    return [r[0] for r in out if r is not None]


def _empty_online_store(cfg: Config) -> None:
    """Delete every row of the online store (tables stay, as `feast apply` created them)."""
    _online_tables(cfg, "delete from {table}")


def feature_names(store) -> list[str]:
    """The feature columns of the feature service, in order."""
    service = store.get_feature_service(FEATURE_SERVICE)
    return [f.name for proj in service.feature_view_projections for f in proj.features]


def historical_features(cfg: Config, entities: pd.DataFrame,
                        store: FeatureStore | None = None) -> pd.DataFrame:
    """Point-in-time join of the feature service onto ``entities`` via Feast's offline store.

    ``entities`` needs ``customer_id`` and ``as_of_date``; other columns (labels) ride along.
    Returns one row per entity row, sorted by ``as_of_date`` then ``customer_id`` (Feast returns
    rows in another order).
    """
    store = store or feature_store(cfg)
    frame = entities.copy()
    frame["event_timestamp"] = pd.to_datetime(frame["as_of_date"]).dt.tz_localize("UTC")
    out = store.get_historical_features(
        entity_df=frame, features=store.get_feature_service(FEATURE_SERVICE)).to_df()
    if len(out) != len(frame):
        raise FeatureStoreError(
            f"Feast returned {len(out)} rows for {len(frame)} entity rows")
    out["as_of_date"] = pd.to_datetime(out["as_of_date"]).dt.date
    return out.sort_values(["as_of_date", ENTITY_KEY], kind="stable").reset_index(drop=True)


def label_frame(cfg: Config) -> pd.DataFrame:
    """The labels mart (complete horizons only) as the entity frame for training."""
    path = cfg.resolved().features_dir / LABELS_FILE
    if not path.exists():
        raise FileNotFoundError(f"no labels at {path}: run `clv build` first")
    with duckdb.connect() as con:
        df = con.execute("select customer_id, as_of_date, horizon_days, label_net_revenue, "
                         "label_purchase_days from read_parquet(?)", [str(path)]).df()
    df["as_of_date"] = pd.to_datetime(df["as_of_date"]).dt.date
    return df


def scoring_entities(cfg: Config, as_of: dt.date | None = None) -> tuple[dt.date, pd.DataFrame]:
    """The customers with a feature row at ``as_of`` (default: the latest as-of date)."""
    path = cfg.resolved().features_dir / "customer_rfm.parquet"
    if not path.exists():
        raise FileNotFoundError(f"no features at {path}: run `clv build` first")
    with duckdb.connect() as con:
        if as_of is None:
            as_of = con.execute("select max(as_of_date) from read_parquet(?)",
                                [str(path)]).fetchone()[0]
        df = con.execute("select customer_id, as_of_date from read_parquet(?) "
                         "where as_of_date = ? order by customer_id", [str(path), as_of]).df()
    if df.empty:
        raise ValueError(f"no customers have features at as-of date {as_of}")
    df["as_of_date"] = pd.to_datetime(df["as_of_date"]).dt.date
    return as_of, df


def online_features(cfg: Config, customer_ids: list[str]) -> pd.DataFrame:
    """Feature service values from the online store for some customers."""
    store = feature_store(cfg)
    return store.get_online_features(
        features=store.get_feature_service(FEATURE_SERVICE),
        entity_rows=[{ENTITY_KEY: c} for c in customer_ids]).to_df()
