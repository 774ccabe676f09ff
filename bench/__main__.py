"""``make bench``: run every benchmark in this folder (or the ones named) and print their ratios."""

from __future__ import annotations

import importlib
import sys

BENCHES = ["startup", "ingest", "validate", "features", "train", "realdata", "shift_policy", "drift", "serving",
           "online", "backfill", "costcurve"]


def main(argv: list[str]) -> int:
    names = argv or BENCHES
    for name in names:
        print(f"\n=== bench/{name}.py ===", flush=True)
        importlib.import_module(f"bench.{name}").main([])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
