"""Security checks: the HTTP APIs fuzzed from their OpenAPI schemas (schemathesis, servers
started for real on loopback), the CLV endpoint's request limits, and no secrets in the
tracked files.

The fuzz runs here are short (a fixed seed, a few examples per operation); ``python
scripts/fuzz_apis.py`` runs the same with many more. See :mod:`tests.harness.fuzz` for what
counts as a failure and for Feast's documented 5xx.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from test_serving import TOKEN, clv_server, free_port, request, server  # noqa: F401

from clv_models.bench.serving import store_data_dir
from clv_models.core.config import OnlineStoreConfig
from clv_models.features import store as features
from clv_models.serving.app import MAX_BODY_BYTES
from tests.conftest import REPO as PROJECT_ROOT
from tests.harness import fuzz

SEED = 20261123  # fixed: the same cases on every run (the script draws new ones)
EXAMPLES = 15  # per operation and phase
WRITE_EXAMPLES = 8  # Feast's write operations: a valid /materialize takes seconds


def feast_serve(cfg, tmp_path_factory, name: str):
    """``feast serve`` on ``cfg``'s repo. ``--max-requests 0``: by default gunicorn recycles
    the worker after ~1,000 requests, dropping the connection in flight."""
    log = tmp_path_factory.mktemp(name) / "server.log"
    port = free_port()
    cmd = [str(Path(sys.executable).parent / "feast"), "serve", "--port", str(port),
           "--no-access-log", "--max-requests", "0"]
    return server(cmd, port, log, cfg.feature_repo_dir, {**os.environ, **cfg.env()})


@pytest.fixture(scope="module")
def feast_reader(pipeline_run, tmp_path_factory):
    """``feast serve`` on the pipeline run's own online store (fuzzed with reads only)."""
    with feast_serve(pipeline_run.cfg, tmp_path_factory, "feast_reader") as base:
        yield base


@pytest.fixture(scope="module")
def feast_writer(pipeline_run, tmp_path_factory):
    """``feast serve`` on a scratch registry and online store, with a copy of the features
    (offline pushes rewrite them): the write operations change nothing the other tests read."""
    cfg = store_data_dir(pipeline_run.cfg, tmp_path_factory.mktemp("feast-scratch"),
                         OnlineStoreConfig(), copies=("features",))
    features.apply(cfg)
    with feast_serve(cfg, tmp_path_factory, "feast_writer") as base:
        yield base


def _assert_ok(result: fuzz.FuzzResult, checks: bool = True) -> None:
    print(f"\n{result.summary()}")
    assert result.cases > 0 and result.requests > 0
    assert result.ok(checks), f"{result.summary()}\n{result.output[-4000:]}"


# -- the CLV endpoint -------------------------------------------------------------------------
def test_fuzz_clv_endpoint(clv_server, pipeline_run, tmp_path):  # noqa: F811
    """Every schemathesis check (no 5xx, statuses, content types and bodies as documented,
    auth enforced, invalid data rejected) with the token, half the ids real customers."""
    cfg = pipeline_run.cfg
    config = fuzz.clv_config(tmp_path / "clv.toml", fuzz.sample_customer_ids(cfg))
    result = fuzz.fuzz("clv", clv_server, tmp_path, max_examples=EXAMPLES, seed=SEED,
                       checks="all", headers={"Authorization": f"Bearer {TOKEN}"},
                       config=config)
    _assert_ok(result)
    assert not result.server_errors
    statuses = {(m, p, s) for m, p, s in result.statuses}
    # The cases reached the model (200), the validation (422) and the auth check (401).
    for path, method in (("/v1/clv/{customer_id}", "GET"), ("/v1/clv", "POST")):
        for status in (200, 401, 422):
            assert (method, path, status) in statuses, (method, path, status)


def test_clv_endpoint_request_limits(clv_server):  # noqa: F811
    url = f"{clv_server}/v1/clv"
    big = json.dumps({"customer_ids": ["C1"] * (MAX_BODY_BYTES // 5)}).encode()
    assert len(big) > MAX_BODY_BYTES
    too_large = urllib.request.Request(url, data=big, headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    with pytest.raises(urllib.error.HTTPError) as refused:  # answered before it is read
        urllib.request.urlopen(too_large, timeout=30)
    assert refused.value.code == 413
    assert request(url, raw=b'{"customer_ids": ["\xff"]}', token=TOKEN)[0] == 400
    status, body = request(url, {"customer_ids": ["C1"] * 1000}, token=TOKEN)
    assert status == 200, body  # the largest allowed batch is under the cap
    assert request(url, {"customer_ids": ["C1"]})[0] == 401  # the cap does not bypass auth


def test_servers_listen_on_loopback_only(clv_server, feast_reader):  # noqa: F811
    """Started without --host, ``clv serve`` and ``feast serve`` listen on 127.0.0.1 alone."""
    import psutil

    for base in (clv_server, feast_reader):
        port = int(base.rsplit(":", 1)[1])
        addresses = {c.laddr.ip for c in psutil.net_connections("tcp")
                     if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
        assert addresses == {"127.0.0.1"}, (base, addresses)


# -- Feast's feature server -------------------------------------------------------------------
def test_fuzz_feast_read_contract(feast_reader, pipeline_run, tmp_path):
    """Requests within Feast's read contract never get a 5xx (no exceptions)."""
    cfg = pipeline_run.cfg
    schema = fuzz.feast_contract_file(tmp_path / "contract.json", cfg, feast_reader)
    config = fuzz.write_config(tmp_path / "contract.toml",
                               {"customers": fuzz.sample_customer_ids(cfg)},
                               {"body.entities.customer_id[*]": ("customers", 0.5)})
    result = fuzz.fuzz("feast-contract", feast_reader, tmp_path, max_examples=EXAMPLES * 3,
                       seed=SEED, mode="positive", schema=schema, config=config)
    _assert_ok(result)
    assert not result.server_errors
    assert result.statuses[("POST", "/get-online-features", 200)] >= EXAMPLES


def test_fuzz_feast_every_operation(feast_reader, feast_writer, pipeline_run, tmp_path):
    """Valid and malformed requests to every ``feast serve`` operation: each 5xx must be
    Feast's exception handler turning an SDK exception into a 500 (documented, not fixable
    from our side); any other 5xx, a dropped connection or a broken run fails."""
    cfg = pipeline_run.cfg
    served = request(f"{feast_reader}/openapi.json")[1]["paths"]  # every operation covered
    assert set(served) == set(fuzz.FEAST_READ_PATHS) | set(fuzz.FEAST_WRITE_PATHS)
    config = fuzz.feast_config(tmp_path / "feast.toml", cfg, fuzz.sample_customer_ids(cfg))
    results = [
        fuzz.fuzz("feast-read", feast_reader, tmp_path, max_examples=EXAMPLES, seed=SEED,
                  config=config, include_paths=fuzz.FEAST_READ_PATHS,
                  explain=fuzz.explain_feast),
        fuzz.fuzz("feast-write", feast_writer, tmp_path, max_examples=WRITE_EXAMPLES, seed=SEED,
                  config=config, include_paths=fuzz.FEAST_WRITE_PATHS,
                  explain=fuzz.explain_feast),
    ]
    for result in results:
        _assert_ok(result, checks=False)
    assert request(f"{feast_reader}/health")[0] == 200
    assert request(f"{feast_writer}/health")[0] == 200


def test_feast_documented_5xx_still_happen(feast_reader, feast_writer):
    """Each documented Feast 5xx, from its minimal example. When a Feast upgrade answers one
    with a 4xx, this fails: drop it from ``fuzz.FEAST_KNOWN_5XX`` (and docs/reliability.md)."""
    for known in fuzz.FEAST_KNOWN_5XX:
        base = feast_writer if known.path in fuzz.FEAST_WRITE_PATHS else feast_reader
        status, body = request(base + known.path, raw=known.example.encode())
        assert status == 500, (known, status, body)
        assert isinstance(body, str) and re.search(known.message, body), (known, body)


# -- external input ---------------------------------------------------------------------------
def test_live_events_and_config_values_are_checked_before_use():
    import datetime as dt

    from clv_models.core.config import ConfigError, load_config
    from clv_models.features.live import MAX_AMOUNT, LiveEvent

    good = {"customer_id": "C1", "kind": "order", "amount": 10.0}
    LiveEvent(**good)
    LiveEvent(**{**good, "amount": MAX_AMOUNT})
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
    for bad in ({"amount": MAX_AMOUNT * 2}, {"amount": float("inf")}, {"amount": -1.0},
                {"customer_id": "C" * 129}, {"customer_id": "C1\n"}, {"customer_id": ""},
                {"kind": "refund"}, {"at": future}):
        with pytest.raises(ValueError):
            LiveEvent(**{**good, **bad})
    # as_of.unit reaches dbt's SQL as a date part: only day, week, month.
    with pytest.raises(ConfigError, match="as_of.unit"):
        load_config(None, {"as_of.unit": "day) as x --"})
    with pytest.raises(ConfigError, match="as_of.every"):
        load_config(None, {"as_of.every": 0})


# -- SQL text ---------------------------------------------------------------------------------
def test_sql_quoting_round_trips_through_duckdb(tmp_path):
    """A path and a name with quotes and SQL in them stay one literal and one identifier."""
    import duckdb

    from clv_models.core import sql

    path = tmp_path / "it's'); drop table t; --.parquet"
    name = 'x"; drop table t; --'
    with duckdb.connect() as con:
        con.execute("create table t (a int)")
        con.execute(f"copy (select 7 as a) to {sql.literal(path)} (format parquet)")
        con.execute(f"create table {sql.identifier(name)} as select * from "  # noqa: S608
                    f"read_parquet({sql.literal(path)})")
        assert con.execute(f"select a from {sql.identifier(name)}").fetchall() == [(7,)]  # noqa: S608
        assert con.execute("select count(*) from t").fetchone() == (0,)  # still there
    with pytest.raises(ValueError, match="unexpected SQL identifier"):
        sql.identifier("clv_scores; drop table t", allowed=("clv_scores",))
    with pytest.raises(ValueError):
        sql.literal("a" + chr(0) + "b")


# -- model artefacts ------------------------------------------------------------------------
class _Payload:
    """Pickles to a call of ``Path.touch(marker)``: loading it runs code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_model_artefacts_load_without_running_code(pipeline_run, tmp_path):
    """A deep model whose weights file carries a pickled call is refused, and the call never
    runs (``torch.load(weights_only=True)``); a metadata file naming another class too."""
    import torch

    from clv_models.models import load_model

    model_dir = tmp_path / "deep_ziln"
    shutil.copytree(pipeline_run.cfg.models_dir / "deep_ziln", model_dir)
    marker = tmp_path / "code-ran"
    torch.save({"weights": _Payload(marker)}, model_dir / "weights.pt")
    with pytest.raises(pickle.UnpicklingError):
        load_model(model_dir)
    assert not marker.exists()
    torch.load(model_dir / "weights.pt", weights_only=False)  # noqa: S614 - the control
    assert marker.exists()  # the payload is real: an unrestricted load runs it
    meta = json.loads((model_dir / "metadata.json").read_text())
    (model_dir / "metadata.json").write_text(json.dumps({**meta, "model_name": "os.system"}))
    with pytest.raises(ValueError, match="unknown model_name"):
        load_model(model_dir)


# -- no secrets in the repository -------------------------------------------------------------
#: What a committed secret looks like: cloud and forge tokens, private keys, bearer tokens,
#: credentials in URLs and assignments of long literals to secret-sounding names.
SECRET_PATTERNS = {
    "aws access key": r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    "private key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    "github token": r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",
    "slack token": r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
    "bearer token": r"Bearer\s+[A-Za-z0-9._~+/=-]{16,}",
    "password in URL": r"[a-z][a-z0-9+.-]*://[^\s/:@'\"\[\]]*:[^\s/@'\"\[\]{}]+@",
    "secret assignment": r"(?i)\b(?:password|passwd|secret|api_?key|access_?key|token)\w*"
                         r"\s*[:=]\s*['\"][^'\"\s{}]{8,}['\"]",
    "password=": r"(?i)\bpassword=[^\s,'\"{}<>)]+",
}
#: The matches that are not secrets: (file, pattern, a fragment of the match).
SECRET_ALLOWED = {
    ("clv_models/core/config.py", "password=", "..."),  # a docstring's placeholder
    ("tests/test_redis.py", "password in URL", "s3cret"),  # a parsed test URL, no server
    ("tests/test_redis.py", "password=", "s3cret"),
    ("tests/test_serving.py", "secret assignment", "test-token-"),  # the test server's token
    ("tests/test_serving.py", "secret assignment", "wrong-token-"),
}


def find_secrets(name: str, text: str) -> list[tuple[str, str, str]]:
    """(file, pattern, match) for every secret-looking string in ``text`` not allowed."""
    found = []
    for pattern, regex in SECRET_PATTERNS.items():
        for match in re.finditer(regex, text):
            if not any(f == name and p == pattern and fragment in match.group(0)
                       for f, p, fragment in SECRET_ALLOWED):
                found.append((name, pattern, match.group(0)))
    return found


def test_secret_patterns_catch_secrets():
    """The scan finds one planted example of each kind (built here, never committed)."""
    planted = {
        "aws access key": "AKIA" + "Q" * 16,
        "private key": "-----BEGIN RSA " + "PRIVATE KEY-----",
        "github token": "ghp_" + "a1" * 18,
        "slack token": "xoxb-" + "1234567890-abc",
        "bearer token": "Authorization: Bearer " + "eyJhbGciOi.J9x" * 2,
        "password in URL": "redis://" + "admin:hunter2hunter2@" + "db:6379/0",
        "secret assignment": "api_key = '" + "9f8e7d6c5b4a" + "'",
        "password=": "host:6379,password" + "=hunter2",
    }
    for pattern, text in planted.items():
        assert pattern in {p for _, p, _ in find_secrets("x.py", text)}, (pattern, text)


def test_no_secrets_in_tracked_files():
    files = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    found, scanned = [], 0
    for name in filter(None, files):
        path = PROJECT_ROOT / name
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary files; a file deleted in the working tree
        scanned += 1
        found += find_secrets(name, text)
    assert scanned > 50
    assert not found, found
