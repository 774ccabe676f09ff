"""monitoring/*: drift of the champion's inputs and outputs, and its performance once labels mature."""

import base64

import dagster as dg

from ..dagster_resources import Alerts, DuckLake, MlflowRegistry, ObjectStorage
from ..metadata import md_table
from ..monitoring.alerts import Alert
from ..settings import Settings
from . import opens
from .serving import COLLECT_CRON

GOLD_FEATURES = dg.AssetKey(["gold", "applicant_features"])

MONITORING = "monitoring"
DRIFT = dg.AssetKey([MONITORING, "drift"])
PERFORMANCE = dg.AssetKey([MONITORING, "performance"])
#: after every collection tick, once the prediction log has been collected since the tick (gold need not
#: have moved: the reference is the champion's training data, the traffic is in the prediction log)
DRIFT_AUTOMATION = dg.AutomationCondition.on_cron(COLLECT_CRON).ignore(
    dg.AssetSelection.assets(GOLD_FEATURES)).with_label(f"at {COLLECT_CRON}, once the prediction log is collected")
#: after every collection tick, once gold and the loan outcomes have been ingested since the tick
PERFORMANCE_AUTOMATION = dg.AutomationCondition.on_cron(COLLECT_CRON).with_label(
    f"at {COLLECT_CRON}, once gold and the loan outcomes are ingested")


@dg.asset(key=DRIFT, group_name=MONITORING, kinds={"evidently", "ducklake"}, automation_condition=DRIFT_AUTOMATION,
          deps=[GOLD_FEATURES, dg.AssetKey(["serving", "prediction_log"])],
          description="Evidently data drift of the champion's features (reference: its training applications) "
                      "and PSI of its predicted PD, per recent window; HTML reports in the object store, the "
                      "time series in `lake.monitoring.drift_metrics`. Recommends a retrain after "
                      "`CREDITRISK_DRIFT_CONSECUTIVE_WINDOWS` drifted windows (the drift sensor acts on it). "
                      "Stability on the same frames: SSI of the PDs over the master-scale grades and CSI per "
                      "feature in `lake.monitoring.stability_metrics` (alert when either reaches 0.25).")
def drift(context: dg.AssetExecutionContext, store: ObjectStorage, lake: DuckLake,
          settings: dg.ResourceParam[Settings], mlflow: MlflowRegistry, alerts: Alerts) -> dg.MaterializeResult:
    from ..monitoring.drift import PSI_SIGNIFICANT
    from ..monitoring.loop import (
        as_dict,
        history,
        history_png,
        load_champion,
        run_drift,
        stability_alert,
        stability_history,
        stability_markdown,
        summary_markdown,
        worst_csi_markdown,
    )

    champion = load_champion(mlflow.client())
    if champion is None:
        context.log.warning("no champion yet: nothing to monitor")
        return dg.MaterializeResult(metadata={"status": "no champion", "retrain_recommended": False})
    objects = store.get_store()
    with lake.get_lake().connect_lake() as con:
        result = run_drift(con, objects, champion, window_hours=settings.drift_window_hours,
                           lookback=settings.drift_lookback_windows,
                           drift_share_threshold=settings.drift_share_threshold,
                           consecutive=settings.drift_consecutive_windows, min_rows=settings.drift_min_rows,
                           scale=settings.rating_scale)
        series = history(con)
        ssi_series = stability_history(con)
    latest = result.windows[-1] if result.windows else None
    if latest is not None and latest.dataset_drifted:
        alerts.send(Alert(
            "drift", f"feature drift against champion v{champion.version}",
            f"{len(latest.drifted_columns)} drifted feature(s) in the window ending {latest.end}; "
            f"retrain {'recommended' if result.retrain_recommended else 'not yet recommended'}",
            {"share drifted": f"{latest.share_drifted:.2f}", "features": ", ".join(latest.drifted_columns[:8])}))
    unstable = stability_alert(result)
    if unstable is not None:
        alerts.send(unstable)
    plot = ssi_plot = ""
    if not series.empty:
        png = history_png(series, settings.drift_share_threshold, "feature drift per window")
        plot = f"![drift over time](data:image/png;base64,{base64.b64encode(png).decode()})"
    if not ssi_series.empty and ssi_series["value"].notna().any():
        png = history_png(ssi_series, PSI_SIGNIFICANT, "system stability index (SSI) per window", ylabel="SSI (PSI)")
        ssi_plot = f"![SSI over time](data:image/png;base64,{base64.b64encode(png).decode()})"
    stable = result.latest_stability
    reports = {f"report {w.end:%m-%d %H:%M}": opens(objects.link(w.report_key))
               for w in result.windows if w.report_key}
    return dg.MaterializeResult(metadata={
        "champion_version": champion.version, "retrain_recommended": result.retrain_recommended,
        "drifted_windows": sum(w.dataset_drifted for w in result.windows),
        "latest_share_drifted": float(latest.share_drifted) if latest and latest.share_drifted is not None else -1.0,
        "windows": dg.MetadataValue.md(summary_markdown(result)),
        "drift_over_time": dg.MetadataValue.md(plot or "no drift computed yet"),
        "latest_ssi": float(stable[1].ssi.value) if stable and stable[1].ssi.value is not None else -1.0,
        "latest_csi_unstable": len(stable[1].unstable_features) if stable else 0,
        "stability_alert": unstable is not None,
        "stability": dg.MetadataValue.md(stability_markdown(result)),
        "worst_csi": dg.MetadataValue.md(worst_csi_markdown(result)),
        "ssi_over_time": dg.MetadataValue.md(ssi_plot or "no SSI computed yet"),
        "pass": dg.MetadataValue.json(as_dict(result)), **reports,
    })


@dg.asset(key=PERFORMANCE, group_name=MONITORING, kinds={"ducklake"}, automation_condition=PERFORMANCE_AUTOMATION,
          deps=[GOLD_FEATURES, dg.AssetKey(["silver", "loan_outcome"])],
          description="The champion's AUC, calibration (ECE) and observed default rate vs mean predicted PD per "
                      "window, counting only outcomes matured `CREDITRISK_LABEL_MATURITY_HOURS` after the decision; "
                      "windows with no labels or one class say so. Recommends a retrain when the newest window "
                      "with `CREDITRISK_DRIFT_MIN_ROWS` labels has AUC < `CREDITRISK_PERF_MIN_AUC` or ECE > "
                      "`CREDITRISK_PERF_MAX_ECE` (the performance sensor acts on it).")
def performance(context: dg.AssetExecutionContext, lake: DuckLake,
                settings: dg.ResourceParam[Settings], mlflow: MlflowRegistry) -> dg.MaterializeResult:
    from ..monitoring.loop import load_champion, run_performance
    from ..monitoring.performance import performance_decay

    champion = load_champion(mlflow.client())
    if champion is None:
        return dg.MaterializeResult(metadata={"status": "no champion", "retrain_recommended": False})
    with lake.get_lake().connect_lake() as con:
        frame = run_performance(con, champion, window_hours=settings.drift_window_hours,
                                lookback=settings.drift_lookback_windows, maturity_hours=settings.label_maturity_hours)
    decay = performance_decay(frame, min_auc=settings.perf_min_auc, max_ece=settings.perf_max_ece,
                              min_rows=settings.drift_min_rows)
    if decay is not None and decay.decayed:
        context.log.warning(f"champion v{champion.version} decayed in the window ending {decay.window_end}: "
                            + "; ".join(decay.reasons))
    shown = frame[["window_start", "status", "n_predictions", "n_labelled", "default_rate", "mean_pd", "auc", "ece"]] \
        if not frame.empty else frame
    return dg.MaterializeResult(metadata={
        "champion_version": champion.version, "windows": dg.MetadataValue.md(md_table(shown.round(4)) if not
                                                                                frame.empty else "no windows"),
        "windows_ok": int((frame["status"] == "ok").sum()) if not frame.empty else 0,
        "retrain_recommended": bool(decay is not None and decay.decayed),
        "evidence": dg.MetadataValue.json(decay.as_dict() if decay is not None else
                                          {"reasons": [], "note": "no window with both classes and "
                                                                  f"{settings.drift_min_rows} matured labels yet"}),
    })


MONITORING_ASSETS = [drift, performance]
