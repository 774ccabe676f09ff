"""Jobs: named selections of assets that sensors and schedules run (and the manual ``monitor``).

Prediction-log collection, monitoring and the silver profile have no job of their own: they run on
their assets' automation conditions (see ``assets/serving.py``, ``assets/monitoring.py``,
``assets/silver.py``), evaluated by ``automation_sensor`` in ``sensors.py``."""

from __future__ import annotations

from typing import Any

import dagster as dg

from .contracts import TABLE_NAMES


def build_jobs() -> dict[str, Any]:
    return {
        "ingest": dg.define_asset_job(
            "ingest",
            selection=(dg.AssetSelection.groups("bronze", "gold")
                       | dg.AssetSelection.assets(*[dg.AssetKey(["silver", t]) for t in TABLE_NAMES],
                                                  dg.AssetKey(["silver", "quarantine"]))),
            description="Landing → bronze → silver (+ quarantine, row accounting) → gold (dbt) for the "
                        "requested hours, one run per range.",
        ),
        "train_and_promote": dg.define_asset_job(
            "train_and_promote", selection=dg.AssetSelection.groups("ml"),
            description="training_set → pd_baseline, pd_xgboost → evaluation → promotion (gate, aliases).",
        ),
        "retrain_and_deploy": dg.define_asset_job(
            "retrain_and_deploy",
            selection=dg.AssetSelection.groups("ml") | dg.AssetSelection.assets(dg.AssetKey(["serving", "deployment"])),
            description="train_and_promote, then put the champion in front of traffic: the Ray Serve app is "
                        "reconfigured in place when the champion moved.",
        ),
        "deploy_champion": dg.define_asset_job(
            "deploy_champion", selection=dg.AssetSelection.assets(dg.AssetKey(["serving", "deployment"])),
            description="Deploy (or reconfigure) Ray Serve with the registry's champion and challenger.",
        ),
        "monitor": dg.define_asset_job(
            "monitor", selection=dg.AssetSelection.groups("monitoring"),
            description="Drift (Evidently, PSI) and performance of the champion now, outside their hourly "
                        "automation (e.g. after a fix, from the UI's Launchpad); the drift sensor turns "
                        "sustained drift into retrain_and_deploy.",
        ),
    }


def build_schedules(jobs: dict[str, Any], settings: Any) -> list[dg.ScheduleDefinition]:
    """The optional retrain schedule when CREDITRISK_RETRAIN_CRON is set (monitoring runs on automation
    conditions, not on a schedule)."""
    if not settings.retrain_cron:
        return []
    return [dg.ScheduleDefinition(name="scheduled_retrain", job=jobs["retrain_and_deploy"],
                                  cron_schedule=settings.retrain_cron, execution_timezone="UTC",
                                  default_status=dg.DefaultScheduleStatus.RUNNING)]
