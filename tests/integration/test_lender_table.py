"""A lender's single table, end to end: ``creditrisk import table`` → bronze → silver → gold (dbt) → a
training set without the feature groups the lender has no data for → a model with real signal, whose
card names what was left out, which serves from the application features alone, and which the gate
can compare with a champion trained on other feature groups."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import dagster as dg
import numpy as np
import pytest
from mlflow.exceptions import MlflowException
from sklearn.metrics import roc_auc_score

from creditrisk_assets.assets.ml import training_set
from creditrisk_assets.dagster_resources import resources_for
from creditrisk_assets.gold.build import run_dbt
from creditrisk_assets.gold.catalogue import features
from creditrisk_assets.ingest.mapping import main
from creditrisk_assets.layout import import_report_key
from creditrisk_assets.modeling.dataset import TARGET, TrainingSet, build_training_set, no_rows
from creditrisk_assets.modeling.pipeline import canary, evaluate_model, log_and_register, reference_input
from creditrisk_assets.modeling.registry import CHAMPION, connect, set_champion
from creditrisk_assets.modeling.train import TrainedModel, train_baseline
from creditrisk_assets.quality.runner import SilverRun, ingest_to_silver
from creditrisk_assets.resources import FolderStore, Lake, ObjectStore, object_store_from_settings
from creditrisk_assets.settings import Settings
from serving.schemas import RequestError, RequestParser
from serving.scoring import ModelInfo, Scorer
from tests.servers import Server
from tests.unit.test_mapping import header, lender_mapping, lender_table, write_mapping

pytestmark = pytest.mark.integration
HOURS, ROWS_PER_HOUR = 30, 50  # 1,500 applications: ~225 in the out-of-time test split
ROWS = HOURS * ROWS_PER_HOUR


@dataclass
class LenderLake:
    settings: Settings
    store: ObjectStore
    report: dict
    silver: dict[str, SilverRun]
    ts: TrainingSet
    model: TrainedModel  # the baseline on the lender's training set


@pytest.fixture(scope="module")
def lender(tmp_path_factory: pytest.TempPathFactory) -> LenderLake:
    """The lender's CSV imported with the CLI, taken through silver and gold, its training set, a baseline."""
    tmp = tmp_path_factory.mktemp("lender")
    settings = Settings.from_env({"CREDITRISK_HOME": str(tmp / "home")})
    store = object_store_from_settings(settings)
    source = lender_table(FolderStore(tmp / "simulated"), tmp / "loans.csv", hours=HOURS,
                          rows_per_hour=ROWS_PER_HOUR, seed=11)
    mapping = write_mapping(tmp / "lender.yml", lender_mapping(header(source)))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CREDITRISK_HOME", str(settings.home))  # the command builds its settings from the env
        assert main(["--source", str(source), "--mapping", str(mapping), "--import-id", "lender",
                     "--no-progress"]) == 0
    report = json.loads(store.get_bytes(import_report_key("table", "lender")))
    hours = [dt.datetime.strptime(h, "%Y-%m-%dT%H:%M") for h in report["hours"]]
    silver = ingest_to_silver(store, Lake(settings), settings, hours, "lender")
    run_dbt(settings, ["run"])
    con = Lake(settings).connect_lake()
    try:
        ts = build_training_set(con, snapshot_id=Lake.snapshot_id(con))
    finally:
        con.close()
    model = train_baseline(ts.part("train"), ts.features, ts.categorical, valid=ts.part("valid"))
    return LenderLake(settings, store, report, silver, ts, model)


def test_a_lender_table_trains_on_its_applications_alone(lender: LenderLake) -> None:
    report, ts = lender.report, lender.ts
    assert report["tables"]["application"]["written"] == report["tables"]["loan_outcome"]["written"] == ROWS
    assert {o.key.split("/")[1] for o in lender.store.list("landing/")} == {"application", "loan_outcome"}
    assert lender.silver["application"].accounting.silver_rows == ROWS, "every imported application passes silver"
    assert lender.silver["loan_outcome"].accounting.silver_rows == ROWS
    assert len(ts.frame) == ROWS

    catalogue = {f.name: f for f in features()}
    others = list(dict.fromkeys(f.source for f in catalogue.values() if f.source != "application"))
    assert {"bureau", "bureau_balance", "previous_application", "installments_payments",
            "credit_card_balance"} <= set(others)
    assert ts.feature_groups_absent == others, "every group but the application's has no rows"
    assert ts.features and all(catalogue[f].source == "application" for f in ts.features)
    assert {f for f, c in catalogue.items() if c.source != "application"} <= set(ts.features_dropped)
    assert ts.features_dropped["bureau_credit_count"] == no_rows("bureau")
    assert set(ts.categorical) <= set(ts.features)

    model, test = lender.model, ts.part("test")
    assert model.features == ts.features
    auc = roc_auc_score(test[TARGET], model.predict_pd(test))
    assert auc > 0.6, f"out-of-time AUC {auc:.3f} from the application alone"
    card = evaluate_model(model, ts, lender.settings.decision_threshold, None).card
    assert "- Feature groups left out: bureau (no rows), " in card
    assert f"- Features left out ({no_rows('bureau')}): " in card

    # the ml asset's metadata names the groups and features left out
    result = dg.materialize([training_set], resources={"lake": resources_for(lender.settings)["lake"]})
    meta = result.asset_materializations_for_node("ml__training_set")[0].metadata
    assert meta["feature_groups_absent"].value == ", ".join(others)
    assert "bureau_credit_count" in str(meta["features_dropped"].value)
    assert meta["features"].value == len(ts.features)


def test_serving_needs_only_the_models_features(lender: LenderLake) -> None:
    model, test = lender.model, lender.ts.part("test").head(20)
    body = json.dumps(json.loads(test[model.features].to_json(orient="records"))).encode()
    with pytest.raises(RequestError) as err:
        RequestParser(100, 10**6).parse(body)  # the whole catalogue requires e.g. the bureau counts
    assert any(e["field"].endswith("bureau_credit_count") for e in err.value.errors)
    parsed, _ = RequestParser(100, 10**6, used=model.features).parse(body)
    scorer = Scorer(model, ModelInfo("creditrisk-pd", "1", "champion"), lender.settings.decision_threshold,
                    lender.settings.credit_terms)
    np.testing.assert_allclose(scorer.predict(parsed), model.predict_pd(test), rtol=1e-6, atol=1e-9)
    noisy = [{**r, "bureau_credit_count": 40} for r in parsed]  # sent, checked, ignored
    np.testing.assert_array_equal(scorer.predict(noisy), scorer.predict(parsed))


@pytest.mark.filterwarnings("ignore:Skipping features without any observed values")  # the champion's empty groups
def test_the_gate_compares_with_a_champion_trained_on_other_groups(lender: LenderLake, mlflow_server: Server) -> None:
    """A champion that uses the whole catalogue (as it would after a full-data training) scores the canary's
    reference set, which carries every catalogue feature; the challenger's own input would lack some."""
    ts, challenger, threshold = lender.ts, lender.model, lender.settings.decision_threshold
    every = [f.name for f in features()]
    full = TrainingSet(ts.frame, every, [f.name for f in features() if f.data_type == "varchar"], ts.lineage)
    champion = train_baseline(full.part("train"), full.features, full.categorical, valid=full.part("valid"))
    client = connect(mlflow_server.url)
    _, logged = log_and_register(client, {"baseline": champion},
                                 {"baseline": evaluate_model(champion, full, threshold, None)}, full, "full")
    assert logged["baseline"].version is not None
    set_champion(client, logged["baseline"].version, "trained on the whole catalogue", "2026-12-01T00:00:00")
    tags = client.get_run(logged["baseline"].run_id).data.tags
    assert tags["feature_groups_absent"] == "none"

    test = ts.part("test")
    out = canary(client, challenger.predict_pd(test), reference_input(test), threshold, test[TARGET].to_numpy())
    assert out is not None
    assert out["champion_auc"] == pytest.approx(roc_auc_score(test[TARGET], champion.predict_pd(test)))
    with pytest.raises(MlflowException, match="bureau_credit_count"):  # what the challenger's own input lacks
        canary(client, challenger.predict_pd(test), challenger.input_frame(test), threshold)
    assert client.get_model_version_by_alias("creditrisk-pd", CHAMPION).version == logged["baseline"].version
