"""The one Definitions: assets, checks, jobs, sensors and resources, all built from Settings."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from .assets.bronze import build_bronze_assets
from .assets.gold import build_gold_assets
from .assets.ml import ML_ASSETS
from .assets.monitoring import MONITORING_ASSETS
from .assets.serving import batch_scores, build_prediction_log_asset, deployment
from .assets.silver import build_profile_asset, build_silver_assets
from .dagster_resources import resources_for
from .gold.dbt_profiles import PROJECT_DIR, write_profiles
from .jobs import build_jobs, build_schedules
from .logs import configure_logging
from .partitions import hourly_partitions
from .sensors import (
    WATCHED_FOR_STALENESS,
    build_alert_sensors,
    build_automation_sensor,
    build_drift_sensor,
    build_landing_sensor,
    build_performance_sensor,
)
from .settings import Settings, get_settings


def freshness_policy(max_lag_hours: int) -> dg.FreshnessPolicy:
    """Fail when the last materialisation is older than ``max_lag_hours``, warn from half of it (the daemon's
    freshness evaluation shows it in the UI; ``stale_assets_alert`` posts the failures)."""
    fail = dt.timedelta(hours=max_lag_hours)
    return dg.FreshnessPolicy.time_window(fail_window=fail, warn_window=fail / 2 if max_lag_hours >= 2 else None)


def with_freshness_policies(assets: list[dg.AssetsDefinition], policy: dg.FreshnessPolicy) -> list[dg.AssetsDefinition]:
    """``policy`` on every asset in ``WATCHED_FOR_STALENESS`` (gold features, the prediction log, drift)."""
    watched = set(WATCHED_FOR_STALENESS)
    return [a.map_asset_specs(lambda spec: spec.replace_attributes(freshness_policy=policy)
                              if spec.key in watched else spec)
            if watched & set(a.keys) else a for a in assets]


def build_definitions(settings: Settings) -> dg.Definitions:
    configure_logging(settings.log_level)
    hourly = hourly_partitions(settings)
    jobs = build_jobs()
    assets = [build_bronze_assets(hourly), build_silver_assets(hourly), build_profile_asset(),
              build_gold_assets(hourly), *ML_ASSETS, deployment, build_prediction_log_asset(settings), batch_scores,
              *MONITORING_ASSETS]
    return dg.Definitions(
        assets=with_freshness_policies(assets, freshness_policy(settings.freshness_max_lag_hours)),
        jobs=list(jobs.values()),
        sensors=[build_landing_sensor(jobs["ingest"], hourly, settings.sensor_interval_s),
                 build_drift_sensor(jobs["retrain_and_deploy"]), build_performance_sensor(jobs["retrain_and_deploy"]),
                 build_automation_sensor(), *build_alert_sensors(settings)],
        schedules=build_schedules(jobs, settings),
        resources={
            **resources_for(settings),
            "settings": settings,
            "dbt": DbtCliResource(project_dir=str(PROJECT_DIR), profiles_dir=str(write_profiles(settings)),
                                  dbt_executable=str(Path(sys.executable).parent / "dbt")),
        },
    )


defs = build_definitions(get_settings())
