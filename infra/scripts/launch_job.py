"""Launch a Dagster job on a deployed instance through its webserver's GraphQL API.

Used by .github/workflows/nightly.yml (through `kubectl port-forward` to the webserver):
    python infra/scripts/launch_job.py --url http://127.0.0.1:3000 --job ingest \
        --partition-range 2026-10-01-00:00...2026-10-01-23:00
    python infra/scripts/launch_job.py --url http://127.0.0.1:3000 --job monitor
A partition range becomes one run (the project's assets use BackfillPolicy.single_run()).
Needs only `dagster-graphql` (same version as the lock's dagster). Waits for the run to finish
with --wait and exits non-zero unless it succeeded.
"""

from __future__ import annotations

import argparse
import sys
import time
from urllib.parse import urlparse


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="Dagster webserver base URL")
    ap.add_argument("--job", required=True)
    ap.add_argument("--location", default="creditrisk", help="code location (user deployment) name")
    ap.add_argument("--partition-range", default="", help="START...END hourly partition keys (one run)")
    ap.add_argument("--wait", action="store_true", help="wait for the run and fail unless it succeeded")
    ap.add_argument("--timeout-s", type=int, default=6 * 3600)
    args = ap.parse_args(argv)

    from dagster_graphql import DagsterGraphQLClient

    url = urlparse(args.url)
    client = DagsterGraphQLClient(url.hostname or "127.0.0.1", port_number=url.port, use_https=url.scheme == "https")
    tags = {"creditrisk/launched_by": "github-actions"}
    if args.partition_range:
        start, sep, end = args.partition_range.partition("...")
        if not sep or not start or not end:
            ap.error("--partition-range must be START...END")
        tags |= {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
    run_id = client.submit_job_execution(args.job, repository_location_name=args.location, tags=tags)
    print(f"launched {args.job}: run {run_id}")
    if not args.wait:
        return 0
    deadline = time.monotonic() + args.timeout_s
    while time.monotonic() < deadline:
        status = client.get_run_status(run_id).value
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            print(f"run {run_id}: {status}")
            return 0 if status == "SUCCESS" else 1
        time.sleep(30)
    print(f"run {run_id}: still running after {args.timeout_s} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
