"""Configuration: defaults, the ``clv.yaml`` file and command-line overrides.

One :class:`Config` object travels through every stage, so the generator, dbt, Feast,
training and scoring agree on where the data lives, the horizon and the as-of schedule.

Precedence (lowest to highest): built-in defaults, the YAML file (``clv.yaml`` in the current
directory, or ``--config PATH``), the ``CLV_DATA_DIR`` environment variable (as exported by
``clv env``), then command-line flags.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

from clv_models.core import paths
from clv_models.core.errors import ConfigError

DEFAULT_CONFIG_FILE = "clv.yaml"


@dataclass
class ShopConfig:
    """Settings of the synthetic shop written by ``clv generate``."""

    customers: int = 20_000
    start: dt.date = dt.date(2023, 1, 1)
    end: dt.date = dt.date(2026, 1, 1)  # exclusive
    seed: int = 42
    anonymous_view_share: float = 0.08


@dataclass
class ScheduleConfig:
    """The as-of dates (cutoffs) at which features and labels are computed.

    Dates are ``start``, ``start + every``, ``start + 2*every`` ... up to and including the day
    after the last event. ``unit`` is ``month``, ``week`` or ``day``.

    ``start`` is ``None`` (``auto`` in ``clv.yaml``, the default) to derive it from the data:
    the first unit boundary (the first of a month, a Monday, or a day) on or after the first
    order date plus ``warmup_days``, so that the first cutoff already sees some history; for
    data shorter than that, the first boundary after the first order (at the latest the day
    after the last order).
    """

    start: dt.date | None = None
    every: int = 1
    unit: str = "month"
    warmup_days: int = 180

    def first_date(self, first_event: dt.date | None,
                   last_event: dt.date | None = None) -> dt.date:
        """The first as-of date: ``start``, or the ``auto`` rule applied to ``first_event``.

        With ``last_event`` given, an ``auto`` start past the day after it (data shorter than
        the warm-up) becomes the first boundary after ``first_event``, without warm-up, and at
        the latest the day after ``last_event``.
        """
        if self.unit not in ("day", "week", "month"):
            raise ConfigError(f"as_of.unit must be one of day, week, month (got {self.unit!r})")
        if self.start is not None:
            return self.start
        if first_event is None:
            raise ConfigError("as_of.start is auto but there is no data to derive it from")
        d = self._boundary(first_event + dt.timedelta(days=self.warmup_days))
        if last_event is not None and d > last_event + dt.timedelta(days=1):
            d = self._boundary(first_event + dt.timedelta(days=1))
            d = min(d, last_event + dt.timedelta(days=1))
        return d

    def _boundary(self, d: dt.date) -> dt.date:
        """The first unit boundary on or after ``d``."""
        if self.unit == "month" and d.day != 1:
            return _shift(d.replace(day=1), "month", 1)
        if self.unit == "week":
            return d + dt.timedelta(days=-d.weekday() % 7)
        return d

    def dates(self, end_exclusive: dt.date, first_event: dt.date | None = None) -> list[dt.date]:
        """As-of dates from the first (:meth:`first_date`) up to ``end_exclusive`` (included:
        features use ``< t``)."""
        if self.every < 1:
            raise ConfigError("as_of.every must be >= 1")
        start = self.first_date(first_event)
        out: list[dt.date] = []
        i = 0
        while True:
            t = _shift(start, self.unit, self.every * i)
            if t > end_exclusive:
                return out
            out.append(t)
            i += 1


def _shift(d: dt.date, unit: str, n: int) -> dt.date:
    if unit == "day":
        return d + dt.timedelta(days=n)
    if unit == "week":
        return d + dt.timedelta(weeks=n)
    if unit == "month":
        months = d.year * 12 + (d.month - 1) + n
        year, month = divmod(months, 12)
        if d.day > 28:
            raise ConfigError("as_of.start must fall on day 1-28 when as_of.unit is month")
        return dt.date(year, month + 1, d.day)
    raise ConfigError(f"as_of.unit must be one of day, week, month (got {unit!r})")


@dataclass
class XGBoostConfig:
    """XGBoost baseline settings (Tweedie regressor + purchase classifier)."""

    n_estimators: int = 600
    learning_rate: float = 0.05
    max_depth: int = 5
    tweedie_variance_power: float = 1.5
    early_stopping_rounds: int = 40
    n_jobs: int = 0  # 0 = all cores
    # BG/NBD + Gamma-Gamma quantities per customer and as-of date as extra inputs
    # (clv_models.models.btyd.BTYDInputs).
    btyd_inputs: bool = True


@dataclass
class ChampionConfig:
    """How ``clv train`` chooses the champion (:mod:`clv_models.evaluation.selection`)."""

    # Validation cutoffs: every model and the blend are refitted before each of the latest
    # ``cutoffs`` as-of dates up to the validation date and judged on it (0: the validation
    # date of the final fit only).
    cutoffs: int = 3
    # Bootstrap replicates of the paired differences to BG/NBD + Gamma-Gamma.
    bootstrap: int = 200
    # Least share of the final fit's as-of dates a validation cutoff's refit sees (where the
    # data has enough such cutoffs): the candidates are judged as they will be fitted.
    min_fit_share: float = 0.5


@dataclass
class DeepConfig:
    """PyTorch deep regressor (ZILN head) settings."""

    hidden: list[int] = field(default_factory=lambda: [128, 64])
    dropout: float = 0.1
    epochs: int = 40
    batch_size: int = 2048
    learning_rate: float = 2e-3
    weight_decay: float = 1e-5
    patience: int = 5
    device: str = "auto"  # auto | cpu | cuda
    embedding_dim: int = 8  # most dimensions of a categorical's embedding
    conv_channels: int = 16  # channels of the temporal convolution over the weekly sequences
    sequence_dim: int = 32  # width of the sequence encoder's output
    explain_steps: int = 16  # integrated-gradient steps for the drivers and the importance
    # the BG/NBD + Gamma-Gamma forecast of each row as inputs (models.btyd.BTYDInputs)
    btyd_inputs: bool = True
    # networks trained from successive seeds whose ZILN forecasts are mixed (1: one network)
    ensemble: int = 1


ONLINE_STORE_TYPES = ("sqlite", "redis")


@dataclass
class OnlineStoreConfig:
    """Feast's online store: ``sqlite`` (embedded default) or ``redis`` (production).

    SQLite is a file in the data directory (``feast/online_store.db``): nothing to run, one
    machine. Redis serves several processes and machines with sub-millisecond reads; it needs a
    running ``redis-server`` (docs/serving.md). ``redis_url`` is a ``redis://`` or
    ``rediss://`` URL (``redis://[:password@]host:port/db``) or Feast's own connection string
    (``host:port,db=0,password=...``). Feast keys Redis entries by project and customer, not
    by data directory: give each data directory its own Redis database.

    ``bulk_load`` (Redis only): materialize through :mod:`clv_models.features.online_load`, which
    writes the same bytes as Feast's own Redis writer about ten times faster; false keeps Feast's
    writer.
    """

    type: str = "sqlite"
    redis_url: str = "redis://127.0.0.1:6379/0"
    bulk_load: bool = True

    def feast_config(self, feast_dir: Path) -> dict[str, Any]:
        """The ``online_store`` block of ``feature_store.yaml`` for this choice.

        Redis gets ``skip_dedup``: by default Feast's Redis store drops a write whose event
        timestamp is not newer than the stored one, but a live push
        (:mod:`clv_models.features.live`)
        and the reload of the latest as-of date after a rebuild both rewrite a row at the same
        timestamp. With it, the last write wins, as on SQLite.
        """
        if self.type == "redis":
            return {"type": "redis", "connection_string": redis_connection_string(self.redis_url),
                    "skip_dedup": True}
        return {"type": "sqlite", "path": str(feast_dir / "online_store.db")}


def redis_connection_string(url: str) -> str:
    """Feast's Redis connection string (``host:port,db=N,...``) for a ``redis://`` URL.

    Feast does not read URLs; a value without a ``redis://``/``rediss://`` scheme is taken to be
    a Feast connection string already and returned as it is. Query parameters (e.g.
    ``?socket_timeout=5``) become connection parameters.

    Parameters
    ----------
    url
        ``redis://[[user]:password@]host[:port][/db][?param=value...]``, ``rediss://`` for TLS.
    """
    url = url.strip()
    if not url.startswith(("redis://", "rediss://")):
        if not url or "://" in url:
            raise ConfigError(f"online_store.redis_url: expected redis://host:port/db or "
                              f"Feast's host:port[,db=N] form, got {url!r}")
        return url
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    try:
        port = parts.port or 6379
    except ValueError as exc:
        raise ConfigError(f"online_store.redis_url: bad port in {url!r}") from exc
    out = [f"{host}:{port}"]
    db = parts.path.strip("/")
    if db:
        if not db.isdigit():
            raise ConfigError(f"online_store.redis_url: the database must be a number ({url!r})")
        out.append(f"db={db}")
    if parts.username:
        out.append(f"username={unquote(parts.username)}")
    if parts.password:
        out.append(f"password={unquote(parts.password)}")
    if parts.scheme == "rediss":
        out.append("ssl=true")
    out += [f"{k}={v}" for k, v in parse_qsl(parts.query)]
    return ",".join(out)


@dataclass
class Config:
    """Everything one pipeline run needs."""

    data_dir: Path = Path("data")
    horizon_days: int = 180
    as_of: ScheduleConfig = field(default_factory=ScheduleConfig)
    shop: ShopConfig = field(default_factory=ShopConfig)
    xgboost: XGBoostConfig = field(default_factory=XGBoostConfig)
    deep: DeepConfig = field(default_factory=DeepConfig)
    champion: ChampionConfig = field(default_factory=ChampionConfig)
    online_store: OnlineStoreConfig = field(default_factory=OnlineStoreConfig)
    seed: int = 7
    warehouse_dir: Path = field(default_factory=lambda: paths.project_folder(paths.WAREHOUSE))
    feature_repo_dir: Path = field(
        default_factory=lambda: paths.project_folder(paths.FEATURE_REPO))

    # -- derived locations -------------------------------------------------------------------
    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def truth_dir(self) -> Path:
        return self.data_dir / "truth"

    @property
    def features_dir(self) -> Path:
        return self.data_dir / "features"

    @property
    def feast_dir(self) -> Path:
        return self.data_dir / "feast"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def dbt_dir(self) -> Path:
        """dbt's own files for this data directory: ``target/`` (manifest, run results) and
        ``logs/``."""
        return self.data_dir / "dbt"

    @property
    def dbt_target_dir(self) -> Path:
        return self.dbt_dir / "target"

    @property
    def bi_dir(self) -> Path:
        """The copy of the scores published for BI tools (:mod:`clv_models.warehouse.bi`)."""
        return self.data_dir / "bi"

    def resolved(self) -> Config:
        """Return a copy whose paths are absolute (Feast and dbt run from other directories)."""
        return dataclasses.replace(
            self,
            data_dir=self.data_dir.expanduser().resolve(),
            warehouse_dir=self.warehouse_dir.expanduser().resolve(),
            feature_repo_dir=self.feature_repo_dir.expanduser().resolve(),
        )

    def env(self) -> dict[str, str]:
        """Environment variables that dbt's profile and the Feast repo read their paths from.

        ``CLV_ONLINE_STORE`` is the whole ``online_store`` block of ``feature_store.yaml`` as
        one JSON (= YAML flow) mapping: Feast substitutes ``${...}`` before parsing the file,
        and the SQLite and Redis blocks have different keys.
        """
        c = self.resolved()
        return {
            "CLV_DATA_DIR": str(c.data_dir),
            "CLV_RAW_DIR": str(c.raw_dir),
            "CLV_WAREHOUSE_PATH": str(c.warehouse_path),
            "CLV_FEATURES_DIR": str(c.features_dir),
            "CLV_FEAST_DIR": str(c.feast_dir),
            "CLV_ONLINE_STORE": json.dumps(c.online_store.feast_config(c.feast_dir)),
            "CLV_DUCKDB_MEMORY_LIMIT": os.environ.get("CLV_DUCKDB_MEMORY_LIMIT")
            or duckdb_memory_limit(),
            # dbt's compiled SQL, run results and logs belong to the data, not to the project
            # folder (shared by every data directory, and read-only in an installed package).
            "DBT_TARGET_PATH": str(c.dbt_target_dir),
            "DBT_LOG_PATH": str(c.dbt_dir / "logs"),
        }

    def dbt_vars(self) -> dict[str, Any]:
        """The dbt ``--vars`` that carry the horizon and the as-of schedule."""
        return {
            "horizon_days": self.horizon_days,
            "as_of_start": self.as_of.start.isoformat() if self.as_of.start else "auto",
            "as_of_every": self.as_of.every,
            "as_of_unit": self.as_of.unit,
        }


# -- loading ---------------------------------------------------------------------------------

_SECTIONS = {"as_of": ScheduleConfig, "shop": ShopConfig, "xgboost": XGBoostConfig,
             "champion": ChampionConfig,
             "deep": DeepConfig, "online_store": OnlineStoreConfig}


def _coerce(cls: type, name: str, value: Any, where: str) -> Any:
    f = {f.name: f for f in dataclasses.fields(cls)}.get(name)
    if f is None:
        known = ", ".join(sorted(x.name for x in dataclasses.fields(cls)))
        raise ConfigError(f"unknown setting {where}{name}; known: {known}")
    default = getattr(cls(), name)
    if cls is ScheduleConfig and name == "start":  # a date, or auto (derived from the data)
        if value is None or str(value).strip().lower() == "auto":
            return None
        default = dt.date(2000, 1, 1)
    try:
        if isinstance(default, bool):
            return value if isinstance(value, bool) else str(value).lower() in {"1", "true", "yes"}
        if isinstance(default, Path):
            return Path(value)
        if isinstance(default, dt.date):
            return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, list):
            if isinstance(value, str):
                value = [v for v in value.split(",") if v]
            return [type(default[0])(v) for v in value] if default else list(value)
        return type(default)(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad value for {where}{name}: {value!r} ({exc})") from exc


def apply_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    """Apply ``{"section.key": value}`` or ``{"key": value}`` overrides (YAML or CLI)."""
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, dict) and key in _SECTIONS:
            for sub, v in value.items():
                apply_overrides(cfg, {f"{key}.{sub}": v})
            continue
        if "." in key:
            section, name = key.split(".", 1)
            if section not in _SECTIONS:
                raise ConfigError(f"unknown section {section!r}; known: {', '.join(_SECTIONS)}")
            obj = getattr(cfg, section)
            setattr(obj, name, _coerce(type(obj), name, value, f"{section}."))
        else:
            setattr(cfg, key, _coerce(Config, key, value, ""))
    if cfg.horizon_days < 1:
        raise ConfigError("horizon_days must be >= 1")
    if cfg.as_of.unit not in ("day", "week", "month"):  # it reaches dbt's SQL as a date part
        raise ConfigError(f"as_of.unit must be one of day, week, month (got {cfg.as_of.unit!r})")
    if cfg.as_of.every < 1:
        raise ConfigError("as_of.every must be >= 1")
    if cfg.shop.customers < 1:
        raise ConfigError("shop.customers must be >= 1")
    if cfg.shop.end <= cfg.shop.start:
        raise ConfigError("shop.end must be after shop.start")
    if cfg.online_store.type not in ONLINE_STORE_TYPES:
        raise ConfigError(f"online_store.type must be one of {', '.join(ONLINE_STORE_TYPES)} "
                          f"(got {cfg.online_store.type!r})")
    if cfg.online_store.type == "redis":
        redis_connection_string(cfg.online_store.redis_url)  # a malformed URL fails here
    for name, where in (("data_dir", cfg.data_dir), ("warehouse_dir", cfg.warehouse_dir),
                        ("feature_repo_dir", cfg.feature_repo_dir)):
        # dbt-duckdb writes the feature exports' paths into SQL string literals unescaped
        # (COPY ... TO '<path>'), and Feast's repo reads them from the environment.
        if any(c in str(where) for c in "'\n\r"):
            raise ConfigError(f"{name} must not contain a single quote or a line break "
                              f"(dbt writes it into SQL text): {str(where)!r}")
    return cfg


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Build the configuration from defaults, a YAML file and overrides.

    Parameters
    ----------
    path
        A YAML file. When ``None``, ``clv.yaml`` in the current directory is used if it exists.
    overrides
        ``{"section.key": value}`` pairs, typically from command-line flags.
    """
    cfg = Config()
    if path is None and Path(DEFAULT_CONFIG_FILE).exists():
        path = Path(DEFAULT_CONFIG_FILE)
    if path is not None:
        if not path.exists():
            raise ConfigError(f"config file not found: {path}")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        apply_overrides(cfg, data)
        if not cfg.data_dir.is_absolute():  # relative to the config file, like dbt and Feast
            cfg.data_dir = path.resolve().parent / cfg.data_dir
    if os.environ.get("CLV_DATA_DIR"):
        cfg.data_dir = Path(os.environ["CLV_DATA_DIR"])
    apply_overrides(cfg, overrides or {})
    return cfg


def duckdb_memory_limit(share: float = 0.6) -> str:
    """DuckDB's memory limit for dbt builds: ``share`` of this machine's physical memory.

    DuckDB's own default is 80 %; dbt-duckdb runs two models at once in one DuckDB instance and
    the dbt process itself needs room, so the build keeps to 60 % and spills the rest to disk
    (``<warehouse>.duckdb.tmp``). Set ``CLV_DUCKDB_MEMORY_LIMIT`` (e.g. ``8GiB``) to override.
    """
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{max(1, int(total * share / 2**30))}GiB"
