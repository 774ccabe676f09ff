"""The one resources module: object store (folder | S3), lake (DuckDB), chosen by settings.

These are plain Python objects that know nothing about Dagster, so tests and the CLI use them directly;
Dagster gets them through the typed resources of ``dagster_resources.py`` (``ObjectStorage.get_store()``,
``DuckLake.get_lake()``), whose configuration the UI shows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import random
import shutil
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import duckdb

from .layout import LAKE_DATA_PREFIX
from .settings import Settings

DUCKDB_VERSION = duckdb.__version__


#: How long a presigned link in asset metadata opens the object (S3's maximum for SigV4: 7 days).
LINK_EXPIRY_S = 7 * 24 * 3600


class ObjectStoreError(RuntimeError):
    """The object store cannot be used; the message names the setting to fix."""


def _tmp_name(p: Path) -> Path:
    """A temp file beside ``p`` private to this process *and thread*: two runs in one process (threads)
    writing the same key must not share (and truncate) one temp file."""
    return p.with_name(f".{p.name}.tmp{os.getpid()}-{threading.get_ident()}")


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: dt.datetime  # UTC


class ObjectStore(ABC):
    """Keys are '/'-separated paths relative to the store root (no leading slash)."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def list(self, prefix: str) -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix``, sorted by key."""

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def uri(self, key: str) -> str:
        """An address of the object that DuckDB can read (a local path or ``s3://``)."""

    def link(self, key: str) -> str:
        """Where a person opens the object from the UI: a local path (folder store) or an http URL."""
        return self.uri(key)

    @abstractmethod
    def check(self) -> None:
        """Raise ``ObjectStoreError`` naming the setting to fix when the store is unusable."""

    def put_file(self, key: str, path: Path) -> None:
        self.put_bytes(key, Path(path).read_bytes())

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        """A local file holding the object (downloaded to a temp file when remote)."""
        with tempfile.TemporaryDirectory(prefix="creditrisk-") as tmp:
            path = Path(tmp) / Path(key).name
            path.write_bytes(self.get_bytes(key))
            yield path

    def delete_prefix(self, prefix: str) -> int:
        objs = self.list(prefix)
        for o in objs:
            self.delete(o.key)
        return len(objs)


class FolderStore(ObjectStore):
    """The embedded default: a folder on the local disk."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if self.root not in p.parents and p != self.root:
            raise ValueError(f"key escapes the store root: {key!r}")
        return p

    def put_bytes(self, key: str, data: bytes) -> None:
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = _tmp_name(p)
        tmp.write_bytes(data)
        os.replace(tmp, p)  # atomic: readers never see half a file

    def put_file(self, key: str, path: Path) -> None:
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = _tmp_name(p)
        shutil.copyfile(path, tmp)
        os.replace(tmp, p)

    def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def list(self, prefix: str) -> list[ObjectInfo]:
        base = self.root
        # walk only below the deepest directory named by the prefix
        head = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self._path(head) if head else base
        if not start.exists():
            return []
        out = []
        for dirpath, _dirs, files in os.walk(start):
            for name in files:
                if name.startswith("."):
                    continue
                full = Path(dirpath) / name
                key = full.relative_to(base).as_posix()
                if key.startswith(prefix):
                    st = full.stat()
                    out.append(ObjectInfo(key, st.st_size, dt.datetime.fromtimestamp(st.st_mtime, dt.UTC)))
        return sorted(out, key=lambda o: o.key)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ObjectStoreError(f"cannot create the object store folder {self.root} "
                                   f"(CREDITRISK_STORE_ROOT / CREDITRISK_HOME): {exc}") from exc

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        yield self._path(key)


# A dead or hung endpoint fails a call within about CONNECT_TIMEOUT_S (or READ_TIMEOUT_S) x ATTEMPTS plus
# a few seconds of backoff, not minutes; a failure names the endpoint, the bucket and the object.
S3_CONNECT_TIMEOUT_S = 2
S3_READ_TIMEOUT_S = 20
S3_ATTEMPTS = 3  # in all, the first one included


class S3Store(ObjectStore):
    """Any S3 API: AWS in production, SeaweedFS in tests."""

    def __init__(self, bucket: str, endpoint: str = "", region: str = "us-east-1",
                 access_key_id: str = "", secret_access_key: str = "") -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.endpoint = endpoint
        self.region = region
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        kwargs: dict[str, object] = {
            "region_name": region,
            "config": Config(connect_timeout=S3_CONNECT_TIMEOUT_S, read_timeout=S3_READ_TIMEOUT_S,
                             retries={"total_max_attempts": S3_ATTEMPTS, "mode": "standard"},
                             s3={"addressing_style": "path"}),
        }
        if endpoint:
            kwargs["endpoint_url"] = endpoint
        if access_key_id:
            kwargs["aws_access_key_id"] = access_key_id
            kwargs["aws_secret_access_key"] = secret_access_key
        self.client = boto3.client("s3", **kwargs)  # type: ignore[call-overload]

    def _fail(self, exc: Exception, op: str = "", key: str | None = None) -> ObjectStoreError:
        """One clear error for a failed call: what was done (``op`` of ``key``), where, and what to check."""
        from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError
        from botocore.exceptions import ConnectionError as BotoConnectionError

        where = self.endpoint or "AWS default endpoint"
        what = f"{op} s3://{self.bucket}/{key}" if key is not None else (op or "call")
        if isinstance(exc, BotoConnectionError | HTTPClientError):  # refused, timed out, connection dropped
            return ObjectStoreError(f"S3 {what} failed: cannot reach the S3 endpoint {where} (bucket {self.bucket!r}) "
                                    f"after {S3_ATTEMPTS} attempt(s): check CREDITRISK_S3_ENDPOINT and that the "
                                    f"server is up ({type(exc).__name__}: {exc})")
        if isinstance(exc, NoCredentialsError):
            return ObjectStoreError("no S3 credentials: set CREDITRISK_S3_ACCESS_KEY_ID and CREDITRISK_S3_SECRET_ACCESS_KEY")
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchBucket") and (key is None or code == "NoSuchBucket"):
                return ObjectStoreError(f"bucket {self.bucket!r} does not exist at {where}: check CREDITRISK_S3_BUCKET")
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                return ObjectStoreError(f"access to bucket {self.bucket!r} at {where} denied ({code}): check "
                                        "CREDITRISK_S3_ACCESS_KEY_ID / CREDITRISK_S3_SECRET_ACCESS_KEY")
        return ObjectStoreError(f"S3 {what} failed at {where} (bucket {self.bucket!r}; CREDITRISK_S3_ENDPOINT, "
                                f"CREDITRISK_S3_BUCKET): {exc}")

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:  # noqa: BLE001 - translated into one clear error
            raise self._fail(exc, "head_bucket") from exc

    def ensure_bucket(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except Exception as exc:  # noqa: BLE001
            err = self._fail(exc, "head_bucket")
            if "does not exist" not in str(err):
                raise err from exc
        self.client.create_bucket(Bucket=self.bucket)

    def put_bytes(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, "put", key) from exc

    def put_file(self, key: str, path: Path) -> None:
        try:
            self.client.upload_file(str(path), self.bucket, key)
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, "upload", key) from exc

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, "get", key) from exc

    def list(self, prefix: str) -> list[ObjectInfo]:
        out: list[ObjectInfo] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for o in page.get("Contents", []):
                    out.append(ObjectInfo(o["Key"], int(o["Size"]), o["LastModified"].astimezone(dt.UTC)))
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, "list", prefix + "*") from exc
        return sorted(out, key=lambda o: o.key)

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, "delete", key) from exc

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def link(self, key: str) -> str:
        """A presigned GET URL (valid ``LINK_EXPIRY_S``): the object opens in a browser without credentials."""
        return str(self.client.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": key},
                                                      ExpiresIn=LINK_EXPIRY_S))


@dataclass(frozen=True)
class S3Access:
    """Where an S3 bucket is and how to sign for it (empty keys: boto3's and DuckDB's credential chain)."""

    bucket: str
    endpoint: str = ""
    region: str = "us-east-1"
    access_key_id: str = ""
    secret_access_key: str = field(default="", repr=False)

    @classmethod
    def of(cls, settings: Settings) -> S3Access:
        return cls(settings.s3_bucket, settings.s3_endpoint, settings.s3_region,
                   settings.s3_access_key_id, settings.s3_secret_access_key)

    def store(self) -> S3Store:
        return S3Store(self.bucket, self.endpoint, self.region, self.access_key_id, self.secret_access_key)


def object_store_from_settings(settings: Settings) -> ObjectStore:
    if settings.object_store == "s3":
        return S3Access.of(settings).store()
    return FolderStore(settings.resolved_store_root)


def open_store_for_writing(settings: Settings) -> ObjectStore:
    """The configured store, ready for a command that writes to it: the S3 bucket exists, the store answers
    (``ObjectStoreError`` naming endpoint and bucket otherwise)."""
    store = object_store_from_settings(settings)
    if isinstance(store, S3Store):
        store.ensure_bucket()
    store.check()
    return store


# ---------------------------------------------------------------------------------- lake

def extension_path(name: str) -> Path:
    """The extension file shipped by the PyPI ``duckdb-extension-<name>`` package."""
    import importlib

    mod = importlib.import_module(f"duckdb_extension_{name}")
    if mod.__file__ is None:  # a namespace package: the wheel's files are not there
        raise FileNotFoundError(f"duckdb_extension_{name} has no files: "
                                f"reinstall duckdb-extension-{name}=={DUCKDB_VERSION}")
    path = Path(mod.__file__).parent / "extensions" / f"v{DUCKDB_VERSION}" / f"{name}.duckdb_extension"
    if not path.exists():
        raise FileNotFoundError(f"{path} missing: reinstall duckdb-extension-{name}=={DUCKDB_VERSION}")
    return path


@functools.cache
def _duckdb_platform() -> str:
    """DuckDB's platform name (``linux_amd64``): the folder of installed extensions below the version's."""
    with duckdb.connect(":memory:") as con:
        return str(con.execute("PRAGMA platform").fetchone()[0])  # type: ignore[index]


T = TypeVar("T")
LAKE_ALIAS = "lake"
WRITER_LOCK_TIMEOUT_S = 600.0
SQLITE_BUSY_TIMEOUT_MS = 30_000
# ATTACH options of a SQLite-catalogued lake (``Lake.connect_lake`` and dbt's profile): see ``connect_lake``
SQLITE_META_OPTIONS: dict[str, str | int] = {"meta_journal_mode": "WAL", "meta_busy_timeout": SQLITE_BUSY_TIMEOUT_MS}
# the Dagster concurrency pool of the assets that write the lake (silver, gold); its limit (1) is set on the
# instance (`concurrency: pools: ...` in dagster.yaml, or `dagster instance concurrency set lake 1`)
LAKE_POOL = "lake"


def sqlite_catalog_of(con: duckdb.DuckDBPyConnection) -> str | None:
    """The SQLite file of the lake attached to ``con`` (None: not attached, or another catalog)."""
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = ? AND type = 'ducklake'",
                      [LAKE_ALIAS]).fetchone()
    path = str(row[0]) if row and row[0] else ""
    return path[len("sqlite:"):] if path.startswith("sqlite:") else None


def _backoff_s(attempt: int) -> float:
    """Jittered exponential backoff before retry ``attempt`` of a lake catalog operation."""
    return min(0.05 * 2 ** attempt, 2.0) * (0.5 + random.random())


def _attach_retryable(message: str, postgres: bool) -> bool:
    """An ATTACH of the lake that fails only because of another connection, so the next attempt succeeds:
    SQLite's lock; or, on Postgres, two first ATTACHes of a new catalog both creating its tables (the loser
    gets "already exists" / "duplicate key" on them; the next attempt finds them)."""
    if "database is locked" in message:
        return True
    return postgres and "Failed to initialize DuckLake" in message and (
        "already exists" in message or "duplicate key" in message)


@contextmanager
def writer_lock(catalog_file: str | None, timeout_s: float = WRITER_LOCK_TIMEOUT_S) -> Iterator[None]:
    """An exclusive lock (``flock`` on ``<catalog>.lock``) for one writer of a SQLite-catalogued lake at a time,
    across processes and across threads of one process (each takes its own open file). No-op for other
    catalogs (Postgres has row locks and DuckLake retries its conflicts)."""
    if catalog_file is None:
        yield
        return
    import fcntl

    path = Path(catalog_file + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:  # noqa: PTH123 - flock needs the file object
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another writer has held the lake lock {path} for more than {timeout_s:.0f}s") from None
                time.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@dataclass(frozen=True)
class LakeConfig:
    """What a ``Lake`` needs: its local directory, the DuckLake catalog, where the data files go, the
    directory DuckDB loads extensions from, and the S3 bucket when the object store is S3."""

    directory: Path  # local files of the lake (dbt's DuckDB file, the default SQLite catalog)
    catalog: str = field(repr=False)  # `sqlite:<file>` or `postgres:<dsn>` (a DSN may carry a password)
    data_path: str  # `<store root>/lake/` or `s3://<bucket>/lake/`
    extension_dir: Path
    s3: S3Access | None = None

    @classmethod
    def of(cls, settings: Settings) -> LakeConfig:
        s3 = S3Access.of(settings) if settings.object_store == "s3" else None
        return cls.on(settings.resolved_lake_dir, settings.resolved_lake_catalog,
                      settings.resolved_store_root, settings.home.resolve() / "duckdb_extensions", s3)

    @classmethod
    def on(cls, directory: Path, catalog: str, store_root: Path, extension_dir: Path,
           s3: S3Access | None = None) -> LakeConfig:
        """The lake whose data files live under ``lake/`` of the object store (``store_root`` or ``s3``)."""
        data_path = (f"s3://{s3.bucket}/{LAKE_DATA_PREFIX}" if s3 is not None
                     else str(Path(store_root) / LAKE_DATA_PREFIX.rstrip("/")) + "/")
        return cls(Path(directory), catalog, data_path, Path(extension_dir), s3)

    @property
    def sqlite_file(self) -> str | None:
        """The SQLite file of the catalog, or None when the catalog is elsewhere (Postgres)."""
        return self.catalog[len("sqlite:"):] if self.catalog.startswith("sqlite:") else None


class Lake:
    """DuckDB connections configured for this platform: no extension is ever downloaded.

    ``connect()`` gives a plain DuckDB connection (with S3 access when the store is S3);
    ``connect_lake()`` also attaches the versioned lake: DuckLake, catalog in SQLite by default
    (several processes may write; a commit that meets a lock is retried by ``transact``), data
    files in the object store under ``lake/``.
    """

    def __init__(self, config: Settings | LakeConfig) -> None:
        self.config = config if isinstance(config, LakeConfig) else LakeConfig.of(config)
        self.dir = self.config.directory
        if self.config.catalog.startswith("postgres:"):
            # here, not only in connect_lake: dbt's profile (gold/dbt_profiles.py) builds a Lake, loads the
            # extensions it lists by path, and DuckLake then finds postgres_scanner in the extension directory
            self.postgres_extension()

    @property
    def data_path(self) -> str:
        return self.config.data_path

    def connect_lake(self, threads: int | None = None) -> duckdb.DuckDBPyConnection:
        con = self.connect(threads=threads)
        catalog, sqlite_file = self.config.catalog, self.config.sqlite_file
        if sqlite_file is not None:
            Path(sqlite_file).parent.mkdir(parents=True, exist_ok=True)
            con.execute(f"LOAD '{self.sqlite_extension()}'")
        elif catalog.startswith("postgres:"):
            con.execute(f"LOAD '{self.postgres_extension()}'")
        if self.config.s3 is None:
            Path(self.data_path).mkdir(parents=True, exist_ok=True)
        con.execute(f"LOAD '{extension_path('ducklake')}'")
        # SQLite answers "database is locked" at once while another connection commits: wait for it instead.
        # Write-ahead log: readers (other runs) neither block nor are blocked by a committing writer; writers
        # take turns on ``writer_lock``. The mode is set by DuckDB's own SQLite and kept in the file. Never open
        # the catalog with Python's ``sqlite3`` in a process that has it attached: two copies of SQLite in one
        # process do not see each other's POSIX locks, and closing one deletes the WAL under the other
        # ("disk I/O error", SIGBUS; duckdb/duckdb-sqlite#82).
        meta = "".join(f", {k.upper()} {v!r}" for k, v in SQLITE_META_OPTIONS.items()) if sqlite_file else ""
        attach = (f"ATTACH 'ducklake:{catalog}' AS {LAKE_ALIAS} "
                  f"(DATA_PATH '{self.data_path}', DATA_INLINING_ROW_LIMIT 0{meta})")
        fresh = sqlite_file is not None and not (Path(sqlite_file).exists() and Path(sqlite_file).stat().st_size)
        # the first ATTACH creates the catalog: two at once (two runs on a new lake) meet SQLite's lock
        with writer_lock(sqlite_file) if fresh else contextlib.nullcontext():
            for attempt in range(1, 9):
                try:
                    con.execute(attach)
                    break
                except duckdb.Error as exc:  # a writer is committing: SQLite reports it at once
                    if not _attach_retryable(str(exc), sqlite_file is None) or attempt == 8:
                        con.close()
                        raise
                    time.sleep(_backoff_s(attempt))
        return con

    def sqlite_extension(self) -> Path:
        # DuckDB loads the sqlite extension only under its real name, sqlite_scanner
        target = self.config.extension_dir / "sqlite_scanner.duckdb_extension"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = _tmp_name(target)  # two runs in one process may get here at once
            shutil.copyfile(extension_path("sqlite"), tmp)
            os.replace(tmp, target)
        return target

    def postgres_extension(self) -> Path:
        """postgres_scanner installed (copied from its PyPI package) into the extension directory, where
        DuckLake's ATTACH of a ``postgres:`` catalog loads it itself: a connection that has not loaded it by
        path (dbt's, whose profile lists only ducklake for such a catalog) fails with "Extension ...
        postgres_scanner.duckdb_extension not found" without it. Nothing is downloaded."""
        target = (self.config.extension_dir / f"v{DUCKDB_VERSION}" / _duckdb_platform()
                  / "postgres_scanner.duckdb_extension")
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = _tmp_name(target)
            shutil.copyfile(extension_path("postgres_scanner"), tmp)
            os.replace(tmp, target)
        return target

    @staticmethod
    def transact(con: duckdb.DuckDBPyConnection, work: Callable[[duckdb.DuckDBPyConnection], T],
                 attempts: int = 8) -> T:
        """Run ``work`` in one transaction; retry when a concurrent writer holds the catalog.

        With a SQLite catalog the transaction also holds the lake's writer lock (``writer_lock``): two
        writers of one table (two backfills of the same hours) take turns instead of meeting SQLite's
        lock, which it reports at once (no busy timeout) and, under contention, for longer than the retries.
        """
        with writer_lock(sqlite_catalog_of(con)):
            for attempt in range(1, attempts + 1):
                con.execute("BEGIN TRANSACTION")
                try:
                    out = work(con)
                    con.execute("COMMIT")
                    return out
                except duckdb.Error as exc:
                    try:
                        con.execute("ROLLBACK")
                    except duckdb.Error:
                        pass
                    transient = any(s in str(exc) for s in ("database is locked", "Transaction conflict", "conflict"))
                    if not transient or attempt == attempts:
                        raise
                    time.sleep(_backoff_s(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def write_lock(self) -> contextlib.AbstractContextManager[None]:
        """The writer lock of this lake (see ``writer_lock``), for writers that are not ``transact`` (dbt)."""
        return writer_lock(self.config.sqlite_file)

    @staticmethod
    def as_of(snapshot_id: int | None) -> str:
        """The clause that reads a lake table as it was at ``snapshot_id`` (`` AT (VERSION => n)``; now when None)."""
        return f" AT (VERSION => {int(snapshot_id)})" if snapshot_id is not None else ""

    @staticmethod
    def snapshot_id(con: duckdb.DuckDBPyConnection) -> int:
        return int(con.execute(f"SELECT max(snapshot_id) FROM ducklake_snapshots('{LAKE_ALIAS}')").fetchone()[0])  # type: ignore[index]

    def connect(self, database: str | Path = ":memory:", threads: int | None = None) -> duckdb.DuckDBPyConnection:
        ext_dir = self.config.extension_dir
        ext_dir.mkdir(parents=True, exist_ok=True)
        config: dict[str, str | bool | int | float | list[str]] = {
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "extension_directory": str(ext_dir),
        }
        if threads:
            config["threads"] = threads
        con = duckdb.connect(str(database), config=config)
        if self.config.s3 is not None:
            self._enable_s3(con, self.config.s3)
        return con

    @staticmethod
    def _enable_s3(con: duckdb.DuckDBPyConnection, s: S3Access) -> None:
        con.execute(f"LOAD '{extension_path('httpfs')}'")
        parts = ["TYPE s3", f"REGION '{s.region}'"]
        if s.access_key_id:
            parts += [f"KEY_ID '{s.access_key_id}'", f"SECRET '{s.secret_access_key}'"]
        else:  # no keys set: the AWS credential chain (environment, ~/.aws, SSO, an instance or pod role), as boto3
            con.execute(f"LOAD '{extension_path('aws')}'")
            parts.append("PROVIDER credential_chain")
        if s.endpoint:
            endpoint = s.endpoint.split("://", 1)[-1].rstrip("/")
            parts += [f"ENDPOINT '{endpoint}'", "URL_STYLE 'path'",
                      f"USE_SSL {'true' if s.endpoint.startswith('https') else 'false'}"]
        try:
            con.execute(f"CREATE OR REPLACE SECRET creditrisk_s3 ({', '.join(parts)})")
        except duckdb.Error as exc:
            if "Secret Validation Failure" not in str(exc):
                raise
            raise ObjectStoreError("no S3 credentials for the lake: set CREDITRISK_S3_ACCESS_KEY_ID and "
                                   "CREDITRISK_S3_SECRET_ACCESS_KEY, or provide them through the AWS credential "
                                   "chain (AWS_* variables, ~/.aws, an instance or pod role)") from exc
        # a dead or hung endpoint fails a lake read/write within about a minute (default: 4 x 30 s + backoff);
        # DuckDB's error names the URL (endpoint, bucket, object)
        con.execute(f"SET http_timeout = {S3_READ_TIMEOUT_S}; SET http_retries = {S3_ATTEMPTS - 1}")
