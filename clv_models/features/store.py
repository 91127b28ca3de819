"""Feast: registering the feature repo, materializing to the online store, and retrieving
point-in-time correct training and scoring frames through the feature service.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import os
import sqlite3
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd

from clv_models.core import atomic
from clv_models.core import sql as quoting
from clv_models.core.config import Config
from clv_models.core.errors import CLVError, DataError, NotBuiltError

if TYPE_CHECKING:
    from feast import FeatureStore

FEATURE_SERVICE = "clv_v1"  # numeric tabular features (XGBoost, the tabular models)
SEQUENCE_SERVICE = "clv_v2"  # clv_v1 + weekly sequences + profile (the deep model)
SERVICES = (FEATURE_SERVICE, SEQUENCE_SERVICE)  # every model input set, retrieved together
LABELS_FILE = "customer_clv_labels.parquet"
ENTITY_KEY = "customer_id"


class FeatureStoreError(CLVError, RuntimeError):
    """A Feast step failed; the message says which and why."""


def _activate(cfg: Config) -> Config:
    """Export the paths ``feature_store.yaml`` and ``features.py`` read; create the folders."""
    cfg = cfg.resolved()
    os.environ.update(cfg.env())
    cfg.feast_dir.mkdir(parents=True, exist_ok=True)
    return cfg


def _unchecked(target=None, **_options):
    """typeguard's ``typechecked`` as it behaves under ``python -O``: the target unchanged."""
    return target if target is not None else (lambda f: f)


def import_feast() -> ModuleType:
    """The ``feast`` package, imported once per process without typeguard's instrumentation.

    Feast decorates its definition classes with typeguard's ``@typechecked``, which parses and
    recompiles every decorated method while ``feast`` is imported: the larger part of the
    import's time, paid by every ``clv`` process that reads features. typeguard documents the
    decorator as a development aid that is a no-op under ``python -O``; this import gives the
    same result for Feast's classes only (typeguard is restored for everything else). The
    definitions are still checked where they are registered: ``feast apply`` runs Feast's own
    command line in its own process (:func:`apply`), with the checks on.
    """
    if "feast" not in sys.modules:
        import typeguard

        checked = typeguard.typechecked
        typeguard.typechecked = _unchecked
        try:
            import feast  # noqa: F401 - the import is the point
        finally:
            typeguard.typechecked = checked
    return sys.modules["feast"]


def feature_store(cfg: Config) -> FeatureStore:
    """A :class:`feast.FeatureStore` for the configured data directory (after `clv features`)."""
    FeatureStore = import_feast().FeatureStore  # noqa: N806 - the class

    # Feast's DuckDB offline store (through ibis) calls a DuckDB method that DuckDB 1.5
    # deprecates: harmless and not ours to fix. Set after importing feast, which resets filters.
    warnings.filterwarnings("ignore", message=r"fetch_arrow_table\(\) is deprecated",
                            category=DeprecationWarning)
    cfg = _activate(cfg)
    if not (cfg.feast_dir / "registry.db").exists():
        raise NotBuiltError(f"no Feast registry in {cfg.feast_dir}: run `clv features` first")
    return FeatureStore(repo_path=str(cfg.feature_repo_dir))


#: Beside the registry: the digest of the definitions it was last applied from.
APPLIED_FILE = "applied.sha256"
#: Feast's one-line summaries in the output of ``feast apply`` (the rest is protobuf dumps).
_APPLY_SUMMARY = ("Created", "Updated", "Deleted", "Deploying", "Removing", "No changes")


@dataclass
class ApplyResult:
    """One ``feast apply``: skipped (the definitions are those of the registry), or the
    changes Feast reported, one line each."""

    skipped: bool
    changes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.skipped:
            return "definitions unchanged (apply skipped)"
        return f"applied ({len(self.changes)} changes)" if self.changes else "applied"


def definitions_digest(cfg: Config) -> str:
    """A digest of what ``feast apply`` registers: the repo's files, the marts' contracts the
    views are read from, and the paths and online store the environment gives them."""
    cfg = cfg.resolved()
    digest = hashlib.sha256()
    ignored = {"workflow.py"}
    files = sorted(p for p in cfg.feature_repo_dir.iterdir()
                   if p.is_file() and p.suffix in {".py", ".yaml"} and p.name not in ignored)
    files.append(cfg.warehouse_dir / "models" / "marts" / "_marts__models.yml")
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    env = cfg.env()
    for key in ("CLV_FEATURES_DIR", "CLV_FEAST_DIR", "CLV_ONLINE_STORE"):
        digest.update(f"{key}={env[key]}".encode())
    return digest.hexdigest()


def apply(cfg: Config, force: bool = False) -> ApplyResult:
    """``feast apply`` on ``feature_repo/`` (the real CLI, in its own process), unless the
    registry was applied from the same definitions (:func:`definitions_digest`).

    Skipping matters beyond speed: Feast 0.67 stamps a new time on every data source it
    registers, so an apply of unchanged definitions reports every view as updated and prints
    each one's protobuf twice. Only Feast's one-line summaries are kept.
    """
    cfg = _activate(cfg)
    marker = cfg.feast_dir / APPLIED_FILE
    digest = definitions_digest(cfg)
    registry = cfg.feast_dir / "registry.db"
    if not force and registry.exists() and marker.exists() and marker.read_text() == digest:
        return ApplyResult(skipped=True)
    feast = Path(sys.executable).parent / "feast"
    cmd = [str(feast) if feast.exists() else "feast", "apply"]
    proc = subprocess.run(cmd, cwd=cfg.feature_repo_dir, env=os.environ.copy(),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        marker.unlink(missing_ok=True)
        raise FeatureStoreError(f"feast apply failed:\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    atomic.write_text(marker, digest)
    return ApplyResult(skipped=False, changes=[ln.strip() for ln in proc.stdout.splitlines()
                                               if ln.strip().startswith(_APPLY_SUMMARY)])


@dataclass
class MaterializeResult:
    """One incremental materialization: the interval loaded per feature view, how many
    customers the online store holds, and the seconds Feast took per feature view (reading
    the source and writing the online store; a full refresh's pruning is not included)."""

    intervals: dict[str, tuple[dt.datetime, dt.datetime]]
    online_rows: int
    seconds: dict[str, float] = field(default_factory=dict)
    # "bulk" (clv_models.features.online_load) or "feast" (Feast's own writer)
    writer: str = "feast"


def _source_bounds(path: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    if not Path(path).exists():
        raise NotBuiltError(f"no feature export at {path}: run `clv build` first")
    with duckdb.connect() as con:
        lo, hi = con.execute("select min(event_timestamp), max(event_timestamp) "
                             "from read_parquet(?)", [path]).fetchone()
    return lo, hi


def materialize(cfg: Config, full_refresh: bool = False) -> MaterializeResult:
    """Load new feature rows into the online store (SQLite or Redis, ``cfg.online_store``).

    Feast's own ``materialize_incremental`` starts at ``now - ttl`` the first time, which skips
    historical as-of dates. Here the first run (or ``full_refresh``) starts at the earliest row
    of each source; later runs start at the end of the
    previous interval but never after the latest as-of date, which is always reloaded: a
    rebuild that rewrote the latest rows (new data, a regenerated shop) reaches the online store,
    which therefore holds every customer's latest as-of row. After switching
    ``online_store.type``, run with ``full_refresh`` (the registry's intervals describe the
    previous store). On Redis the rows are written by :mod:`clv_models.features.online_load` (the
    same bytes as Feast's writer, without its per-value Python work) unless
    ``online_store.bulk_load`` is false.

    ``full_refresh`` then deletes the customers the sources no longer have
    (:func:`prune_online_store`): the store holds exactly the sources' customers, as if it had
    been emptied first, but a crash on the way leaves each customer's previous row of a view
    or the new one, never an empty or half-emptied store.
    """
    from clv_models.features import online_load

    store = feature_store(cfg)
    bulk = cfg.online_store.bulk_load and online_load.supports(store)
    intervals, seconds = {}, {}
    for fv in store.list_feature_views():
        lo, hi = _source_bounds(fv.batch_source.path)
        if hi is None:
            continue
        lo, hi = lo.replace(tzinfo=dt.timezone.utc), hi.replace(tzinfo=dt.timezone.utc)
        done = [end for _, end in fv.materialization_intervals]
        start = lo if full_refresh or not done else min(max(done), hi)
        end = hi + dt.timedelta(seconds=1)
        began = time.perf_counter()
        if bulk:  # the same bytes as Feast's Redis writer, then the interval as Feast records it
            online_load.load_redis(store, fv, start, end)
            store.registry.apply_materialization(fv, store.project, start, end)
        else:
            with contextlib.redirect_stdout(io.StringIO()):  # Feast prints its own progress
                store.materialize(start_date=start, end_date=end, feature_views=[fv.name])
        seconds[fv.name] = time.perf_counter() - began
        intervals[fv.name] = (start, end)
    if full_refresh:
        prune_online_store(cfg, store)
    return MaterializeResult(intervals=intervals, online_rows=online_customer_count(cfg, store),
                             seconds=seconds, writer="bulk" if bulk else "feast")


# -- the online store, whichever it is ---------------------------------------------------------
# Feast has no API to count, prune or empty an online store, so these helpers speak to each
# supported store in its own terms: SQLite's tables (one per feature view, `clv_<view>`) and
# Redis' hashes (one per customer, keyed by the serialized entity key + the project name).


def online_customer_count(cfg: Config, store: FeatureStore | None = None) -> int:
    """How many customers the online store holds.

    SQLite: the distinct customers of its largest feature-view table. Redis: the customer
    keys of this project (a key exists once any view has a row for the customer; every
    customer has a ``customer_rfm`` row, so the two counts agree).
    """
    store = store or feature_store(cfg)
    if store.config.online_store.type == "redis":
        client, pattern = _redis_keys(store)
        return sum(1 for _ in client.scan_iter(match=pattern, count=10_000))
    counts = _sqlite_tables(store, "select count(distinct entity_key) from {table}")
    return max(counts, default=0)


def empty_online_store(cfg: Config, store: FeatureStore | None = None) -> None:
    """Delete every customer row of the online store.

    SQLite: the tables stay, as ``feast apply`` created them. Redis: this project's customer
    keys are deleted (other projects and databases are left alone), with ``UNLINK``: Redis
    frees their memory in the background instead of blocking readers.
    """
    store = store or feature_store(cfg)
    if store.config.online_store.type == "redis":
        client, pattern = _redis_keys(store)
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=10_000):
            batch.append(key)
            if len(batch) == 10_000:
                client.unlink(*batch)
                batch = []
        if batch:
            client.unlink(*batch)
        return
    _sqlite_tables(store, "delete from {table}")


def prune_online_store(cfg: Config, store: FeatureStore | None = None) -> int:
    """Delete the customers the feature sources no longer have; returns how many rows
    (SQLite: one per customer, view and feature) or keys (Redis: one per customer) went.

    SQLite: per feature view, the rows of customers absent from that view's source, in one
    transaction. Redis: the keys of customers absent from every source (a key holds all views
    of a customer, so a customer still in one source keeps the others' last values).
    """
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.infra.online_stores.helpers import _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    store = store or feature_store(cfg)
    version = store.config.entity_key_serialization_version

    def key(customer_id: str) -> EntityKey:
        return EntityKey(join_keys=[ENTITY_KEY], entity_values=[Value(string_val=customer_id)])

    views = store.list_feature_views()

    def distinct_ids(paths: list[str]) -> list[str]:
        with duckdb.connect() as con:
            return [r[0] for r in con.execute(
                f"select distinct {ENTITY_KEY} from read_parquet(?) "  # noqa: S608 - fixed name
                f"where {ENTITY_KEY} is not null", [paths]).fetchall()]

    if store.config.online_store.type == "redis":
        ids = distinct_ids([fv.batch_source.path for fv in views])  # customers of any source
        if version == 3:  # the keys as bytes, as the bulk loader writes them
            from clv_models.features import online_load

            keep = set(online_load.redis_keys(store, ENTITY_KEY, ids))
        else:
            keep = {_redis_key(store.project, key(c), version) for c in ids}
        client, pattern = _redis_keys(store)
        stale = [k for k in client.scan_iter(match=pattern, count=10_000) if k not in keep]
        for i in range(0, len(stale), 10_000):
            client.unlink(*stale[i:i + 10_000])
        return len(stale)
    online_db = Path(store.config.online_store.path)
    if not online_db.exists():
        return 0
    deleted = 0
    with sqlite3.connect(online_db) as con:
        tables = {r[0] for r in con.execute("select name from sqlite_master where type = 'table'")}
        con.execute("create temp table clv_keep (entity_key blob primary key)")
        for fv in views:
            table = f"{store.project}_{fv.name}"
            if table not in tables:
                continue
            ids = distinct_ids([fv.batch_source.path])
            con.execute("delete from temp.clv_keep")
            con.executemany("insert into temp.clv_keep values (?)",
                            ((serialize_entity_key(key(c), version),) for c in ids))
            deleted += con.execute(
                f"delete from {quoting.identifier(table)} where entity_key not in "  # noqa: S608 - quoted
                "(select entity_key from temp.clv_keep)").rowcount
        con.commit()
    return deleted


def _redis_keys(store: FeatureStore):
    """A redis-py client (Feast's own, from the store's connection string) and the SCAN
    pattern of this project's customer keys."""
    from feast.infra.online_stores.helpers import _redis_key_prefix
    from feast.infra.online_stores.redis import RedisOnlineStore

    client = RedisOnlineStore()._get_client(store.config.online_store)
    prefix = _redis_key_prefix([ENTITY_KEY])
    escaped = bytes(c for b in prefix for c in ((92, b) if b in b"*?[]\\" else (b,)))
    return client, escaped + b"*" + store.config.project.encode()


def _sqlite_tables(store: FeatureStore, sql: str) -> list:
    """Run ``sql`` (with ``{table}``) on every table of this project in the SQLite store."""
    online_db = Path(store.config.online_store.path)
    if not online_db.exists():
        return []
    with sqlite3.connect(online_db) as con:
        tables = [r[0] for r in con.execute(
            "select name from sqlite_master where type = 'table' and name like ?",
            [f"{store.config.project}_%"])]
        out = [con.execute(sql.format(table=quoting.identifier(t))).fetchone() for t in tables]
        con.commit()
    return [r[0] for r in out if r is not None]


def _service_refs(store, service: str) -> list[tuple[str, str]]:
    """``(feature view, feature)`` pairs of one feature service, in order."""
    svc = store.get_feature_service(service)
    return [(proj.name_to_use(), f.name) for proj in svc.feature_view_projections
            for f in proj.features]


def feature_names(store, service: str = FEATURE_SERVICE) -> list[str]:
    """The feature columns of a feature service, in order."""
    return [name for _, name in _service_refs(store, service)]


def service_features(store, services: tuple[str, ...] = SERVICES) -> dict[str, list[str]]:
    """Feature columns per feature service: which columns of a joint retrieval each model
    input set uses."""
    return {service: feature_names(store, service) for service in services}


def historical_features(cfg: Config, entities: pd.DataFrame,
                        store: FeatureStore | None = None,
                        services: tuple[str, ...] = SERVICES) -> pd.DataFrame:
    """Point-in-time join of the feature services' features onto ``entities`` via Feast's
    offline store.

    The union of the ``services``' features is retrieved in one Feast call, so several models
    with different input sets (feature services) share one point-in-time join; each model then
    takes its own service's columns. ``entities`` needs ``customer_id`` and ``as_of_date``;
    other columns (labels) ride along. Returns one row per entity row, sorted by ``as_of_date``
    then ``customer_id`` (Feast returns rows in another order). Array features (the weekly
    sequences) come back as one NumPy array per row (None where missing); see
    :func:`sequence_array`.
    """
    store = store or feature_store(cfg)
    refs = list(dict.fromkeys(f"{view}:{name}" for service in services
                              for view, name in _service_refs(store, service)))
    frame = entities.copy()
    frame["event_timestamp"] = pd.to_datetime(frame["as_of_date"]).dt.tz_localize("UTC")
    out = store.get_historical_features(entity_df=frame, features=refs).to_df()
    if len(out) != len(frame):
        raise FeatureStoreError(
            f"Feast returned {len(out)} rows for {len(frame)} entity rows")
    out["as_of_date"] = pd.to_datetime(out["as_of_date"]).dt.date
    return out.sort_values(["as_of_date", ENTITY_KEY], kind="stable").reset_index(drop=True)


def label_frame(cfg: Config) -> pd.DataFrame:
    """The labels mart (complete horizons only) as the entity frame for training."""
    path = cfg.resolved().features_dir / LABELS_FILE
    if not path.exists():
        raise NotBuiltError(f"no labels at {path}: run `clv build` first")
    with duckdb.connect() as con:
        df = con.execute("select customer_id, as_of_date, horizon_days, label_net_revenue, "
                         "label_purchase_days from read_parquet(?)", [str(path)]).df()
    df["as_of_date"] = pd.to_datetime(df["as_of_date"]).dt.date
    return df


def scoring_entities(cfg: Config, as_of: dt.date | None = None) -> tuple[dt.date, pd.DataFrame]:
    """The customers with a feature row at ``as_of`` (default: the latest as-of date)."""
    path = cfg.resolved().features_dir / "customer_rfm.parquet"
    if not path.exists():
        raise NotBuiltError(f"no features at {path}: run `clv build` first")
    with duckdb.connect() as con:
        if as_of is None:
            as_of = con.execute("select max(as_of_date) from read_parquet(?)",
                                [str(path)]).fetchone()[0]
        df = con.execute("select customer_id, as_of_date from read_parquet(?) "
                         "where as_of_date = ? order by customer_id", [str(path), as_of]).df()
    if df.empty:
        raise DataError(f"no customers have features at as-of date {as_of}")
    df["as_of_date"] = pd.to_datetime(df["as_of_date"]).dt.date
    return as_of, df


def online_features(cfg: Config, customer_ids: list[str],
                    service: str = FEATURE_SERVICE) -> pd.DataFrame:
    """Feature service values from the online store for some customers.

    ``service`` is the model's input set (``model.metadata["feature_service"]``); array
    features come back as Python lists (None for an unknown customer).
    """
    store = feature_store(cfg)
    return store.get_online_features(
        features=store.get_feature_service(service),
        entity_rows=[{ENTITY_KEY: c} for c in customer_ids]).to_df()


def sequence_array(values: pd.Series | np.ndarray, length: int) -> np.ndarray:
    """An array feature (one list or array per row, as Feast returns it) as ``float32 [n, L]``.

    Missing rows (None, NaN) and missing elements become 0 (no activity that week); rows longer
    than ``length`` are cut, shorter ones padded with zeros at the end (the oldest weeks). Rows
    of the expected length, the normal case, are stacked in one ``np.stack`` call.
    """
    col = np.asarray(values, dtype=object).ravel()
    out = np.zeros((len(col), length), dtype=np.float32)
    if length == 0 or len(col) == 0:
        return out
    lengths = np.fromiter((len(v) if isinstance(v, (list, tuple, np.ndarray)) else -1
                           for v in col), dtype=np.int64, count=len(col))
    full = lengths == length
    if full.any():
        out[full] = np.stack(col[full]).astype(np.float32, copy=False)
    for i in np.flatnonzero((lengths >= 0) & ~full):
        row = np.asarray(col[i], dtype=np.float32)[:length]
        out[i, : len(row)] = row
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
