"""Post-hoc calibration of a model's forecasts, fitted on out-of-time validation rows.

Two maps, both increasing, so customers keep their order:

* **``predicted_clv``**: centred isotonic regression of the label on the forecast (the
  least-squares non-decreasing map, :func:`isotonic`), so the mean of the customers with a
  given forecast is the forecast: totals and deciles line up, and on the rows it is fitted to
  the squared error can only fall. Models are off in ways ranking metrics hide: BG/NBD +
  Gamma-Gamma predicts gross spend and ignores refunds; a learner fitted on older dates
  carries their level. The quantiles are scaled with the mean, customer by customer.
* **``p_purchase``**: the same regression of "purchased in the horizon" on the predicted
  probability, so a predicted 0.3 means about 30 % of such customers buy.

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
    """Centred isotonic regression of ``y`` on ``x``: the non-decreasing least-squares fit
    (pool-adjacent-violators), one knot per pooled block at the block's mean ``x``.

    Read back by linear interpolation between the knots (:func:`apply_knots`), the map is
    strictly increasing wherever the blocks differ, so it keeps the order of the forecasts
    instead of tying every member of a block.

    Returns
    -------
    (knots_x, knots_y)
        Block centres (increasing) and block means, thinned to :data:`MAX_KNOTS`.
    """
    order = np.argsort(x, kind="mergesort")
    xs, ys = np.asarray(x, float)[order], np.asarray(y, float)[order]
    if not len(xs):
        return np.zeros(0), np.zeros(0)
    ux, start = np.unique(xs, return_index=True)
    sums = np.add.reduceat(ys, start)
    counts = np.diff(np.append(start, len(xs))).astype(float)
    value, weight, centre = [], [], []  # per block: mean y, rows, mean x
    for u, s_, c in zip(ux, sums, counts, strict=True):
        value.append(s_ / c)
        weight.append(c)
        centre.append(u)
        while len(value) > 1 and value[-2] >= value[-1]:
            w = weight[-2] + weight[-1]
            v = (value[-2] * weight[-2] + value[-1] * weight[-1]) / w
            m = (centre[-2] * weight[-2] + centre[-1] * weight[-1]) / w
            del value[-1], weight[-1], centre[-1]
            value[-1], weight[-1], centre[-1] = v, w, m
    kx, ky = np.asarray(centre), np.asarray(value)
    if len(kx) > MAX_KNOTS:
        keep = np.unique(np.linspace(0, len(kx) - 1, MAX_KNOTS).round().astype(int))
        kx, ky = kx[keep], ky[keep]
    return kx, ky


def apply_knots(values: np.ndarray, knots_x: list[float], knots_y: list[float],
                proportional: bool = False) -> np.ndarray:
    """Read a map of :func:`isotonic` at ``values``: linear between the knots; beyond them
    constant, or (``proportional``, for amounts) in proportion to the value, so the largest
    forecasts keep their order."""
    values = np.asarray(values, float)
    kx, ky = np.asarray(knots_x, float), np.asarray(knots_y, float)
    out = np.interp(values, kx, ky)
    if proportional:
        above = values > kx[-1]
        if kx[-1] > 0:
            out[above] = values[above] * ky[-1] / kx[-1]
        below = values < kx[0]
        if kx[0] > 0:
            out[below] = values[below] * ky[0] / kx[0]
    return out


@dataclass
class Calibration:
    """A fitted map of ``predicted_clv`` and of ``p_purchase`` (identity until :meth:`fit`).

    ``clv_scale`` is what the map does to the validation rows' total (calibrated total over
    raw total), reported beside the evaluation's before-and-after figures.
    """

    clv_scale: float = 1.0
    clv_knots_x: list[float] = field(default_factory=list)
    clv_knots_y: list[float] = field(default_factory=list)
    p_knots_x: list[float] = field(default_factory=list)
    p_knots_y: list[float] = field(default_factory=list)
    rows: int = 0

    def fit(self, predicted_clv: np.ndarray, actual: np.ndarray,
            p_purchase: np.ndarray | None = None,
            purchased: np.ndarray | None = None, clv: bool = True) -> Calibration:
        """Fit on validation rows: forecasts, labels, and (optionally) the purchase
        probabilities with the 0/1 outcome; ``clv=False`` fits the ``p_purchase`` map only."""
        pred = np.nan_to_num(np.asarray(predicted_clv, float))
        actual = np.asarray(actual, float)
        self.rows = len(pred)
        if clv:
            kx, ky = isotonic(pred, actual)
            self.clv_knots_x, self.clv_knots_y = kx.tolist(), ky.tolist()
            total = pred.sum()
            self.clv_scale = (float(self._clv(pred).sum() / total) if total > 0 and len(kx)
                              else 1.0)
        if p_purchase is not None and purchased is not None:
            p = np.asarray(p_purchase, float)
            ok = np.isfinite(p)
            kx, ky = isotonic(p[ok], np.asarray(purchased, float)[ok])
            self.p_knots_x, self.p_knots_y = kx.tolist(), ky.tolist()
        return self

    def _clv(self, values: np.ndarray) -> np.ndarray:
        if not self.clv_knots_x:
            return np.asarray(values, float)
        return np.maximum(apply_knots(values, self.clv_knots_x, self.clv_knots_y,
                                      proportional=True), 0.0)

    def apply(self, pred: Prediction) -> Prediction:
        """``pred`` with the map on ``predicted_clv`` (the quantiles scaled by the same factor
        per customer, so the forecast distribution keeps its shape) and on ``p_purchase``
        (unchanged where the model has none or no map was fitted)."""
        raw = np.asarray(pred.predicted_clv, float)
        clv = self._clv(raw)
        factor = np.divide(clv, raw, out=np.ones_like(raw), where=raw > 0)

        def scaled(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else np.asarray(values, float) * factor

        p = pred.p_purchase
        if p is not None and self.p_knots_x:
            p = np.clip(apply_knots(p, self.p_knots_x, self.p_knots_y), 0.0, 1.0)
        return replace(pred, predicted_clv=clv, p_purchase=p, clv_p10=scaled(pred.clv_p10),
                       clv_p50=scaled(pred.clv_p50), clv_p90=scaled(pred.clv_p90))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: dict) -> Calibration:
        return cls(**payload)
