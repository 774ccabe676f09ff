"""The one Definitions: assets, checks, jobs, sensors and resources, all built from Settings."""

from __future__ import annotations

import dagster as dg

from .assets.bronze import build_bronze_assets
from .assets.silver import build_profile_asset, build_silver_assets
from .jobs import build_jobs
from .logs import configure_logging
from .partitions import hourly_partitions
from .resources import Lake, object_store_from_settings
from .sensors import build_landing_sensor
from .settings import Settings, get_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    configure_logging(settings.log_level)
    hourly = hourly_partitions(settings)
    jobs = build_jobs(hourly)
    return dg.Definitions(
        assets=[build_bronze_assets(hourly), build_silver_assets(hourly), build_profile_asset()],
        jobs=list(jobs.values()),
        sensors=[build_landing_sensor(jobs["ingest_bronze"], hourly, settings.sensor_interval_s)],
        resources={
            "settings": settings,
            "store": object_store_from_settings(settings),
            "lake": Lake(settings),
        },
    )


defs = build_definitions(get_settings())
