"""Ray Serve over real HTTP: a real local Ray head, models from a real MLflow server, real gold.

One cluster for the module (Ray takes ~20 s to start here). Tests run in file order; the last one
shuts the app down gracefully and checks that the prediction log holds every scored application.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from creditrisk_assets.assets.serving import batch_scores, build_prediction_log_asset, deployment
from creditrisk_assets.dagster_resources import resources_for
from creditrisk_assets.gold.catalogue import features
from creditrisk_assets.modeling import registry
from creditrisk_assets.modeling.dataset import build_training_set
from creditrisk_assets.modeling.train import train_xgboost
from creditrisk_assets.resources import Lake, object_store_from_settings
from creditrisk_assets.settings import Settings
from serving import runtime
from serving.prediction_log import read_hour
from tests.helpers import build_gold
from tests.servers import Server

pytestmark = pytest.mark.integration
SENT: dict[str, int] = {}  # request id -> applications scored (every 200 answer of the module)


def call(url: str, body: Any = None, raw: bytes | None = None, method: str | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"),
                                 headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310
            status, payload = r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, json.loads(exc.read() or b"{}")
    if status == 200 and url.endswith("/predict"):
        SENT[payload["request_id"]] = len(payload.get("predictions", [payload]))
    return status, payload


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, mlflow_server: Server, ray_cluster: Any) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("serving") / "home"
    settings = Settings.from_env({"CREDITRISK_HOME": str(home), "CREDITRISK_MLFLOW_TRACKING_URI": mlflow_server.url,
                                  "CREDITRISK_SERVE_PORT": str(ray_cluster.serve_port), "CREDITRISK_SERVE_REPLICAS": "1",
                                  "CREDITRISK_PREDICTION_LOG_FLUSH_S": "0.5"})
    store = object_store_from_settings(settings)
    build_gold(settings, store, hours=30)
    with Lake(settings).connect_lake() as con:
        ts = build_training_set(con)
        gold = con.execute("SELECT * FROM lake.gold.applicant_features ORDER BY sk_id_curr").df()
    client = registry.connect(settings.resolved_mlflow_uri, settings.mlflow_artifact_location)
    versions = []
    for seed, depth in ((1, 3), (2, 5)):  # two genuinely different models: champion and challenger
        model = train_xgboost(ts.part("train"), ts.part("valid"), ts.features, ts.categorical, seed=seed,
                              candidates=[{"max_depth": depth, "eta": 0.1}])
        logged = registry.log_model_run(client, model, example=ts.part("test"), metrics={"auc": 0.7}, params={},
                                        tags={"lineage.lake_snapshot_id": "1"}, artifacts={}, register=True)
        versions.append(logged.version)
    registry.set_champion(client, versions[0], "test", "2026-10-02T00:00:00")
    client.set_registered_model_alias(registry.REGISTERED_MODEL, registry.CHALLENGER, versions[1])
    store.put_bytes("monitoring/latest_drift.json",  # what monitoring/drift writes; replicas re-export it
                    json.dumps({"drift_share": 0.4, "prediction_psi": 0.12, "drift_detected": 1}).encode())
    cluster = ray_cluster
    runtime.deploy(settings, cluster.address)
    yield {"settings": settings, "cluster": cluster, "url": runtime.base_url(settings), "versions": versions,
           "gold": gold, "store": store, "features": ts.features}


def application(gold: Any, i: int = 0) -> dict[str, Any]:
    """One application's features as a client sends them (JSON types, nulls dropped)."""
    row = gold.drop(columns=["decision_time"]).iloc[i].to_dict()
    out = {}
    for k, v in row.items():
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        out[k] = int(v) if isinstance(v, np.integer) else (float(v) if isinstance(v, np.floating) else v)
    return out


def test_predict_answers_with_pd_score_grade_decision_reasons_and_version(stack: dict[str, Any]) -> None:
    status, body = call(stack["url"] + "/predict", application(stack["gold"]))
    assert status == 200, body
    assert 0.0 < body["pd"] < 1.0
    assert body["decision"] == ("approve" if body["pd"] < stack["settings"].decision_threshold else "decline")
    terms = stack["settings"].credit_terms
    assert body["score"] == round(float(terms.scorecard.score(body["pd"]))) and body["grade"] == terms.scale.grade(body["pd"])
    assert isinstance(body["reason_codes"], list) and len(body["reason_statements"]) <= len(body["reason_codes"])
    assert set(body["reason_codes"]) <= set(stack["features"])
    assert body["model_version"] == stack["versions"][0] and body["served_by"] == "champion"
    assert body["request_id"]


def test_list_and_feature_store_lookup_agree(stack: dict[str, Any]) -> None:
    gold = stack["gold"]
    apps = [application(gold, i) for i in range(5)]
    status, body = call(stack["url"] + "/predict", apps)
    assert status == 200 and len(body["predictions"]) == 5
    ids = [{"sk_id_curr": int(gold["sk_id_curr"].iloc[i])} for i in range(5)]
    status, looked_up = call(stack["url"] + "/predict", ids)
    assert status == 200
    assert [p["pd"] for p in looked_up["predictions"]] == [p["pd"] for p in body["predictions"]]
    status, missing = call(stack["url"] + "/predict", {"sk_id_curr": 10**12})
    assert status == 422 and missing["errors"][0]["field"] == "sk_id_curr"


def test_health_and_model_endpoints(stack: dict[str, Any]) -> None:
    status, health = call(stack["url"] + "/health")
    assert status == 200 and health["champion"] == stack["versions"][0]
    status, model = call(stack["url"] + "/model")
    assert status == 200
    assert model["champion"]["version"] == stack["versions"][0]
    assert model["challenger"]["version"] == stack["versions"][1]
    assert model["champion"]["training_snapshot"] == "1" and "auc" in model["champion"]["metrics"]
    assert call(stack["url"] + "/nope")[0] == 404
    assert call(stack["url"] + "/predict", method="GET")[0] == 405


NAMES = [f.name for f in features()]


@st.composite
def malformed(draw: st.DrawFn, base: dict[str, Any]) -> tuple[bytes, set[str]]:
    """A request body with at least one client mistake, and the fields an error may name."""
    kind = draw(st.sampled_from(["bytes", "type", "unknown", "missing", "range", "list", "nested", "empty_id"]))
    row = dict(base)
    if kind == "bytes":
        return draw(st.binary(min_size=0, max_size=64)) or b"x", set()  # any named field will do
    if kind == "type":
        name = draw(st.sampled_from(NAMES))
        row[name] = draw(st.one_of(st.text(max_size=5), st.lists(st.integers(), max_size=2), st.booleans(),
                                   st.dictionaries(st.text(max_size=3), st.integers(), max_size=1)))
        if isinstance(row[name], str) and name in {f.name for f in features() if f.data_type == "varchar"}:
            row[name] = 12345  # a string is valid there
        return json.dumps(row).encode(), {name}
    if kind == "unknown":
        name = "x_" + draw(st.text(alphabet="abcdefgh", min_size=1, max_size=8))
        row[name] = 1
        return json.dumps(row).encode(), {name}
    if kind == "missing":
        name = draw(st.sampled_from([f.name for f in features() if f.required]))
        row.pop(name, None)
        return json.dumps(row).encode(), {name}
    if kind == "range":
        ranged = [f for f in features() if f.max_value is not None]
        f = draw(st.sampled_from(ranged))
        row[f.name] = f.max_value + draw(st.floats(min_value=0.5, max_value=1e6))
        return json.dumps(row).encode(), {f.name}
    if kind == "list":
        n = draw(st.integers(min_value=101, max_value=150))
        return json.dumps([row] * n).encode(), {"body"}
    if kind == "nested":
        return json.dumps([row, draw(st.one_of(st.integers(), st.text(max_size=3), st.none()))]).encode(), {"[1]"}
    return json.dumps({"sk_id_curr": draw(st.one_of(st.text(max_size=3), st.floats(), st.none()))}).encode(), {
        "sk_id_curr"}


def test_fuzz_malformed_requests_get_4xx_naming_the_field(stack: dict[str, Any]) -> None:
    base = application(stack["gold"])
    url = stack["url"] + "/predict"
    seen: list[int] = []

    @given(case=malformed(base))
    @hsettings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def check(case: tuple[bytes, set[str]]) -> None:
        raw, expected = case
        status, body = call(url, raw=raw)
        seen.append(status)
        assert 400 <= status < 500, (status, raw[:200], body)
        fields = {e["field"] for e in body["errors"]}
        assert all(fields), body
        assert not expected or any(f == e or f.startswith(e) or f.endswith("." + e) for f in fields for e in expected), (
            fields, expected)

    check()
    assert len(seen) == 250
    too_big = b"[" + b",".join([json.dumps(base).encode()] * 1200) + b"]"
    status, body = call(url, raw=too_big)
    assert status == 413 and body["errors"][0]["field"] == "body"


def _statuses_under_load(url: str, body: dict[str, Any], stop: threading.Event, out: list[tuple[int, str]]) -> None:
    while not stop.is_set():
        try:
            status, payload = call(url, body)
            out.append((status, payload.get("model_version", "")))
        except Exception as exc:  # noqa: BLE001 - a dropped connection counts as a failed request
            out.append((-1, repr(exc)))


def test_redeploy_on_alias_move_has_zero_failed_requests_under_load(stack: dict[str, Any]) -> None:
    settings, cluster = stack["settings"], stack["cluster"]
    v1, v2 = stack["versions"]
    url, body = stack["url"] + "/predict", application(stack["gold"], 3)
    stop, results = threading.Event(), []
    threads = [threading.Thread(target=_statuses_under_load, args=(url, body, stop, results)) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        client = registry.connect(settings.resolved_mlflow_uri)
        registry.set_champion(client, v2, "test: challenger wins", "2026-10-03T00:00:00")
        client.set_registered_model_alias(registry.REGISTERED_MODEL, registry.CHALLENGER, v1)
        runtime.deploy(settings, cluster.address)  # waits until /health says v2
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join()
    failures = [r for r in results if r[0] != 200]
    assert not failures, failures[:5]
    versions = [v for _, v in results]
    assert versions[0] == v1 and versions[-1] == v2 and len(results) > 20
    switch = versions.index(v2)
    assert set(versions[switch:]) == {v2} or versions[-20:] == [v2] * 20  # no flapping back once all replicas moved


def test_rollback_and_approve_from_the_cli_redeploy_the_running_app(stack: dict[str, Any],
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """`creditrisk rollback` / `creditrisk approve` move the alias and the running app follows at once (no
    separate deploy job): /v1/model names the new champion when the command returns."""
    from creditrisk_assets.cli import main as cli_main
    from serving.config import settings_args

    settings, cluster = stack["settings"], stack["cluster"]
    v1, v2 = stack["versions"]
    for name, value in {**settings_args(settings), "CREDITRISK_RAY_ADDRESS": cluster.address}.items():
        monkeypatch.setenv(name, value)

    def served() -> str:
        status, body = call(stack["url"] + "/model")
        assert status == 200, body
        return str(body["champion"]["version"])

    assert served() == v2  # where the previous test left it
    assert cli_main(["rollback", "--by", "on-call"]) == 0
    assert served() == v1
    client = registry.connect(settings.resolved_mlflow_uri)
    registry.request_approval(client, v2, "2026-10-03T01:00:00")  # v2 passed the gate and waits for a person
    assert cli_main(["approve", "--version", v2, "--by", "risk-officer", "--reason", "validated"]) == 0
    assert served() == v2
    out = capsys.readouterr().out
    assert f"serving: champion {v1} deployed at {cluster.address}" in out
    assert f"serving: champion {v2} deployed at {cluster.address}" in out
    client.set_registered_model_alias(registry.REGISTERED_MODEL, registry.CHALLENGER, v1)  # as the next test expects


def test_shadow_and_canary_modes(stack: dict[str, Any]) -> None:
    settings, cluster = stack["settings"], stack["cluster"]
    config = runtime.registry_config(settings)
    champion, challenger = config["champion"], config["challenger"]
    apps = [application(stack["gold"], i) for i in range(100)]
    status, shadow = call(stack["url"] + "/predict", apps)  # default mode: shadow
    assert status == 200 and {p["served_by"] for p in shadow["predictions"]} == {"champion"}
    runtime.deploy(settings, cluster.address, {**config, "mode": "canary", "canary_share": 0.5})
    status, canary = call(stack["url"] + "/predict", apps)
    served = [p["served_by"] for p in canary["predictions"]]
    assert 20 <= served.count("challenger") <= 80, served.count("challenger")
    assert {p["model_version"] for p in canary["predictions"] if p["served_by"] == "challenger"} == {challenger}
    status, again = call(stack["url"] + "/predict", apps)  # sticky: the same applications go the same way
    assert [p["served_by"] for p in again["predictions"]] == served
    runtime.deploy(settings, cluster.address, {**config, "mode": "shadow"})
    stack["shadow_request"], stack["canary_request"] = shadow["request_id"], canary["request_id"]
    stack["champion"], stack["challenger"] = champion, challenger


def test_metrics_are_exported_for_prometheus(stack: dict[str, Any]) -> None:
    url = f"http://127.0.0.1:{stack['cluster'].metrics_port}/metrics"
    deadline, text = time.monotonic() + 180, ""  # Ray's agent exports on an interval; replicas read drift at start
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310
            text = r.read().decode()
        if all(m in text for m in ("ray_creditrisk_predictions", "ray_creditrisk_request_latency_ms_bucket")) and \
                re.search(r"^ray_creditrisk_drift_share\{[^}]*\} 0\.4\d*$", text, re.M):
            break
        time.sleep(2)
    assert 'ray_creditrisk_requests_total{' in text or "ray_creditrisk_requests{" in text, text[:2000]
    assert "ray_creditrisk_request_latency_ms_bucket" in text
    assert 'model_version="' in text and 'status="422"' in text
    drift_lines = [line for line in text.splitlines() if line.startswith("ray_creditrisk_drift_share")]
    assert any(re.search(r"\} 0\.4\d*$", line) for line in drift_lines), drift_lines


def resources(settings: Settings) -> dict[str, Any]:
    return {"settings": settings, **resources_for(settings)}


def test_deployment_and_batch_scoring_assets(stack: dict[str, Any]) -> None:
    settings = dataclasses.replace(stack["settings"], ray_address=stack["cluster"].address)
    result = dg.materialize([deployment, batch_scores], resources=resources(settings))
    assert result.success
    meta = result.asset_materializations_for_node("serving__deployment")[0].metadata
    assert meta["champion_version"].value == stack["champion"]
    scored_meta = result.asset_materializations_for_node("serving__batch_scores")[0].metadata
    assert scored_meta["model_version"].value == stack["champion"]
    scored = pd.read_parquet(io.BytesIO(stack["store"].get_bytes(
        f"serving/batch_scores/applicant_features-v{stack['champion']}.parquet")))
    assert len(scored) == len(stack["gold"]) and scored["pd"].between(0, 1).all()
    assert (scored["model_version"] == stack["champion"]).all()


def test_prediction_log_is_complete_after_graceful_shutdown(stack: dict[str, Any]) -> None:
    runtime.shutdown_app(stack["cluster"].address)  # replicas flush on the way out
    store, settings = stack["store"], stack["settings"]
    keys = [o.key for o in store.list("serving/prediction_log/")]
    hours = sorted({dt.datetime.strptime(k.split("dt=")[1][:10] + k.split("hh=")[1][:2], "%Y-%m-%d%H") for k in keys})
    logged = pd.concat([read_hour(store, h) for h in hours], ignore_index=True)
    counts = logged.groupby("request_id").size().to_dict()
    assert counts == SENT  # every 200 answer of this module, every application in it, nothing else
    shadow = logged[logged["request_id"] == stack["shadow_request"]]
    assert (shadow["shadow_version"] == stack["challenger"]).all() and shadow["shadow_pd"].notna().all()
    canary = logged[logged["request_id"] == stack["canary_request"]]
    assert set(canary["served_by"]) == {"champion", "challenger"}
    assert logged["applicant_hash"].str.len().eq(64).all()
    assert str(stack["gold"]["sk_id_curr"].iloc[0]) not in set(logged["applicant_hash"])
    # the serving/prediction_log asset puts those hours (and an empty one) in the lake, idempotently
    log_asset = build_prediction_log_asset(settings)
    keys_ = [h.strftime("%Y-%m-%d-%H:00") for h in (hours[0] - dt.timedelta(hours=1), *hours)]
    for _ in range(2):
        for key in keys_:
            assert dg.materialize([log_asset], partition_key=key, resources=resources(settings)).success
    with Lake(settings).connect_lake() as con:
        in_lake = con.execute("SELECT count(*) FROM lake.serving.prediction_log").fetchone()[0]
    assert in_lake == sum(SENT.values())
