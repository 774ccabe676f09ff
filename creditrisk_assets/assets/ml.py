"""ml/*: training set → pd_baseline, pd_xgboost → evaluation (MLflow, registry) → promotion (gate, aliases)."""

import base64
import datetime as dt
from typing import TYPE_CHECKING, Any

import dagster as dg
import pandas as pd

from ..dagster_resources import Alerts, DuckLake, MlflowRegistry, ObjectStorage
from ..metadata import md_table
from ..modeling.dataset import TARGET, TrainingSet, build_training_set
from ..modeling.train import TrainedModel, train_baseline
from ..monitoring.alerts import Alert
from ..resources import Lake
from ..settings import Settings, mask_credentials

if TYPE_CHECKING:
    from ..modeling.scorecard import Economics

ML = "ml"


def _img(png: bytes, alt: str) -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


@dg.asset(key=[ML, "training_set"], group_name=ML, kinds={"duckdb", "pandas"},
          deps=[dg.AssetKey(["gold", "applicant_features"]), dg.AssetKey(["silver", "loan_outcome"]),
                dg.AssetKey(["silver", "application"])],
          description="Applicant features joined with matured labels, point in time, pinned to the current lake "
                      "snapshot; split by decision time into train / valid / out-of-time test. Features of source "
                      "tables without rows in silver (and features without a value in the train split) are left "
                      "out: `feature_groups_absent`, `features_dropped`.")
def training_set(context: dg.AssetExecutionContext, lake: DuckLake) -> dg.Output[TrainingSet]:
    con = lake.get_lake().connect_lake()
    try:
        ts = build_training_set(con, snapshot_id=Lake.snapshot_id(con))
    finally:
        con.close()
    dropped = pd.DataFrame({"feature": list(ts.features_dropped), "left out because": list(ts.features_dropped.values())})
    return dg.Output(ts, metadata={**{k: v for k, v in ts.lineage.items() if v is not None},
                                   "features": len(ts.features), "dagster/row_count": len(ts.frame),
                                   "feature_groups_absent": ", ".join(ts.feature_groups_absent) or "none",
                                   "features_dropped": dg.MetadataValue.md(
                                       md_table(dropped, max_rows=500, max_width=80) if len(dropped) else "none")})


@dg.asset(key=[ML, "pd_baseline"], group_name=ML, kinds={"scikitlearn"},
          ins={"ts": dg.AssetIn(key=[ML, "training_set"])},
          description="Logistic regression: median imputation + missing flags, scaling, one-hot categories.")
def pd_baseline(ts: TrainingSet) -> dg.Output[TrainedModel]:
    model = train_baseline(ts.part("train"), ts.features, ts.categorical, valid=ts.part("valid"))
    return dg.Output(model, metadata={"train_seconds": round(model.train_seconds, 2), **model.params})


@dg.asset(key=[ML, "pd_xgboost"], group_name=ML, kinds={"xgboost"},
          ins={"ts": dg.AssetIn(key=[ML, "training_set"])},
          description="XGBoost hist, seeded random search inside a time budget, early stopping on validation AUC; "
                      "in this process or on Ray Train (data-parallel workers, trials side by side) as "
                      "`CREDITRISK_TRAIN_ENGINE` chooses (`auto`: Ray from `CREDITRISK_TRAIN_RAY_MIN_ROWS` rows).")
def pd_xgboost(ts: TrainingSet, settings: dg.ResourceParam[Settings]) -> dg.Output[TrainedModel]:
    from ..modeling.distributed import train_xgboost_on, training_engine

    train = ts.part("train")
    engine = training_engine(settings, len(train))
    model = train_xgboost_on(engine, settings, train, ts.part("valid"), ts.features, ts.categorical,
                             trials=settings.train_trials, time_budget_s=settings.train_time_budget_s)
    ray_meta = ({"ray_workers": model.params["ray_workers"], "ray_trials_in_parallel": model.params["ray_trials_in_parallel"],
                 "ray_address": mask_credentials(settings.ray_address)} if engine == "ray" else {})
    return dg.Output(model, metadata={"train_seconds": round(model.train_seconds, 2), "engine": engine, **ray_meta,
                                      "best_iteration": model.params["best_iteration"],
                                      "search": dg.MetadataValue.md(md_table(pd.DataFrame(model.search)))})


@dg.asset(key=[ML, "evaluation"], group_name=ML, kinds={"mlflow"},
          ins={"ts": dg.AssetIn(key=[ML, "training_set"]), "baseline": dg.AssetIn(key=[ML, "pd_baseline"]),
               "xgb": dg.AssetIn(key=[ML, "pd_xgboost"])},
          description="Out-of-time discrimination, calibration, fairness, SHAP importance, reason codes with "
                      "adverse-action statements, scores and master-scale grades (observed vs predicted default "
                      "rate, monotonicity), cut-off economics (profit per cut-off, confusion matrix at the "
                      "threshold) and a model card for both models; both runs logged to MLflow; the better one "
                      "registered as `challenger`.")
def evaluation(context: dg.AssetExecutionContext, ts: TrainingSet, baseline: TrainedModel, xgb: TrainedModel,
               store: ObjectStorage, settings: dg.ResourceParam[Settings],
               mlflow: MlflowRegistry) -> dg.Output[dict]:
    # mlflow, scikit-learn and matplotlib load in the run that needs them, not with the Definitions
    from ..modeling.pipeline import evaluate_model, evaluation_summary, log_and_register, oracle_pd
    from ..modeling.registry import server_errors_named

    client = mlflow.client()  # fails fast, before any work is logged
    models = {"baseline": baseline, "xgboost": xgb}
    truth = oracle_pd(store.get_store(), ts.frame["sk_id_curr"])
    groups = tuple(g.strip() for g in settings.gate_fairness_groups.split(",") if g.strip())
    evals = {k: evaluate_model(m, ts, settings.decision_threshold, truth, gated_groups=groups,
                               terms=settings.credit_terms) for k, m in models.items()}
    # a server lost mid-way fails the step naming its URI; the version is complete or absent (registry.py)
    with server_errors_named(mlflow.tracking_uri, "registering the challenger"):
        candidate, logged = log_and_register(client, models, evals, ts, context.run_id)
    summary = pd.DataFrame({k: evaluation_summary(e) for k, e in evals.items()})
    best = evals[candidate]
    out = {"candidate": candidate, "version": logged[candidate].version, "run_id": logged[candidate].run_id,
           "metrics": best.metrics}
    return dg.Output(out, metadata={
        "candidate": candidate, "registered_version": logged[candidate].version or "",
        "metrics": dg.MetadataValue.md(md_table(summary.reset_index().rename(columns={"index": "metric"}))),
        "model_card": dg.MetadataValue.md(best.card),
        "plots": dg.MetadataValue.md("\n\n".join(_img(png, name) for name, png in best.plots.items())),
        "reason_codes_sample": dg.MetadataValue.md(md_table(best.reason_codes, max_width=100)),
        **(_economics_metadata(best.economics, settings.decision_threshold) if best.economics else {}),
        "mlflow_run_id": logged[candidate].run_id, "mlflow_tracking_uri": mask_credentials(mlflow.tracking_uri),
        **mlflow_links(mlflow.tracking_uri, run_id=logged[candidate].run_id,
                       experiment_id=client.get_run(logged[candidate].run_id).info.experiment_id,
                       version=logged[candidate].version),
    })


def mlflow_links(tracking_uri: str, **ids: Any) -> dict[str, Any]:
    """The MLflow run / model version as links that open (a server), else the command that opens a UI
    (a password in the URI is masked: metadata is for everyone who opens the UI)."""
    from ..modeling.registry import ui_links

    links = ui_links(tracking_uri, **ids)
    if links:
        return {k: dg.MetadataValue.url(mask_credentials(v)) for k, v in links.items()}
    return {"mlflow_ui": dg.MetadataValue.md(
        f"no MLflow server: `mlflow ui --backend-store-uri {mask_credentials(tracking_uri)}`")}


def _economics_metadata(econ: "Economics", threshold: float) -> dict[str, Any]:
    d = econ.at_threshold
    return {
        "grades": dg.MetadataValue.md(md_table(econ.grades.round(4))),
        "master_scale_monotonic": econ.monotonic,
        "profit_max_cutoff": econ.best["cutoff"], "profit_max": round(econ.best["profit"], 2),
        "decision_threshold": threshold, "profit_at_threshold": round(econ.profit_at_threshold, 2),
        "at_threshold": dg.MetadataValue.json({k: (None if v != v else round(v, 4)) for k, v in d.items()}),
    }


@dg.asset(key=[ML, "promotion"], group_name=ML, kinds={"mlflow"},
          ins={"ts": dg.AssetIn(key=[ML, "training_set"]), "evaluated": dg.AssetIn(key=[ML, "evaluation"]),
               "baseline": dg.AssetIn(key=[ML, "pd_baseline"]), "xgb": dg.AssetIn(key=[ML, "pd_xgboost"])},
          description="The gate: the challenger becomes `champion` only if performance, calibration, fairness and a "
                      "canary against the champion on the reference set are within the configured bounds (with "
                      "`CREDITRISK_PROMOTION_APPROVAL=required` it then waits for `creditrisk approve`); versions "
                      "older than the last `CREDITRISK_RETIRE_KEEP_CHAMPIONS` champions are retired.")
def promotion(context: dg.AssetExecutionContext, ts: TrainingSet, evaluated: dict, baseline: TrainedModel,
              xgb: TrainedModel, settings: dg.ResourceParam[Settings], mlflow: MlflowRegistry,
              alerts: Alerts) -> dg.Output[dict]:
    from ..modeling.pipeline import promote_if_better, reference_input
    from ..modeling.registry import alias_version, retire_older_than_champions, server_errors_named

    client = mlflow.client()
    model = {"baseline": baseline, "xgboost": xgb}[evaluated["candidate"]]
    test = ts.part("test")
    with server_errors_named(mlflow.tracking_uri, "gating the challenger"):
        # the champion scores every catalogue feature: it may use feature groups the challenger does not
        decision = promote_if_better(client, evaluated["version"], evaluated["metrics"], model.predict_pd(test),
                                     reference_input(test), settings.decision_threshold, settings.gate_policy,
                                     labels=test[TARGET].to_numpy(), approval=settings.promotion_approval)
        awaiting = decision.promote and settings.promotion_approval == "required"
        retired = [] if awaiting or not decision.promote else retire_older_than_champions(
            client, settings.retire_keep_champions, dt.datetime.now(dt.UTC).isoformat(),
            delete_model=settings.retire_artifacts == "delete")
    for reason in decision.reasons:
        (context.log.info if reason.startswith("PASS") else context.log.warning)(reason)
    champion = alias_version(client, "champion")
    if awaiting:
        command = f"creditrisk approve --version {evaluated['version']} --by NAME --reason ..."
        context.log.warning(f"challenger v{evaluated['version']} passed the gate and awaits approval: {command}")
        alerts.send(Alert(
            "approval_required", f"challenger v{evaluated['version']} awaits approval",
            f"It passed the gate; read its model card, then `{command}`.",
            {"challenger": evaluated["version"], "champion": str(champion or "none"),
             "run": str(evaluated.get("run_id", ""))}))
    if retired:
        context.log.info(f"retired version(s) {', '.join(retired)}")
    if not decision.promote:
        alerts.send(Alert(
            "promotion_refused", f"challenger v{evaluated['version']} refused",
            "; ".join(r for r in decision.reasons if not r.startswith("PASS"))[:1500],
            {"challenger": evaluated["version"], "champion": str(champion or "none")}))
    verdict = "awaiting_approval" if awaiting else "promoted" if decision.promote else "refused"
    return dg.Output({"promoted": decision.promote and not awaiting, "awaiting_approval": awaiting,
                      "version": evaluated["version"], "champion": champion, "reasons": list(decision.reasons),
                      "retired": retired},
                     metadata={"decision": verdict, "retired_versions": ", ".join(retired) or "none",
                               "challenger_version": evaluated["version"], "champion_version": str(champion or ""),
                               **mlflow_links(mlflow.tracking_uri, version=champion),
                               "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in decision.reasons))})


ML_ASSETS = [training_set, pd_baseline, pd_xgboost, evaluation, promotion]
