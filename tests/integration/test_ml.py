"""ML on real gold, logged to a real MLflow server: registry aliases, the gate, manual promote/rollback."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import subprocess
import urllib.request
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from creditrisk_assets.cli import main as cli
from creditrisk_assets.definitions import build_definitions
from creditrisk_assets.layout import asset_output_key
from creditrisk_assets.modeling.dataset import TARGET, TrainingDataError, build_training_set
from creditrisk_assets.modeling.pipeline import (
    DEVELOPMENT_MIN_ROWS,
    evaluate_model,
    log_and_register,
    oracle_pd,
    promote_if_better,
)
from creditrisk_assets.modeling.registry import MlflowUnavailable, alias_version, connect, history
from creditrisk_assets.modeling.train import train_xgboost
from creditrisk_assets.resources import Lake, object_store_from_settings
from creditrisk_assets.settings import Settings
from serving.config import settings_args
from tests.conftest import Webhook
from tests.helpers import build_gold
from tests.servers import Server, free_port, restart_mlflow, start_mlflow

pytestmark = pytest.mark.integration
HOURS = 40


@pytest.fixture(scope="module")
def ml_settings(tmp_path_factory: pytest.TempPathFactory, mlflow_server: Server) -> Settings:
    home = tmp_path_factory.mktemp("ml") / "home"
    # ~750 out-of-time applications: ECE over 10 bins is noisier than on a production-sized test set
    settings = Settings.from_env({"CREDITRISK_HOME": str(home), "CREDITRISK_MLFLOW_TRACKING_URI": mlflow_server.url,
                                  "CREDITRISK_TRAIN_TRIALS": "2", "CREDITRISK_GATE_MAX_ECE": "0.05"})
    build_gold(settings, object_store_from_settings(settings))
    return settings


def test_train_evaluate_register_and_promote_through_dagster(ml_settings: Settings, mlflow_server: Server,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parents[2], capture_output=True,
                          text=True, check=True).stdout.strip()  # a git checkout: never "unknown"
    defs = build_definitions(ml_settings)
    result = defs.resolve_job_def("train_and_promote").execute_in_process(instance=dg.DagsterInstance.ephemeral())
    assert result.success
    evaluated = result.output_for_node("ml__evaluation")
    promoted = result.output_for_node("ml__promotion")
    client = MlflowClient(mlflow_server.url)
    runs = client.search_runs([client.get_experiment_by_name("creditrisk-pd").experiment_id])
    assert {r.data.tags["model_kind"] for r in runs} == {"baseline", "xgboost"}  # both logged
    for run in runs:
        assert {"auc", "gini", "ks", "brier", "log_loss", "pr_auc", "ece", "oracle_auc_gap", "master_scale_monotonic",
                "profit_max_cutoff", "profit_at_threshold", "f1_at_threshold"} <= set(run.data.metrics)
        assert run.data.tags["lineage.lake_snapshot_id"]
        assert run.data.tags["lineage.git_sha"] == head, "the model must record this checkout's commit"
        arts = {a.path for a in client.list_artifacts(run.info.run_id)}
        kind = run.data.tags["model_kind"]
        assert {"model_card.md", f"roc_{kind}.png", f"profit_{kind}.png", "grades.csv", "profit_curve.csv"} <= arts
    assert evaluated["version"] == "1" and alias_version(client, "challenger") == "1"
    assert promoted["promoted"], "a good first model passes the gate"
    assert alias_version(client, "champion") == "1"
    card = Path(client.download_artifacts(runs[0].info.run_id, "model_card.md")).read_text()
    assert "Bayes" in card and "## Scores and grades" in card and "## Cut-off economics" in card
    assert "## Stability" in card and "SSI of the master-scale grades" in card
    champion_card = Path(client.download_artifacts(evaluated["run_id"], "model_card.md")).read_text()
    sign_off = champion_card.split("## Sign-off", 1)[1].split("## ", 1)[0]
    assert "| gate | - | - | PASS" in sign_off  # the gate promoted it: recorded on the card the UI links
    assert evaluated["metrics"]["n"] >= DEVELOPMENT_MIN_ROWS, "too few out-of-time rows for the card's SSI"
    assert {"ssi_out_of_time", "csi_max_out_of_time"} <= set(evaluated["metrics"])
    # the evaluation speaks in grades, money and statements: in its metadata too
    materialization = result.asset_materializations_for_node("ml__evaluation")[0]
    meta = materialization.metadata
    assert {"grades", "master_scale_monotonic", "profit_max_cutoff", "profit_at_threshold", "at_threshold"} <= set(meta)
    assert meta["decision_threshold"].value == ml_settings.decision_threshold
    # the MLflow run and version open from the asset page: URLs into the server's UI naming real ids
    run_url, version_url = meta["mlflow_run"].value, meta["mlflow_model_version"].value
    experiment = client.get_run(evaluated["run_id"]).info.experiment_id
    assert run_url == f"{mlflow_server.url}/#/experiments/{experiment}/runs/{evaluated['run_id']}"
    assert version_url == f"{mlflow_server.url}/#/models/creditrisk-pd/versions/{evaluated['version']}"
    with urllib.request.urlopen(run_url.split("#")[0], timeout=10) as r:  # noqa: S310 - the UI itself
        assert r.status == 200 and b"<html" in r.read(2000).lower()
    grades = pd.read_csv(client.download_artifacts(runs[0].info.run_id, "grades.csv"))
    assert grades["grade"].tolist() == list(range(1, 11)) and grades["n"].sum() == evaluated["metrics"]["n"]
    sample = pd.read_csv(client.download_artifacts(evaluated["run_id"], "reason_codes_sample.csv"))
    assert sample["reason_statements"].str.len().gt(0).all()  # the riskiest applications: every one has reasons
    assert {"score", "grade"} <= set(sample.columns)

    # a deliberately degraded model (labels shuffled): registered as challenger, refused, champion unchanged
    con = Lake(ml_settings).connect_lake()
    ts = build_training_set(con, snapshot_id=Lake.snapshot_id(con))
    con.close()
    train = ts.part("train").copy()
    train[TARGET] = np.random.default_rng(0).permutation(train[TARGET].to_numpy())
    bad = train_xgboost(train, ts.part("valid"), ts.features, ts.categorical, trials=1)
    bad_eval = evaluate_model(bad, ts, ml_settings.decision_threshold,
                              oracle_pd(object_store_from_settings(ml_settings), ts.frame["sk_id_curr"]))
    _, logged = log_and_register(connect(mlflow_server.url), {"xgboost": bad}, {"xgboost": bad_eval}, ts, "t")
    test = ts.part("test")
    decision = promote_if_better(client, logged["xgboost"].version, bad_eval.metrics, bad.predict_pd(test),
                                 bad.input_frame(test), ml_settings.decision_threshold, ml_settings.gate_policy)
    assert not decision.promote
    assert any(r.startswith("FAIL performance") for r in decision.reasons)
    assert alias_version(client, "champion") == "1" and alias_version(client, "challenger") == "2"
    assert client.get_model_version("creditrisk-pd", "2").tags["gate_decision"] == "refused"

    # by hand: the gate refuses version 2 on its recorded metrics; --override promotes it, recorded; roll back to 1
    monkeypatch.setenv("CREDITRISK_MLFLOW_TRACKING_URI", mlflow_server.url)
    monkeypatch.setenv("CREDITRISK_HOME", str(ml_settings.home))
    assert cli(["promote", "--version", "2", "--reason", "test"]) == 1
    assert alias_version(client, "champion") == "1"
    assert cli(["promote", "--version", "2", "--reason", "test", "--override"]) == 0
    assert alias_version(client, "champion") == "2"
    assert cli(["rollback"]) == 0
    assert alias_version(client, "champion") == "1"
    assert [m["version"] for m in history(client)] == ["1", "2", "1"]


def test_approval_required_holds_a_passing_challenger_until_approved(ml_settings: Settings, mlflow_server: Server,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    webhook: Webhook) -> None:
    """After the test above (champion 1): the same data retrains the same model, which passes the gate head to
    head, and with approval required it waits as `challenger`; `creditrisk approve` makes it champion."""
    client = MlflowClient(mlflow_server.url)
    champion = alias_version(client, "champion")
    required = Settings.from_env({"CREDITRISK_HOME": str(ml_settings.home), "CREDITRISK_MLFLOW_TRACKING_URI":
                                  mlflow_server.url, "CREDITRISK_TRAIN_TRIALS": "2", "CREDITRISK_GATE_MAX_ECE": "0.05",
                                  "CREDITRISK_PROMOTION_APPROVAL": "required",
                                  "CREDITRISK_ALERT_WEBHOOK_URL": webhook.url})
    result = build_definitions(required).resolve_job_def("train_and_promote").execute_in_process(
        instance=dg.DagsterInstance.ephemeral())
    assert result.success
    out = result.output_for_node("ml__promotion")
    assert out["awaiting_approval"] and not out["promoted"], out["reasons"]
    assert result.asset_materializations_for_node("ml__promotion")[0].metadata["decision"].value == "awaiting_approval"
    version = out["version"]
    assert alias_version(client, "champion") == champion and alias_version(client, "challenger") == version
    [alert] = webhook.texts("approval_required")  # whoever signs off is told, with the command to run
    assert f"challenger v{version} awaits approval" in alert and f"approve --version {version}" in alert
    monkeypatch.setenv("CREDITRISK_MLFLOW_TRACKING_URI", mlflow_server.url)
    monkeypatch.setenv("CREDITRISK_HOME", str(ml_settings.home))
    assert cli(["approve", "--version", version, "--by", "model owner", "--reason", "card reviewed"]) == 0
    assert alias_version(client, "champion") == version
    assert client.get_model_version("creditrisk-pd", version).tags["approved_by"] == "model owner"


def test_clear_errors_for_bad_training_conditions(ml_settings: Settings) -> None:
    con = Lake(ml_settings).connect_lake()
    with pytest.raises(TrainingDataError, match="matured label"):
        build_training_set(con, as_of=dt.datetime(2026, 10, 1, 1))  # nothing has matured yet
    con.close()
    with pytest.raises(MlflowUnavailable, match="CREDITRISK_MLFLOW_TRACKING_URI"):
        connect(f"http://127.0.0.1:{free_port()}")


def train_and_promote_job() -> dg.JobDefinition:
    """The job as a run process builds it, from its environment (``dg.reconstructable`` needs a module function)."""
    return build_definitions(Settings.from_env()).resolve_job_def("train_and_promote")


IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


def test_ml_outputs_travel_through_the_object_store(ml_settings: Settings, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A re-execution from failure and a single asset materialised in a fresh instance (another run pod: none of
    the first process's local files) load their inputs from the object store."""
    server = start_mlflow(tmp_path / "mlflow")
    try:
        settings = dataclasses.replace(ml_settings, mlflow_tracking_uri=server.url)
        for var, value in settings_args(settings).items():
            monkeypatch.setenv(var, value)
        server.stop()  # the evaluation fails: the models are trained and stored, nothing is registered
        (tmp_path / "pod1").mkdir()
        (tmp_path / "pod2").mkdir()
        with dg.instance_for_test(temp_dir=str(tmp_path / "pod1")) as instance:
            with dg.execute_job(dg.reconstructable(train_and_promote_job), instance, run_config=IN_PROCESS,
                                raise_on_error=False) as failed:
                assert not failed.success
                assert {e.step_key for e in failed.get_step_success_events()} == {
                    "ml__training_set", "ml__pd_baseline", "ml__pd_xgboost"}
            store = object_store_from_settings(settings)
            for asset in ("training_set", "pd_baseline", "pd_xgboost"):
                assert store.list(asset_output_key(["ml", asset])), f"ml/{asset} is not in the object store"
            shutil.rmtree(instance.storage_directory(), ignore_errors=True)  # the first pod's disk is gone
            server = restart_mlflow(server)
            with dg.execute_job(dg.reconstructable(train_and_promote_job), instance, run_config=IN_PROCESS,
                                reexecution_options=dg.ReexecutionOptions.from_failure(failed.run_id, instance)
                                ) as rerun:
                assert rerun.success
                assert {e.step_key for e in rerun.get_step_success_events()} == {"ml__evaluation", "ml__promotion"}
                assert rerun.output_for_node("ml__promotion")["promoted"]
        client = MlflowClient(server.url)
        champion = alias_version(client, "champion")
        assert champion == "1"
        # ml/promotion alone, in another fresh instance: its four inputs come from the store
        defs = build_definitions(settings)
        ml_assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)
                     and any(k.path[0] == "ml" for k in a.keys)]
        with dg.instance_for_test(temp_dir=str(tmp_path / "pod2")) as instance:
            alone = dg.materialize(ml_assets, selection=[dg.AssetKey(["ml", "promotion"])], instance=instance,
                                   resources=defs.resources)
            assert alone.success and {e.step_key for e in alone.get_step_success_events()} == {"ml__promotion"}
            assert alone.output_for_node("ml__promotion")["version"] == champion
    finally:
        server.stop()
