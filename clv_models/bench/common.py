"""What every benchmark shares: the result with its JSON document, the machine it ran on, and
helpers to time stages and sample peak memory.

The JSON document of a run (``clv bench NAME --json PATH``) records what is needed to judge and
reproduce its figures: the benchmark, the command line, when it ran, the git commit of the
checkout, the machine (CPU, cores, memory, platform), the load average at the start and at the
end (a busy machine makes every ratio suspect), and the rows of measurements and ratios.
``scripts/bench_tables.py`` renders these documents into ``docs/benchmarks.md``.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psutil

from clv_models.core.paths import source_checkout


def device_description() -> str:
    """CPU model, cores and memory of this machine."""
    mem = psutil.virtual_memory().total / 2**30
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB"


class PeakMemory:
    """Samples the resident memory of this process and all its children (e.g. dbt)."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        me = psutil.Process()
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


@contextmanager
def timed(out: dict, key: str):
    start = time.perf_counter()
    yield
    out[key] = time.perf_counter() - start


def git_commit() -> str | None:
    """The short commit of the source checkout the package runs from (``None`` when installed
    from a wheel, or when git is absent); ``+dirty`` when it has uncommitted changes."""
    root = source_checkout()
    if root is None:
        return None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                                capture_output=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, text=True, capture_output=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if dirty.strip() else commit


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


#: The time and load average when the benchmark command began (:func:`mark_start`): a result
#: created after its work reports them as its start.
_START: dict[str, Any] = {}


def mark_start() -> None:
    """Record now as the start of the benchmark command (``clv bench`` calls it first)."""
    _START.update(time=dt.datetime.now(dt.timezone.utc), load=load_average())


@dataclass
class BenchResult:
    """Rows of measurements and ratios, ready for printing and JSON.

    The context (start time, command, commit, machine, load average) is taken when the
    benchmark command began (:func:`mark_start`), else when the result is created;
    :meth:`as_json` adds the load average at the end.
    """

    benchmark: str
    rows: list[dict] = field(default_factory=list)
    #: Further fields of the JSON document (e.g. per-model tables), beside ``rows``.
    extra: dict[str, Any] = field(default_factory=dict)
    started: dt.datetime = field(
        default_factory=lambda: _START.get("time") or dt.datetime.now(dt.timezone.utc))
    command: str = field(default_factory=lambda: " ".join(["clv", *sys.argv[1:]]))
    load_average_start: list[float] = field(
        default_factory=lambda: _START.get("load") or load_average())

    def as_json(self) -> dict:
        return {"benchmark": self.benchmark, "command": self.command,
                "date": self.started.isoformat(timespec="seconds"), "commit": git_commit(),
                "machine": machine_description(), "device": device_description(),
                "load_average": self.load_average_start, "load_average_end": load_average(),
                "rows": self.rows, **self.extra}


def machine_description() -> str:
    """The platform and Python of this machine, beside :func:`device_description`."""
    return f"{platform.platform()}, Python {platform.python_version()}"


def ratio_row(name: str, value: float | None, op: str, target: float) -> dict:
    """A row of a ratio and its target (``op`` is ``<=`` or ``>=``), with whether it is met."""
    met = None if value is None else (value <= target if op == "<=" else value >= target)
    return {"ratio": name, "value": None if value is None else round(value, 2),
            "target": f"{op} {target}", "met": met}


