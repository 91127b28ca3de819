"""Post-hoc calibration of a model's forecasts, fitted on out-of-time validation rows.

Two corrections, both monotone, so no customer changes rank:

* **level** of ``predicted_clv`` (and the quantiles): one factor, the actual total over the
  predicted total of the validation rows. Models are biased in level in ways that ranking
  metrics hide: BG/NBD + Gamma-Gamma predicts gross spend and ignores refunds; a learner
  fitted on older dates carries their level.
* **``p_purchase``**: isotonic regression of "purchased in the horizon" on the predicted
  probability (pool-adjacent-violators), read back by linear interpolation between its steps,
  so a predicted 0.3 means 30 % of such customers buy.

The validation rows come from the validation cutoffs of the champion choice
(:mod:`clv_models.evaluation.selection`): never the evaluation date's labels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np

from clv_models.models.base import Prediction

#: Most steps kept of the isotonic map (evenly spaced in rank), so the map stays small in JSON.
MAX_KNOTS = 200


def isotonic(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-decreasing least-squares fit of ``y`` on ``x`` (pool-adjacent-violators).

    Returns
    -------
    (knots_x, knots_y)
        The fitted step values at the distinct ``x`` (sorted), thinned to :data:`MAX_KNOTS`.
    """
    order = np.argsort(x, kind="mergesort")
    xs, ys = np.asarray(x, float)[order], np.asarray(y, float)[order]
    ux, start = np.unique(xs, return_index=True)
    sums = np.add.reduceat(ys, start)
    counts = np.diff(np.append(start, len(xs))).astype(float)
    # blocks: value, weight, and how many distinct x each covers
    value, weight, size = [], [], []
    for s, c in zip(sums, counts, strict=True):
        value.append(s / c)
        weight.append(c)
        size.append(1)
        while len(value) > 1 and value[-2] > value[-1]:
            w = weight[-2] + weight[-1]
            v = (value[-2] * weight[-2] + value[-1] * weight[-1]) / w
            n = size[-2] + size[-1]
            del value[-1], weight[-1], size[-1]
            value[-1], weight[-1], size[-1] = v, w, n
    fitted = np.repeat(value, size)
    if len(ux) > MAX_KNOTS:
        keep = np.unique(np.linspace(0, len(ux) - 1, MAX_KNOTS).round().astype(int))
        ux, fitted = ux[keep], fitted[keep]
    return ux, fitted


@dataclass
class Calibration:
    """A fitted level factor and ``p_purchase`` map (identity until :meth:`fit`)."""

    clv_scale: float = 1.0
    p_knots_x: list[float] = field(default_factory=list)
    p_knots_y: list[float] = field(default_factory=list)
    rows: int = 0

    def fit(self, predicted_clv: np.ndarray, actual: np.ndarray,
            p_purchase: np.ndarray | None = None,
            purchased: np.ndarray | None = None) -> Calibration:
        """Fit on validation rows: forecasts, labels, and (optionally) the purchase
        probabilities with the 0/1 outcome."""
        pred = np.nan_to_num(np.asarray(predicted_clv, float))
        total = pred.sum()
        self.clv_scale = float(np.asarray(actual, float).sum() / total) if total > 0 else 1.0
        self.rows = len(pred)
        if p_purchase is not None and purchased is not None:
            p = np.asarray(p_purchase, float)
            ok = np.isfinite(p)
            kx, ky = isotonic(p[ok], np.asarray(purchased, float)[ok])
            self.p_knots_x, self.p_knots_y = kx.tolist(), ky.tolist()
        return self

    def apply(self, pred: Prediction) -> Prediction:
        """``pred`` with the level factor on the CLV and its quantiles and the map on
        ``p_purchase`` (unchanged where the model has none or no map was fitted)."""
        def scaled(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else np.asarray(values, float) * self.clv_scale

        p = pred.p_purchase
        if p is not None and self.p_knots_x:
            p = np.interp(np.asarray(p, float), self.p_knots_x, self.p_knots_y)
        return replace(pred, predicted_clv=scaled(pred.predicted_clv), p_purchase=p,
                       clv_p10=scaled(pred.clv_p10), clv_p50=scaled(pred.clv_p50),
                       clv_p90=scaled(pred.clv_p90))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: dict) -> Calibration:
        return cls(**payload)
