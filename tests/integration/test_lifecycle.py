"""The model lifecycle on a real MLflow server, through the real ``creditrisk`` CLI: a manual promotion runs the
gate (``--override`` recorded), approval when required, retirement by hand and after the last K champions."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from creditrisk_assets.cli import main as cli
from creditrisk_assets.modeling.dataset import TARGET
from creditrisk_assets.modeling.pipeline import promote_if_better
from creditrisk_assets.modeling.registry import (
    AWAITING_APPROVAL,
    REGISTERED_MODEL,
    alias_version,
    connect,
    history,
    log_model_run,
)
from creditrisk_assets.modeling.train import train_baseline
from creditrisk_assets.settings import Settings
from tests.servers import Server
from tests.unit.test_modeling import CATEGORICAL, FEATURES, synthetic

pytestmark = pytest.mark.integration
GOOD = {"auc": 0.78, "ece": 0.01, "approval_rate_ratio": 0.95, "equal_opportunity_diff": 0.03}


def register(client: MlflowClient, auc: float) -> str:
    """A real (tiny) model logged and registered with these recorded out-of-time metrics."""
    frame = synthetic(1500)
    model = train_baseline(frame[frame["split"] == "train"], FEATURES, CATEGORICAL)
    logged = log_model_run(client, model, example=frame.head(20), metrics={**GOOD, "auc": auc}, params={},
                           tags={"model_kind": "baseline"}, artifacts={"model_card.md": "# card"}, register=True)
    assert logged.version is not None
    return logged.version


def card(client: MlflowClient, version: str) -> str:
    run_id = client.get_model_version(REGISTERED_MODEL, version).run_id
    assert run_id is not None
    return Path(client.download_artifacts(run_id, "model_card.md")).read_text()


def tags(client: MlflowClient, version: str) -> dict[str, str]:
    return dict(client.get_model_version(REGISTERED_MODEL, version).tags)


def test_promote_gate_override_approval_and_retirement(tmp_path: Path, mlflow_server: Server,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CREDITRISK_HOME", str(tmp_path / "home"))  # no serving cluster recorded there
    monkeypatch.setenv("CREDITRISK_MLFLOW_TRACKING_URI", mlflow_server.url)
    client = connect(mlflow_server.url)
    v1, v2 = register(client, 0.78), register(client, 0.70)

    # manual promotion runs the gate on the recorded metrics
    assert cli(["promote", "--version", v1, "--by", "alice"]) == 0
    assert alias_version(client, "champion") == v1
    capsys.readouterr()
    assert cli(["promote", "--version", v2]) == 1
    [line] = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("creditrisk promote:")]
    assert "FAIL performance" in line and "--override" in line
    assert alias_version(client, "champion") == v1
    assert cli(["promote", "--version", v2, "--by", "alice", "--reason", "incident 42", "--override"]) == 0
    assert alias_version(client, "champion") == v2
    assert tags(client, v2)["promotion_override"] == "true"
    last = history(client)[-1]
    assert (last["version"], last["by"], last["kind"]) == (v2, "alice", "override")
    assert "incident 42" in last["reason"] and "FAIL performance" in last["reason"]

    # approval required: a challenger that passes the gate waits; only `approve` makes it champion
    v3 = register(client, 0.80)
    frame = synthetic(1500, seed=5)
    test = frame[frame["split"] == "test"]
    challenger = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL}/{v3}")
    decision = promote_if_better(client, v3, {**GOOD, "auc": 0.80}, np.asarray(challenger.predict(test[FEATURES])),
                                 test[FEATURES], 0.15, Settings().gate_policy, labels=test[TARGET].to_numpy(),
                                 approval="required")
    assert decision.promote, decision.reasons
    assert alias_version(client, "champion") == v2 and tags(client, v3)["gate_decision"] == AWAITING_APPROVAL
    assert cli(["models"]) == 0 and f"awaiting approval: {v3}" in capsys.readouterr().out
    assert cli(["approve", "--version", v2, "--by", "bob", "--reason", "x"]) == 1  # never awaited approval
    assert "not awaiting approval" in capsys.readouterr().err
    assert cli(["approve", "--version", v3, "--by", "bob", "--reason", "reviewed the card"]) == 0
    assert alias_version(client, "champion") == v3
    t = tags(client, v3)
    assert (t["approval"], t["approved_by"], t["approval_reason"], t["gate_decision"]) == (
        "approved", "bob", "reviewed the card", "promoted")
    assert (history(client)[-1]["by"], history(client)[-1]["kind"]) == ("bob", "approval")
    sign_off = card(client, v3).split("## Sign-off", 1)[1].strip().splitlines()
    assert len(sign_off) == 3 and "| approval | bob |" in sign_off[2] and "reviewed the card" in sign_off[2]

    # retirement by hand: never the champion; aliases go, the artefacts stay; a retired version is not promoted
    assert cli(["retire", "--version", v3]) == 1
    assert "is the champion" in capsys.readouterr().err
    client.set_registered_model_alias(REGISTERED_MODEL, "challenger", v1)
    assert cli(["retire", "--version", v1, "--reason", "superseded", "--by", "carol"]) == 0
    assert alias_version(client, "challenger") is None
    assert (tags(client, v1)["retired"], tags(client, v1)["retired_reason"]) == ("true", "superseded")
    uri = client.get_model_version_download_uri(REGISTERED_MODEL, v1)
    assert "MLmodel" in {Path(a.path).name for a in mlflow.artifacts.list_artifacts(artifact_uri=uri)}
    assert cli(["promote", "--version", v1, "--override"]) == 1
    assert "retired" in capsys.readouterr().err and alias_version(client, "champion") == v3

    # automatic retirement: with the last 2 champions kept, every older version without an alias is retired
    monkeypatch.setenv("CREDITRISK_RETIRE_KEEP_CHAMPIONS", "2")
    v4 = register(client, 0.81)
    assert cli(["promote", "--version", v4]) == 0
    assert f"retired: version(s) {v2}" in capsys.readouterr().out
    assert tags(client, v2)["retired"] == "true" and "retired" not in tags(client, v3)
    assert cli(["rollback", "--by", "dave"]) == 0  # the kept previous champion is still a rollback target
    assert alias_version(client, "champion") == v3 and history(client)[-1]["kind"] == "rollback"

    # retention: with CREDITRISK_RETIRE_ARTIFACTS=delete the model files go; the run and its model card stay
    monkeypatch.setenv("CREDITRISK_RETIRE_ARTIFACTS", "delete")
    assert cli(["retire", "--version", v4, "--reason", "superseded", "--by", "carol"]) == 0
    assert "model files deleted" in capsys.readouterr().out
    assert tags(client, v4)["model_artifact"] == "deleted" and tags(client, v4)["retired"] == "true"
    gone = client.get_model_version_download_uri(REGISTERED_MODEL, v4)
    assert mlflow.artifacts.list_artifacts(artifact_uri=gone) == []
    assert card(client, v4).startswith("# card")  # the documentation is kept
    assert "MLmodel" in {Path(a.path).name for a in mlflow.artifacts.list_artifacts(
        artifact_uri=client.get_model_version_download_uri(REGISTERED_MODEL, v3))}  # others untouched
    rows = card(client, v3).split("## Sign-off", 1)[1].strip().splitlines()[2:]  # the card keeps every sign-off
    assert [r.split(" | ")[1:3] for r in rows] == [["approval", "bob"], ["rollback", "dave"]]
    assert card(client, v3).count("## Sign-off") == 1 and card(client, v3).startswith("# card")
