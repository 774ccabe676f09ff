"""``creditrisk`` command: simulate, import, demo, serve, model lifecycle (promote, approve, retire, rollback,
models), erasure, retention."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from .settings import Settings


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
    p = sub.add_parser("promote", help="make a registered model version the champion: runs the gate on its recorded "
                       "metrics against the champion's; --override promotes a refused version (recorded)")
    p.add_argument("--version", required=True)
    p.add_argument("--reason", default="manual promotion")
    p.add_argument("--by", default="", help="who promotes (recorded)")
    p.add_argument("--override", action="store_true", help="promote even if the gate refuses (recorded as an override)")
    p = sub.add_parser("approve", help="approve a challenger that passed the gate and awaits approval "
                       "(CREDITRISK_PROMOTION_APPROVAL=required): it becomes champion")
    p.add_argument("--version", required=True)
    p.add_argument("--by", required=True, help="who approves (recorded)")
    p.add_argument("--reason", required=True, help="why (recorded)")
    p = sub.add_parser("retire", help="retire a version: aliases removed, tagged `retired`, artefacts kept")
    p.add_argument("--version", required=True)
    p.add_argument("--reason", default="retired by hand")
    p.add_argument("--by", default="")
    p = sub.add_parser("rollback", help="put the previous champion back")
    p.add_argument("--by", default="", help="who rolls back (recorded)")
    sub.add_parser("models", help="list versions, aliases, approvals, retirements and the promotion history")
    p = sub.add_parser("forget", help="erase one applicant (by national id) from silver, quarantine, gold and the "
                       "prediction log; prints counts per table, never the id")
    p.add_argument("--national-id", required=True)
    sub.add_parser("retention", help="delete landing / bronze / prediction-log hours older than "
                   "CREDITRISK_RETENTION_DAYS (0: keep); prints what was deleted")
    args = ap.parse_args(argv)
    if args.cmd in ("forget", "retention"):
        return privacy_main(args)
    return models_main(args)


def models_main(args: argparse.Namespace) -> int:
    """``creditrisk promote | approve | retire | rollback | models`` (``creditrisk_assets/modeling/registry.py``)."""
    from mlflow.exceptions import MlflowException

    from .modeling import registry
    from .modeling.pipeline import recorded_gate
    from .settings import Settings

    settings = Settings.from_env()
    client = registry.connect(settings.resolved_mlflow_uri, settings.mlflow_artifact_location)
    now = dt.datetime.now(dt.UTC).isoformat()
    version = str(getattr(args, "version", "") or "")
    try:
        if args.cmd == "models":
            print_models(client)
            return 0
        if args.cmd == "retire":
            registry.retire(client, version, args.reason, now, by=args.by)
            print(f"version {version} retired (aliases removed, artefacts kept)")
            return 0
        if args.cmd == "promote":
            decision = recorded_gate(client, version, settings.gate_policy)
            refused = [r for r in decision.reasons if not r.startswith("PASS")]
            if refused and not args.override:
                print(f"creditrisk promote: the gate refuses version {version}: {'; '.join(refused)} "
                      "(pass --override to promote anyway, recorded)", file=sys.stderr)
                return 1
            note = f" (override: gate refused: {'; '.join(refused)})" if refused else f" (gate: {'; '.join(decision.reasons)})"
            previous = registry.set_champion(client, version, args.reason + note, now, by=args.by,
                                             kind="override" if refused else "manual")
            if refused:
                client.set_model_version_tag(registry.REGISTERED_MODEL, version, "promotion_override", "true")
            print(f"champion: version {version} (was {previous or 'none'})" + (" — gate overridden" if refused else ""))
        elif args.cmd == "approve":
            previous = registry.approve(client, version, args.by, args.reason, now)
            print(f"champion: version {version} (was {previous or 'none'}), approved by {args.by}")
        else:
            version = registry.rollback(client, now, by=args.by)
            print(f"champion: version {version} (rolled back)")
        retired = registry.retire_older_than_champions(client, settings.retire_keep_champions, now)
        if retired:
            print(f"retired: version(s) {', '.join(retired)} (older than the last {settings.retire_keep_champions} champions)")
    except (ValueError, MlflowException) as exc:
        message = exc.message if isinstance(exc, MlflowException) else str(exc)
        print(f"creditrisk {args.cmd}: {message.splitlines()[0] if message else type(exc).__name__}", file=sys.stderr)
        return 1
    return redeploy(settings)


def print_models(client: MlflowClient) -> None:
    from .modeling import registry

    for mv in sorted(client.search_model_versions(f"name='{registry.REGISTERED_MODEL}'"), key=lambda m: int(m.version)):
        tags = mv.tags
        notes = [tags.get(registry.GATE_DECISION, "")]
        if tags.get("approved_by"):
            notes.append(f"approved by {tags['approved_by']}")
        if tags.get("promotion_override") == "true":
            notes.append("gate overridden")
        if tags.get(registry.RETIRED) == "true":
            notes.append(f"retired {tags.get('retired_at', '')[:10]}")
        print(f"version {mv.version}  run {mv.run_id}  {', '.join(n for n in notes if n)}")
    print(f"champion: {registry.alias_version(client, registry.CHAMPION)}  "
          f"challenger: {registry.alias_version(client, registry.CHALLENGER)}")
    waiting = registry.awaiting_approval(client)
    if waiting:
        print(f"awaiting approval: {', '.join(waiting)} (creditrisk approve --version N --by NAME --reason ...)")
    for move in registry.history(client):
        by = f" by {move['by']}" if move.get("by") else ""
        print(f"  {move['at']}  -> {move['version']} (from {move['previous'] or '-'}){by}: {move['reason'][:80]}")


def redeploy(settings: Settings) -> int:
    """After the champion moved: update the serving app when a local cluster runs (or ``CREDITRISK_RAY_ADDRESS``
    names one); otherwise the next deploy serves the new champion."""
    from serving import runtime

    if settings.ray_address == "local":
        running = runtime.running_cluster(settings)
        address = running.address if running else None
    else:
        address = settings.ray_address
    if address is None:
        print("serving: no local cluster is running; `creditrisk serve start` (or the serving/deployment asset) "
              "serves the new champion")
        return 0
    try:
        config = runtime.deploy(settings, address)
    except Exception as exc:  # the champion moved; say plainly that serving did not follow
        print(f"creditrisk: the champion moved but serving at {address} was not updated ({type(exc).__name__}: "
              f"{str(exc).splitlines()[0] if str(exc) else ''}): run `creditrisk serve start`", file=sys.stderr)
        return 1
    print(f"serving: champion {config['champion']} deployed at {address}")
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
