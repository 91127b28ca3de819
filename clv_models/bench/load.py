"""Sustained-load test of the online servers (``scripts/load_test.py``): the highest request
rate that still meets the latency target, then a hold at that rate with the server's memory
sampled every second.

For each server (``clv serve``, the CLV endpoint, and ``feast serve``, Feast's HTTP feature
server, both started for real on loopback) the load comes from a second process, the load
generator of ``clv bench serving`` (:func:`clv_models.bench.serving.run_load`): batch-1
requests paced on a fixed schedule, latency counted from each request's scheduled time, so a
server that falls behind shows its queue in the figures.

1. **Steps**: each rate of ``rates`` for ``step_seconds``; a step passes when its p99 is within
   the target and no request failed (a non-2xx answer or a connection error). Every step runs
   (a failed step does not end the search: on an idle virtual machine the lowest rates can be
   the slowest, each request waking a sleeping CPU) until one is *saturated*: it failed with
   errors or served less than 90 % of the offered rate.
2. **Hold**: the highest passing rate for ``hold_seconds`` (at least 60 by default); when the
   hold misses the target, the next lower passing rate, up to ``max_holds`` holds. The
   sustained rate is the highest whose whole hold met the target. During each hold a thread
   samples the server's resident memory (the process and its children, psutil) every second.
   Reported: requests, errors, p50/p99/max, achieved rate, RSS at start/end/max and its
   least-squares slope in MB/min after ``warmup_seconds``. **Memory flat** means that slope is
   within :data:`FLAT_MB_PER_MIN` (a leak of 1 KB per request at 100 requests/s would grow
   ~5.9 MB/min).

Not a test: the figures depend on the machine and on whatever else runs on it (each row
carries the load average at its end).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from clv_models.bench.common import BenchResult
from clv_models.bench.serving import (
    READ_SERVICE,
    _ensure_chain,
    _load,
    clv_serve_command,
    feast_serve_command,
    free_port,
    redis_server,
    started_server,
    store_data_dir,
)
from clv_models.core.config import Config, OnlineStoreConfig
from clv_models.features import store as features

SERVERS = ("clv", "feast")
DEFAULT_RATES = (25, 50, 75, 100, 125, 150, 200, 300, 400, 600)
TARGET_P99_MS = 10.0  # the CLV endpoint's p99 target at batch 1; the same for feast serve
FLAT_MB_PER_MIN = 1.0  # |RSS slope| after warm-up that still counts as "memory flat"
MEASURES = {"clv": "clv_endpoint", "feast": "feast_http_read"}


@dataclass
class MemorySampler:
    """Samples the resident memory of a process and its children every ``interval`` seconds
    in a thread (``(seconds since start, MB)`` pairs)."""

    pid: int
    interval: float = 1.0
    samples: list[tuple[float, float]] = field(default_factory=list)

    def _rss(self) -> float:
        proc = psutil.Process(self.pid)
        total = 0
        for p in [proc, *proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total / 2**20

    @contextlib.contextmanager
    def running(self) -> Iterator[MemorySampler]:
        stop = threading.Event()
        start = time.monotonic()

        def run() -> None:
            while True:
                with contextlib.suppress(psutil.Error):
                    self.samples.append((time.monotonic() - start, self._rss()))
                if stop.wait(self.interval):
                    return

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()
            with contextlib.suppress(psutil.Error):
                self.samples.append((time.monotonic() - start, self._rss()))


def memory_summary(samples: list[tuple[float, float]], warmup_seconds: float) -> dict[str, Any]:
    """RSS at start, end and max (MB) and the least-squares slope (MB/min) of the samples
    taken after ``warmup_seconds``."""
    t = np.array([s for s, _ in samples])
    mb = np.array([m for _, m in samples])
    after = t >= warmup_seconds
    slope = (float(np.polyfit(t[after] / 60.0, mb[after], 1)[0]) if after.sum() >= 3
             else None)
    return {
        "rss_start_mb": round(float(mb[0]), 1), "rss_end_mb": round(float(mb[-1]), 1),
        "rss_max_mb": round(float(mb.max()), 1),
        "rss_slope_mb_per_min": None if slope is None else round(slope, 3),
        "rss_samples": len(mb), "rss_warmup_s": warmup_seconds,
        "memory_flat": None if slope is None else bool(abs(slope) <= FLAT_MB_PER_MIN),
        "memory_flat_bound": f"|slope| <= {FLAT_MB_PER_MIN:g} MB/min after "
                             f"{warmup_seconds:g} s",
    }


def _latency_row(measure: str, load: dict[str, Any], rate: float,
                 target_ms: float) -> dict[str, Any]:
    lat = np.asarray(load["latencies_ms"], dtype=float)
    p99 = float(np.percentile(lat, 99))
    return {
        "measure": measure, "batch": 1, "offered_rps": rate, "requests": len(lat),
        "errors": load["errors"],
        "p50_ms": round(float(np.percentile(lat, 50)), 2), "p99_ms": round(p99, 2),
        "max_ms": round(float(lat.max()), 2),
        "throughput_rps": round(len(lat) / load["seconds"], 1),
        "target": f"p99 <= {target_ms:g} ms, 0 errors",
        "met": bool(p99 <= target_ms and load["errors"] == 0),
    }


def load_server(server: str, cfg: Config, ids_file: Path, scratch: Path, model: str,
                rates: tuple[float, ...] = DEFAULT_RATES, step_seconds: float = 10.0,
                hold_seconds: float = 60.0, warmup_seconds: float = 10.0,
                target_ms: float = TARGET_P99_MS, seed: int = 0,
                echo: Callable[[str], None] = print, max_holds: int = 3) -> list[dict[str, Any]]:
    """Step rows and the hold row of one server (``clv`` or ``feast``) on ``cfg``'s store."""
    env = {**os.environ, **cfg.env()}
    env.pop("CLV_API_TOKEN", None)  # a loopback server without a token
    port = free_port()
    store = cfg.online_store.type
    if server == "clv":
        cmd, cwd, mode = clv_serve_command(cfg, port, model), cfg.resolved().data_dir, "clv"
    else:
        cmd, cwd, mode = feast_serve_command(port), cfg.feature_repo_dir, "feast-http"
    measure = MEASURES[server]
    extra = {"store": store, **({"model": model} if server == "clv" else
                                {"feature_service": READ_SERVICE})}
    rows: list[dict[str, Any]] = []
    with started_server(cmd, port, cwd, env, scratch / f"{server}-{store}.log") as (base, proc):
        _load(mode, ids_file, 1, 1, 300, env, url=base, seed=seed)  # warm-up, back to back
        for i, rate in enumerate(rates):
            load = _load(mode, ids_file, 1, max(int(rate * step_seconds), 20), 20, env,
                         rate=rate, url=base, seed=seed + 1 + i)
            row = {**_latency_row(measure, load, rate, target_ms), "phase": "step", **extra,
                   "load_average": round(os.getloadavg()[0], 2)}
            rows.append(row)
            echo(f"  {server} {rate:g}/s: p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, "
                 f"{row['errors']} errors -> {'pass' if row['met'] else 'fail'}")
            if not row["met"] and (row["errors"] or row["throughput_rps"] < 0.9 * rate):
                echo(f"  {server}: saturated at {rate:g}/s; no higher step")
                break
        passed = [r["offered_rps"] for r in rows if r["met"]]
        if not passed:
            echo(f"  {server}: no rate met p99 <= {target_ms:g} ms; holding the lowest")
        # Hold the highest passing step; when the hold misses the target, the next lower
        # passing step (at most ``max_holds`` holds): the sustained rate is the highest whose
        # whole hold met it.
        candidates = sorted(passed, reverse=True)[:max_holds] or [rates[0]]
        for hold_rate in candidates:
            echo(f"  {server}: holding {hold_rate:g}/s for {hold_seconds:g} s ...")
            sampler = MemorySampler(proc.pid)
            with sampler.running():
                load = _load(mode, ids_file, 1, int(hold_rate * hold_seconds), 0, env,
                             rate=hold_rate, url=base, seed=seed + 100)
            row = {**_latency_row(measure, load, hold_rate, target_ms), "phase": "hold",
                   "seconds": round(load["seconds"], 1), **extra,
                   "rate_is": "a step that met the target" if passed
                   else "the lowest step (none met the target)",
                   **memory_summary(sampler.samples, warmup_seconds),
                   "rss_mb": [round(m, 1) for _, m in sampler.samples],
                   "load_average": round(os.getloadavg()[0], 2)}
            row["met"] = bool(row["met"] and passed and row["memory_flat"])
            row["target"] += ", memory flat"
            rows.append(row)
            echo(f"  {server} hold {hold_rate:g}/s: {row['requests']} requests, "
                 f"{row['errors']} errors, p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms "
                 f"(max {row['max_ms']}); RSS {row['rss_start_mb']} -> {row['rss_end_mb']} MB "
                 f"(max {row['rss_max_mb']}), slope {row['rss_slope_mb_per_min']} MB/min "
                 f"-> {'met' if row['met'] else 'missed'}")
            if row["met"]:
                break
    return rows


def load_test(cfg: Config, servers: tuple[str, ...] = SERVERS, store: str = "sqlite",
              redis_url: str | None = None, model: str = "deep_ziln",
              rates: tuple[float, ...] = DEFAULT_RATES, step_seconds: float = 10.0,
              hold_seconds: float = 60.0, warmup_seconds: float = 10.0,
              target_ms: float = TARGET_P99_MS, seed: int = 0,
              echo: Callable[[str], None] = print) -> BenchResult:
    """The load test of ``servers`` on one online store (``sqlite``: the data directory's
    own; ``redis``: a store of its own under ``<data_dir>/bench-serving/redis``, in a
    throw-away ``redis-server`` unless ``redis_url`` is given, materialized first).

    The data directory's chain runs first when it has no trained ``model``.
    """
    import tempfile

    cfg = cfg.resolved()
    _ensure_chain(cfg, model, None, echo)
    _, entities = features.scoring_entities(cfg)
    result = BenchResult("load")
    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="clv-load-")))
        ids_file = scratch / "ids.txt"
        ids_file.write_text("\n".join(entities[features.ENTITY_KEY].astype(str)))
        if store == "redis":
            if not redis_url:
                redis_url = stack.enter_context(redis_server(scratch / "redis"))
                echo(f"started redis-server at {redis_url}")
            cfg = store_data_dir(cfg, cfg.data_dir / "bench-serving" / "redis",
                                 OnlineStoreConfig(type="redis", redis_url=redis_url))
            echo("feast apply + materialize into redis ...")
            features.apply(cfg)
            features.materialize(cfg, full_refresh=True)
        for server in servers:
            echo(f"[{store}] {server}: stepping {', '.join(f'{r:g}' for r in rates)} "
                 f"requests/s, {step_seconds:g} s each ...")
            result.rows += load_server(server, cfg, ids_file, scratch, model, rates,
                                       step_seconds, hold_seconds, warmup_seconds,
                                       target_ms, seed, echo)
    return result
