"""A stacked blend: convex weights on the other models' CLV forecasts.

The weights are fitted by least squares of the label on the component forecasts of out-of-time
rows (rows the components were not fitted on), constrained to be non-negative and to sum to 1:
the blend is a weighted mean of forecasts, so it never ranks a customer by anything but the
components' views of that customer, a component that does not help gets weight 0, and the
blend's level stays within the components' levels. Without the sum constraint the weights would
also rescale the forecasts to the level of the one horizon they were fitted on, which does not
carry to the next horizon; correcting the level is the calibration's job
(:mod:`clv_models.models.calibration`), kept only where it helps out of cutoff. A convex blend
of a learner and BG/NBD + Gamma-Gamma is shrinkage of the learner towards the BTYD forecast, by
the amount the validation rows support: on a shop where BG/NBD is the best single forecast the
blend leans on it; where a learned model adds something, the blend takes that too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize

from clv_models.core.errors import DataError
from clv_models.models.base import CLVModel, Features, Prediction, load_model, n_rows

WEIGHTS_FILE = "blend.json"


def convex_weights(forecasts: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Weights ``w >= 0`` with ``sum(w) = 1`` minimising ``|forecasts @ w - actual|²``.

    Solved on the ``k × k`` Gram matrix by sequential least squares from equal weights
    (deterministic); the result is clipped to the simplex against round-off.

    Parameters
    ----------
    forecasts
        ``[n, k]``: each column one component's forecast of the ``n`` rows.
    actual
        ``[n]``: the label.
    """
    forecasts = np.nan_to_num(np.asarray(forecasts, float))
    actual = np.asarray(actual, float)
    k = forecasts.shape[1]
    if k == 1:
        return np.ones(1)
    n = max(len(actual), 1)
    scale = max(float(np.abs(forecasts).max(initial=0.0)), float(np.abs(actual).max(initial=0.0)),
                1e-12)
    f, y = forecasts / scale, actual / scale
    gram, cross = f.T @ f / n, f.T @ y / n
    result = optimize.minimize(
        lambda w: w @ gram @ w - 2 * cross @ w, np.full(k, 1.0 / k),
        jac=lambda w: 2 * (gram @ w - cross), method="SLSQP", bounds=[(0.0, 1.0)] * k,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0,
                      "jac": lambda w: np.ones_like(w)}],
        options={"ftol": 1e-12, "maxiter": 200})
    weights = np.clip(result.x, 0.0, None)
    return weights / weights.sum() if weights.sum() > 0 else np.full(k, 1.0 / k)


class BlendCLV(CLVModel):
    """Weighted mean of component models' forecasts (weights from :func:`convex_weights`).

    ``predicted_clv`` = Σ w_j · predicted_clv_j; ``p_purchase`` is the average of the components'
    ``p_purchase`` weighted by ``w`` (components without one are left out). The quantiles are
    Σ w_j · quantile_j when every weighted component has them: the quantiles of the weighted sum
    of the components' forecasts if those move together (quantile averaging); otherwise none.
    No drivers. The components are saved models beside this one (``<models_dir>/<name>``);
    loading checks their versions.

    Parameters
    ----------
    components
        The fitted component models by name.
    """

    name = "blend"

    def __init__(self, components: Mapping[str, CLVModel] | None = None) -> None:
        self.components = dict(components or {})
        self.weights: dict[str, float] = {}
        self.feature_names = self._union_features()
        self.metadata = {}

    def _union_features(self) -> list[str]:
        return list(dict.fromkeys(c for m in self.components.values() for c in m.feature_names))

    @property
    def feature_service(self) -> str:  # type: ignore[override]
        """The widest input set of the components (``clv_v2`` holds ``clv_v1``)."""
        services = {m.feature_service for m in self.components.values()}
        return "clv_v2" if "clv_v2" in services else "clv_v1"

    def fit_forecasts(self, forecasts: Mapping[str, np.ndarray], actual: np.ndarray) -> BlendCLV:
        """Fit the weights on out-of-time forecasts (``name -> [n]``) of the components."""
        names = [n for n in self.components if n in forecasts]
        w = convex_weights(np.column_stack([forecasts[n] for n in names]), actual)
        self.weights = {n: float(v) for n, v in zip(names, w, strict=True)}
        self.metadata = {"weights": self.weights,
                         "component_versions": {n: self.components[n].version for n in names}}
        return self

    def fit(self, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame | None = None,
            y_val: np.ndarray | None = None) -> BlendCLV:
        """Fit the weights on the components' forecasts of ``X_val`` (else ``X``)."""
        rows, label = (X, y) if X_val is None or y_val is None else (X_val, y_val)
        forecasts = {n: m.predict(rows).predicted_clv for n, m in self.components.items()}
        return self.fit_forecasts(forecasts, np.asarray(label, float))

    def combine(self, predictions: Mapping[str, Prediction]) -> Prediction:
        """The blend of the components' predictions (``name -> Prediction``) of the same rows."""
        if not self.weights:
            raise RuntimeError("BlendCLV: fit or load the blend before predicting")
        clv = sum(w * predictions[n].predicted_clv for n, w in self.weights.items())
        with_p = {n: w for n, w in self.weights.items()
                  if predictions[n].p_purchase is not None and w > 0}
        p = None
        if with_p:
            total = sum(with_p.values())
            p = sum(w * predictions[n].p_purchase for n, w in with_p.items()) / total
        used = [n for n, w in self.weights.items() if w > 0]
        quantiles: list[np.ndarray | None] = [None, None, None]
        if used and all(predictions[n].clv_p50 is not None for n in used):
            quantiles = [np.asarray(sum(self.weights[n] * predictions[n].quantiles[k]
                                        for n in used), float) for k in range(3)]
        return Prediction(predicted_clv=np.asarray(clv, float), p_purchase=p,
                          clv_p10=quantiles[0], clv_p50=quantiles[1], clv_p90=quantiles[2])

    def predict(self, X: Features, explain: bool = False) -> Prediction:
        """Each component with weight > 0 predicts ``X``; the blend combines them."""
        used = {n: self.components[n].predict(X) for n, w in self.weights.items() if w > 0}
        zero = np.zeros(n_rows(X))
        predictions = {n: used.get(n, Prediction(predicted_clv=zero)) for n in self.weights}
        return self.combine(predictions)

    def _save_weights(self, directory: Path) -> None:
        if not self.weights:
            raise RuntimeError("BlendCLV: nothing to save before fit")
        payload = {"weights": self.weights,
                   "component_versions": {n: self.components[n].version for n in self.weights}}
        (directory / WEIGHTS_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True))

    def _load_weights(self, directory: Path) -> None:
        payload = json.loads((directory / WEIGHTS_FILE).read_text())
        self.weights = {n: float(w) for n, w in payload["weights"].items()}
        self.components = {}
        for name, version in payload["component_versions"].items():
            component = load_model(directory.parent / name)
            if component.version != version:
                raise DataError(
                    f"{directory}: blend of {name} {version}, but {name} is now "
                    f"{component.version}", hint="run `clv train` again (it refits the blend)")
            self.components[name] = component
