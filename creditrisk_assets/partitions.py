"""Partitions shared by every hourly asset."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from .settings import Settings


def hourly_partitions(settings: Settings, end_offset: int = 0) -> dg.HourlyPartitionsDefinition:
    """Hourly partitions from ``CREDITRISK_PARTITIONS_START``; ``end_offset=1`` includes the current,
    still open hour (the prediction log is collected while it fills)."""
    return dg.HourlyPartitionsDefinition(start_date=settings.partitions_start, timezone="UTC", end_offset=end_offset)


def hours_of(context: dg.AssetExecutionContext) -> list[dt.datetime]:
    """Every hour in the run's partition (range), naive UTC."""
    window = context.partition_time_window
    hours, h = [], window.start
    while h < window.end:
        hours.append(h.replace(tzinfo=None))
        h = h + dt.timedelta(hours=1)
    return hours
