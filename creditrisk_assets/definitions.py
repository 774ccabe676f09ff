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
from .gold.profiles import PROJECT_DIR, write_profiles
from .jobs import build_jobs, build_schedules
from .logs import configure_logging
from .partitions import hourly_partitions
from .resources import Lake, object_store_from_settings
from .sensors import (
    WATCHED_FOR_STALENESS,
    build_alert_sensors,
    build_drift_sensor,
    build_landing_sensor,
    build_performance_sensor,
)
from .settings import Settings, get_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    configure_logging(settings.log_level)
    hourly = hourly_partitions(settings)
    jobs = build_jobs(hourly, hourly_partitions(settings, end_offset=1))
    freshness = dg.build_last_update_freshness_checks(
        assets=list(WATCHED_FOR_STALENESS), lower_bound_delta=dt.timedelta(hours=settings.freshness_max_lag_hours))
    return dg.Definitions(
        assets=[build_bronze_assets(hourly), build_silver_assets(hourly), build_profile_asset(),
                build_gold_assets(hourly), *ML_ASSETS, deployment, build_prediction_log_asset(settings), batch_scores,
                *MONITORING_ASSETS],
        asset_checks=freshness,
        jobs=list(jobs.values()),
        sensors=[build_landing_sensor(jobs["ingest"], hourly, settings.sensor_interval_s),
                 build_drift_sensor(jobs["retrain_and_deploy"]), build_performance_sensor(jobs["retrain_and_deploy"]),
                 *build_alert_sensors(settings),
                 dg.build_sensor_for_freshness_checks(freshness_checks=freshness)],
        schedules=build_schedules(jobs, settings),
        resources={
            "settings": settings,
            "store": object_store_from_settings(settings),
            "lake": Lake(settings),
            "dbt": DbtCliResource(project_dir=str(PROJECT_DIR), profiles_dir=str(write_profiles(settings)),
                                  dbt_executable=str(Path(sys.executable).parent / "dbt")),
        },
    )


defs = build_definitions(get_settings())
