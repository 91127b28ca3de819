"""``clv bench cdnow``: the real-data accuracy benchmark on CDNOW, in one command.

Protocol (docs/evaluation.md, "Real data: the CDNOW protocol"):

* **Data**: ``CDNOW_master.txt`` (23,570 customers, all with a first purchase in Q1 1997),
  imported by the product's own ``clv import cdnow`` code path; the warehouse works per day, so
  same-day purchases are merged.
* **Calibration** 1997-01-01 .. 1997-09-30: the features are those of the as-of date
  ``t = 1997-10-01`` (events strictly before ``t``), built by dbt and retrieved point-in-time
  through Feast, exactly as ``clv run`` builds them.
* **Holdout** 1997-10-01 .. 1998-06-30 (``horizon_days = 273``): the label is each customer's
  spend in ``[t, t + 273 days)``. Every customer is evaluated.
* **Reference models** (``naive``, ``bgnbd_gg``) use only calibration data: ``bgnbd_gg`` is
  fitted by maximum likelihood on the calibration cross-section at ``t`` (labels unused).
* **Supervised models** (``xgboost``, ``deep_ziln``) need labelled rows, and the data start on
  1997-01-01, so no earlier 273-day window fits inside the calibration period for a strict
  time split. They are **cross-fitted by customer**: customers are dealt into ``K`` seeded folds
  (5 by default); for each fold, the models are trained on the other folds' customers and
  predict the held-out fold at ``t``. Every customer's prediction thus comes from a model that
  never saw that customer's holdout (nor any other label of that customer). This is the
  customer-split protocol of Wang, Liu & Miao (2019), applied to every customer by
  cross-fitting.
* **Training rows** of those customers come from every monthly as-of date with a complete
  273-day label, 1997-02-01 .. 1997-10-01 (:data:`FIRST_CUTOFF`; the product's sliding cutoffs,
  as ``clv train`` uses them): 9 rows per customer at most, each with the features before its
  date and the spend in the 273 days from it. Early stopping uses the rows at ``t`` of a
  customer-disjoint validation part of the training customers (the date the models predict).
  The leakage risk is period-level: the training customers' labels overlap the holdout period
  of the predicted customers (seasonality, the shop's overall decline after its 1997
  acquisition wave), which a model deployed at ``t`` could not have seen. The reference models
  do not get that information.

The printed table and the JSON put the measured rows beside the published reference
rows (``"reference": true``) and mark, per column, whether every product model beats every
reference row (predicted / actual total: within 0.95-1.05).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import importlib.util
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table

from clv_models.bench.common import BenchResult
from clv_models.core import metrics
from clv_models.core.config import Config, apply_overrides
from clv_models.core.errors import CLVError, ConfigError, DataError
from clv_models.evaluation import backtest, champion, selection
from clv_models.evaluation.evaluation import REFERENCE_MODELS
from clv_models.evaluation.report import METRIC_COLUMNS, format_metric
from clv_models.features import store as features
from clv_models.ingest import importers
from clv_models.models import BlendCLV, Prediction, training
from clv_models.models.blend import convex_weights
from clv_models.models.training import Split
from clv_models.warehouse import dbt as warehouse

CDNOW_FILE = "CDNOW_master.txt"
#: The 1/10 sample in the same wheel (2,357 customers): a small real shop.
CDNOW_SAMPLE_FILE = "CDNOW_sample.txt"
CALIBRATION_START = dt.date(1997, 1, 1)
AS_OF = dt.date(1997, 10, 1)  # first holdout day; calibration ends the day before
HORIZON_DAYS = 273  # 1997-10-01 .. 1998-06-30, 39 weeks
HOLDOUT_END = AS_OF + dt.timedelta(days=HORIZON_DAYS - 1)
#: The per-customer arrays of a :class:`~clv_models.models.Prediction` the benchmark keeps.
PREDICTION_ARRAYS = ("predicted_clv", "p_purchase", "clv_p10", "clv_p50", "clv_p90")
#: The first monthly as-of date whose features are not empty: the supervised models train on the
#: rows of every month start from here to ``AS_OF`` (the last date with a complete label).
FIRST_CUTOFF = dt.date(1997, 2, 1)
CDNOW_CUSTOMERS = 23_570
DEFAULT_FOLDS = 5
#: Share of each fold's training customers held out for early stopping.
VALIDATION_SHARE = 0.2
#: The product models (cross-fitted) and the reference models (calibration data only).
CROSS_FITTED = training.LEARNED_MODELS
CALIBRATION_ONLY = ("naive", "bgnbd_gg")

#: Model settings ``clv bench cdnow`` applies under the user's ``--set`` (which wins): chosen by
#: comparing settings on the validation parts of the training folds only (never on a predicted
#: fold; docs/evaluation.md). The product's defaults suit many stacked as-of dates of a large shop;
#: here one cross-section of about 15,000 fit rows per fold: shallower trees, and a Tweedie power
#: nearer 1 (with the log link the Tweedie fit balances ``sum(y - mu) * mu**(1 - power)``, not
#: ``sum(y - mu)``, so the default 1.5 under-predicted the total by about 12 %).
MODEL_SETTINGS: dict[str, Any] = {"xgboost.tweedie_variance_power": 1.2, "xgboost.max_depth": 3}

#: Published reference results on this protocol (docs/evaluation.md, "Reference results").
PUBLISHED_REFERENCE_ROWS: list[dict[str, Any]] = [
    {"model": "BG/NBD + Gamma-Gamma (published)", "mae": 32.68, "rmse": 92.94,
     "spearman": 0.421, "normalized_gini": 0.672, "top_decile_capture": 0.516,
     "decile_mape": 0.213, "total_ratio": 0.83, "auc": 0.748},
    {"model": "XGBoost, Tweedie, RFM (published)", "mae": 36.40, "rmse": 100.07,
     "spearman": 0.454, "normalized_gini": 0.718, "top_decile_capture": 0.519,
     "decile_mape": 0.166, "total_ratio": 1.07, "auc": 0.766},
    {"model": "naive, repeat spend rate (published)", "mae": 42.18, "rmse": 132.51,
     "spearman": 0.479, "normalized_gini": 0.680, "top_decile_capture": 0.504,
     "decile_mape": 0.784, "total_ratio": 1.43, "auc": 0.750},
    {"model": "all zeros (published)", "mae": 32.96, "rmse": 128.96, "spearman": None,
     "normalized_gini": None, "top_decile_capture": None, "decile_mape": None,
     "total_ratio": 0.0, "auc": None},
]
#: Metrics where higher is better; the others (except ``total_ratio``) are errors.
HIGHER_IS_BETTER = ("spearman", "normalized_gini", "top_decile_capture", "auc")
LOWER_IS_BETTER = ("mae", "rmse", "decile_mape")
#: The columns the champion must beat every reference row on.
TARGET_KEYS = ("normalized_gini", "rmse", "top_decile_capture", "decile_mape", "auc",
               "total_ratio", "mae_p50")
#: The target band for predicted / actual total.
TOTAL_RATIO_BAND = (0.95, 1.05)

PROTOCOL = (
    f"CDNOW, all customers: calibration {CALIBRATION_START}..{AS_OF - dt.timedelta(days=1)} "
    f"(features at t = {AS_OF}, events before t), holdout {AS_OF}..{HOLDOUT_END} "
    f"({HORIZON_DAYS} days), same-day purchases merged. naive and bgnbd_gg: calibration data "
    "only (bgnbd_gg fitted on the cross-section at t). xgboost and deep_ziln: {folds}-fold "
    "cross-fitting by customer (Wang, Liu & Miao 2019's customer split applied to every "
    "customer): each fold predicted at t by models trained on the other folds' customers, "
    f"with their rows at every month start {FIRST_CUTOFF}..{AS_OF} (features before the "
    "date, spend in the 273 days from it), early stopping on the rows at t of a "
    "customer-disjoint validation part of those; no label of a predicted customer is seen by "
    "the model predicting it, but the holdout period's level is shared across customers "
    "(period-level leakage the reference models do not get)."
)


class CdnowNotFoundError(CLVError, FileNotFoundError):
    """``CDNOW_master.txt`` is neither given nor in an installed ``lifetimes`` package."""


def cdnow_master_path(path: Path | None = None, name: str = CDNOW_FILE) -> Path:
    """The ``CDNOW_master.txt`` to benchmark on: ``path`` when given, else the installed copy.

    The ``lifetimes`` wheel (the ``bench`` extra, ``lifetimes==0.11.3``) ships the file in
    ``lifetimes/datasets/``. The package directory is located without importing ``lifetimes``
    (its import pulls in plotting and fitting code the benchmark does not need). Nothing is
    downloaded.

    Raises
    ------
    CdnowNotFoundError
        With the two ways to get the file.
    """
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise CdnowNotFoundError(f"{path}: no such file")
        return path
    spec = importlib.util.find_spec("lifetimes")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "datasets" / name
        if candidate.is_file():
            return candidate
    where = "is not installed" if spec is None else f"has no datasets/{name}"
    raise CdnowNotFoundError(
        f"{name} not found: the lifetimes package {where}. Install the benchmark extra "
        "(pip install 'clv-models[bench]', i.e. lifetimes==0.11.3, which ships the file) or pass "
        f"a local copy with --cdnow PATH")


def cdnow_config(cfg: Config) -> Config:
    """``cfg`` with the CDNOW protocol's settings: the 273-day horizon and a monthly schedule.

    The schedule starts at :data:`FIRST_CUTOFF` and steps a month; the dates up to ``t =
    1997-10-01`` have complete labels (the data end on 1998-06-30). Other settings (models,
    seed, data directory) are kept.
    """
    return apply_overrides(copy.deepcopy(cfg), {
        "horizon_days": HORIZON_DAYS, "as_of.start": FIRST_CUTOFF, "as_of.every": 1,
        "as_of.unit": "month"})


# -- cross-fitting by customer -------------------------------------------------------------------
def customer_folds(customer_ids: pd.Series | np.ndarray, folds: int = DEFAULT_FOLDS,
                   seed: int = 0) -> np.ndarray:
    """A fold number in ``[0, folds)`` per row, the same for every row of one customer.

    Customers (sorted, so the assignment does not depend on row order) are shuffled with
    ``seed`` and dealt round-robin, so fold sizes differ by at most one customer.

    Parameters
    ----------
    customer_ids
        One id per row (a customer may appear on several rows).
    folds
        Number of folds, at least 2.
    seed
        Seed of the shuffle.
    """
    if folds < 2:
        raise ConfigError(f"cross-fitting needs at least 2 folds, got {folds}")
    ids = np.asarray(customer_ids).astype(str)
    unique, inverse = np.unique(ids, return_inverse=True)
    if len(unique) < folds:
        raise DataError(f"{len(unique)} customers cannot fill {folds} folds")
    position = np.random.default_rng(seed).permutation(len(unique))
    return (position % folds)[inverse]


def fold_parts(customer_ids: pd.Series | np.ndarray, folds: np.ndarray, fold: int,
               validation_share: float = VALIDATION_SHARE,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean masks ``(fit, validation, test)`` of the rows for one fold.

    ``test`` is the fold itself; the other folds' customers are split, by a seeded draw per
    customer, into ``validation`` (about ``validation_share`` of them, for early stopping) and
    ``fit``. The three parts are customer-disjoint.
    """
    ids = np.asarray(customer_ids).astype(str)
    test = folds == fold
    train_ids = np.unique(ids[~test])
    n_val = max(1, round(validation_share * len(train_ids)))
    rng = np.random.default_rng([seed, fold])
    val_ids = rng.choice(train_ids, size=n_val, replace=False)
    validation = ~test & np.isin(ids, val_ids)
    return ~test & ~validation, validation, test


@dataclass
class FoldForecasts:
    """One fold of the cross-fitting: the positions (among the rows at the as-of date) of its
    validation part and of its predicted customers, and the fold's models' forecasts of the
    validation part."""

    validation: np.ndarray
    test: np.ndarray
    predictions: dict[str, Prediction]


def cross_fit(cfg: Config, frame: pd.DataFrame, services: dict[str, list[str]],
              folds: int = DEFAULT_FOLDS, names: tuple[str, ...] = CROSS_FITTED,
              as_of: dt.date = AS_OF, echo: Callable[[str], None] = print,
              validation: list[FoldForecasts] | None = None) -> dict[str, Prediction]:
    """Out-of-fold predictions of the supervised models for the rows of ``frame`` at ``as_of``.

    ``frame`` holds labelled rows of several as-of dates. Customers are dealt into folds
    (:func:`customer_folds`) and each fold's other customers into a fit and a validation part
    (:func:`fold_parts`). For each fold, fresh estimators
    (:func:`clv_models.models.training.build_models`, so the configured hyper-parameters) are
    fitted on the fit customers' rows of every date, stop early on the validation customers' rows at
    ``as_of`` and predict the fold's rows at ``as_of``. Each model gets its own feature
    service's columns, as in ``clv train``. The predictions follow the order of the rows at
    ``as_of`` in ``frame``. ``validation``, when given, receives each fold's
    :class:`FoldForecasts` (what the champion is chosen on).
    """
    assignment = customer_folds(frame["customer_id"], folds, cfg.seed)
    at = (frame["as_of_date"] == as_of).to_numpy()
    y = frame[training.TARGET].to_numpy(dtype=float)
    position = np.cumsum(at) - 1  # a row's position among the rows at ``as_of``
    out = {n: {f: np.full(len(frame), np.nan) for f in PREDICTION_ARRAYS} for n in names}
    for fold in range(folds):
        fit, val, test = fold_parts(frame["customer_id"], assignment, fold, seed=cfg.seed)
        val, test = val & at, test & at
        models = training.build_models(cfg)
        val_preds: dict[str, Prediction] = {}
        for name in names:
            start = time.perf_counter()
            model = models[name]
            cols = _service_columns(services, model.feature_service)
            fit_cols = [*cols, "as_of_date"] if model.takes_dates else cols
            model.fit(frame.loc[fit, fit_cols], y[fit], frame.loc[val, cols], y[val])
            pred = model.predict(frame.loc[test, cols])
            for f in PREDICTION_ARRAYS:
                values = getattr(pred, f)
                if values is not None:
                    out[name][f][test] = values
            val_preds[name] = model.predict(frame.loc[val, cols])
            echo(f"  fold {fold + 1}/{folds} {name}: fit {fit.sum():,} rows, validation "
                 f"{val.sum():,}, predicted {test.sum():,} customers"
                 f"{_stopping(model.metadata)} ({time.perf_counter() - start:.1f} s)")
        if validation is not None:
            validation.append(FoldForecasts(position[val], position[test], val_preds))
    return {n: Prediction(**{f: (v[at] if not np.isnan(v[at]).all() else None)
                             for f, v in out[n].items()}) for n in names}


def _take(pred: Prediction, rows: np.ndarray) -> Prediction:
    """``pred`` restricted to ``rows``."""
    return Prediction(**{f: (None if getattr(pred, f) is None else getattr(pred, f)[rows])
                         for f in PREDICTION_ARRAYS})


def choose_champion(preds: dict[str, Prediction], folds: list[FoldForecasts], y: np.ndarray,
                    purchased: np.ndarray, ids: np.ndarray, bootstrap: int, seed: int
                    ) -> tuple[str, list[dict], dict[str, Prediction]]:
    """The champion chosen on the validation parts of the training folds, as ``clv train``
    chooses it over validation cutoffs (:func:`clv_models.evaluation.selection.decide`), and
    the blend's and the champion's forecasts of every customer.

    Each fold's validation part plays the part of a validation cutoff: the candidates are the
    reference models, the fold's learned models and their blend (weights fitted on that part;
    its own forecast there cross-fitted by customer). Each candidate is judged calibrated by
    the other folds' parts (:func:`clv_models.evaluation.selection.judge`: the
    ``predicted_clv`` map only where it helped out of fold). A predicted customer's blend and
    champion forecasts use the weights and calibration of its own fold's validation part,
    which holds none of the fold's customers.
    """
    forecasts, weights = [], []
    for k, fold in enumerate(folds):
        v = fold.validation
        cand = {n: _take(preds[n], v) for n in CALIBRATION_ONLY} | fold.predictions
        names = [n for n in training.MODEL_NAMES if n in cand]
        blend = BlendCLV()
        blend.weights = dict(zip(names, convex_weights(
            np.column_stack([cand[n].predicted_clv for n in names]), y[v]).tolist(),
            strict=True))
        honest = champion.cross_fitted_blend({n: cand[n].predicted_clv for n in names}, y[v],
                                             ids[v])
        cand["blend"] = dataclasses.replace(blend.combine(cand), predicted_clv=honest)
        weights.append(blend)
        forecasts.append(backtest.CutoffForecasts(
            split=Split([], AS_OF, AS_OF), actual=y[v], purchased=purchased[v],
            predictions=cand, champion="", weights=blend.weights, label=f"fold {k + 1}"))
    name, evidence, pooled, _ = selection.judge(forecasts, bootstrap, seed)
    out = {m: {f: np.full(len(y), np.nan) for f in PREDICTION_ARRAYS} for m in ("blend", name)}
    for k, (fold, blend) in enumerate(zip(folds, weights, strict=True)):
        t = fold.test
        calibration = {}
        for n, c in selection.fit_calibrations([forecasts[k]]).items():
            c = c if pooled[n].clv_knots_x else selection.without_clv_map(c)
            calibration[n] = c if pooled[n].p_knots_x else selection.without_p_map(c)
        test = {n: _take(preds[n], t) for n in training.MODEL_NAMES}
        test["blend"] = blend.combine(test)
        for m in out:
            pred = calibration[m].apply(test[m])
            for f in PREDICTION_ARRAYS:
                if getattr(pred, f) is not None:
                    out[m][f][t] = getattr(pred, f)
    # A field some fold's forecast lacks (e.g. the blend's quantiles, which need every
    # weighted component to have them) is left out for every customer.
    final = {m: Prediction(**{f: (v if f == "predicted_clv" or np.isfinite(v).all() else None)
                              for f, v in o.items()}) for m, o in out.items()}
    return name, evidence, final


def _service_columns(services: dict[str, list[str]], service: str) -> list[str]:
    if service not in services:
        raise KeyError(f"feature service {service!r} was not retrieved; known: {sorted(services)}")
    return services[service]


def _stopping(metadata: dict) -> str:
    """Where early stopping ended, for the progress line."""
    if "best_iteration" in metadata:
        b = metadata["best_iteration"]
        return f"; best rounds {b['regressor'] + 1}/{b['classifier'] + 1}"
    if "best_epoch" in metadata:
        return f"; best epoch {metadata['best_epoch'] + 1} of {metadata['epochs_run']}"
    return ""


# -- the benchmark --------------------------------------------------------------------------------
def reference_rows(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("reference")]


def beats(metric: str, value: float | None, references: list[dict]) -> bool:
    """Whether ``value`` of ``metric`` beats every reference row's value (strictly).

    ``total_ratio`` is judged by the target band instead (0.95-1.05). A missing value never
    beats; a reference row without a value for the metric is skipped.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if metric == "total_ratio":
        return TOTAL_RATIO_BAND[0] <= value <= TOTAL_RATIO_BAND[1]
    ref = [r[metric] for r in references if r.get(metric) is not None
           and not (isinstance(r[metric], float) and math.isnan(r[metric]))]
    if metric in HIGHER_IS_BETTER:
        return all(value > v for v in ref)
    return all(value < v for v in ref)


def targets(references: list[dict]) -> dict[str, str]:
    """Per metric, what beating every reference row means (e.g. ``> 0.718``)."""
    out = {}
    for metric in metrics.METRIC_KEYS:
        if metric == "total_ratio":
            out[metric] = f"{TOTAL_RATIO_BAND[0]}-{TOTAL_RATIO_BAND[1]}"
            continue
        vals = [r[metric] for r in references if r.get(metric) is not None
                and not (isinstance(r[metric], float) and math.isnan(r[metric]))]
        if vals:
            out[metric] = (f"> {max(vals):.3f}" if metric in HIGHER_IS_BETTER
                           else f"< {min(vals):.3f}")
    if "mae" in out:
        out["mae_p50"] = out["mae"]  # the median forecast is judged against the MAE rows
    return out


#: Shares of the lowest predictions the diagnostics tie (:func:`metric_diagnostics`).
TIED_SHARES = (0.3, 0.5, 0.7)


def metric_diagnostics(y: np.ndarray, purchased: np.ndarray, frequency: np.ndarray,
                       preds: dict[str, Prediction]) -> list[dict[str, Any]]:
    """Transformed predictions that show what Spearman and MAE reward on this target.

    These rows are neither models nor references (nothing is judged against them); they
    test the two targets no model here meets, with the models' own out-of-fold predictions:

    * ``<model>, one-time buyers tied``: the model's ``predicted_clv`` with every customer
      who has no repeat purchase (``frequency`` 0, most of CDNOW) given the mean prediction
      of that group. This throws information away, so normalized Gini falls; when Spearman
      rises all the same, Spearman on this target (most holdout values tied at 0) rewards
      ties, not accuracy. ``<model>, lowest x % tied`` gives the lowest x % of predictions
      (:data:`TIED_SHARES`) their mean: the trade-off between the two columns as ties grow.
    * ``<model>, scaled to bgnbd_gg's total``: ``predicted_clv`` times one factor, so that its
      total equals ``bgnbd_gg``'s (which under-predicts). Ranks are unchanged; MAE then
      compares the two at the same total. ``bgnbd_gg, scaled to the actual total`` is the
      converse (the factor uses the holdout total, so it is a diagnostic, not a model).
      MAE rewards predicting less than the mean: the median of most customers' spend is 0.

    ``p_purchase`` is kept as it is (AUC unchanged).
    """
    rows: list[dict[str, Any]] = []

    def add(model: str, transform: str, clv: np.ndarray, p: np.ndarray) -> None:
        values = metrics.evaluate(y, clv, p, purchased)
        rows.append({"model": model, "transform": transform,
                     **{k: _clean(v) for k, v in values.items()}})

    one_timers = np.asarray(frequency) == 0
    reference = preds.get("bgnbd_gg")
    for name in CROSS_FITTED:
        if name not in preds:
            continue
        clv, p = np.asarray(preds[name].predicted_clv, float), preds[name].p_purchase
        if one_timers.any():
            tied = clv.copy()
            tied[one_timers] = clv[one_timers].mean()
            add(name, "one-time buyers tied", tied, p)
        for share in TIED_SHARES:
            low = clv <= np.quantile(clv, share)
            tied = clv.copy()
            tied[low] = clv[low].mean()
            add(name, f"lowest {share:.0%} tied", tied, p)
        if reference is not None and clv.sum() > 0:
            factor = float(np.sum(reference.predicted_clv) / clv.sum())
            add(name, f"scaled to bgnbd_gg's total (x{factor:.3f})", clv * factor, p)
    if reference is not None and np.sum(reference.predicted_clv) > 0:
        factor = float(np.sum(y) / np.sum(reference.predicted_clv))
        add("bgnbd_gg", f"scaled to the actual total (x{factor:.3f})",
            np.asarray(reference.predicted_clv, float) * factor, reference.p_purchase)
    return rows


#: Weights of the learner in the frontier's mixes with ``bgnbd_gg`` (:func:`target_frontier`).
FRONTIER_WEIGHTS = tuple(i / 10 for i in range(11))
#: The targets a mix is judged on: the mean forecast's (a mix has no median forecast).
FRONTIER_KEYS = tuple(k for k in TARGET_KEYS if k != "mae_p50")


def target_frontier(y: np.ndarray, purchased: np.ndarray, preds: dict[str, Prediction],
                    references: list[dict]) -> list[dict[str, Any]]:
    """What mixing the measured models allows: ``w * learner + (1 - w) * bgnbd_gg``.

    For each learner and each weight ``w`` of :data:`FRONTIER_WEIGHTS`, the mix of the two
    out-of-fold forecasts (``predicted_clv`` and ``p_purchase`` alike) is measured on the
    holdout, with the target columns it meets (:data:`FRONTIER_KEYS`, each against every
    reference row as :func:`beats` judges it). These rows are a diagnostic, not a model: the
    holdout labels that judge them would be needed to pick a weight. ``w = 0`` is ``bgnbd_gg``
    itself and ``w = 1`` the learner, so the rows trace the trade-off between the two (RMSE
    against Gini, here); a target no row meets is out of reach of the models measured here,
    and the row meeting the most targets is the best point on the frontier.
    """
    reference = preds.get("bgnbd_gg")
    rows: list[dict[str, Any]] = []
    if reference is None or reference.p_purchase is None:
        return rows
    base_clv = np.asarray(reference.predicted_clv, float)
    base_p = np.asarray(reference.p_purchase, float)
    for name in CROSS_FITTED:
        pred = preds.get(name)
        if pred is None or pred.p_purchase is None:
            continue
        for w in FRONTIER_WEIGHTS:
            clv = w * np.asarray(pred.predicted_clv, float) + (1 - w) * base_clv
            p = w * np.asarray(pred.p_purchase, float) + (1 - w) * base_p
            values = {k: _clean(v) for k, v in metrics.evaluate(y, clv, p, purchased).items()}
            met = [k for k in FRONTIER_KEYS if beats(k, values.get(k), references)]
            rows.append({"model": f"{w:.1f} x {name} + {1 - w:.1f} x bgnbd_gg", "weight": w,
                         "learner": name, **values, "targets_met": len(met),
                         "targets_missed": [k for k in FRONTIER_KEYS if k not in met]})
    return rows


def frontier_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The best point of :func:`target_frontier` (most targets met, then lowest RMSE) and
    whether any mix meets every target it is judged on."""
    if not rows:
        return {}
    best = min(rows, key=lambda r: (-r["targets_met"], r.get("rmse") or math.inf))
    return {"best": best["model"], "targets_met": best["targets_met"],
            "targets_judged": len(FRONTIER_KEYS), "targets_missed": best["targets_missed"],
            "all_targets_reachable": best["targets_met"] == len(FRONTIER_KEYS)}


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float):
        return round(value, 4)
    return value


def bench_cdnow(cfg: Config, cdnow_path: Path | None = None, folds: int = DEFAULT_FOLDS,
                echo: Callable[[str], None] = print, sample: bool = False) -> BenchResult:
    """``clv bench cdnow``: import, build, Feast, cross-fit, evaluate (module docstring).

    Parameters
    ----------
    cfg
        The configuration; its data directory receives the imported file, the warehouse, the
        feature exports and the Feast store (replaced on every run). The horizon and schedule
        are set to the protocol's (:func:`cdnow_config`); model settings are taken as given
        (``clv bench cdnow`` puts :data:`MODEL_SETTINGS` under the user's ``--set``).
    cdnow_path
        A local ``CDNOW_master.txt``; default: the copy in the installed ``lifetimes`` package.
    folds
        Folds of the cross-fitting by customer.
    echo
        Progress lines.
    """
    source = cdnow_master_path(cdnow_path, CDNOW_SAMPLE_FILE if sample else CDNOW_FILE)
    cfg = cdnow_config(cfg).resolved()
    seconds: dict[str, float] = {}
    start_all = time.perf_counter()
    echo("Protocol: " + PROTOCOL.format(folds=folds))

    start = time.perf_counter()
    imported = importers.import_cdnow(cfg, source)
    seconds["import"] = time.perf_counter() - start
    echo(f"imported {imported.rows['orders']:,} CDNOW records from {source} -> {cfg.raw_dir}")

    start = time.perf_counter()
    built = warehouse.run_dbt(cfg, ["build"])
    seconds["build"] = time.perf_counter() - start
    echo(f"dbt build: {built.passed}/{built.nodes_total} nodes ok ({seconds['build']:.1f} s)")

    start = time.perf_counter()
    features.apply(cfg)
    materialized = features.materialize(cfg, full_refresh=True)
    store = features.feature_store(cfg)
    services = features.service_features(store)
    labels = features.label_frame(cfg)
    labels = labels[labels["as_of_date"] <= AS_OF]
    if not (labels["as_of_date"] == AS_OF).any():
        raise DataError(f"no labels at {AS_OF}: the data do not cover the CDNOW holdout "
                         f"{AS_OF}..{HOLDOUT_END}")
    rows_all = features.historical_features(cfg, labels, store, tuple(services))
    frame = rows_all[rows_all["as_of_date"] == AS_OF].reset_index(drop=True)
    seconds["features"] = time.perf_counter() - start
    echo(f"Feast: {materialized.online_rows:,} customers online; retrieved {len(rows_all):,} "
         f"rows at {rows_all['as_of_date'].nunique()} as-of dates, {len(frame):,} at {AS_OF} "
         f"({', '.join(f'{s} {len(c)}' for s, c in services.items())} features; "
         f"{seconds['features']:.1f} s)")

    start = time.perf_counter()
    preds: dict[str, Prediction] = {}
    reference_models = training.build_models(cfg)
    for name in CALIBRATION_ONLY:
        model = reference_models[name]
        cols = _service_columns(services, model.feature_service)
        # Calibration cross-section only; labels are not used (bgnbd_gg ignores y).
        model.fit(frame[cols], np.zeros(len(frame)))
        preds[name] = model.predict(frame[cols])
    validation: list[FoldForecasts] = []
    preds.update(cross_fit(cfg, rows_all, services, folds, echo=echo, validation=validation))
    seconds["models"] = time.perf_counter() - start

    y = frame[training.TARGET].to_numpy(dtype=float)
    purchased = frame["label_purchase_days"].to_numpy() > 0
    start = time.perf_counter()
    chosen, evidence, chosen_preds = choose_champion(
        preds, validation, y, purchased, frame["customer_id"].to_numpy(),
        cfg.champion.bootstrap, cfg.seed)
    seconds["champion"] = time.perf_counter() - start
    echo(f"champion, chosen on the folds' validation parts: {chosen}")
    preds["blend"] = chosen_preds["blend"]
    preds["champion"] = chosen_preds[chosen]
    sources = {**{n: f"measured, {folds}-fold cross-fitted" for n in CROSS_FITTED},
               **{n: "measured, calibration only" for n in CALIBRATION_ONLY},
               "blend": "measured, weights and calibration per fold from its validation part",
               "champion": f"measured: {chosen}, chosen on the folds' validation parts, "
                           "calibrated per fold"}
    rows: list[dict[str, Any]] = []
    for name in ("champion", "blend", *CROSS_FITTED, *CALIBRATION_ONLY):
        pred = preds[name]
        rows.append({"model": name, **{k: _clean(v) for k, v in metrics.evaluate(
            y, pred.predicted_clv, pred.p_purchase, purchased, pred.quantiles).items()},
            "reference": name in REFERENCE_MODELS, "source": sources[name]})
    rows += [{**r, "reference": True, "source": "published"} for r in PUBLISHED_REFERENCE_ROWS]
    refs = reference_rows(rows)
    for row in rows:
        if not row["reference"]:
            row["beats_references"] = {m: beats(m, row[m], refs) for m in metrics.METRIC_KEYS}
            # MAE is judged on the median forecast (the forecast MAE rewards), against the
            # reference rows' MAE
            row["beats_references"]["mae_p50"] = beats("mae", row.get("mae_p50"), refs)
    # The targets are the champion's: every column but Spearman (reported, not a target), MAE
    # on clv_p50.
    all_beaten = {m: rows[0]["beats_references"][m] for m in TARGET_KEYS}
    frontier = target_frontier(y, purchased, preds, refs)
    seconds["total"] = time.perf_counter() - start_all

    result = BenchResult("cdnow", rows=rows)
    result.extra = {
        "protocol": PROTOCOL.format(folds=folds), "folds": folds, "seed": cfg.seed,
        "as_of_date": str(AS_OF), "horizon_days": HORIZON_DAYS, "customers": len(frame),
        "training_as_of_dates": sorted(str(d) for d in rows_all["as_of_date"].unique()),
        "training_rows": len(rows_all),
        "actual_total": round(float(y.sum()), 2), "actual_mean": round(float(y.mean()), 4),
        "purchasers": int(purchased.sum()), "source_file": str(source),
        "targets": targets(refs), "beats_references": all_beaten,
        "all_columns_beaten": all(all_beaten.values()),
        "champion": chosen, "champion_evidence": [{k: _clean(v) for k, v in r.items()}
                                                  for r in evidence],
        "diagnostics": metric_diagnostics(y, purchased, frame["frequency"].to_numpy(), preds),
        "frontier": frontier,
        "frontier_best": frontier_summary(frontier),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "model_settings": {"xgboost": dataclasses.asdict(cfg.xgboost),
                           "deep": dataclasses.asdict(cfg.deep)},
    }
    return result


def cdnow_table(result: BenchResult) -> Table:
    """The benchmark's rows as a terminal table, with a last row of per-column verdicts."""
    extra = result.extra
    table = Table(title=f"clv bench cdnow: {extra.get('customers', 0):,} customers at "
                        f"{extra.get('as_of_date')}, horizon {extra.get('horizon_days')} days",
                  caption="* reference rows (measured here, or published ones). "
                          "Last rows: what beating every reference row takes, and whether "
                          "the champion does.")
    table.add_column("model")
    for label in METRIC_COLUMNS.values():
        table.add_column(label, justify="right")
    for row in result.rows:
        name = row["model"] + (" *" if row.get("reference") else "")
        table.add_row(name, *[format_metric(row.get(k)) for k in METRIC_COLUMNS])
    tgt = extra.get("targets", {})
    table.add_row("target", *[tgt.get(k, "") for k in METRIC_COLUMNS], end_section=False)
    verdict = extra.get("beats_references", {})
    table.add_row("the champion beats it",
                  *["yes" if verdict.get(k) else "no" if k in verdict else "–"
                    for k in METRIC_COLUMNS])
    return table


def frontier_table(result: BenchResult) -> Table:
    """The frontier of mixes (:func:`target_frontier`) as a terminal table."""
    best = result.extra.get("frontier_best", {})
    table = Table(title="The frontier: w x learner + (1 - w) x bgnbd_gg, measured on the holdout",
                  caption=(f"Not models (a weight would need the holdout to choose). Best "
                           f"point: {best.get('best')}, {best.get('targets_met')} of "
                           f"{best.get('targets_judged')} mean-forecast targets met."
                           if best else "No frontier: a learner or bgnbd_gg is missing."))
    table.add_column("mix")
    for key in FRONTIER_KEYS:
        table.add_column(METRIC_COLUMNS.get(key, key), justify="right")
    table.add_column("targets met", justify="right")
    for row in result.extra.get("frontier", []):
        table.add_row(row["model"], *[format_metric(row.get(k)) for k in FRONTIER_KEYS],
                      f"{row['targets_met']}/{len(FRONTIER_KEYS)}")
    return table


def diagnostics_table(result: BenchResult) -> Table:
    """The metric diagnostics (:func:`metric_diagnostics`) as a terminal table."""
    table = Table(title="What Spearman and MAE reward here: the models' predictions, transformed",
                  caption="Not models: tying the one-time buyers throws information away; "
                          "scaling changes the total, not the ranks.")
    table.add_column("model")
    table.add_column("transform")
    for label in METRIC_COLUMNS.values():
        table.add_column(label, justify="right")
    for row in result.extra.get("diagnostics", []):
        table.add_row(row["model"], row["transform"],
                      *[format_metric(row.get(k)) for k in METRIC_COLUMNS])
    return table
