"""``creditrisk`` command: simulate, import, demo, serve, manual model promotion / rollback, erasure, retention."""

from __future__ import annotations

import argparse
import datetime as dt
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["simulate"]:
        from .simulate.cli import main as simulate_main

        return simulate_main(argv[1:])
    if argv[:2] == ["import", "homecredit"]:
        from .ingest.homecredit import main as homecredit_main

        return homecredit_main(argv[2:])
    if argv[:2] == ["import", "table"]:
        from .ingest.mapping import main as mapping_main

        return mapping_main(argv[2:])
    if argv[:1] == ["import"]:
        print("creditrisk import: name what to import: `creditrisk import homecredit --source DIR` or "
              "`creditrisk import table --source FILE --mapping MAPPING.yml`", file=sys.stderr)
        return 2
    if argv[:1] == ["serve"]:
        return serve_main(argv[1:])
    if argv[:1] == ["demo"]:
        from .demo import main as demo_main

        return demo_main(argv[1:])
    ap = argparse.ArgumentParser(prog="creditrisk", description="creditrisk commands "
                                 "(also: `creditrisk simulate --help`, `creditrisk import homecredit --help`, "
                                 "`creditrisk import table --help`, `creditrisk serve --help`, `creditrisk demo`)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("promote", help="make a registered model version the champion (recorded)")
    p.add_argument("--version", required=True)
    p.add_argument("--reason", default="manual promotion")
    sub.add_parser("rollback", help="put the previous champion back")
    sub.add_parser("models", help="list versions, aliases and the promotion history")
    p = sub.add_parser("forget", help="erase one applicant (by national id) from silver, quarantine, gold and the "
                       "prediction log; prints counts per table, never the id")
    p.add_argument("--national-id", required=True)
    sub.add_parser("retention", help="delete landing / bronze / prediction-log hours older than "
                   "CREDITRISK_RETENTION_DAYS (0: keep); prints what was deleted")
    args = ap.parse_args(argv)
    if args.cmd in ("forget", "retention"):
        return privacy_main(args)

    from .modeling.registry import (
        CHALLENGER,
        CHAMPION,
        REGISTERED_MODEL,
        alias_version,
        connect,
        history,
        rollback,
        set_champion,
    )
    from .settings import Settings

    settings = Settings.from_env()
    client = connect(settings.resolved_mlflow_uri, settings.mlflow_artifact_location)
    now = dt.datetime.now(dt.UTC).isoformat()
    if args.cmd == "promote":
        previous = set_champion(client, str(args.version), args.reason, now)
        print(f"champion: version {args.version} (was {previous or 'none'})")
    elif args.cmd == "rollback":
        print(f"champion: version {rollback(client, now)} (rolled back)")
    else:
        for mv in client.search_model_versions(f"name='{REGISTERED_MODEL}'"):
            print(f"version {mv.version}  run {mv.run_id}  {mv.tags.get('gate_decision', '')}")
        print(f"champion: {alias_version(client, CHAMPION)}  challenger: {alias_version(client, CHALLENGER)}")
        for move in history(client):
            print(f"  {move['at']}  -> {move['version']} (from {move['previous'] or '-'}): {move['reason'][:80]}")
    return 0


def privacy_main(args: argparse.Namespace) -> int:
    """``creditrisk forget`` / ``creditrisk retention`` (``creditrisk_assets/privacy.py``)."""
    from .privacy import apply_retention, forget
    from .resources import Lake, object_store_from_settings
    from .settings import Settings

    settings = Settings.from_env()
    store = object_store_from_settings(settings)
    store.check()
    if args.cmd == "forget":
        report = forget(settings, store, Lake(settings), args.national_id)
        print("\n".join(report.lines()))
        return 0
    deleted = apply_retention(settings, store, dt.datetime.now(dt.UTC))
    if not deleted:
        print("retention: CREDITRISK_RETENTION_DAYS is 0, nothing deleted")
    for name, value in deleted.items():
        print(f"{name}: {value}")
    return 0


def serve_main(argv: list[str]) -> int:
    """``creditrisk serve [run|start|stop|status]``: the Ray Serve app with the registry's champion."""
    import signal
    import threading

    from .settings import Settings

    ap = argparse.ArgumentParser(prog="creditrisk serve", description="Serve the champion over HTTP with Ray Serve.")
    ap.add_argument("action", nargs="?", default="run", choices=["run", "start", "stop", "status"],
                    help="run: in the foreground until Ctrl-C / SIGTERM (containers); start: in the background; "
                         "stop: graceful stop (flushes the prediction log); status: what is running")
    args = ap.parse_args(argv)
    from serving import runtime

    settings = Settings.from_env()
    running = runtime.running_cluster(settings)
    if args.action == "status":
        print(f"serving at {running.url} (ray {running.address}, pid {running.pid})" if running else "not running")
        return 0 if running else 1
    if args.action == "stop":
        if running:
            runtime.stop_cluster(running)
            runtime.cluster_file(settings).unlink(missing_ok=True)
        print("stopped" if running else "not running")
        return 0
    cluster, config = runtime.ensure_deployed(settings)
    print(f"serving champion version {config['champion']} (challenger {config.get('challenger') or 'none'}, "
          f"mode {config['mode']}) at {cluster.url}")
    print(f"  curl -s {cluster.url}/health")
    print(f"  curl -s -X POST {cluster.url}/predict -H 'content-type: application/json' -d '{{\"sk_id_curr\": 100001}}'")
    if args.action == "start" or settings.ray_address != "local":
        return 0
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    runtime.stop_cluster(cluster)
    runtime.cluster_file(settings).unlink(missing_ok=True)
    print("stopped; prediction log flushed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
