"""``creditrisk`` command: simulate, demo, and manual model promotion / rollback."""

from __future__ import annotations

import argparse
import datetime as dt
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["simulate"]:
        from .simulate.cli import main as simulate_main

        return simulate_main(argv[1:])
    if argv[:1] == ["demo"]:
        from .demo import main as demo_main

        return demo_main(argv[1:])
    ap = argparse.ArgumentParser(prog="creditrisk", description="creditrisk commands "
                                 "(also: `creditrisk simulate --help`, `creditrisk demo`)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("promote", help="make a registered model version the champion (recorded)")
    p.add_argument("--version", required=True)
    p.add_argument("--reason", default="manual promotion")
    sub.add_parser("rollback", help="put the previous champion back")
    sub.add_parser("models", help="list versions, aliases and the promotion history")
    args = ap.parse_args(argv)

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


if __name__ == "__main__":
    sys.exit(main())
