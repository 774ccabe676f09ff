"""``creditrisk`` command: simulate, import, demo, serve, model lifecycle (promote, approve, retire, rollback,
models), erasure, retention.

``creditrisk --help`` lists every command (``COMMANDS``), ``creditrisk --version`` prints the package version.
A wrong setting, an unreachable MLflow, object store or Ray cluster ends a command with one line on stderr,
``creditrisk <command>: <what to fix>`` (exit 2 for a setting, 1 for a service), never a traceback; any other
exception is a bug and keeps its traceback."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from .settings import Settings

#: every command, with its one-line help (``creditrisk --help``); each answers ``--help`` with its options
COMMANDS: dict[str, str] = {
    "simulate": "write simulated hourly drops into the landing area (or Home Credit files)",
    "import homecredit": "land the Home Credit Default Risk files (Kaggle, unzipped)",
    "import table": "land a lender's own application table per a mapping YAML",
    "demo": "the whole loop end to end on a fresh embedded data home",
    "serve": "serve the champion over HTTP with Ray Serve (run | start | stop | status)",
    "promote": "make a model version the champion (the gate decides; --override)",
    "approve": "approve a challenger that awaits approval: it becomes champion",
    "retire": "retire a version: aliases removed, tagged `retired`; CREDITRISK_RETIRE_ARTIFACTS: keep or delete",
    "rollback": "put the previous champion back",
    "models": "list versions, aliases, approvals, retirements and promotion history",
    "forget": "erase one applicant (by national id) everywhere; prints counts, never the id",
    "retention": "delete raw hours older than CREDITRISK_RETENTION_DAYS",
}
#: the longer description a command's own ``--help`` shows (default: its ``COMMANDS`` line)
DESCRIPTIONS: dict[str, str] = {
    "promote": "Make a registered model version the champion: runs the gate on its recorded metrics against the "
               "champion's; --override promotes a refused version (recorded).",
    "approve": "Approve a challenger that passed the gate and awaits approval (CREDITRISK_PROMOTION_APPROVAL="
               "required): it becomes champion.",
    "forget": "Erase one applicant (by national id) from silver, quarantine, gold and the prediction log; prints "
              "counts per table, never the id.",
    "retention": "Delete landing / bronze / prediction-log hours older than CREDITRISK_RETENTION_DAYS (0: keep); "
                 "prints what was deleted.",
}


def version() -> str:
    """The installed ``creditrisk`` package's version."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("creditrisk")
    except PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    """Run one command; a configuration or connection problem is one line on stderr (``failure_exit``)."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        return dispatch(argv)
    except Exception as exc:
        code = failure_exit(exc)
        if code is None:
            raise  # a bug: keep the traceback
        print(f"creditrisk {command_of(argv)}: {one_line(exc)}", file=sys.stderr)
        return code


def failure_exit(exc: BaseException) -> int | None:
    """The exit code for a problem the user fixes outside the code: 2 for a wrong ``CREDITRISK_*`` setting, 1
    for an unreachable MLflow, object store or Ray cluster; None for anything else (a bug).

    Only the modules already imported are consulted: an exception cannot come from a module that never
    loaded, and ``--help`` stays fast (no MLflow, DuckDB or Ray import here)."""
    from .settings import SettingsError

    if isinstance(exc, SettingsError):
        return 2
    for module, name in (("creditrisk_assets.resources", "ObjectStoreError"),
                         ("creditrisk_assets.modeling.registry", "MlflowUnavailable"),
                         ("serving.runtime", "ServingError")):
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return 1
    return None


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def command_of(argv: list[str]) -> str:
    """The command words of ``argv`` (``import homecredit``, ``models``), as ``COMMANDS`` names them."""
    for words in (2, 1):
        name = " ".join(argv[:words])
        if name in COMMANDS:
            return name
    return argv[0] if argv else ""


def top_parser() -> argparse.ArgumentParser:
    width = max(len(name) for name in COMMANDS) + 2
    listing = "\n".join(f"  {name:<{width}}{text}" for name, text in COMMANDS.items())
    ap = argparse.ArgumentParser(
        prog="creditrisk", usage="creditrisk [-h] [--version] <command> [options]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The credit-risk platform's commands. Settings come from CREDITRISK_* environment\n"
                    "variables (README, section Settings).",
        epilog=f"commands:\n{listing}\n\n`creditrisk <command> --help` shows a command's options.")
    ap.add_argument("--version", action="version", version=f"creditrisk {version()}")
    return ap


def dispatch(argv: list[str]) -> int:
    passthrough: dict[str, Callable[[list[str]], int]] = {
        "simulate": _simulate, "import homecredit": _import_homecredit, "import table": _import_table,
        "serve": serve_main, "demo": _demo}
    name = command_of(argv)
    if name in passthrough:
        return passthrough[name](argv[len(name.split()):])
    if argv[:1] == ["import"]:
        print("creditrisk import: name what to import: `creditrisk import homecredit --source DIR` or "
              "`creditrisk import table --source FILE --mapping MAPPING.yml`", file=sys.stderr)
        return 2
    ap = top_parser()
    if not argv:
        ap.print_help(sys.stderr)
        return 2
    if not argv[0].startswith("-") and name not in COMMANDS:
        print(f"creditrisk: no command {argv[0]!r}; the commands: {', '.join(COMMANDS)} (creditrisk --help)",
              file=sys.stderr)
        raise SystemExit(2)  # as argparse does for a wrong command line
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="<command>", help=argparse.SUPPRESS)
    add = lambda cmd: sub.add_parser(cmd, prog=f"creditrisk {cmd}", help=COMMANDS[cmd],  # noqa: E731
                                     description=DESCRIPTIONS.get(cmd, COMMANDS[cmd]))
    p = add("promote")
    p.add_argument("--version", required=True)
    p.add_argument("--reason", default="manual promotion")
    p.add_argument("--by", default="", help="who promotes (recorded)")
    p.add_argument("--override", action="store_true", help="promote even if the gate refuses (recorded as an override)")
    p = add("approve")
    p.add_argument("--version", required=True)
    p.add_argument("--by", required=True, help="who approves (recorded)")
    p.add_argument("--reason", required=True, help="why (recorded)")
    p = add("retire")
    p.add_argument("--version", required=True)
    p.add_argument("--reason", default="retired by hand")
    p.add_argument("--by", default="")
    p = add("rollback")
    p.add_argument("--by", default="", help="who rolls back (recorded)")
    add("models")
    p = add("forget")
    p.add_argument("--national-id", required=True)
    add("retention")
    args = ap.parse_args(argv)
    if args.cmd in ("forget", "retention"):
        return privacy_main(args)
    return models_main(args)


def _simulate(argv: list[str]) -> int:
    from .simulate.cli import main as simulate_main

    return simulate_main(argv)


def _import_homecredit(argv: list[str]) -> int:
    from .ingest.homecredit import main as homecredit_main

    return homecredit_main(argv)


def _import_table(argv: list[str]) -> int:
    from .ingest.mapping import main as mapping_main

    return mapping_main(argv)


def _demo(argv: list[str]) -> int:
    from .demo import main as demo_main

    return demo_main(argv)


def models_main(args: argparse.Namespace) -> int:
    """``creditrisk promote | approve | retire | rollback | models`` (``creditrisk_assets/modeling/registry.py``)."""
    from mlflow.exceptions import MlflowException

    from .modeling import registry
    from .modeling.pipeline import recorded_gate
    from .settings import Settings

    settings = Settings.from_env()
    client = registry.connect_for(settings)
    now = dt.datetime.now(dt.UTC).isoformat()
    version = str(getattr(args, "version", "") or "")
    try:
        if args.cmd == "models":
            print_models(client)
            return 0
        if args.cmd == "retire":
            delete = settings.retire_artifacts == "delete"
            registry.retire(client, version, args.reason, now, by=args.by, delete_model=delete)
            print(f"version {version} retired (aliases removed; "
                  + ("model files deleted, run and model card kept)" if delete else "artefacts kept)"))
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
        retired = registry.retire_older_than_champions(client, settings.retire_keep_champions, now,
                                                       delete_model=settings.retire_artifacts == "delete")
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
    print("starting Ray and deploying the champion (up to a few minutes on a small machine) ...", file=sys.stderr,
          flush=True)
    cluster, config = runtime.ensure_deployed(settings)
    print(f"serving champion version {config['champion']} (challenger {config.get('challenger') or 'none'}, "
          f"mode {config['mode']}) at {cluster.url}")
    print(f"  curl -s {cluster.url}/health")
    print(f"  curl -s -X POST {cluster.url}/predict -H 'content-type: application/json' -d '{{\"sk_id_curr\": 100001}}'")
    if args.action == "start" or settings.ray_address != "local" or settings.serve_rayservice:
        return 0  # a cluster this process did not start (a Ray address, or KubeRay's): nothing to stop here
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
