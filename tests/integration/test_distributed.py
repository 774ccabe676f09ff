"""Training on Ray Train and batch scoring on Ray Data agree with the single-process paths (real gold, a real
MLflow server, a private Ray started by the job itself: not the serving cluster)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from creditrisk_assets.assets.ml import pd_xgboost, training_set
from creditrisk_assets.dagster_resources import resources_for
from creditrisk_assets.modeling import registry
from creditrisk_assets.modeling.dataset import TARGET, build_training_set
from creditrisk_assets.modeling.distributed import ray_runtime
from creditrisk_assets.modeling.train import SEARCH_SPACE, search_candidates, train_xgboost
from creditrisk_assets.resources import Lake, object_store_from_settings
from creditrisk_assets.settings import Settings
from serving.batch import score_batch
from serving.models import load_scorer
from serving.scoring import score_frame
from tests.helpers import build_gold, gold_features
from tests.servers import Server

pytestmark = [pytest.mark.integration, pytest.mark.ray]
TRIALS = 2
#: validation AUC of the same candidate trained by 2 data-parallel workers vs one process: the workers' merged
#: quantile sketches and row sampling differ from one process's, so the trees differ a little
AUC_TOLERANCE = 0.03


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, mlflow_server: Server) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("distributed") / "home"
    settings = Settings.from_env({"CREDITRISK_HOME": str(home), "CREDITRISK_MLFLOW_TRACKING_URI": mlflow_server.url,
                                  "CREDITRISK_PARALLELISM": "2", "CREDITRISK_TRAIN_TRIALS": str(TRIALS),
                                  "CREDITRISK_TRAIN_TIME_BUDGET_S": "3600", "CREDITRISK_RAY_ADDRESS": "local"})
    store = object_store_from_settings(settings)
    build_gold(settings, store, hours=24, rows_per_hour=100)
    with Lake(settings).connect_lake() as con:
        ts = build_training_set(con)
    return {"settings": settings, "store": store, "ts": ts}


def test_ray_train_search_agrees_with_the_local_search(world: dict[str, Any]) -> None:
    import ray

    settings, ts = dataclasses.replace(world["settings"], train_engine="ray"), world["ts"]
    local = train_xgboost(ts.part("train"), ts.part("valid"), ts.features, ts.categorical, trials=TRIALS,
                          time_budget_s=3600, threads=2)
    result = dg.materialize([training_set, pd_xgboost], resources={"settings": settings, **resources_for(settings)})
    assert result.success
    meta = result.asset_materializations_for_node("ml__pd_xgboost")[0].metadata
    assert meta["engine"].value == "ray" and meta["ray_workers"].value == 2
    model = result.output_for_node("ml__pd_xgboost")
    assert not ray.is_initialized(), "the job's private Ray is shut down after training"
    assert model.params["engine"] == "ray" and local.params["engine"] == "local"
    candidates = search_candidates(trials=TRIALS)
    for m in (local, model):  # the same candidates, in the same order
        assert [{k: row[k] for k in SEARCH_SPACE} for row in m.search] == candidates, m.search
    for on_ray, here in zip(model.search, local.search, strict=True):
        assert abs(on_ray["valid_auc"] - here["valid_auc"]) < AUC_TOLERANCE, (on_ray, here)
    best = max(model.search, key=lambda r: r["valid_auc"])
    assert model.params["best_iteration"] == best["best_iteration"]  # the best trial by validation AUC won
    test = ts.part("test")
    aucs = [roc_auc_score(test[TARGET], m.predict_pd(test)) for m in (local, model)]
    assert abs(aucs[0] - aucs[1]) < AUC_TOLERANCE and min(aucs) > 0.6, aucs
    assert "calibration" in model.params and model.contributions(test.head(5)).shape == (5, len(ts.features))


def test_batch_scores_are_identical_on_both_engines(world: dict[str, Any]) -> None:
    import ray

    settings, store, ts = world["settings"], world["store"], world["ts"]
    client = registry.connect(settings.resolved_mlflow_uri, settings.mlflow_artifact_location)
    model = train_xgboost(ts.part("train"), ts.part("valid"), ts.features, ts.categorical,
                          candidates=[{"max_depth": 4, "eta": 0.1}], num_boost_round=80, threads=2)
    logged = registry.log_model_run(client, model, example=ts.part("test"), metrics={"auc": 0.7}, params={},
                                    tags={"lineage.lake_snapshot_id": "1"}, artifacts={}, register=True)
    assert logged.version is not None
    registry.set_champion(client, logged.version, "test", "2026-10-02T00:00:00")
    gold = gold_features(settings)
    rows = 700
    assert len(gold) > 2 * rows  # several batches
    outputs, results = {}, {}
    for engine in ("local", "ray"):
        s = dataclasses.replace(settings, batch_scoring_engine=engine, batch_scoring_rows=rows)
        # inside a job's Ray (training starts it the same way: see the test above), scoring shares it
        with ray_runtime(s.ray_address, s.workers) if engine == "ray" else contextlib.nullcontext():
            results[engine] = score_batch(s, store, Lake(s))
            assert ray.is_initialized() == (engine == "ray")
        outputs[engine] = store.get_bytes(results[engine].output_key)
    assert not ray.is_initialized()
    local, on_ray = results["local"], results["ray"]
    assert (local.engine, on_ray.engine) == ("local", "ray")
    assert local.batches == on_ray.batches == math.ceil(len(gold) / rows) > 1
    assert local.rows == on_ray.rows == len(gold)
    assert pq.ParquetFile(io.BytesIO(outputs["ray"])).metadata.num_row_groups == on_ray.batches
    tables = {k: pq.read_table(io.BytesIO(v)) for k, v in outputs.items()}
    assert tables["ray"].equals(tables["local"])  # same rows, same order, same scores, same types
    pd.testing.assert_frame_equal(on_ray.grades, local.grades)
    assert on_ray.decline_rate == local.decline_rate
    scored = tables["ray"].to_pandas()
    assert scored["sk_id_curr"].tolist() == gold["sk_id_curr"].tolist()  # every application, by key
    # and both are what the single-process path gives for the whole frame at once
    whole = score_frame(load_scorer(settings, logged.version), gold, reasons=settings.serve_reason_codes)
    np.testing.assert_array_equal(scored["pd"].to_numpy(), whole["pd"].to_numpy())
    assert scored[["score", "grade", "decision", "reason_codes"]].astype(str).equals(
        whole[["score", "grade", "decision", "reason_codes"]].astype(str).reset_index(drop=True))
    expected = (whole.assign(declined=whole["decision"] == "decline").groupby("grade")
                .agg(applications=("pd", "size"), mean_pd=("pd", "mean"), mean_score=("score", "mean"),
                     decline_rate=("declined", "mean")).reset_index())
    pd.testing.assert_frame_equal(local.grades, expected, check_exact=False, rtol=1e-9, check_dtype=False)
