"""``POST /v1/decide`` over real HTTP: a real Ray Serve app, a champion from a real MLflow server, real gold.

Parity, proven: ≥ 500 applications of simulated gold are replayed from what landed (their bronze rows:
values as they arrived, identifiers in clear) through ``/v1/decide``; the features the app computes with
the dbt models' own compiled SQL (history from the lake) equal the gold rows, and the PD equals the batch
score of the same champion. A dbt model changed in a copy of the project changes the batch and the online
path alike. Tests run in file order; the log test shuts the app down.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings

from creditrisk_assets.gold import online
from creditrisk_assets.gold.build import run_dbt
from creditrisk_assets.gold.dbt_profiles import PROJECT_DIR, write_profiles
from creditrisk_assets.resources import Lake, object_store_from_settings
from creditrisk_assets.settings import Settings
from serving import runtime
from serving.batch import score_batch
from serving.prediction_log import read_hour
from serving.schemas import DecideParser
from tests.helpers import gold_and_champion
from tests.online_requests import Replay
from tests.servers import Server
from tests.unit.test_decide import OTHER_FIELDS, RAW_FIELD, hostile

pytestmark = pytest.mark.integration
PARITY_APPLICATIONS = 500
ANSWERED: dict[str, int] = {}  # request id -> sk_id_curr of every 200 answer of /v1/decide


def post(url: str, body: Any, query: str = "") -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(f"{url}/decide{query}", data=data, method="POST",
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:  # noqa: S310
            status, payload = r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, json.loads(exc.read() or b"{}")
    if status == 200:
        ANSWERED[payload["request_id"]] = payload["sk_id_curr"]
    return status, payload


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, mlflow_server: Server, ray_cluster: Any) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("decide") / "home"
    settings = Settings.from_env({"CREDITRISK_HOME": str(home), "CREDITRISK_MLFLOW_TRACKING_URI": mlflow_server.url,
                                  "CREDITRISK_SERVE_PORT": str(ray_cluster.serve_port), "CREDITRISK_SERVE_REPLICAS": "1",
                                  "CREDITRISK_PREDICTION_LOG_FLUSH_S": "0.5"})
    store = object_store_from_settings(settings)
    gold, ts, version = gold_and_champion(settings, store, hours=40, max_depth=4)
    runtime.deploy(settings, ray_cluster.address)
    try:
        yield {"settings": settings, "store": store, "cluster": ray_cluster, "url": runtime.base_url(settings),
               "gold": gold.set_index("sk_id_curr"), "version": version, "replay": Replay(store),
               "features": ts.features}
    finally:
        runtime.shutdown_app(ray_cluster.address)


def parity_sample(stack: dict[str, Any]) -> list[int]:
    """≥ 500 applications spread over the hours, with and without a bureau report, all of them in gold."""
    replay: Replay = stack["replay"]
    ids = [i for i in replay.ids() if i in stack["gold"].index]
    step = max(1, len(ids) // PARITY_APPLICATIONS)
    sample = ids[::step][:PARITY_APPLICATIONS]
    assert len(sample) == PARITY_APPLICATIONS
    return sample


def same(online_value: Any, gold_value: Any) -> bool:
    if gold_value is None or gold_value is pd.NA or (isinstance(gold_value, float) and math.isnan(gold_value)):
        return online_value is None
    if isinstance(gold_value, float) or isinstance(online_value, float):
        return online_value is not None and math.isclose(float(online_value), float(gold_value), rel_tol=1e-9,
                                                         abs_tol=1e-12)
    return bool(online_value == gold_value)


def test_decide_replays_gold_exactly_features_and_pd(stack: dict[str, Any]) -> None:
    """500 applications' raw rows → /v1/decide (4 clients: requests share batches) → the gold row and the
    batch PD of the same champion. Half send numbers as JSON numbers, half as the text that landed."""
    sample, replay, gold = parity_sample(stack), stack["replay"], stack["gold"]
    scored = pd.read_parquet(io.BytesIO(stack["store"].get_bytes(
        score_batch(stack["settings"], stack["store"], Lake(stack["settings"])).output_key))).set_index("sk_id_curr")

    def one(i: int) -> tuple[int, int, dict[str, Any]]:
        status, answer = post(stack["url"], replay.request(i, numbers=i % 2 == 0), "?features=true")
        return i, status, answer

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(one, sample))
    without_bureau = 0
    mismatches: list[tuple[int, str, Any, Any]] = []
    for i, status, answer in answers:
        assert status == 200, (i, answer)
        assert answer["sk_id_curr"] == i and answer["model_version"] == stack["version"]
        features = answer["features"]
        assert set(features) == set(gold.columns) - {"decision_time"}  # every gold feature, nothing else
        row = gold.loc[i]
        mismatches += [(i, f, v, row[f]) for f, v in features.items() if not same(v, row[f])]
        batch = scored.loc[i]
        assert ((answer["pd"], answer["score"], answer["grade"], answer["decision"])
                == (batch["pd"], batch["score"], batch["grade"], batch["decision"])), i
        assert answer["decision_time"] == row["decision_time"].isoformat()
        without_bureau += "bureau" not in replay.request(i)
    assert not mismatches, mismatches[:10]
    assert without_bureau >= 1, "the sample holds applicants without a bureau report (no history: no error)"
    stack["answered"] = len(answers)


def test_a_bad_raw_value_is_a_422_naming_it_over_http_never_a_5xx(stack: dict[str, Any]) -> None:
    replay: Replay = stack["replay"]
    with_bureau = next(i for i in parity_sample(stack) if len(replay.request(i).get("bureau", [])) >= 4)
    body = replay.request(with_bureau)
    body["bureau"][3]["CREDIT_ACTIVE"] = "Perhaps"
    body["application"]["AMT_INCOME_TOTAL"] = "lots"
    status, answer = post(stack["url"], body)
    assert status == 422, answer
    assert {e["field"] for e in answer["errors"]} == {"application.AMT_INCOME_TOTAL", "bureau[3].CREDIT_ACTIVE"}
    seen: list[int] = []

    @given(raw=hostile(replay.request(with_bureau)))
    @hsettings(max_examples=60, deadline=None, derandomize=True, database=None,
               suppress_health_check=list(HealthCheck))
    def check(raw: bytes) -> None:
        status, answer = post(stack["url"], raw)
        seen.append(status)
        assert status < 500, (status, answer)
        if status != 200:
            assert all(RAW_FIELD.match(e["field"]) or OTHER_FIELDS.match(e["field"]) or e["field"] not in ("", None)
                       for e in answer["errors"]), answer

    check()
    assert len(seen) == 60


def test_the_model_endpoint_says_what_the_online_features_are(stack: dict[str, Any]) -> None:
    with urllib.request.urlopen(stack["url"] + "/model", timeout=30) as r:  # noqa: S310
        model = json.loads(r.read())
    info = model["online_features"]
    assert info["status"] == "ready" and info["missing_for_served_models"] == []
    assert info["features"] == len(stack["gold"].columns) - 1 and isinstance(info["lake_snapshot"], int)
    assert model["champion"]["features"] == len(stack["features"])


def test_the_history_is_the_lake_as_of_one_snapshot(stack: dict[str, Any]) -> None:
    """An engine over the lake as it was before the previous applications landed knows none of them; over the
    current snapshot it knows what gold knows (the parity above). Replicas refresh to the newest snapshot."""
    settings, replay, gold = stack["settings"], stack["replay"], stack["gold"]
    with Lake(settings).connect_lake() as con:
        created = next(sid for sid, changes in con.execute(
            "SELECT snapshot_id, changes FROM ducklake_snapshots('lake') ORDER BY 1").fetchall()
            if "silver.previous_application" in (changes.get("tables_created") or []))
    graph = online.FeatureGraph.load(online.compile_manifest(settings))
    then, now = online.build_engine(settings, graph, created - 1), online.build_engine(settings, graph)
    assert then.snapshot_id == created - 1 and now.snapshot_id == online.lake_snapshot(settings)
    i = next(i for i in parity_sample(stack) if gold.loc[i, "prev_application_count"] > 0)
    request = DecideParser(10**7).parse(json.dumps(replay.request(i)).encode())
    (before,), (after,) = then.compute([request]), now.compute([request])
    assert isinstance(before, online.Decided) and isinstance(after, online.Decided)
    assert before.features["prev_application_count"] == 0 and before.features["has_previous_application"] == 0
    assert after.features["prev_application_count"] == gold.loc[i, "prev_application_count"]


def test_the_prediction_log_holds_the_pseudonymised_request_and_the_features(stack: dict[str, Any]) -> None:
    runtime.shutdown_app(stack["cluster"].address)  # replicas flush on the way out
    store, replay = stack["store"], stack["replay"]
    keys = [o.key for o in store.list("serving/prediction_log/")]
    hours = sorted({dt.datetime.strptime(k.split("dt=")[1][:10] + k.split("hh=")[1][:2], "%Y-%m-%d%H") for k in keys})
    logged = pd.concat([read_hour(store, h) for h in hours], ignore_index=True)
    decided = logged[logged["feature_source"] == "raw_application"]
    assert set(decided["request_id"]) == set(ANSWERED)  # every 200 answer, once
    for _, row in decided.head(50).iterrows():
        sk_id = ANSWERED[row["request_id"]]
        kept = json.loads(row["request_json"])
        sent = replay.request(sk_id)
        assert len(kept.get("bureau", [])) == len(sent.get("bureau", []))
        for column in ("NATIONAL_ID", "EMAIL", "PHONE", "FULL_NAME", "ADDRESS", "DATE_OF_BIRTH"):
            clear = sent["application"].get(column)
            assert clear is None or str(clear) not in row["request_json"], column
        assert kept["application"][0]["AGE_YEARS"] == stack["gold"].loc[sk_id, "age_years"]
        for f in ("credit_income_ratio", "bureau_credit_count"):
            assert same(row[f], stack["gold"].loc[sk_id, f])
    raw_bytes = b"".join(store.get_bytes(k) for k in keys)
    clear = [replay.request(i)["application"].get("NATIONAL_ID") for i in parity_sample(stack)]
    assert any(clear) and not any(c.encode() in raw_bytes for c in clear if c)


def _dbt_run(settings: Settings, project: Path, target: Path) -> None:
    """``dbt run`` of ``project`` against the test's lake (what the gold build runs, on another project dir)."""
    cmd = [str(Path(sys.executable).parent / "dbt"), "run", "--project-dir", str(project), "--profiles-dir",
           str(write_profiles(settings)), "--target-path", str(target), "--log-path", str(target / "logs")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=project)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_changing_one_dbt_model_changes_the_batch_and_the_online_path_alike(
        stack: dict[str, Any], tmp_path: Path) -> None:
    """A copy of the project where staging doubles the credit amount: gold rebuilt from it and the online engine
    compiled from it agree with each other, and both differ from the original where the amount matters."""
    settings, replay = stack["settings"], stack["replay"]
    project = tmp_path / "dbt_project"
    shutil.copytree(PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    stg = project / "models" / "staging" / "stg_application.sql"
    original = "cast(AMT_CREDIT as double) as amt_credit"
    assert original in stg.read_text(), "the staging model changed: pick another line to modify"
    stg.write_text(stg.read_text().replace(original, "cast(AMT_CREDIT as double) * 2 as amt_credit"))
    assert online.project_fingerprint(project) != online.project_fingerprint(PROJECT_DIR)
    try:
        _dbt_run(settings, project, tmp_path / "target")
        with Lake(settings).connect_lake() as con:
            changed_gold = con.execute("SELECT * FROM lake.gold.applicant_features").df().set_index("sk_id_curr")
        engine = online.build_engine(settings, online.FeatureGraph.load(online.compile_manifest(settings, project)))
        sample = parity_sample(stack)[:60]
        parser = DecideParser(10**7)
        results = engine.compute([parser.parse(json.dumps(replay.request(i)).encode()) for i in sample])
        for i, result in zip(sample, results, strict=True):
            assert isinstance(result, online.Decided), result
            assert all(same(v, changed_gold.loc[i, f]) for f, v in result.features.items() if f in changed_gold), i
            assert result.features["amt_credit"] == 2 * stack["gold"].loc[i, "amt_credit"]
            assert not same(result.features["credit_income_ratio"], stack["gold"].loc[i, "credit_income_ratio"])
    finally:
        run_dbt(settings, ["run"])  # gold back to the project's models
