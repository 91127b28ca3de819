"""Evaluation metrics for CLV predictions, as defined in docs/contracts.md (after Wang, Liu &
Miao, 2019), and the decile rule every part of the product shares.

Ties in the predictions never change a result: wherever customers are ranked by prediction, the
actual values inside a group of tied predictions are replaced by the group's mean. For the
Gini and the top-decile capture (linear in the ranked values) that is exactly the average over
every order the tie could be broken in; decile MAPE uses the same tie-averaged values.

The raw Gini is the contract's ``2 * mean(g_k) - 1`` with ``g_k`` the cumulative share after the
k-th customer; a random (or constant) ordering scores ``1/n`` under it, negligible at realistic
population sizes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

METRIC_KEYS = ("mae", "rmse", "spearman", "normalized_gini", "top_decile_capture",
               "decile_mape", "total_ratio", "auc")
#: The metrics of models with quantiles (:func:`quantile_scores`; NaN for the others).
QUANTILE_KEYS = ("mae_p50", "coverage_80")


def _as_float(x: np.ndarray | pd.Series) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("metrics need finite values (found NaN or inf)")
    return arr


def ranked_actuals(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Actual values ordered by prediction, highest first, with ties averaged.

    Parameters
    ----------
    actual, predicted
        One value per customer.

    Returns
    -------
    numpy.ndarray
        ``actual`` sorted by descending ``predicted``; within a group of equal predictions every
        value is the group mean.
    """
    actual, predicted = _as_float(actual), _as_float(predicted)
    if actual.shape != predicted.shape:
        raise ValueError("actual and predicted must have the same length")
    order = np.argsort(-predicted, kind="stable")
    p, a = predicted[order], actual[order]
    group = np.concatenate([[0], np.cumsum(p[1:] != p[:-1])])
    means = np.bincount(group, weights=a) / np.bincount(group)
    return means[group]


def lorenz_curve(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Cumulative share of actual value ``g_k`` captured by the top ``k`` predictions."""
    ranked = ranked_actuals(actual, predicted)
    total = ranked.sum()
    if total <= 0:
        raise ValueError("the Gini needs a positive total actual value")
    return np.cumsum(ranked) / total


def raw_gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """``2 * mean(g_k) - 1`` for customers ordered by ``predicted`` (highest first)."""
    return float(2.0 * lorenz_curve(actual, predicted).mean() - 1.0)


def normalized_gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Raw Gini of the prediction divided by the raw Gini of ordering by the actual value."""
    return raw_gini(actual, predicted) / raw_gini(actual, actual)


def top_decile_capture(actual: np.ndarray, predicted: np.ndarray, share: float = 0.1) -> float:
    """Share of the actual total held by the ``share`` of customers with the highest predictions.

    Read off the Lorenz curve at exactly ``share`` (linear between customers), so the result does
    not depend on how the population size divides by ten.
    """
    g = lorenz_curve(actual, predicted)
    x = np.arange(len(g) + 1) / len(g)
    return float(np.interp(share, x, np.concatenate([[0.0], g])))


# -- the decile rule ----------------------------------------------------------------------------
# One definition for the evaluation's decile table, the deciles of clv_scores and the endpoint's
# deciles: customers ranked by predicted value, highest first (ties by customer id where ids are
# known), cut into equal groups whose sizes differ by at most one, the larger ones first
# (``numpy.array_split``).

def decile_groups(n: int, groups: int = 10) -> list[np.ndarray]:
    """Rank positions ``0..n-1`` (0 = highest) in ``groups`` groups, decile 1 first."""
    return np.array_split(np.arange(n), min(groups, max(n, 1)))


def rank_order(values: np.ndarray, ids: np.ndarray | pd.Series | None = None) -> np.ndarray:
    """Indices of ``values`` from the highest to the lowest; ties by ``ids`` (ascending), else
    by position."""
    values = np.asarray(values, dtype=float)
    if ids is None:
        return np.argsort(-values, kind="stable")
    return np.lexsort((np.asarray(ids), -values))


def assign_deciles(values: np.ndarray, ids: np.ndarray | pd.Series) -> np.ndarray:
    """Decile per customer, 1 = highest predicted value (:func:`decile_groups`)."""
    order = rank_order(values, ids)
    out = np.empty(len(order), dtype=np.int32)
    for decile, positions in enumerate(decile_groups(len(order)), start=1):
        out[order[positions]] = decile
    return out


def decile_cuts(values: np.ndarray, ids: np.ndarray | pd.Series) -> list[tuple[float, str]]:
    """The lowest-ranked ``(value, id)`` of deciles 1..9: enough to place any new
    ``(value, id)`` among these customers with :func:`decile_of`."""
    order = rank_order(values, ids)
    values, ids = np.asarray(values, dtype=float), np.asarray(ids)
    return [(float(values[order[g[-1]]]), str(ids[order[g[-1]]]))
            for g in decile_groups(len(order))[:-1] if len(g)]


def decile_of(value: float, customer_id: str, cuts: list[tuple[float, str]]) -> int:
    """The decile ``(value, customer_id)`` falls in, given :func:`decile_cuts`."""
    for decile, (cut_value, cut_id) in enumerate(cuts, start=1):
        if (-value, customer_id) <= (-cut_value, cut_id):
            return decile
    return len(cuts) + 1


def decile_table(actual: np.ndarray, predicted: np.ndarray, groups: int = 10) -> pd.DataFrame:
    """Mean predicted and actual value in equal-size groups by predicted rank (1 = highest).

    With fewer customers than groups, each customer is a group.
    """
    actual, predicted = _as_float(actual), _as_float(predicted)
    groups = min(groups, len(actual))
    ranked = ranked_actuals(actual, predicted)
    pred_sorted = np.sort(predicted)[::-1]
    rows = []
    for i, positions in enumerate(decile_groups(len(ranked), groups)):
        a, p = ranked[positions], pred_sorted[positions]
        rows.append({"decile": i + 1, "customers": len(a), "mean_predicted": p.mean(),
                     "mean_actual": a.mean(), "actual_share": a.sum() / max(ranked.sum(), 1e-300)})
    return pd.DataFrame(rows)


def decile_mape(actual: np.ndarray, predicted: np.ndarray, groups: int = 10) -> float:
    """Mean over predicted-rank groups of ``|mean pred - mean actual| / mean actual``.

    Groups whose mean actual value is 0 have no defined relative error and are left out of the
    mean (with ten groups and a realistic population none is).
    """
    table = decile_table(actual, predicted, groups)
    ok = table["mean_actual"] > 0
    err = (table.loc[ok, "mean_predicted"] - table.loc[ok, "mean_actual"]).abs()
    return float((err / table.loc[ok, "mean_actual"]).mean())


def roc_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC via the Mann-Whitney statistic with average ranks for ties."""
    positive = np.asarray(positive, dtype=bool)
    score = _as_float(score)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = stats.rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct score threshold, highest first.

    One point per group of equal scores, so a tie is a diagonal step (the average over the
    orders it could be broken in) and the trapezoidal area under the curve equals
    :func:`roc_auc`.

    Parameters
    ----------
    positive
        Whether each customer is a positive (e.g. purchased in the horizon).
    score
        The predicted score or probability.

    Returns
    -------
    tuple of numpy.ndarray
        ``(fpr, tpr)``, both starting at 0 and ending at 1.
    """
    positive = np.asarray(positive, dtype=bool)
    score = _as_float(score)
    if positive.shape != score.shape:
        raise ValueError("positive and score must have the same length")
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("the ROC curve needs both positives and negatives")
    order = np.argsort(-score, kind="stable")
    s, pos = score[order], positive[order]
    group_end = np.concatenate([s[1:] != s[:-1], [True]])
    tp = np.cumsum(pos)[group_end]
    fp = np.cumsum(~pos)[group_end]
    return (np.concatenate([[0.0], fp / n_neg]), np.concatenate([[0.0], tp / n_pos]))


def calibration_table(positive: np.ndarray, probability: np.ndarray,
                      bins: int = 10) -> pd.DataFrame:
    """Mean predicted probability beside the observed rate in equal-width probability bins.

    A calibrated model's points lie on the diagonal. Bins are ``[0, 1/bins), ...,
    [1 - 1/bins, 1]``; empty bins are left out.

    Parameters
    ----------
    positive
        Whether each customer is a positive (e.g. purchased in the horizon).
    probability
        Predicted probabilities in ``[0, 1]``.
    bins
        Number of equal-width bins.

    Returns
    -------
    pandas.DataFrame
        One row per non-empty bin: ``bin_low``, ``bin_high``, ``customers``,
        ``mean_predicted``, ``observed_rate``.
    """
    positive = np.asarray(positive, dtype=bool)
    probability = _as_float(probability)
    if positive.shape != probability.shape:
        raise ValueError("positive and probability must have the same length")
    idx = np.clip((probability * bins).astype(int), 0, bins - 1)
    count = np.bincount(idx, minlength=bins)
    mean_p = np.bincount(idx, weights=probability, minlength=bins) / np.maximum(count, 1)
    rate = np.bincount(idx, weights=positive.astype(float), minlength=bins) / np.maximum(count, 1)
    edges = np.arange(bins + 1) / bins
    keep = count > 0
    return pd.DataFrame({"bin_low": edges[:-1][keep], "bin_high": edges[1:][keep],
                         "customers": count[keep], "mean_predicted": mean_p[keep],
                         "observed_rate": rate[keep]})


def total_ratio(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Predicted total over actual total (1 = right in aggregate; NaN when nothing was
    bought)."""
    total = float(_as_float(actual).sum())
    return float(_as_float(predicted).sum() / total) if total else float("nan")


def calibration_error(positive: np.ndarray, probability: np.ndarray | None,
                      bins: int = 10) -> float:
    """Expected calibration error of a probability: the customer-weighted mean of
    ``|observed rate - mean predicted|`` over the bins of :func:`calibration_table` (0 for a
    calibrated model; NaN without a probability)."""
    if probability is None or len(positive) == 0:
        return float("nan")
    table = calibration_table(positive, probability, bins)
    gap = (table["observed_rate"] - table["mean_predicted"]).abs()
    return float((gap * table["customers"]).sum() / table["customers"].sum())


def quantile_scores(actual: np.ndarray, p10: np.ndarray | None, p50: np.ndarray | None,
                    p90: np.ndarray | None) -> dict[str, float]:
    """MAE of the median forecast ``clv_p50`` (the forecast MAE rewards) and the coverage of
    the 80 % interval: the share of actuals inside ``[clv_p10, clv_p90]`` (target 0.80). NaN
    for a model without those quantiles."""
    actual = _as_float(actual)
    mae_p50 = float("nan") if p50 is None else float(np.abs(_as_float(p50) - actual).mean())
    coverage = float("nan")
    if p10 is not None and p90 is not None:
        coverage = float(((actual >= _as_float(p10)) & (actual <= _as_float(p90))).mean())
    return {"mae_p50": mae_p50, "coverage_80": coverage}


def evaluate(
    actual: np.ndarray, predicted: np.ndarray, p_purchase: np.ndarray | None = None,
    purchased: np.ndarray | None = None, quantiles: tuple | None = None,
) -> dict[str, float]:
    """All the contract's metrics (docs/contracts.md) for one model on one set of customers.

    Parameters
    ----------
    actual
        Net revenue in the horizon (the label).
    predicted
        Predicted CLV.
    p_purchase
        Predicted probability of any purchase in the horizon; ``auc`` is NaN without it.
    purchased
        Whether each customer purchased in the horizon (the AUC's target). Defaults to
        ``actual > 0``, which misses buyers whose refunds cancelled their spend.
    quantiles
        ``(clv_p10, clv_p50, clv_p90)`` (each may be None): adds ``mae_p50`` and
        ``coverage_80`` (:func:`quantile_scores`), NaN without them.
    """
    actual, predicted = _as_float(actual), _as_float(predicted)
    err = predicted - actual
    constant = np.all(predicted == predicted[0])
    return {
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "spearman": float("nan") if constant else float(stats.spearmanr(actual, predicted)[0]),
        "normalized_gini": normalized_gini(actual, predicted),
        "top_decile_capture": top_decile_capture(actual, predicted),
        "decile_mape": decile_mape(actual, predicted),
        "total_ratio": total_ratio(actual, predicted),
        "auc": float("nan") if p_purchase is None else roc_auc(
            actual > 0 if purchased is None else purchased, p_purchase),
        **quantile_scores(actual, *(quantiles or (None, None, None))),
    }
