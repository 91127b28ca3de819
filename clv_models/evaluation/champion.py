"""The champion: the model or blend a shop's forecasts come from, chosen on validation rows only.

Every candidate (each model and their :class:`~clv_models.models.blend.BlendCLV`) is scored on
the validation as-of date of the split: rows none of the models was fitted on, whose labels end
on or before the evaluation date, so the evaluation date's labels never take part in a decision.
The blend's own validation score comes from weights cross-fitted by customer (each customer's
blended forecast uses weights fitted on the other customers), so it is not judged on the rows
its weights were fitted to.

Rule (:data:`RULE`): a candidate is admissible when it is not worse than BG/NBD + Gamma-Gamma on
any of :data:`ADMISSION_METRICS` and its RMSE is lower with confidence: the upper end of the 95 %
paired bootstrap interval of its RMSE minus BG/NBD's (customers resampled, both scored on the
same resample) is below zero. Among the admissible ones the lowest validation RMSE wins.
BG/NBD + Gamma-Gamma is always admissible, so on a shop where it is the best forecast, or where
the evidence against it is thin (one validation date of a small shop), the champion is BG/NBD or
a candidate that clearly beats it, never a learner that merely got lucky.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from clv_models.core import atomic, metrics
from clv_models.core.config import Config
from clv_models.core.errors import NotBuiltError
from clv_models.models import BlendCLV, CLVModel, Prediction
from clv_models.models.blend import convex_weights
from clv_models.models.calibration import Calibration
from clv_models.models.training import MODEL_NAMES, TARGET, TrainingSet, training_metadata

#: The model every candidate must not be worse than.
REFERENCE = "bgnbd_gg"
#: What the champion is chosen from, and what ``clv score`` scores: every model and the blend.
CANDIDATES = (*MODEL_NAMES, BlendCLV.name)
#: Metrics on which an admissible candidate is at least as good as :data:`REFERENCE`.
ADMISSION_METRICS = ("rmse", "normalized_gini")
#: The metric that ranks the admissible candidates (lower is better).
RANK_METRIC = "rmse"
#: Folds (by customer) of the blend weights' cross-fitting on the validation rows.
BLEND_FOLDS = 5
CHAMPION_FILE = "champion.json"
#: Bootstrap replicates of the validation RMSE difference to :data:`REFERENCE`.
BOOTSTRAP = 200
RULE = (f"admissible: not worse than {REFERENCE} on {' and '.join(ADMISSION_METRICS)} at the "
        f"validation date, and the 95 % paired bootstrap interval of the {RANK_METRIC} "
        f"difference to {REFERENCE} below 0; champion: the admissible candidate with the lowest "
        f"{RANK_METRIC}")
LOWER_IS_BETTER = {"mae", "rmse", "decile_mape"}


@dataclass
class ChampionChoice:
    """The chosen candidate and the evidence.

    ``evidence``: each candidate's metrics at the validation date of the final fit;
    ``cutoff_evidence``: each candidate's mean metrics over the validation cutoffs and its
    difference to the reference with a bootstrap interval
    (:func:`clv_models.evaluation.selection.choose`), empty when the choice rests on the
    validation date only; ``basis`` says which. ``calibration``: each candidate's
    :class:`~clv_models.models.calibration.Calibration` (as a dict), fitted on the same
    out-of-time rows, applied wherever the candidate's forecasts are used (:func:`calibrations`).
    """

    champion: str
    validation_date: str
    rule: str = RULE
    weights: dict[str, float] = field(default_factory=dict)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    basis: str = "the validation date only"
    validation_cutoffs: list[str] = field(default_factory=list)
    cutoff_evidence: list[dict[str, Any]] = field(default_factory=list)
    calibration: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=float)


def customer_folds(ids: np.ndarray, folds: int) -> np.ndarray:
    """A stable fold number per customer id (CRC-32 of the id), the same in every run."""
    return np.array([zlib.crc32(str(i).encode()) % folds for i in ids])


def cross_fitted_blend(forecasts: dict[str, np.ndarray], actual: np.ndarray, ids: np.ndarray,
                       folds: int = BLEND_FOLDS) -> np.ndarray:
    """Each row's blended forecast with weights fitted on the other folds' customers."""
    names = list(forecasts)
    matrix = np.column_stack([forecasts[n] for n in names])
    fold = customer_folds(ids, folds)
    out = np.zeros(len(actual))
    for k in range(folds):
        held = fold == k
        if held.any():
            w = convex_weights(matrix[~held], actual[~held])
            out[held] = np.nan_to_num(matrix[held]) @ w
    return out


def admissible(row: dict[str, float], reference: dict[str, float], suffix: str = "") -> bool:
    """Whether ``row`` is not worse than ``reference`` on every admission metric (read under
    ``<metric><suffix>``, e.g. ``rmse_mean`` of a backtest summary)."""
    for key in ADMISSION_METRICS:
        mine, ref = row.get(key + suffix), reference.get(key + suffix)
        if mine is None or ref is None or np.isnan(mine):
            return False
        if (mine > ref) if key in LOWER_IS_BETTER else (mine < ref):
            return False
    return True


def rmse_difference_high(actual: np.ndarray, mine: np.ndarray, reference: np.ndarray,
                         replicates: int = BOOTSTRAP, seed: int = 0) -> float:
    """The upper end (97.5th percentile) of the paired bootstrap RMSE difference
    ``rmse(mine) - rmse(reference)`` over customers resampled with replacement."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(actual), size=(replicates, len(actual)))
    e1, e0 = (mine - actual)[idx], (reference - actual)[idx]
    diff = np.sqrt((e1**2).mean(axis=1)) - np.sqrt((e0**2).mean(axis=1))
    return float(np.percentile(diff, 97.5))


def choose(models: dict[str, CLVModel], data: TrainingSet) -> tuple[ChampionChoice, BlendCLV]:
    """Fit the blend and choose the champion on ``data``'s validation rows.

    ``models`` are fitted on the split's fit rows and must include :data:`REFERENCE`.
    """
    if REFERENCE not in models:
        raise ValueError(f"the champion is chosen against {REFERENCE}; it is not among "
                         f"{sorted(models)}")
    val = data.part("validation")
    y = val[TARGET].to_numpy(dtype=float)
    purchased = val["label_purchase_days"].to_numpy() > 0
    X = val[data.feature_names]
    predictions = {n: m.predict(X) for n, m in models.items()}
    blend = BlendCLV(models).fit_forecasts({n: p.predicted_clv for n, p in predictions.items()},
                                           y)
    honest = cross_fitted_blend({n: p.predicted_clv for n, p in predictions.items()}, y,
                                val["customer_id"].to_numpy())
    candidates: dict[str, Prediction] = {
        **predictions,
        "blend": Prediction(predicted_clv=honest,
                            p_purchase=blend.combine(predictions).p_purchase)}
    scores = {n: metrics.evaluate(y, p.predicted_clv, p.p_purchase, purchased, p.quantiles)
              for n, p in candidates.items()}
    reference = scores[REFERENCE]
    evidence = []
    for n, s in scores.items():
        high = rmse_difference_high(y, candidates[n].predicted_clv,
                                    candidates[REFERENCE].predicted_clv)
        ok = n == REFERENCE or (admissible(s, reference) and high < 0)
        evidence.append({"model": n, "admissible": ok, "rmse_difference_high": high, **s})
    ranked = sorted((r for r in evidence if r["admissible"]),
                    key=lambda r: (r[RANK_METRIC], r["model"] != REFERENCE))
    # One date gives no out-of-sample evidence that a map of predicted_clv helps: the
    # p_purchase map only (clv_models.evaluation.selection keeps maps that helped).
    calibration = {n: Calibration().fit(p.predicted_clv, y, p.p_purchase, purchased,
                                        clv=False).to_dict()
                   for n, p in candidates.items()}
    choice = ChampionChoice(champion=ranked[0]["model"],
                            validation_date=str(data.split.validation_date),
                            weights=blend.weights, evidence=evidence,
                            versions={n: m.version for n, m in models.items()},
                            calibration=calibration)
    return choice, blend


def save(cfg: Config, data: TrainingSet, choice: ChampionChoice, blend: BlendCLV) -> None:
    """Save the blend beside its components and the choice as ``models/champion.json``."""
    c = cfg.resolved()
    blend.save(c.models_dir / "blend",
               extra=training_metadata(cfg, data, blend, data.fingerprint()))
    choice.versions["blend"] = blend.version
    atomic.write_text(c.models_dir / CHAMPION_FILE, choice.to_json())


def calibrations(choice: ChampionChoice) -> dict[str, Calibration]:
    """Each candidate's calibration (the identity for a candidate without one, e.g. a choice
    saved before calibrations were fitted)."""
    return {n: Calibration.from_dict(choice.calibration[n]) if n in choice.calibration
            else Calibration() for n in CANDIDATES}


def load(cfg: Config) -> ChampionChoice:
    """The saved choice (``clv train`` writes it)."""
    path = cfg.resolved().models_dir / CHAMPION_FILE
    if not path.exists():
        raise NotBuiltError(f"no champion chosen yet ({path} is missing)",
                            hint="run `clv train` (it fits the models and chooses the champion)")
    return ChampionChoice(**json.loads(path.read_text()))
