"""The Ray Serve application: champion (and challenger) behind ``/v1``.

One deployment, ``PdService``, takes the raw HTTP request (no FastAPI layer: the ingress is
HAProxy → replica, see ``serving/runtime.py``) and routes ``POST /v1/predict`` (features, or an id in the
feature store), ``POST /v1/decide`` (the raw application and bureau records: the features computed by the
dbt models' own SQL, ``creditrisk_assets.gold.online``), ``GET /v1/health``, ``GET /v1/model``. Which model versions it serves and how traffic is split are its *user config*
(``champion``, ``challenger``, ``mode``, ``canary_share``): changing them reconfigures the live
replicas in place — the new models load beside the old ones and are swapped in atomically, so
in-flight requests finish on the model they started with (zero downtime).

Batching without a timer: requests queue; one drain task scores everything queued in one
vectorised call. A lone request is scored at once (no batch wait); under load the queue fills
while the previous batch is being scored, so batches grow with concurrency on their own. Decision
requests are batched the same way for their features (one run of the feature graph per batch, on a
worker thread, so the event loop keeps taking requests meanwhile).

The request schema and feature order are the served models' own (``TrainedModel.features``, recorded
with the model in MLflow), not the repository's: a champion trained before a feature was added is
served what it knows.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import decimal
import gc
import json
import logging
import math
import threading
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ray
from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from creditrisk_assets.contracts import TABLES
from creditrisk_assets.gold import online
from creditrisk_assets.gold.catalogue import categorical_features
from creditrisk_assets.layout import LATEST_DRIFT_KEY
from creditrisk_assets.logs import configure_logging
from creditrisk_assets.quality.pii import pseudonymise
from creditrisk_assets.resources import object_store_from_settings
from creditrisk_assets.settings import Settings

from .config import APP_NAME, ROUTE_PREFIX, config_hash, deployment_options, registry_config
from .models import load_scorer
from .prediction_log import PredictionLogWriter
from .schemas import ID_FIELD, DecideParser, RequestError, RequestParser
from .scoring import REASON_MODES, Scorer

__all__ = ["APP_NAME", "ROUTE_PREFIX", "PdService", "app_builder", "build_app", "deployment"]
log = logging.getLogger("creditrisk.serving")
ROUTES = ("predict", "decide", "health", "model")
#: query parameters each scoring route accepts
QUERY = {"predict": ("reasons",), "decide": ("reasons", "features")}
#: a feature batch costs ~30 ms whatever its size: after a batch of several requests, the next one waits this
#: long at most for as many to queue (their clients are sending them), instead of leaving with the first one
#: (no wait after a lone request: a single client is never delayed)
ONLINE_GATHER_S = 0.005
LATENCY_BUCKETS_MS = [0.5, 1, 2, 3, 5, 8, 13, 20, 40, 80, 160, 320, 1000]


def _plain(value: Any) -> Any:
    """JSON for what feature rows hold besides JSON types (timestamps, decimals); never NaN or infinity."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body, separators=(",", ":"), default=_plain), status_code=status,
                    media_type="application/json")


class _NoMetric:
    def inc(self, *args: Any, **kwargs: Any) -> None: ...
    def observe(self, *args: Any, **kwargs: Any) -> None: ...


#: Drift gauges re-exported by every replica from ``monitoring/latest_drift.json`` (written by the
#: ``monitoring/drift`` asset), so Prometheus scrapes drift next to the serving metrics.
DRIFT_GAUGES = {"drift_share": "share of features drifted in the latest window",
                "prediction_psi": "PSI of predicted PD, latest window vs the champion's reference",
                "drift_detected": "1 when the latest window counts as drifted"}


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
        self.decide_parser = DecideParser(settings.serve_max_body_bytes)
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
        # /v1/decide: the feature graph's engine (built at the first reconfigure), its replacement once the lake
        # moved on (swapped in between batches), the queue of requests waiting for features
        self.online: online.OnlineEngine | None = None
        self._online_next: online.OnlineEngine | None = None
        self.online_problem = "the online feature graph is loading"
        self._online_queue: list[tuple[online.RawDecision, asyncio.Future[Any]]] = []
        self._online_running = False
        # one thread runs every batch: DuckDB's per-thread allocator caches stay warm
        self._online_pool = ThreadPoolExecutor(1, thread_name_prefix="online-features")

    # ------------------------------------------------------------------ configuration
    async def reconfigure(self, config: dict[str, Any]) -> None:
        """Load the configured versions (off the event loop), then swap them in at once."""
        champion_version = str(config.get("champion") or "")
        challenger_version = str(config.get("challenger") or "")
        mode = config.get("mode", self.settings.serve_mode)
        share = float(config.get("canary_share", self.settings.serve_canary_share))
        champion = await self._load(champion_version, "champion", self.champion)
        challenger = await self._load(challenger_version, "challenger", self.challenger) if challenger_version else None
        served = [s for s in (champion, challenger) if s is not None]
        used = tuple(dict.fromkeys(f for s in served for f in s.features))  # the champion's order first
        if used and used != self.parser.used:  # the request schema is the served models' own feature list
            self.parser = RequestParser(self.settings.serve_max_rows, self.settings.serve_max_body_bytes, used=used,
                                        categorical={c for s in served for c in s.trained.categorical})
        self.champion, self.challenger, self.mode, self.canary_share = champion, challenger, mode, share
        if self.online is None:
            await asyncio.to_thread(self._start_online)
        self.config_hash = config_hash(config)
        # the models, schemas and caches live until the next reconfigure: move them out of the cyclic GC's
        # generations, so collections triggered on the request path do not re-scan them (tail latency);
        # unfreeze first, so the models this swap replaced can still be collected
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        log.info("serving configured", extra={"champion": champion_version, "challenger": challenger_version,
                                              "mode": mode, "canary_share": share,
                                              "online_features": self.online_problem or "ready"})

    async def _load(self, version: str, alias: str, current: Scorer | None) -> Scorer | None:
        if not version:
            return None
        if current is not None and current.info.version == version:
            current.info.alias = alias
            return current
        return await asyncio.to_thread(load_scorer, self.settings, version, alias)

    def _start_online(self) -> None:
        """Compile the gold project (cached per fingerprint), copy the histories from the lake, keep them fresh.
        A failure leaves ``/v1/decide`` answering 503 with the reason; ``/v1/predict`` is not affected."""
        try:
            graph = online.FeatureGraph.load(online.compile_manifest(self.settings))
            self.use_online(online.build_engine(self.settings, graph))
        except Exception as exc:  # noqa: BLE001 - reported by /v1/decide and /v1/model, never a crash
            self.online_problem = f"online features unavailable ({type(exc).__name__}: {str(exc)[:300]})"
            log.error("online features unavailable", extra={"error": type(exc).__name__, "reason": str(exc)[:300]})
            return
        threading.Thread(target=self._watch_lake, name="online-history", daemon=True).start()

    def use_online(self, engine: online.OnlineEngine) -> None:
        """Serve ``/v1/decide`` with ``engine`` (from the next batch on)."""
        if self.online is None:
            self.online = engine
        else:
            self._online_next = engine
        self.online_problem = ""

    def _watch_lake(self, every_s: float = online.HISTORY_REFRESH_S) -> None:
        """Copy the applicant histories again whenever the lake has a newer snapshot (best effort: the current
        copy keeps serving, its snapshot is in every answer)."""
        while True:
            time.sleep(every_s)
            engine = self.online
            try:
                snapshot = online.lake_snapshot(self.settings)
                if engine is not None and snapshot != engine.snapshot_id:
                    self.use_online(online.build_engine(self.settings, engine.graph, snapshot))
                    log.info("online histories refreshed", extra={"lake_snapshot": snapshot})
            except Exception as exc:  # noqa: BLE001 - the lake may be busy or away: try again later
                log.warning("online history refresh failed", extra={"error": type(exc).__name__})

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
        elif route == "decide" and request.method == "POST":
            response = await self._decide(request, request_id, started)
        elif route == "health" and request.method == "GET":
            champion = self.champion
            response = _json(200 if champion else 503, {"status": "ready" if champion else "no model loaded",
                                                        "champion": champion.info.version if champion else None,
                                                        "config_hash": self.config_hash,
                                                        # the Ray node that answered (replicas spread over nodes);
                                                        # never starts Ray (get_runtime_context() would, unconnected)
                                                        "node_id": ray.get_runtime_context().get_node_id()
                                                        if ray.is_initialized() else None})
        elif route == "model" and request.method == "GET":
            response = _json(200 if self.champion else 503, self._describe())
        elif route in ROUTES:
            response = _json(405, {"request_id": request_id, "errors": [
                {"field": "method", "error": f"{request.method} is not allowed on {path}"}]})
        else:
            route = "unknown"
            response = _json(404, {"request_id": request_id, "errors": [
                {"field": "path", "error": f"no such endpoint {path}; see "
                                          + ", ".join(f"{ROUTE_PREFIX}/{r}" for r in ROUTES)}]})
        response.headers["x-request-id"] = request_id
        self.metrics.request(route, response.status_code, (time.perf_counter() - started) * 1000)
        return response

    def _describe(self) -> dict[str, Any]:
        def info(s: Scorer | None) -> dict[str, Any] | None:
            return None if s is None else {**s.info.__dict__, "kind": s.trained.kind, "features": len(s.features)}
        engine = self.online
        return {"champion": info(self.champion), "challenger": info(self.challenger), "mode": self.mode,
                "canary_share": self.canary_share, "threshold": self.settings.decision_threshold,
                "reason_codes": self.settings.serve_reason_codes,
                "online_features": {"status": self.online_problem or "ready",
                                    "features": len(engine.graph.features) if engine else 0,
                                    "graph": engine.graph.manifest_hash if engine else "",
                                    "lake_snapshot": engine.snapshot_id if engine else None,
                                    "missing_for_served_models": self._missing_online()}}

    def _missing_online(self) -> list[str]:
        """Features a served model needs that the feature graph does not compute (its dbt models changed)."""
        engine = self.online
        if engine is None:
            return []
        computed = set(engine.graph.features)
        return [f for s in (self.champion, self.challenger) if s is not None for f in s.features if f not in computed]

    def _refused(self, request: Request, request_id: str) -> Response | None:
        """The answer to a scoring request that cannot be scored at all (no key, no model), else None."""
        if self.settings.serve_api_key and request.headers.get("x-api-key") != self.settings.serve_api_key:
            return _json(401, {"request_id": request_id, "errors": [
                {"field": "X-API-Key", "error": "missing or wrong API key header"}]})
        if self.champion is None:
            return _json(503, {"request_id": request_id, "errors": [{"field": "model", "error": "no model loaded"}]})
        return None

    async def _predict(self, request: Request, request_id: str, started: float) -> Response:
        refused = self._refused(request, request_id)
        if refused is not None:
            return refused
        try:
            explain_all, _ = self._options(request, "predict")
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

    async def _decide(self, request: Request, request_id: str, started: float) -> Response:
        """The raw application (and bureau records) in; features by the dbt models' SQL, then the champion."""
        refused = self._refused(request, request_id)
        if refused is not None:
            return refused
        try:
            explain_all, with_features = self._options(request, "decide")
            raw = self.decide_parser.parse(await request.body())
        except RequestError as exc:
            return _json(exc.status, exc.body(request_id))
        missing = self._missing_online()
        if self.online is None or missing:
            problem = self.online_problem or ("the feature graph does not compute feature(s) the served model "
                                              f"uses: {', '.join(missing[:10])}")
            return _json(503, {"request_id": request_id, "errors": [{"field": "features", "error": problem}]})
        event_time = TABLES[online.APPLICATION].event_time
        raw.rows[online.APPLICATION][0].setdefault(event_time, online.decision_time_now())
        result = await self._online_features(raw)
        if isinstance(result, online.Rejected):
            return _json(422, {"request_id": request_id,
                               "errors": [{"field": e.field, "error": e.error} for e in result.errors]})
        row = result.features
        (answer,) = await self._submit([row], explain_all)
        latency = (time.perf_counter() - started) * 1000
        self._log(request_id, [row], ["raw_application"], [answer], latency, [result.pseudonymised])
        body = {"request_id": request_id, ID_FIELD: row.get(ID_FIELD), "decision_time": row.get("decision_time"),
                **{k: v for k, v in answer.items() if not k.startswith("_")}, "lake_snapshot": result.snapshot_id}
        if with_features:
            body["features"] = _finite({f: row.get(f) for f in self.online.graph.features})
        return _json(200, body)

    def _options(self, request: Request, route: str) -> tuple[bool, bool]:
        """(reason codes for every application, features in the answer) from the query string.

        ``?reasons=all`` asks reason codes for every application of the request (``declined``: only declined
        ones); without it, ``CREDITRISK_SERVE_REASON_CODES`` decides. ``?features=true`` (``/v1/decide``)
        returns the computed features."""
        allowed = QUERY[route]
        unknown = sorted(set(request.query_params) - set(allowed))
        if unknown:
            raise RequestError(422, [{"field": f"query.{unknown[0][:100]}", "error": "unknown query parameter; "
                                      f"only {', '.join(f'`{a}`' for a in allowed)} accepted"}])
        value = request.query_params.get("reasons", self.settings.serve_reason_codes)
        if value not in REASON_MODES:
            raise RequestError(422, [{"field": "query.reasons", "error": f"expected one of {', '.join(REASON_MODES)}"}])
        features = request.query_params.get("features", "false")
        if features not in ("true", "false"):
            raise RequestError(422, [{"field": "query.features", "error": "expected true or false"}])
        return value == "all", features == "true"

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

    # ------------------------------------------------------------------ online features, batched
    async def _online_features(self, raw: online.RawDecision) -> online.Decided | online.Rejected:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._online_queue.append((raw, future))
        if not self._online_running:
            self._online_running = True
            asyncio.get_running_loop().create_task(self._online_drain())
        result: online.Decided | online.Rejected = await future
        return result

    async def _online_drain(self) -> None:
        """Run the feature graph over everything queued (up to ``serve_batch_max_rows`` requests) on the engine's
        thread, batch after batch while requests come (after a batch of several, up to ``ONLINE_GATHER_S`` for as
        many again); a newer engine (fresher histories) is swapped in between batches."""
        loop, last, n = asyncio.get_running_loop(), 1, self.settings.serve_batch_max_rows
        try:
            while True:
                deadline = loop.time() + ONLINE_GATHER_S
                while 1 < last and len(self._online_queue) < min(last, n) and loop.time() < deadline:
                    await asyncio.sleep(0.0005)
                if not self._online_queue:
                    break
                batch, self._online_queue = self._online_queue[:n], self._online_queue[n:]
                last = len(batch)
                if self._online_next is not None:
                    old, self.online, self._online_next = self.online, self._online_next, None
                    if old is not None:
                        old.close()
                engine = self.online
                assert engine is not None
                try:
                    results = await loop.run_in_executor(self._online_pool, engine.compute, [raw for raw, _ in batch])
                except Exception as exc:  # ours (5xx), never a client's; the message may quote a value: not logged
                    log.error("online features failed", extra={"error": type(exc).__name__, "requests": len(batch)})
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._online_running = False

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
             results: list[dict[str, Any]], latency_ms: float, requests: list[str] | None = None) -> None:
        """Every scored application into the prediction log: pseudonymised id, its features, the answer; for a
        decision request also the request itself as silver keeps it (identifiers as HMAC, no birth date)."""
        now = dt.datetime.now(dt.UTC)
        key = self.settings.pii_key
        entries = []
        for i, (row, source, r) in enumerate(zip(rows, sources, results, strict=True)):
            app_id = row.get(ID_FIELD)
            entries.append({**{f: row.get(f) for f in self.writer.features},
                            "request_id": request_id, "logged_at": now,
                            "applicant_hash": None if app_id is None else pseudonymise(str(app_id), key),
                            "feature_source": source, "served_by": r["served_by"],
                            "model_version": r["model_version"], "pd": r["pd"], "score": r["score"],
                            "grade": r["grade"], "decision": r["decision"],
                            "reason_codes": ",".join(r["reason_codes"]),
                            "shadow_version": r.get("_shadow_version"), "shadow_pd": r.get("_shadow_pd"),
                            "latency_ms": latency_ms, "request_json": requests[i] if requests else None})
        self.writer.log(entries)

    def __del__(self) -> None:
        """Graceful shutdown (Ray Serve calls this on a replica it stops): flush the prediction log."""
        pool = getattr(self, "_online_pool", None)
        if pool is not None:
            pool.shutdown(wait=False)
        writer = getattr(self, "writer", None)
        if writer is not None:
            left = writer.close()
            with contextlib.suppress(Exception):  # logging may already be torn down at exit
                log.info("prediction log flushed", extra={"written": writer.written, "unwritten": left})


def _bucket(row: dict[str, Any]) -> float:
    """A stable share in [0, 1) per application (by id, else by content): canary routing is sticky."""
    key = str(row.get(ID_FIELD)) if row.get(ID_FIELD) is not None else json.dumps(row, sort_keys=True, default=str)
    return (zlib.crc32(key.encode()) & 0xFFFFFFFF) / 2**32


def deployment(settings: Settings) -> Any:
    """The ``PdService`` deployment with the replica / concurrency options from settings."""
    return serve.deployment(PdService, **deployment_options(settings))


def build_app(settings: Settings, config: dict[str, Any]) -> Any:
    """The bound application: settings plus the user config (model versions, routing mode)."""
    return deployment(settings).options(user_config=config).bind(settings)


def app_builder(args: dict[str, Any]) -> Any:
    """Entry point of the declarative Serve config (``import_path: serving.app:app_builder``: ``creditrisk
    serve``, ``serve deploy serving/config.yaml``, KubeRay).

    Settings come from ``args["settings"]`` (``CREDITRISK_*`` strings, what a local deploy passes) or
    else the environment (production: the pod's env). The deployment's user config, when given,
    overrides the registry-derived model versions."""
    env = args.get("settings")
    settings = Settings.from_env(env) if isinstance(env, dict) else Settings.from_env()
    return build_app(settings, registry_config(settings))
