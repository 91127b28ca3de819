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


#: The ``CLV_*`` environment the test session started with.
_CLV_ENVIRONMENT = {k: v for k, v in os.environ.items() if k.startswith("CLV_")}


def _reset_clv_environment() -> None:
    for key in [k for k in os.environ if k.startswith("CLV_")]:
        del os.environ[key]
    os.environ.update(_CLV_ENVIRONMENT)


@pytest.fixture(autouse=True)
def _restore_clv_environment():
    """Put the ``CLV_*`` environment back to the session's start after each test.

    Feast and dbt read their paths from ``CLV_*`` variables, which the product exports into its
    own process (``features._activate``), and ``CLV_DATA_DIR`` outranks a config file's
    ``data_dir``. A module fixture that activates another data directory (e.g. a copied shop)
    would otherwise leak it into every later module; the reset runs before and after each test.
    """
    _reset_clv_environment()
    yield
    _reset_clv_environment()


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
