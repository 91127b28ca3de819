"""The online CLV endpoint (``clv serve``): predicted CLV for customers from the Feast online
store, over HTTP (FastAPI + uvicorn).

One process serves one trained model, loaded once at start-up (JSON, XGBoost JSON and
``torch.load(weights_only=True)``: no pickle). A request reads the customers' features from the
online store through the model's own feature service (``metadata["feature_service"]``, the
set it was trained on), predicts and answers the ``clv_scores`` fields. Live order and return
events pushed with ``clv push-event`` (:mod:`clv_models.features.live`) are visible to the next
request.

API (OpenAPI schema at ``/openapi.json``, interactive docs at ``/docs``):

* ``GET /health``: model name and version, whether the online store answers (503 when not),
  where deciles come from. Never needs the token, so load balancers can probe it.
* ``GET /v1/clv/{customer_id}[?explain=true]``: one customer; 404 when the online store has no
  features for the id, 422 for a malformed id.
* ``POST /v1/clv[?explain=true]`` with ``{"customer_ids": [...]}`` (1 to 1,000 ids): the known
  customers' results in request order and the unknown ids in ``not_found``; 422 for a
  malformed body, 400 for one that is not UTF-8, 413 for one over 256 KiB (1,000 ids of the
  longest allowed form take about 131 KiB).

Deciles and segments follow batch scoring (:func:`clv_models.scoring.score.segments`): the
decile is the one the prediction falls in among the latest batch scoring of the same model
version, by the cut points and the high-value threshold that scoring recorded
(``clv_scoring_thresholds``, read once at start-up from the published BI copy, never from the
warehouse file), so a customer whose online features equal the batch's gets the batch's decile
and segment. Without such a scoring ``clv_decile`` is null and no customer is a champion.

Security defaults: the server listens on 127.0.0.1. It refuses to listen on any other address
unless a token is configured (the environment variable named by ``--token-env``, default
``CLV_API_TOKEN``, at least 16 characters); with a token, every ``/v1`` request needs
``Authorization: Bearer <token>`` (compared in constant time), else 401. Request bodies are
capped (:data:`MAX_BODY_BYTES`) before they are parsed. ``scripts/fuzz_apis.py`` and
``tests/test_security.py`` fuzz the API from its OpenAPI schema (no 5xx, responses as
documented).
"""

# No ``from __future__ import annotations``: FastAPI reads the route functions' annotations
# (Annotated[..., Depends(...)]) at run time, including names local to create_app.
import datetime as dt
import gc
import ipaddress
import json
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import duckdb
import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from clv_models import __version__
from clv_models.core import metrics
from clv_models.core.config import Config
from clv_models.core.errors import CLVError
from clv_models.features import store as features
from clv_models.features.online_lookup import OnlineLookup
from clv_models.models.calibration import Calibration
from clv_models.scoring import score as scoring
from clv_models.warehouse import bi, contract

if TYPE_CHECKING:
    from clv_models.models import CLVModel

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
#: The model served when none is named: the champion ``clv train`` chose.
DEFAULT_MODEL: str | None = None
DEFAULT_TOKEN_ENV = "CLV_API_TOKEN"  # noqa: S105 - a variable name, not a secret  # nosec B105
MIN_TOKEN_LENGTH = 16
MAX_BATCH = 1000
MAX_ID_LENGTH = 128
#: Requests of at most this many customers (without explanations) are scored on the event loop.
INLINE_IDS = 10
#: Largest request body read: a full batch of the longest ids (~131 KiB) fits twice over.
MAX_BODY_BYTES = 256 * 1024
#: Customer ids: letters, digits and ``_ . : @ -``, starting with a letter or digit.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$"
SEGMENT_FEATURES = ("t_days", "net_revenue")  # what the segment rules read besides predictions


class ServeError(CLVError, RuntimeError):
    """The endpoint cannot start as asked; the message says why and what to do."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``): only this machine can
    connect. ``0.0.0.0``, ``::`` and other names count as reachable from elsewhere."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None, token_env: str = DEFAULT_TOKEN_ENV) -> None:
    """Refuse a non-loopback ``host`` without a token, and a token that is too short."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ServeError(f"{token_env} is shorter than {MIN_TOKEN_LENGTH} characters: use a "
                         "long random token, e.g. `python -c 'import secrets; "
                         "print(secrets.token_urlsafe(32))'`")
    if not is_loopback(host) and not token:
        raise ServeError(f"refusing to listen on {host} without a token: set {token_env} "
                         f"(at least {MIN_TOKEN_LENGTH} characters) so that clients must send "
                         f"`Authorization: Bearer <token>`, or listen on {DEFAULT_HOST}")


@dataclass
class Reference:
    """What single-customer deciles and segments are relative to: the latest batch scoring of
    the served model version, as scoring recorded it (``clv_scoring_thresholds``).

    ``cuts`` are :func:`clv_models.core.metrics.decile_cuts` (None when no batch scoring of
    this version could be read; ``detail`` says why).
    """

    as_of_date: dt.date | None
    cuts: list[tuple[float, str]] | None
    high_value: float | None
    detail: str

    def decile(self, value: float, customer_id: str) -> int | None:
        """The decile of ``value`` among the batch scores (ties by customer id, as batch
        scoring ranks them)."""
        return None if self.cuts is None else metrics.decile_of(value, customer_id, self.cuts)


def load_reference(cfg: Config, model: "CLVModel") -> Reference:
    """The decile cut points and the segments' high-value threshold that the latest scoring of
    ``model``'s version recorded, read once from the published BI copy (never from the
    warehouse file, which builds hold locked)."""
    path = bi.database_path(cfg)
    detail = "no scoring of this model version published: run `clv score`"
    if not path.exists():
        return Reference(None, None, None, f"no BI copy at {path}: run `clv score`")
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            row = con.execute(
                f"select as_of_date, decile_cuts, high_value, customers from "  # noqa: S608 - fixed name
                f"{contract.THRESHOLDS_TABLE} where model_name = ? and model_version = ? "
                "order by as_of_date desc, scored_at desc limit 1",
                [model.name, model.version]).fetchone()
    except duckdb.Error as exc:
        return Reference(None, None, None, f"{path} not readable ({type(exc).__name__}: {exc})")
    if row is None:
        return Reference(None, None, None, detail)
    as_of, cuts, high_value, customers = row
    return Reference(as_of_date=as_of, cuts=[(float(v), str(c)) for v, c in json.loads(cuts)],
                     high_value=high_value,
                     detail=f"clv_scoring_thresholds at {as_of} ({customers:,} customers)")


class CLVService:
    """The model, the Feast store and the scoring reference of one endpoint process.

    Feast's SQLite connection is shared, so reads and predictions run one at a time (a lock);
    the work per request is small (one indexed read, one forward pass). Features are read with
    a prepared :class:`~clv_models.features.online_lookup.OnlineLookup` (Feast's values, without the
    per-call cost of ``get_online_features``) and go to the model as columns, without a
    DataFrame (the same predictions; a DataFrame costs more than the model for one row).
    """

    def __init__(self, cfg: Config, model_name: str | None = DEFAULT_MODEL) -> None:
        from clv_models.evaluation import champion
        from clv_models.models import training

        self.cfg = cfg.resolved()
        chosen = (champion.load(self.cfg)
                  if (self.cfg.models_dir / champion.CHAMPION_FILE).exists() or model_name is None
                  else None)
        if model_name is None:
            model_name = chosen.champion
        if model_name not in champion.CANDIDATES:
            raise ServeError(f"unknown model {model_name!r}; one of {champion.CANDIDATES}")
        # The calibration batch scoring applies (fitted on validation cutoffs).
        self.calibration = (champion.calibrations(chosen)[model_name] if chosen is not None
                            else Calibration())
        self.model = training.load_models(self.cfg, (model_name,))[model_name]
        self.store = features.feature_store(self.cfg)
        self.service = self.model.metadata.get("feature_service", self.model.feature_service)
        svc = self.store.get_feature_service(self.service)
        refs = [f"{p.name_to_use()}:{f.name}" for p in svc.feature_view_projections
                for f in p.features]
        names = [r.split(":", 1)[1] for r in refs]
        self.service_features = names
        refs += [f"customer_rfm:{n}" for n in SEGMENT_FEATURES if n not in names]
        self.refs = refs
        # The as-of date of a customer's features: the row date of the view holding t_days.
        self._as_of_view = next(r.split(":", 1)[0] for r in refs if r.endswith(":t_days"))
        self.lookup = OnlineLookup(self.store, refs, features.ENTITY_KEY)
        self.reference = load_reference(self.cfg, self.model)
        self.horizon_days = int(self.model.metadata["horizon_days"])
        self._lock = threading.Lock()

    def online_rows(self, customer_ids: list[str]) -> tuple[dict[str, list[Any]],
                                                            list[dt.date | None]]:
        """The customers' online features as columns (one value per id, in order; the ids
        distinct) and each id's as-of date (None where the online store has nothing)."""
        values, stamps = self.lookup.read(customer_ids)
        as_of = [ts.date() if ts is not None else None for ts in stamps[self._as_of_view]]
        return values, as_of

    def score(self, customer_ids: list[str],
              explain: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
        """Results for the known customers (in the order asked, duplicates answered once)
        and the ids the online store does not know.

        A customer is unknown when every feature of the model's service is null (Feast's
        answer for an id it has no row for).
        """
        with self._lock:
            return self._score(list(dict.fromkeys(customer_ids)), explain)

    def try_score(self, customer_ids: list[str], explain: bool = False
                  ) -> tuple[list[dict[str, Any]], list[str]] | None:
        """:meth:`score` if no other request holds the service now, else None at once
        (the caller then waits for it elsewhere, off the event loop)."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._score(list(dict.fromkeys(customer_ids)), explain)
        finally:
            self._lock.release()

    def _score(self, ids: list[str], explain: bool) -> tuple[list[dict[str, Any]], list[str]]:
        values, as_of = self.online_rows(ids)
        service_columns = [values[c] for c in self.service_features]
        known = [any(col[i] is not None for col in service_columns) for i in range(len(ids))]
        missing = [c for c, k in zip(ids, known, strict=True) if not k]
        if not any(known):
            return [], missing
        if not all(known):
            values = {k: [v for v, keep in zip(col, known, strict=True) if keep]
                      for k, col in values.items()}
        pred = self.calibration.apply(self.model.predict(values, explain=explain))
        known_ids = values[features.ENTITY_KEY]
        deciles = [self.reference.decile(float(v), c)
                   for v, c in zip(pred.predicted_clv, known_ids, strict=True)]
        rank = np.array([d if d is not None else 11 for d in deciles])  # 11: never a champion
        segment = scoring.segments(
            rank, pred.p_purchase,
            np.array(values["t_days"], dtype=float), np.array(values["net_revenue"], dtype=float),
            high_value=(self.reference.high_value if self.reference.high_value is not None
                        else np.inf))
        dates = [d for d, k in zip(as_of, known, strict=True) if k]

        def opt(values: np.ndarray | None) -> list[float | None]:
            if values is None:
                return [None] * len(known_ids)
            return [float(v) if np.isfinite(v) else None for v in values.tolist()]

        clv = pred.predicted_clv.tolist()
        p, p10, p50, p90 = (opt(pred.p_purchase), opt(pred.clv_p10), opt(pred.clv_p50),
                            opt(pred.clv_p90))
        results = []
        for i, cid in enumerate(known_ids):
            result = {
                "customer_id": cid, "as_of_date": dates[i], "horizon_days": self.horizon_days,
                "model_name": self.model.name, "model_version": self.model.version,
                "predicted_clv": clv[i], "p_purchase": p[i], "clv_p10": p10[i],
                "clv_p50": p50[i], "clv_p90": p90[i],
                "clv_decile": deciles[i], "segment": str(segment[i]),
            }
            if explain and pred.top_drivers is not None and pred.top_drivers[i]:
                result["top_drivers"] = json.loads(pred.top_drivers[i])
            results.append(result)
        return results, missing

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Whether the online store answers a read, with the model and the reference."""
        start = time.perf_counter()
        try:
            with self._lock:  # the read requests make, for an id no store holds
                self.lookup.read(["__health__"])
            store = {"ok": True, "type": self.store.config.online_store.type,
                     "read_ms": round((time.perf_counter() - start) * 1000, 2)}
        except Exception as exc:  # any failure means "not healthy"
            store = {"ok": False, "type": self.store.config.online_store.type,
                     "error": f"{type(exc).__name__}: {exc}"}
        return store["ok"], {
            "status": "ok" if store["ok"] else "degraded",
            "model_name": self.model.name, "model_version": self.model.version,
            "feature_service": self.service, "horizon_days": self.horizon_days,
            "online_store": store,
            "deciles": {"as_of_date": self.reference.as_of_date,
                        "available": self.reference.cuts is not None,
                        "source": self.reference.detail},
        }


CustomerId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH,
                                              pattern=ID_PATTERN)]


class Driver(BaseModel):
    """A feature and how much it pushed the prediction (model units, docs/models.md)."""

    feature: str
    contribution: float


class CLVResult(BaseModel):
    """One customer's prediction: the ``clv_scores`` fields."""

    customer_id: str
    as_of_date: dt.date | None = Field(description="As-of date of the online features.")
    horizon_days: int
    model_name: str
    model_version: str
    predicted_clv: float = Field(description="Expected net revenue in the horizon.")
    p_purchase: float | None = Field(description="P(at least one purchase in the horizon).")
    clv_p10: float | None
    clv_p50: float | None
    clv_p90: float | None
    clv_decile: int | None = Field(
        description="1 = highest, among the latest batch scoring of this model version.")
    segment: str
    top_drivers: list[Driver] | None = Field(
        default=None, description="With ?explain=true: the features that pushed most.")


class BatchRequest(BaseModel):
    """Up to ``MAX_BATCH`` customer ids; nothing else."""

    model_config = ConfigDict(extra="forbid")
    customer_ids: list[CustomerId] = Field(min_length=1, max_length=MAX_BATCH)


class BatchResponse(BaseModel):
    """The known customers' results in request order, and the unknown ids."""

    results: list[CLVResult]
    not_found: list[str] = Field(description="Ids the online store has no features for.")


#: Where the interactive docs' scripts and styles are served from: Swagger UI's files as the
#: ``fastapi-offline`` package ships them, so ``/docs`` works without reaching a CDN.
DOCS_ASSETS = "/docs-assets"


def offline_docs(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` from local files instead of FastAPI's CDN links."""
    from importlib.resources import files

    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    static = files("fastapi_offline") / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(static)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json",
                                   title=f"{app.title} - docs",
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png")


def create_app(service: CLVService, token: str | None = None) -> FastAPI:
    """The FastAPI application over ``service``; with ``token``, ``/v1`` routes need
    ``Authorization: Bearer <token>``."""
    bearer = HTTPBearer(auto_error=False, description="Required when the server has a token.")
    expected = token.encode() if token else None

    async def authorize(credentials: Annotated[HTTPAuthorizationCredentials | None,
                                               Depends(bearer)]) -> None:
        if expected is None:
            return
        given = credentials.credentials.encode() if credentials else b""
        if not secrets.compare_digest(given, expected):
            raise HTTPException(status_code=401, detail="missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})

    app = FastAPI(title="CLV endpoint", version=__version__, max_body_size=MAX_BODY_BYTES,
                  description="Predicted customer lifetime value from the Feast online store.",
                  docs_url=None, redoc_url=None)
    offline_docs(app)
    # Statuses the framework answers before a route runs, documented so clients (and the
    # schema-driven fuzzing) know them: no token (401), a body over the cap (413) or not UTF-8
    # (400). 422 (validation) is documented by FastAPI itself.
    unauthorized = {401: {"description": "Missing or wrong bearer token (when one is set)"}}
    bad_body = {400: {"description": "The body is not UTF-8 text"},
                413: {"description": f"The body is over {MAX_BODY_BYTES:,} bytes"}}

    @app.get("/health", responses={503: {"description": "The online store does not answer"}})
    def health() -> JSONResponse:
        """Model, online store status (503 when it does not answer) and decile source."""
        ok, body = service.health()
        return JSONResponse(json.loads(json.dumps(body, default=str)),
                            status_code=200 if ok else 503)

    @app.get("/v1/clv/{customer_id}", response_model=CLVResult,
             dependencies=[Depends(authorize)],
             responses={404: {"description": "Unknown id"}, **unauthorized})
    async def clv_one(customer_id: Annotated[str, PathParam(min_length=1,
                                                            max_length=MAX_ID_LENGTH,
                                                            pattern=ID_PATTERN)],
                      explain: Annotated[bool, Query()] = False) -> dict[str, Any]:
        """Predicted CLV of one customer."""
        results, _ = await score(service, [customer_id], explain)
        if not results:
            raise HTTPException(status_code=404,
                                detail=f"customer {customer_id!r} has no features online")
        return results[0]

    @app.post("/v1/clv", response_model=BatchResponse, dependencies=[Depends(authorize)],
              responses={**unauthorized, **bad_body})
    async def clv_batch(request: BatchRequest,
                        explain: Annotated[bool, Query()] = False) -> dict[str, Any]:
        """Predicted CLV of up to 1,000 customers; unknown ids are listed in not_found."""
        results, missing = await score(service, request.customer_ids, explain)
        return {"results": results, "not_found": missing}

    return app


async def score(service: CLVService, ids: list[str],
                explain: bool) -> tuple[list[dict[str, Any]], list[str]]:
    """``service.score`` from a route: small requests on the event loop, the rest in the
    thread pool.

    A request of up to :data:`INLINE_IDS` customers without explanations takes about a
    millisecond, less than handing it to a worker thread and back (the ``def`` routes FastAPI
    runs in its thread pool paid that hop three times: dependency, route, response
    validation). It runs on the event loop only when no other request holds the service; a
    long batch or an explanation goes to the thread pool, so it never blocks the loop.
    """
    if len(ids) <= INLINE_IDS and not explain:
        done = service.try_score(ids)
        if done is not None:
            return done
    return await run_in_threadpool(service.score, ids, explain)


def _single_threaded_torch() -> None:
    """One torch thread per serving process (when the model uses torch).

    Requests are small (1 to 1,000 rows through a ~27k-parameter network) and served one at
    a time: torch's intra-op thread pool only adds hand-over and spin-waits, which on a busy
    machine dominate the latency (``clv bench serving`` measures it).
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _freeze_startup_objects() -> None:
    """Move everything loaded at start-up out of the garbage collector's reach.

    Feast, torch, pandas and the model leave a few hundred thousand tracked objects that live
    as long as the process; every full collection walks all of them, a pause that would land
    in some request's latency. ``gc.freeze()`` puts them in the permanent generation:
    collections then only see what requests allocate (Python's advice for long-running servers
    that load at start-up).
    """
    gc.collect()
    gc.freeze()


def serve(cfg: Config, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          model_name: str | None = DEFAULT_MODEL, token: str | None = None,
          token_env: str = DEFAULT_TOKEN_ENV, log_level: str = "info",
          access_log: bool = True, echo=print) -> None:
    """Check the binding, load the model (default: the champion) and the store, then run
    uvicorn until stopped.

    ``access_log=False`` drops uvicorn's line per request (at log level info), which saves
    server CPU on every request.
    """
    import uvicorn

    check_binding(host, token, token_env)
    service = CLVService(cfg, model_name)
    _single_threaded_torch()
    app = create_app(service, token)
    _freeze_startup_objects()
    echo(f"serving {service.model.name} {service.model.version} (feature service "
         f"{service.service}; deciles: {service.reference.detail}) on http://{host}:{port} "
         f"{'with' if token else 'without'} a bearer token")
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=access_log)
