"""The closed loop on real parts: injected drift → monitoring → drift sensor → retrain → gate →
new champion → Ray Serve answers with it; and before the drift, no retrain.

Real Dagster jobs (in process, on a real instance), real dbt, a real MLflow server, a real Ray head
(shared with the serving tests), Evidently on real gold; the sensor is evaluated as the daemon would.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import urllib.request
from typing import Any

import dagster as dg
import pytest

from creditrisk_assets.definitions import build_definitions
from creditrisk_assets.demo import evaluate_sensor, run_ingest, run_job
from creditrisk_assets.layout import HOUR_FMT
from creditrisk_assets.resources import Lake, object_store_from_settings
from creditrisk_assets.settings import Settings
from creditrisk_assets.simulate import SimulationConfig, simulate
from serving import runtime
from tests.conftest import Webhook
from tests.servers import Server

pytestmark = pytest.mark.integration
HOURS, DRIFT_HOUR, ROWS = 72, 48, 200
START = dt.datetime(2026, 10, 1)


def hour(h: int) -> str:
    return (START + dt.timedelta(hours=h)).strftime(HOUR_FMT)


def predict(settings: Settings, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(runtime.base_url(settings) + "/predict", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310
        return json.loads(r.read())


def test_drift_triggers_retrain_promotion_and_redeploy(tmp_path_factory: pytest.TempPathFactory,
                                                       mlflow_server: Server, ray_cluster: Any, webhook: Webhook) -> None:
    home = tmp_path_factory.mktemp("loop") / "home"
    settings = Settings.from_env({
        "CREDITRISK_HOME": str(home), "CREDITRISK_MLFLOW_TRACKING_URI": mlflow_server.url,
        "CREDITRISK_RAY_ADDRESS": ray_cluster.address, "CREDITRISK_SERVE_PORT": str(ray_cluster.serve_port),
        "CREDITRISK_SERVE_REPLICAS": "1", "CREDITRISK_TRAIN_TRIALS": "1", "CREDITRISK_GATE_MAX_ECE": "0.05",
        "CREDITRISK_DRIFT_WINDOW_HOURS": "12", "CREDITRISK_DRIFT_CONSECUTIVE_WINDOWS": "2",
        # each pass recomputes only the two windows the sensor's rule needs (Evidently costs ~7 s a window)
        "CREDITRISK_DRIFT_LOOKBACK_WINDOWS": "2",
        "CREDITRISK_ALERT_WEBHOOK_URL": webhook.url,
        # risk policy for a population shift (as in the demo): approvals may move by up to 10 points
        "CREDITRISK_CANARY_MAX_APPROVAL_DELTA": "0.10"})
    simulate(SimulationConfig(start="2026-10-01T00:00", hours=HOURS, rows_per_hour=ROWS, seed=21,
                              outcome_delay_hours=6, drift="product_mix", drift_start_hour=DRIFT_HOUR),
             object_store_from_settings(settings))
    instance = dg.DagsterInstance.ephemeral()
    defs = build_definitions(settings)

    assert run_ingest(defs, hour(0), hour(DRIFT_HOUR - 1), instance).success
    first = run_job(defs, "retrain_and_deploy", instance)  # train, gate, serve the first champion
    assert first.success
    assert first.output_for_node("ml__promotion")["promoted"], first.output_for_node("ml__promotion")["reasons"]
    v1 = first.output_for_node("ml__promotion")["champion"]
    assert predict(settings, {"sk_id_curr": 100001})["model_version"] == v1

    # before the shift: windows look like the reference, nothing is requested
    assert run_job(defs, "monitor", instance).success
    requests, skip, cursor = evaluate_sensor(defs, instance, "drift_sensor")
    assert requests == [] and skip, skip
    with Lake(settings).connect_lake() as con:
        before = con.execute("SELECT count(*) FROM lake.monitoring.drift_metrics WHERE kind = 'dataset' AND "
                             "metric = 'share_drifted' AND drifted").fetchone()[0]
    assert before == 0

    # the shifted hours land: drift in consecutive windows → the sensor asks for a retrain
    assert run_ingest(defs, hour(DRIFT_HOUR), hour(HOURS - 1), instance).success
    monitor = run_job(defs, "monitor", instance)
    assert monitor.success
    meta = monitor.asset_materializations_for_node("monitoring__drift")[0].metadata
    assert meta["retrain_recommended"].value and meta["drifted_windows"].value >= 2
    assert any(k.startswith("report ") for k in meta)  # Evidently HTML linked
    assert webhook.texts("drift")
    requests, skip, cursor = evaluate_sensor(defs, instance, "drift_sensor", cursor)
    assert len(requests) == 1, skip
    again, _, _ = evaluate_sensor(defs, instance, "drift_sensor", cursor)
    assert again == []  # one request per materialisation

    retrain = run_job(defs, "retrain_and_deploy", instance, tags=dict(requests[0].tags))
    assert retrain.success
    decision = retrain.output_for_node("ml__promotion")
    assert decision["promoted"], decision["reasons"]
    v2 = decision["champion"]
    assert v2 != v1
    assert predict(settings, {"sk_id_curr": 100001})["model_version"] == v2  # serving moved in place
    # a daemon started now (`make dev` after `make demo`: no cursor) does not request the handled retrain again
    fresh, skip, _ = evaluate_sensor(defs, instance, "drift_sensor")
    assert fresh == [] and "already handled" in (skip or ""), skip

    # against the new champion's reference, the drifted windows are its training data: no new retrain
    assert run_job(defs, "monitor", instance).success
    requests, skip, _ = evaluate_sensor(defs, instance, "drift_sensor", cursor)
    assert requests == [], "spurious retrain after the new champion"

    # a retrain the gate refuses (an impossible AUC floor) leaves the champion serving, and alerts
    strict = build_definitions(dataclasses.replace(settings, gate_min_auc=0.99))
    refused = run_job(strict, "retrain_and_deploy", instance)
    assert refused.success and not refused.output_for_node("ml__promotion")["promoted"]
    assert predict(settings, {"sk_id_curr": 100001})["model_version"] == v2
    assert webhook.texts("promotion_refused")
