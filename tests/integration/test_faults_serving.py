"""Fault: one of two Ray Serve replicas SIGKILLed (its worker process: no graceful shutdown, no flush) under load.

The session's real Ray head, a real MLflow server, real gold; the app deployed with 2 replicas through
``serving.runtime.deploy``. Four client threads POST ``/v1/predict`` over loopback, each request with
its own ``X-Request-ID`` and no client retry (a refused connection, a 5xx, a wrong id: all failures),
while a poller GETs ``/v1/health``. One replica's worker process is SIGKILLed mid-load; Serve must replace it (2
RUNNING replicas again within a deadline), ``/v1/health`` must answer 200 throughout, at most 1 % of the
requests of that phase may fail, none of a second bounded burst after recovery, and after a graceful
shutdown every answered request must be in the prediction log exactly once (the killed replica's
unflushed rows included).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from creditrisk_assets.resources import object_store_from_settings
from creditrisk_assets.settings import Settings
from serving import runtime
from serving.app import APP_NAME
from serving.prediction_log import read_hour
from tests.helpers import gold_and_champion
from tests.load import Load, application, poll
from tests.servers import Server

pytestmark = pytest.mark.integration
REPLICA_PREFIX = f"SERVE_REPLICA::{APP_NAME}#PdService#"
MAX_FAILED_SHARE = 0.01
#: health polls that may be cut by the kill itself (in flight on the victim), and how long after it
CUT_POLLS_AT_THE_KILL, CUT_WINDOW_S = 2, 2.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, mlflow_server: Server, ray_cluster: Any) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("faults_serving") / "home"
    settings = Settings.from_env({"CREDITRISK_HOME": str(home), "CREDITRISK_MLFLOW_TRACKING_URI": mlflow_server.url,
                                  "CREDITRISK_SERVE_PORT": str(ray_cluster.serve_port), "CREDITRISK_SERVE_REPLICAS": "2",
                                  "CREDITRISK_PREDICTION_LOG_FLUSH_S": "0.5"})
    store = object_store_from_settings(settings)
    gold, _, version = gold_and_champion(settings, store, hours=24, gold_rows=50)
    runtime.deploy(settings, ray_cluster.address)
    try:
        yield {"settings": settings, "cluster": ray_cluster, "url": runtime.base_url(settings), "gold": gold,
               "store": store, "version": version}
    finally:
        runtime.shutdown_app(ray_cluster.address)  # no-op when the test already shut it down


def replica_names() -> set[str]:
    import ray

    return {a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
            if a["name"].startswith(REPLICA_PREFIX)}


def replica_states() -> dict[str, int]:
    from ray import serve

    app = serve.status().applications.get(APP_NAME)
    if app is None:
        return {}
    return {getattr(k, "value", str(k)): v for k, v in app.deployments["PdService"].replica_states.items()}


def test_replica_killed_under_load_loses_no_answer_and_recovers(stack: dict[str, Any]) -> None:
    import ray

    url = stack["url"]
    bodies = [application(stack["gold"], i) for i in range(20)]
    # the cluster is shared: a replica of an earlier deployment may still be stopping; start from steady state
    poll(lambda: replica_states() == {"RUNNING": 2} and len(replica_names()) == 2, 120,
         "exactly 2 RUNNING replicas before the kill", every_s=0.25)
    before = replica_names()

    health: list[tuple[float, int, str]] = []
    health_stop = threading.Event()

    def poll_health() -> None:  # (sent at, status, body status or problem), one poll every 50 ms
        while not health_stop.is_set():
            sent = time.monotonic()
            try:
                with urllib.request.urlopen(url + "/health", timeout=10) as r:  # noqa: S310
                    health.append((sent, r.status, json.loads(r.read()).get("status", "")))
            except urllib.error.HTTPError as exc:
                health.append((sent, exc.code, ""))
            except Exception as exc:  # noqa: BLE001 - unreachable counts as not ready
                health.append((sent, -1, repr(exc)[:100]))
            health_stop.wait(0.05)

    poller = threading.Thread(target=poll_health, daemon=True)
    poller.start()
    try:
        with Load(url + "/predict", bodies, prefix="fault") as load:
            poll(lambda: len(load.results) >= 200, 60, "200 requests answered before the kill")
            victim = sorted(before)[0]
            pid = ray.get(ray.get_actor(victim, namespace="serve").__ray_call__.remote(
                lambda _replica: __import__("os").getpid()), timeout=30)
            killed_at = time.monotonic()
            os.kill(pid, signal.SIGKILL)  # a sharp instant (ray.kill returns before the process is gone)
            replaced_s = poll(lambda: victim not in (names := replica_names()) and len(names) == 2
                              and replica_states() == {"RUNNING": 2}, 120, "a replacement replica RUNNING",
                              every_s=0.25)
            recovered_at, at_recovery = time.monotonic(), len(load.results)
            poll(lambda: len(load.results) >= at_recovery + 100, 60, "100 more requests after the replacement")
    finally:
        health_stop.set()
        poller.join(timeout=30)

    during = load.results
    failed = load.failures()
    share = len(failed) / len(during)
    first_failure = min((r.sent for r in failed), default=None)
    print(f"\nreplica kill: {len(failed)} of {len(during)} requests failed ({share:.3%}); replaced in "
          f"{replaced_s:.1f} s; first failure {None if first_failure is None else round(first_failure - killed_at, 2)} s "
          f"after the kill; health polls {len(health)} (cut by the kill: "
          f"{sum(1 for h in health if h[1] != 200)}); failures: {[(r.status, r.problem) for r in failed[:5]]}")
    assert len(replica_names() - before) == 1
    assert share <= MAX_FAILED_SHARE, (len(failed), len(during), failed[:5])
    polls_through = [h for h in health if killed_at <= h[0] <= recovered_at]
    assert len(polls_through) >= 20, len(polls_through)  # the poller really ran through the kill
    # /v1/health never answers anything but ready. The only polls that may be cut are those already on their
    # way to the killed replica at the kill: in flight, or sent in the instant before HAProxy sees the dead
    # replica's pooled connections close (a dropped connection, or HAProxy's 502 shown as 500). The ingress
    # replays only requests whose connection failed (retry-on conn-failure), and this client replays nothing.
    not_ready = [h for h in health if h[1] == 200 and h[2] != "ready"]
    assert not not_ready, not_ready[:5]
    cut = [h for h in health if h[1] != 200]
    assert len(cut) <= CUT_POLLS_AT_THE_KILL, cut
    assert all(h[1] in (-1, 500) and killed_at - 10 <= h[0] <= killed_at + CUT_WINDOW_S for h in cut), \
        [(round(h[0] - killed_at, 3), h[1], h[2]) for h in cut]

    with Load(url + "/predict", bodies, total=400, prefix="fault") as burst:  # after recovery: nothing may fail
        poll(lambda: len(burst.results) >= 400, 120, "the second burst")
    assert len(burst.results) == 400 and not burst.failures(), burst.failures()[:5]

    # graceful shutdown flushes both replicas; the killed one's spooled rows were recovered by a live writer
    runtime.shutdown_app(stack["cluster"].address)
    store = stack["store"]
    keys = [o.key for o in store.list("serving/prediction_log/")]
    hours = sorted({dt.datetime.strptime(k.split("dt=")[1][:10] + k.split("hh=")[1][:2], "%Y-%m-%d%H") for k in keys})
    logged = pd.concat([read_hour(store, h) for h in hours], ignore_index=True)
    counts = logged["request_id"].value_counts()
    sent = {r.request_id for r in during + burst.results}
    answered = {r.request_id for r in during + burst.results if r.status == 200}
    missing = answered - set(counts.index)
    assert not missing, f"{len(missing)} answered requests not in the prediction log, e.g. {sorted(missing)[:3]}"
    assert set(counts.index) <= sent  # nothing logged that was not sent
    assert counts.max() == 1, counts[counts > 1].head()  # recovery did not duplicate rows
    assert (logged["model_version"] == stack["version"]).all()
