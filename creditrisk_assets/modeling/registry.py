"""MLflow: tracking runs, one registered model (``creditrisk-pd``) with aliases, promotion history.

Aliases move without history, so every move is also recorded: a tag on the version
(``promoted_at``, ``previous_champion``) and a JSON list on the registered model
(``champion_history``) that ``rollback`` walks back.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.pyfunc import PythonModel

from .train import TrainedModel

REGISTERED_MODEL = "creditrisk-pd"
EXPERIMENT = "creditrisk-pd"
CHAMPION, CHALLENGER = "champion", "challenger"


class MlflowUnavailable(RuntimeError):
    """The tracking server cannot be used; the message names the setting to fix."""


class PdModel(PythonModel):
    """The pyfunc wrapper served everywhere: raw feature columns in, PD out (both model kinds)."""

    def __init__(self, trained: TrainedModel) -> None:
        self.trained = trained

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        return self.trained.predict_pd(model_input)


def connect(tracking_uri: str, artifact_location: str | None = None) -> MlflowClient:
    """Point MLflow at ``tracking_uri`` and fail fast (one clear error) when a server is unreachable.

    ``artifact_location`` is used when the experiment is created (local stores keep artifacts in the
    data home, not in the working directory); a server's own default applies otherwise.
    """
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    if tracking_uri.startswith("http"):
        try:
            with urllib.request.urlopen(tracking_uri.rstrip("/") + "/health", timeout=3) as r:  # noqa: S310
                r.read()
        except (urllib.error.URLError, OSError) as exc:
            raise MlflowUnavailable(f"MLflow tracking server {tracking_uri} is unreachable ({exc}): "
                                    "check CREDITRISK_MLFLOW_TRACKING_URI") from exc
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    if client.get_experiment_by_name(EXPERIMENT) is None:
        client.create_experiment(EXPERIMENT, artifact_location=artifact_location)
    mlflow.set_experiment(EXPERIMENT)
    return client


@dataclass
class LoggedModel:
    run_id: str
    version: str | None  # registered model version (None when not registered)
    model_uri: str


def log_model_run(client: MlflowClient, trained: TrainedModel, *, example: pd.DataFrame,
                  metrics: dict[str, float], params: dict[str, Any], tags: dict[str, str],
                  artifacts: dict[str, bytes | str], register: bool) -> LoggedModel:
    """One MLflow run: params, metrics, tags, artifacts, then the model (registered last, so a
    failure before it leaves no half-registered version)."""
    with mlflow.start_run(run_name=f"pd_{trained.kind}", tags=tags) as run:
        mlflow.log_params({k: v for k, v in params.items() if v is not None})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)})
        with tempfile.TemporaryDirectory(prefix="creditrisk-mlflow-") as tmp:
            for name, content in artifacts.items():
                path = Path(tmp) / name
                path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
                mlflow.log_artifact(str(path))
        x = trained.input_frame(example)
        info = mlflow.pyfunc.log_model(
            name="model", python_model=PdModel(trained), input_example=x.head(5),
            signature=infer_signature(x, trained.predict_pd(x)),
            pip_requirements=["xgboost-cpu==3.2.0", "scikit-learn==1.9.1", "pandas==2.3.3", "mlflow==3.17.2"],
            registered_model_name=REGISTERED_MODEL if register else None,
        )
        version = str(info.registered_model_version) if register and info.registered_model_version else None
        return LoggedModel(run.info.run_id, version, info.model_uri)


def alias_version(client: MlflowClient, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(REGISTERED_MODEL, alias).version)
    except MlflowException:
        return None


def version_metrics(client: MlflowClient, version: str) -> dict[str, float]:
    mv = client.get_model_version(REGISTERED_MODEL, version)
    if mv.run_id is None:  # registered from outside a run; every version this project registers has one
        raise MlflowException(f"{REGISTERED_MODEL} version {version} has no source run to read metrics from")
    return dict(client.get_run(mv.run_id).data.metrics)


def history(client: MlflowClient) -> list[dict[str, str]]:
    try:
        tags = client.get_registered_model(REGISTERED_MODEL).tags
    except MlflowException:
        return []
    return json.loads(tags.get("champion_history", "[]"))


def set_champion(client: MlflowClient, version: str, reason: str, at: str) -> str | None:
    """Move ``champion`` to ``version`` and record the move; returns the previous champion."""
    previous = alias_version(client, CHAMPION)
    client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, version)
    client.set_model_version_tag(REGISTERED_MODEL, version, "promoted_at", at)
    client.set_model_version_tag(REGISTERED_MODEL, version, "previous_champion", previous or "")
    client.set_model_version_tag(REGISTERED_MODEL, version, "promotion_reason", reason[:4000])
    moves = history(client) + [{"version": version, "previous": previous or "", "at": at, "reason": reason[:500]}]
    client.set_registered_model_tag(REGISTERED_MODEL, "champion_history", json.dumps(moves[-50:]))
    return previous


def rollback(client: MlflowClient, at: str) -> str:
    """Put the champion before the current one back; returns the version now champion."""
    current = alias_version(client, CHAMPION)
    previous = next((m["previous"] for m in reversed(history(client)) if m["version"] == current and m["previous"]),
                    None)
    if not previous:
        raise ValueError(f"no earlier champion to roll back to (current: {current})")
    set_champion(client, previous, f"rollback from version {current}", at)
    return previous
