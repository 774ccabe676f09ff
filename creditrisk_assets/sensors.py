"""Sensors: new landed hours → bronze runs (one per contiguous range of hours); sustained drift or decayed
performance of the champion → ``retrain_and_deploy`` (once per evidence); the automation conditions
(prediction log, monitoring, silver profile); alerts (failed runs, assets failing their freshness policy)."""

from collections.abc import Callable
from typing import Any

import dagster as dg

from .dagster_resources import DuckLake, ObjectStorage
from .ingest.landing import ingested_cursor, plan_ingestion
from .layout import LANDING_PREFIX


def build_landing_sensor(job: Any, partitions_def: dg.TimeWindowPartitionsDefinition,
                         interval_s: int) -> dg.SensorDefinition:
    @dg.sensor(job=job, minimum_interval_seconds=interval_s, default_status=dg.DefaultSensorStatus.RUNNING,
               description="Requests bronze ingestion for every landed hour that is new or changed.")
    def landing_sensor(context: dg.SensorEvaluationContext, store: ObjectStorage, lake: DuckLake):
        objects = store.get_store().list(LANDING_PREFIX)
        valid = set(partitions_def.get_partition_keys())
        seen = context.cursor
        if seen is None:  # first tick: what bronze already holds counts as seen
            from .ingest.bronze import read_audit_log

            audit = read_audit_log(store.get_store(), lake.get_lake())
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
#: the assets with a freshness policy (``definitions.freshness_policy``), alerted on by ``stale_assets_alert``
WATCHED_FOR_STALENESS = [dg.AssetKey(["gold", "applicant_features"]), dg.AssetKey(["serving", "prediction_log"]),
                         DRIFT_KEY]
#: the name Dagster gives the sensor it adds for automation conditions; declared here, running by default
AUTOMATION_SENSOR = "default_automation_condition_sensor"


def build_automation_sensor() -> dg.AutomationConditionSensorDefinition:
    """Evaluates every asset's automation condition (every 30 s, in the daemon).

    Declared rather than left to Dagster: the sensor Dagster adds by itself for assets with automation
    conditions starts *stopped* on an OSS instance (``dagster dev``), so nothing would run until someone
    switched it on in the UI."""
    return dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR, target=dg.AssetSelection.all(), default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Runs the automation conditions: the prediction log's last two hours and then "
                    "monitoring/drift at :05 every hour (UTC), monitoring/performance after the next ingest, "
                    "silver/profile after every silver update.")


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
    """Webhook alerts (the ``alerts`` resource) for failed runs and stale assets (drift, stability and
    promotions alert from their assets)."""
    from .dagster_resources import Alerts
    from .monitoring.alerts import Alert

    @dg.run_failure_sensor(name="run_failure_alert", default_status=dg.DefaultSensorStatus.RUNNING,
                           description="Posts every failed run to CREDITRISK_ALERT_WEBHOOK_URL.")
    def run_failure_alert(context: dg.RunFailureSensorContext, alerts: Alerts) -> None:
        run = context.dagster_run
        alerts.send(Alert(
            "run_failed", f"run of {run.job_name} failed", (context.failure_event.message or "")[:500],
            {"run id": run.run_id, "job": run.job_name}))

    @dg.sensor(name="stale_assets_alert", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
               description="Posts an alert when gold, the prediction log or drift monitoring fails its freshness "
                           "policy (not materialised for CREDITRISK_FRESHNESS_MAX_LAG_HOURS, as evaluated by the "
                           "daemon), once per failure.")
    def stale_assets_alert(context: dg.SensorEvaluationContext, alerts: Alerts):
        import json

        records = context.instance.get_freshness_state_records(WATCHED_FOR_STALENESS)
        failing = stale_from_freshness({k.to_user_string(): r.freshness_state for k, r in records.items()})
        alerted = set(json.loads(context.cursor or "[]"))
        for name in sorted(set(failing) - alerted):
            alerts.send(Alert(
                "stale_asset", f"{name} is stale",
                f"fails its freshness policy: not materialised for more than {settings.freshness_max_lag_hours} h",
                {"asset": name}))
        context.update_cursor(json.dumps(failing))  # fresh again: a later failure alerts anew
        return dg.SkipReason(f"failing their freshness policy: {', '.join(failing) or 'none'}")

    return [run_failure_alert, stale_assets_alert]


def stale_from_freshness(states: dict[str, Any]) -> list[str]:
    """The assets whose latest freshness state (the daemon's ``FreshnessState``, a ``str`` enum) is FAIL, sorted."""
    return sorted(name for name, state in states.items() if getattr(state, "value", state) == "FAIL")
