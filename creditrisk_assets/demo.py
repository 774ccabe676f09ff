"""``make demo``: simulate hours of landed data, backfill bronze in one Dagster run, summarise.

Runs on the embedded defaults (folder object store under ``.creditrisk/``) or on whatever the
``CREDITRISK_*`` variables point at. The Dagster run is recorded in ``$DAGSTER_HOME`` so that
``make dev`` shows it in the UI.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

import dagster as dg

from .definitions import build_definitions
from .ingest.bronze import read_audit_log
from .layout import HOUR_FMT
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


DAGSTER_YAML = """\
# written by creditrisk: local instance storage under this folder
python_logs:
  managed_python_loggers: [creditrisk]
telemetry:
  enabled: false
"""


def backfill_bronze(settings: Settings, first: str, last: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    defs = build_definitions(settings)
    job = defs.resolve_job_def("ingest")
    return job.execute_in_process(
        instance=instance,
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="creditrisk demo", description=__doc__)
    ap.add_argument("--hours", type=int, default=48)
    ap.add_argument("--rows-per-hour", type=int, default=300)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)

    settings = Settings.from_env()
    store = object_store_from_settings(settings)
    if isinstance(store, S3Store):
        store.ensure_bucket()
    store.check()
    start = dt.datetime.strptime(settings.partitions_start, HOUR_FMT)
    print(f"[1/3] simulating {args.hours} hours x {args.rows_per_hour} applications/hour into {store.uri('landing')}")
    t0 = time.perf_counter()
    sim = simulate(SimulationConfig(start=start.strftime("%Y-%m-%dT%H:%M"), hours=args.hours,
                                    rows_per_hour=args.rows_per_hour, seed=args.seed, anomalies=DEMO_ANOMALIES,
                                    run_name="demo"), store, progress=True)
    print(f"      {len(sim.files)} files, {sum(sim.rows.values()):,} rows, Bayes-optimal AUC "
          f"{sim.bayes_optimal_auc:.4f} ({time.perf_counter() - t0:.1f}s)")

    first = start.strftime(HOUR_FMT)
    last = (start + dt.timedelta(hours=args.hours - 1)).strftime(HOUR_FMT)
    print(f"[2/3] backfilling bronze {first} ... {last} in one Dagster run")
    t0 = time.perf_counter()
    instance = dagster_instance(settings)
    result = backfill_bronze(settings, first, last, instance)
    print(f"      run {result.run_id[:8]} {'succeeded' if result.success else 'FAILED'} "
          f"({time.perf_counter() - t0:.1f}s)")

    print("[3/3] ingestion audit log (bronze/_audit, queryable from DuckDB):")
    audit = read_audit_log(store, Lake(settings))
    summary = audit.groupby("table_name").agg(
        files=("source_key", "count"), rows=("rows", "sum"), malformed_rows=("malformed_rows", "sum"),
        rejected_files=("status", lambda s: int((s == "rejected").sum())),
        warned_files=("status", lambda s: int((s == "accepted_with_warnings").sum())))
    print(summary.to_string())
    rejected = audit[audit["status"] == "rejected"]
    for _, r in rejected.head(5).iterrows():
        print(f"      rejected {r['source_key']}: {r['reason'][:100]}")
    print("\nWhere to look:")
    print("  Dagster UI      make dev  →  http://127.0.0.1:3000  (assets: bronze/*, the run just made)")
    print(f"  landing/bronze  {store.uri('')}")
    print(f"  oracle manifest {store.uri(sim.manifest_key)}")
    print(f"  audit log       duckdb -c \"SELECT * FROM read_parquet('{store.uri('bronze/_audit')}/**/*.parquet')\"")
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
