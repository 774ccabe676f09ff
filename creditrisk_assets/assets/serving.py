"""serving/*: the Ray Serve deployment of the champion, the prediction log, batch scoring."""

import datetime as dt

import dagster as dg
import pandas as pd

from ..dagster_resources import DuckLake, ObjectStorage, RayServe
from ..metadata import md_table
from ..partitions import hourly_partitions, hours_of
from ..settings import Settings
from . import opens

SERVING = "serving"
DEPLOYMENT = dg.AssetKey([SERVING, "deployment"])
#: the hourly tick of collection and monitoring (UTC): five minutes past, once the replicas flushed the
#: hour that just closed
COLLECT_CRON = "5 * * * *"
_collect_tick: dg.AutomationCondition[dg.AssetKey | dg.AssetCheckKey] = dg.AutomationCondition.cron_tick_passed(
    COLLECT_CRON)
#: on every tick: the hour that just closed (now complete) and the open one (so far), idempotently
PREDICTION_LOG_AUTOMATION = (
    dg.AutomationCondition.in_latest_time_window(dt.timedelta(hours=2))
    & _collect_tick.since_last_handled()
    & ~dg.AutomationCondition.in_progress()
).with_label(f"collect the last two hours at {COLLECT_CRON}")


@dg.asset(key=DEPLOYMENT, group_name=SERVING, kinds={"ray"}, deps=[dg.AssetKey(["ml", "promotion"])],
          description="The Ray Serve app answering `/v1/predict` with the registry's `champion` (and `challenger`, "
                      "shadow or canary). Deploys it, or reconfigures the running replicas in place when the "
                      "aliases moved: in-flight requests finish, nothing is dropped. Under KubeRay "
                      "(`CREDITRISK_SERVE_RAYSERVICE`) it patches the `RayService`'s Serve config instead, "
                      "through the Kubernetes API.")
def deployment(context: dg.AssetExecutionContext, serve: RayServe,
               settings: dg.ResourceParam[Settings]) -> dg.MaterializeResult:
    if serve.under_kuberay:  # the operator owns the Serve config: patch the RayService's (serving/kuberay.py)
        rollout = serve.patch_rayservice(settings)
        config = rollout.config
        context.log.info(f"RayService {rollout.ref}: champion {rollout.previous_champion or '(none)'} -> "
                         f"{rollout.champion}" if rollout.changed else
                         f"RayService {rollout.ref} already serves champion {rollout.champion}: not patched")
        return dg.MaterializeResult(metadata={
            "path": "kuberay", "rayservice": rollout.ref,
            "inspect": f"kubectl -n {rollout.namespace} describe rayservice {rollout.name}",
            "patched": rollout.changed, "resource_version": rollout.resource_version,
            "previous_champion_version": rollout.previous_champion, "champion_version": rollout.champion,
            "challenger_version": str(config.get("challenger") or ""), "mode": config["mode"],
            "canary_share": float(config["canary_share"]), "app_status": rollout.app_status,
            "health": rollout.health, "url": dg.MetadataValue.url(rollout.url + "/model"),
        })
    cluster, config = serve.ensure_deployed(settings)
    context.log.info(f"serving champion {config['champion']} at {cluster.url}")
    return dg.MaterializeResult(metadata={
        "path": "direct", "url": dg.MetadataValue.url(cluster.url + "/model"),
        "champion_version": str(config["champion"]),
        "challenger_version": str(config.get("challenger") or ""), "mode": config["mode"],
        "canary_share": float(config["canary_share"]), "ray_address": cluster.address,
        "metrics": dg.MetadataValue.url(f"http://127.0.0.1:{cluster.metrics_port}/metrics")
        if cluster.metrics_port else "",
    })


def build_prediction_log_asset(settings: Settings) -> dg.AssetsDefinition:
    @dg.asset(key=[SERVING, "prediction_log"], group_name=SERVING, kinds={"ducklake"},
              partitions_def=hourly_partitions(settings, end_offset=1), backfill_policy=dg.BackfillPolicy.single_run(),
              deps=[DEPLOYMENT], automation_condition=PREDICTION_LOG_AUTOMATION,
              description="Every scored application (pseudonymised id, features, PD, decision, model version, "
                          "latency, shadow score) per hour, from the replicas' raw log batches into "
                          "`lake.serving.prediction_log`. Monitoring reads it. Collected automatically at "
                          f"`{COLLECT_CRON}` (UTC): the hour that just closed and the open one.")
    def prediction_log(context: dg.AssetExecutionContext, store: ObjectStorage, lake: DuckLake) -> dg.MaterializeResult:
        from serving.prediction_log import LOG_TABLE, load_hours

        hours = hours_of(context)
        with lake.get_lake().connect_lake() as con:
            counts = load_hours(con, store.get_store(), hours)
            start, end = pd.Timestamp(hours[0], tz="UTC"), pd.Timestamp(hours[-1], tz="UTC") + pd.Timedelta(hours=1)
            summary = pd.DataFrame()
            if sum(counts.values()):
                summary = con.execute(
                    f"""SELECT model_version, served_by, count(*) AS predictions, round(avg(pd), 4) AS mean_pd,
                               round(avg((decision = 'decline')::INT), 4) AS decline_rate,
                               round(quantile_cont(latency_ms, 0.5), 2) AS p50_ms,
                               round(quantile_cont(latency_ms, 0.99), 2) AS p99_ms
                        FROM {LOG_TABLE} WHERE logged_at >= ? AND logged_at < ?
                        GROUP BY ALL ORDER BY ALL""", [start, end]).df()
        empty = [h.strftime("%Y-%m-%d %H:00") for h, n in counts.items() if n == 0]
        if empty:
            context.log.info(f"{len(empty)} hour(s) without predictions: {', '.join(empty[:10])}")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": sum(counts.values()), "hours": len(hours), "hours_without_predictions": len(empty),
            "by_model_version": dg.MetadataValue.md(md_table(summary) if not summary.empty else "no predictions"),
        })

    return prediction_log


class BatchScoringConfig(dg.Config):
    input_key: str = ""  # a Parquet or CSV object of applications; empty: every application in gold


@dg.asset(key=[SERVING, "batch_scores"], group_name=SERVING, kinds={"xgboost", "parquet"},
          deps=[dg.AssetKey(["ml", "promotion"])],
          description="Scores a Parquet/CSV of applications (or, by default, every application in the feature "
                      "store) with the champion: PD, scorecard points, master-scale grade, decision, reason codes and "
                      "statements, and the model version, written "
                      "next to the input under `serving/batch_scores/`.")
def batch_scores(context: dg.AssetExecutionContext, config: BatchScoringConfig, store: ObjectStorage,
                 lake: DuckLake, settings: dg.ResourceParam[Settings]) -> dg.MaterializeResult:
    from serving.batch import score_batch

    objects = store.get_store()
    result = score_batch(settings, objects, lake.get_lake(), config.input_key)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": result.rows, "output": opens(objects.link(result.output_key)),
        "model_version": result.model_version, "decline_rate": round(result.decline_rate, 4),
        "engine": result.engine, "batches": result.batches, "rows_per_batch": settings.batch_scoring_rows,
        "grades": dg.MetadataValue.md(md_table(result.grades)),
    })
