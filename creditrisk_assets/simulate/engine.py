"""``simulate``: generate a run and write its hourly drops, truth table and manifest to a store."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from ..contracts import TABLES
from ..layout import landing_file_key, oracle_manifest_key, oracle_truth_key, partition_key
from ..resources import ObjectStore
from .anomalies import Injection, render_file
from .config import SimulationConfig
from .formats import parquet_bytes
from .leakage import MAX_LAG_HOURS as POST_DECISION_MAX_LAG_HOURS
from .leakage import SHARE as POST_DECISION_SHARE
from .tables import BUILDERS, HourlyTable
from .truth import CONCEPT_DRIFT_SHIFT, DPD_WEIGHTS, INTERCEPT, PD_FORMULA, RISK_SCALE, bayes_optimal_auc
from .world import World, build_world

log = logging.getLogger("creditrisk.simulate")

MANIFEST_VERSION = 1
DRIFT_DESCRIPTIONS = {
    "none": "no drift",
    "income_shift": "AMT_INCOME_TOTAL x0.7 and AMT_CREDIT x1.2 (annuity follows the credit): covariate shift",
    "product_mix": "Revolving loans 9.5% -> 40%, applicants ~9 years younger, EXT_SOURCE_3 missing 20% -> 45%",
    "default_rate": f"PD intercept +{CONCEPT_DRIFT_SHIFT} on the logit: concept drift, same features",
}
FORMAT_NOTES = {
    "csv": "header row, ',' separator, '\\n' line ends, RFC-4180 quoting where needed, UTF-8, null = empty field",
    "jsonl": "one JSON object per line, contract key order, null = JSON null, UTF-8",
    "parquet": "int64 / float64 / string; dates as DATE (date32); timestamps as TIMESTAMP(ms), naive UTC; zstd",
    "values": "dates YYYY-MM-DD, timestamps YYYY-MM-DDTHH:MM:SS (UTC, no zone), money rounded to 2 decimals",
    "gzip": "level 6, mtime=0",
    "empty_hours": "no file is written for a table and hour without rows",
    "annuity": "AMT_ANNUITY is annualised (12 x the monthly payment); instalments are AMT_ANNUITY / 12",
    "columns": "every contract column is in every file except drop columns the simulator does not write; optional "
               "columns it has no model of are all null (columns_not_simulated lists both)",
}


@dataclass
class SimulationResult:
    """What a run wrote: landing keys, clean rows per table, oracle keys and the Bayes-optimal AUC."""

    files: list[str]
    rows: dict[str, int]
    manifest_key: str
    truth_key: str
    bayes_optimal_auc: float
    bayes_optimal_auc_pre_drift: float | None = None
    bayes_optimal_auc_post_drift: float | None = None
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def landing_key(table: str, hour: dt.datetime) -> str:
    return landing_file_key(table, hour, TABLES[table].landing_format)


def simulate(cfg: SimulationConfig, store: ObjectStore, progress: bool = False) -> SimulationResult:
    """Write the run's landing files, ``oracle/<run>/truth.parquet`` and ``oracle/<run>/manifest.json``."""
    started = time.perf_counter()
    log.info("simulation started", extra={"run_name": cfg.run_name, "hours": cfg.hours,
                                          "rows_per_hour": cfg.rows_per_hour, "seed": cfg.seed, "drift": cfg.drift,
                                          "tables": list(cfg.selected_tables)})
    world = build_world(cfg)
    tables = {name: BUILDERS[name](world) for name in cfg.selected_tables}
    files, file_entries, injections = _write_landing(cfg, store, tables, progress)

    aucs = _aucs(world)
    truth_key = oracle_truth_key(cfg.run_name)
    store.put_bytes(truth_key, parquet_bytes(truth_table(world)))
    manifest = build_manifest(world, tables, file_entries, injections, aucs)
    manifest_key = oracle_manifest_key(cfg.run_name)
    text = json.dumps(manifest, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False)
    store.put_bytes(manifest_key, (text + "\n").encode())

    rows = {name: int(ht.table.num_rows) for name, ht in tables.items()}
    seconds = time.perf_counter() - started
    overall = float("nan") if aucs["overall"] is None else aucs["overall"]
    log.info("simulation written", extra={"run_name": cfg.run_name, "files": len(files), "rows": rows,
                                          "anomalies": len(injections), "bayes_optimal_auc": round(overall, 4),
                                          "seconds": round(seconds, 2), "manifest": manifest_key})
    return SimulationResult(files=files, rows=rows, manifest_key=manifest_key, truth_key=truth_key,
                            bayes_optimal_auc=overall, bayes_optimal_auc_pre_drift=aucs["pre_drift"],
                            bayes_optimal_auc_post_drift=aucs["post_drift"],
                            anomalies=[i.to_json() for i in injections], seconds=seconds)


def _write_landing(cfg: SimulationConfig, store: ObjectStore, tables: dict[str, HourlyTable],
                   progress: bool) -> tuple[list[str], list[dict[str, Any]], list[Injection]]:
    files: list[str] = []
    entries: list[dict[str, Any]] = []
    injections: list[Injection] = []
    start = cfg.start_datetime
    bar = tqdm(range(cfg.hours), desc=f"simulate {cfg.run_name}", unit="h", file=sys.stderr, disable=not progress)
    for h in bar:
        hour = start + dt.timedelta(hours=h)
        for name, ht in tables.items():
            rows = ht.rows_of_hour(h)
            if rows.num_rows == 0:
                continue
            key = landing_key(name, hour)
            rendered = render_file(TABLES[name], key, partition_key(hour), rows, cfg.anomalies, cfg.seed)
            store.put_bytes(key, rendered.payload)
            files.append(key)
            injections.extend(rendered.injections)
            entries.append({"key": key, "table": name, "partition": partition_key(hour), "hour": h,
                            "rows": rows.num_rows, "records": rendered.records, "bytes": len(rendered.payload),
                            "sha256": hashlib.sha256(rendered.payload).hexdigest(),
                            "post_decision_rows": ht.post_decision_rows_of_hour(h),
                            "anomalies": sorted({i.kind for i in rendered.injections})})
    bar.close()
    return files, entries, injections


def truth_table(world: World) -> pa.Table:
    """One row per application: SK_ID_CURR, DECISION_TIME, hour, TRUE_PD, TARGET, drifted."""
    a = world.app
    return pa.table({
        "SK_ID_CURR": pa.array(a.sk_id_curr, pa.int64()),
        "DECISION_TIME": pa.array(a.decision_ts * 1000, pa.timestamp("ms")),
        "hour": pa.array(a.hour, pa.int64()),
        "TRUE_PD": pa.array(world.pd, pa.float64()),
        "TARGET": pa.array(world.target, pa.int64()),
        "drifted": pa.array(a.drifted, pa.bool_()),
    })


def _aucs(world: World) -> dict[str, Any]:
    """Bayes-optimal AUC overall and before/after the drift hour (None when undefined, e.g. < 2 rows)."""
    drifted = world.app.drifted

    def auc(mask: np.ndarray) -> float | None:
        value = bayes_optimal_auc(world.pd[mask]) if mask.sum() > 1 else float("nan")
        return None if np.isnan(value) else value

    return {"overall": auc(np.ones(len(drifted), bool)), "pre_drift": auc(~drifted), "post_drift": auc(drifted)}


def _rates(world: World, mask: np.ndarray) -> dict[str, float | int | None]:
    n = int(mask.sum())
    return {"applications": n, "mean_true_pd": float(world.pd[mask].mean()) if n else None,
            "target_rate": float(world.target[mask].mean()) if n else None}


def build_manifest(world: World, tables: dict[str, HourlyTable], files: list[dict[str, Any]],
                   injections: list[Injection], aucs: dict[str, Any]) -> dict[str, Any]:
    """The oracle manifest: everything a downstream test needs to know about the run (no PII)."""
    cfg = world.cfg
    start = cfg.start_datetime
    counts = {name: {partition_key(start + dt.timedelta(hours=h)): int(ht.offsets[h + 1] - ht.offsets[h])
                     for h in range(cfg.hours) if ht.offsets[h + 1] > ht.offsets[h]}
              for name, ht in tables.items()}
    post_tables = [t for t in ("installments_payments", "credit_card_balance") if t in tables]
    ds = cfg.effective_drift_start
    written_outcomes = tables["loan_outcome"].table.num_rows if "loan_outcome" in tables else 0
    return {
        "manifest_version": MANIFEST_VERSION,
        "run_name": cfg.run_name,
        "seed": cfg.seed,
        "config": cfg.to_json(),
        "window": {"start": start.isoformat(timespec="seconds"),
                   "end": (start + dt.timedelta(hours=cfg.hours)).isoformat(timespec="seconds"),
                   "hours": cfg.hours, "first_partition": partition_key(start),
                   "last_partition": partition_key(start + dt.timedelta(hours=cfg.hours - 1))},
        "tables": list(tables),
        "counts": counts,
        "rows": {name: int(ht.table.num_rows) for name, ht in tables.items()},
        "files": files,
        "anomalies": [i.to_json() for i in injections],
        "anomaly_counts": _anomaly_counts(injections),
        "base_default_rate": {"overall": _rates(world, np.ones(len(world.app), bool)),
                              "pre_drift": _rates(world, ~world.app.drifted),
                              "post_drift": _rates(world, world.app.drifted), "target": 0.08},
        "bayes_optimal_auc": aucs,
        "drift": {"scenario": cfg.drift, "start_hour": ds, "description": DRIFT_DESCRIPTIONS[cfg.drift],
                  "start_time": None if ds is None else (start + dt.timedelta(hours=ds)).isoformat(timespec="seconds"),
                  "drifted_applications": int(world.app.drifted.sum())},
        "pd_formula": list(PD_FORMULA),
        "pd_parameters": {"intercept": INTERCEPT, "risk_scale": RISK_SCALE,
                          "concept_drift_shift": CONCEPT_DRIFT_SHIFT,
                          "dpd_weights": DPD_WEIGHTS.tolist()},
        "outcomes": {"delay_hours": cfg.outcome_delay_hours, "written": int(written_outcomes),
                     "not_matured": len(world.app) - int(written_outcomes) if "loan_outcome" in tables else None},
        "post_decision": {
            "description": "rows dated after the decision about the new loan (SK_ID_PREV not in previous_application),"
                           " landing 1-6 hours after the application; features must never use them",
            "share": POST_DECISION_SHARE, "max_lag_hours": POST_DECISION_MAX_LAG_HOURS,
            "applicants": len(world.post.applicant),
            "sk_id_prev_range": [int(world.post.sk_id_prev[0]), int(world.post.sk_id_prev[-1])]
            if len(world.post.applicant) else None,
            "rows_written": {t: int(tables[t].post_decision.sum()) for t in post_tables},
            "rows_after_window": {t: tables[t].dropped_after_window for t in post_tables},
        },
        "history": {"bureau_credits_per_application": float(len(world.bureau) / max(len(world.app), 1)),
                    "previous_applications_per_application": float(len(world.prev) / max(len(world.app), 1))},
        "formats": {name: TABLES[name].landing_format for name in tables},
        "columns_not_simulated": {name: {"null": list(ht.null_columns), "absent": list(ht.absent_columns)}
                                  for name, ht in tables.items() if ht.null_columns or ht.absent_columns},
        "format_notes": FORMAT_NOTES,
        "truth_columns": {"SK_ID_CURR": "int64", "DECISION_TIME": "timestamp[ms], naive UTC",
                          "hour": "int64, 0-based hour index of the decision in the window",
                          "TRUE_PD": "float64", "TARGET": "int64 0/1", "drifted": "bool"},
    }


def _anomaly_counts(injections: list[Injection]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for i in injections:
        c = out.setdefault(i.kind, {"files": 0, "rows": 0})
        c["files"] += 1
        c["rows"] += i.rows
    return out
