"""The drift and performance sensors on a real Dagster instance, ticked as the daemon would
(``build_sensor_context``) on materialisations of ``monitoring/*`` carrying their metadata."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from creditrisk_assets.definitions import build_definitions
from creditrisk_assets.demo import evaluate_sensor
from creditrisk_assets.sensors import DRIFT_KEY, DRIFT_REQUEST_TAG, PERFORMANCE_KEY, PERFORMANCE_REQUEST_TAG
from creditrisk_assets.settings import Settings


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
