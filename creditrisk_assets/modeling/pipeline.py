"""Evaluate → log → register → gate → promote: what the ml assets call, one function each."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from sklearn.metrics import roc_auc_score

from ..gold.catalogue import features
from ..layout import ORACLE_PREFIX, ORACLE_TRUTH_NAME
from ..monitoring import stability as st
from ..resources import ObjectStore
from ..simulate import bayes_optimal_auc
from . import evaluate as ev
from . import scorecard as sc
from .dataset import TARGET, TrainingSet
from .gate import Decision, GatePolicy, decide
from .reasons import statements_for
from .registry import (
    CHALLENGER,
    CHAMPION,
    MODEL_CARD,
    LoggedModel,
    alias_version,
    log_model_run,
    request_approval,
    set_champion,
    sign_off_lines,
    version_metrics,
)
from .train import TrainedModel

INTENDED_USE = ("Probability of default at origination for consumer cash and revolving loans, used with a "
                "decision threshold and reason codes. Not for collections, pricing or any use outside the "
                "population it was trained on.")


@dataclass
class Evaluation:
    kind: str
    metrics: dict[str, float]
    calibration: pd.DataFrame
    fairness: dict[str, pd.DataFrame]
    importance: pd.DataFrame
    reason_codes: pd.DataFrame  # a sample of applications with their top adverse factors and statements
    plots: dict[str, bytes] = field(default_factory=dict)
    card: str = ""
    economics: sc.Economics | None = None  # scores, grades, cut-off economics
    stability: st.StabilityResult | None = None  # out-of-time population against the training population


def oracle_pd(store: ObjectStore, ids: pd.Series) -> pd.Series | None:
    """The simulator's true PD of these applications, when a simulator manifest covers them."""
    frames = [pd.read_parquet(store.uri(o.key), columns=["SK_ID_CURR", "TRUE_PD"])
              for o in store.list(ORACLE_PREFIX) if o.key.endswith("/" + ORACLE_TRUTH_NAME)]
    if not frames:
        return None
    truth = pd.concat(frames).drop_duplicates("SK_ID_CURR").set_index("SK_ID_CURR")["TRUE_PD"]
    matched = truth.reindex(ids.to_numpy())
    return None if matched.isna().mean() > 0.05 else pd.Series(matched.to_numpy(), index=ids.index)


def evaluate_model(trained: TrainedModel, ts: TrainingSet, threshold: float, true_pd: pd.Series | None,
                   version: str | None = None, gated_groups: tuple[str, ...] = ("gender",),
                   terms: sc.CreditTerms | None = None) -> Evaluation:
    """Out-of-time evaluation. Fairness is reported for every audited group; ``approval_rate_ratio`` and
    ``equal_opportunity_diff`` (what the gate reads) are the worst over ``gated_groups``. ``terms`` (default:
    the default settings' ``credit_terms``): scorecard, master scale and cut-off economics."""
    if terms is None:
        from ..settings import Settings

        terms = Settings().credit_terms
    test = ts.part("test")
    y, p = test[TARGET].to_numpy(), trained.predict_pd(test)
    metrics = ev.discrimination(y, p)
    table, ece = ev.calibration(y, p)
    metrics["ece"] = ece
    fair: dict[str, pd.DataFrame] = {}
    worst = {"approval_rate_ratio": 1.0, "equal_opportunity_diff": 0.0}
    for attr in ("gender", "age_band"):
        fair[attr], summary = ev.fairness(y, p, test[attr], threshold)
        metrics[f"approval_rate_ratio_{attr}"] = summary["approval_rate_ratio"]
        metrics[f"equal_opportunity_diff_{attr}"] = summary["equal_opportunity_diff"]
        if attr in gated_groups:
            worst["approval_rate_ratio"] = min(worst["approval_rate_ratio"], summary["approval_rate_ratio"])
            worst["equal_opportunity_diff"] = max(worst["equal_opportunity_diff"], summary["equal_opportunity_diff"])
    metrics.update(worst)
    metrics["approval_rate"] = float((p < threshold).mean())
    oracle: dict[str, float | None] = {"bayes_optimal_auc": None}
    if true_pd is not None:
        bayes_auc = bayes_optimal_auc(true_pd.loc[test.index].to_numpy())
        oracle["bayes_optimal_auc"] = bayes_auc
        metrics["bayes_optimal_auc"] = bayes_auc
        metrics["oracle_auc_gap"] = ev.oracle_gap(metrics["auc"], bayes_auc)  # type: ignore[assignment]
    contribs = trained.contributions(test)  # TreeSHAP for XGBoost, exact linear terms for the baseline
    importance = ev.global_importance(contribs, trained.features)
    sample = np.argsort(-p)[:20]  # the riskiest applications: what a decline letter would say
    codes = ev.reason_codes(contribs[sample], trained.features)
    reasons = pd.DataFrame({"sk_id_curr": test["sk_id_curr"].to_numpy()[sample], "pd": np.round(p[sample], 4),
                            "score": np.round(terms.scorecard.score(p[sample]), 1),
                            "grade": terms.scale.grade_all(p[sample]),
                            "reason_codes": [", ".join(c) for c in codes],
                            "reason_statements": ["; ".join(statements_for(c, strict=False)) for c in codes]})
    ead, ead_note = sc.exposure(test, terms.ead_column)
    econ = sc.economics(y, p, ead, terms, threshold, ead_note)
    stab = development_stability(trained, ts, p, terms.scale)
    plots = {f"roc_{trained.kind}.png": ev.roc_png(y, p, f"ROC — pd_{trained.kind}"),
             f"calibration_{trained.kind}.png": ev.calibration_png(table, f"Calibration — pd_{trained.kind}"),
             f"importance_{trained.kind}.png": ev.importance_png(importance, f"Importance — pd_{trained.kind}"),
             f"profit_{trained.kind}.png": sc.profit_png(econ.curve, threshold, f"Profit vs cut-off — pd_{trained.kind}")}
    fairness_table = pd.concat([f.assign(attribute=a) for a, f in fair.items()], ignore_index=True)
    card = ev.model_card(
        name=f"creditrisk-pd ({trained.kind})", version=version, intended_use=INTENDED_USE,
        data={**ts.lineage, "features": len(trained.features)}, metrics=metrics, calibration_ece=ece,
        fairness_summary=worst, fairness_table=fairness_table, importance=importance, oracle=oracle,
        limitations=["Trained on the simulated population; drift in applicants or products invalidates it.",
                     "Gender is never a feature and its disparity is gated; age in years is a feature (risk depends "
                     "on age in this population), so age-band disparity is reported, gated only if configured.",
                     f"Decision threshold {threshold}: approve when PD < threshold."],
        feature_groups_absent=ts.feature_groups_absent, features_dropped=ts.features_dropped,
        sections={**sc.card_sections(econ, terms), "Stability": stability_lines(stab),
                  "Sign-off": sign_off_lines([])})
    metrics.update(econ.metrics())  # after the card: its Performance table keeps the ranking metrics
    largest_csi = stab.worst(1)
    metrics.update({k: v for k, v in (("ssi_out_of_time", stab.ssi.value),
                                      ("csi_max_out_of_time", largest_csi[0].value if largest_csi else None))
                    if v is not None})
    return Evaluation(trained.kind, metrics, table, fair, importance, reasons, plots, card, econ, stab)


#: Fewest out-of-time (and training) rows for the card's SSI / CSI: below it a PSI is mostly sampling noise
#: (about ``(bins - 1) · (1/n + 1/m)``: 0.05 at 10 bins and 300 rows against many more).
DEVELOPMENT_MIN_ROWS = 300


def development_stability(trained: TrainedModel, ts: TrainingSet, test_pd: np.ndarray,
                          scale: sc.MasterScale) -> st.StabilityResult:
    """SSI of the grades and CSI of every feature: the out-of-time applications against the training ones
    (the reference monitoring uses later, so the card shows how far the population had moved already)."""
    train, test = ts.part("train"), ts.part("test")
    reference = st.fit_reference(train, trained.features, categorical=trained.categorical)
    return st.window_stability(reference, trained.predict_pd(train), test, test_pd, scale, trained.features,
                               min_rows=DEVELOPMENT_MIN_ROWS)


def stability_lines(result: st.StabilityResult, n: int = 5) -> list[str]:
    """The model card's Stability section: SSI, CSI levels and the largest CSIs."""
    ssi = result.ssi
    head = "- SSI of the master-scale grades, out-of-time vs training: " + (
        f"{ev._fmt(ssi.value)} ({ssi.level})" if ssi.value is not None else
        f"not computed ({ssi.status}: {ssi.current_rows} out-of-time and {ssi.reference_rows} training rows)")
    levels = [s.level for s in result.computed]
    lines = [head, f"- CSI per feature: {levels.count(st.STABLE)} stable (< 0.10), {levels.count(st.WATCH)} watch, "
                   f"{levels.count(st.UNSTABLE)} unstable (≥ 0.25) of {len(levels)} computed",
             "- Monitoring compares every window with the same training population (`monitoring/stability`).", ""]
    worst = result.worst(n)
    if worst:
        lines += [ev._md_table(["feature", "CSI", "level"], [[s.characteristic, s.value, s.level] for s in worst])]
    return lines


def log_and_register(client: MlflowClient, models: dict[str, TrainedModel], evaluations: dict[str, Evaluation],
                     ts: TrainingSet, dagster_run_id: str) -> tuple[str, dict[str, LoggedModel]]:
    """Log every model's run; register the best one (out-of-time AUC) as a new version → ``challenger``."""
    candidate = max(evaluations, key=lambda k: evaluations[k].metrics["auc"])
    tags = {"dagster_run_id": dagster_run_id, **{f"lineage.{k}": str(v) for k, v in ts.lineage.items()},
            "feature_groups_absent": ",".join(ts.feature_groups_absent) or "none"}
    logged = {}
    for kind in sorted(models, key=lambda k: k == candidate):  # the candidate last
        e = evaluations[kind]
        arts: dict[str, bytes | str] = {**e.plots, MODEL_CARD: e.card,
                                        "reason_codes_sample.csv": e.reason_codes.to_csv(index=False),
                                        "calibration.csv": e.calibration.to_csv(index=False)}
        if e.economics is not None:
            arts["grades.csv"] = e.economics.grades.to_csv(index=False)
            arts["profit_curve.csv"] = e.economics.curve.to_csv(index=False)
        params = {**{k: v for k, v in models[kind].params.items() if not isinstance(v, (dict, list))},
                  "kind": kind, "features": len(models[kind].features), "features_dropped": len(ts.features_dropped)}
        logged[kind] = log_model_run(client, models[kind], example=ts.part("test"), metrics=e.metrics,
                                     params=params, tags={**tags, "model_kind": kind}, artifacts=arts,
                                     register=kind == candidate)
    version = logged[candidate].version
    assert version is not None
    client.set_registered_model_alias("creditrisk-pd", CHALLENGER, version)
    return candidate, logged


def reference_input(frame: pd.DataFrame) -> pd.DataFrame:
    """Every catalogue feature of ``frame`` as a client sends it (numbers as float64, categories as text or
    None): what the champion scores in the canary. Its features may differ from the challenger's (other
    feature groups present at its training); a model ignores the columns it was not trained on."""
    catalogue = [f for f in features() if f.name in frame.columns]
    x = frame[[f.name for f in catalogue]].copy()
    numeric = [f.name for f in catalogue if f.data_type != "varchar"]
    categorical = [f.name for f in catalogue if f.data_type == "varchar"]
    x[numeric] = x[numeric].astype("float64")
    x[categorical] = x[categorical].astype(object).where(x[categorical].notna(), None)
    return x


def canary(client: MlflowClient, challenger_pd: np.ndarray, reference: pd.DataFrame, threshold: float,
           labels: np.ndarray | None = None) -> dict | None:
    """Challenger vs champion on the reference set (the out-of-time test applications).

    With ``labels``, also the champion's AUC on that same set (``champion_auc``): the gate then compares
    the two models head to head, not against the champion's AUC on its own, older test set (after a
    drift the new set may be harder or easier for both)."""
    import mlflow.pyfunc

    if alias_version(client, "champion") is None:
        return None
    champion = mlflow.pyfunc.load_model("models:/creditrisk-pd@champion")
    champ_pd = np.asarray(champion.predict(reference))
    out = {"approval_delta": float((challenger_pd < threshold).mean() - (champ_pd < threshold).mean()),
           "mean_abs_dpd": float(np.abs(challenger_pd - champ_pd).mean())}
    if labels is not None and len(np.unique(labels)) == 2:
        out["champion_auc"] = float(roc_auc_score(labels, champ_pd))
    return out


def promote_if_better(client: MlflowClient, version: str, challenger_metrics: dict[str, float],
                      challenger_pd: np.ndarray, reference: pd.DataFrame, threshold: float,
                      policy: GatePolicy, now: dt.datetime | None = None,
                      labels: np.ndarray | None = None, approval: str = "automatic") -> Decision:
    """Run the gate; on success move ``champion`` to ``version`` (``approval="required"``: the version waits
    for ``registry.approve`` instead). Records the decision on the version.

    With ``labels`` (the reference set's outcomes) the performance check is head to head: the champion's
    AUC is measured on the same out-of-time applications as the challenger's."""
    champion = alias_version(client, "champion")
    champion_metrics = version_metrics(client, champion) if champion else None
    head_to_head = canary(client, challenger_pd, reference, threshold, labels)
    if champion_metrics is not None and head_to_head and "champion_auc" in head_to_head:
        champion_metrics = {**champion_metrics, "auc": head_to_head["champion_auc"]}
    decision = decide(challenger_metrics, champion_metrics, head_to_head, policy)
    at = (now or dt.datetime.now(dt.UTC)).isoformat()
    client.set_model_version_tag("creditrisk-pd", version, "gate_decision", "promoted" if decision.promote else "refused")
    client.set_model_version_tag("creditrisk-pd", version, "gate_reasons", "\n".join(decision.reasons)[:4900])
    if decision.promote and approval == "required":
        request_approval(client, version, at)
    elif decision.promote:
        set_champion(client, version, "; ".join(decision.reasons), at, kind="gate")
    return decision


#: The recorded metrics the gate reads (MLflow run metrics of a version's evaluation).
GATE_METRICS = ("auc", "ece", "approval_rate_ratio", "equal_opportunity_diff")


def recorded_gate(client: MlflowClient, version: str, policy: GatePolicy) -> Decision:
    """The gate on recorded metrics: ``version``'s out-of-time metrics against the champion's (what a manual
    promotion can check without the data: no canary, and the champion's AUC on its own test set, not head
    to head). The champion itself, or no champion, is compared with nothing."""
    challenger = version_metrics(client, version)
    champion = alias_version(client, CHAMPION)
    champion_metrics = version_metrics(client, champion) if champion and champion != version else None
    for name, metrics in (("version " + version, challenger), ("champion " + str(champion), champion_metrics)):
        missing = [k for k in GATE_METRICS if metrics is not None and k not in metrics]
        if missing:
            raise ValueError(f"{name} has no recorded {', '.join(missing)} (its run predates the gate): "
                             "promote with --override to skip the gate (recorded)")
    return decide(challenger, champion_metrics, None, policy)


def evaluation_summary(e: Evaluation) -> dict[str, Any]:
    keys = ("auc", "gini", "ks", "brier", "log_loss", "pr_auc", "ece", "approval_rate", "approval_rate_ratio",
            "equal_opportunity_diff", "bayes_optimal_auc", "oracle_auc_gap", "master_scale_monotonic",
            "profit_at_threshold", "profit_max_cutoff", "profit_max", "f1_at_threshold")
    return {k: round(float(e.metrics[k]), 5) for k in keys if e.metrics.get(k) is not None}
