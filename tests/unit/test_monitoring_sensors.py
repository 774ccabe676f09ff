"""The drift and performance sensors on a real Dagster instance, ticked as the daemon would
(``build_sensor_context``) on materialisations of ``monitoring/*`` carrying their metadata; the
staleness alert on the freshness states the daemon records from the assets' freshness policies."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from creditrisk_assets.definitions import build_definitions
from creditrisk_assets.demo import evaluate_sensor
from creditrisk_assets.sensors import (
    DRIFT_KEY,
    DRIFT_REQUEST_TAG,
    PERFORMANCE_KEY,
    PERFORMANCE_REQUEST_TAG,
    stale_from_freshness,
)
from creditrisk_assets.settings import Settings
from tests.conftest import Webhook


@pytest.fixture(scope="module")
def defs(tmp_path_factory: pytest.TempPathFactory) -> dg.Definitions:
    return build_definitions(Settings.from_env({"CREDITRISK_HOME": str(tmp_path_factory.mktemp("sensors"))}))


@pytest.fixture()
def instance(tmp_path: Path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as inst:
        yield inst


def performance_metadata(decayed: bool, champion: str = "3", end: str = "2026-10-03 00:00:00") -> dict:
    return {"champion_version": champion, "retrain_recommended": decayed,
            "evidence": dg.MetadataValue.json({"window_end": end, "auc": 0.6 if decayed else 0.72, "ece": 0.02,
                                               "reasons": ["AUC 0.600 < 0.65"] if decayed else []})}


def drift_metadata(drifted: bool, champion: str = "3", end: str = "2026-10-03 00:00:00") -> dict:
    return {"champion_version": champion, "retrain_recommended": drifted,
            "pass": dg.MetadataValue.json({"windows": [{"end": end}]})}


CASES = [("performance_sensor", PERFORMANCE_KEY, PERFORMANCE_REQUEST_TAG, performance_metadata),
         ("drift_sensor", DRIFT_KEY, DRIFT_REQUEST_TAG, drift_metadata)]


@pytest.mark.parametrize(("sensor", "key", "tag", "metadata"), CASES, ids=[c[0] for c in CASES])
def test_sensor_requests_a_retrain_once_per_evidence(defs: dg.Definitions, instance: dg.DagsterInstance,
                                                     sensor: str, key: dg.AssetKey, tag: str, metadata) -> None:
    assert defs.resolve_sensor_def(sensor).job_name == "retrain_and_deploy"

    # a healthy pass: nothing requested
    instance.report_runless_asset_event(dg.AssetMaterialization(key, metadata=metadata(False)))
    requests, skip, cursor = evaluate_sensor(defs, instance, sensor)
    assert requests == [] and skip, skip

    # decayed / drifted: one retrain_and_deploy, tagged with its evidence
    instance.report_runless_asset_event(dg.AssetMaterialization(key, metadata=metadata(True)))
    requests, skip, cursor = evaluate_sensor(defs, instance, sensor, cursor)
    assert len(requests) == 1, skip
    request = requests[0]
    assert request.tags[tag] == request.run_key and request.tags["creditrisk/champion_before"] == "3"
    again, _, _ = evaluate_sensor(defs, instance, sensor, cursor)
    assert again == []  # one request per materialisation

    # the daemon launches it; a later pass with the same evidence (or a daemon without a cursor) skips
    run = instance.create_run_for_job(defs.resolve_job_def("retrain_and_deploy"), run_config={},
                                      tags=dict(request.tags))
    instance.report_runless_asset_event(dg.AssetMaterialization(key, metadata=metadata(True)))
    requests, skip, cursor = evaluate_sensor(defs, instance, sensor, cursor)
    assert requests == [] and f"already handled by run {run.run_id[:8]}" in (skip or ""), skip
    fresh, skip, _ = evaluate_sensor(defs, instance, sensor)
    assert fresh == [] and "already handled" in (skip or ""), skip

    # new evidence (a newer window, or the champion changed): a new request
    instance.report_runless_asset_event(dg.AssetMaterialization(key, metadata=metadata(True, end="2026-10-04 00:00:00")))
    requests, skip, cursor = evaluate_sensor(defs, instance, sensor, cursor)
    assert len(requests) == 1 and requests[0].run_key != request.run_key, skip
    instance.report_runless_asset_event(dg.AssetMaterialization(key, metadata=metadata(True, champion="4")))
    requests, skip, _ = evaluate_sensor(defs, instance, sensor, cursor)
    assert len(requests) == 1 and requests[0].tags["creditrisk/champion_before"] == "4", skip


def test_evidence_of_one_sensor_does_not_silence_the_other(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    drift = evaluate_after(defs, instance, DRIFT_KEY, drift_metadata(True), "drift_sensor")
    instance.create_run_for_job(defs.resolve_job_def("retrain_and_deploy"), run_config={}, tags=dict(drift.tags))
    perf = evaluate_after(defs, instance, PERFORMANCE_KEY, performance_metadata(True), "performance_sensor")
    assert perf.run_key != drift.run_key


def evaluate_after(defs: dg.Definitions, instance: dg.DagsterInstance, key: dg.AssetKey, metadata: dict,
                   sensor: str) -> dg.RunRequest:
    instance.report_runless_asset_event(dg.AssetMaterialization(key, metadata=metadata))
    requests, skip, _ = evaluate_sensor(defs, instance, sensor)
    assert len(requests) == 1, skip
    return requests[0]


def freshness_changed(instance: dg.DagsterInstance, key: dg.AssetKey, before: str, after: str) -> None:
    """What Dagster's freshness daemon (``dagster._daemon.freshness``, part of ``dagster dev``) records when
    an asset's freshness policy evaluates to a new state; it has no public API to emit one."""
    from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange

    instance._report_runless_asset_event(FreshnessStateChange(  # noqa: SLF001 - as the daemon does
        key=key, previous_state=FreshnessState(before), new_state=FreshnessState(after), state_change_timestamp=0.0))


def test_stale_assets_alert_posts_each_freshness_failure_once(tmp_path: Path, instance: dg.DagsterInstance,
                                                              webhook: Webhook) -> None:
    defs = build_definitions(Settings.from_env({"CREDITRISK_HOME": str(tmp_path),
                                                "CREDITRISK_ALERT_WEBHOOK_URL": webhook.url}))
    log = dg.AssetKey(["serving", "prediction_log"])
    _, skip, cursor = evaluate_sensor(defs, instance, "stale_assets_alert")
    assert skip == "failing their freshness policy: none" and not webhook.texts("stale_asset")

    freshness_changed(instance, log, "PASS", "WARN")  # late, not failing: no alert
    _, skip, cursor = evaluate_sensor(defs, instance, "stale_assets_alert", cursor)
    assert not webhook.texts("stale_asset"), skip
    freshness_changed(instance, log, "WARN", "FAIL")
    _, skip, cursor = evaluate_sensor(defs, instance, "stale_assets_alert", cursor)
    assert webhook.texts("stale_asset") == ["[creditrisk stale_asset] serving/prediction_log is stale: fails its "
                                            "freshness policy: not materialised for more than 6 h"]
    assert skip == "failing their freshness policy: serving/prediction_log"
    _, _, cursor = evaluate_sensor(defs, instance, "stale_assets_alert", cursor)
    assert len(webhook.texts("stale_asset")) == 1  # once per failure

    freshness_changed(instance, log, "FAIL", "PASS")  # fresh again: the next failure alerts anew
    _, _, cursor = evaluate_sensor(defs, instance, "stale_assets_alert", cursor)
    freshness_changed(instance, log, "PASS", "FAIL")
    freshness_changed(instance, DRIFT_KEY, "UNKNOWN", "FAIL")
    _, skip, _ = evaluate_sensor(defs, instance, "stale_assets_alert", cursor)
    assert len(webhook.texts("stale_asset")) == 3 and skip == ("failing their freshness policy: monitoring/drift, "
                                                               "serving/prediction_log")


def test_stale_from_freshness() -> None:
    assert stale_from_freshness({"b": "FAIL", "a": "FAIL", "c": "WARN", "d": "PASS", "e": "UNKNOWN"}) == ["a", "b"]
