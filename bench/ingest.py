"""Landing → bronze for >= 1M application rows in hourly CSV files.

Project path: ``ingest_partition`` (sha256, encoding check, DuckDB parse keeping malformed rows,
lineage columns, zstd Parquet, audit log). Baseline, same run, same files: pandas
``read_csv → to_parquet`` per file. Prints rows/s for both and the ratio.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from bench.common import hourly_application_setup, report, timed
from creditrisk_assets.ingest.bronze import ingest_partitions
from creditrisk_assets.simulate import SimulationConfig, simulate


def main(argv: list[str] | None = None) -> dict[str, float]:
    args, settings, store, lake, start = hourly_application_setup("ingest", argv)
    cfg = SimulationConfig(start=start.strftime("%Y-%m-%dT%H:%M"), hours=args.hours,
                           rows_per_hour=args.rows_per_hour, seed=1, tables=["application"], run_name="bench")
    sim_s, sim = timed(lambda: simulate(cfg, store, progress=False))
    hours = [start + dt.timedelta(hours=h) for h in range(args.hours)]
    files = [o for o in store.list("landing/application/")]
    total = sim.rows["application"]
    print(f"  data: {total:,} application rows in {len(files)} hourly CSV files "
          f"({sum(o.size for o in files) / 1e6:.0f} MB), simulated in {sim_s:.1f}s")


    def project() -> int:
        return sum(r.rows for r in ingest_partitions(store, lake, "application", hours, run_id="bench"))

    out = settings.home / "pandas"
    out.mkdir(exist_ok=True)

    def baseline() -> int:
        n = 0
        for i, o in enumerate(files):
            frame = pd.read_csv(store.uri(o.key))
            frame.to_parquet(out / f"{i}.parquet", index=False)
            n += len(frame)
        return n

    base_s, base_rows = timed(baseline)
    proj_s, proj_rows = timed(project)
    assert proj_rows == total == base_rows, (proj_rows, total, base_rows)
    base_rate = report("pandas read_csv -> to_parquet (baseline)", base_rows, base_s)
    proj_rate = report("creditrisk landing -> bronze", proj_rows, proj_s)
    ratio = proj_rate / base_rate
    print(f"  ratio project/baseline: {ratio:.2f}x  (goal >= 3x)")
    return {"rows": total, "baseline_rows_s": base_rate, "project_rows_s": proj_rate, "ratio": ratio}


if __name__ == "__main__":
    main()
