"""Loading registered model versions for serving (MLflow registry → Scorer)."""

from __future__ import annotations

import mlflow

from creditrisk_assets.modeling import registry
from creditrisk_assets.settings import Settings

from .scoring import ModelInfo, Scorer


def load_scorer(settings: Settings, version: str, alias: str = "") -> Scorer:
    """The registered version ``version`` of ``creditrisk-pd`` as a Scorer, with what ``/v1/model`` shows."""
    client = registry.connect_for(settings)
    mv = client.get_model_version(registry.REGISTERED_MODEL, version)
    if mv.run_id is None:
        raise ValueError(f"model version {version} has no source run")
    model = mlflow.pyfunc.load_model(f"models:/{registry.REGISTERED_MODEL}/{version}")
    trained = model.unwrap_python_model().trained
    run = client.get_run(mv.run_id)
    tags = run.data.tags
    info = ModelInfo(name=registry.REGISTERED_MODEL, version=str(version), alias=alias, run_id=mv.run_id,
                     kind=trained.kind, training_snapshot=tags.get("lineage.lake_snapshot_id", ""),
                     metrics={k: round(v, 5) for k, v in run.data.metrics.items()},
                     tags={k: v for k, v in tags.items() if not k.startswith("mlflow.")})
    return Scorer(trained, info, settings.decision_threshold, settings.credit_terms)
