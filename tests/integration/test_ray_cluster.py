"""Ray as a cluster: a head and two worker nodes, each its own ``ray start`` process on this machine.

The head (``--num-cpus=0``: control plane only, as a production head) runs GCS, the dashboard (Serve's REST
API), the Serve controller and the ingress (HAProxy, ``proxy_location: HeadOnly``); the worker nodes (2 CPUs
each, loopback IPs 127.0.0.2 / 127.0.0.3: Linux routes all of 127/8 to ``lo``) run the replicas, so HAProxy
reaches them at another node's IP, as on a real cluster (hence ``CREDITRISK_SERVE_HOST=0.0.0.0``: replicas bind
the Serve host, and one on loopback is unreachable from another node). The real app is deployed through
``serving.runtime.ensure_deployed`` with ``CREDITRISK_RAY_ADDRESS`` set to the head (what a real cluster sets),
2 replicas and a champion from a real MLflow server.

1. The replicas run on different worker nodes (Ray's state API; Serve reports both RUNNING), and
   ``/v1/health`` answers come from both (its ``node_id``).
2. One worker node's process session is SIGKILLed under load (a node crash: raylet, agents, its replica gone
   at once, no graceful shutdown). Client threads POST ``/v1/predict`` with no client retry throughout. Serve
   must keep answering: requests may fail only inside the recovery window (from the kill until the controller
   sees the replica gone), only those on their way to the dead replica (a few: in flight, or sent before HAProxy
   marks it down), each a dropped connection or a 5xx; every request sent after it answers 200 with a PD in
   (0, 1). Serve must bring the deployment back to 2 RUNNING replicas, now on the surviving node, and a burst
   after that must answer 200 throughout.
"""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from creditrisk_assets.resources import object_store_from_settings
from creditrisk_assets.settings import Settings
from serving import runtime
from serving.config import APP_NAME, DEPLOYMENT_NAME
from tests.helpers import gold_and_champion
from tests.load import Load, application, poll
from tests.servers import Server, free_port

pytestmark = [pytest.mark.integration, pytest.mark.ray]
WORKER_IPS = ("127.0.0.2", "127.0.0.3")
WORKER_CPUS = 2  # one replica each, and room on the survivor for the replacement
CLIENT_THREADS = 2
#: HAProxy marks a replica down after this many layer-4 errors (Serve's RAY_SERVE_HAPROXY_OBSERVE_ERROR_LIMIT default)
HAPROXY_ERROR_LIMIT = 3
REPLICA_PREFIX = f"SERVE_REPLICA::{APP_NAME}#{DEPLOYMENT_NAME}#"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, mlflow_server: Server) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("ray_cluster") / "home"
    settings = Settings.from_env({"CREDITRISK_HOME": str(home), "CREDITRISK_MLFLOW_TRACKING_URI": mlflow_server.url,
                                  "CREDITRISK_SERVE_HOST": "0.0.0.0", "CREDITRISK_SERVE_PORT": str(free_port()),  # noqa: S104
                                  "CREDITRISK_SERVE_REPLICAS": "2", "CREDITRISK_SERVE_MODE": "champion",
                                  "CREDITRISK_PREDICTION_LOG_FLUSH_S": "0.5"})
    store = object_store_from_settings(settings)
    gold, _, version = gold_and_champion(settings, store, hours=24, gold_rows=20)

    head: runtime.Cluster | None = None
    workers: list[runtime.WorkerNode] = []
    try:
        head = runtime.start_cluster(settings, num_cpus=0)
        for ip in WORKER_IPS:
            workers.append(runtime.start_worker_node(settings, head, num_cpus=WORKER_CPUS, ip=ip,
                                                     object_store_bytes=150 * 2**20))
        runtime.connect(head.address)
        poll(lambda: len(alive_nodes()) == 3, 60, "the head and both worker nodes alive in the GCS")
        # as on a real cluster: the deployer is told the head's address, nothing else changes
        settings = dataclasses.replace(settings, ray_address=head.address)
        runtime.ensure_deployed(settings)
        yield {"settings": settings, "head": head, "workers": workers,
               "url": f"http://127.0.0.1:{settings.serve_port}/v1", "gold": gold, "version": version}
    finally:  # every process by its session, whatever failed above
        for node in workers:
            runtime.stop_worker_node(node, grace_s=5)
        if head is not None:
            runtime.stop_cluster(head, grace_s=5)


def alive_nodes() -> dict[str, str]:
    """Node id -> node IP of every node the GCS holds alive."""
    import ray

    return {n["NodeID"]: n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]}


def replica_nodes() -> list[str]:
    """Node ids of the deployment's live replica actors (Ray's state API), sorted."""
    from ray.util.state import list_actors

    return sorted(a.node_id for a in list_actors(filters=[("state", "=", "ALIVE")], limit=1000)
                  if (a.name or "").startswith(REPLICA_PREFIX))


def running() -> int:
    """Replicas Serve's controller reports RUNNING."""
    from ray import serve

    app = serve.status().applications.get(APP_NAME)
    if app is None or DEPLOYMENT_NAME not in app.deployments:
        return 0
    states = app.deployments[DEPLOYMENT_NAME].replica_states
    return sum(n for state, n in states.items() if getattr(state, "value", str(state)) == "RUNNING")


def test_replicas_run_on_different_worker_nodes_and_both_answer(cluster: dict[str, Any]) -> None:
    nodes = alive_nodes()  # the head's IP is the machine's own (Ray resolves a loopback head address to it)
    worker_nodes = {node_id for node_id, ip in nodes.items() if ip in WORKER_IPS}
    assert len(nodes) == 3 and len(worker_nodes) == 2, nodes
    assert running() == 2
    assert sorted(nodes[n] for n in replica_nodes()) == list(WORKER_IPS)  # one replica per worker node, none on the head
    answered_by = set()
    for _ in range(20):  # HAProxy balances sequential requests round-robin over idle replicas
        with urllib.request.urlopen(cluster["url"] + "/health", timeout=30) as r:  # noqa: S310
            body = json.loads(r.read())
        assert body["champion"] == cluster["version"]
        answered_by.add(body["node_id"])
    assert answered_by == worker_nodes


def test_killing_a_worker_node_leaves_serve_answering_and_replicas_come_back(cluster: dict[str, Any]) -> None:
    url = cluster["url"]
    victim, survivor = cluster["workers"]
    nodes = alive_nodes()
    victim_id = next(n for n, ip in nodes.items() if ip == victim.ip)
    survivor_id = next(n for n, ip in nodes.items() if ip == survivor.ip)
    bodies = [application(cluster["gold"], i) for i in range(20)]
    with Load(url + "/predict", bodies, threads=CLIENT_THREADS, prefix="cluster") as load:
        poll(lambda: len(load.results) >= 100, 60, "100 answers before the kill")
        killed_at = time.monotonic()
        runtime.stop_worker_node(victim, grace_s=0)  # SIGKILL to the node's whole process session
        noticed_s = poll(lambda: running() < 2, 120, "the controller seeing the killed node's replica gone")
        noticed_at = time.monotonic()
        restored_s = poll(lambda: running() == 2 and replica_nodes() == [survivor_id] * 2, 180,
                          "2 RUNNING replicas again, on the surviving node")
        at_restore = len(load.results)
        poll(lambda: len(load.results) >= at_restore + 100, 60, "100 more answers after the replacement")
    dead_s = poll(lambda: victim_id not in alive_nodes(), 120, "the GCS marking the node dead")
    results, failed = load.results, load.failures()
    print(f"\nnode kill: {len(failed)} of {len(results)} requests failed; controller saw the replica gone after "
          f"{noticed_s:.1f} s, 2 replicas RUNNING again {restored_s:.1f} s later (the GCS had marked the node dead by "
          f"then + {dead_s:.1f} s); failures (thread, status, problem, sent - kill s): "
          f"{[(f.thread, f.status, f.problem[:80], round(f.sent - killed_at, 2)) for f in failed]}")
    # The recovery window runs from the kill until the controller sees the replica gone (both events, no clock).
    # Requests that may fail in it: those in flight on the killed node, and those HAProxy sends on its pooled
    # connections to the dead replica before it marks that server down (after HAPROXY_ERROR_LIMIT layer-4 errors or
    # failed health checks; it replays only requests whose connection failed before anything was sent). Each is a
    # dropped connection or a 5xx (HAProxy shows its 502 as 500); this client replays nothing. Every request sent
    # after the window must answer 200 with a PD.
    assert len(failed) <= CLIENT_THREADS + HAPROXY_ERROR_LIMIT, failed
    assert all(f.status == -1 or 500 <= f.status < 600 for f in failed), failed
    assert all(f.answered >= killed_at and f.sent <= noticed_at for f in failed), failed  # inside the recovery window
    assert sum(1 for r in results if r.sent > noticed_at and r.status == 200) >= 100  # answered throughout after it

    with Load(url + "/predict", bodies, threads=CLIENT_THREADS, total=200, prefix="cluster") as burst:
        poll(lambda: len(burst.results) >= 200, 120, "a burst of 200 requests after the recovery")
    assert not burst.failures(), burst.failures()[:5]
    assert running() == 2 and replica_nodes() == [survivor_id] * 2
