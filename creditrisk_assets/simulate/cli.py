"""Command line: ``creditrisk simulate --hours 48 --rows-per-hour 300 --seed 7 ...`` (or ``python -m
creditrisk_assets.simulate ...``, the same command).

Writes into the object store chosen by the ``CREDITRISK_*`` settings (a folder under
``$CREDITRISK_HOME`` by default, or S3), shows a progress bar over hours on stderr and prints
a one-line summary on stdout. ``--format homecredit --out DIR`` writes the same world as the
published Home Credit files into a local folder instead (``simulate/homecredit.py``), for
``creditrisk import homecredit``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli_common import start_command
from ..contracts import TABLE_NAMES
from ..resources import ObjectStoreError, open_store_for_writing
from .config import ANOMALY_KINDS, DRIFT_SCENARIOS, SimulationConfig
from .engine import simulate

FORMATS = ("landing", "homecredit")


def _anomaly(text: str) -> tuple[str, float]:
    kind, sep, rate = text.partition("=")
    if not sep or kind not in ANOMALY_KINDS:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KIND=RATE with KIND one of {', '.join(ANOMALY_KINDS)}")
    try:
        value = float(rate)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: RATE must be a number in [0, 1]") from exc
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: RATE must be within [0, 1]")
    return kind, value


def _tables(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in names if t not in TABLE_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a comma-separated subset of {', '.join(TABLE_NAMES)}")
    return names


def build_parser(default_start: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="creditrisk simulate",
                                 description="Write hourly drops of simulated credit-risk data into the landing area.")
    ap.add_argument("--hours", type=int, default=48, help="hours to simulate (default 48)")
    ap.add_argument("--start", default=default_start,
                    help=f"first hour, YYYY-MM-DDTHH:MM UTC (default {default_start}, from CREDITRISK_PARTITIONS_START)")
    ap.add_argument("--rows-per-hour", type=int, default=300, help="applications per hour (default 300)")
    ap.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    ap.add_argument("--drift", choices=DRIFT_SCENARIOS, default="none", help="drift scenario (default none)")
    ap.add_argument("--drift-start-hour", type=int, default=None,
                    help="0-based hour the drift starts (default: half of --hours)")
    ap.add_argument("--anomaly", type=_anomaly, action="append", default=[], metavar="KIND=RATE",
                    help=f"inject anomalies, repeatable; KIND: {', '.join(ANOMALY_KINDS)}")
    ap.add_argument("--outcome-delay-hours", type=int, default=12, help="hours from decision to outcome (default 12)")
    ap.add_argument("--tables", type=_tables, default=None, help="comma-separated tables to write (default all)")
    ap.add_argument("--run-name", default="default", help="oracle/<run-name>/ holds the manifest (default 'default')")
    ap.add_argument("--format", choices=FORMATS, default="landing",
                    help="landing: hourly drops into the object store (default); homecredit: the published "
                         "Home Credit files (application_train.csv, bureau.csv, ...) into --out")
    ap.add_argument("--out", type=Path, default=None, help="folder for --format homecredit")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Run the simulator; 0 on success, 2 on a wrong option, 1 when the object store fails (a wrong setting
    raises ``SettingsError``: ``creditrisk simulate`` prints it as one line)."""
    settings, args = start_command(build_parser, argv)
    if args.format == "homecredit" and args.out is None:
        print("error: --format homecredit needs --out DIR (the folder to write the published files into)",
              file=sys.stderr)
        return 2
    if args.format == "landing" and args.out is not None:
        print("error: --out is for --format homecredit; landing drops go to the configured object store",
              file=sys.stderr)
        return 2
    try:
        cfg = SimulationConfig(start=args.start, hours=args.hours, rows_per_hour=args.rows_per_hour, seed=args.seed,
                               drift=args.drift, drift_start_hour=args.drift_start_hour, anomalies=dict(args.anomaly),
                               outcome_delay_hours=args.outcome_delay_hours, tables=args.tables,
                               run_name=args.run_name)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.format == "homecredit":
        return _export(cfg, args.out, progress=not args.no_progress)
    try:
        store = open_store_for_writing(settings)
        result = simulate(cfg, store, progress=not args.no_progress)
    except ObjectStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    total = sum(result.rows.values())
    print(f"simulated {cfg.hours}h from {cfg.start}: {len(result.files)} files, {total:,} rows "
          f"({', '.join(f'{t}={n:,}' for t, n in result.rows.items())}), "
          f"{len(result.anomalies)} anomalies, Bayes-optimal AUC {result.bayes_optimal_auc:.4f}, "
          f"manifest {store.uri(result.manifest_key)} ({result.seconds:.1f}s)")
    return 0


def _export(cfg: SimulationConfig, out: Path, progress: bool) -> int:
    from .homecredit import ExportError, export_homecredit

    try:
        result = export_homecredit(cfg, out, progress=progress)
    except (ExportError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {cfg.hours}h of simulated data from {cfg.start} in the Home Credit layout to {out}: "
          f"{', '.join(f'{name}={n:,}' for name, n in result.files.items())}; truth {result.truth_file.name}"
          + (f"; not simulated: {', '.join(result.skipped)}" if result.skipped else ""))
    print(f"import with: {result.import_command()}")
    return 0
