"""Sensors: turn new landed hours into bronze runs (one run per contiguous range of hours)."""


from typing import Any

import dagster as dg

from .ingest.landing import plan_ingestion
from .resources import ObjectStore


def build_landing_sensor(job: Any, partitions_def: dg.TimeWindowPartitionsDefinition,
                         interval_s: int) -> dg.SensorDefinition:
    @dg.sensor(job=job, minimum_interval_seconds=interval_s, default_status=dg.DefaultSensorStatus.RUNNING,
               description="Requests bronze ingestion for every landed hour that is new or changed.")
    def landing_sensor(context: dg.SensorEvaluationContext, store: dg.ResourceParam[ObjectStore]):
        objects = store.list("landing/")
        valid = set(partitions_def.get_partition_keys())
        ranges, cursor, skipped = plan_ingestion(objects, context.cursor, valid)
        if skipped:
            context.log.warning(f"{len(skipped)} landed hour(s) outside the partitions, e.g. {skipped[0]}")
        requests = [
            dg.RunRequest(
                run_key=f"landing:{first}...{last}:{cursor_hash(cursor)}",
                tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
            )
            if first != last else dg.RunRequest(run_key=f"landing:{first}:{cursor_hash(cursor)}", partition_key=first)
            for first, last in ranges
        ]
        if not requests:
            return dg.SensorResult(skip_reason="no new or changed landed hours", cursor=cursor)
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return landing_sensor


def cursor_hash(cursor: str) -> str:
    import hashlib

    return hashlib.sha1(cursor.encode()).hexdigest()[:10]
