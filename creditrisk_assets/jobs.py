"""Jobs: named selections of assets that sensors and schedules run."""

from __future__ import annotations

from typing import Any

import dagster as dg

from .contracts import TABLE_NAMES


def build_jobs(partitions_def: dg.PartitionsDefinition, live_partitions_def: dg.PartitionsDefinition) -> dict[str, Any]:
    return {
        "ingest": dg.define_asset_job(
            "ingest",
            selection=(dg.AssetSelection.groups("bronze", "gold")
                       | dg.AssetSelection.keys(*[dg.AssetKey(["silver", t]) for t in TABLE_NAMES],
                                                dg.AssetKey(["silver", "quarantine"]))),
            partitions_def=partitions_def,
            description="Landing → bronze → silver (+ quarantine, row accounting) → gold (dbt) for the "
                        "requested hours, one run per range.",
        ),
        "train_and_promote": dg.define_asset_job(
            "train_and_promote", selection=dg.AssetSelection.groups("ml"),
            description="training_set → pd_baseline, pd_xgboost → evaluation → promotion (gate, aliases).",
        ),
        "retrain_and_deploy": dg.define_asset_job(
            "retrain_and_deploy",
            selection=dg.AssetSelection.groups("ml") | dg.AssetSelection.keys(dg.AssetKey(["serving", "deployment"])),
            description="train_and_promote, then put the champion in front of traffic: the Ray Serve app is "
                        "reconfigured in place when the champion moved.",
        ),
        "deploy_champion": dg.define_asset_job(
            "deploy_champion", selection=dg.AssetSelection.keys(dg.AssetKey(["serving", "deployment"])),
            description="Deploy (or reconfigure) Ray Serve with the registry's champion and challenger.",
        ),
        "collect_prediction_log": dg.define_asset_job(
            "collect_prediction_log", selection=dg.AssetSelection.keys(dg.AssetKey(["serving", "prediction_log"])),
            partitions_def=live_partitions_def,
            description="Move the serving replicas' raw prediction-log batches of the given hours into the lake.",
        ),
        "monitor": dg.define_asset_job(
            "monitor", selection=dg.AssetSelection.groups("monitoring"),
            description="Drift (Evidently, PSI) and performance of the champion over recent windows; the drift "
                        "sensor turns sustained drift into retrain_and_deploy.",
        ),
        "profile_silver": dg.define_asset_job(
            "profile_silver", selection=dg.AssetSelection.keys(dg.AssetKey(["silver", "profile"])),
            description="Profile every silver table (Evidently HTML + markdown).",
        ),
    }


def build_schedules(jobs: dict[str, Any], settings: Any) -> list[dg.ScheduleDefinition]:
    """Monitoring every hour; the optional retrain schedule when CREDITRISK_RETRAIN_CRON is set."""
    schedules = [dg.ScheduleDefinition(name="hourly_monitoring", job=jobs["monitor"], cron_schedule="15 * * * *",
                                       execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)]
    if settings.retrain_cron:
        schedules.append(dg.ScheduleDefinition(name="scheduled_retrain", job=jobs["retrain_and_deploy"],
                                               cron_schedule=settings.retrain_cron, execution_timezone="UTC",
                                               default_status=dg.DefaultScheduleStatus.RUNNING))
    return schedules
