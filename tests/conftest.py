"""Shared fixtures: small configurations in temporary directories, and one real pipeline run."""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import sys
from pathlib import Path

# With several test processes on the machine (pytest -n, as `make test` runs), each keeps its
# OpenMP pool (torch, XGBoost) to one thread: pools of every process spinning on the same
# cores cost more than they parallelise. Set before anything imports torch (the imports below
# do); subprocesses inherit it.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest
from rich.console import Console

from clv_models.core.config import Config, load_config
from tests.harness import checksums

#: The repository root (the checkout the tests run from).
REPO = Path(__file__).resolve().parents[1]

#: The small, fast settings of the test shops (``clv`` commands get them as ``--set``).
# The champion on the validation date alone: the choice over validation cutoffs is tested on
# its own (tests/test_champion.py); every chain run here would otherwise refit every model.
SMALL_SETTINGS = {"shop.seed": 11, "deep.epochs": 25, "deep.batch_size": 1024,
                  "xgboost.n_estimators": 300, "champion.cutoffs": 0}


def small_config(data_dir: Path, customers: int = 1_000, **overrides) -> Config:
    """A small, fast configuration writing under ``data_dir``."""
    return load_config(None, {
        "data_dir": data_dir, "shop.customers": customers, **SMALL_SETTINGS, **overrides,
    })


def clv_command(cfg: Config, *args: str) -> list[str]:
    """The ``clv`` command line of ``args`` on ``cfg``'s data directory, with the test shops'
    settings and ``cfg``'s shop size (run it with :func:`clv_environment`)."""
    return [sys.executable, "-m", "clv_models.cli", "--data-dir", str(cfg.data_dir),
            *(f"--set={k}={v}" for k, v in SMALL_SETTINGS.items()),
            f"--set=shop.customers={cfg.shop.customers}", *args]


def clv_environment() -> dict[str, str]:
    """This environment without ``CLV_*`` variables (they would outrank ``--data-dir``)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CLV_")}


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
    # What the run produced, before later tests add scores or push live events
    # (tests/test_determinism.py compares a second run with it).
    pipeline.checksums = checksums.compute(cfg)
    return pipeline


@pytest.fixture
def as_of() -> dt.date:
    return dt.date(2025, 1, 1)


#: Fixtures that run the chain, dbt, Feast or a server: a test using one is an e2e test.
E2E_FIXTURES = {"pipeline_run", "concurrent_run", "second_run", "clv_server", "feast_server",
                "hand_built_shop"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that use an e2e fixture ``e2e`` (``pytest -m "not e2e"`` skips them)."""
    for item in items:
        if E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


#: The scope of every test module that uses the session's chain run (``--dist loadscope``).
SESSION_RUN_SCOPE = "pipeline_run"


@functools.cache
def _uses_session_run(module: Path) -> bool:
    return re.search(r"\bpipeline_run\b", module.read_text()) is not None


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadscope`` with every module on the session's chain run in one scope.

    A scope runs whole on one test process, so :func:`pipeline_run` (minutes) is built once
    instead of once per process that gets such a module; every other module is a scope of its
    own, as with plain ``loadscope``.
    """
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    root = config.rootpath

    class SessionRunScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return SESSION_RUN_SCOPE if _uses_session_run(root / module) else module

    return SessionRunScheduling(config, log)
