"""``POST /v1/decide`` without Ray: the real handler, the real dbt-compiled feature graph, silver's own rules.

Requests are replayed from a small simulated landing (bronze keeps the values as they landed, PII in clear);
the engine has no lake history here (an applicant with no history with the lender): the parity with gold,
history included, is ``tests/integration/test_decide.py``.
"""

from __future__ import annotations

import ast
import copy
import datetime as dt
import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creditrisk_assets.contracts import TABLES
from creditrisk_assets.gold import online
from creditrisk_assets.ingest.bronze import ingest_partitions
from creditrisk_assets.modeling.train import train_xgboost
from creditrisk_assets.quality.pii import pseudonymise
from creditrisk_assets.quality.runner import policy_for
from creditrisk_assets.resources import FolderStore, Lake
from creditrisk_assets.settings import Settings
from creditrisk_assets.simulate import SimulationConfig, simulate
from serving import config as serving_config
from serving.app import PdService
from serving.schemas import DecideParser, RequestParser
from serving.scoring import ModelInfo, Scorer
from tests.online_requests import Replay
from tests.unit.test_serving_unit import CATEGORICAL, NAMES, request, run, synthetic

#: a field as ``/v1/decide`` names it: a raw column of the application or of one record of a list
RAW_FIELD = re.compile(r"^(application|(bureau|bureau_balance)\[\d+\])\..+$", re.DOTALL)
#: what else a 4xx may name: the body itself, a part of the request (a list, one record), the query, the API key
OTHER_FIELDS = re.compile(r"^(body|application|bureau|bureau_balance|(bureau|bureau_balance)\[\d+\]|query\.\w+|X-API-Key)$")
PII_COLUMNS = [c.name for c in TABLES["application"].columns if c.pii in ("identifier", "free_text", "birth_date")]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two landed hours in bronze, the gold project compiled, an engine without lake history."""
    home = tmp_path_factory.mktemp("decide") / "home"
    s = Settings(home=home, prediction_log_flush_s=3600, prediction_log_flush_rows=10**6)
    store = FolderStore(s.resolved_store_root)
    simulate(SimulationConfig(start="2026-10-01T00:00", hours=2, rows_per_hour=40, seed=5), store)
    hours = [dt.datetime(2026, 10, 1, h) for h in range(2)]
    for t in ("application", "bureau", "bureau_balance"):
        ingest_partitions(store, Lake(s), t, hours, run_id="t", preview_rows=0)
    graph = online.FeatureGraph.load(online.compile_manifest(s))
    engine = online.OnlineEngine(graph, s.pii_key, lambda t: policy_for(t, s))
    train, valid = synthetic(600, 1), synthetic(200, 2)
    model = train_xgboost(train, valid, NAMES, CATEGORICAL, candidates=[{"max_depth": 3, "eta": 0.1}])
    return {"settings": s, "graph": graph, "engine": engine, "replay": Replay(store), "model": model}


@pytest.fixture(scope="module")
def service(world: dict[str, Any]) -> PdService:
    svc = PdService(world["settings"])
    svc.champion = Scorer(world["model"], ModelInfo("creditrisk-pd", "1", "champion"), 0.15, Settings().credit_terms)
    svc.use_online(world["engine"])
    return svc


def decide(svc: PdService, body: Any, query: bytes = b"") -> tuple[int, dict[str, Any]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return run(svc, request("POST", "/v1/decide", raw, query=query))


def some_request(world: dict[str, Any], i: int = 0, numbers: bool = False) -> dict[str, Any]:
    replay: Replay = world["replay"]
    with_bureau = [a for a in replay.ids() if "bureau" in replay.request(a)]
    return replay.request(with_bureau[i], numbers)


# ---------------------------------------------------------------------- answers
def test_decide_answers_with_pd_band_reasons_version_and_the_features(service: PdService,
                                                                      world: dict[str, Any]) -> None:
    body = some_request(world)
    status, answer = decide(service, body, b"features=true&reasons=all")
    assert status == 200, answer
    assert 0 < answer["pd"] < 1 and isinstance(answer["score"], int) and 1 <= answer["grade"] <= 10 and answer["model_version"] == "1"
    assert answer["decision"] == ("approve" if answer["pd"] < 0.15 else "decline")
    assert answer["reason_codes"] and set(answer["reason_codes"]) <= set(NAMES)  # ?reasons=all
    assert answer["sk_id_curr"] == int(body["application"]["SK_ID_CURR"])
    assert list(answer["features"]) == world["graph"].features  # every feature the mart computes, in its order
    assert answer["features"]["has_bureau_history"] == 1  # the request's bureau records counted
    status, plain = decide(service, body)
    assert status == 200 and "features" not in plain and plain["pd"] == answer["pd"]


def test_numbers_as_json_numbers_or_as_landed_text_are_the_same_request(service: PdService,
                                                                        world: dict[str, Any]) -> None:
    as_text = decide(service, some_request(world, 1), b"features=true")[1]
    as_numbers = decide(service, some_request(world, 1, numbers=True), b"features=true")[1]
    assert as_text["features"] == as_numbers["features"] and as_text["pd"] == as_numbers["pd"]


def test_an_applicant_without_history_is_no_error(service: PdService, world: dict[str, Any]) -> None:
    body = {"application": some_request(world)["application"]}  # no bureau report, nothing in the lake
    status, answer = decide(service, body, b"features=true")
    assert status == 200, answer
    f = answer["features"]
    assert f["has_bureau_history"] == 0 and f["bureau_credit_count"] == 0 and f["bureau_debt_credit_ratio"] is None


def test_a_batch_is_the_requests_one_by_one_even_for_the_same_applicant(world: dict[str, Any]) -> None:
    """Requests share one run of the graph unless a key (applicant, bureau credit) is in two of them."""
    engine: online.OnlineEngine = world["engine"]
    reqs = [DecideParser(10**6).parse(json.dumps(some_request(world, i)).encode()) for i in range(3)]
    alone = [engine.compute([r])[0] for r in reqs]
    together = engine.compute([reqs[0], reqs[1], copy.deepcopy(reqs[0]), reqs[2], reqs[0]])
    for got, want in zip(together, [alone[0], alone[1], alone[0], alone[2], alone[0]], strict=True):
        assert isinstance(got, online.Decided) and isinstance(want, online.Decided)
        assert got.features == want.features


def test_a_champion_needing_a_feature_the_graph_does_not_compute_is_refused_not_guessed(
        world: dict[str, Any]) -> None:
    """The served model's own feature list decides: a feature no dbt model computes any more is a 503 naming it."""
    import dataclasses

    svc = PdService(world["settings"])
    model = world["model"]
    svc.champion = Scorer(dataclasses.replace(model, features=[*model.features, "retired_feature"]),
                          ModelInfo("creditrisk-pd", "9", "champion"), 0.15, Settings().credit_terms)
    svc.use_online(world["engine"])
    status, answer = decide(svc, some_request(world))
    assert status == 503 and answer["errors"][0]["field"] == "features"
    assert "retired_feature" in answer["errors"][0]["error"]


# ---------------------------------------------------------------------- errors name the raw field
def _set(body: dict[str, Any], table: str, row: int | None, column: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    (body[table] if row is None else body[table][row])[column] = value
    return body


@pytest.mark.parametrize(("table", "row", "column", "value", "why"), [
    ("application", None, "AMT_CREDIT", "a lot", "type: AMT_CREDIT"),
    ("application", None, "AMT_CREDIT", 1e400, "type: AMT_CREDIT"),  # json.loads: inf
    ("application", None, "AMT_CREDIT", -5, "range: AMT_CREDIT below"),
    ("application", None, "CODE_GENDER", "Q", "allowed_values: CODE_GENDER"),
    ("application", None, "CNT_CHILDREN", 1.5, "type: CNT_CHILDREN"),
    ("application", None, "DATE_OF_BIRTH", "2020-01-01", "range: age from DATE_OF_BIRTH"),
    ("application", None, "SK_ID_CURR", None, "not_null: SK_ID_CURR"),
    ("bureau", 1, "CREDIT_ACTIVE", "Maybe", "allowed_values: CREDIT_ACTIVE"),
    ("bureau", 0, "REPORTED_AT", "yesterday", "type: REPORTED_AT"),
    ("bureau", 0, "SK_ID_CURR", 1, "not the application being decided"),
    ("bureau_balance", 0, "STATUS", "Z", "allowed_values: STATUS"),
])
def test_a_value_silver_refuses_is_a_422_naming_the_raw_field(service: PdService, world: dict[str, Any], table: str,
                                                             row: int | None, column: str, value: Any, why: str) -> None:
    body = some_request(world, 2)
    status, answer = decide(service, _set(body, table, row, column, value))
    where = f"{table}.{column}" if row is None else f"{table}[{row}].{column}"
    assert status == 422, answer
    assert {"field": where} in [{"field": e["field"]} for e in answer["errors"]], answer
    assert any(e["field"] == where and why in e["error"] for e in answer["errors"]), answer
    raw_value = str(value)
    assert all(raw_value not in e["error"] for e in answer["errors"] if len(raw_value) > 2)  # never the value


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda b: {**b, "bureau": [*b["bureau"], b["bureau"][0]]}, "bureau[{n}].SK_ID_BUREAU"),  # a key twice
    (lambda b: _set(b, "application", None, "FAVOURITE_COLOUR", "red"), "application.FAVOURITE_COLOUR"),
    (lambda b: _set(b, "bureau", 0, "AMT_CREDIT_SUM", [1, 2]), "bureau[0].AMT_CREDIT_SUM"),
    (lambda b: _set(b, "application", None, "FLAG_OWN_CAR", True), "application.FLAG_OWN_CAR"),
    (lambda b: {k: v for k, v in b.items() if k != "application"}, "application"),
    (lambda b: {**b, "bureau": {"SK_ID_BUREAU": 1}}, "bureau"),
    (lambda b: {**b, "bureau": [7]}, "bureau[0]"),
    (lambda b: {**b, "bureaus": []}, "bureaus"),
])
def test_a_malformed_request_is_a_422_naming_where(service: PdService, world: dict[str, Any], mutate: Any,
                                                   field: str) -> None:
    body = some_request(world, 2)
    status, answer = decide(service, mutate(body))
    assert status == 422, answer
    assert field.format(n=len(body["bureau"])) in {e["field"] for e in answer["errors"]}, answer


def test_the_query_and_the_body_are_checked_before_any_work(service: PdService, world: dict[str, Any]) -> None:
    assert decide(service, some_request(world), b"features=yes")[1]["errors"][0]["field"] == "query.features"
    assert decide(service, some_request(world), b"explain=1")[1]["errors"][0]["field"] == "query.explain"
    assert decide(service, b"{nope")[0] == 400
    assert decide(service, b"[" * 50 + b"]" * 50)[0] == 422
    assert decide(service, [some_request(world)])[1]["errors"][0]["field"] == "body"


# ---------------------------------------------------------------------- hostile bodies, generated
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=12)
COLUMNS = {t: TABLES[t].column_names for t in online.REQUEST_TABLES}


@st.composite
def hostile(draw: st.DrawFn, base: dict[str, Any]) -> bytes:
    kind = draw(st.sampled_from(["value", "value", "value", "drop", "extra", "structure", "json", "bytes"]))
    body = copy.deepcopy(base)
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "structure":
        key = draw(st.sampled_from([*online.REQUEST_TABLES, "x"]))
        body[key] = draw(json_values)
        return json.dumps(body).encode()
    table = draw(st.sampled_from([t for t in online.REQUEST_TABLES if t in body]))
    record = body[table] if table == "application" else body[table][draw(st.integers(0, len(body[table]) - 1))]
    if kind == "drop":
        for name in draw(st.lists(st.sampled_from(sorted(record)), max_size=5)):
            record.pop(name, None)
    elif kind == "extra":
        record[draw(st.text(min_size=1, max_size=8))] = draw(json_values)
    else:
        record[draw(st.sampled_from(COLUMNS[table]))] = draw(
            json_values | st.sampled_from(["", " ", "1e999", "NaN", "-0", "12,5", "31/12/2024", "2026-13-40",
                                           "9" * 40, "Y", "N", "Active", "0", "1.0"]))
    return json.dumps(body).encode()


def test_hostile_decision_requests_get_a_4xx_naming_a_raw_field_never_a_5xx(service: PdService,
                                                                          world: dict[str, Any]) -> None:
    statuses: list[int] = []

    @given(body=hostile(some_request(world, 3)))
    @settings(max_examples=300, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    def check(body: bytes) -> None:
        status, answer = decide(service, body)
        statuses.append(status)
        assert status < 500, (status, answer, body[:300])
        if status == 200:
            return
        assert 400 <= status < 500 and answer["errors"], answer
        try:
            sent = {k if re.fullmatch(r"\w+", k, re.ASCII) else json.dumps(k)[:100] for k in json.loads(body)}
        except (ValueError, TypeError, RecursionError):
            sent = set()
        for e in answer["errors"]:
            assert RAW_FIELD.match(e["field"]) or OTHER_FIELDS.match(e["field"]) or e["field"] in sent, (e, body[:300])

    check()
    assert len(statuses) == 300 and 200 in statuses and 422 in statuses  # both kinds of answer were exercised


# ---------------------------------------------------------------------- privacy
def test_identifiers_are_pseudonymised_in_the_log_and_never_answered_or_logged(
        service: PdService, world: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    body = some_request(world, 4)
    clear = {c: body["application"][c] for c in PII_COLUMNS if body["application"].get(c)}
    assert {"NATIONAL_ID", "DATE_OF_BIRTH"} <= set(clear), "the simulator lands identifiers and birth dates"
    before = len(service.writer._rows)
    with caplog.at_level(logging.DEBUG):
        status, answer = decide(service, body, b"features=true")
        bad_status, bad = decide(service, _set(body, "application", None, "AMT_CREDIT", "x"))
    assert status == 200 and bad_status == 422
    (logged,) = service.writer._rows[before:]
    assert logged["feature_source"] == "raw_application"
    assert logged["applicant_hash"] == pseudonymise(body["application"]["SK_ID_CURR"], world["settings"].pii_key)
    kept = json.loads(logged["request_json"])
    app = kept["application"][0]
    assert app["NATIONAL_ID_HASH"] == pseudonymise(clear["NATIONAL_ID"], world["settings"].pii_key)
    assert "AGE_YEARS" in app and "DATE_OF_BIRTH" not in app and "FULL_NAME" not in app
    assert len(kept["bureau"]) == len(body["bureau"])
    seen = json.dumps([answer, bad, logged], default=str) + caplog.text
    for column, value in clear.items():
        assert str(value) not in seen, column
    features = {k: logged[k] for k in service.writer.features}
    assert features == {k: answer["features"].get(k) for k in service.writer.features}


# ---------------------------------------------------------------------- the graph and the serving config
def test_the_graph_comes_from_the_manifest(world: dict[str, Any]) -> None:
    graph: online.FeatureGraph = world["graph"]
    manifest = json.loads(online.compile_manifest(world["settings"]).read_text())
    mart = next(n for n in manifest["nodes"].values() if n.get("name") == graph.mart.removeprefix("m_"))
    assert [c for c, _ in graph.columns] == list(mart["columns"])
    assert set(graph.sources) >= {"application", "bureau"} and "application" not in graph.history_tables
    assert all(not name.startswith("m_") or sql for name, sql in graph.models)
    assert graph.models[-1][0] == graph.mart
    with pytest.raises(online.OnlineError, match="compiled SQL"):
        stripped = copy.deepcopy(manifest)
        for n in stripped["nodes"].values():
            n.pop("compiled_code", None)
        online.FeatureGraph.from_manifest(stripped)


def test_the_request_schema_is_the_served_models_feature_list() -> None:
    """The champion's own features, in its order; one the contract lacks is typed from the model."""
    used = ["ext_source_mean", "legacy_score", "name_income_type", "legacy_segment"]
    parser = RequestParser(10, 10**6, used=used, categorical={"name_income_type", "legacy_segment"})
    assert parser.feature_names[:4] == used
    (row,), _ = parser.parse(json.dumps({"ext_source_mean": 0.5, "legacy_score": 3, "legacy_segment": "a"}).encode())
    assert row["legacy_score"] == 3 and row["legacy_segment"] == "a"
    with pytest.raises(Exception, match="legacy_segment"):
        parser.parse(json.dumps({"ext_source_mean": 0.5, "legacy_segment": 7}).encode())


def test_serving_config_is_shared_and_ray_is_used_through_public_apis_only() -> None:
    """``runtime`` and ``app`` both read ``serving.config`` and neither imports the other at import time; no
    Ray name starting with ``_`` is used by the serving code."""
    code = ("import sys, serving.runtime; assert 'serving.app' not in sys.modules, 'runtime imports app'; "
            "import serving.app")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
    for path in sorted((Path(__file__).resolve().parents[2] / "serving").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ray"):
                assert not any(p.startswith("_") for p in (node.module or "").split(".")), (path.name, node.module)
                assert not any(a.name.startswith("_") for a in node.names), (path.name, [a.name for a in node.names])
    schema = serving_config.serve_config(Settings(), {"champion": "3"})
    (app,) = schema["applications"]
    assert app["import_path"] == serving_config.IMPORT_PATH and app["deployments"][0]["user_config"] == {"champion": "3"}
