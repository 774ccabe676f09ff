"""Typed resources: chosen from settings, secrets from the environment shown by name, one registry client."""

from __future__ import annotations

import secrets
from pathlib import Path

import dagster as dg
import pytest

from creditrisk_assets.dagster_resources import Alerts, MlflowRegistry, resources_for
from creditrisk_assets.definitions import build_definitions
from creditrisk_assets.settings import Settings


def test_resources_are_typed_and_configured_from_settings(tmp_path: Path) -> None:
    settings = Settings.from_env({"CREDITRISK_HOME": str(tmp_path), "CREDITRISK_ALERT_WEBHOOK_URL": "http://hook/x"})
    defs = build_definitions(settings)
    mlflow, alerts = defs.resources["mlflow"], defs.resources["alerts"]
    assert isinstance(mlflow, MlflowRegistry) and isinstance(alerts, Alerts)
    assert mlflow.tracking_uri == settings.resolved_mlflow_uri and alerts.webhook_url == "http://hook/x"
    # every asset and sensor that talks to MLflow or alerts asks for the resource, not for a URI
    needs = {key.to_user_string(): a.required_resource_keys for a in defs.assets or []
             if isinstance(a, dg.AssetsDefinition) for key in a.keys}
    assert {"mlflow"} <= needs["ml/evaluation"] and {"mlflow", "alerts"} <= needs["ml/promotion"]
    assert {"mlflow", "alerts"} <= needs["monitoring/drift"] and "mlflow" in needs["monitoring/performance"]
    for name in ("run_failure_alert", "stale_assets_alert"):
        assert "alerts" in defs.resolve_sensor_def(name).required_resource_keys


def test_a_secret_from_the_environment_is_configured_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = f"https://hooks.example/T000/B000/{secrets.token_hex(12)}"  # made at run time, never a literal
    monkeypatch.setenv("CREDITRISK_ALERT_WEBHOOK_URL", hook)
    monkeypatch.setenv("CREDITRISK_HOME", str(tmp_path))
    resources = resources_for(Settings.from_env())
    alerts = resources["alerts"]
    assert isinstance(alerts.webhook_url, dg.EnvVar)
    assert alerts.webhook_url.env_var_name == "CREDITRISK_ALERT_WEBHOOK_URL"  # the UI shows the name, not the token
    assert alerts.process_config_and_initialize().webhook_url == hook  # what a run gets
