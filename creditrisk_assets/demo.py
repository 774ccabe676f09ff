"""``make demo``: simulate hours of landed data, run bronze → silver → gold in one Dagster run, summarise.

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
from pathlib import Path

import dagster as dg

from .contracts import TABLE_NAMES
from .definitions import build_definitions
from .ingest.bronze import read_audit_log
from .layout import HOUR_FMT
from .logs import configure_logging
from .resources import Lake, S3Store, object_store_from_settings
from .settings import Settings
from .simulate import SimulationConfig, simulate

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
"""


def run_ingest(defs: dg.Definitions, first: str, last: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """The ``ingest`` job (bronze → silver → gold) over the hours ``first``..``last``, as one run."""
    return defs.resolve_job_def("ingest").execute_in_process(
        instance=instance, run_config=QUIET,
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )


def run_profile(defs: dg.Definitions, instance: dg.DagsterInstance) -> bool:
    return defs.resolve_job_def("profile_silver").execute_in_process(instance=instance, run_config=QUIET).success


def check_failures(result: dg.ExecuteInProcessResult) -> list[str]:
    return [f"{e.asset_key.to_user_string()}:{e.event_specific_data.check_name}" for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.event_specific_data.passed]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="creditrisk demo", description=__doc__)
    ap.add_argument("--hours", type=int, default=48)
    ap.add_argument("--rows-per-hour", type=int, default=300)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)

    settings = Settings.from_env()
    if "CREDITRISK_LOG_LEVEL" not in os.environ:  # keep the terminal for the summary
        settings = dataclasses.replace(settings, log_level="WARNING")
    configure_logging(settings.log_level)
    store = object_store_from_settings(settings)
    if isinstance(store, S3Store):
        store.ensure_bucket()
    store.check()
    start = dt.datetime.strptime(settings.partitions_start, HOUR_FMT)
    print(f"[1/5] simulating {args.hours} hours x {args.rows_per_hour} applications/hour into {store.uri('landing')}")
    t0 = time.perf_counter()
    sim = simulate(SimulationConfig(start=start.strftime("%Y-%m-%dT%H:%M"), hours=args.hours,
                                    rows_per_hour=args.rows_per_hour, seed=args.seed, anomalies=DEMO_ANOMALIES,
                                    run_name="demo"), store, progress=True)
    print(f"      {len(sim.files)} files, {sum(sim.rows.values()):,} rows, Bayes-optimal AUC "
          f"{sim.bayes_optimal_auc:.4f} ({time.perf_counter() - t0:.1f}s)")

    first = start.strftime(HOUR_FMT)
    last = (start + dt.timedelta(hours=args.hours - 1)).strftime(HOUR_FMT)
    print(f"[2/5] bronze → silver → gold for {first} ... {last} in one Dagster run (job `ingest`)")
    t0 = time.perf_counter()
    instance = dagster_instance(settings)
    defs = build_definitions(settings)
    result = run_ingest(defs, first, last, instance)
    failed_checks = check_failures(result)
    print(f"      run {result.run_id[:8]} {'succeeded' if result.success else 'FAILED'}, "
          f"{len(failed_checks)} failed asset check(s) ({time.perf_counter() - t0:.1f}s)")

    print("[3/5] data profile of silver (Evidently HTML + markdown in the UI)")
    profiled = run_profile(defs, instance)

    print("[4/5] train, evaluate, register and gate the PD models (job `train_and_promote`, MLflow)")
    t0 = time.perf_counter()
    ml = defs.resolve_job_def("train_and_promote").execute_in_process(
        instance=instance, run_config=QUIET)
    evaluated, promoted = ml.output_for_node("ml__evaluation"), ml.output_for_node("ml__promotion")
    m = evaluated["metrics"]
    print(f"      candidate pd_{evaluated['candidate']} registered as creditrisk-pd v{evaluated['version']}: "
          f"out-of-time AUC {m['auc']:.4f}, Bayes-optimal {m.get('bayes_optimal_auc', float('nan')):.4f} "
          f"(gap {m.get('oracle_auc_gap', float('nan')):+.4f}), ECE {m['ece']:.4f}")
    print(f"      gate: {'PROMOTED to champion' if promoted['promoted'] else 'refused'}; "
          f"champion is v{promoted['champion']} ({time.perf_counter() - t0:.1f}s)")

    print("[5/5] where every landed row went:")
    audit = read_audit_log(store, Lake(settings))
    con = Lake(settings).connect_lake()
    try:
        silver = {t: con.execute(f'SELECT count(*) FROM lake.silver."{t}"').fetchone()[0] for t in TABLE_NAMES}  # type: ignore[index]
        quarantined = dict(con.execute("SELECT table_name, count(*) FROM lake.silver.quarantine GROUP BY 1").fetchall())
        rules = con.execute("SELECT rule, count(*) FROM lake.silver.quarantine GROUP BY 1 ORDER BY 2 DESC").fetchall()
        features = con.execute("SELECT count(*), count(*) FILTER (WHERE has_bureau_history = 1) "
                               "FROM lake.gold.applicant_features").fetchone()
        snapshot = Lake.snapshot_id(con)
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
    for _, r in audit[audit["status"] == "rejected"].head(3).iterrows():
        print(f"      rejected file {r['source_key']}: {r['reason'][:90]}")
    print(f"      gold/applicant_features: {features[0]:,} applications ({features[1]:,} with bureau history); "
          f"lake snapshot {snapshot}")
    print("\nWhere to look:")
    print("  Dagster UI      make dev  →  http://127.0.0.1:3000  (Assets: bronze/*, silver/*, gold/*; Runs: the run above)")
    print(f"  object store    {store.uri('')}   (landing/, bronze/, lake/, reports/)")
    print(f"  profile report  {store.uri('reports/profile/application.html')}")
    print(f"  oracle manifest {store.uri(sim.manifest_key)}  (true PD of every application, Bayes-optimal AUC)")
    print(f"  audit log       SELECT * FROM read_parquet('{store.uri('bronze/_audit')}/**/*.parquet')")
    print(f"  MLflow UI       .venv/bin/mlflow ui --backend-store-uri {settings.resolved_mlflow_uri} --port 5000")
    print("  models          .venv/bin/creditrisk models   (versions, aliases, promotion history)")
    ok = result.success and profiled and ml.success and not failed_checks and bool(summary["accounted"].all())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
