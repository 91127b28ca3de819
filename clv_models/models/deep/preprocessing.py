"""Preprocessing of the deep model's inputs: telling numeric, categorical and sequence columns
apart, log-compression, standardisation statistics and categorical vocabularies."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

MIN_CATEGORY_COUNT = 5  # rarer categories share the reserved "unknown" index 0


MAX_CATEGORIES = 1_000  # the most frequent ones; the rest are "unknown" too


def compress(values: np.ndarray) -> np.ndarray:
    """``sign(x) * log1p(|x|)``: amounts and counts are heavy-tailed."""
    return np.sign(values) * np.log1p(np.abs(values))


def nan_stats(z: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation ignoring NaN; an all-null or constant column gets 0, 1."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, std = np.nanmean(z, axis=axis), np.nanstd(z, axis=axis)
    std[~(std > 1e-9)] = 1.0
    return np.nan_to_num(mean), std


def column_kind(col: pd.Series) -> str:
    """``numeric``, ``categorical`` (strings) or ``sequence`` (a list/array per row), by the
    dtype or else the first present value. An all-missing object column (e.g. ``country``
    without a customers table) is categorical: every row maps to "unknown", and values that
    appear later are looked up instead of failing a numeric conversion."""
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return "numeric"
    for v in col:
        if isinstance(v, (list, tuple, np.ndarray)):
            return "sequence"
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            continue
        return "numeric" if isinstance(v, (int, float, np.number)) else "categorical"
    return "categorical"


def first_length(col: pd.Series) -> int:
    for v in col:
        if isinstance(v, (list, tuple, np.ndarray)):
            return len(v)
    return 0


def vocabulary(col: pd.Series) -> dict:
    """Values seen at least ``MIN_CATEGORY_COUNT`` times (at most ``MAX_CATEGORIES``, most
    frequent first, then by value), their counts, and how many rows map to "unknown" (index 0:
    missing or rare values)."""
    counts = col.dropna().astype(str).value_counts()
    counts = counts[counts >= MIN_CATEGORY_COUNT]
    counts = counts.reset_index().set_axis(["value", "n"], axis=1)
    counts = counts.sort_values(["n", "value"], ascending=[False, True]).head(MAX_CATEGORIES)
    return {"values": counts["value"].tolist(), "counts": [int(n) for n in counts["n"]],
            "unknown_count": int(len(col) - counts["n"].sum())}


def encode(col: Sequence[object], values: Sequence[str] | Mapping[str, int]) -> np.ndarray:
    """Index of each value (as text) in the vocabulary ``values`` plus 1; 0 for missing (None,
    NaN, NA) and unseen values. ``values`` may be given as ``{value: index + 1}`` already
    (:meth:`DeepCLV._codes`, built once per vocabulary)."""
    codes = values if isinstance(values, Mapping) else {v: i for i, v in
                                                         enumerate(values, start=1)}
    return np.fromiter((0 if is_missing(v) else codes.get(str(v), 0) for v in col),
                       dtype=np.int64, count=len(col))


def is_missing(value: object) -> bool:
    """Whether a categorical value is missing, as pandas' ``isna`` says for a scalar."""
    if value is None or isinstance(value, str):
        return value is None
    return bool(pd.api.types.is_scalar(value) and pd.isna(value))
