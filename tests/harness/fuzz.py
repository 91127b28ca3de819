"""Schema-driven fuzzing of the HTTP APIs (``clv serve`` and Feast's ``feast serve``) with
schemathesis, against servers started for real on loopback.

:func:`fuzz` runs the schemathesis command line (``schemathesis run``, a ``dev`` dependency)
against one running server: an OpenAPI schema drives the coverage (boundary and negative
values), fuzzing and stateful phases. It reads the run's JSON report (how many test cases were
generated, which checks failed) and its HAR file (every request and response), and returns a
:class:`FuzzResult`: cases, requests, statuses per operation and every 5xx with its request.

Our endpoint gets every schemathesis check: any 5xx, and any response its schema does not
document, fails. Feast's feature server cannot pass that (measured on Feast 0.67.0):

* Its exception handler (``rest_exception_handler`` in ``feast/feature_server.py``) answers
  500 with the exception's text as a JSON string for *any* exception the SDK raises, so every
  request its request model accepts but the SDK rejects (an empty feature list, a feature
  reference without ``view:feature``, entity rows of different lengths, an unparsable date,
  a DataFrame pandas cannot build...) is a 500 instead of a 4xx: :data:`FEAST_KNOWN_5XX` lists
  the inputs found, with the message each gets. No ``feast serve`` option or
  ``feature_store.yaml`` setting changes the handler, and Feast is pinned to 0.67.0, so it
  cannot be fixed from our side. Those 5xx are counted and reported; a 5xx that is not this
  handler's answer (another status, a body that is not its JSON string, a dropped
  connection) is *unexplained* and fails.
* Requests within Feast's real read contract (:func:`feast_contract_schema`: a feature
  service or references of this registry, ``customer_id`` rows of strings) must never get a
  5xx: that run has no exceptions at all.

Used by ``tests/test_security.py`` (few examples per operation, in ``make test``) and
``scripts/fuzz_apis.py`` (many more, by hand).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clv_models.core.config import Config

#: ``feast serve`` operations that only read (fuzzed against the shop's own online store) and
#: those that write (fuzzed against a scratch copy, see ``bench_serving.store_data_dir``).
FEAST_READ_PATHS = ("/get-online-features", "/search", "/v1/vector_stores",
                    "/v1/vector_stores/{vector_store_id}",
                    "/v1/vector_stores/{vector_store_id}/search", "/health", "/chat")
FEAST_WRITE_PATHS = ("/push", "/write-to-online-store", "/materialize",
                     "/materialize-incremental")
#: The feature service whose references the contract run asks for (distinct feature names).
CONTRACT_SERVICE = "clv_v1"


class FuzzError(RuntimeError):
    """Schemathesis could not run, or its reports are missing."""


@dataclass(frozen=True)
class KnownServerError:
    """An input of a third-party API that gets a 5xx we cannot fix from our side.

    ``path`` is the request path, ``message`` a regular expression searched in the response
    body, ``trigger`` says which inputs cause it (``example``: a minimal request body).
    """

    path: str
    message: str
    trigger: str
    example: str = ""

    def matches(self, path: str, body: str) -> bool:
        return path == self.path and re.search(self.message, body) is not None


_PANDAS_FRAME = (r"If using all scalar values|All arrays must be of the same length|"
                 r"Mixing dicts with non-Series|are in the \[columns\]")

#: Feast 0.67.0 ``feast serve``: inputs its request models accept that get a 500 (the SDK's
#: exception as a JSON string) instead of a 4xx. Found by ``scripts/fuzz_apis.py``; the
#: ``example`` bodies are checked to still get a 500 by ``tests/test_security.py``.
FEAST_KNOWN_5XX: tuple[KnownServerError, ...] = (
    KnownServerError("/get-online-features", r"No features specified for retrieval",
                     "no feature_service and an empty features list",
                     '{"entities": {"customer_id": ["C1"]}, "features": []}'),
    KnownServerError("/get-online-features", r"Invalid feature reference",
                     "a features entry not of the form view:feature",
                     '{"entities": {"customer_id": ["C1"]}, "features": ["x"]}'),
    KnownServerError("/get-online-features", r"Duplicate features named",
                     "the same feature name twice (a reference repeated, or two views' "
                     "features of one name without full_feature_names)",
                     '{"entities": {"customer_id": ["C1"]}, '
                     '"features": ["customer_rfm:frequency", "customer_rfm:frequency"]}'),
    KnownServerError("/get-online-features", r"Missing join key values|"
                     r"All entity rows must have the same columns|pop from an empty set",
                     "entities without customer_id, of other keys, or of unequal lengths",
                     '{"entities": {}, "feature_service": "clv_v1"}'),
    KnownServerError("/get-online-features", r"cannot be converted into Feast value type|"
                     r"Couldn't infer value type|Expected dict for MAP type|recursion is not "
                     r"allowed|object is not iterable|attribute name must be string|"
                     r"List value type for field|Value must be iterable|cannot be interpreted "
                     r"as an integer|Expecting value",
                     "entity values that are not scalars of the key's type (null, lists, maps)",
                     '{"entities": {"customer_id": [null]}, "feature_service": "clv_v1"}'),
    KnownServerError("/search", r"No features specified|Invalid feature reference|"
                     r"list index out of range|object is not iterable|sqlite-vss is not "
                     r"enabled|Document retrieval only supports a single feature view",
                     "any request: no or malformed features, or well-formed ones against an "
                     "online store without vector search (ours: SQLite without sqlite-vss)",
                     '{"features": []}'),
    KnownServerError("/materialize", r"start_ts and end_ts are required|"
                     r"Invalid timestamp format|Unknown string format|does not contain a date",
                     "start_ts/end_ts null or not a date",
                     '{"start_ts": null, "end_ts": null}'),
    KnownServerError("/materialize", r"--version requires --views|Version-aware "
                     r"materialization requires",
                     "a version (needs exactly one view and registry versioning)",
                     '{"start_ts": null, "end_ts": null, "version": "", "feature_views": []}'),
    KnownServerError("/materialize-incremental", r"does not contain a date|"
                     r"Unknown string format|--version requires --views|Version-aware "
                     r"materialization requires",
                     "an end_ts that is not a date, or a version",
                     '{"end_ts": ""}'),
    KnownServerError("/push", r"is not a supported push format",
                     "a `to` other than online, offline, online_and_offline",
                     '{"push_source_name": "customer_rfm_push", "df": {}, "to": "x"}'),
    KnownServerError("/push", _PANDAS_FRAME + r"|do not match the batch source columns",
                     "a df that is not the push source's columns as equal-length lists",
                     '{"push_source_name": "customer_rfm_push", "df": {"a": 1}}'),
    KnownServerError("/write-to-online-store", _PANDAS_FRAME,
                     "a df that is not the view's columns as equal-length lists",
                     '{"feature_view_name": "customer_rfm", "df": {"a": 1}}'),
)


def feast_catch_all(status: int, body: str) -> bool:
    """Whether a response is Feast's exception handler answering an SDK exception: 500 with
    the exception's text (or a FeastError's JSON detail) as a JSON string."""
    if status != 500:
        return False
    try:
        return isinstance(json.loads(body), str)
    except ValueError:
        return False


@dataclass
class ServerErrorCase:
    """One 5xx response and the request that caused it; ``label`` names the documented
    third-party defect it belongs to (None: unexplained)."""

    method: str
    path: str
    status: int
    body: str
    request: str
    label: str | None = None

    def describe(self) -> str:
        return (f"{self.method} {self.path} -> {self.status}: {self.body[:200]!r} "
                f"(request body {self.request[:300]!r})")


#: Decides whether a 5xx is a documented defect: returns its label, or None (unexplained).
Explainer = Callable[[ServerErrorCase], "str | None"]


def explain_feast(case: ServerErrorCase) -> str | None:
    """A Feast 5xx's label: the matching :data:`FEAST_KNOWN_5XX` entry, another SDK exception
    turned into a 500 by the same handler, or None when it is not that handler's answer."""
    if not feast_catch_all(case.status, case.body):
        return None
    for known in FEAST_KNOWN_5XX:
        if known.matches(case.path, case.body):
            return f"{known.path}: {known.trigger}"
    return f"{case.path}: other SDK exception ({json.loads(case.body)[:80]})"


@dataclass
class FuzzResult:
    """What one schemathesis run against one server did and found."""

    api: str
    cases: int  # test cases schemathesis generated (its JSON report's count)
    requests: int  # HTTP requests sent (the HAR file's entries)
    seed: int | None = None
    seconds: float = 0.0  # schemathesis' running time
    statuses: Counter = field(default_factory=Counter)  # (method, path, status) -> count
    server_errors: list[ServerErrorCase] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)  # the report's failures
    errors: list[Any] = field(default_factory=list)  # the report's errors (runs that broke)
    exit_code: int = 0
    output: str = ""

    @property
    def unexplained(self) -> list[ServerErrorCase]:
        """5xx responses that no documented third-party defect accounts for."""
        return [e for e in self.server_errors if e.label is None]

    @property
    def check_failures(self) -> list[dict[str, Any]]:
        """Failed checks other than 5xx (schema conformance, auth...)."""
        return [f for f in self.failures if f.get("code") != "ST101"]

    def labels(self) -> Counter:
        """How many 5xx each documented defect accounts for."""
        return Counter(e.label for e in self.server_errors if e.label is not None)

    def ok(self, checks: bool = True) -> bool:
        """No unexplained 5xx, no broken run and (``checks``) no other failed check."""
        return not self.unexplained and not self.errors and not (
            checks and self.check_failures)

    def summary(self) -> str:
        """Counts, then every unexplained 5xx, failed check and documented defect."""
        lines = [f"{self.api}: {self.cases:,} test cases, {self.requests:,} requests "
                 f"in {self.seconds:.0f} s (seed {self.seed}), {len(self.server_errors):,} 5xx "
                 f"({len(self.unexplained):,} unexplained), {len(self.check_failures)} "
                 "other failed check(s)"]
        lines += [f"  UNEXPLAINED {e.describe()}" for e in unique_cases(self.unexplained)]
        lines += [f"  FAILED CHECK {f.get('code')} {f.get('title')}: {f.get('operations')}"
                  for f in self.check_failures]
        lines += [f"  ERRORED {e}" for e in self.errors]
        lines += [f"  documented 5xx ({n}x) {label}"
                  for label, n in sorted(self.labels().items(), key=lambda kv: -kv[1])]
        return "\n".join(lines)


def unique_cases(cases: list[ServerErrorCase]) -> list[ServerErrorCase]:
    seen: dict[tuple[str, str, str], ServerErrorCase] = {}
    for case in cases:
        seen.setdefault((case.method, case.path, case.body[:80]), case)
    return list(seen.values())


def schemathesis_command() -> str:
    """The schemathesis executable of this environment (a ``dev`` dependency)."""
    here = Path(sys.executable).parent / "schemathesis"
    found = str(here) if here.exists() else shutil.which("schemathesis")
    if not found:
        raise FuzzError("schemathesis is not installed: pip install -e '.[dev]'")
    return found


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)  # strings, numbers and lists of them read the same in TOML


def write_config(path: Path, dictionaries: dict[str, list[str]],
                 bindings: dict[str, tuple[str, float]]) -> Path:
    """A ``schemathesis.toml`` making generated values come, with a probability, from value
    lists (``dictionaries``: real customer ids, feature services, view names), so the cases
    reach the code behind the lookups instead of only their 404/422 answers.

    ``bindings`` maps a parameter (``path.customer_id``, ``body.customer_ids[*]``...) to
    ``(dictionary, probability)``.
    """
    lines = ["[cache]", "enabled = false", ""]  # every run from scratch, nothing replayed
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {_toml_value(list(values))}", ""]
    lines.append("[parameters]")
    for parameter, (dictionary, probability) in bindings.items():
        lines.append(f"{json.dumps(parameter)} = "
                     f"{_toml_value({'dictionary': dictionary, 'probability': probability})}")
    path.write_text("\n".join(lines) + "\n")
    return path


def feast_contract_schema(schema: dict[str, Any], services: list[str],
                          references: list[str], max_rows: int = 100) -> dict[str, Any]:
    """Feast's OpenAPI schema narrowed to its real read contract: ``/health`` and
    ``/get-online-features`` with a feature service or feature references of this registry
    (distinct, and ``references`` of distinct feature names) and one ``customer_id`` list of 1
    to ``max_rows`` strings (any strings: unknown ids must come back as nulls, not errors).

    Everything this schema allows is a request Feast must answer without a 5xx.
    """
    out = copy.deepcopy(schema)
    out["paths"] = {p: out["paths"][p] for p in ("/health", "/get-online-features")}
    entities = {"type": "object", "additionalProperties": False, "required": ["customer_id"],
                "properties": {"customer_id": {"type": "array", "minItems": 1,
                                               "maxItems": max_rows,
                                               "items": {"type": "string"}}}}
    common = {"entities": entities, "full_feature_names": {"type": "boolean"}}
    out["components"]["schemas"]["GetOnlineFeaturesRequest"] = {
        "title": "GetOnlineFeaturesRequest", "oneOf": [
            {"type": "object", "additionalProperties": False,
             "required": ["entities", "feature_service"],
             "properties": {**common, "feature_service": {"enum": services}}},
            {"type": "object", "additionalProperties": False, "required": ["entities", "features"],
             "properties": {**common, "features": {"type": "array", "minItems": 1,
                                                   "uniqueItems": True,
                                                   "items": {"enum": references}}}},
        ]}
    return out


def sample_customer_ids(cfg: Config, n: int = 20) -> list[str]:
    """``n`` customer ids that have online features (from the features' Parquet export)."""
    import duckdb

    path = cfg.resolved().features_dir / "customer_rfm.parquet"
    with duckdb.connect() as con:
        rows = con.execute("select distinct customer_id from read_parquet(?) "
                           "order by customer_id limit ?", [str(path), n]).fetchall()
    return [r[0] for r in rows]


def clv_config(path: Path, customer_ids: list[str]) -> Path:
    """The schemathesis configuration of the CLV endpoint: half the generated ids are real
    customers (so cases reach the model and the deciles), half anything the schema allows."""
    return write_config(path, {"customers": customer_ids},
                        {"path.customer_id": ("customers", 0.5),
                         "body.customer_ids[*]": ("customers", 0.5)})


def feast_config(path: Path, cfg: Config, customer_ids: list[str]) -> Path:
    """The schemathesis configuration of ``feast serve``: half the generated names are this
    registry's (feature services, references, views, push sources, push modes) and half the
    entity values real customer ids, so malformed cases are malformed in one place at a time."""
    from clv_models.features import store as features

    store = features.feature_store(cfg)
    references = [f"{v}:{n}" for v, n in features._service_refs(store, CONTRACT_SERVICE)]
    vocabulary = {
        "customers": customer_ids,
        "services": sorted(s.name for s in store.list_feature_services()),
        "references": references[:40],
        "views": sorted(v.name for v in store.list_feature_views()),
        "pushes": sorted(d.name for d in store.list_data_sources() if d.name.endswith("_push")),
        "modes": ["online", "offline", "online_and_offline"],
    }
    return write_config(path, vocabulary, {
        "body.entities.customer_id[*]": ("customers", 0.5),
        "body.feature_service": ("services", 0.5), "body.features[*]": ("references", 0.5),
        "body.feature_view_name": ("views", 0.5), "body.feature_views[*]": ("views", 0.5),
        "body.push_source_name": ("pushes", 0.5), "body.to": ("modes", 0.5)})


def feast_contract_file(path: Path, cfg: Config, base_url: str) -> Path:
    """:func:`feast_contract_schema` of the running server's schema and this registry,
    written to ``path`` (JSON)."""
    import http.client
    from urllib.parse import urlsplit

    from clv_models.features import store as features

    store = features.feature_store(cfg)
    url = urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        conn.request("GET", "/openapi.json")
        schema = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    references = [f"{v}:{n}" for v, n in features._service_refs(store, CONTRACT_SERVICE)]
    services = sorted(s.name for s in store.list_feature_services())
    path.write_text(json.dumps(feast_contract_schema(schema, services, references)))
    return path


def fuzz(api: str, base_url: str, workdir: Path, *, max_examples: int, seed: int | None = None,
         checks: str = "not_a_server_error", mode: str = "all", schema: Path | None = None,
         headers: dict[str, str] | None = None, config: Path | None = None,
         include_paths: tuple[str, ...] = (), explain: Explainer | None = None,
         workers: int = 1, request_timeout: float = 60, timeout: float = 600) -> FuzzResult:
    """Run ``schemathesis run`` against the server at ``base_url`` and collect what it found.

    Parameters
    ----------
    api
        A name for the reports (``clv``, ``feast-read``...).
    base_url
        ``http://127.0.0.1:PORT``.
    workdir
        Where the reports go (a folder per ``api``).
    max_examples
        Test cases per operation and phase (schemathesis' ``--max-examples``).
    seed
        For a reproducible run (the test); None lets schemathesis draw one (reported).
    checks
        schemathesis ``--checks``: ``all`` for our endpoint, ``not_a_server_error`` for Feast.
    mode
        ``all`` (valid and invalid data), ``positive`` (only what the schema allows).
    schema
        An OpenAPI file to use instead of the server's ``/openapi.json``.
    headers
        Sent with every request (the bearer token).
    config
        A ``schemathesis.toml`` from :func:`write_config`.
    include_paths
        Only these paths (``--include-path``); all operations when empty.
    explain
        Labels the 5xx that are documented third-party defects (:func:`explain_feast`); every
        5xx is unexplained without it.
    """
    out = workdir / api
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    cmd = [schemathesis_command(), "--no-color"]
    if config is not None:
        cmd += ["--config-file", str(config)]
    cmd += ["run", str(schema) if schema else f"{base_url}/openapi.json",
            "--max-examples", str(max_examples), "--checks", checks, "--mode", mode,
            "--continue-on-failure", "--workers", str(workers),
            "--request-timeout", str(request_timeout), "--report", "json,har",
            "--report-dir", str(out)]
    if schema is not None:
        cmd += ["--url", base_url]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    for name, value in (headers or {}).items():
        cmd += ["--header", f"{name}: {value}"]
    for path in include_paths:
        cmd += ["--include-path", path]
    # Run in the report folder: schemathesis keeps a cache of past crashes (.schemathesis/) in
    # its working directory and replays them first; each run starts without one.
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=out)
    output = proc.stdout + proc.stderr
    reports = {kind: sorted(out.glob(f"{kind}-*.json")) for kind in ("json", "har")}
    if not reports["json"] or not reports["har"]:
        raise FuzzError(f"schemathesis wrote no report (exit {proc.returncode}):\n"
                        f"{output[-3000:]}")
    report = json.loads(reports["json"][-1].read_text())
    har = json.loads(reports["har"][-1].read_text())
    result = FuzzResult(api=api, cases=int(report["test_cases"]["generated"]),
                        requests=len(har["log"]["entries"]), seed=report.get("seed"),
                        seconds=float(report.get("running_time") or 0.0),
                        failures=report["failures"], errors=report["errors"],
                        exit_code=proc.returncode, output=output)
    prefix = base_url.rstrip("/")
    for entry in har["log"]["entries"]:
        req, resp = entry["request"], entry["response"]
        path = req["url"].removeprefix(prefix).split("?", 1)[0]
        status = int(resp["status"])
        result.statuses[(req["method"], _template(path), status)] += 1
        if status >= 500:
            case = ServerErrorCase(req["method"], path, status,
                                   (resp.get("content") or {}).get("text") or "",
                                   (req.get("postData") or {}).get("text") or "")
            case.label = explain(case) if explain else None
            result.server_errors.append(case)
    return result


def _template(path: str) -> str:
    """Collapse generated path parameters (``/v1/clv/C1`` -> ``/v1/clv/{customer_id}``)."""
    parts = path.split("/")
    if path.startswith("/v1/clv/") and len(parts) == 4:
        return "/v1/clv/{customer_id}"
    if path.startswith("/v1/vector_stores/") and len(parts) >= 4:
        tail = "/search" if path.endswith("/search") else ""
        return "/v1/vector_stores/{vector_store_id}" + tail
    return path
