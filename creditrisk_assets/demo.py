"""``make demo``: the whole loop on embedded defaults, end to end.

Simulates 72 hours with a population shift from hour 48; ingests the first 48 hours (bronze →
silver → gold in one Dagster run), trains and promotes a champion, serves it with Ray Serve, scores
traffic over HTTP, monitors drift (no retrain); then the shifted hours land, monitoring sees the
drift, the drift sensor (evaluated in this process, as the daemon would) requests
``retrain_and_deploy``: retrain → evaluate → gate → new champion → Ray Serve reconfigured in place.

Runs on the embedded defaults (folder object store under ``.creditrisk/``) or on whatever the
``CREDITRISK_*`` variables point at. The Dagster run is recorded in ``$DAGSTER_HOME`` so that
``make dev`` shows it in the UI.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from .contracts import TABLE_NAMES
from .definitions import build_definitions
from .ingest.bronze import read_audit_log
from .layout import HOUR_FMT, LANDING_PREFIX, MONITORING_REPORTS_PREFIX, report_key
from .logs import configure_logging
from .resources import Lake, ObjectStore, open_store_for_writing
from .settings import Settings, mask_credentials
from .simulate import SimulationConfig, SimulationResult, simulate

DEMO_ANOMALIES = {"malformed_row": 0.002, "duplicate_rows": 0.002, "wrong_type": 0.002, "empty_file": 0.01,
                  "corrupt_file": 0.01, "wrong_encoding": 0.02, "extra_column": 0.02, "missing_column": 0.01}


def dagster_instance(settings: Settings) -> dg.DagsterInstance:
    home = Path(os.environ.get("DAGSTER_HOME") or settings.home / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").exists() or (home / "dagster.yaml").write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


# the demo prints its own summary; the full logs are in the Dagster UI
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}

DAGSTER_YAML = """\
# written by creditrisk: local instance storage under this folder
python_logs:
  managed_python_loggers: [creditrisk]
telemetry:
  enabled: false
# one lake writer at a time (silver and gold run in the `lake` pool; Lake also takes a file lock)
concurrency:
  pools:
    default_limit: 1
"""


def run_ingest(defs: dg.Definitions, first: str, last: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """The ``ingest`` job (bronze → silver → gold) over the hours ``first``..``last``, as one run."""
    return defs.resolve_job_def("ingest").execute_in_process(
        instance=instance, run_config=QUIET,
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )


def materialize(defs: dg.Definitions, key: dg.AssetKey, instance: dg.DagsterInstance,
                partition_key: str | None = None) -> dg.ExecuteInProcessResult:
    """One asset now, in this process: what its automation condition has the daemon do under ``make dev``."""
    job = defs.resolve_implicit_job_def_def_for_assets([key])
    assert job is not None, key
    return job.execute_in_process(instance=instance, run_config=QUIET, asset_selection=[key],
                                  partition_key=partition_key)


def run_profile(defs: dg.Definitions, instance: dg.DagsterInstance) -> bool:
    return materialize(defs, dg.AssetKey(["silver", "profile"]), instance).success


def check_failures(result: dg.ExecuteInProcessResult) -> list[str]:
    """``asset:check`` of every failed asset check of the run (the key is on the evaluation, not the event)."""
    return [f"{ev.asset_key.to_user_string()}:{ev.check_name}"
            for ev in (e.event_specific_data for e in result.all_events)
            if isinstance(ev, dg.AssetCheckEvaluation) and not ev.passed]


def evaluate_sensor(defs: dg.Definitions, instance: dg.DagsterInstance, name: str,
                    cursor: str | None = None) -> tuple[list[dg.RunRequest], str | None, str | None]:
    """One tick of sensor ``name`` in this process (what the daemon does): (run requests, skip reason, cursor)."""
    sensor = defs.resolve_sensor_def(name)
    with dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor, sensor_name=name,
                                 resources=defs.resources) as ctx:
        data = sensor.evaluate_tick(ctx)
    return list(data.run_requests or []), data.skip_message, data.cursor


def run_job(defs: dg.Definitions, name: str, instance: dg.DagsterInstance,
            tags: dict[str, str] | None = None) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(name).execute_in_process(instance=instance, run_config=QUIET, tags=tags,
                                                         raise_on_error=False)


def demo_settings(settings: Settings, env: dict[str, str]) -> Settings:
    """Monitoring knobs scaled to the demo's 72 hours, unless the environment sets them."""
    # the canary bound is a risk-policy knob: after a population shift approvals are expected to move,
    # so the demo allows ±10 points (default ±5) and says so when it starts
    scaled: dict[str, Any] = {"drift_window_hours": 12, "drift_consecutive_windows": 2, "drift_lookback_windows": 4,
                              "canary_max_approval_delta": 0.10}
    return dataclasses.replace(settings, **{k: v for k, v in scaled.items()
                                             if f"CREDITRISK_{k.upper()}" not in env})


def fresh_home(settings: Settings) -> None:
    """Start from an empty embedded data home (only when everything is embedded: never touches S3 or a server)."""
    import shutil

    from serving import runtime

    if settings.object_store != "folder" or settings.mlflow_tracking_uri or settings.lake_catalog:
        print("      (external store / MLflow / catalog configured: keeping existing data)")
        return
    running = runtime.running_cluster(settings)
    if running:
        runtime.stop_cluster(running)
    for name in ("objectstore", "lake", "mlflow.db", "mlartifacts", "serving", "dagster_home"):
        path = settings.home / name
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def post_json(url: str, body: object) -> dict:
    import json
    import urllib.request

    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310
        return json.loads(r.read())


def replay_traffic(url: str, ids: list[int], batch: int = 50) -> int:
    """The loan origination system at work: score applications by id (features from the feature store).
    Returns how many were scored; a refused request is printed with its error body."""
    import urllib.error

    scored = 0
    for i in range(0, len(ids), batch):
        try:
            scored += len(post_json(url + "/predict", [{"sk_id_curr": int(x)} for x in ids[i:i + batch]])["predictions"])
        except urllib.error.HTTPError as exc:
            print(f"      request refused: HTTP {exc.code} {exc.read()[:300]!r}")
    return scored


STEPS = 8


@dataclass
class _Demo:
    """What the steps after the simulation share: arguments, settings, store, and the Dagster instance and
    definitions the runs execute in."""

    args: argparse.Namespace
    settings: Settings
    store: ObjectStore
    start: dt.datetime
    instance: dg.DagsterInstance
    defs: dg.Definitions

    def hour(self, h: int) -> str:
        """The partition key of hour ``h`` of the simulated window."""
        return (self.start + dt.timedelta(hours=h)).strftime(HOUR_FMT)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    settings = _set_up(args)
    store = open_store_for_writing(settings)
    start = dt.datetime.strptime(settings.partitions_start, HOUR_FMT)
    _print_demo_settings(settings)
    sim = _simulate(args, store, start)
    demo = _Demo(args, settings, store, start, dagster_instance(settings), build_definitions(settings))
    first, failed_checks = _ingest_before_shift(demo)
    trained = _train_and_promote(demo)
    url, deployed = _serve_champion(demo)
    monitored, cursor = _monitor_before_shift(demo, url)
    later, later_failed_checks, requests = _land_shifted_hours(demo, cursor)
    retrained = _retrain_and_redeploy(demo, url, requests)
    accounted = _show_accounting(demo)
    _print_where_to_look(demo, url, sim)
    ok = (accounted and trained and deployed and monitored and retrained and first.success and later.success
          and not failed_checks + later_failed_checks)
    return 0 if ok else 1


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="creditrisk demo", description=__doc__)
    ap.add_argument("--hours", type=int, default=72)
    ap.add_argument("--drift-hour", type=int, default=48, help="hour the simulated population shift starts")
    ap.add_argument("--drift", default="product_mix", help="drift scenario (see `creditrisk simulate --help`)")
    ap.add_argument("--rows-per-hour", type=int, default=300)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="do not clear the embedded data home first")
    return ap.parse_args(argv)


def _set_up(args: argparse.Namespace) -> Settings:
    """The demo's settings, logging that keeps the terminal for the summary, and (without ``--keep``) a fresh
    embedded data home."""
    settings = demo_settings(Settings.from_env(), dict(os.environ))
    if "CREDITRISK_LOG_LEVEL" not in os.environ:  # keep the terminal for the summary
        settings = dataclasses.replace(settings, log_level="WARNING")
    configure_logging(settings.log_level)
    if not args.keep:
        fresh_home(settings)
    return settings


def _print_demo_settings(settings: Settings) -> None:
    print(f"      demo settings: drift windows of {settings.drift_window_hours} h, retrain after "
          f"{settings.drift_consecutive_windows} drifted windows (share >= {settings.drift_share_threshold}), canary "
          f"approval-rate tolerance ±{settings.canary_max_approval_delta}")


def _simulate(args: argparse.Namespace, store: ObjectStore, start: dt.datetime) -> SimulationResult:
    """Step 1: the simulated window lands, drift and anomalies included."""
    print(f"[1/{STEPS}] simulating {args.hours} hours x {args.rows_per_hour} applications/hour into "
          f"{store.uri(LANDING_PREFIX)}, drift `{args.drift}` from hour {args.drift_hour}")
    t0 = time.perf_counter()
    sim = simulate(SimulationConfig(start=start.strftime("%Y-%m-%dT%H:%M"), hours=args.hours,
                                    rows_per_hour=args.rows_per_hour, seed=args.seed, anomalies=DEMO_ANOMALIES,
                                    drift=args.drift, drift_start_hour=args.drift_hour, run_name="demo"),
                   store, progress=True)
    print(f"      {len(sim.files)} files, {sum(sim.rows.values()):,} rows, Bayes-optimal AUC "
          f"{sim.bayes_optimal_auc:.4f} ({time.perf_counter() - t0:.1f}s)")
    return sim


def _ingest_before_shift(d: _Demo) -> tuple[dg.ExecuteInProcessResult, list[str]]:
    """Step 2: bronze → silver → gold for the hours before the shift, then the silver profile. (The run, its
    failed asset checks.)"""
    print(f"[2/{STEPS}] bronze → silver → gold for hours 0–{d.args.drift_hour - 1} in one Dagster run (job `ingest`)")
    t0 = time.perf_counter()
    result = run_ingest(d.defs, d.hour(0), d.hour(d.args.drift_hour - 1), d.instance)
    failed_checks = check_failures(result)
    print(f"      run {result.run_id[:8]} {'succeeded' if result.success else 'FAILED'}, "
          f"{len(failed_checks)} failed asset check(s) ({time.perf_counter() - t0:.1f}s)")
    print(f"      data profile of silver: {'ok' if run_profile(d.defs, d.instance) else 'FAILED'} "
          f"(Evidently HTML at {d.store.uri(report_key('profile', 'application.html'))})")
    return result, failed_checks


def _train_and_promote(d: _Demo) -> bool:
    """Step 3: the first champion. True when the job succeeded."""
    print(f"[3/{STEPS}] train, evaluate, register and gate the PD models (job `train_and_promote`, MLflow)")
    t0 = time.perf_counter()
    ml = run_job(d.defs, "train_and_promote", d.instance)
    return ml.success and _print_training(ml, t0)


def _serve_champion(d: _Demo) -> tuple[str, bool]:
    """Step 4: deploy the champion and score one application. (The serving URL, whether the deploy succeeded.)"""
    print(f"[4/{STEPS}] serve the champion with Ray Serve (job `deploy_champion`; first start ~1 min)")
    t0 = time.perf_counter()
    deployed = run_job(d.defs, "deploy_champion", d.instance)
    from serving import runtime

    url = runtime.base_url(d.settings)
    answer = post_json(url + "/predict", {"sk_id_curr": 100001}) if deployed.success else {}
    print(f"      {url}/predict → pd {answer.get('pd')}, score {answer.get('score')}, grade "
          f"{answer.get('grade')}, {answer.get('decision')}, reasons {answer.get('reason_codes')}, model v{answer.get('model_version')} "
          f"({time.perf_counter() - t0:.1f}s)")
    return url, deployed.success


def _latest_applications(settings: Settings) -> list[int]:
    """The ids of the latest 600 applications in gold."""
    con = Lake(settings).connect_lake()
    try:
        return [r[0] for r in con.execute("SELECT sk_id_curr FROM lake.gold.applicant_features "
                                          "ORDER BY decision_time DESC LIMIT 600").fetchall()]
    finally:
        con.close()


def _collect_prediction_log(d: _Demo) -> None:
    """Once the replicas flushed their log batches: the prediction log of the previous and the current hour."""
    time.sleep(d.settings.prediction_log_flush_s + 1)  # the replicas flush their log batches
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    for h in (now - dt.timedelta(hours=1), now):
        materialize(d.defs, dg.AssetKey(["serving", "prediction_log"]), d.instance, partition_key=h.strftime(HOUR_FMT))


def _monitor_before_shift(d: _Demo, url: str) -> tuple[bool, str | None]:
    """Step 5: traffic over HTTP, then prediction log, monitoring and the drift sensor. (True when every
    application was scored, monitoring succeeded and no retrain was requested; the sensor's cursor.)"""
    ids = _latest_applications(d.settings)
    scored = replay_traffic(url, ids)
    print(f"[5/{STEPS}] monitoring before the shift: {scored} of {len(ids)} applications scored over HTTP, "
          "then asset `serving/prediction_log`, job `monitor` and the drift sensor")
    _collect_prediction_log(d)
    monitor = run_job(d.defs, "monitor", d.instance)
    requests, skip, cursor = evaluate_sensor(d.defs, d.instance, "drift_sensor")
    print(f"      {_drift_line(monitor)}; drift sensor: {skip or f'{len(requests)} retrain request(s)'}")
    return scored == len(ids) and monitor.success and not requests, cursor


def _land_shifted_hours(d: _Demo, cursor: str | None) -> tuple[dg.ExecuteInProcessResult, list[str],
                                                                  list[dg.RunRequest]]:
    """Step 6: the shifted hours are ingested and monitored; one tick of the drift sensor. (The ingest run, its
    failed asset checks, the sensor's run requests.)"""
    print(f"[6/{STEPS}] hours {d.args.drift_hour}–{d.args.hours - 1} land (the population shifts): job `ingest`, "
          "then `monitor`")
    t0 = time.perf_counter()
    later = run_ingest(d.defs, d.hour(d.args.drift_hour), d.hour(d.args.hours - 1), d.instance)
    failed_checks = check_failures(later)
    monitor = run_job(d.defs, "monitor", d.instance)
    print(f"      {_drift_line(monitor)} ({time.perf_counter() - t0:.1f}s)")
    requests, skip, cursor = evaluate_sensor(d.defs, d.instance, "drift_sensor", cursor)
    print(f"      drift sensor: {skip or f'requests `retrain_and_deploy` ({requests[0].run_key})'}")
    return later, failed_checks, requests


def _retrain_and_redeploy(d: _Demo, url: str, requests: list[dg.RunRequest]) -> bool:
    """Step 7: the run the drift sensor requested, and the model serving answers with after it. False when
    the sensor requested none or the run failed."""
    print(f"[7/{STEPS}] retrain → evaluate → gate → redeploy (job `retrain_and_deploy`)")
    if not requests:
        print("      no retrain requested")
        return False
    t0 = time.perf_counter()
    retrain = run_job(d.defs, "retrain_and_deploy", d.instance, tags=dict(requests[0].tags))
    decision = retrain.output_for_node("ml__promotion") if retrain.success else {}
    _print_training(retrain, t0)
    if retrain.success and not decision.get("promoted"):
        for reason in retrain.output_for_node("ml__promotion").get("reasons", []):
            print(f"        {reason}")
    promoted_to = decision.get("champion") if decision.get("promoted") else None
    after = post_json(url + "/predict", {"sk_id_curr": 100001})
    print(f"      serving now answers with model v{after.get('model_version')} "
          f"({'the new champion' if promoted_to else 'the gate kept the champion'})")
    return retrain.success


def _show_accounting(d: _Demo) -> bool:
    """Step 8: bronze, silver and quarantine rows per table. True when every landed row is accounted for."""
    print(f"[8/{STEPS}] where every landed row went:")
    return _print_accounting(d.settings, d.store)


def _print_where_to_look(d: _Demo, url: str, sim: SimulationResult) -> None:
    settings, store = d.settings, d.store
    reports = sorted(o.key for o in store.list(MONITORING_REPORTS_PREFIX))
    print("\nWhere to look:")
    print("  Dagster UI      make dev  →  http://127.0.0.1:3000  (Assets by group; Runs: the runs above; Sensors)")
    print(f"  serving         curl -s -X POST {url}/predict -H 'content-type: application/json' -d '{{\"sk_id_curr\": 100001}}'")
    print(f"                  {url}/model  ·  stop it with `.venv/bin/creditrisk serve stop`")
    print(f"  drift report    {store.uri(reports[-1]) if reports else '(none)'}")
    print(f"  MLflow UI       .venv/bin/mlflow ui --backend-store-uri {mask_credentials(settings.resolved_mlflow_uri)} --port 5000")
    print("  models          .venv/bin/creditrisk models   (versions, aliases, promotion history)")
    print(f"  object store    {store.uri('')}   (landing/, bronze/, lake/, reports/, serving/, monitoring/)")
    print(f"  oracle manifest {store.uri(sim.manifest_key)}  (true PD of every application, Bayes-optimal AUC)")


def _print_training(result: dg.ExecuteInProcessResult, t0: float) -> bool:
    if not result.success:
        print("      FAILED: see the run in the Dagster UI")
        return False
    evaluated, promoted = result.output_for_node("ml__evaluation"), result.output_for_node("ml__promotion")
    m = evaluated["metrics"]
    print(f"      candidate pd_{evaluated['candidate']} registered as creditrisk-pd v{evaluated['version']}: "
          f"out-of-time AUC {m['auc']:.4f}, Bayes-optimal {m.get('bayes_optimal_auc', float('nan')):.4f} "
          f"(gap {m.get('oracle_auc_gap', float('nan')):+.4f}), ECE {m['ece']:.4f}")
    print(f"      gate: {'PROMOTED to champion' if promoted['promoted'] else 'refused'}; "
          f"champion is v{promoted['champion']} ({time.perf_counter() - t0:.1f}s)")
    return True


def _drift_line(result: dg.ExecuteInProcessResult) -> str:
    events = result.asset_materializations_for_node("monitoring__drift") if result.success else []
    if not events:
        return "monitoring FAILED"
    meta = events[0].metadata
    passed: Any = meta["pass"].value if "pass" in meta else {}
    windows = passed.get("windows", [])
    shares = ", ".join(f"{w['share_drifted']:.2f}" if w["share_drifted"] is not None else w["status"]
                       for w in windows)
    return (f"drift share per 12 h window (oldest first): {shares}; drifted windows "
            f"{meta['drifted_windows'].value}, retrain recommended: {meta['retrain_recommended'].value}")


def _print_accounting(settings: Settings, store: object) -> bool:
    audit = read_audit_log(store, Lake(settings))  # type: ignore[arg-type]
    con = Lake(settings).connect_lake()
    try:
        silver = {t: con.execute(f'SELECT count(*) FROM lake.silver."{t}"').fetchone()[0] for t in TABLE_NAMES}  # type: ignore[index]
        quarantined = dict(con.execute("SELECT table_name, count(*) FROM lake.silver.quarantine GROUP BY 1").fetchall())
        rules = con.execute("SELECT rule, count(*) FROM lake.silver.quarantine GROUP BY 1 ORDER BY 2 DESC").fetchall()
        features = con.execute("SELECT count(*) FROM lake.gold.applicant_features").fetchone() or (0,)
    finally:
        con.close()
    summary = audit.groupby("table_name").agg(
        files=("source_key", "count"), rejected_files=("status", lambda s: int((s == "rejected").sum())),
        bronze_rows=("rows", "sum"), malformed=("malformed_rows", "sum"))
    summary["bronze_rows"] += summary.pop("malformed")
    summary["silver_rows"] = [silver.get(t, 0) for t in summary.index]
    summary["quarantined"] = [quarantined.get(t, 0) for t in summary.index]
    summary["accounted"] = summary["bronze_rows"] == summary["silver_rows"] + summary["quarantined"]
    print(summary.to_string())
    print("      quarantine by rule: " + ", ".join(f"{r}={n}" for r, n in rules))
    print(f"      gold/applicant_features: {features[0]:,} applications")
    return bool(summary["accounted"].all())


if __name__ == "__main__":
    sys.exit(main())
