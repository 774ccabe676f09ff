"""Sensors: new landed hours → bronze runs (one per contiguous range of hours); sustained drift or decayed
performance of the champion → ``retrain_and_deploy`` (once per evidence); alerts."""

from collections.abc import Callable
from typing import Any

import dagster as dg

from .ingest.landing import ingested_cursor, plan_ingestion
from .resources import Lake, ObjectStore


def build_landing_sensor(job: Any, partitions_def: dg.TimeWindowPartitionsDefinition,
                         interval_s: int) -> dg.SensorDefinition:
    @dg.sensor(job=job, minimum_interval_seconds=interval_s, default_status=dg.DefaultSensorStatus.RUNNING,
               description="Requests bronze ingestion for every landed hour that is new or changed.")
    def landing_sensor(context: dg.SensorEvaluationContext, store: dg.ResourceParam[ObjectStore],
                       lake: dg.ResourceParam[Lake]):
        objects = store.list("landing/")
        valid = set(partitions_def.get_partition_keys())
        seen = context.cursor
        if seen is None:  # first tick: what bronze already holds counts as seen
            from .ingest.bronze import read_audit_log

            audit = read_audit_log(store, lake)
            seen = ingested_cursor(zip(audit["source_key"], audit["bytes"], audit["landed_at"], strict=True))
        ranges, cursor, skipped = plan_ingestion(objects, seen, valid)
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


DRIFT_KEY = dg.AssetKey(["monitoring", "drift"])
PERFORMANCE_KEY = dg.AssetKey(["monitoring", "performance"])
#: tag of every retrain the drift sensor requests: the same evidence is acted on once, whichever process ran it
DRIFT_REQUEST_TAG = "creditrisk/drift_request"
#: the same for the performance sensor
PERFORMANCE_REQUEST_TAG = "creditrisk/performance_request"
WATCHED_FOR_STALENESS = [dg.AssetKey(["gold", "applicant_features"]), dg.AssetKey(["serving", "prediction_log"]),
                         DRIFT_KEY]


def _value(metadata: dict[str, Any], key: str) -> Any:
    v = metadata.get(key)
    return getattr(v, "value", v)


def drift_run_request(metadata: dict[str, Any], source_run: str) -> dg.RunRequest | dg.SkipReason:
    """The drift sensor's decision from a ``monitoring/drift`` materialisation's metadata.

    One retrain per champion and newest drifted window: a refused retrain is not repeated until a
    new window adds evidence (or the champion changes)."""
    if not _value(metadata, "retrain_recommended"):
        return dg.SkipReason(f"no sustained drift (monitoring run {source_run[:8]})")
    windows = (_value(metadata, "pass") or {}).get("windows", [])
    newest = windows[-1]["end"] if windows else source_run
    champion = str(_value(metadata, "champion_version"))
    key = f"drift:champion-{champion}:{newest}"
    return dg.RunRequest(run_key=key, tags={"creditrisk/trigger": "drift", "creditrisk/champion_before": champion,
                                            DRIFT_REQUEST_TAG: key})


def performance_run_request(metadata: dict[str, Any], source_run: str) -> dg.RunRequest | dg.SkipReason:
    """The performance sensor's decision from a ``monitoring/performance`` materialisation's metadata.

    One retrain per champion and decayed window (``evidence.window_end``): the same decayed window
    seen by a later monitoring pass is not acted on twice; a newer decayed window, or a new
    champion that decays too, is."""
    evidence = _value(metadata, "evidence") or {}
    if not _value(metadata, "retrain_recommended"):
        why = "; ".join(evidence.get("reasons", [])) or evidence.get("note") or "within the thresholds"
        return dg.SkipReason(f"no performance decay (monitoring run {source_run[:8]}): {why}")
    champion = str(_value(metadata, "champion_version"))
    key = f"performance:champion-{champion}:{evidence.get('window_end', source_run)}"
    return dg.RunRequest(run_key=key, tags={"creditrisk/trigger": "performance",
                                            "creditrisk/champion_before": champion, PERFORMANCE_REQUEST_TAG: key})


def _handled(context: dg.SensorEvaluationContext, tag: str, decision: dg.RunRequest) -> dg.SkipReason | None:
    """A skip when a run for this evidence exists (the daemon's, or one `make demo` ran in process)."""
    done = context.instance.get_run_records(dg.RunsFilter(tags={tag: decision.run_key or ""}), limit=1)
    if done:
        return dg.SkipReason(f"{decision.run_key} already handled by run {done[0].dagster_run.run_id[:8]}")
    return None


def _retrain_sensor(name: str, asset_key: dg.AssetKey, job: Any,
                    decide: Callable[[dict[str, Any], str], dg.RunRequest | dg.SkipReason], tag: str, found: str,
                    description: str) -> dg.SensorDefinition:
    """An asset sensor on ``asset_key`` requesting ``job`` when ``decide`` (from the materialisation's metadata and
    run id) says so, unless a run tagged ``tag`` with that run key exists already; logs ``<found>: requesting ...``."""

    @dg.asset_sensor(name=name, asset_key=asset_key, job=job, default_status=dg.DefaultSensorStatus.RUNNING,
                     description=description)
    def retrain_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
        materialization = asset_event.asset_materialization
        assert materialization is not None
        decision = decide(dict(materialization.metadata), asset_event.run_id)
        if isinstance(decision, dg.RunRequest):
            skip = _handled(context, tag, decision)
            if skip is not None:
                return skip
            context.log.info(f"{found}: requesting {job.name} ({decision.run_key})")
        return decision

    return retrain_sensor


def build_drift_sensor(job: Any) -> dg.SensorDefinition:
    return _retrain_sensor("drift_sensor", DRIFT_KEY, job, drift_run_request, DRIFT_REQUEST_TAG, "drift sustained",
                           "Requests retrain → evaluate → gate → redeploy when monitoring/drift reports drift "
                           "in CREDITRISK_DRIFT_CONSECUTIVE_WINDOWS consecutive windows.")


def build_performance_sensor(job: Any) -> dg.SensorDefinition:
    return _retrain_sensor("performance_sensor", PERFORMANCE_KEY, job, performance_run_request,
                           PERFORMANCE_REQUEST_TAG, "performance decayed",
                           "Requests retrain → evaluate → gate → redeploy when monitoring/performance finds the "
                           "champion's matured-label AUC below CREDITRISK_PERF_MIN_AUC or its ECE above "
                           "CREDITRISK_PERF_MAX_ECE.")


def build_alert_sensors(settings: Any) -> list[dg.SensorDefinition]:
    """Webhook alerts for failed runs and stale assets (drift and refused promotions alert from their assets)."""
    from .monitoring.alerts import Alert, send_alert

    @dg.run_failure_sensor(name="run_failure_alert", default_status=dg.DefaultSensorStatus.RUNNING,
                           description="Posts every failed run to CREDITRISK_ALERT_WEBHOOK_URL.")
    def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
        run = context.dagster_run
        send_alert(settings.alert_webhook_url, Alert(
            "run_failed", f"run of {run.job_name} failed", (context.failure_event.message or "")[:500],
            {"run id": run.run_id, "job": run.job_name}))

    @dg.sensor(name="stale_assets_alert", minimum_interval_seconds=600, default_status=dg.DefaultSensorStatus.RUNNING,
               description="Posts an alert when gold, the prediction log or drift monitoring has not been "
                           "materialised for CREDITRISK_FRESHNESS_MAX_LAG_HOURS (once per staleness).")
    def stale_assets_alert(context: dg.SensorEvaluationContext):
        import json
        import time

        from .monitoring.loop import stale_assets

        latest: dict[str, float | None] = {}
        for key in WATCHED_FOR_STALENESS:
            event = context.instance.get_latest_materialization_event(key)
            latest[key.to_user_string()] = event.timestamp if event else None
        stale = stale_assets(latest, time.time(), settings.freshness_max_lag_hours * 3600)
        alerted = set(json.loads(context.cursor or "[]"))
        for name in sorted(set(stale) - alerted):
            send_alert(settings.alert_webhook_url, Alert(
                "stale_asset", f"{name} is stale",
                f"not materialised for more than {settings.freshness_max_lag_hours} h", {"asset": name}))
        context.update_cursor(json.dumps(sorted(stale)))  # fresh again: a later staleness alerts anew
        return dg.SkipReason(f"stale: {', '.join(stale) or 'none'}")

    return [run_failure_alert, stale_assets_alert]
