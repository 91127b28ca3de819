"""XGBoost baseline: a Tweedie regressor for spend plus a classifier for ``p_purchase``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from clv_models.core.config import XGBoostConfig
from clv_models.models.base import CLVModel, Features, Prediction, top_drivers
from clv_models.models.btyd import DATE_COLUMN, BTYDInputs, input_names

#: Validation rows (at most) whose SHAP values give the global feature importance at fit time.
IMPORTANCE_ROWS = 5_000


class XGBoostCLV(CLVModel):
    """Gradient-boosted trees on the tabular features.

    Spend in the horizon is zero for most customers and heavy-tailed for the rest, so the
    regressor uses the Tweedie objective (a compound Poisson-gamma with a log link), which models
    exactly that shape and predicts the mean. A second model (logistic) gives ``p_purchase``.
    Both stop early on the validation set (a later as-of date than the training rows).

    With ``params.btyd_inputs`` the trees also see the BG/NBD + Gamma-Gamma forecast of each
    row (:class:`~clv_models.models.btyd.BTYDInputs`, fitted per as-of date on the history
    before it), so on little data they refine the BTYD forecast instead of relearning it.

    Parameters
    ----------
    params
        Hyper-parameters; see :class:`clv_models.core.config.XGBoostConfig`.
    seed
        Random seed (XGBoost's ``hist`` method is deterministic for a seed on CPU).
    horizon_days
        The prediction horizon (of the BTYD inputs).
    """

    name = "xgboost"
    takes_dates = True

    def __init__(self, params: XGBoostConfig | None = None, seed: int = 0,
                 horizon_days: int = 180) -> None:
        self.params = params or XGBoostConfig()
        self.seed = seed
        self.horizon_days = horizon_days
        self.feature_names: list[str] = []
        self.btyd: BTYDInputs | None = None
        self.metadata = {}

    @property
    def input_names(self) -> list[str]:
        """The trees' input columns: the features, then the BTYD inputs when used."""
        return input_names(self.feature_names, self.btyd)

    def _matrix(self, X: Features, btyd: np.ndarray | None = None) -> np.ndarray:
        values = self._check_features(X)
        if self.btyd is None:
            return values
        return np.hstack([values, self.btyd.transform(X) if btyd is None else btyd])

    def _params(self, objective: str) -> dict:
        p = self.params
        params = {"objective": objective, "eta": p.learning_rate, "max_depth": p.max_depth,
                  "subsample": 0.8, "colsample_bytree": 0.9, "min_child_weight": 5,
                  "tree_method": "hist", "seed": self.seed, "nthread": p.n_jobs or 0}
        if objective == "reg:tweedie":
            params["tweedie_variance_power"] = p.tweedie_variance_power
            params["eval_metric"] = f"tweedie-nloglik@{p.tweedie_variance_power}"
        else:
            params["eval_metric"] = "logloss"
        return params

    def _train(self, objective: str, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame,
               y_val: np.ndarray) -> xgb.Booster:
        dtrain = xgb.DMatrix(X, label=y, feature_names=self.input_names)
        dval = xgb.DMatrix(X_val, label=y_val, feature_names=self.input_names)
        history: dict = {}
        booster = xgb.train(self._params(objective), dtrain,
                            num_boost_round=self.params.n_estimators,
                            evals=[(dval, "validation")],
                            early_stopping_rounds=self.params.early_stopping_rounds,
                            evals_result=history, verbose_eval=False)
        self._history = getattr(self, "_history", {})
        for metric, values in history.get("validation", {}).items():
            self._history[metric] = [round(float(v), 6) for v in values]
        return booster

    def fit(self, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame | None = None,
            y_val: np.ndarray | None = None) -> XGBoostCLV:
        """Fit both boosters; ``X_val``/``y_val`` drive early stopping (required).

        ``X`` may carry an ``as_of_date`` column (one cross-section per date): the BTYD inputs
        are then fitted per date; it is never an input itself.
        """
        if X_val is None or y_val is None:
            raise ValueError("XGBoostCLV.fit needs a validation set for early stopping")
        self.feature_names = [c for c in X.columns if c != DATE_COLUMN]
        X_val = X_val[self.feature_names]
        self.btyd, fit_btyd = BTYDInputs.for_learner(self.params.btyd_inputs, self.horizon_days,
                                                     X, X_val)
        train, val = self._matrix(X, fit_btyd), self._matrix(X_val)
        y, y_val = np.asarray(y, float), np.asarray(y_val, float)
        self._history = {}
        self.regressor = self._train("reg:tweedie", train, y, val, y_val)
        self.classifier = self._train("binary:logistic", train, (y > 0).astype(float),
                                      val, (y_val > 0).astype(float))
        gain = self.regressor.get_score(importance_type="gain")
        total = sum(gain.values()) or 1.0
        self.metadata = {
            "params": vars(self.params), "seed": self.seed, "horizon_days": self.horizon_days,
            "best_iteration": {"regressor": int(self.regressor.best_iteration),
                               "classifier": int(self.classifier.best_iteration)},
            "feature_importance_gain": {k: v / total for k, v in
                                        sorted(gain.items(), key=lambda kv: -kv[1])},
            "feature_importance": self._shap_importance(val),
            "btyd_inputs": None if self.btyd is None else self.btyd.state(),
            # validation metric per boosting round of each booster (training curves)
            "validation_history": self._history,
        }
        return self

    def _shap_importance(self, X_val: np.ndarray) -> dict[str, float]:
        """Global importance: mean |SHAP value| of each feature over the validation rows.

        SHAP values (``pred_contribs``) are on the log scale of the Tweedie mean, so a feature's
        importance is its mean absolute push on log predicted CLV, measured on a later as-of
        date than the fitted rows. Unlike the booster's gain, this is the same attribution as the
        per-customer ``top_drivers``. A seeded sample of :data:`IMPORTANCE_ROWS` rows keeps it
        cheap.
        """
        if len(X_val) > IMPORTANCE_ROWS:
            rows = np.random.default_rng(self.seed).choice(len(X_val), IMPORTANCE_ROWS,
                                                           replace=False)
            X_val = X_val[np.sort(rows)]
        dmat = xgb.DMatrix(X_val, feature_names=self.input_names)
        contrib = self.regressor.predict(dmat, pred_contribs=True,
                                         iteration_range=self._best(self.regressor))
        mean_abs = np.abs(contrib[:, :-1]).mean(axis=0)  # the last column is the bias
        order = np.argsort(-mean_abs, kind="stable")
        return {self.input_names[j]: float(mean_abs[j]) for j in order}

    @staticmethod
    def _best(booster: xgb.Booster) -> tuple[int, int]:
        return (0, int(booster.best_iteration) + 1)

    def predict(self, X: Features, explain: bool = False) -> Prediction:
        """Mean spend and purchase probability; ``explain`` adds SHAP top drivers.

        The features go to XGBoost as a float matrix (NaN = missing, XGBoost's default), so
        a column that pandas holds as ``object`` (all null in a small batch) predicts like
        any other. ``inplace_predict`` skips building a DMatrix: the same trees and
        predictor, much less fixed cost per call for the endpoint's single rows.
        """
        values = self._matrix(X)
        clv = self.regressor.inplace_predict(values, iteration_range=self._best(self.regressor))
        p = self.classifier.inplace_predict(values,
                                            iteration_range=self._best(self.classifier))
        drivers = None
        if explain:
            # SHAP values on the log scale of the Tweedie mean (last column is the bias).
            dmat = xgb.DMatrix(values, feature_names=self.input_names)
            contrib = self.regressor.predict(dmat, pred_contribs=True,
                                             iteration_range=self._best(self.regressor))
            drivers = top_drivers(contrib[:, :-1], self.input_names)
        return Prediction(predicted_clv=np.asarray(clv, dtype=float),
                          p_purchase=np.asarray(p, dtype=float), top_drivers=drivers)

    def _save_weights(self, directory: Path) -> None:
        self.regressor.save_model(directory / "regressor.json")
        self.classifier.save_model(directory / "classifier.json")

    def _load_weights(self, directory: Path) -> None:
        self.params = XGBoostConfig(**self.metadata.get("params", {}))
        self.seed = self.metadata.get("seed", 0)
        self.horizon_days = int(self.metadata.get("horizon_days", 180))
        self.btyd = BTYDInputs.from_state(self.horizon_days, self.metadata.get("btyd_inputs"))
        self.regressor = xgb.Booster(model_file=str(directory / "regressor.json"))
        self.classifier = xgb.Booster(model_file=str(directory / "classifier.json"))
