"""Typed Dagster resources (``ConfigurableResource``): their configuration shows on the UI's resources page.

``resources_for(settings)`` builds them from the one ``Settings``; a secret the deployment provides through
its environment (the webhook URL carries Slack's token, S3's secret key, a Postgres DSN's password) is
configured as ``dg.EnvVar``, so the UI shows the variable's name, never its value. The classes are thin:
each hands out the plain object that does the work (``resources.py``, ``modeling/registry.py``,
``monitoring/alerts.py``, ``serving/runtime.py``), which knows nothing of Dagster.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import PrivateAttr

from .layout import asset_output_key
from .resources import FolderStore, Lake, LakeConfig, ObjectStore, S3Access

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from serving.kuberay import Rollout
    from serving.runtime import Cluster

    from .monitoring.alerts import Alert
    from .settings import Settings


class ObjectStorage(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The object store holding landing/, bronze/, silver/, the lake's files and the reports: a local folder
    (``kind=folder``) or an S3 bucket (``kind=s3``; empty keys: boto3's credential chain)."""

    kind: str = "folder"
    folder: str = ""  # kind=folder: its root
    bucket: str = ""
    endpoint: str = ""  # empty: AWS's endpoint for the region
    region: str = "us-east-1"
    access_key_id: str = ""
    secret_access_key: str = ""
    _store: ObjectStore | None = PrivateAttr(default=None)

    @property
    def s3(self) -> S3Access | None:
        return S3Access(self.bucket, self.endpoint, self.region, self.access_key_id,
                        self.secret_access_key) if self.kind == "s3" else None

    def get_store(self) -> ObjectStore:
        """The store (one client per resource instance, made on first use)."""
        if self._store is None:
            s3 = self.s3
            self._store = s3.store() if s3 is not None else FolderStore(Path(self.folder))
        return self._store


class ObjectStoreIOManager(dg.ConfigurableIOManager):
    """Outputs passed between assets (the training set, the models, the evaluation) as pickles in the object
    store (``layout.asset_output_key``), not on the disk of the process that made them: a run pod, a
    re-execution from failure or one asset materialised alone finds its inputs wherever the last
    materialisation ran. Assets that return no value (``MaterializeResult``) write nothing."""

    store: ObjectStorage

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        key = asset_output_key(list(context.asset_key.path), context.partition_key if context.has_partition_key else None)
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        store = self.store.get_store()
        store.put_bytes(key, data)
        context.add_output_metadata({"stored_at": dg.MetadataValue.text(store.uri(key)), "stored_bytes": len(data)})

    def load_input(self, context: dg.InputContext) -> Any:
        # an asset's input names its upstream asset; a run's output read back (``output_for_node``) only its output
        source: dg.InputContext | dg.OutputContext = (
            context if context.has_asset_key or context.upstream_output is None else context.upstream_output)
        key = asset_output_key(list(source.asset_key.path), source.partition_key if source.has_partition_key else None)
        store = self.store.get_store()
        try:
            data = store.get_bytes(key)
        except FileNotFoundError:
            raise dg.Failure(f"no stored output of {context.asset_key.to_user_string()} at {store.uri(key)}: "
                             "materialise it first") from None
        return pickle.loads(data)  # noqa: S301 - written by handle_output above, in the deployment's own store


class DuckLake(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The versioned lake (DuckLake on DuckDB): its catalog (SQLite file or Postgres), its data files under
    ``lake/`` of the object store, and DuckDB's extensions from the ``duckdb-extension-*`` packages."""

    store: ObjectStorage
    directory: str  # local files: dbt's DuckDB database, the default SQLite catalog
    catalog: str  # `sqlite:<file>` or `postgres:<dsn>`
    extension_dir: str

    def get_lake(self) -> Lake:
        return Lake(LakeConfig.on(Path(self.directory), self.catalog, Path(self.store.folder or "."),
                                  Path(self.extension_dir), self.store.s3))


class RayServe(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where the scoring app runs: a Ray address (``local``: a cluster started under the data home) and Serve's
    HTTP ingress, or, under KubeRay, a ``RayService`` whose Serve config is patched through the Kubernetes API
    (``rayservice`` set; the operator owns the cluster). What it serves (champion, challenger, routing, limits)
    comes from the registry and settings."""

    address: str = "local"
    host: str = "127.0.0.1"
    port: int = 8000
    proxy: str = "haproxy"  # `haproxy` or Ray's Python proxy (`default`, ~10x slower here)
    replicas: int = 2
    rayservice: str = ""  # KubeRay: the RayService's name (empty: deploy to `address` directly)
    rayservice_namespace: str = ""  # empty: the pod's own namespace, else `default`
    rollout_timeout_s: float = 600.0  # KubeRay: how long a patch may take to be RUNNING and answer /v1/health

    @property
    def under_kuberay(self) -> bool:
        return bool(self.rayservice)

    def settings_for(self, settings: Settings) -> Settings:
        """``settings`` with this resource's cluster and ingress (what a deploy uses)."""
        return dataclasses.replace(settings, ray_address=self.address, serve_host=self.host, serve_port=self.port,
                                   serve_proxy=self.proxy, serve_replicas=self.replicas,
                                   serve_rayservice=self.rayservice,
                                   serve_rayservice_namespace=self.rayservice_namespace)

    def ensure_deployed(self, settings: Settings) -> tuple[Cluster, dict[str, Any]]:
        """Deploy (or reconfigure in place) the app this resource and ``settings`` describe (under KubeRay:
        patch the RayService, as ``serving.runtime.ensure_deployed`` does)."""
        if self.under_kuberay:
            rollout = self.patch_rayservice(settings)
            return rollout.cluster(), rollout.config
        from serving.runtime import ensure_deployed

        return ensure_deployed(self.settings_for(settings))

    def patch_rayservice(self, settings: Settings) -> Rollout:
        """The KubeRay path: point the RayService at the registry's champion; returns what changed."""
        from serving.kuberay import deploy

        return deploy(self.settings_for(settings), timeout_s=self.rollout_timeout_s)


class MlflowRegistry(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The MLflow tracking server and the ``creditrisk-pd`` model registry."""

    tracking_uri: str
    artifact_location: str = ""  # where new experiments store artefacts (empty: the server's default)

    def client(self) -> MlflowClient:
        """A client that fails fast, naming ``CREDITRISK_MLFLOW_TRACKING_URI``, when the server is down."""
        from .modeling.registry import connect

        return connect(self.tracking_uri, self.artifact_location or None)


class Alerts(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Slack-compatible webhook alerts (empty URL: alerts are only logged)."""

    webhook_url: str = ""

    def send(self, alert: Alert) -> bool:
        from .monitoring.alerts import send_alert

        return send_alert(self.webhook_url, alert)


def _from_env(variable: str, value: str) -> Any:
    """``dg.EnvVar(variable)`` when the process environment provides this value (the deployment's secret),
    else the value itself (embedded defaults, tests that build Settings from a dict)."""
    return dg.EnvVar(variable) if value and os.environ.get(variable) == value else value


def storage_for(settings: Settings) -> ObjectStorage:
    s3 = settings.object_store == "s3"
    return ObjectStorage(kind=settings.object_store, folder="" if s3 else str(settings.resolved_store_root),
                         bucket=settings.s3_bucket if s3 else "", endpoint=settings.s3_endpoint if s3 else "",
                         region=settings.s3_region, access_key_id=settings.s3_access_key_id if s3 else "",
                         secret_access_key=_from_env("CREDITRISK_S3_SECRET_ACCESS_KEY", settings.s3_secret_access_key)
                         if s3 else "")


def lake_for(settings: Settings) -> DuckLake:
    return DuckLake(store=storage_for(settings), directory=str(settings.resolved_lake_dir),
                    catalog=_from_env("CREDITRISK_LAKE_CATALOG", settings.resolved_lake_catalog),
                    extension_dir=str(settings.home.resolve() / "duckdb_extensions"))


def resources_for(settings: Settings) -> dict[str, Any]:
    """The typed resources of one deployment, configured from its settings."""
    return {
        "store": storage_for(settings),
        "io_manager": ObjectStoreIOManager(store=storage_for(settings)),
        "lake": lake_for(settings),
        "mlflow": MlflowRegistry(tracking_uri=settings.resolved_mlflow_uri,
                                 artifact_location=settings.mlflow_artifact_location or ""),
        "alerts": Alerts(webhook_url=_from_env("CREDITRISK_ALERT_WEBHOOK_URL", settings.alert_webhook_url)),
        "serve": RayServe(address=settings.ray_address, host=settings.serve_host, port=settings.serve_port,
                          proxy=settings.serve_proxy, replicas=settings.serve_replicas,
                          rayservice=settings.serve_rayservice,
                          rayservice_namespace=settings.serve_rayservice_namespace),
    }
