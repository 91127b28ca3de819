"""Online serving for real: `clv serve` and `feast serve` as subprocesses on free loopback ports,
live order events through the Feast push sources, and the live-update rules checked against
features recomputed from a purchase history."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from feast.data_source import PushMode

from clv_models.core.config import Config
from clv_models.evaluation import champion
from clv_models.features import live
from clv_models.features import store as features
from clv_models.features.online_lookup import OnlineLookup
from clv_models.models import load_model
from clv_models.serving import app as serve_module
from clv_models.serving.app import DOCS_ASSETS, check_binding, is_loopback
from clv_models.warehouse import dbt as warehouse
from tests.conftest import REPO as PROJECT_ROOT

#: The dbt project's trailing windows (the var every window model reads).
TRAILING_WINDOWS = warehouse.project_var(Config(), "trailing_windows")

TOKEN = "test-token-0123456789abcdef"  # a test value, not a secret
STARTUP_SECONDS = 120  # imports, model and Feast registry on 2 busy cores


# -- helpers ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url: str, body=None, token: str | None = None, raw: bytes | None = None,
            timeout: float = 30) -> tuple[int, dict | list | None]:
    """(status, JSON body) of a GET, or a POST when ``body``/``raw`` is given."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            payload = resp.read()
            return resp.status, json.loads(payload) if payload else None
    except urllib.error.HTTPError as err:
        payload = err.read()
        return err.code, json.loads(payload) if payload else None


@contextlib.contextmanager
def server(cmd: list[str], port: int, log: Path, cwd: Path, env: dict[str, str],
           ready_path: str = "/health"):
    """Start ``cmd``, wait until ``ready_path`` answers 200, yield the base URL, stop it."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{cmd[:3]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                if request(base + ready_path, timeout=2)[0] == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"{cmd[:3]} not ready in {STARTUP_SECONDS} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def clv_server(pipeline_run, tmp_path_factory):
    """`clv serve` (deep_ziln, default host) with a token, on the pipeline run's data."""
    cfg = pipeline_run.cfg
    port = free_port()
    log = tmp_path_factory.mktemp("clv_serve") / "server.log"
    env = {**os.environ, "CLV_API_TOKEN": TOKEN}
    cmd = [sys.executable, "-m", "clv_models.cli", "--data-dir", str(cfg.data_dir), "serve",
           "--port", str(port), "--log-level", "warning", "--model", "deep_ziln"]
    with server(cmd, port, log, PROJECT_ROOT, env) as base:
        yield base


@pytest.fixture(scope="module")
def feast_server(pipeline_run, tmp_path_factory):
    """`feast serve` on the pipeline run's Feast repo."""
    cfg = pipeline_run.cfg
    port = free_port()
    log = tmp_path_factory.mktemp("feast_serve") / "server.log"
    feast = Path(sys.executable).parent / "feast"
    env = {**os.environ, **cfg.env()}
    cmd = [str(feast), "serve", "--port", str(port), "--no-access-log"]
    with server(cmd, port, log, cfg.feature_repo_dir, env) as base:
        yield base


def scored(cfg, model: str = "deep_ziln", n: int = 5):
    """A few rows of the latest batch scoring of ``model`` (spread over the ranking)."""
    with duckdb.connect(str(cfg.warehouse_path), read_only=True) as con:
        rows = con.execute(
            "select customer_id, predicted_clv, p_purchase, clv_decile, segment, model_version "
            "from clv_scores_latest_by_model where model_name = ? order by predicted_clv desc",
            [model]).df()
    step = max(len(rows) // n, 1)
    return rows.iloc[::step].head(n).reset_index(drop=True)


def online_values(base: str, ids: list[str], service: str) -> dict[str, list]:
    """Feature values by name from `feast serve` (it answers column-wise)."""
    status, body = request(base + "/get-online-features",
                           {"feature_service": service, "entities": {"customer_id": ids}})
    assert status == 200, body
    names = body["metadata"]["feature_names"]
    return {name: col["values"] for name, col in zip(names, body["results"], strict=True)}


def same(a, b) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        return a is not None and b is not None and len(a) == len(b) and all(
            same(x, y) for x, y in zip(a, b, strict=True))
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-6)


# -- security defaults ------------------------------------------------------------------------
@pytest.mark.e2e
def test_binding_off_loopback_needs_a_long_token():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.0.0.5")
    check_binding("127.0.0.1", None)
    check_binding("0.0.0.0", TOKEN)
    with pytest.raises(RuntimeError, match="shorter than 16"):
        check_binding("127.0.0.1", "short")
    # The real command exits with a clear message before loading anything.
    env = {k: v for k, v in os.environ.items() if k != "CLV_API_TOKEN"}
    proc = subprocess.run([sys.executable, "-m", "clv_models.cli", "serve", "--host", "0.0.0.0"],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "refusing to listen on 0.0.0.0 without a token" in proc.stderr


# -- the CLV endpoint -------------------------------------------------------------------------
def test_health_and_openapi(clv_server, pipeline_run):
    status, health = request(clv_server + "/health")  # no token needed for probes
    assert status == 200
    model = pipeline_run.models["deep_ziln"]
    assert health["model_name"] == "deep_ziln" and health["model_version"] == model.version
    assert health["feature_service"] == "clv_v2"
    assert health["online_store"]["ok"] and health["online_store"]["type"] == "sqlite"
    assert health["deciles"]["available"]
    assert health["deciles"]["as_of_date"] == str(pipeline_run.scores.as_of_date)
    status, schema = request(clv_server + "/openapi.json")
    assert status == 200
    assert {"/health", "/v1/clv/{customer_id}", "/v1/clv"} <= set(schema["paths"])


def test_interactive_docs_need_no_cdn(clv_server):
    with urllib.request.urlopen(clv_server + "/docs", timeout=30) as resp:
        page = resp.read().decode()
    assert "cdn" not in page.lower()
    assert "http" not in page.split("<body>", 1)[1].lower()  # every asset from this server
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"{DOCS_ASSETS}/{asset}" in page
        with urllib.request.urlopen(f"{clv_server}{DOCS_ASSETS}/{asset}", timeout=30) as resp:
            assert resp.status == 200 and len(resp.read()) > 10_000


def test_token_is_required_when_configured(clv_server, pipeline_run):
    cid = scored(pipeline_run.cfg)["customer_id"][0]
    assert request(f"{clv_server}/v1/clv/{cid}")[0] == 401
    assert request(f"{clv_server}/v1/clv/{cid}", token="wrong-token-0123456789")[0] == 401
    assert request(f"{clv_server}/v1/clv", {"customer_ids": [cid]}, token="x")[0] == 401
    assert request(f"{clv_server}/v1/clv/{cid}", token=TOKEN)[0] == 200


def test_one_customer_equals_batch_scoring_and_a_direct_prediction(clv_server, pipeline_run):
    cfg = pipeline_run.cfg
    expected = scored(cfg)
    model = load_model(cfg.models_dir / "deep_ziln")
    online = features.online_features(cfg, list(expected["customer_id"]),
                                      service=model.metadata["feature_service"])
    # the model's forecast with the calibration batch scoring applies too
    calibration = champion.calibrations(champion.load(cfg))["deep_ziln"]
    direct = calibration.apply(model.predict(online))
    for i, row in expected.iterrows():
        status, got = request(f"{clv_server}/v1/clv/{row['customer_id']}", token=TOKEN)
        assert status == 200, got
        assert got["model_name"] == "deep_ziln" and got["model_version"] == row["model_version"]
        assert got["as_of_date"] == str(pipeline_run.scores.as_of_date)
        assert got["predicted_clv"] == pytest.approx(float(direct.predicted_clv[i]), rel=1e-6)
        assert got["p_purchase"] == pytest.approx(float(direct.p_purchase[i]), rel=1e-6)
        assert got["clv_p10"] <= got["clv_p50"] <= got["clv_p90"]
        # Online features are the batch's latest row: the batch's values, decile and segment.
        assert got["predicted_clv"] == pytest.approx(row["predicted_clv"], rel=1e-5)
        assert got["clv_decile"] == row["clv_decile"]
        assert got["segment"] == row["segment"]
    status, got = request(f"{clv_server}/v1/clv/{expected['customer_id'][0]}?explain=true",
                          token=TOKEN)
    assert status == 200 and len(got["top_drivers"]) == 3
    assert {"feature", "contribution"} <= set(got["top_drivers"][0])


def test_batch_unknown_and_malformed_ids(clv_server, pipeline_run):
    ids = list(scored(pipeline_run.cfg, n=3)["customer_id"])
    url = f"{clv_server}/v1/clv"
    status, body = request(url, {"customer_ids": [ids[2], "NO_SUCH_CUSTOMER", ids[0]]},
                           token=TOKEN)
    assert status == 200, body
    assert [r["customer_id"] for r in body["results"]] == [ids[2], ids[0]]
    assert body["not_found"] == ["NO_SUCH_CUSTOMER"]
    assert request(f"{url}/NO_SUCH_CUSTOMER", token=TOKEN)[0] == 404
    malformed = [
        {"customer_ids": []},
        {"customer_ids": ["x" * 129]},
        {"customer_ids": ["bad id"]},
        {"customer_ids": [123]},
        {"customer_ids": ids, "extra": 1},
        {"customer_ids": [f"C{i}" for i in range(1001)]},
        {"ids": ids},
        ids,
    ]
    for body in malformed:
        assert request(url, body, token=TOKEN)[0] == 422, body
    assert request(url, raw=b'{"customer_ids": [', token=TOKEN)[0] == 422
    assert request(f"{url}/{'x' * 129}", token=TOKEN)[0] == 422
    assert request(f"{url}/bad%20id", token=TOKEN)[0] == 422
    assert request(f"{url}/%2Fetc", token=TOKEN)[0] in (404, 422)


# -- the endpoint's read and predict paths ----------------------------------------------------
def equal(a, b) -> bool:
    """Exactly equal values, NaN equal to NaN, lists element by element."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def assert_lookup_equals_feast(cfg, ids: list[str]) -> None:
    """The endpoint's prepared lookup reads what Feast's get_online_features reads: the same
    Python values (types included) and the same row timestamps, for each feature service plus
    the segment features, unknown ids included."""
    store = features.feature_store(cfg)
    for service in ("clv_v1", "clv_v2"):
        refs = [f"{view}:{name}" for view, name in features._service_refs(store, service)]
        refs.append("customer_rfm:t_days")  # a repeated reference is read once, as by Feast
        lookup = OnlineLookup(store, refs, features.ENTITY_KEY)
        values, stamps = lookup.read(ids)
        expected = store.get_online_features(
            features=list(dict.fromkeys(refs)),
            entity_rows=[{features.ENTITY_KEY: c} for c in ids]).to_dict(
                include_event_timestamps=True)
        # The same columns (Feast orders a view's features its own way: models select by name).
        assert sorted(values) == sorted(k for k in expected if not k.endswith("__ts"))
        for name, column in values.items():
            assert all(equal(a, b) for a, b in zip(column, expected[name], strict=True)), name
        sqlite = store.config.online_store.type == "sqlite"
        for fv, fields in lookup.views:
            seconds = [feast_seconds(ts, sqlite) for ts in stamps[fv.name]]
            assert seconds == expected[f"{fields[0][0]}__ts"], fv.name


def feast_seconds(ts, sqlite: bool) -> int:
    """The ``__ts`` seconds Feast's ``to_dict`` gives for a row stamped ``ts`` (0: no row).
    Feast's SQLite store reads the stored epoch as local time and labels it UTC; the lookup
    keeps the epoch (the same on a UTC host)."""
    if ts is None:
        return 0
    if sqlite:
        local = dt.datetime.fromtimestamp(int(ts.timestamp()))
        return int(local.replace(tzinfo=dt.timezone.utc).timestamp())
    return int(ts.timestamp())


def test_the_prepared_lookup_reads_what_feast_reads(pipeline_run):
    cfg = pipeline_run.cfg
    _, entities = features.scoring_entities(cfg)
    ids = [*entities["customer_id"][::97], "NO_SUCH_CUSTOMER"]
    assert_lookup_equals_feast(cfg, ids)
    assert_lookup_equals_feast(cfg, ids[:1])


def test_predicting_from_columns_equals_the_batch_predict(pipeline_run):
    """The endpoint predicts from Feast's columns (a mapping, no DataFrame), one customer at
    a time: the same numbers as a batch predict on a DataFrame. Exactly, except the deep
    model's one-row forward pass (and the blend, which weighs it), whose float32 sums may
    round differently from a batch's (within 1e-4 relative; batch scoring's own chunks do the
    same)."""
    cfg = pipeline_run.cfg
    store = features.feature_store(cfg)
    _, entities = features.scoring_entities(cfg)
    ids = list(entities["customer_id"][::61])
    fields = ("predicted_clv", "p_purchase", "clv_p10", "clv_p50", "clv_p90")
    for name in pipeline_run.models:
        model = load_model(cfg.models_dir / name)
        service = store.get_feature_service(model.metadata.get("feature_service",
                                                               model.feature_service))
        columns = store.get_online_features(
            features=service, entity_rows=[{"customer_id": c} for c in ids]).to_dict()
        frame = pd.DataFrame(columns)
        batch, from_columns = model.predict(frame), model.predict(columns)
        for field in fields:
            a, b = getattr(batch, field), getattr(from_columns, field)
            assert (a is None and b is None) or np.array_equal(a, b), (name, field)
        # One row at a time, as the endpoint asks; a one-row DataFrame holds an all-null
        # feature as an object column (XGBoost refused those before).
        object_rows = 0
        for i in range(len(ids)):
            row = {k: v[i: i + 1] for k, v in columns.items()}
            row_frame = pd.DataFrame(row)
            one, one_frame = model.predict(row), model.predict(row_frame)
            object_rows += any(row_frame[c].dtype == np.dtype(object)
                               and pd.api.types.is_numeric_dtype(frame[c])
                               for c in model.feature_names)
            for field in fields:
                a, b, c = (getattr(p, field) for p in (batch, one, one_frame))
                if a is None:
                    assert b is None and c is None
                    continue
                assert np.array_equal(b, c), (name, field, i)
                if name in ("deep_ziln", "blend"):  # the blend weighs the deep model's forecast
                    np.testing.assert_allclose(b[0], a[i], rtol=1e-4, err_msg=f"{field} {i}")
                else:
                    assert b[0] == a[i], (name, field, i)
        if name == "xgboost":
            assert object_rows > 0  # the object-column case was exercised


def test_small_requests_run_on_the_event_loop_unless_the_service_is_busy():
    """The routes' dispatch: up to INLINE_IDS ids without explanations are scored on the
    event loop when the service is free; a busy service, a longer batch or an explanation go
    to the thread pool (a long batch must never block the loop)."""
    calls: list[tuple[str, bool]] = []

    class Service:  # stands in for CLVService's two entry points
        def __init__(self, busy: bool) -> None:
            self.busy = busy

        def try_score(self, ids, explain=False):
            calls.append(("try", threading.get_ident() == loop_thread))
            return None if self.busy else ([], list(ids))

        def score(self, ids, explain=False):
            calls.append(("score", threading.get_ident() == loop_thread))
            return [], list(ids)

    async def dispatch(service, ids, explain):
        nonlocal loop_thread
        loop_thread = threading.get_ident()
        return await serve_module.score(service, ids, explain)

    loop_thread = None
    many = [f"C{i}" for i in range(serve_module.INLINE_IDS + 1)]
    cases = [(Service(False), ["C1"], False, [("try", True)]),
             (Service(True), ["C1"], False, [("try", True), ("score", False)]),
             (Service(False), ["C1"], True, [("score", False)]),
             (Service(False), many, False, [("score", False)])]
    for service, ids, explain, expected in cases:
        calls.clear()
        assert asyncio.run(dispatch(service, ids, explain)) == ([], ids)
        assert calls == expected, (ids, explain)


# -- feast serve and the push path ------------------------------------------------------------
def test_feast_serve_answers_like_the_sdk(feast_server, pipeline_run):
    cfg = pipeline_run.cfg
    ids = [*scored(cfg, n=3)["customer_id"], "NO_SUCH_CUSTOMER"]
    http = online_values(feast_server, ids, "clv_v2")
    store = features.feature_store(cfg)
    sdk = store.get_online_features(features=store.get_feature_service("clv_v2"),
                                    entity_rows=[{"customer_id": c} for c in ids]).to_dict()
    assert set(http) == set(sdk)
    for name, values in sdk.items():
        assert all(same(a, b) for a, b in zip(http[name], values, strict=True)), name
    assert http["order_count"][-1] is None  # unknown customer: nulls, as the SDK


def test_pushed_order_is_visible_within_a_second(feast_server, clv_server, pipeline_run):
    cfg = pipeline_run.cfg
    cid = scored(cfg, n=2)["customer_id"][1]
    store = features.feature_store(cfg)
    names = live.view_features(store)
    as_of, original = live.read_rows(store, cid, names)
    before = online_values(feast_server, [cid], "clv_v1")
    _, clv_before = request(f"{clv_server}/v1/clv/{cid}", token=TOKEN)
    try:
        start = time.perf_counter()
        result = live.push_event(cfg, live.LiveEvent(cid, "order", 250.0), store=store,
                                 names=names)
        while True:  # poll feast serve over HTTP until the new values show
            now = online_values(feast_server, [cid], "clv_v1")
            if now["order_count"][0] == before["order_count"][0] + 1:
                break
            assert time.perf_counter() - start < 5, "push not visible after 5 s"
        latency = time.perf_counter() - start
        print(f"\npush-to-visible over feast serve: {latency * 1000:.0f} ms "
              f"(push itself {result.seconds * 1000:.0f} ms)")
        assert latency < 1.0
        assert now["days_since_last_order"] == [1]
        assert now["net_revenue_30d"][0] == pytest.approx(before["net_revenue_30d"][0] + 250.0)
        assert now["net_revenue"][0] == pytest.approx(before["net_revenue"][0] + 250.0)
        # The CLV endpoint predicts from the new values at once.
        _, clv_after = request(f"{clv_server}/v1/clv/{cid}", token=TOKEN)
        model = load_model(cfg.models_dir / "deep_ziln")
        calibration = champion.calibrations(champion.load(cfg))["deep_ziln"]
        direct = calibration.apply(
            model.predict(features.online_features(cfg, [cid], service="clv_v2")))
        assert clv_after["predicted_clv"] == pytest.approx(float(direct.predicted_clv[0]))
        assert clv_after["predicted_clv"] != pytest.approx(clv_before["predicted_clv"])
        # A return takes the refund off the net revenue.
        live.push_event(cfg, live.LiveEvent(cid, "return", 50.0), store=store, names=names)
        after_return = online_values(feast_server, [cid], "clv_v1")
        assert after_return["net_revenue_30d"][0] == pytest.approx(now["net_revenue_30d"][0] - 50)
        assert after_return["return_count"][0] == before["return_count"][0] + 1
        # Events the batch row already holds are refused; unknown customers too.
        with pytest.raises(ValueError, match="before the online row's as-of date"):
            live.push_event(cfg, live.LiveEvent(cid, "order", 1.0,
                                                as_of - dt.timedelta(days=1)), store=store)
        with pytest.raises(live.UnknownCustomerError):
            live.push_event(cfg, live.LiveEvent("NO_SUCH_CUSTOMER", "order", 1.0), store=store)
    finally:  # leave the session's online store as the batch built it
        for view, row in original.items():
            store.push(f"{view}_push", pd.DataFrame([{"customer_id": cid,
                                                       "event_timestamp": pd.Timestamp(as_of),
                                                       **row}]), to=PushMode.ONLINE)
    assert online_values(feast_server, [cid], "clv_v1") == before


# -- the live-update rules --------------------------------------------------------------------
def history_features(orders: list[tuple[dt.date, float]], t: dt.date) -> dict:
    """customer_rfm / customer_timeseries values at as-of date ``t`` recomputed from orders,
    following the marts' SQL (repeat purchase days, population std of the gaps)."""
    orders = [(d, a) for d, a in orders if d < t]
    day_revenue: dict[dt.date, float] = {}
    for d, a in orders:
        day_revenue[d] = day_revenue.get(d, 0.0) + a
    days = sorted(day_revenue)
    gross = sum(a for _, a in orders)
    gaps = [(b - a).days for a, b in zip(days, days[1:], strict=False)]
    out = {
        "frequency": len(days) - 1, "recency_days": (days[-1] - days[0]).days,
        "t_days": (t - days[0]).days,
        "monetary_value": (gross - day_revenue[days[0]]) / (len(days) - 1) if len(days) > 1
        else 0.0,
        "days_since_last_order": (t - days[-1]).days, "order_count": len(orders),
        "gross_revenue": gross, "refund_amount": 0.0, "net_revenue": gross,
        "avg_order_value": gross / len(orders), "first_order_value": day_revenue[days[0]],
        "inter_purchase_days_mean": sum(gaps) / len(gaps) if gaps else None,
        "inter_purchase_days_std": math.sqrt(max(sum(g * g for g in gaps) / len(gaps)
                                                 - (sum(gaps) / len(gaps)) ** 2, 0))
        if len(gaps) > 1 else None,
        "weekly_net_revenue_52w": [sum(a for d, a in orders if (t - d).days in range(
            7 * w + 1, 7 * w + 8)) for w in range(52)],
    }
    for w in TRAILING_WINDOWS:
        recent = [a for d, a in orders if (t - d).days <= w]
        out[f"orders_{w}d"], out[f"gross_revenue_{w}d"] = len(recent), sum(recent)
        out[f"net_revenue_{w}d"], out[f"refunds_{w}d"] = sum(recent), 0.0
    recent = len([d for d, _ in orders if (t - d).days <= 90])
    previous = len([d for d, _ in orders if 90 < (t - d).days <= 180])
    out["order_trend_90d"] = recent - previous
    out["net_revenue_trend_90d"] = (
        sum(a for d, a in orders if (t - d).days <= 90)
        - sum(a for d, a in orders if 90 < (t - d).days <= 180))
    return out


def as_rows(values: dict) -> dict[str, dict]:
    rfm = ["frequency", "recency_days", "t_days", "monetary_value", "days_since_last_order",
           "order_count", "gross_revenue", "refund_amount", "net_revenue", "avg_order_value",
           "first_order_value"]
    return {
        "customer_rfm": {k: values[k] for k in rfm},
        "customer_timeseries": {k: v for k, v in values.items() if k not in rfm},
        "customer_returns": {"return_count": 0, "returns_per_order": 0.0, "refund_share": 0.0,
                             "mean_days_to_return": None},
        "customer_engagement": {"view_count": 12, "session_count": 4, "product_view_count": 6,
                                "orders_per_session": values["order_count"] / 4,
                                "days_since_last_view": 3, "views_since_last_order": 2},
    }


@pytest.mark.parametrize("history", [
    [(-200, 40.0), (-120, 25.0), (-50, 80.0), (-20, 10.0)],  # a new repeat purchase day
    [(-200, 40.0), (-120, 25.0), (-1, 30.0)],  # again on the last purchase day
    [(-1, 30.0)],  # the first purchase day again
    [(-30, 30.0)],  # the second purchase day
    [(-300, 5.0), (-30, 30.0)],  # the third: the gaps' spread appears
])
def test_an_order_updates_rows_as_a_rebuild_would(history):
    t = dt.date(2026, 1, 1)
    orders = [(t + dt.timedelta(days=d), a) for d, a in history]
    rows = as_rows(history_features(orders, t))
    updated = live.apply_event(rows, live.LiveEvent("C1", "order", 55.5))
    expected = as_rows(history_features([*orders, (t - dt.timedelta(days=1), 55.5)], t))
    for view in ("customer_rfm", "customer_timeseries"):
        for name, value in expected[view].items():
            assert same(updated[view][name], value), (view, name, updated[view][name], value)
    assert updated["customer_engagement"]["views_since_last_order"] == 0
    assert updated["customer_engagement"]["orders_per_session"] == pytest.approx(
        (len(orders) + 1) / 4)
    assert rows == as_rows(history_features(orders, t))  # the input is left alone


def test_a_return_updates_refunds_and_net_revenue():
    t = dt.date(2026, 1, 1)
    orders = [(t - dt.timedelta(days=40), 100.0), (t - dt.timedelta(days=10), 60.0)]
    rows = as_rows(history_features(orders, t))
    updated = live.apply_event(rows, live.LiveEvent("C1", "return", 25.0))
    assert set(updated) == {"customer_rfm", "customer_timeseries", "customer_returns"}
    assert updated["customer_rfm"]["refund_amount"] == 25.0
    assert updated["customer_rfm"]["net_revenue"] == 135.0
    assert updated["customer_rfm"]["order_count"] == 2
    assert updated["customer_timeseries"]["net_revenue_7d"] == -25.0
    assert updated["customer_timeseries"]["net_revenue_30d"] == 35.0
    assert updated["customer_timeseries"]["refunds_365d"] == 25.0
    assert updated["customer_timeseries"]["weekly_net_revenue_52w"][0] == -25.0
    assert updated["customer_returns"]["return_count"] == 1
    assert updated["customer_returns"]["returns_per_order"] == 0.5
    assert updated["customer_returns"]["refund_share"] == pytest.approx(25 / 160)
    with pytest.raises(ValueError, match="amount"):
        live.LiveEvent("C1", "order", -1.0)
    with pytest.raises(ValueError, match="kind"):
        live.LiveEvent("C1", "refund", 1.0)

