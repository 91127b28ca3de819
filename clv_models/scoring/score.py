"""Batch scoring: predictions at the latest as-of date written to ``clv_scores`` in DuckDB.

A scoring run replaces the rows of the same (as_of_date, model_name, model_version) inside one
transaction: readers see the previous complete set or the new one, and re-running never
duplicates. History across as-of dates and model versions is kept; the dbt view
``clv_scores_latest`` shows each customer's newest score per model. The table's columns are
declared once, in the dbt project (:mod:`clv_models.warehouse.contract`).
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from clv_models.core import metrics
from clv_models.core.config import Config
from clv_models.evaluation import champion as champions
from clv_models.features import store as features
from clv_models.models import BlendCLV, CLVModel, Prediction, training
from clv_models.models.calibration import Calibration
from clv_models.warehouse import contract

SEGMENTS = ("new", "champions", "loyal", "at risk", "hibernating")
NEW_CUSTOMER_DAYS = 90  # first order less than this many days before the as-of date
LIKELY_BUYER = 0.5  # p_purchase at or above: expected to buy again in the horizon
TOP_DECILES = 2  # champions: predicted CLV in deciles 1..TOP_DECILES
HIGH_HISTORY_QUANTILE = 0.8  # "high historical value": net revenue to date in the top 20 %
@dataclass
class ScoringResult:
    """What a scoring run wrote."""

    run_id: str
    as_of_date: dt.date
    rows: dict[str, int]
    customers: int = 0
    # Seconds per stage: ``features`` (Feast retrieval), ``score:<model>`` (predictions, drivers,
    # deciles and segments of one model), ``write`` (the clv_scores transaction).
    seconds: dict[str, float] = field(default_factory=dict)


def high_value_threshold(net_revenue: np.ndarray) -> float | None:
    """Net revenue to date at or above which a customer has a high historical value: the
    ``HIGH_HISTORY_QUANTILE`` quantile over the scored customers; ``None`` when no value is
    known."""
    known = np.asarray(net_revenue, dtype=float)
    known = known[np.isfinite(known)]
    return float(np.quantile(known, HIGH_HISTORY_QUANTILE)) if len(known) else None


def segments(clv_decile: np.ndarray, p_purchase: np.ndarray | None, t_days: np.ndarray,
             net_revenue: np.ndarray, high_value: float | None = None) -> np.ndarray:
    """Business segment per customer; the first rule that matches wins.

    ==============  ==========================================================================
    segment         rule
    ==============  ==========================================================================
    new             first order less than ``NEW_CUSTOMER_DAYS`` (90) days before the as-of date
                    (``t_days < 90``): too early to judge
    champions       predicted CLV in the top ``TOP_DECILES`` (2) deciles and
                    ``p_purchase >= 0.5``
    loyal           ``p_purchase >= 0.5``
    at risk         high historical value (net revenue to date at least ``high_value``,
                    by default the 80th percentile of the scored customers' and above 0) but
                    ``p_purchase < 0.5``
    hibernating     everyone else
    ==============  ==========================================================================

    The rules read only the model's predictions (decile, ``p_purchase``) and two features
    (``t_days``, ``net_revenue``), so every model gets segments by the same definition. A model
    without ``p_purchase`` counts predicted-CLV deciles 1-5 as "likely to buy". Missing
    ``t_days`` is never "new"; missing ``net_revenue`` is never "high historical value".

    Parameters
    ----------
    clv_decile
        Predicted-CLV decile, 1 = highest (:func:`deciles`).
    p_purchase
        Probability of a purchase in the horizon, or None.
    t_days
        Days from the first purchase to the as-of date.
    net_revenue
        Net revenue to date.
    high_value
        Net revenue to date from which a customer counts as of high historical value; default:
        the ``HIGH_HISTORY_QUANTILE`` (0.8) quantile of ``net_revenue``.
    """
    clv_decile = np.asarray(clv_decile)
    t_days = np.asarray(t_days, dtype=float)
    net_revenue = np.asarray(net_revenue, dtype=float)
    if p_purchase is None:
        likely = clv_decile <= 5
    else:
        likely = np.nan_to_num(np.asarray(p_purchase, dtype=float), nan=0.0) >= LIKELY_BUYER
    if high_value is None:
        high_value = high_value_threshold(net_revenue)
    if high_value is None:
        high_value = np.inf
    high_history = np.nan_to_num(net_revenue, nan=-np.inf) >= max(high_value, 1e-9)
    return np.select(
        [np.nan_to_num(t_days, nan=np.inf) < NEW_CUSTOMER_DAYS,
         (clv_decile <= TOP_DECILES) & likely,
         likely,
         high_history],
        ["new", "champions", "loyal", "at risk"], default="hibernating").astype(object)


def score_frame(model: CLVModel, frame: pd.DataFrame, as_of: dt.date, run_id: str,
                scored_at: dt.datetime, prediction: Prediction | None = None,
                is_champion: bool = False) -> pd.DataFrame:
    """The ``clv_scores`` rows of one model for the customers in ``frame``.

    ``frame`` holds ``customer_id`` and at least the model's own features (each model selects
    the columns it was trained on and names any that are missing), plus ``t_days`` and
    ``net_revenue`` for the segments (:func:`segments`). ``prediction``: the model's prediction
    of ``frame`` when already made (a blend combines its components' predictions).
    """
    pred = prediction if prediction is not None else model.predict(frame, explain=True)
    decile = metrics.assign_deciles(pred.predicted_clv, frame["customer_id"])

    def col(values):
        return values if values is not None else np.full(len(frame), np.nan)

    def feature(name: str) -> np.ndarray:
        if name not in frame.columns:
            return np.full(len(frame), np.nan)
        return frame[name].to_numpy(dtype=float, na_value=np.nan)

    return pd.DataFrame({
        "customer_id": frame["customer_id"].to_numpy(),
        "as_of_date": as_of,
        "horizon_days": int(model.metadata["horizon_days"]),
        "model_name": model.name,
        "model_version": model.version,
        "is_champion": bool(is_champion),
        "predicted_clv": pred.predicted_clv,
        "p_purchase": col(pred.p_purchase),
        "clv_p10": col(pred.clv_p10),
        "clv_p50": col(pred.clv_p50),
        "clv_p90": col(pred.clv_p90),
        "clv_decile": decile,
        "segment": segments(decile, pred.p_purchase, feature("t_days"), feature("net_revenue")),
        "top_drivers": pred.top_drivers,
        "scored_at": scored_at.replace(tzinfo=None),
        "run_id": run_id,
    })


def thresholds(scores: pd.DataFrame, net_revenue: np.ndarray) -> pd.DataFrame:
    """The ``clv_scoring_thresholds`` row of each scored set in ``scores``: the decile cut
    points (:func:`clv_models.core.metrics.decile_cuts`) and the high-value threshold of the
    segments, which the online endpoint ranks single predictions against."""
    high_value = high_value_threshold(net_revenue)
    rows = []
    for (as_of, name, version), part in scores.groupby(list(contract.SCORE_SET), sort=True):
        cuts = metrics.decile_cuts(part["predicted_clv"].to_numpy(), part["customer_id"])
        rows.append({"as_of_date": as_of, "model_name": name, "model_version": version,
                     "customers": len(part), "decile_cuts": json.dumps(cuts),
                     "high_value": high_value, "scored_at": part["scored_at"].iloc[0],
                     "run_id": part["run_id"].iloc[0]})
    return pd.DataFrame(rows)


def write_scores(cfg: Config, scores: pd.DataFrame,
                 thresholds: pd.DataFrame | None = None) -> None:
    """Replace the (as_of_date, model_name, model_version) sets in ``scores`` atomically, with
    their ``thresholds`` rows (:func:`thresholds`) when given, in one transaction."""
    path = cfg.resolved().warehouse_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        tables = {contract.SCORES_TABLE: scores}
        if thresholds is not None:
            tables[contract.THRESHOLDS_TABLE] = thresholds
        for table in tables:
            con.execute(contract.ddl(cfg.warehouse_dir, table))
            for statement in contract.migrations(cfg.warehouse_dir, table):
                con.execute(statement)
        con.execute("begin transaction")
        try:
            for table, rows in tables.items():
                columns = ", ".join(contract.column_names(cfg.warehouse_dir, table))
                con.register("new_rows", rows)
                con.execute(f"""
                    delete from {table} using (
                        select distinct as_of_date, model_name, model_version from new_rows
                    ) as replaced
                    where {table}.as_of_date = replaced.as_of_date
                      and {table}.model_name = replaced.model_name
                      and {table}.model_version = replaced.model_version
                """)  # noqa: S608 - fixed table names
                con.execute(f"insert into {table} ({columns}) "  # noqa: S608 - declared columns
                            f"select {columns} from new_rows")
                con.unregister("new_rows")
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise


def scored_models(cfg: Config) -> tuple[dict[str, CLVModel], champions.ChampionChoice]:
    """Every saved candidate (:data:`clv_models.evaluation.champion.CANDIDATES`) and the
    choice ``clv train`` made (the champion and each candidate's calibration): what
    ``clv score`` scores by default."""
    return training.load_models(cfg, champions.CANDIDATES), champions.load(cfg)


def score(cfg: Config, models: dict[str, CLVModel], as_of: dt.date | None = None,
          limit: int | None = None, champion: str | None = None,
          calibrations: dict[str, Calibration] | None = None) -> ScoringResult:
    """Score every customer with features at ``as_of`` (default: the latest as-of date).

    Every model in ``models`` gets its own scored set; the rows of ``champion`` (a name in
    ``models``) have ``is_champion`` true. A :class:`~clv_models.models.blend.BlendCLV` combines
    the predictions its components made in the same run when they are among ``models``. A
    model's ``calibrations`` entry (fitted on validation cutoffs,
    :mod:`clv_models.models.calibration`) is applied to its rows; a blend combines its
    components' uncalibrated forecasts, as its weights were fitted on them.

    Features come from Feast's offline store (the same point-in-time retrieval as training),
    one retrieval of the union of the models' feature services (``clv_v1`` always: the segment
    rules read ``t_days`` and ``net_revenue``). ``limit`` scores only the first customers by
    id (benchmarks, samples); deciles and segments are then relative to those customers. The
    result carries the seconds of each stage.
    """
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    as_of, entities = features.scoring_entities(cfg, as_of)
    if limit is not None:
        entities = entities.head(limit)
    services = tuple(dict.fromkeys([features.FEATURE_SERVICE, *(
        m.metadata.get("feature_service", m.feature_service) for m in models.values())]))
    frame = features.historical_features(cfg, entities, services=services)
    seconds["features"] = time.perf_counter() - start
    run_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
    scored_at = dt.datetime.now(dt.timezone.utc)
    if champion is not None and champion not in models:
        raise ValueError(f"champion {champion!r} is not among the scored models {sorted(models)}")
    predictions: dict[str, Prediction] = {}
    parts = []
    blends = [n for n, m in models.items() if isinstance(m, BlendCLV)]
    order = [n for n in models if n not in blends] + blends
    for name in order:
        m = models[name]
        start = time.perf_counter()
        pred = None
        if isinstance(m, BlendCLV) and all(
                n in predictions and models[n].version == m.components[n].version
                for n, w in m.weights.items() if w > 0):
            pred = m.combine({n: predictions.get(n, Prediction(np.zeros(len(frame))))
                              for n in m.weights})
        pred = pred if pred is not None else m.predict(frame, explain=True)
        predictions[name] = pred
        if calibrations and name in calibrations:
            pred = calibrations[name].apply(pred)
        parts.append(score_frame(m, frame, as_of, run_id, scored_at, pred,
                                 is_champion=name == champion))
        seconds[f"score:{name}"] = time.perf_counter() - start
    start = time.perf_counter()
    scores = pd.concat(parts, ignore_index=True)
    net = (frame["net_revenue"].to_numpy(dtype=float, na_value=np.nan)
           if "net_revenue" in frame.columns else np.full(len(frame), np.nan))
    write_scores(cfg, scores, thresholds(scores, net))
    seconds["write"] = time.perf_counter() - start
    return ScoringResult(run_id=run_id, as_of_date=as_of,
                         rows={name: len(p) for name, p in zip(order, parts, strict=True)},
                         customers=len(entities), seconds=seconds)
