"""Serving benchmark (``clv bench serving``): online-store latency and throughput.

For each online store (SQLite, the embedded default, and Redis, the production option) the
benchmark materializes the feature views of one data directory into a store of its own and
measures, with the load coming from a second process on loopback:

* Feast SDK reads (``get_online_features(...).to_dict()`` of the feature service ``clv_v1``,
  56 features) at batch 1 and batch 100, back to back, in the load process itself;
* the same reads through the CLV endpoint's own read path (``clv_lookup_read``:
  :class:`~clv_models.features.online_lookup.OnlineLookup`, the same values without the SDK call's
  overhead), held to the same targets;
* Feast's HTTP feature server (``feast serve``, started for real) at batch 1 and batch 100;
* the CLV endpoint (``clv serve``, started for real): batch 1 paced at 100 requests/s
  (latency counted from each request's scheduled time, so a slow server cannot hide its
  queue), and batch 100 back to back;
* materialization throughput: customers × features written per second, extrapolated to
  1,000,000 customers, or measured on a real 1M-customer feature set (``materialize_dir``).

Each latency row carries p50/p99 in milliseconds, and each target a ``met`` flag; Feast's
published figures (tuned Python feature server, 16 vCPU, Redis) are reference rows. Not a test:
the figures depend on the machine and on whatever else runs on it (the rows carry the load
average). ``python -m clv_models.bench.serving`` is the load process.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import gc
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from clv_models.bench.common import BenchResult, PeakMemory
from clv_models.core import paths
from clv_models.core.config import Config, OnlineStoreConfig
from clv_models.core.errors import NotBuiltError
from clv_models.features import store as features

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

STORES = ("sqlite", "redis")
READ_SERVICE = "clv_v1"  # a ~50-feature read (56 numeric features)
DEFAULT_CUSTOMERS = 20_000
DEFAULT_MODEL = "deep_ziln"
CLV_RATE = 100.0  # requests/s of the paced batch-1 CLV endpoint load
BIG_BATCH = 100
STARTUP_SECONDS = 180  # a server's imports, registry and model on 2 busy cores
MILLION = 1_000_000

# The targets on 2 cores: (measure, batch) -> p99 in ms. The SDK read targets apply to
# the endpoint's own read path too (the same features, read without Feast's SDK call).
P99_TARGETS_MS = {("feast_sdk_read", 1): 2.0, ("feast_sdk_read", BIG_BATCH): 50.0,
                  ("clv_lookup_read", 1): 2.0, ("clv_lookup_read", BIG_BATCH): 50.0,
                  ("clv_endpoint", 1): 10.0}
MATERIALIZE_TARGET_SECONDS = 60.0  # 1M customers x ~50 features
# Feast's published figures for its tuned Python feature server (16 vCPU, Redis).
FEAST_ANCHOR = [
    {"measure": "feast_published_python_rest", "reference": True, "store": "redis", "batch": 1,
     "p99_ms": 4.6, "device": "16 vCPU (Feast's published benchmark)"},
    {"measure": "feast_published_python_rest", "reference": True, "store": "redis",
     "batch": BIG_BATCH, "p99_ms": 208.0, "device": "16 vCPU (Feast's published benchmark)"},
]


# -- processes ----------------------------------------------------------------------------------
def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def redis_server(directory: Path, port: int | None = None,
                 startup_seconds: float = 30) -> Iterator[str]:
    """A throw-away ``redis-server`` on 127.0.0.1 (no persistence, files in ``directory``).

    Yields its ``redis://`` URL and stops it on exit. Used by the benchmark and the tests so
    nothing touches a Redis someone else runs.

    Raises
    ------
    FileNotFoundError
        When ``redis-server`` is not on the PATH (Debian: ``apt-get install redis-server``).
    """
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        raise NotBuiltError("redis-server is not installed (Debian/Ubuntu: apt-get install "
                                "redis-server; macOS: brew install redis)")
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = directory / "redis-server.log"
    cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", "--dir", str(directory), "--logfile", str(log)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
        deadline = time.monotonic() + startup_seconds
        while True:
            if proc.poll() is not None:
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise RuntimeError(f"redis-server exited with {proc.returncode}: {tail}")
            with contextlib.suppress(redis.exceptions.ConnectionError):
                if client.ping():
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server not answering on port {port} after "
                                   f"{startup_seconds:.0f} s")
            time.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def http_server(cmd: list[str], port: int, cwd: Path, env: dict[str, str], log: Path,
                ready_path: str = "/health") -> Iterator[str]:
    """Start ``cmd``, wait until ``ready_path`` answers 200, yield the base URL, stop it."""
    with started_server(cmd, port, cwd, env, log, ready_path) as (base, _):
        yield base


@contextlib.contextmanager
def started_server(cmd: list[str], port: int, cwd: Path, env: dict[str, str], log: Path,
                   ready_path: str = "/health") -> Iterator[tuple[str, subprocess.Popen]]:
    """:func:`http_server` that also yields the server's process (to sample its memory)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{' '.join(cmd[:3])} exited with {proc.returncode}:\n"
                                   f"{log.read_text()[-3000:]}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", ready_path)
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(cmd[:3])} not ready in {STARTUP_SECONDS} s:\n"
                                   f"{log.read_text()[-3000:]}")
            time.sleep(0.25)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        _stop(proc)


def store_data_dir(cfg: Config, where: Path, online_store: OnlineStoreConfig,
                   copies: tuple[str, ...] = ()) -> Config:
    """A data directory ``where`` that shares ``cfg``'s data (symbolic links to its raw
    files, features, models, warehouse and BI copy) but has its own Feast registry and online
    store.

    Feast keeps one registry per repo, with the materialized intervals of one online store:
    two stores over the same features need two registries. Nothing in ``cfg``'s own data
    directory is written, unless through a link: the entries named in ``copies`` (e.g.
    ``("features",)``, which Feast's offline pushes rewrite) are copied instead of linked.
    """
    cfg = cfg.resolved()
    where.mkdir(parents=True, exist_ok=True)
    for name in ("raw", "truth", "features", "models", "bi", cfg.warehouse_path.name):
        src, dst = cfg.data_dir / name, where / name
        if not src.exists() or dst.is_symlink() or dst.exists():
            continue
        if name in copies:
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
        else:
            dst.symlink_to(src, target_is_directory=src.is_dir())
    return dataclasses.replace(cfg, data_dir=where, online_store=online_store).resolved()


# -- the load process ---------------------------------------------------------------------------
def _requests(ids: list[str], batch: int, n: int, seed: int) -> list[list[str]]:
    """``n`` requests of ``batch`` distinct ids each, drawn with a seeded generator."""
    rng = np.random.default_rng(seed)
    if batch >= len(ids):
        return [list(ids) for _ in range(n)]
    return [[ids[i] for i in rng.choice(len(ids), batch, replace=False)] for _ in range(n)]


def run_load(mode: str, ids: list[str], batch: int, requests: int, warmup: int,
             rate: float = 0.0, url: str = "", service: str = READ_SERVICE,
             seed: int = 0) -> dict[str, Any]:
    """Issue ``warmup + requests`` reads and time the last ``requests`` (the load process).

    Parameters
    ----------
    mode
        ``sdk`` (Feast SDK in this process; the Feast repo comes from the environment),
        ``lookup`` (the CLV endpoint's read path,
        :class:`~clv_models.features.online_lookup.OnlineLookup`, in this process),
        ``feast-http`` (``POST /get-online-features`` of ``url``) or ``clv`` (``GET
        /v1/clv/{id}`` at batch 1, ``POST /v1/clv`` above).
    ids, batch
        Customer ids to draw from (seeded, without repetition within a request) and the
        customers per request.
    rate
        Requests per second, paced on a fixed schedule; latency then counts from each
        request's scheduled time (a late start is queueing the server caused). 0: back to back.

    Returns
    -------
    dict
        ``latencies_ms`` (per timed request), ``seconds`` (wall time of the timed part) and
        ``errors`` (non-200 answers).
    """
    plan = _requests(ids, batch, warmup + requests, seed)
    if mode != "clv":
        repo = paths.project_folder(paths.FEATURE_REPO)
        store = features.import_feast().FeatureStore(repo_path=str(repo))
        refs = [f"{view}:{name}" for view, name in features._service_refs(store, service)]
    if mode == "sdk":
        svc = store.get_feature_service(service)

        def call(chunk: list[str]) -> bool:
            out = store.get_online_features(
                features=svc, entity_rows=[{features.ENTITY_KEY: c} for c in chunk]).to_dict()
            return out["order_count"][0] is not None
    elif mode == "lookup":
        from clv_models.features.online_lookup import OnlineLookup

        lookup = OnlineLookup(store, refs, features.ENTITY_KEY)

        def call(chunk: list[str]) -> bool:
            return lookup.read(chunk)[0]["order_count"][0] is not None
    else:
        # feast-http names the service's features one by one: for a ``feature_service``
        # request ``feast serve`` rebuilds the service from the registry proto on every call
        # (34 % of its CPU in a profile; p50 7.4 -> 5.1 ms, p99 11.6 -> 7.3 ms at 100
        # requests/s of one clv_v1 customer on 2 cores), while feature lists resolve through
        # the registry's cache. Same features, same answer.
        host_port = url.split("://", 1)[1]
        conn = http.client.HTTPConnection(host_port, timeout=60)
        headers = {"Content-Type": "application/json"}

        def call(chunk: list[str]) -> bool:
            nonlocal conn
            if mode == "clv" and len(chunk) == 1:
                method, path, body = "GET", f"/v1/clv/{chunk[0]}", None
            elif mode == "clv":
                method, path = "POST", "/v1/clv"
                body = json.dumps({"customer_ids": chunk})
            else:
                method, path = "POST", "/get-online-features"
                body = json.dumps({"features": refs,
                                   "entities": {features.ENTITY_KEY: chunk}})
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                return resp.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(host_port, timeout=60)
                return False

    # As clv serve does: the objects of the load process's start-up (Feast, pandas, the
    # registry) go to the permanent generation, so the full collections that batch-100 reads
    # trigger do not walk them (190-390 ms pauses on 2 busy cores without, in the p99s).
    gc.collect()
    gc.freeze()
    for chunk in plan[:warmup]:
        call(chunk)
    latencies, errors = [], 0
    start = time.perf_counter()
    for i, chunk in enumerate(plan[warmup:]):
        scheduled = start + i / rate if rate > 0 else time.perf_counter()
        if rate > 0:
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        ok = call(chunk)
        latencies.append((time.perf_counter() - scheduled) * 1000)
        errors += not ok
    return {"latencies_ms": latencies, "seconds": time.perf_counter() - start, "errors": errors}


def _load(mode: str, ids_file: Path, batch: int, requests: int, warmup: int, env: dict[str, str],
          rate: float = 0.0, url: str = "", seed: int = 0) -> dict[str, Any]:
    """Run :func:`run_load` in a second process (``python -m clv_models.bench.serving``)."""
    out = ids_file.with_name(f"load-{mode}-{batch}-{os.getpid()}.json")
    cmd = [sys.executable, "-m", "clv_models.bench.serving", "--mode", mode, "--ids",
           str(ids_file), "--batch", str(batch), "--requests", str(requests), "--warmup",
           str(warmup), "--rate", str(rate), "--url", url, "--seed", str(seed), "--out",
           str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"load process ({mode}, batch {batch}) failed:\n"
                           f"{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    result = json.loads(out.read_text())
    out.unlink()
    return result


def _summary(measure: str, store: str, batch: int, load: dict[str, Any],
             rate: float = 0.0, **extra: Any) -> dict[str, Any]:
    """One latency row: percentiles, throughput, and the target where it has one."""
    lat = np.asarray(load["latencies_ms"], dtype=float)
    row: dict[str, Any] = {
        "measure": measure, "store": store, "batch": batch, "requests": len(lat),
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
        "mean_ms": round(float(lat.mean()), 2), "max_ms": round(float(lat.max()), 2),
        "throughput_rps": round(len(lat) / load["seconds"], 1), "errors": load["errors"],
    }
    if rate > 0:
        row["offered_rps"] = rate
    row.update(extra)
    target = P99_TARGETS_MS.get((measure, batch))
    if target is not None:
        row["target"] = f"p99 <= {target:g} ms" + (f" at {rate:g} requests/s" if rate else "")
        row["met"] = bool(row["p99_ms"] <= target and load["errors"] == 0)
    row["load_average"] = round(os.getloadavg()[0], 2)
    return row


# -- materialization ----------------------------------------------------------------------------
def _materialize(cfg: Config, store: str, label: str, echo: Callable[[str], None]) -> dict:
    """``feast apply`` and a full-refresh materialization of every feature view, timed."""
    features.apply(cfg)
    fs = features.feature_store(cfg)
    n_features = sum(len(fv.features) for fv in fs.list_feature_views())
    with PeakMemory() as mem:
        result = features.materialize(cfg, full_refresh=True)
    seconds = sum(result.seconds.values())
    customers = result.online_rows
    per_s = customers * n_features / seconds if seconds else None
    one_million = seconds * MILLION / customers if customers else None
    measured = customers >= MILLION
    echo(f"  {store}: materialized {customers:,} customers x {n_features} features in "
         f"{seconds:.1f} s ({per_s:,.0f} values/s)")
    return {
        "measure": label, "store": store, "customers": customers, "features": n_features,
        "seconds": round(seconds, 2), "values_per_s": round(per_s) if per_s else None,
        "seconds_per_view": {k: round(v, 2) for k, v in result.seconds.items()},
        "seconds_1m": round(one_million, 1) if one_million else None,
        "seconds_1m_is": "measured" if measured else "extrapolated linearly",
        "peak_rss_gib": round(mem.peak / 2**30, 2),
        "target": f"1M customers x ~50 features <= {MATERIALIZE_TARGET_SECONDS:g} s",
        "met": None if one_million is None else bool(one_million <= MATERIALIZE_TARGET_SECONDS),
        "load_average": round(os.getloadavg()[0], 2),
    }


# -- the benchmark ------------------------------------------------------------------------------
def _ensure_chain(cfg: Config, model: str, console: Console | None,
                  echo: Callable[[str], None]) -> None:
    """Run the product's chain when the data directory has no trained ``model`` yet (the
    shop is generated only when it has no raw files)."""
    if (cfg.models_dir / model / "metadata.json").exists():
        return
    from rich.console import Console

    from clv_models.pipeline import Pipeline

    generate = not any(cfg.raw_dir.glob("orders.*"))
    echo(f"no trained {model} in {cfg.data_dir}: running the chain "
         f"({'generate ' + format(cfg.shop.customers, ',') + ' customers, ' if generate else ''}"
         "build, features, train, evaluate, score) ...")
    Pipeline(cfg, console=console or Console()).run(generate=generate)


def bench_serving(cfg: Config, stores: tuple[str, ...] = STORES, redis_url: str | None = None,
                  model: str = DEFAULT_MODEL, requests: int = 2000, batch_requests: int = 300,
                  materialize_dir: Path | None = None, seed: int = 0,
                  console: Console | None = None,
                  echo: Callable[[str], None] = print) -> BenchResult:
    """``clv bench serving``: online read latency and materialization throughput per store.

    Parameters
    ----------
    cfg
        The data directory to serve (its chain is run first when it has no trained ``model``;
        a shop of ``cfg.shop.customers`` is generated when it has no raw files). Each store
        gets its own registry and online store under ``<data_dir>/bench-serving/<store>``.
    stores
        Online stores to measure (``sqlite``, ``redis``).
    redis_url
        An existing Redis database to use (the benchmark empties this project's keys in it);
        by default a throw-away ``redis-server`` is started on a free loopback port.
    model
        The model the CLV endpoint serves.
    requests, batch_requests
        Timed requests at batch 1 and at batch 100 per measurement (after a warm-up).
    materialize_dir
        A feature directory (dbt's Parquet exports) of a 1M-customer shop: its
        materialization is measured for real instead of extrapolated.
    """
    cfg = cfg.resolved()
    _ensure_chain(cfg, model, console, echo)
    _, entities = features.scoring_entities(cfg)
    ids = entities[features.ENTITY_KEY].astype(str).tolist()
    result = BenchResult("serving")
    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="clv-bench-")))
        if "redis" in stores and not redis_url:
            redis_url = stack.enter_context(redis_server(scratch / "redis"))
            echo(f"started redis-server at {redis_url}")
        for store in stores:
            online = OnlineStoreConfig(type=store, redis_url=redis_url or "")
            twin = store_data_dir(cfg, cfg.data_dir / "bench-serving" / store, online)
            echo(f"[{store}] feast apply + materialize into {store} ...")
            result.rows.append(_materialize(twin, store, "materialize", echo))
            result.rows += _latencies(twin, store, ids, model, requests, batch_requests, seed,
                                      scratch, echo)
        if materialize_dir is not None:
            for store in stores:
                online = OnlineStoreConfig(type=store, redis_url=redis_url or "")
                big = store_data_dir(cfg, scratch / f"materialize-{store}", online)
                (big / "features").unlink()
                (big / "features").symlink_to(Path(materialize_dir).resolve(),
                                              target_is_directory=True)
                echo(f"[{store}] materializing the feature set in {materialize_dir} ...")
                result.rows.append(_materialize(big, store, "materialize_1m", echo))
                features.empty_online_store(big)  # give Redis' memory back
    result.rows += [dict(r) for r in FEAST_ANCHOR]
    return result


def _latencies(cfg: Config, store: str, ids: list[str], model: str, requests: int,
               batch_requests: int, seed: int, scratch: Path,
               echo: Callable[[str], None]) -> list[dict]:
    """The SDK, ``feast serve`` and ``clv serve`` latency rows of one online store."""
    ids_file = scratch / f"ids-{store}.txt"
    ids_file.write_text("\n".join(ids))
    env = {**os.environ, **cfg.env()}
    env.pop("CLV_API_TOKEN", None)  # loopback servers without a token
    n_features = len(features.feature_names(features.feature_store(cfg), READ_SERVICE))
    rows = []
    plan = ((1, requests, 50), (BIG_BATCH, batch_requests, 10))

    echo(f"[{store}] Feast SDK reads ...")
    for batch, n, warm in plan:
        load = _load("sdk", ids_file, batch, n, warm, env, seed=seed)
        rows.append(_summary("feast_sdk_read", store, batch, load, features=n_features))
        echo(f"  batch {batch}: p50 {rows[-1]['p50_ms']} ms, p99 {rows[-1]['p99_ms']} ms")

    echo(f"[{store}] the CLV endpoint's read path (OnlineLookup) ...")
    for batch, n, warm in plan:
        load = _load("lookup", ids_file, batch, n, warm, env, seed=seed)
        rows.append(_summary("clv_lookup_read", store, batch, load, features=n_features))
        echo(f"  batch {batch}: p50 {rows[-1]['p50_ms']} ms, p99 {rows[-1]['p99_ms']} ms")

    echo(f"[{store}] feast serve ...")
    port = free_port()
    with http_server(feast_serve_command(port), port, cfg.feature_repo_dir, env,
                     scratch / f"feast-serve-{store}.log") as base:
        for batch, n, warm in plan:
            load = _load("feast-http", ids_file, batch, n, warm, env, url=base, seed=seed)
            rows.append(_summary("feast_http_read", store, batch, load, features=n_features,
                                 server="feast serve (1 worker, --max-requests 0)"))
            echo(f"  batch {batch}: p50 {rows[-1]['p50_ms']} ms, p99 {rows[-1]['p99_ms']} ms")

    echo(f"[{store}] clv serve ({model}) ...")
    port = free_port()
    with http_server(clv_serve_command(cfg, port, model), port, cfg.resolved().data_dir, env,
                     scratch / f"clv-serve-{store}.log") as base:
        for batch, n, warm in plan:
            rate = CLV_RATE if batch == 1 else 0.0
            load = _load("clv", ids_file, batch, n, warm, env, rate=rate, url=base, seed=seed)
            rows.append(_summary("clv_endpoint", store, batch, load, rate=rate, model=model))
            echo(f"  batch {batch}: p50 {rows[-1]['p50_ms']} ms, p99 {rows[-1]['p99_ms']} ms")
    return rows


def feast_serve_command(port: int) -> list[str]:
    """``feast serve`` as measured: one worker, no access log, never recycled (run it in the
    Feast repo folder, with the data directory's environment)."""
    return [str(Path(sys.executable).parent / "feast"), "serve", "--port", str(port),
            "--no-access-log", "--max-requests", "0"]


def clv_serve_command(cfg: Config, port: int, model: str) -> list[str]:
    """``clv serve`` of ``model`` on ``cfg``'s data directory and online store, as measured
    (log level warning: no access log)."""
    return [sys.executable, "-m", "clv_models.cli", "--data-dir", str(cfg.data_dir),
            "--set", f"online_store.type={cfg.online_store.type}",
            "--set", f"online_store.redis_url={cfg.online_store.redis_url}",
            "serve", "--port", str(port), "--model", model, "--log-level", "warning"]


def serving_table(result: BenchResult) -> Table:
    """The serving benchmark as a terminal table: latency rows, materialization, anchors."""
    from rich.table import Table

    table = Table(title="clv bench serving")
    for col in ("measure", "store", "batch", "p50 ms", "p99 ms", "req/s", "other", "target",
                "met"):
        table.add_column(col, justify="right" if col in {"batch", "p50 ms", "p99 ms",
                                                          "req/s"} else "left")

    def fmt(value: Any) -> str:
        return "" if value is None else str(value)

    for r in result.rows:
        if r["measure"].startswith("materialize"):
            other = (f"{r['customers']:,} x {r['features']} in {r['seconds']} s = "
                     f"{r['values_per_s']:,} values/s; 1M: {r['seconds_1m']} s "
                     f"({r['seconds_1m_is']})")
            table.add_row(r["measure"], r["store"], "", "", "", "", other, r["target"],
                          fmt(r["met"]))
            continue
        other = r.get("device", "") if r.get("reference") else (
            f"offered {r['offered_rps']:g}/s" if r.get("offered_rps") else "")
        if r.get("errors"):
            other += f" {r['errors']} errors"
        table.add_row(r["measure"] + (" *" if r.get("reference") else ""), r["store"],
                      str(r["batch"]), fmt(r.get("p50_ms")), fmt(r.get("p99_ms")),
                      fmt(r.get("throughput_rps")), other, fmt(r.get("target")),
                      fmt(r.get("met")))
    table.caption = "* reference: Feast's published figures, not measured here"
    return table


def _main(argv: list[str] | None = None) -> int:
    """The load process: ``python -m clv_models.bench.serving --mode ... --out FILE``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("sdk", "lookup", "feast-http", "clv"),
                        required=True)
    parser.add_argument("--ids", type=Path, required=True, help="customer ids, one a line")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--url", default="")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    ids = [line for line in args.ids.read_text().splitlines() if line]
    result = run_load(args.mode, ids, args.batch, args.requests, args.warmup, args.rate,
                      args.url, seed=args.seed)
    result["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat()
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main())
