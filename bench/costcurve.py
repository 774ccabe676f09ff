"""Cost curve: wall time and peak memory of ingest, silver and gold at 0.1M / 1M / 10M activity rows.

Per size (a data home of its own under /tmp): the simulator writes ``hours`` × ``per_hour`` applications with
their activity rows (not timed; ~124 activity rows per application, so the hours are chosen to land near the
size asked for), then each step runs in a **fresh interpreter** (``python -m bench.costcurve --step …``),
through the project's own functions, on the whole window:

* ingest: landing → bronze, ``ingest_partitions`` for every table (what ``bronze_ingest`` runs);
* silver: bronze → silver, ``run_silver`` for every table (what ``silver_tables`` runs), in chronological chunks
  of ``CREDITRISK_SILVER_CHUNK_MB`` (the default, 64 MB of bronze);
* silver_one_pass, the baseline in the same run: the same again (a rerun of the same hours) with
  ``CREDITRISK_SILVER_CHUNK_MB=0``, the whole window typed and validated at once (what silver did before chunks);
* gold: ``dbt build`` of the window at the latest silver snapshot (``run_dbt``, what ``gold_dbt`` runs; dbt is
  a process of its own, its peak counted: ``wait4`` reports the largest RSS of the step's process tree).

Printed per step and size: the step's own seconds (measured inside the child, after its imports), the child's
wall time, its peak RSS (``os.wait4`` rusage ``ru_maxrss``: the largest process of its tree), and between
consecutive sizes the log-log slopes of time and of memory vs rows (goal: time slope ≤ 1.0, memory flat).

    PATH=.venv/bin:$PATH .venv/bin/python -m bench.costcurve [--sizes 0.1M,1M,10M] [--per-hour 1000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SCRATCH = Path("/tmp/creditrisk-bench")
START = dt.datetime(2026, 10, 1)
ACTIVITY_PER_APPLICATION = 124  # the simulator's default world (bench/features.py: 12.4M rows for 100k)
STEPS = ["ingest", "silver", "silver_one_pass", "gold"]
# the baseline beside silver: the same run_silver with chunking off (the whole window typed and validated at once)
STEP_ENV = {"silver_one_pass": {"CREDITRISK_SILVER_CHUNK_MB": "0"}}
ACTIVITY = ("bureau", "bureau_balance", "previous_application", "installments_payments", "credit_card_balance",
            "pos_cash_balance")


def parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("KM")) * scale)


def shape(rows: int, per_hour: int) -> tuple[int, int]:
    """(hours, applications per hour) whose activity rows come near ``rows``."""
    applications = max(1, round(rows / ACTIVITY_PER_APPLICATION))
    hours = max(1, round(applications / per_hour))
    return hours, max(1, round(applications / hours))


# ----------------------------------------------------------------------------------------- one step (child)
def run_step(step: str, home: Path, hours: int, per_hour: int, seed: int) -> dict[str, Any]:
    """One step in this (fresh) interpreter; returns its own seconds and row counts."""
    from creditrisk_assets.resources import Lake, object_store_from_settings
    from creditrisk_assets.settings import Settings

    settings = Settings.from_env({"CREDITRISK_HOME": str(home), "CREDITRISK_LOG_LEVEL": "WARNING",
                                  **STEP_ENV.get(step, {})})
    store, lake = object_store_from_settings(settings), Lake(settings)
    window = [START + dt.timedelta(hours=h) for h in range(hours)]
    out: dict[str, Any] = {}
    if step == "simulate":
        from creditrisk_assets.simulate import SimulationConfig, simulate

        t0 = time.perf_counter()
        sim = simulate(SimulationConfig(start=START.strftime("%Y-%m-%dT%H:%M"), hours=hours, rows_per_hour=per_hour,
                                        seed=seed, run_name="costcurve"), store)
        out = {"seconds": time.perf_counter() - t0, "rows": sim.rows}
    elif step == "ingest":
        from creditrisk_assets.contracts import TABLES
        from creditrisk_assets.ingest.bronze import ingest_partitions

        t0 = time.perf_counter()
        rows = {t: sum(r.rows for r in ingest_partitions(store, lake, t, window, run_id="costcurve", preview_rows=0,
                                                         workers=settings.workers)) for t in TABLES}
        out = {"seconds": time.perf_counter() - t0, "rows": rows}
    elif step in ("silver", "silver_one_pass"):
        from creditrisk_assets.contracts import TABLES
        from creditrisk_assets.quality.runner import run_silver

        t0 = time.perf_counter()
        runs = {t: run_silver(store, lake, settings, table, window, "costcurve") for t, table in TABLES.items()}
        out = {"seconds": time.perf_counter() - t0, "rows": {t: r.accounting.silver_rows for t, r in runs.items()}}
        assert all(r.accounting.balanced for r in runs.values())
    elif step == "gold":
        from creditrisk_assets.gold.build import BuildWindow, run_dbt

        con = lake.connect_lake()
        try:
            snapshot = Lake.snapshot_id(con)
        finally:
            con.close()
        t0 = time.perf_counter()
        run_dbt(settings, ["build"], BuildWindow.between(window[0], window[-1] + dt.timedelta(hours=1), snapshot))
        seconds = time.perf_counter() - t0
        con = lake.connect_lake()
        try:
            gold = con.execute("SELECT count(*) FROM lake.gold.applicant_features").fetchone()[0]  # type: ignore[index]
        finally:
            con.close()
        out = {"seconds": seconds, "rows": {"applicant_features": gold}}
    else:
        raise SystemExit(f"unknown step {step}")
    return out


def child(step: str, home: Path, hours: int, per_hour: int, seed: int) -> dict[str, Any]:
    """``run_step`` in a fresh interpreter: its result, wall seconds and peak RSS (bytes) of its process tree."""
    cmd = [sys.executable, "-m", "bench.costcurve", "--step", step, "--home", str(home), "--hours", str(hours),
           "--per-hour", str(per_hour), "--seed", str(seed)]
    env = {**os.environ, "CREDITRISK_HOME": str(home), "CREDITRISK_LOG_LEVEL": "WARNING",
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"step {step} failed ({proc.returncode}): {output[-2000:]}")
    result = json.loads(output.strip().splitlines()[-1])
    return {**result, "wall": wall, "rss": usage.ru_maxrss * 1024}


def slope(a: tuple[float, float], b: tuple[float, float]) -> float:
    """log-log slope between (rows, value) points a and b."""
    return math.log(b[1] / a[1]) / math.log(b[0] / a[0])


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="bench/costcurve.py")
    ap.add_argument("--sizes", default="0.1M,1M,10M", help="activity rows per size, comma-separated (K/M suffixes)")
    ap.add_argument("--per-hour", type=int, default=1000, help="applications per hour (the hours follow the size)")
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--keep", action="store_true", help="keep the scratch data homes")
    ap.add_argument("--step", help=argparse.SUPPRESS)  # the child side
    ap.add_argument("--home", help=argparse.SUPPRESS)
    ap.add_argument("--hours", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.step:
        print(json.dumps(run_step(args.step, Path(args.home), args.hours, args.per_hour, args.seed)), flush=True)
        return {}

    print(f"  load at start {load()}", flush=True)
    points: dict[str, list[tuple[float, dict[str, Any]]]] = {s: [] for s in STEPS}
    for size in (parse_size(s) for s in args.sizes.split(",")):
        hours, per_hour = shape(size, args.per_hour)
        home = SCRATCH / f"costcurve-{size}"
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        try:
            sim = child("simulate", home, hours, per_hour, args.seed)
            rows = sum(n for t, n in sim["rows"].items() if t in ACTIVITY)
            print(f"  size {size:,}: {hours} h x {per_hour} applications = {sim['rows']['application']:,} applications, "
                  f"{rows:,} activity rows, {sum(sim['rows'].values()):,} rows in all (simulated in {sim['wall']:.0f} s, "
                  f"not timed)", flush=True)
            for step in STEPS:
                r = child(step, home, hours, per_hour, args.seed)
                points[step].append((rows, r))
                print(f"    {step:<15} {r['seconds']:8.2f} s own  {r['wall']:8.2f} s wall  "
                      f"peak RSS {r['rss'] / 2**20:8.0f} MiB   load {load()}", flush=True)
        finally:
            if not args.keep:
                shutil.rmtree(home, ignore_errors=True)

    print(f"  load at end {load()}")
    print("  log-log slopes vs activity rows (time: step's own seconds; goal <= 1.0; memory: peak RSS, flat = 0):")
    out: dict[str, Any] = {"points": {s: [(n, r["seconds"], r["wall"], r["rss"]) for n, r in p] for s, p in points.items()}}
    for step, p in points.items():
        for (n1, r1), (n2, r2) in zip(p, p[1:], strict=False):
            ts, ws, ms = (slope((n1, r1[k]), (n2, r2[k])) for k in ("seconds", "wall", "rss"))
            print(f"    {step:<15} {n1 / 1e6:6.2f}M -> {n2 / 1e6:6.2f}M rows: time {ts:5.2f} (wall {ws:5.2f}), "
                  f"memory {ms:5.2f} ({r1['rss'] / 2**20:,.0f} -> {r2['rss'] / 2**20:,.0f} MiB)")
            out[f"{step}_{n2}_time_slope"], out[f"{step}_{n2}_memory_slope"] = ts, ms
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
