"""The Ray Serve application: champion (and challenger) behind ``/v1``.

One deployment, ``PdService``, takes the raw HTTP request (no FastAPI layer: the ingress is
HAProxy → replica, see ``serving/runtime.py``) and routes ``POST /v1/predict``, ``GET /v1/health``,
``GET /v1/model``. Which model versions it serves and how traffic is split are its *user config*
(``champion``, ``challenger``, ``mode``, ``canary_share``): changing them reconfigures the live
replicas in place — the new models load beside the old ones and are swapped in atomically, so
in-flight requests finish on the model they started with (zero downtime).

Batching without a timer: requests queue; one drain task scores everything queued in one
vectorised call. A lone request is scored at once (no batch wait); under load the queue fills
while the previous batch is being scored, so batches grow with concurrency on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import hashlib
import json
import logging
import threading
import time
import uuid
import zlib
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from creditrisk_assets.gold.catalogue import categorical_features
from creditrisk_assets.logs import configure_logging
from creditrisk_assets.quality.pii import pseudonymise
from creditrisk_assets.resources import object_store_from_settings
from creditrisk_assets.settings import Settings

from .models import load_scorer
from .prediction_log import PredictionLogWriter
from .schemas import ID_FIELD, RequestError, RequestParser
from .scoring import REASON_MODES, Scorer

log = logging.getLogger("creditrisk.serving")
APP_NAME = "creditrisk"
ROUTE_PREFIX = "/v1"
LATENCY_BUCKETS_MS = [0.5, 1, 2, 3, 5, 8, 13, 20, 40, 80, 160, 320, 1000]


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status_code=status, media_type="application/json")


class _NoMetric:
    def inc(self, *args: Any, **kwargs: Any) -> None: ...
    def observe(self, *args: Any, **kwargs: Any) -> None: ...


#: Drift gauges re-exported by every replica from ``monitoring/latest_drift.json`` (written by the
#: ``monitoring/drift`` asset), so Prometheus scrapes drift next to the serving metrics.
DRIFT_GAUGES = {"drift_share": "share of features drifted in the latest window",
                "prediction_psi": "PSI of predicted PD, latest window vs the champion's reference",
                "drift_detected": "1 when the latest window counts as drifted"}
LATEST_DRIFT_KEY = "monitoring/latest_drift.json"


class _Metrics:
    """Prometheus metrics through Ray's metrics agent (``ray_creditrisk_*`` on the metrics export port);
    no-ops outside Ray (unit tests call the service directly)."""

    def __init__(self) -> None:
        import ray
        from ray.util import metrics

        self.requests: Any
        self.latency: Any
        self.predictions: Any
        if not ray.is_initialized():
            self.requests = self.latency = self.predictions = _NoMetric()
            return

        self.requests = metrics.Counter("creditrisk_requests", "HTTP requests by route and status",
                                        tag_keys=("route", "status"))
        self.latency = metrics.Histogram("creditrisk_request_latency_ms", "request latency (ms)",
                                         boundaries=LATENCY_BUCKETS_MS, tag_keys=("route",))
        self.predictions = metrics.Counter("creditrisk_predictions", "scored applications by model version",
                                           tag_keys=("model_version", "served_by"))
        self.drift = {name: metrics.Gauge(f"creditrisk_{name}", doc)
                      for name, doc in DRIFT_GAUGES.items()}

    def set_drift(self, latest: dict[str, Any]) -> None:
        for name, gauge in getattr(self, "drift", {}).items():
            value = latest.get(name)
            if isinstance(value, int | float):
                gauge.set(float(value))

    def request(self, route: str, status: int, ms: float) -> None:
        self.requests.inc(1, {"route": route, "status": str(status)})
        self.latency.observe(ms, {"route": route})


class PdService:
    def __init__(self, settings: Settings) -> None:
        configure_logging(settings.log_level)
        self.settings = settings
        self.parser = RequestParser(settings.serve_max_rows, settings.serve_max_body_bytes)
        self.champion: Scorer | None = None
        self.challenger: Scorer | None = None
        self.mode, self.canary_share = settings.serve_mode, settings.serve_canary_share
        self.writer = PredictionLogWriter(object_store_from_settings(settings), self.parser.feature_names,
                                          categorical_features(), settings.prediction_log_flush_rows,
                                          settings.prediction_log_flush_s,
                                          # answered rows spool here until uploaded: a killed replica loses none
                                          spool_dir=settings.home.resolve() / "serving" / "prediction-log-spool")
        self.metrics = _Metrics()
        self.store = object_store_from_settings(settings)
        self._drift_thread = threading.Thread(target=self._watch_drift, name="drift-gauges", daemon=True)
        self._drift_thread.start()
        self._cache: Any = None  # gold feature cache, loaded on the first id-only request
        self._queue: list[tuple[list[dict[str, Any]], bool, asyncio.Future[Any]]] = []
        self._draining = False
        self.config_hash = ""

    # ------------------------------------------------------------------ configuration
    async def reconfigure(self, config: dict[str, Any]) -> None:
        """Load the configured versions (off the event loop), then swap them in at once."""
        champion_version = str(config.get("champion") or "")
        challenger_version = str(config.get("challenger") or "")
        mode = config.get("mode", self.settings.serve_mode)
        share = float(config.get("canary_share", self.settings.serve_canary_share))
        champion = await self._load(champion_version, "champion", self.champion)
        challenger = await self._load(challenger_version, "challenger", self.challenger) if challenger_version else None
        self.champion, self.challenger, self.mode, self.canary_share = champion, challenger, mode, share
        self.config_hash = config_hash(config)
        # the models, schemas and caches live until the next reconfigure: move them out of the cyclic GC's
        # generations, so collections triggered on the request path do not re-scan them (tail latency);
        # unfreeze first, so the models this swap replaced can still be collected
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        log.info("serving configured", extra={"champion": champion_version, "challenger": challenger_version,
                                              "mode": mode, "canary_share": share})

    async def _load(self, version: str, alias: str, current: Scorer | None) -> Scorer | None:
        if not version:
            return None
        if current is not None and current.info.version == version:
            current.info.alias = alias
            return current
        return await asyncio.to_thread(load_scorer, self.settings, version, alias)

    def _watch_drift(self, every_s: float = 30.0) -> None:
        """Refresh the drift gauges from the object store (best effort: monitoring may not have run)."""
        while True:
            with contextlib.suppress(Exception):
                self.metrics.set_drift(json.loads(self.store.get_bytes(LATEST_DRIFT_KEY)))
            time.sleep(every_s)

    # ------------------------------------------------------------------ HTTP
    async def __call__(self, request: Request) -> Response:
        started = time.perf_counter()
        path = request.url.path.rstrip("/")
        route = path.rsplit("/", 1)[-1]
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        if route == "predict" and request.method == "POST":
            response = await self._predict(request, request_id, started)
        elif route == "health" and request.method == "GET":
            champion = self.champion
            response = _json(200 if champion else 503, {"status": "ready" if champion else "no model loaded",
                                                        "champion": champion.info.version if champion else None,
                                                        "config_hash": self.config_hash})
        elif route == "model" and request.method == "GET":
            response = _json(200 if self.champion else 503, self._describe())
        elif route in ("predict", "health", "model"):
            response = _json(405, {"request_id": request_id, "errors": [
                {"field": "method", "error": f"{request.method} is not allowed on {path}"}]})
        else:
            route = "unknown"
            response = _json(404, {"request_id": request_id, "errors": [
                {"field": "path", "error": f"no such endpoint {path}; see /v1/predict, /v1/health, /v1/model"}]})
        response.headers["x-request-id"] = request_id
        self.metrics.request(route, response.status_code, (time.perf_counter() - started) * 1000)
        return response

    def _describe(self) -> dict[str, Any]:
        def info(s: Scorer | None) -> dict[str, Any] | None:
            return None if s is None else {**s.info.__dict__, "kind": s.trained.kind}
        return {"champion": info(self.champion), "challenger": info(self.challenger), "mode": self.mode,
                "canary_share": self.canary_share, "threshold": self.settings.decision_threshold,
                "reason_codes": self.settings.serve_reason_codes}

    async def _predict(self, request: Request, request_id: str, started: float) -> Response:
        if self.settings.serve_api_key and request.headers.get("x-api-key") != self.settings.serve_api_key:
            return _json(401, {"request_id": request_id, "errors": [
                {"field": "X-API-Key", "error": "missing or wrong API key header"}]})
        if self.champion is None:
            return _json(503, {"request_id": request_id, "errors": [{"field": "model", "error": "no model loaded"}]})
        try:
            explain_all = self._explain_all(request)
            body = await request.body()
            rows, single = self.parser.parse(body)
            sources = self._fill_from_store(rows)
        except RequestError as exc:
            return _json(exc.status, exc.body(request_id))
        results = await self._submit(rows, explain_all)
        latency = (time.perf_counter() - started) * 1000
        self._log(request_id, rows, sources, results, latency)
        out = [{k: v for k, v in r.items() if not k.startswith("_")} for r in results]
        if single:
            return _json(200, {"request_id": request_id, **out[0]})
        return _json(200, {"request_id": request_id, "predictions": out})

    def _explain_all(self, request: Request) -> bool:
        """``?reasons=all`` asks reason codes for every application of the request (``declined``:
        only declined ones); without it, ``CREDITRISK_SERVE_REASON_CODES`` decides."""
        unknown = sorted(set(request.query_params) - {"reasons"})
        if unknown:
            raise RequestError(422, [{"field": f"query.{unknown[0]}", "error": "unknown query parameter; "
                                                                              "only `reasons` is accepted"}])
        value = request.query_params.get("reasons", self.settings.serve_reason_codes)
        if value not in REASON_MODES:
            raise RequestError(422, [{"field": "query.reasons", "error": f"expected one of {', '.join(REASON_MODES)}"}])
        return value == "all"

    def _fill_from_store(self, rows: list[dict[str, Any]]) -> list[str]:
        sources = []
        for i, row in enumerate(rows):
            if len(row) > 1:
                sources.append("request")
                continue
            features = self._features().get(row[ID_FIELD])
            if features is None:
                raise RequestError(422, [{"field": f"[{i}].{ID_FIELD}" if len(rows) > 1 else ID_FIELD,
                                          "error": "no feature row for this application in the feature store"}])
            rows[i] = {**features, ID_FIELD: row[ID_FIELD]}
            sources.append("feature_store")
        return sources

    def _features(self) -> Any:
        if self._cache is None or time.monotonic() - self._cache[0] > 300:
            from creditrisk_assets.gold.lookup import FeatureCache
            from creditrisk_assets.resources import Lake

            with Lake(self.settings).connect_lake() as con:
                self._cache = (time.monotonic(), FeatureCache.load(con))
        return self._cache[1]

    # ------------------------------------------------------------------ batching + routing
    async def _submit(self, rows: list[dict[str, Any]], explain_all: bool = False) -> list[dict[str, Any]]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((rows, explain_all, future))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().call_soon(self._drain)
        return await future

    def _drain(self) -> None:
        """Score what is queued (up to ``serve_batch_max_rows`` applications, at least one request) in
        one vectorised call; reschedule while requests are left."""
        taken, rows_taken = 0, 0
        while taken < len(self._queue) and (taken == 0 or rows_taken + len(self._queue[taken][0])
                                            <= self.settings.serve_batch_max_rows):
            rows_taken += len(self._queue[taken][0])
            taken += 1
        batch, self._queue = self._queue[:taken], self._queue[taken:]
        try:
            rows = [r for rs, _, _ in batch for r in rs]
            force = [explain for rs, explain, _ in batch for _ in rs]
            results = self._score(rows, force)
            at = 0
            for rs, _, future in batch:
                if not future.done():
                    future.set_result(results[at:at + len(rs)])
                at += len(rs)
        except Exception as exc:  # a scoring failure is ours (5xx), never a client's
            log.exception("scoring failed", extra={"rows": sum(len(rs) for rs, _, _ in batch)})
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        if self._queue:
            asyncio.get_running_loop().call_soon(self._drain)
        else:
            self._draining = False

    def _score(self, rows: list[dict[str, Any]], force: list[bool] | None = None) -> list[dict[str, Any]]:
        """Answer every row with the model that serves it (champion, or the challenger for the canary
        share); reason codes per ``serve_reason_codes`` (or ``force``); in shadow / canary mode the
        other model's PD is kept for the log (no reason codes: nobody reads them)."""
        champion, challenger = self.champion, self.challenger
        assert champion is not None
        force = force if force is not None else [False] * len(rows)
        active = challenger is not None and self.mode != "champion"
        canary = [active and self.mode == "canary" and _bucket(r) < self.canary_share for r in rows]
        answers: list[dict[str, Any]] = [{} for _ in rows]
        served = ((champion, "champion", [i for i, c in enumerate(canary) if not c]),
                  (challenger, "challenger", [i for i, c in enumerate(canary) if c]))
        for scorer, served_by, idx in served:
            if scorer is None or not idx:
                continue
            out = scorer.explain([rows[i] for i in idx], self.settings.serve_reason_codes, [force[i] for i in idx])
            for i, a in zip(idx, out, strict=True):
                a.update(model_name=scorer.info.name, model_version=scorer.info.version, served_by=served_by)
                answers[i] = a
            self.metrics.predictions.inc(len(idx), {"model_version": scorer.info.version, "served_by": served_by})
            if active:  # the other model scores the same rows in the shadow
                other = challenger if scorer is champion else champion
                assert other is not None
                for i, p in zip(idx, other.predict([rows[i] for i in idx]).tolist(), strict=True):
                    answers[i].update(_shadow_version=other.info.version, _shadow_pd=round(float(p), 6))
        return answers

    def _log(self, request_id: str, rows: list[dict[str, Any]], sources: list[str],
             results: list[dict[str, Any]], latency_ms: float) -> None:
        now = dt.datetime.now(dt.UTC)
        key = self.settings.pii_key
        entries = []
        for row, source, r in zip(rows, sources, results, strict=True):
            app_id = row.get(ID_FIELD)
            entries.append({**{f: row.get(f) for f in self.parser.feature_names},
                            "request_id": request_id, "logged_at": now,
                            "applicant_hash": None if app_id is None else pseudonymise(str(app_id), key),
                            "feature_source": source, "served_by": r["served_by"],
                            "model_version": r["model_version"], "pd": r["pd"], "decision": r["decision"],
                            "risk_band": r["risk_band"], "reason_codes": ",".join(r["reason_codes"]),
                            "shadow_version": r.get("_shadow_version"), "shadow_pd": r.get("_shadow_pd"),
                            "latency_ms": latency_ms})
        self.writer.log(entries)

    def __del__(self) -> None:
        """Graceful shutdown (Ray Serve calls this on a replica it stops): flush the prediction log."""
        writer = getattr(self, "writer", None)
        if writer is not None:
            left = writer.close()
            with contextlib.suppress(Exception):  # logging may already be torn down at exit
                log.info("prediction log flushed", extra={"written": writer.written, "unwritten": left})


def config_hash(config: dict[str, Any]) -> str:
    """A short fingerprint of a user config: deployers wait until every replica reports it."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _bucket(row: dict[str, Any]) -> float:
    """A stable share in [0, 1) per application (by id, else by content): canary routing is sticky."""
    key = str(row.get(ID_FIELD)) if row.get(ID_FIELD) is not None else json.dumps(row, sort_keys=True, default=str)
    return (zlib.crc32(key.encode()) & 0xFFFFFFFF) / 2**32


def deployment(settings: Settings) -> Any:
    """The ``PdService`` deployment with the replica / concurrency options from settings."""
    return serve.deployment(
        PdService, name="PdService", num_replicas=settings.serve_replicas,
        max_ongoing_requests=settings.serve_max_ongoing_requests,
        ray_actor_options={"num_cpus": 1}, graceful_shutdown_timeout_s=20, graceful_shutdown_wait_loop_s=1,
        health_check_period_s=5,
    )


def build_app(settings: Settings, config: dict[str, Any]) -> Any:
    """The bound application: settings plus the user config (model versions, routing mode)."""
    return deployment(settings).options(user_config=config).bind(settings)


def app_builder(args: dict[str, Any]) -> Any:
    """Entry point for Serve config files / KubeRay (``import_path: serving.app:app_builder``).

    Settings come from ``args["settings"]`` (``CREDITRISK_*`` strings, what a local deploy passes) or
    else the environment (production: the pod's env). The deployment's user config, when given,
    overrides the registry-derived model versions."""
    from .runtime import registry_config

    env = args.get("settings")
    settings = Settings.from_env(env) if isinstance(env, dict) else Settings.from_env()
    return build_app(settings, registry_config(settings))
