"""Bronze → silver over >= 1M application rows with injected anomalies.

Project path: ``run_silver`` (DuckDB SQL: typing, every contract rule, dedup, HMAC, age, quarantine
payloads, DuckLake write, accounting). Baseline, same run, same bronze: pandas reading the bronze
Parquet and applying the same rules row by row in Python (type parse, null, range, allowed values,
dedup on the key, HMAC-SHA256 of identifiers, age from date of birth). Prints rows/s and the ratio.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac

import pandas as pd

from bench.common import hourly_application_setup, report, timed
from creditrisk_assets.contracts import APPLICATION, Column
from creditrisk_assets.ingest.bronze import ingest_partitions
from creditrisk_assets.quality.runner import bronze_uris, run_silver
from creditrisk_assets.simulate import SimulationConfig, simulate

ANOMALIES = {"wrong_type": 0.01, "duplicate_rows": 0.01, "malformed_row": 0.005, "missing_column": 0.02,
             "extra_column": 0.02}


def _parse(c: Column, v: object) -> tuple[object, str | None]:
    if v is None or (isinstance(v, float) and pd.isna(v)) or str(v).strip() == "":
        return None, None
    s = str(v).strip()
    try:
        if c.dtype == "int":
            return int(s), None
        if c.dtype == "float":
            return float(s.replace(",", ".")) if s.count(",") == 1 and "." not in s else float(s), None
        if c.dtype == "date":
            for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%Y/%m/%d", "%d.%m.%Y"):
                try:
                    return dt.datetime.strptime(s, fmt).date(), None
                except ValueError:
                    pass
            raise ValueError(s)
        if c.dtype == "timestamp":
            return dt.datetime.fromisoformat(s), None
    except ValueError:
        return None, f"type: {c.name}"
    return s, None


def baseline_validate(frame: pd.DataFrame, key: str, seen: set[object] | None = None) -> tuple[int, int]:
    """The same rules, one row at a time (what a pandas job with row rules does)."""
    cols = [c for c in APPLICATION.columns]
    seen = set() if seen is None else seen  # keys seen in earlier files of the same run
    good = bad = 0
    data_cols = set(frame.columns) - {c for c in frame.columns if c.startswith("_")}
    if data_cols and any(c.required and c.name not in data_cols for c in cols):
        return 0, len(frame)  # a file without a required column is rejected whole, as in the project
    records = frame.to_dict("records")
    for row in records:
        if row.get("_parse_error"):
            bad += 1
            continue
        errors, out = [], {}
        for c in cols:
            value, err = _parse(c, row.get(c.name))
            if err:
                errors.append(err)
                continue
            if value is None and not c.nullable:
                errors.append(f"not_null: {c.name}")
            if value is not None and c.min is not None and isinstance(value, (int, float)) and value < c.min:
                errors.append(f"range: {c.name}")
            if value is not None and c.max is not None and isinstance(value, (int, float)) and value > c.max:
                errors.append(f"range: {c.name}")
            if value is not None and c.allowed and value not in c.allowed:
                errors.append(f"allowed: {c.name}")
            if c.pii == "identifier" and value is not None:
                value = hmac.new(key.encode(), str(value).encode(), hashlib.sha256).hexdigest()
            out[c.name] = value
        dob, when = out.get("DATE_OF_BIRTH"), out.get("DECISION_TIME")
        if isinstance(dob, dt.date) and isinstance(when, dt.date):  # parsed date / datetime, else None
            age = when.year - dob.year - ((when.month, when.day) < (dob.month, dob.day))
            if not 18 <= age <= 100:
                errors.append("range: age")
        if not errors:
            k = out["SK_ID_CURR"]
            if k in seen:
                errors.append("duplicate")
            seen.add(k)
        if errors:
            bad += 1
        else:
            good += 1
    return good, bad


def main(argv: list[str] | None = None) -> dict[str, float]:
    args, settings, store, lake, start = hourly_application_setup("validate", argv)
    hours = [start + dt.timedelta(hours=h) for h in range(args.hours)]
    simulate(SimulationConfig(start=start.strftime("%Y-%m-%dT%H:%M"), hours=args.hours, rows_per_hour=args.rows_per_hour,
                              seed=2, tables=["application"], anomalies=ANOMALIES, run_name="bench"), store)
    bronze_rows = sum(r.rows for r in ingest_partitions(store, lake, "application", hours, run_id="bench"))
    uris = bronze_uris(store, "application", hours)
    print(f"  data: {bronze_rows:,} bronze application rows in {len(uris)} files (anomalies {ANOMALIES})")

    def baseline() -> tuple[int, int]:
        good = bad = 0
        seen: set[object] = set()
        for u in uris:
            g, b = baseline_validate(pd.read_parquet(u), settings.pii_key, seen)
            good, bad = good + g, bad + b
        return good, bad

    chunks: list[int] = []

    def project(chunk_mb: int | None = None) -> tuple[int, int]:
        s = settings if chunk_mb is None else dataclasses.replace(settings, silver_chunk_mb=chunk_mb)
        run = run_silver(store, lake, s, APPLICATION, hours, "bench")
        assert run.accounting.balanced
        chunks.append(run.result.chunks)
        return run.accounting.silver_rows, run.accounting.quarantined_rows

    base_s, (bg, bb) = timed(baseline)
    proj_s, (pg, pb) = timed(project)
    one_s, (og, ob) = timed(lambda: project(0))  # the same hours again in one pass (a rerun: same rows)
    base_rate = report("pandas + row rules (baseline)", bg + bb, base_s)
    proj_rate = report(f"creditrisk bronze -> silver (DuckDB SQL, {chunks[0]} chunk(s) of "
                       f"CREDITRISK_SILVER_CHUNK_MB={settings.silver_chunk_mb})", pg + pb, proj_s)
    report("creditrisk, the same in one pass (CREDITRISK_SILVER_CHUNK_MB=0)", og + ob, one_s)
    assert (og, ob) == (pg, pb)
    print(f"  silver/quarantine: project {pg:,}/{pb:,}, baseline {bg:,}/{bb:,}")
    ratio = proj_rate / base_rate
    print(f"  ratio project/baseline: {ratio:.2f}x  (goal >= 5x)")
    return {"rows": pg + pb, "baseline_rows_s": base_rate, "project_rows_s": proj_rate, "ratio": ratio}


if __name__ == "__main__":
    main()
