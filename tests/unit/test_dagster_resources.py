"""Typed resources: chosen from settings, secrets from the environment shown by name, one registry client."""

from __future__ import annotations

import secrets
from pathlib import Path

import dagster as dg
import pytest

from creditrisk_assets.dagster_resources import (
    Alerts,
    DuckLake,
    MlflowRegistry,
    ObjectStorage,
    RayServe,
    resources_for,
)
from creditrisk_assets.definitions import build_definitions
from creditrisk_assets.resources import LakeConfig, S3Store, object_store_from_settings
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


def test_store_lake_and_serve_are_typed_resources_every_asset_asks_for(tmp_path: Path) -> None:
    defs = build_definitions(Settings.from_env({"CREDITRISK_HOME": str(tmp_path)}))
    assert isinstance(defs.resources["store"], ObjectStorage) and isinstance(defs.resources["lake"], DuckLake)
    assert isinstance(defs.resources["serve"], RayServe)
    needs = {key.to_user_string(): a.required_resource_keys for a in defs.assets or []
             if isinstance(a, dg.AssetsDefinition) for key in a.keys}
    assert {"store", "lake"} <= needs["bronze/application"] and {"store", "lake"} <= needs["silver/application"]
    assert "lake" in needs["gold/applicant_features"] and "lake" in needs["ml/training_set"]
    assert "serve" in needs["serving/deployment"] and {"store", "lake"} <= needs["serving/prediction_log"]
    assert {"store", "lake"} <= defs.resolve_sensor_def("landing_sensor").required_resource_keys


@pytest.mark.parametrize("env", [
    {},
    {"CREDITRISK_OBJECT_STORE": "s3", "CREDITRISK_S3_BUCKET": "b", "CREDITRISK_S3_ENDPOINT": "http://127.0.0.1:9",
     "CREDITRISK_S3_REGION": "eu-west-1", "CREDITRISK_S3_ACCESS_KEY_ID": "k", "CREDITRISK_S3_SECRET_ACCESS_KEY": "s",
     "CREDITRISK_LAKE_CATALOG": "postgres:dbname=lake host=127.0.0.1 password=pw"},
])
def test_the_resources_build_the_same_store_and_lake_as_the_settings(tmp_path: Path, env: dict[str, str]) -> None:
    settings = Settings.from_env({"CREDITRISK_HOME": str(tmp_path), **env})
    typed = resources_for(settings)
    assert typed["lake"].get_lake().config == LakeConfig.of(settings)
    store = typed["store"].get_store()
    plain = object_store_from_settings(settings)
    assert type(store) is type(plain) and store.uri("a/b") == plain.uri("a/b")
    if isinstance(store, S3Store) and isinstance(plain, S3Store):
        assert (store.endpoint, store.region, store.secret_access_key) == (plain.endpoint, plain.region, "s")
    assert typed["store"].get_store() is store  # one client per resource instance


def test_s3_secret_and_catalog_from_the_environment_are_configured_by_name(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    secret, dsn = secrets.token_hex(8), f"postgres:dbname=lake password={secrets.token_hex(8)}"
    for var, value in {"CREDITRISK_HOME": str(tmp_path), "CREDITRISK_OBJECT_STORE": "s3",
                       "CREDITRISK_S3_SECRET_ACCESS_KEY": secret, "CREDITRISK_LAKE_CATALOG": dsn}.items():
        monkeypatch.setenv(var, value)
    typed = resources_for(Settings.from_env())
    assert isinstance(typed["store"].secret_access_key, dg.EnvVar)
    assert isinstance(typed["lake"].catalog, dg.EnvVar)
    with typed["lake"].process_config_and_initialize_cm() as lake:  # what a run gets
        assert lake.catalog == dsn and lake.store.secret_access_key == secret
        assert dsn not in repr(lake.get_lake().config) and secret not in repr(lake.get_lake().config)


def test_the_serve_resource_decides_where_the_app_runs(tmp_path: Path) -> None:
    settings = Settings.from_env({"CREDITRISK_HOME": str(tmp_path), "CREDITRISK_SERVE_PORT": "8123"})
    serve = resources_for(settings)["serve"]
    assert serve.port == 8123 and serve.address == "local"
    moved = RayServe(address="10.0.0.5:6379", port=9000, proxy="default", replicas=4).settings_for(settings)
    assert (moved.ray_address, moved.serve_port, moved.serve_proxy, moved.serve_replicas) == \
        ("10.0.0.5:6379", 9000, "default", 4)
    assert moved.serve_mode == settings.serve_mode and moved.home == settings.home  # the app config is the settings'


def test_mlflow_metadata_never_shows_a_password_of_the_tracking_uri() -> None:
    from creditrisk_assets.assets.ml import mlflow_links

    password = secrets.token_hex(8)
    for uri in (f"postgresql://mlflow:{password}@db:5432/mlflow", f"http://ops:{password}@mlflow.internal:5000"):
        shown = repr(mlflow_links(uri, run_id="r1", experiment_id="1", version="3"))
        assert password not in shown and "***" in shown
