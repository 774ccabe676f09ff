"""Shared fixtures: settings under a temp data home, real S3 (SeaweedFS), both store backends."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from creditrisk_assets.resources import Lake, ObjectStore, object_store_from_settings
from creditrisk_assets.settings import Settings
from tests.servers import Server, start_seaweedfs

#: modules ``make test`` runs in the Ray tests' process (before the cluster starts): measured in one clean-clone run,
#: the Ray tests took 13 min and the rest 22 min; these two (~4.5 min) even them out
BESIDE_RAY = ("test_postgres.py", "test_dbt_partial_parse.py")


@pytest.hookimpl(tryfirst=True)  # before `-m` selects on the marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the Ray cluster ``ray``: ``make test`` runs them (~8 min) in a pytest process
    of their own beside the rest (the suite waits on servers about half the time). In one process they
    run last, so the session's cluster does not idle (~15 % of a core) through the rest of the suite."""
    for item in items:
        if "ray_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ray)
        elif item.path.name in BESIDE_RAY:
            item.add_marker(pytest.mark.beside_ray)
    items.sort(key=lambda item: "ray_cluster" in getattr(item, "fixturenames", ()))


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"CREDITRISK_HOME": str(tmp_path / "home")})


@pytest.fixture()
def folder_store(settings: Settings) -> ObjectStore:
    store = object_store_from_settings(settings)
    store.check()
    return store


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_seaweedfs(tmp_path_factory.mktemp("s3"))
    yield server
    server.stop()


_bucket_counter = iter(range(1_000_000))


def s3_settings(tmp_path: Path, server: Server, bucket: str) -> Settings:
    return Settings.from_env({
        "CREDITRISK_HOME": str(tmp_path / "home"),
        "CREDITRISK_OBJECT_STORE": "s3",
        "CREDITRISK_S3_ENDPOINT": server.url,
        "CREDITRISK_S3_BUCKET": bucket,
        "CREDITRISK_S3_ACCESS_KEY_ID": server.extra["access_key"],
        "CREDITRISK_S3_SECRET_ACCESS_KEY": server.extra["secret_key"],
    })


@pytest.fixture(params=["folder", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, ObjectStore]:
    """(settings, store) for each object-store backend; S3 gets a fresh bucket per test.

    The S3 settings are also exported, as a deployment has them: subprocesses (dbt) read the
    keys from the environment, never from a file.
    """
    if request.param == "folder":
        s = Settings.from_env({"CREDITRISK_HOME": str(tmp_path / "home")})
    else:
        server = request.getfixturevalue("seaweed")
        s = s3_settings(tmp_path, server, f"t{next(_bucket_counter)}-{tmp_path.name[-20:].lower().replace('_', '-')}")
        monkeypatch.setenv("CREDITRISK_S3_ACCESS_KEY_ID", s.s3_access_key_id)
        monkeypatch.setenv("CREDITRISK_S3_SECRET_ACCESS_KEY", s.s3_secret_access_key)
    store = object_store_from_settings(s)
    if request.param == "s3":
        store.ensure_bucket()  # type: ignore[attr-defined]
    store.check()
    return s, store


@pytest.fixture()
def lake(settings: Settings) -> Lake:
    return Lake(settings)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A fresh real ``mlflow server`` per test module: each module's registry (aliases, champion) is its own."""
    from tests.servers import start_mlflow

    server = start_mlflow(tmp_path_factory.mktemp("mlflow"))
    yield server
    server.stop(grace_s=10)


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real local Ray head (2 CPUs), shared by the serving tests; its Serve HTTP port is fixed at the
    first deploy, so every test's settings use ``cluster.serve_port``. Stopped by process group."""
    from serving import runtime
    from tests.servers import free_port

    settings = Settings(home=tmp_path_factory.mktemp("ray") / "home", serve_port=free_port())
    cluster = runtime.start_cluster(settings)
    yield cluster
    runtime.stop_cluster(cluster, grace_s=5)


@dataclass
class Webhook:
    """A real HTTP receiver of alerts (what Slack's incoming webhook would get): ``received`` holds every body."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)

    def texts(self, kind: str) -> list[str]:
        return [a["text"] for a in self.received if a["text"].startswith(f"[creditrisk {kind}]")]


@pytest.fixture(scope="module")
def webhook() -> Iterator[Webhook]:
    received: list[dict[str, Any]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Webhook(f"http://127.0.0.1:{server.server_address[1]}/hook", received)
    server.shutdown()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A throwaway PostgreSQL (Debian's ``postgresql`` package, run as the ``postgres`` user) on a free
    loopback port with databases ``lake``, ``dagster`` and ``mlflow``; stopped by PID (fast shutdown).
    Without the server binaries it fails, never skips: ``make test`` installs the package."""
    from tests.servers import postgres_bin, start_postgres

    try:
        postgres_bin()
    except FileNotFoundError as exc:
        pytest.fail(str(exc), pytrace=False)
    server = start_postgres(tmp_path_factory.mktemp("postgres"))
    yield server
    server.stop()
