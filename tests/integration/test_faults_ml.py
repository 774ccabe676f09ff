"""Fault: the MLflow tracking server SIGKILLed in the middle of ml/evaluation's registration.

A dedicated real ``mlflow server`` (its own port, SQLite backend and artifact root) holds a champion
(v1) registered and promoted through the real ``ml/evaluation`` and ``ml/promotion`` assets. The
evaluation step then runs again and the server's whole process group is SIGKILLed at a fixed point of
the registration, triggered from registry.py's own call sites (nothing of MLflow is mocked): when the
candidate's model artefact upload starts, or right after ``create_model_version`` returned. The step
must fail fast with an error naming the tracking URI; after a restart on the same backend store and
artifact root no version may lack its model artefact or its tags, and the champion must not have
moved; a rerun then registers a complete version.

The training set is synthetic (a few columns, no dbt): the registration path does not depend on where
the rows came from, and the test stays ~30 s.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import hypothesis  # noqa: F401 - see below
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from creditrisk_assets.assets.ml import evaluation, promotion
from creditrisk_assets.dagster_resources import resources_for
from creditrisk_assets.modeling import registry
from creditrisk_assets.modeling.dataset import TARGET, TrainingSet, age_band, time_split
from creditrisk_assets.modeling.train import TrainedModel, train_baseline, train_xgboost
from creditrisk_assets.resources import object_store_from_settings
from creditrisk_assets.settings import Settings
from tests.servers import Server, restart_mlflow, start_mlflow

# hypothesis is imported here, at collection, not first by its pytest plugin's terminal summary: run on its own,
# this module otherwise ends with "SystemError: AST constructor recursion depth mismatch" from assertion
# rewriting after every test passed (pytest exits 1): a CPython 3.11 bug in the AST constructor's recursion
# accounting, seen in threaded processes (python/cpython#106905, pytest-dev/pytest#10763); not reproduced
# outside pytest here.
pytestmark = pytest.mark.integration
FEATURES = ["ext_score", "debt_ratio", "income", "tenure_years", "product"]


def synthetic_training_set(n: int = 1600, seed: int = 5) -> TrainingSet:
    """Applications with a learnable default signal, split by decision time like build_training_set."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "sk_id_curr": np.arange(100_000, 100_000 + n),
        "decision_time": pd.Timestamp("2026-10-01") + pd.to_timedelta(np.sort(rng.uniform(0, 72, n)), unit="h"),
        "ext_score": rng.normal(0, 1, n), "debt_ratio": rng.normal(0, 1, n),
        "income": rng.lognormal(10, 0.5, n), "tenure_years": rng.uniform(0, 30, n),
        "product": rng.choice(["cash", "revolving", "pos"], n),
        "gender": rng.choice(["F", "M"], n), "age_years": rng.uniform(20, 70, n),
    })
    logit = -1.6 - 1.1 * frame["ext_score"] + 0.8 * frame["debt_ratio"] + 0.5 * (frame["product"] == "pos")
    frame[TARGET] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame["split"] = time_split(frame)
    frame["age_band"] = age_band(frame["age_years"])
    lineage: dict[str, str | int | float | None] = {"lake_snapshot_id": 1, "git_sha": "test", "rows": n}
    return TrainingSet(frame.drop(columns=["age_years"]), FEATURES, ["product"], lineage)


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A dedicated mlflow server (always the current one in ``servers[-1]``, stopped by PID at the end),
    settings pointing at it, a trained pair of models and champion v1 promoted through the assets."""
    servers: list[Server] = [start_mlflow(tmp_path / "mlflow")]
    try:
        settings = Settings.from_env({
            "CREDITRISK_HOME": str(tmp_path / "home"), "CREDITRISK_MLFLOW_TRACKING_URI": servers[0].url,
            # the gate on ~240 synthetic test rows: loose bounds, v1 must pass (the gate is not under test)
            "CREDITRISK_GATE_MIN_AUC": "0.55", "CREDITRISK_GATE_MAX_ECE": "0.25",
            "CREDITRISK_GATE_MIN_APPROVAL_RATIO": "0.5", "CREDITRISK_GATE_MAX_EQUAL_OPPORTUNITY_DIFF": "0.6"})
        store = object_store_from_settings(settings)
        ts = synthetic_training_set()
        models = {"baseline": train_baseline(ts.part("train"), ts.features, ts.categorical, valid=ts.part("valid")),
                  "xgb": train_xgboost(ts.part("train"), ts.part("valid"), ts.features, ts.categorical, trials=1)}
        first = run_evaluation(ts, models, settings)
        promoted = run_promotion(ts, first, models, settings)
        assert first["version"] == "1" and promoted["promoted"], promoted["reasons"]
        client = MlflowClient(servers[0].url)
        assert registry.alias_version(client, registry.CHAMPION) == "1"
        yield {"servers": servers, "settings": settings, "store": store, "ts": ts, "models": models,
               "history": registry.history(client)}
    finally:
        for server in servers:
            server.stop(grace_s=10)


def run_evaluation(ts: TrainingSet, models: dict[str, TrainedModel], settings: Settings) -> dict:
    """The ml/evaluation step itself (the asset's own function, its resources given directly)."""
    typed = resources_for(settings)
    out = evaluation(dg.build_asset_context(), ts=ts, baseline=models["baseline"], xgb=models["xgb"],
                     store=typed["store"], settings=settings, mlflow=typed["mlflow"])
    return out.value


def run_promotion(ts: TrainingSet, evaluated: dict, models: dict[str, TrainedModel], settings: Settings) -> dict:
    typed = resources_for(settings)
    out = promotion(dg.build_asset_context(), ts=ts, evaluated=evaluated, baseline=models["baseline"],
                    xgb=models["xgb"], settings=settings, mlflow=typed["mlflow"], alerts=typed["alerts"])
    return out.value


def sigkill(server: Server) -> None:
    """SIGKILL the server's process group, reap it, and wait (bounded) until its port refuses connections."""
    os.killpg(server.pid, signal.SIGKILL)
    server.proc.wait(timeout=10)
    port = server.extra["port"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"port {port} still accepts connections after SIGKILL of mlflow {server.pid}")


def version_report(client: MlflowClient) -> dict[str, dict[str, Any]]:
    """Every registered version: tags, status and the file names at its download URI (read from the server
    and the artifact root, independently of registry.version_problem)."""
    out = {}
    for mv in client.search_model_versions(f"name='{registry.REGISTERED_MODEL}'"):
        uri = client.get_model_version_download_uri(registry.REGISTERED_MODEL, mv.version)
        files = {Path(f.path).name for f in mlflow.artifacts.list_artifacts(artifact_uri=uri)}
        out[str(mv.version)] = {"tags": dict(mv.tags), "status": mv.status, "files": files, "run_id": mv.run_id}
    return out


def assert_every_version_complete_or_failed(client: MlflowClient) -> dict[str, dict[str, Any]]:
    report = version_report(client)
    aliased = {registry.alias_version(client, a) for a in (registry.CHAMPION, registry.CHALLENGER)}
    for version, r in report.items():
        if r["tags"].get(registry.REGISTRATION) == registry.FAILED:  # marked: allowed, but never in use
            assert version not in aliased, (version, r)
            continue
        assert r["status"] == "READY", (version, r)
        assert {"MLmodel", "python_model.pkl"} <= r["files"], (version, r)  # its model artefact
        assert r["tags"].get(registry.REGISTRATION) == registry.COMPLETE, (version, r)
        assert r["tags"].get(registry.GATE_DECISION) in {registry.PENDING, "promoted", "refused"}, (version, r)
        assert r["tags"].get("model_kind") and r["tags"].get("lineage.lake_snapshot_id") == "1", (version, r)
        assert client.get_run(r["run_id"]).data.metrics.get("auc") is not None, (version, r)  # what the gate reads
    return report


def _kill_at_upload(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """SIGKILL when the candidate's model artefact upload starts (the second model logged: the candidate is
    logged last)."""
    killed: list[float] = []
    original: Callable[..., Any] = registry._log_model

    def hook(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            sigkill(world["servers"][-1])
            killed.append(time.monotonic())
        return original(*args, **kwargs)

    calls: list[int] = []
    monkeypatch.setattr(registry, "_log_model", hook)
    return killed


def _kill_after_create(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """SIGKILL right after ``create_model_version`` returned (before the challenger alias moves)."""
    killed: list[float] = []
    original: Callable[..., Any] = registry._register_version

    def hook(*args: Any, **kwargs: Any) -> Any:
        version = original(*args, **kwargs)
        sigkill(world["servers"][-1])
        killed.append(time.monotonic())
        return version

    monkeypatch.setattr(registry, "_register_version", hook)
    return killed


@pytest.mark.parametrize("kill_at", ["model_upload", "after_create_model_version"])
def test_mlflow_killed_during_registration_leaves_no_half_version_and_rerun_is_clean(
        world: dict[str, Any], kill_at: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings, servers = world["settings"], world["servers"]
    url = servers[-1].url
    before = version_report(MlflowClient(url))
    assert set(before) == {"1"}

    with monkeypatch.context() as m:
        killed = (_kill_at_upload if kill_at == "model_upload" else _kill_after_create)(world, m)
        with pytest.raises(registry.MlflowUnavailable) as failure:
            run_evaluation(world["ts"], world["models"], settings)
    assert killed, "the kill hook never ran: the registration path changed"
    failed_after_s = time.monotonic() - killed[0]
    message = str(failure.value)
    assert url in message and "CREDITRISK_MLFLOW_TRACKING_URI" in message, message
    assert failed_after_s < 30, f"a dead server took {failed_after_s:.1f} s to fail the step (retries unbounded?)"
    assert mlflow.active_run() is None  # no run left active in this process: the rerun can start its own

    servers.append(restart_mlflow(servers[-1]))
    assert servers[-1].url == url
    client = MlflowClient(url)
    after = assert_every_version_complete_or_failed(client)
    assert registry.alias_version(client, registry.CHAMPION) == "1"
    assert registry.history(client) == world["history"]
    if kill_at == "model_upload":
        assert set(after) == {"1"}  # the killed candidate never became a version
    else:
        assert set(after) == {"1", "2"}  # created with its tags in one call: complete, never gated
        assert after["2"]["tags"][registry.GATE_DECISION] == registry.PENDING
    assert registry.alias_version(client, registry.CHALLENGER) == "1"  # the alias did not move to a dead run

    rerun = run_evaluation(world["ts"], world["models"], settings)
    expected = str(len(after) + 1)
    assert rerun["version"] == expected
    final = assert_every_version_complete_or_failed(client)
    assert set(final) == set(after) | {expected}
    assert final[expected]["tags"][registry.REGISTRATION] == registry.COMPLETE
    assert registry.alias_version(client, registry.CHALLENGER) == expected
    assert registry.alias_version(client, registry.CHAMPION) == "1"
    champion = mlflow.pyfunc.load_model(f"models:/{registry.REGISTERED_MODEL}@champion")  # its artefact survived
    pd_ = np.asarray(champion.predict(world["models"]["xgb"].input_frame(world["ts"].part("test").head(5))))
    assert pd_.shape == (5,) and ((pd_ > 0) & (pd_ < 1)).all()
