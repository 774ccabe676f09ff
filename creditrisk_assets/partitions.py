"""Partitions shared by every hourly asset."""

from __future__ import annotations

import dagster as dg

from .settings import Settings


def hourly_partitions(settings: Settings) -> dg.HourlyPartitionsDefinition:
    return dg.HourlyPartitionsDefinition(start_date=settings.partitions_start, timezone="UTC")
