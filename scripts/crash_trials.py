"""Crash trials: SIGKILL the pipeline stages at random moments, check nothing is torn, re-run.

For each stage (``clv build``, ``clv features``, ``clv train``, ``clv score``) the script

1. prepares, once, the state before the stage and the state an uninterrupted run of the stage
   leaves (the reference), on a small generated shop: a complete pipeline on shop A, then a
   new shop B generated over it, then each stage in turn (build, features, train, evaluate,
   score), timing each stage command; every state is kept as a snapshot of the data folder.
   ``features-full`` (``clv features --full-refresh``, what ``clv run`` does after generating)
   starts from the snapshot of ``features``;
2. per trial: restores the stage's "before" snapshot, starts the real ``clv`` command in its
   own process group and SIGKILLs the whole group (the command and its dbt or Feast children)
   after a delay drawn uniformly over the stage's measured duration. A command that finished
   before the kill is not a trial: the delay is drawn again below the time it took;
3. checks "never torn" at once (:func:`tests.harness.checksums.unexplained`): the warehouse opens
   read-only and every table and view, every scored set of ``clv_scores``, feature export,
   saved model and online-store row (per feature view and customer) is its previous version or
   the new one; the published BI copy is one whole publication (previous or new) and so is
   its Parquet folder. Temporary relations a killed dbt leaves (``__dbt_tmp``,
   ``__dbt_backup``, ``__dbt_int``) are counted, not failures;
4. re-runs the stage uninterrupted and checks that every checksum equals the reference's.

Every run happens in one fixed data folder (``ROOT/work``; snapshots are copied in and out),
because dbt's views store the absolute path of the feature exports.

Usage (from the repository root; ``--trials 2`` to try it, the default 20 per stage)::

    .venv/bin/python scripts/crash_trials.py --trials 20 --json crash_trials.json

The ``clv`` commands run as ``python -m clv_models.cli`` from this script's repository, so a
copy of the repository can be tested while the original is edited.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from clv_models.core.config import load_config  # noqa: E402
from tests.harness import checksums  # noqa: E402

STAGES = ("build", "features", "train", "score")
#: Stages that start from another stage's snapshot (not part of the chain).
EXTRA_STAGES = {"features-full": "features"}
COMMANDS = {"build": ["build"], "features": ["features"], "train": ["train"],
            "score": ["score"], "features-full": ["features", "--full-refresh"]}
#: The small, fast model settings of tests/conftest.py ``small_config``.
SETTINGS = {"deep.epochs": "25", "deep.batch_size": "1024", "xgboost.n_estimators": "300"}
SHOP_A, SHOP_B = 11, 12
DBT_LEFTOVER = re.compile(r"__dbt_(tmp|backup|int)$")
#: A stage run (reference or re-run) longer than this many times its measured duration hangs.
TIMEOUT_FACTOR = 10
#: Marks a --root made by this script (it empties its root; it refuses any other folder).
MARKER = ".clv-crash-trials"


@dataclass
class StageState:
    """What a trial of one stage compares with: the checksums before and after the stage."""

    name: str
    before: Path  # snapshot folder
    duration: float
    previous: dict
    new: dict
    previous_online: dict
    new_online: dict


@dataclass
class Trial:
    stage: str
    number: int
    delay: float
    attempts: int
    state: str = ""
    counts: dict = field(default_factory=dict)
    leftovers: int = 0
    torn: list[str] = field(default_factory=list)
    rerun_rc: int | None = None
    rerun_seconds: float = 0.0
    mismatches: list[str] = field(default_factory=list)
    error: str = ""


class Runner:
    """Runs ``clv`` commands on the work folder."""

    def __init__(self, root: Path, customers: int) -> None:
        self.root = root
        self.work = root / "work"
        self.snapshots = root / "snapshots"
        self.settings = [*(f"--set={k}={v}" for k, v in SETTINGS.items()),
                         f"--set=shop.customers={customers}"]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CLV_")}
        self.env["PYTHONPATH"] = str(REPO)
        self.cfg = load_config(None, {"data_dir": self.work})

    def command(self, args: list[str]) -> list[str]:
        return [sys.executable, "-m", "clv_models.cli", "--data-dir", str(self.work),
                *self.settings, *args]

    def run(self, args: list[str], timeout: float | None = None) -> tuple[int, float, str]:
        """Run to completion; returns the exit code, the seconds and the output's tail."""
        start = time.perf_counter()
        proc = subprocess.run(self.command(args), cwd=REPO, env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        tail = (proc.stdout + proc.stderr)[-3000:]
        return proc.returncode, time.perf_counter() - start, tail

    def must_run(self, args: list[str]) -> float:
        rc, seconds, tail = self.run(args)
        if rc != 0:
            raise SystemExit(f"clv {' '.join(args)} failed (exit {rc}):\n{tail}")
        return seconds

    def start(self, args: list[str]) -> subprocess.Popen:
        return subprocess.Popen(self.command(args), cwd=REPO, env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)

    def snapshot(self, name: str) -> Path:
        target = self.snapshots / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(self.work, target, symlinks=True)
        return target

    def restore(self, snapshot: Path) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        shutil.copytree(snapshot, self.work, symlinks=True)

    def checksums(self) -> dict:
        return checksums.compute(self.cfg)

    def online(self) -> dict:
        return {"online_rows": checksums.online_entity_checksums(self.cfg)}


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group and wait until none of its processes is left."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    for _ in range(200):
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise RuntimeError(f"processes of group {proc.pid} survived SIGKILL")


def prepare(runner: Runner, log, extra: list[str]) -> dict[str, StageState]:
    """The snapshots before each stage and the reference checksums after it."""
    marker = runner.root / MARKER
    if runner.root.exists() and any(runner.root.iterdir()) and not marker.exists():
        raise SystemExit(f"{runner.root} is not empty and was not made by this script: "
                         "choose another --root")
    shutil.rmtree(runner.root, ignore_errors=True)
    runner.work.mkdir(parents=True)
    marker.write_text("made by scripts/crash_trials.py; emptied by its next run\n")
    log(f"preparing: clv run on shop A (seed {SHOP_A}) in {runner.work}")
    runner.must_run(["run", "--seed", str(SHOP_A)])
    log(f"preparing: clv generate shop B (seed {SHOP_B}) over it")
    runner.must_run(["generate", "--seed", str(SHOP_B)])
    states: dict[str, StageState] = {}
    for name in STAGES:
        before = runner.snapshot(name)
        previous, previous_online = runner.checksums(), runner.online()
        duration = runner.must_run(COMMANDS[name])
        new, new_online = runner.checksums(), runner.online()
        states[name] = StageState(name, before, duration, previous, new, previous_online,
                                  new_online)
        changed = len(checksums.differences(previous, new))
        log(f"  {name:<9} {duration:6.1f} s uninterrupted; {changed} checksums change")
        if name == "train":
            runner.must_run(["evaluate"])  # the state scoring starts from: evaluated models
    for name in extra:  # from the snapshot of the stage they replace
        base = states[EXTRA_STAGES[name]]
        runner.restore(base.before)
        duration = runner.must_run(COMMANDS[name])
        states[name] = StageState(name, base.before, duration, base.previous,
                                  runner.checksums(), base.previous_online, runner.online())
        log(f"  {name:<9} {duration:6.1f} s uninterrupted")
    return states


def _leftover(section: str, key: str) -> bool:
    return section == "warehouse" and bool(DBT_LEFTOVER.search(key))


def _skip(section: str, key: str) -> bool:
    """dbt leftovers, and the whole-view online checksums: Feast writes a view in batches,
    so the online store is compared per customer instead (``online_rows``)."""
    return section == "online" or _leftover(section, key)


def check_never_torn(runner: Runner, state: StageState) -> tuple[list[str], dict, int]:
    """Problems right after a kill, the counts of old/new items, and the dbt leftovers."""
    try:
        after, after_online = runner.checksums(), runner.online()
    except Exception as exc:  # noqa: BLE001 - any failure to read the state is a finding
        return [f"state unreadable after the kill: {type(exc).__name__}: {exc}"], {}, 0
    problems, counts = checksums.unexplained(state.previous, state.new, after, _skip)
    online_problems, online_counts = checksums.unexplained(
        state.previous_online, state.new_online, after_online)
    problems += online_problems
    counts = {**counts, **{f"online_{k}": v for k, v in online_counts.items()}}
    # One publication at a time: the BI database as a whole, and its Parquet folder.
    for part, keep in (("bi database", lambda k: not k.startswith("parquet/")),
                       ("bi parquet", lambda k: k.startswith("parquet/"))):
        got = {k: v for k, v in after.get("bi", {}).items() if keep(k)}
        versions = [{k: v for k, v in s.get("bi", {}).items() if keep(k)}
                    for s in (state.previous, state.new)]
        if got not in versions:
            problems.append(f"{part}: neither the previous nor the new publication")
    # Each scored set is empty or complete (its full customer count).
    full = {**state.previous.get("scores", {}), **state.new.get("scores", {})}
    for key, value in after.get("scores", {}).items():
        if key in full and value.split(":")[0] != full[key].split(":")[0]:
            problems.append(f"scored set {key}: {value.split(':')[0]} rows, complete "
                            f"{full[key].split(':')[0]}")
    leftovers = sum(1 for k in after.get("warehouse", {}) if _leftover("warehouse", k))
    return problems, counts, leftovers


def classify(counts: dict) -> str:
    """``previous`` (nothing changed yet), ``new`` (everything written) or ``partial``."""
    old = counts.get("previous", 0) + counts.get("online_previous", 0)
    new = counts.get("new", 0) + counts.get("online_new", 0)
    return "partial" if old and new else "new" if new else "previous"


def trial(runner: Runner, state: StageState, number: int, rng: random.Random,
          log, late: float = 0.0) -> Trial:
    """One kill of ``state``'s stage (drawn over the last ``1 - late`` of its duration), the
    check right after it, and the re-run."""
    limit = state.duration
    attempts = 0
    while True:
        attempts += 1
        delay = rng.uniform(late * limit, limit)
        runner.restore(state.before)
        start = time.perf_counter()
        proc = runner.start(COMMANDS[state.name])
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            break
        finished = time.perf_counter() - start  # exited before the kill: not a trial
        kill_group(proc)
        if proc.returncode != 0:  # unless it failed: that is a finding, not a retry
            raise RuntimeError(f"{state.name} #{number}: the uninterrupted command failed "
                               f"(exit {proc.returncode}) after {finished:.1f} s")
        log(f"    {state.name} #{number}: finished in {finished:.1f} s before the kill at "
            f"{delay:.1f} s; drawing a shorter delay")
        limit = min(limit, finished)
        # An uninterrupted run measured again: later trials draw over the shorter duration
        # (the first measurement may have been taken on a busier machine).
        state.duration = min(state.duration, finished)
        if attempts >= 50:
            raise RuntimeError(f"{state.name}: 50 kills in a row came after the command ended")
    result = Trial(stage=state.name, number=number, delay=round(delay, 3), attempts=attempts)
    result.torn, result.counts, result.leftovers = check_never_torn(runner, state)
    result.state = classify(result.counts)
    rc, seconds, tail = runner.run(COMMANDS[state.name],
                                   timeout=TIMEOUT_FACTOR * state.duration + 120)
    result.rerun_rc, result.rerun_seconds = rc, round(seconds, 1)
    if rc != 0:
        result.error = tail
    else:
        result.mismatches = checksums.differences(runner.checksums(), state.new)
        result.mismatches += checksums.differences(runner.online(), state.new_online)[:20]
    status = "ok" if not (result.torn or result.mismatches or result.error) else "FAILED"
    log(f"    {state.name} #{number}: kill at {delay:5.1f} s of {state.duration:.1f} s "
        f"({result.state}, {result.leftovers} dbt leftovers); re-run {seconds:.1f} s: {status}")
    for line in [*result.torn, *result.mismatches][:10]:
        log(f"      {line}")
    if result.error:
        log(f"      re-run failed (exit {rc}): {tail[-500:]}")
    return result


def summary(states: dict[str, StageState], trials: list[Trial], stages: list[str]) -> dict:
    out = {}
    for name in stages:
        mine = [t for t in trials if t.stage == name]
        out[name] = {
            "command": "clv " + " ".join(COMMANDS[name]),
            "shortest_uninterrupted_seconds": round(states[name].duration, 1),
            "trials": len(mine),
            "kills_mid_stage": len(mine),
            "kills_after_it_finished": sum(t.attempts - 1 for t in mine),
            "states_at_kill": {s: sum(t.state == s for t in mine)
                               for s in ("previous", "partial", "new")},
            "dbt_leftovers_seen": sum(t.leftovers > 0 for t in mine),
            "torn": sum(bool(t.torn) for t in mine),
            "rerun_failed": sum(bool(t.error) for t in mine),
            "rerun_mismatches": sum(bool(t.mismatches) for t in mine),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="kills per stage (default 20)")
    parser.add_argument("--stages", default=",".join(STAGES),
                        help=f"comma-separated, of {', '.join([*STAGES, *EXTRA_STAGES])} "
                             f"(default: {','.join(STAGES)})")
    parser.add_argument("--seed", type=int, help="seed of the kill delays (default: random, "
                                                 "printed)")
    parser.add_argument("--customers", type=int, default=1000, help="shop size (default 1000)")
    parser.add_argument("--root", type=Path,
                        default=Path(tempfile.gettempdir()) / "clv-crash-trials",
                        help="working folder, emptied first (default: clv-crash-trials in the "
                             "temporary folder)")
    parser.add_argument("--late", type=float, default=0.0, metavar="FRACTION",
                        help="draw kills over [FRACTION x duration, duration] instead of the "
                             "whole duration, to aim at a stage's end (e.g. 0.6: the "
                             "materialization of `clv features`, after `feast apply`)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if not 0 <= args.late < 1:
        parser.error("--late must be in [0, 1)")
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = set(stages) - set(STAGES) - set(EXTRA_STAGES)
    if unknown:
        parser.error(f"unknown stages {sorted(unknown)}; known: "
                     f"{', '.join([*STAGES, *EXTRA_STAGES])}")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)  # noqa: S311 - kill delays, not secrets
    started = time.perf_counter()

    def log(line: str) -> None:
        print(f"[{time.perf_counter() - started:7.0f} s] {line}", flush=True)

    log(f"crash trials: seed {seed}, {args.trials} trials per stage of {', '.join(stages)}, "
        f"{args.customers} customers, kills over [{args.late:g}, 1] x duration, "
        f"repository {REPO}")
    runner = Runner(args.root.resolve(), args.customers)
    states = prepare(runner, log, [s for s in stages if s in EXTRA_STAGES])
    trials: list[Trial] = []
    for name in stages:
        log(f"stage {name}: {args.trials} trials")
        for number in range(1, args.trials + 1):
            trials.append(trial(runner, states[name], number, rng, log, args.late))
    result = {
        "seed": seed, "customers": args.customers, "trials_per_stage": args.trials,
        "late": args.late,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "stages": summary(states, trials, stages),
        "trials": [vars(t) for t in trials],
    }
    log(json.dumps(result["stages"], indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
        log(f"wrote {args.json}")
    failed = any(t.torn or t.mismatches or t.error for t in trials)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
