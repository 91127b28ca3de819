"""The interface every CLV estimator implements, and artefact saving/loading."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

import numpy as np
import pandas as pd

from clv_models.core import atomic
from clv_models.core.errors import DataError, NotBuiltError

METADATA_FILE = "metadata.json"
#: Model families by :attr:`CLVModel.name`, filled as their modules are imported
#: (``clv_models.models`` imports every family).
MODEL_CLASSES: dict[str, type[CLVModel]] = {}

#: What ``predict`` takes: a DataFrame (batch scoring, evaluation) or columns as a mapping of
#: name -> values per row (the online endpoint's few rows, as Feast's ``to_dict`` gives them,
#: without the cost of building a DataFrame). Both give the same predictions.
Features: TypeAlias = pd.DataFrame | Mapping[str, Sequence[Any]]


def feature_columns(X: Features) -> list[str]:
    """The column names of ``X``."""
    return list(X.columns if isinstance(X, pd.DataFrame) else X.keys())


def numeric_matrix(X: Features, names: list[str]) -> np.ndarray:
    """``float64 [n, len(names)]`` of the columns ``names``; missing values are NaN."""
    if isinstance(X, pd.DataFrame):
        return X[names].to_numpy(dtype=np.float64, na_value=np.nan)
    if not names:
        return np.zeros((n_rows(X), 0))
    return np.ascontiguousarray(np.array([X[c] for c in names], dtype=np.float64).T)


def object_column(X: Features, name: str) -> np.ndarray:
    """One column as a 1-D object array (one Python value, list or array per row)."""
    if isinstance(X, pd.DataFrame):
        return X[name].to_numpy(dtype=object)
    values = X[name]
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):  # element-wise: a list of equal-length lists must stay 1-D
        out[i] = v
    return out


def n_rows(X: Features) -> int:
    """The number of rows of ``X``."""
    if isinstance(X, pd.DataFrame):
        return len(X)
    return len(next(iter(X.values()))) if len(X) else 0


@dataclass
class Prediction:
    """Predictions for a batch of customers (arrays aligned with the input rows).

    ``p_purchase`` and the quantiles are ``None`` where a model does not produce them.
    """

    predicted_clv: np.ndarray
    p_purchase: np.ndarray | None = None
    clv_p10: np.ndarray | None = None
    clv_p50: np.ndarray | None = None
    clv_p90: np.ndarray | None = None
    top_drivers: list[str | None] | None = None

    @property
    def quantiles(self) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """``(clv_p10, clv_p50, clv_p90)``."""
        return self.clv_p10, self.clv_p50, self.clv_p90


class CLVModel:
    """Base class: predicts net revenue over the horizon from a feature frame.

    Subclasses set :attr:`name`, implement :meth:`fit`, :meth:`predict`, :meth:`_save_weights`
    and :meth:`_load_weights`; this class handles metadata and the artefact's version (a content
    hash of the saved files, so the same weights always get the same version).
    """

    name: ClassVar[str] = "base"
    # The Feast feature service of the model's input set (training retrieval and online reads
    # use it; saved as metadata["feature_service"]). clv_v1: the numeric tabular features.
    feature_service: ClassVar[str] = "clv_v1"
    # Whether ``fit`` takes the training rows' ``as_of_date`` column beside the features (to
    # fit something per as-of date; never an input of the model itself).
    takes_dates: ClassVar[bool] = False
    feature_names: list[str]
    metadata: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Register each model family by its name, so :func:`load_model` can find its class
        without this module importing the families (which import it)."""
        super().__init_subclass__(**kwargs)
        if "name" in vars(cls):  # a family, not a subclass of one (e.g. a test double)
            MODEL_CLASSES[cls.name] = cls

    def fit(self, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame | None = None,
            y_val: np.ndarray | None = None) -> CLVModel:
        raise NotImplementedError

    def predict(self, X: Features, explain: bool = False) -> Prediction:
        """Predictions for the rows of ``X`` (a DataFrame or a mapping of columns)."""
        raise NotImplementedError

    # -- persistence --------------------------------------------------------------------------
    def _save_weights(self, directory: Path) -> None:
        raise NotImplementedError

    def _load_weights(self, directory: Path) -> None:
        raise NotImplementedError

    def save(self, directory: Path, extra: dict[str, Any] | None = None) -> str:
        """Write the artefact to ``directory`` and return its version (content hash).

        Atomic (:mod:`clv_models.core.atomic`): the files go to a new folder, and ``directory``
        becomes a link to it in one step once they are complete, so a crash leaves the
        previous artefact or the new one, never new weights beside the old metadata.
        """
        staged = atomic.staging_folder(Path(directory))
        try:
            self._save_weights(staged)
            version = content_version(staged)
            self.metadata = {**getattr(self, "metadata", {}), **(extra or {}),
                             "model_name": self.name, "model_version": version,
                             "feature_names": self.feature_names}
            (staged / METADATA_FILE).write_text(json.dumps(self.metadata, indent=2,
                                                           default=str))
            atomic.publish_folder(staged, Path(directory))
        finally:
            shutil.rmtree(staged, ignore_errors=True)  # left only when saving failed
        return version

    @property
    def version(self) -> str:
        return self.metadata.get("model_version", "unsaved")

    def _check_features(self, X: Features) -> np.ndarray:
        """The model's features of ``X`` as ``float64 [n, p]`` (NaN where missing); a
        KeyError names the columns ``X`` lacks."""
        self._require_columns(X)
        return numeric_matrix(X, self.feature_names)

    def _require_columns(self, X: Features) -> None:
        columns = set(feature_columns(X))
        missing = [c for c in self.feature_names if c not in columns]
        if missing:
            raise KeyError(f"{self.name}: feature columns missing from input: {missing}")


def content_version(directory: Path) -> str:
    """A saved artefact's version: the hash of its files but the metadata (names and bytes)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.iterdir() if p.name != METADATA_FILE):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def load_model(directory: Path) -> CLVModel:
    """Load a saved artefact. Only JSON metadata and tensor/tree files are read: no pickle.

    The class comes from the registry of model families (:data:`MODEL_CLASSES`), which every
    subclass of :class:`CLVModel` joins by its :attr:`~CLVModel.name`.
    """
    meta_path = directory / METADATA_FILE
    if not meta_path.exists():
        raise NotBuiltError(f"no trained model in {directory}", hint="run `clv train` first")
    metadata = json.loads(meta_path.read_text())
    cls = MODEL_CLASSES.get(metadata.get("model_name"))
    if cls is None:
        raise DataError(f"{meta_path}: unknown model_name {metadata.get('model_name')!r}; "
                        f"known: {', '.join(sorted(MODEL_CLASSES))}")
    model = cls.__new__(cls)
    model.metadata = metadata
    model.feature_names = list(metadata["feature_names"])
    model._load_weights(directory)
    return model


def top_drivers(contributions: np.ndarray, feature_names: list[str], k: int = 3) -> list[str]:
    """JSON text per row: the ``k`` features with the largest absolute contribution."""
    idx = np.argsort(-np.abs(contributions), axis=1)[:, :k]
    out = []
    for row, cols in zip(contributions, idx, strict=True):
        out.append(json.dumps([{"feature": feature_names[j],
                                "contribution": round(float(row[j]), 4)} for j in cols]))
    return out
