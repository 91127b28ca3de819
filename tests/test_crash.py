"""Crash safety, the fast part: SIGKILL during a model save and during ``clv score``.

The long trials (20 kills of each of build, features, train and score, with re-runs) are
``scripts/crash_trials.py``. Here: a model save killed at each step leaves the previous
complete artefact; ``clv score`` killed at random moments never leaves a partial scored set or
BI publication, and its re-run equals an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from clv_models.evaluation import champion
from clv_models.models import NaiveCLV, load_model
from clv_models.models.base import content_version
from tests.conftest import clv_command, clv_environment
from tests.harness import checksums

pytestmark = pytest.mark.e2e  # dbt builds, Feast, servers or the whole chain

# A child process saving a new naive model over DIRECTORY and SIGKILLing itself at STEP.
SAVE_AND_DIE = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from clv_models.core import atomic
    from clv_models.models import NaiveCLV

    directory, step = Path(sys.argv[1]), sys.argv[2]

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    if step == "weights":  # the new weights are written, the metadata not yet
        def weights(self, folder):
            (folder / "naive.txt").write_text("horizon_days=30\\n")
            die()
        NaiveCLV._save_weights = weights
    elif step == "metadata":  # every file is written, nothing published yet
        atomic.publish_folder = die
    elif step == "link":  # the new folder is in place, the link not swapped yet
        atomic.os.symlink = die
    NaiveCLV(horizon_days=30).save(directory)
    raise SystemExit("the save finished: it was not killed")
""")


@pytest.mark.parametrize("step", ["weights", "metadata", "link"])
def test_a_model_save_killed_midway_leaves_the_previous_artefact(tmp_path, step):
    directory = tmp_path / "models" / "naive"
    version = NaiveCLV(horizon_days=90).save(directory)
    proc = subprocess.run([sys.executable, "-c", SAVE_AND_DIE, str(directory), step],
                          capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    model = load_model(directory)
    assert model.version == version and model.horizon_days == 90
    assert content_version(directory) == version  # weights and metadata of one save
    assert checksums.model_checksums(directory.parent)["naive"].startswith(f"{version}:")
    # The next save replaces it whole; the dead save's leftovers stay hidden.
    new = NaiveCLV(horizon_days=30).save(directory)
    assert load_model(directory).horizon_days == 30 and content_version(directory) == new
    assert [p.name for p in directory.parent.iterdir() if not p.name.startswith(".")] == ["naive"]


def test_a_model_saved_as_a_plain_folder_is_replaced_by_a_link(tmp_path):
    directory = tmp_path / "naive"
    NaiveCLV(horizon_days=90).save(tmp_path / "elsewhere")
    shutil.copytree(tmp_path / "elsewhere", directory)  # an artefact saved before links
    version = NaiveCLV(horizon_days=30).save(directory)
    assert directory.is_symlink() and load_model(directory).version == version


# -- clv score, killed -------------------------------------------------------------------------
SECTIONS = ("warehouse", "scores", "bi")


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the command and its children (dbt), and wait until all are gone."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError("processes survived SIGKILL")


def _dbt_leftover(section: str, key: str) -> bool:
    return section == "warehouse" and "__dbt_" in key


@pytest.fixture(scope="module")
def scoring_copy(pipeline_run, tmp_path_factory):
    """The session shop copied (the Feast registry but not the online store, which scoring
    does not read; `clv score` runs no `feast apply`, so the original's tables are safe)."""
    cfg = pipeline_run.cfg
    data = tmp_path_factory.mktemp("crash") / "data"
    shutil.copytree(cfg.data_dir, data, symlinks=True,
                    ignore=shutil.ignore_patterns("reports", "online_store.db"))
    return data


def _parts(bi: dict[str, str]) -> tuple[dict, dict]:
    """The BI database's tables and the Parquet folder's: each is swapped in whole."""
    return ({k: v for k, v in bi.items() if not k.startswith("parquet/")},
            {k: v for k, v in bi.items() if k.startswith("parquet/")})


def test_killed_scoring_never_shows_a_partial_set_and_the_rerun_matches(pipeline_run,
                                                                         scoring_copy):
    cfg = dataclasses.replace(pipeline_run.cfg, data_dir=scoring_copy).resolved()
    as_of = pipeline_run.training_set.split.evaluation_date  # a date not scored yet
    command = clv_command(cfg, "score", "--as-of", str(as_of))
    saved = scoring_copy.parent / "saved"
    saved.mkdir()
    shutil.copy2(cfg.warehouse_path, saved / cfg.warehouse_path.name)
    shutil.copytree(cfg.bi_dir, saved / "bi", symlinks=True)

    def restore() -> None:
        Path(f"{cfg.warehouse_path}.wal").unlink(missing_ok=True)
        shutil.copy2(saved / cfg.warehouse_path.name, cfg.warehouse_path)
        shutil.rmtree(cfg.bi_dir)
        shutil.copytree(saved / "bi", cfg.bi_dir, symlinks=True)

    def run() -> float:
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=scoring_copy.parent, env=clv_environment(),
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return time.perf_counter() - start

    previous = checksums.compute(cfg, SECTIONS)
    duration = run()  # uninterrupted: the reference
    new = checksums.compute(cfg, SECTIONS)
    added = sorted(set(new["scores"]) - set(previous["scores"]))
    assert [k.split("/")[:2] for k in added] == [[str(as_of), name]
                                                 for name in sorted(champion.CANDIDATES)]

    rng = random.Random(20261123)  # noqa: S311 - kill delays, not secrets
    kills, limit = 0, duration
    while kills < 2:
        restore()
        delay = rng.uniform(0, limit)
        began = time.perf_counter()
        proc = subprocess.Popen(command, cwd=scoring_copy.parent, env=clv_environment(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            proc.wait(timeout=delay)
            limit = time.perf_counter() - began  # finished first: not a kill, draw again
            continue
        except subprocess.TimeoutExpired:
            _kill_group(proc)
        kills += 1
        after = checksums.compute(cfg, SECTIONS)  # the warehouse opens read-only
        problems, _ = checksums.unexplained(previous, new, after, _dbt_leftover)
        assert problems == [], f"kill at {delay:.1f} s of {duration:.1f} s"
        for key in added:  # a scored set is absent or complete
            assert after["scores"].get(key) in (None, new["scores"][key])
        for got, old, done in zip(_parts(after["bi"]), _parts(previous["bi"]),
                                  _parts(new["bi"]), strict=True):
            assert got in (old, done)  # one whole publication
    run()  # the re-run after the last kill
    assert checksums.differences(checksums.compute(cfg, SECTIONS), new) == []
