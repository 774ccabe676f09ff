"""Serving logic without Ray: request validation, scoring, routing, batching, the prediction log."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from starlette.requests import Request

from creditrisk_assets.gold.catalogue import categorical_features, features
from creditrisk_assets.modeling.dataset import TARGET
from creditrisk_assets.modeling.reasons import statements_for
from creditrisk_assets.modeling.train import train_baseline, train_xgboost
from creditrisk_assets.resources import FolderStore, ObjectStore, ObjectStoreError
from creditrisk_assets.settings import Settings
from serving.app import PdService
from serving.prediction_log import PredictionLogWriter, read_hour
from serving.schemas import RequestError, RequestParser
from serving.scoring import ANSWER_FIELDS, ModelInfo, Scorer, score_frame

FEATURES = features()
NAMES = [f.name for f in FEATURES]
CATEGORICAL = categorical_features()
TERMS = Settings().credit_terms


def synthetic(n: int, seed: int = 0) -> pd.DataFrame:
    """Applications with every feature inside its contract, and a label that depends on two of them."""
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {}
    for f in FEATURES:
        if f.data_type == "varchar":
            cols[f.name] = rng.choice(["a", "b", "c"], n)
        elif f.accepted_values:
            cols[f.name] = rng.choice(list(f.accepted_values), n)
        else:  # every numeric feature has bounds: flags and shares fill theirs, the rest stays low in it
            lo, hi = f.min_value, f.max_value
            assert lo is not None and hi is not None, f.name
            if f.data_type == "double":
                v = rng.uniform(lo, hi, n) if hi - lo <= 1 else max(lo, 0) + rng.gamma(2.0, 1000.0, n)
            else:
                v = max(lo, 0) + rng.integers(0, 2 if hi - lo <= 5 else 10, n)
            cols[f.name] = np.clip(v, lo, hi)
    frame = pd.DataFrame(cols)
    logit = -2.5 + 3.0 * (0.5 - frame["ext_source_mean"]) + 0.8 * (frame["name_income_type"] == "a")
    frame[TARGET] = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame["sk_id_curr"] = np.arange(n) + 1000
    return frame


@pytest.fixture(scope="module")
def models() -> dict[str, Any]:
    train, valid = synthetic(3000, 1), synthetic(800, 2)
    xgb_model = train_xgboost(train, valid, NAMES, CATEGORICAL, candidates=[{"max_depth": 3, "eta": 0.1}])
    base = train_baseline(train, NAMES, CATEGORICAL, valid=valid)
    return {"xgboost": xgb_model, "baseline": base, "test": synthetic(300, 3)}


def as_request_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame[["sk_id_curr", *NAMES]].to_json(orient="records"))


# ---------------------------------------------------------------------- validation
def valid_row() -> dict[str, Any]:
    return as_request_rows(synthetic(1))[0]


@pytest.mark.parametrize(("change", "field", "status"), [
    ({"amt_credit": "12"}, "amt_credit", 422),  # a number as text: strict
    ({"inst_count": 1.5}, "inst_count", 422),
    ({"inst_count": True}, "inst_count", 422),
    ({"ext_source_1": 1.5}, "ext_source_1", 422),  # out of the contract's [0, 1]
    ({"ext_source_missing_count": 4}, "ext_source_missing_count", 422),
    ({"ext_source_missing_count": True}, "ext_source_missing_count", 422),
    ({"bogus": 1}, "bogus", 422),
    ({"credit_income_ratio": 1e308}, "credit_income_ratio", 422),  # every numeric feature is bounded
    ({"amt_credit": -1e308}, "amt_credit", 422),
    ({"inst_count": 10**30}, "inst_count", 422),
    ({"name_income_type": 7}, "name_income_type", 422),
])
def test_each_bad_field_is_named(change: dict[str, Any], field: str, status: int) -> None:
    parser = RequestParser(100, 100_000)
    with pytest.raises(RequestError) as err:
        parser.parse(json.dumps({**valid_row(), **change}).encode())
    assert err.value.status == status
    assert [e["field"] for e in err.value.errors] == [field]


def test_missing_required_field_and_list_positions_are_named() -> None:
    parser = RequestParser(100, 100_000)
    required = next(f.name for f in FEATURES if f.required)
    row = valid_row()
    bad = {k: v for k, v in row.items() if k != required}
    with pytest.raises(RequestError) as err:
        parser.parse(json.dumps([row, bad, 5]).encode())
    assert {e["field"] for e in err.value.errors} == {f"[1].{required}", "[2]"}


def test_body_level_mistakes() -> None:
    parser = RequestParser(3, 2_000)
    cases = {b"{": 400, b"[]": 422, b"7": 422, json.dumps([{"sk_id_curr": 1}] * 4).encode(): 422,
             b" " * 2_001: 413, json.dumps({"sk_id_curr": "7"}).encode(): 422, json.dumps({"sk_id_curr": 0}).encode(): 422,
             b"[" * 900 + b"]" * 900: 422, b"[" * 1_900: 400}  # too deep: refused before json.loads / by it
    for body, status in cases.items():
        with pytest.raises(RequestError) as err:
            parser.parse(body)
        assert err.value.status == status and err.value.errors[0]["field"] in ("body", "sk_id_curr")
    rows, single = parser.parse(json.dumps({"sk_id_curr": 7}).encode())
    assert rows == [{"sk_id_curr": 7}] and single


def test_optional_fields_may_be_null_or_absent() -> None:
    parser = RequestParser(100, 100_000)
    optional = next(f.name for f in FEATURES if not f.required and f.data_type == "double")
    row = valid_row()
    (parsed,), _ = parser.parse(json.dumps({**row, optional: None}).encode())
    assert parsed[optional] is None
    (parsed,), _ = parser.parse(json.dumps({k: v for k, v in row.items() if k != optional}).encode())
    assert parsed[optional] is None


# ---------------------------------------------------------------------- scoring
def test_answers_carry_score_grade_and_statements(models: dict[str, Any]) -> None:
    scorer = Scorer(models["xgboost"], ModelInfo("m", "1", "champion"), 0.15, TERMS)
    rows = as_request_rows(models["test"])
    out = scorer.explain(rows, "all")
    assert all(tuple(o) == ANSWER_FIELDS for o in out)
    pds = np.array([o["pd"] for o in out])
    # the score is the scorecard's points of the PD, the grade the master scale's grade of it
    assert [o["score"] for o in out] == np.rint(TERMS.scorecard.score(pds)).astype(int).tolist()
    assert [o["grade"] for o in out] == TERMS.scale.grade_all(pds).tolist()
    order = np.argsort(pds)  # higher PD: never a higher score nor a better (lower) grade
    assert np.all(np.diff(np.array([out[i]["score"] for i in order])) <= 0)
    assert np.all(np.diff(np.array([out[i]["grade"] for i in order])) >= 0)
    assert len({o["grade"] for o in out}) >= 3  # the test population spans grades, or this proves little
    assert sum(bool(o["reason_codes"]) for o in out) > len(out) // 2
    for o in out:  # strict: every code the model gives has its catalogue statement (no fallback text)
        assert o["reason_statements"] == statements_for(o["reason_codes"], strict=True)


@pytest.mark.parametrize("kind", ["xgboost", "baseline"])
def test_scorer_matches_the_trained_model(models: dict[str, Any], kind: str) -> None:
    trained, test = models[kind], models["test"]
    scorer = Scorer(trained, ModelInfo("m", "1", "champion"), 0.15, TERMS)
    pd_, contribs = scorer.score(as_request_rows(test))
    np.testing.assert_allclose(pd_, trained.predict_pd(test), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(contribs, trained.contributions(test), rtol=1e-5, atol=1e-6)
    out = scorer.explain(as_request_rows(test.head(3)))
    assert all(o["decision"] == ("approve" if o["pd"] < 0.15 else "decline") for o in out)
    assert all(set(o["reason_codes"]) <= set(NAMES) for o in out)


@pytest.mark.parametrize("kind", ["xgboost", "baseline"])
def test_reason_codes_only_for_declined_rows_unless_asked(models: dict[str, Any], kind: str) -> None:
    scorer = Scorer(models[kind], ModelInfo("m", "1", "champion"), 0.15, TERMS)
    rows = as_request_rows(models["test"])
    full, declined_only = scorer.explain(rows, "all"), scorer.explain(rows, "declined")
    decisions = [o["decision"] for o in full]
    assert 0 < decisions.count("decline") < len(rows)  # both kinds present, or the test proves nothing
    np.testing.assert_allclose([o["pd"] for o in declined_only], [o["pd"] for o in full])
    np.testing.assert_allclose(scorer.predict(rows), scorer.score(rows)[0], rtol=1e-5, atol=1e-6)
    for a, d in zip(full, declined_only, strict=True):
        assert d["reason_codes"] == (a["reason_codes"] if a["decision"] == "decline" else [])
    assert any(a["reason_codes"] for a in full if a["decision"] == "approve")  # "all" explains approvals too
    forced = scorer.explain(rows[:5], "declined", force=[True] * 5)
    assert [o["reason_codes"] for o in forced] == [o["reason_codes"] for o in full[:5]]
    with pytest.raises(ValueError, match="reasons"):
        scorer.explain(rows, "some")


def test_unknown_category_scores_as_missing(models: dict[str, Any]) -> None:
    scorer = Scorer(models["xgboost"], ModelInfo("m", "1", "champion"), 0.15, TERMS)
    row = as_request_rows(models["test"].head(1))[0]
    unseen, missing = {**row, "name_income_type": "never-seen"}, {**row, "name_income_type": None}
    assert scorer.score([unseen])[0][0] == scorer.score([missing])[0][0]


def test_score_frame_keeps_columns_and_version(models: dict[str, Any]) -> None:
    scorer = Scorer(models["xgboost"], ModelInfo("m", "7", "champion"), 0.15, TERMS)
    out = score_frame(scorer, models["test"], chunk=64)
    assert len(out) == 300 and (out["model_version"] == "7").all()
    assert {"sk_id_curr", *ANSWER_FIELDS} <= set(out.columns)
    explained = out[out["reason_codes"] != ""]
    assert len(explained) and all(s == " | ".join(statements_for(c)) for c, s in
                                  zip(explained["reason_codes"], explained["reason_statements"], strict=True))


# ---------------------------------------------------------------------- the service, in process
def request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
            query: bytes = b"") -> Request:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}
    scope = {"type": "http", "method": method, "path": path, "query_string": query, "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]}
    return Request(scope, receive)


@pytest.fixture()
def service(tmp_path: Any, models: dict[str, Any]) -> PdService:
    settings = Settings(home=tmp_path, serve_api_key="k3y", prediction_log_flush_s=60)
    svc = PdService(settings)
    svc.champion = Scorer(models["xgboost"], ModelInfo("m", "1", "champion"), 0.15, TERMS)
    svc.challenger = Scorer(models["baseline"], ModelInfo("m", "2", "challenger"), 0.15, TERMS)
    return svc


def run(svc: PdService, req: Request) -> tuple[int, dict[str, Any]]:
    resp = asyncio.run(svc(req))
    return resp.status_code, json.loads(resp.body)


def test_api_key_is_required_when_set(service: PdService, models: dict[str, Any]) -> None:
    body = json.dumps(as_request_rows(models["test"].head(1))[0]).encode()
    status, payload = run(service, request("POST", "/v1/predict", body))
    assert status == 401 and payload["errors"][0]["field"] == "X-API-Key"
    assert run(service, request("POST", "/v1/predict", body, {"X-API-Key": "wrong"}))[0] == 401
    assert run(service, request("POST", "/v1/predict", body, {"X-API-Key": "k3y"}))[0] == 200


def test_shadow_logs_the_challenger_and_canary_splits_traffic(service: PdService, models: dict[str, Any]) -> None:
    rows = as_request_rows(models["test"].head(100))
    body, key = json.dumps(rows).encode(), {"X-API-Key": "k3y"}
    service.mode = "shadow"
    status, shadow = run(service, request("POST", "/v1/predict", body, key))
    assert status == 200 and {p["served_by"] for p in shadow["predictions"]} == {"champion"}
    service.mode, service.canary_share = "canary", 0.3
    _, canary = run(service, request("POST", "/v1/predict", body, key))
    share = sum(p["served_by"] == "challenger" for p in canary["predictions"]) / len(rows)
    assert 0.2 < share < 0.4
    service.mode = "champion"
    _, only = run(service, request("POST", "/v1/predict", body, key))
    assert {p["model_version"] for p in only["predictions"]} == {"1"}
    logged = pd.DataFrame.from_records(service.writer._rows)
    first = logged[logged["request_id"] == shadow["request_id"]]
    assert (first["shadow_version"] == "2").all() and first["shadow_pd"].notna().all()
    last = logged[logged["request_id"] == only["request_id"]]
    assert last["shadow_pd"].isna().all()


def test_concurrent_requests_are_scored_in_one_batch(service: PdService, models: dict[str, Any]) -> None:
    rows = as_request_rows(models["test"].head(20))
    calls: list[int] = []
    original = service._score

    def counting(batch: list[dict[str, Any]], force: list[bool] | None = None) -> list[dict[str, Any]]:
        calls.append(len(batch))
        return original(batch, force)

    service._score = counting  # type: ignore[method-assign]

    async def many() -> list[Any]:
        return await asyncio.gather(*(service._submit([r]) for r in rows))

    results = asyncio.run(many())
    assert calls == [20] and [r[0]["pd"] for r in results] == [o["pd"] for o in service.champion.explain(rows)]
    asyncio.run(service._submit(rows[:1]))  # a lone request is scored at once, alone
    assert calls == [20, 1]

    service.settings = dataclasses.replace(service.settings, serve_batch_max_rows=8)  # the rest waits a turn
    calls.clear()
    results = asyncio.run(many())
    assert calls == [8, 8, 4] and [r[0]["pd"] for r in results] == [o["pd"] for o in service.champion.explain(rows)]


def test_reasons_query_parameter(service: PdService, models: dict[str, Any]) -> None:
    rows = as_request_rows(models["test"].head(60))
    body, key = json.dumps(rows).encode(), {"X-API-Key": "k3y"}
    service.mode = "champion"
    _, default = run(service, request("POST", "/v1/predict", body, key))
    _, every = run(service, request("POST", "/v1/predict", body, key, query=b"reasons=all"))
    approved = [i for i, p in enumerate(every["predictions"]) if p["decision"] == "approve"]
    assert approved and all(default["predictions"][i]["reason_codes"] == [] for i in approved)
    assert any(every["predictions"][i]["reason_codes"] for i in approved)
    for query, field in ((b"reasons=some", "query.reasons"), (b"explain=1", "query.explain")):
        status, payload = run(service, request("POST", "/v1/predict", body, key, query=query))
        assert status == 422 and payload["errors"][0]["field"] == field


def test_health_model_and_unknown_routes(service: PdService) -> None:
    assert run(service, request("GET", "/v1/health"))[0] == 200
    status, model = run(service, request("GET", "/v1/model"))
    assert status == 200 and model["champion"]["version"] == "1" and model["challenger"]["kind"] == "baseline"
    assert run(service, request("GET", "/v1/nothing"))[0] == 404
    assert run(service, request("DELETE", "/v1/predict"))[0] == 405
    service.champion = None
    assert run(service, request("GET", "/v1/health"))[0] == 503


# ---------------------------------------------------------------------- the prediction log
class FlakyStore(FolderStore):
    def __init__(self, root: Any) -> None:
        super().__init__(root)
        self.fail = True

    def put_bytes(self, key: str, data: bytes) -> None:
        if self.fail:
            raise ObjectStoreError("store down")
        super().put_bytes(key, data)


def log_rows(n: int, at: dt.datetime) -> list[dict[str, Any]]:
    return [{"request_id": f"r{i}", "logged_at": at, "applicant_hash": None, "served_by": "champion",
             "model_version": "1", "pd": 0.1, "decision": "approve", "amt_credit": 1.0, "name_income_type": "a"}
            for i in range(n)]


def test_prediction_log_flushes_by_size_and_on_close_and_keeps_rows_when_the_store_fails(tmp_path: Any) -> None:
    store: ObjectStore = FlakyStore(tmp_path)
    writer = PredictionLogWriter(store, NAMES, CATEGORICAL, flush_rows=10**6, flush_s=3600)
    at = dt.datetime(2026, 10, 1, 5, 30, tzinfo=dt.UTC)
    writer.log(log_rows(7, at))
    assert writer.flush() == 0 and writer.failed_flushes == 1  # store down: rows kept
    store.fail = False  # type: ignore[attr-defined]
    writer.log(log_rows(5, at + dt.timedelta(hours=1)))
    assert writer.close() == 0  # everything written on close
    first, second = read_hour(store, dt.datetime(2026, 10, 1, 5)), read_hour(store, dt.datetime(2026, 10, 1, 6))
    assert (len(first), len(second)) == (7, 5)
    assert first["amt_credit"].dtype == "float64" and list(first.columns[:3]) == ["request_id", "logged_at",
                                                                                  "applicant_hash"]
    assert read_hour(store, dt.datetime(2026, 10, 1, 7)).empty


def test_an_hour_logged_by_older_code_and_one_by_newer_load_into_one_table(tmp_path: Any) -> None:
    """The log's columns move with the code (``risk_band`` became ``score`` + ``grade``) and the served model:
    loading never fails on a column the table lacks; older rows read null there."""
    import duckdb

    from serving.prediction_log import LOG_TABLE, load_hours

    store = FolderStore(tmp_path)
    old_hour, new_hour = dt.datetime(2026, 10, 1, 5, tzinfo=dt.UTC), dt.datetime(2026, 10, 1, 6, tzinfo=dt.UTC)
    old = PredictionLogWriter(store, ["amt_credit"], [], flush_rows=10**6, flush_s=3600)
    old.schema = pa.schema([f for f in old.schema if f.name not in ("score", "grade")]  # what the older code wrote
                           + [pa.field("risk_band", pa.string())])
    old.log([{**r, "risk_band": "B"} for r in log_rows(3, old_hour + dt.timedelta(minutes=5))])
    old.close()
    new = PredictionLogWriter(store, ["amt_credit", "new_feature"], [], flush_rows=10**6, flush_s=3600)
    new.log([{**r, "score": 612, "grade": 4, "new_feature": 2.0} for r in log_rows(2, new_hour + dt.timedelta(minutes=5))])
    new.close()
    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS lake")
    assert load_hours(con, store, [old_hour.replace(tzinfo=None), new_hour.replace(tzinfo=None)]) == {
        old_hour.replace(tzinfo=None): 3, new_hour.replace(tzinfo=None): 2}
    rows = con.execute(f"SELECT risk_band, score, grade, new_feature FROM {LOG_TABLE} ORDER BY logged_at").fetchall()
    assert rows == [("B", None, None, None)] * 3 + [(None, 612, 4, 2.0)] * 2
    assert dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {LOG_TABLE})").fetchall())["grade"] == "BIGINT"


# ---------------------------------------------------------------------- config files agree with the code
def test_serve_config_file_and_runtime_config_are_valid_and_agree(tmp_path: Any) -> None:
    from pathlib import Path

    import yaml
    from ray.serve.schema import ServeDeploySchema

    from serving.runtime import serve_config

    root = Path(__file__).resolve().parents[2]
    from_file = ServeDeploySchema.parse_obj(yaml.safe_load((root / "serving" / "config.yaml").read_text()))
    from_code = ServeDeploySchema.parse_obj(serve_config(Settings(home=tmp_path), {"champion": "1"}))
    for schema in (from_file, from_code):
        (app,) = schema.applications
        assert (app.name, app.route_prefix, app.import_path) == ("creditrisk", "/v1", "serving.app:app_builder")
        assert [d.name for d in app.deployments] == ["PdService"]
    ray_service = yaml.safe_load((root / "infra" / "k8s" / "base" / "rayservice.yaml").read_text())
    (k8s_app,) = yaml.safe_load(ray_service["spec"]["serveConfigV2"])["applications"]
    assert (k8s_app["import_path"], k8s_app["route_prefix"]) == ("serving.app:app_builder", "/v1")


def test_each_local_cluster_gets_replica_ports_of_its_own(tmp_path: Any) -> None:
    """Two clusters on one host must not allocate the same Serve replica ports (one's HAProxy would route to
    the other's replicas): a block is held while its holder lives, free once it died, skipped while bound."""
    import socket
    import subprocess
    import sys

    from serving import runtime

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        first = runtime.reserve_ingress_block(holder.pid, tmp_path)
        second = runtime.reserve_ingress_block(holder.pid, tmp_path)
        assert first != second
        (http1, grpc1), (http2, grpc2) = runtime.ingress_ports(first), runtime.ingress_ports(second)
        assert not set(http1) & set(http2) and not set(grpc1) & set(grpc2) and not set(http1) & set(grpc2)
        env = runtime.ray_env(Settings(serve_proxy="haproxy"), 1, tmp_path / "state", second)
        assert (env["RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"], env["RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT"],
                env["RAY_SERVE_FALLBACK_PROXY_HTTP_PORT"]) == (str(http2.start), str(http2[-2]), str(http2[-1]))
        assert env["RAY_SERVE_FALLBACK_PROXY_GRPC_PORT"] == str(grpc2[-1])  # never Serve's shared 8500 / 9500
        with socket.socket() as busy:  # a port of the next block is taken by someone else: that block is skipped
            busy.bind(("127.0.0.1", runtime.ingress_ports(second + 1)[0].start))
            assert runtime.reserve_ingress_block(holder.pid, tmp_path) == second + 2
    finally:
        holder.kill()
        holder.wait()
    assert runtime.reserve_ingress_block(os.getpid(), tmp_path) == first  # its holder died: free again


def test_the_deployers_cluster_address_is_not_part_of_the_app() -> None:
    """Deploying from the CLI (a named head) or from the asset (``local``) is the same app: an alias move then
    reconfigures the live replicas instead of replacing them (a replacement restarts every replica)."""
    from serving.config import settings_args

    local, named = Settings(), Settings(ray_address="10.0.0.7:6379")
    assert settings_args(local) == settings_args(named)
    assert "CREDITRISK_RAY_ADDRESS" not in settings_args(named) and "CREDITRISK_HOME" in settings_args(named)


def test_deploys_carry_rays_token_only_when_token_authentication_is_on(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:
    from serving import runtime

    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    assert runtime._auth_headers() == {}  # the local clusters' mode: disabled
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "token"))
    with pytest.raises(runtime.ServingError, match="RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH"):
        runtime._auth_headers()
    (tmp_path / "token").write_text("from-file\n")
    assert runtime._auth_headers() == {"authorization": "Bearer from-file"}
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")  # Ray's precedence: the variable before the file
    assert runtime._auth_headers() == {"authorization": "Bearer from-env"}
