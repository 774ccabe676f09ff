"""Typed Dagster resources (``ConfigurableResource``): their configuration shows on the UI's resources page.

``resources_for(settings)`` builds them from the one ``Settings``; a secret the deployment provides through
its environment (the webhook URL carries Slack's token) is configured as ``dg.EnvVar``, so the UI shows the
variable's name, never its value. The classes are thin: the work is in ``modeling/registry.py`` and
``monitoring/alerts.py``, which know nothing of Dagster.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import dagster as dg

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from .monitoring.alerts import Alert
    from .settings import Settings


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


def resources_for(settings: Settings) -> dict[str, Any]:
    """The typed resources of one deployment, configured from its settings."""
    return {
        "mlflow": MlflowRegistry(tracking_uri=settings.resolved_mlflow_uri,
                                 artifact_location=settings.mlflow_artifact_location or ""),
        "alerts": Alerts(webhook_url=_from_env("CREDITRISK_ALERT_WEBHOOK_URL", settings.alert_webhook_url)),
    }
