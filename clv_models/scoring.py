"""Batch scoring: predictions at the latest as-of date written to ``clv_scores`` in DuckDB.

A scoring run replaces the rows of the same (as_of_date, model_name, model_version) inside one
transaction: readers see the previous complete set or the new one, and re-running never
duplicates. History across as-of dates and model versions is kept; ``clv_scores_latest`` shows
each customer's newest score per model.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from clv_models import features
from clv_models.config import Config
from clv_models.models import CLVModel

SCORES_DDL = """
create table if not exists clv_scores (
    customer_id varchar not null,
    as_of_date date not null,
    horizon_days integer not null,
    model_name varchar not null,
    model_version varchar not null,
    predicted_clv double not null,
    p_purchase double,
    clv_p10 double,
    clv_p50 double,
    clv_p90 double,
    clv_decile integer,
    segment varchar,
    top_drivers varchar,
    scored_at timestamp not null,
    run_id varchar not null
)
"""
LATEST_VIEW = """
create or replace view clv_scores_latest as
select *
from clv_scores
qualify row_number() over (
    partition by customer_id, model_name order by as_of_date desc, scored_at desc
) = 1
"""
COLUMNS = ["customer_id", "as_of_date", "horizon_days", "model_name", "model_version",
           "predicted_clv", "p_purchase", "clv_p10", "clv_p50", "clv_p90", "clv_decile",
           "segment", "top_drivers", "scored_at", "run_id"]


@dataclass
class ScoringResult:
    """What a scoring run wrote."""

    run_id: str
    as_of_date: dt.date
    rows: dict[str, int]


def deciles(values: np.ndarray, customer_ids: pd.Series) -> np.ndarray:
    """Decile by predicted value, 1 = highest; ties broken by customer id so it is stable.

    Groups are sized like :func:`clv_models.metrics.decile_table` (``numpy.array_split``).
    """
    order = np.lexsort((customer_ids.to_numpy(), -values))
    out = np.empty(len(values), dtype=np.int32)
    for decile, idx in enumerate(np.array_split(order, 10), start=1):
        out[idx] = decile
    return out


def score_frame(model: CLVModel, frame: pd.DataFrame, as_of: dt.date, run_id: str,
                scored_at: dt.datetime) -> pd.DataFrame:
    """The ``clv_scores`` rows of one model for the customers in ``frame``.

    ``frame`` holds ``customer_id`` and at least the model's own features (each model selects
    the columns it was trained on and names any that are missing).
    """
    pred = model.predict(frame, explain=True)

    def col(values):
        return values if values is not None else np.full(len(frame), np.nan)

    return pd.DataFrame({
        "customer_id": frame["customer_id"].to_numpy(),
        "as_of_date": as_of,
        "horizon_days": int(model.metadata["horizon_days"]),
        "model_name": model.name,
        "model_version": model.version,
        "predicted_clv": pred.predicted_clv,
        "p_purchase": col(pred.p_purchase),
        "clv_p10": col(pred.clv_p10),
        "clv_p50": col(pred.clv_p50),
        "clv_p90": col(pred.clv_p90),
        "clv_decile": deciles(pred.predicted_clv, frame["customer_id"]),
        "segment": None,
        "top_drivers": pred.top_drivers,
        "scored_at": scored_at.replace(tzinfo=None),
        "run_id": run_id,
    })[COLUMNS]


def write_scores(cfg: Config, scores: pd.DataFrame) -> None:
    """Replace the (as_of_date, model_name, model_version) sets in ``scores`` atomically."""
    path = cfg.resolved().warehouse_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute(SCORES_DDL)
        con.execute(LATEST_VIEW)
        con.register("new_scores", scores)
        con.execute("begin transaction")
        try:
            con.execute("""
                delete from clv_scores using (
                    select distinct as_of_date, model_name, model_version from new_scores
                ) as replaced
                where clv_scores.as_of_date = replaced.as_of_date
                  and clv_scores.model_name = replaced.model_name
                  and clv_scores.model_version = replaced.model_version
            """)
            con.execute(f"insert into clv_scores select {', '.join(COLUMNS)} from new_scores")  # noqa: S608 - fixed column list
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        finally:
            con.unregister("new_scores")


def score(cfg: Config, models: dict[str, CLVModel], as_of: dt.date | None = None
          ) -> ScoringResult:
    """Score every customer with features at ``as_of`` (default: the latest as-of date).

    Features come from Feast's offline store (the same point-in-time retrieval as training).
    """
    as_of, entities = features.scoring_entities(cfg, as_of)
    frame = features.historical_features(cfg, entities)
    run_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
    scored_at = dt.datetime.now(dt.timezone.utc)
    parts = [score_frame(m, frame, as_of, run_id, scored_at)
             for m in models.values()]
    scores = pd.concat(parts, ignore_index=True)
    write_scores(cfg, scores)
    return ScoringResult(run_id=run_id, as_of_date=as_of,
                         rows={name: len(p) for name, p in zip(models, parts, strict=True)})
