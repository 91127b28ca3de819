"""Shared fixtures: small configurations in temporary directories, and one real pipeline run."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from rich.console import Console

from clv_models.config import Config, load_config


def small_config(data_dir: Path, customers: int = 1_000, **overrides) -> Config:
    """A small, fast configuration writing under ``data_dir``."""
    return load_config(None, {
        "data_dir": data_dir, "shop.customers": customers, "shop.seed": 11,
        "deep.epochs": 25, "deep.batch_size": 1024, "xgboost.n_estimators": 300,
        **overrides,
    })


@pytest.fixture(autouse=True)
def _restore_clv_environment():
    """Put the ``CLV_*`` environment back after each test.

    Feast and dbt read their paths from ``CLV_*`` variables, which the product exports into its
    own process (``features._activate``); ``CLV_DATA_DIR`` also outranks a config file's
    ``data_dir``. Without this, one test's data directory leaks into the next ones.
    """
    saved = {k: v for k, v in os.environ.items() if k.startswith("CLV_")}
    yield
    for key in [k for k in os.environ if k.startswith("CLV_") and k not in saved]:
        del os.environ[key]
    os.environ.update(saved)


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory):
    """The whole chain (real dbt, Feast, XGBoost, torch) on a 4,000-customer shop, run once."""
    from clv_models.pipeline import Pipeline

    cfg = small_config(tmp_path_factory.mktemp("e2e") / "data", customers=4_000)
    pipeline = Pipeline(cfg, console=Console(width=140, record=True))
    pipeline.run()
    return pipeline


@pytest.fixture
def as_of() -> dt.date:
    return dt.date(2025, 1, 1)
