"""The champion chosen over several validation cutoffs, never on the evaluation date's labels.

One validation date is thin evidence: a shop's level and seasonality move from one horizon to
the next, and a blend or learner that wins at one date can lose at the next. So ``clv train``
repeats the time split at :attr:`~clv_models.core.config.ChampionConfig.cutoffs` as-of dates
up to the validation date, spread over the last year where the data allow
(:func:`spread_splits`; a rolling-origin backtest,
:func:`clv_models.evaluation.backtest.run`, on the rows whose labels end by the evaluation
date): at each one every model is refitted on the earlier dates, the blend's weights are fitted
on that refit's own validation date, and all are judged on the cutoff's rows. Cutoffs whose
refit would see less than :attr:`~clv_models.core.config.ChampionConfig.min_fit_share` of the
final fit's as-of dates are left out where later ones suffice: a learner refitted on a quarter
of the history is judged at a handicap BG/NBD does not share.

Rule (:data:`RULE`): a candidate is admissible when, averaged over the cutoffs, it is not worse
than BG/NBD + Gamma-Gamma on RMSE and normalized Gini, and the upper end of the 95 % paired
bootstrap interval of its mean RMSE difference to BG/NBD is below 0. The admissible candidate
with the lowest mean RMSE is the champion. BG/NBD + Gamma-Gamma is always admissible, so where
it is the best forecast, or where the evidence against it is thin, it stays the champion.
With two cutoffs or more, each candidate is judged calibrated
(:mod:`clv_models.models.calibration`), each cutoff's forecasts by a calibration fitted on the
other cutoffs; whether a map of ``predicted_clv`` helps is judged only on cutoffs with an
earlier cutoff whose label window has ended (:func:`judging_maps`). With ``cutoffs: 0``, or
when the data has no feasible cutoff, the single-date rule of
:func:`clv_models.evaluation.champion.choose` decides.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable

import numpy as np

from clv_models.core import metrics
from clv_models.core.config import Config
from clv_models.evaluation import backtest, champion
from clv_models.models import BlendCLV, CLVModel, Prediction
from clv_models.models.calibration import Calibration
from clv_models.models.training import Split, TrainingSet

RULE = (f"admissible: not worse than {champion.REFERENCE} on mean "
        f"{' and mean '.join(champion.ADMISSION_METRICS)} over the validation cutoffs, and the "
        f"95 % paired bootstrap interval of the mean {champion.RANK_METRIC} difference to "
        f"{champion.REFERENCE} below 0; champion: the admissible candidate with the lowest mean "
        f"{champion.RANK_METRIC}")


def admissible(row: dict, reference: dict) -> bool:
    """Whether a backtest summary ``row`` passes :data:`RULE` against ``reference``'s."""
    if row["model"] == reference["model"]:
        return True
    high = row.get(f"{champion.RANK_METRIC}_diff_high")
    return (champion.admissible(row, reference, "_mean")
            and high is not None and high < 0)


#: Days the validation cutoffs are spread over: a year, so that together they cover the seasons.
SPREAD_DAYS = 365


def spread_splits(splits: list[Split], cutoffs: int, min_fit_dates: int = 0) -> list[Split]:
    """``cutoffs`` of the feasible ``splits`` (oldest first), spread over the last year: the
    latest, then each next one at least ``SPREAD_DAYS / cutoffs`` days before the previous
    one where the data allow, else the latest ones not taken. Adjacent monthly cutoffs share
    most of their label window and one season; spread ones show how a candidate fares across
    the year.

    Only splits that refit on at least ``min_fit_dates`` as-of dates are spread over (the
    latest ``cutoffs`` when fewer have that many): a model refitted on a small part of the
    history the final fit will see is judged at a handicap that a model needing little
    history (BG/NBD + Gamma-Gamma, fitted on one cross-section) does not share.
    """
    eligible = [s for s in splits if len(s.fit_dates) >= min_fit_dates]
    splits = eligible if len(eligible) >= cutoffs else list(splits[-cutoffs:])
    if cutoffs >= len(splits):
        return list(splits)
    gap = SPREAD_DAYS // cutoffs
    chosen = [splits[-1]]
    for s in reversed(splits[:-1]):
        if len(chosen) == cutoffs:
            break
        if (chosen[-1].evaluation_date - s.evaluation_date).days >= gap:
            chosen.append(s)
    for s in reversed(splits):
        if len(chosen) == cutoffs:
            break
        if s not in chosen:
            chosen.append(s)
    return sorted(chosen, key=lambda s: s.evaluation_date)


def fit_calibrations(forecasts: list[backtest.CutoffForecasts], skip: int | None = None,
                     only: list[int] | None = None) -> dict[str, Calibration]:
    """Each candidate's :class:`~clv_models.models.calibration.Calibration` fitted on the
    pooled forecasts of the cutoffs (all but the ``skip``-th; only those in ``only`` when
    given)."""
    used = [f for i, f in enumerate(forecasts)
            if i != skip and (only is None or i in only)]
    out = {}
    for name in used[0].predictions:
        preds = [f.predictions[name] for f in used]
        clv = np.concatenate([p.predicted_clv for p in preds])
        y = np.concatenate([f.actual for f in used])
        p_purchase = purchased = None
        if all(p.p_purchase is not None for p in preds):
            p_purchase = np.concatenate([p.p_purchase for p in preds])
            purchased = np.concatenate([f.purchased for f in used])
        out[name] = Calibration().fit(clv, y, p_purchase, purchased)
    return out


def without_clv_map(calibration: Calibration) -> Calibration:
    """``calibration`` with its ``p_purchase`` map only (``predicted_clv`` left as it is)."""
    return dataclasses.replace(calibration, clv_knots_x=[], clv_knots_y=[], clv_scale=1.0)


def without_p_map(calibration: Calibration) -> Calibration:
    """``calibration`` without its ``p_purchase`` map."""
    return dataclasses.replace(calibration, p_knots_x=[], p_knots_y=[])


def _p_error(f: backtest.CutoffForecasts, pred: Prediction) -> float:
    """The ``p_purchase`` calibration error of ``pred`` at cutoff ``f``."""
    return metrics.calibration_error(f.purchased, pred.p_purchase)


def _clv_rmse(f: backtest.CutoffForecasts, pred: Prediction) -> float:
    """The RMSE of ``pred``'s ``predicted_clv`` at cutoff ``f``."""
    return float(np.sqrt(np.mean((pred.predicted_clv - f.actual) ** 2)))


def _mean_error(forecasts: list[backtest.CutoffForecasts], name: str,
                maps: dict[int, dict[str, Calibration]], mapped: bool,
                error: Callable[[backtest.CutoffForecasts, Prediction], float]) -> float:
    """Mean ``error`` of ``name`` over the cutoffs that have ``maps``, each forecast mapped by
    its cutoff's own map (``mapped``) or as forecast."""
    errors = []
    for i, by_name in maps.items():
        pred = forecasts[i].predictions[name]
        errors.append(error(forecasts[i], by_name[name].apply(pred) if mapped else pred))
    return float(np.mean(errors))


def judging_maps(forecasts: list[backtest.CutoffForecasts], horizon_days: int | None
              ) -> dict[int, dict[str, Calibration]]:
    """The maps that judge whether calibrating helps: per cutoff, fitted on other cutoffs.

    Cutoffs in time (``horizon_days`` given): each cutoff's map is fitted on the earlier
    cutoffs whose label window ends by its date, as the deployed map is fitted on label
    windows that ended before the forecast's; cutoffs with no such predecessor are not
    judged. Adjacent monthly cutoffs share most of their label window, and a map fitted on
    one flatters itself on the next. Exchangeable parts of one date (``horizon_days``
    ``None``, e.g. folds of customers): each part's map is fitted on all the others.
    """
    if horizon_days is None:
        return {i: fit_calibrations(forecasts, skip=i) for i in range(len(forecasts))}
    dates = [f.split.evaluation_date for f in forecasts]
    window = dt.timedelta(days=horizon_days)
    out = {}
    for i, date in enumerate(dates):
        earlier = [j for j, d in enumerate(dates) if d + window <= date]
        if earlier:
            out[i] = fit_calibrations(forecasts, only=earlier)
    return out


def judge(forecasts: list[backtest.CutoffForecasts], bootstrap: int, seed: int,
          horizon_days: int | None = None) -> tuple[str, list[dict], dict[str, Calibration], str]:
    """The champion and the evidence from the candidates' forecasts at the validation
    cutoffs, with each candidate's calibration.

    Each map is kept for a candidate only where it helped out of cutoff, each judged cutoff
    corrected by a map fitted on other cutoffs (:func:`judging_maps`: for cutoffs in time, on
    earlier ones whose label window has ended): the ``predicted_clv`` map where it lowered
    the mean RMSE over the judged cutoffs, the ``p_purchase`` map where it lowered the mean
    calibration error. On few rows a map of a heavy-tailed label can cost more than it
    corrects, and a model already calibrated gains nothing from one. Without such evidence
    (one cutoff, or cutoffs whose label windows overlap) the ``p_purchase`` map only. Returns
    the champion, the evidence rows (with ``clv_calibrated``), the calibrations, and a phrase
    saying how the candidates were judged.
    """
    final = fit_calibrations(forecasts)
    if len(forecasts) > 1:
        tests = judging_maps(forecasts, horizon_days)
        held = ([tests[i] for i in range(len(forecasts))] if horizon_days is None
                else [fit_calibrations(forecasts, skip=i) for i in range(len(forecasts))])

        def helps(name: str, error: Callable) -> bool:
            return (_mean_error(forecasts, name, tests, True, error)
                    < _mean_error(forecasts, name, tests, False, error))

        # Without judged cutoffs: the p_purchase map only, as with one cutoff.
        use_clv = {n: bool(tests) and helps(n, _clv_rmse) for n in final}
        use_p = {n: not tests or helps(n, _p_error) for n in final}

        def kept(c: Calibration, n: str) -> Calibration:
            c = c if use_clv[n] else without_clv_map(c)
            return c if use_p[n] else without_p_map(c)

        per_cutoff = [{n: kept(c, n) for n, c in h.items()} for h in held]
        final = {n: kept(c, n) for n, c in final.items()}
        how = ("calibrated out of cutoff" if tests else
               "p_purchase calibrated out of cutoff (no cutoff's label window ends before "
               "another's: predicted_clv left as forecast)")
    else:
        final = {n: without_clv_map(c) for n, c in final.items()}
        per_cutoff = [final]
        how = "p_purchase calibrated in cutoff"

    def transform(i: int, name: str, pred: Prediction) -> Prediction:
        return per_cutoff[i][name].apply(pred)

    result = backtest.score_cutoffs(forecasts, bootstrap, seed, transform, with_champion=False)
    name, evidence = decide(result.summary)
    evidence = [{**r, "clv_calibrated": bool(final[r["model"]].clv_knots_x),
                 "p_purchase_calibrated": bool(final[r["model"]].p_knots_x)} for r in evidence]
    return name, evidence, final, how


def decide(summary: list[dict]) -> tuple[str, list[dict]]:
    """The champion by :data:`RULE` from a backtest summary (one row per candidate), and the
    rows marked ``admissible``."""
    reference = next(r for r in summary if r["model"] == champion.REFERENCE)
    evidence = [{**r, "admissible": admissible(r, reference)} for r in summary]
    ranked = sorted((r for r in evidence if r["admissible"]),
                    key=lambda r: (r[f"{champion.RANK_METRIC}_mean"],
                                   r["model"] != champion.REFERENCE))
    return ranked[0]["model"], evidence


def choose(cfg: Config, models: dict[str, CLVModel], data: TrainingSet,
           on_cutoff: Callable[[int, Split], None] | None = None
           ) -> tuple[champion.ChampionChoice, BlendCLV]:
    """Fit the blend on ``data``'s validation date and choose the champion over the validation
    cutoffs (see the module docstring); ``models`` are fitted on ``data``'s fit rows.

    The candidates are judged, and their calibrations fitted, by :func:`judge`.
    """
    choice, blend = champion.choose(models, data)
    wanted = cfg.champion.cutoffs
    if wanted <= 0:
        return choice, blend
    frame = data.frame[data.frame["as_of_date"] <= data.split.validation_date]
    splits = backtest.feasible_splits(list(frame["as_of_date"].unique()), cfg.horizon_days)
    if not splits:
        choice.basis = (f"the validation date only: no as-of date up to "
                        f"{data.split.validation_date} has two earlier dates whose horizon "
                        "ends by it")
        return choice, blend
    cutoffs = min(wanted, len(splits))
    sub = TrainingSet(frame=frame, feature_names=data.feature_names, split=splits[-1],
                      services=data.services)
    min_fit_dates = math.ceil(cfg.champion.min_fit_share * len(data.split.fit_dates))
    forecasts = backtest.fit_cutoffs(cfg, sub, cutoffs, on_cutoff=on_cutoff,
                                     splits=spread_splits(splits, cutoffs, min_fit_dates))
    choice.champion, evidence, calibrations, how = judge(forecasts, cfg.champion.bootstrap,
                                                         cfg.seed, cfg.horizon_days)
    choice.rule = RULE
    choice.basis = (f"{cutoffs} validation cutoff{'s' if cutoffs > 1 else ''}"
                    + f", {how}"
                    + ("" if cutoffs == wanted else f" (of {wanted} asked: the data has "
                       f"{len(splits)})"))
    choice.validation_cutoffs = [str(f.split.evaluation_date) for f in forecasts]
    choice.cutoff_evidence = evidence
    choice.calibration = {n: c.to_dict() for n, c in calibrations.items()}
    return choice, blend
