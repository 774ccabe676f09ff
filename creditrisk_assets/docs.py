"""Generate the reference docs that are derived from code (``python -m creditrisk_assets.docs``).

A test fails when a generated file in ``docs/`` is out of date, so the docs stay true.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .contracts import TABLES, contract_markdown
from .quality.pii import silver_name
from .quality.silver import silver_columns

DOCS = Path(__file__).resolve().parent.parent / "docs"


def contracts_doc() -> str:
    parts = [
        "# Data contracts",
        "",
        "_Generated from `creditrisk_assets/contracts.py` by `python -m creditrisk_assets.docs`; do not edit._",
        "",
        "Every landed file is checked against its table's contract in silver. Types are `int`, `float`, `str`,",
        "`date` (`YYYY-MM-DD`), `timestamp` (`YYYY-MM-DDTHH:MM:SS`, UTC). *required*: a file without the column",
        "is quarantined whole; optional columns are filled with null (policy `alert`/`auto_correct`) or the file",
        "is quarantined (policy `reject`).",
        "",
        "PII classes: `identifier` → keyed HMAC-SHA256 (`<COLUMN>_HASH` in silver); `free_text` → dropped;",
        "`birth_date` → `AGE_YEARS` at the event time; `sensitive` → kept for fairness analysis, never a feature.",
        "",
    ]
    for table in TABLES.values():
        parts += [f"## {table.name}", "", contract_markdown(table), "",
                  "Silver columns: " + ", ".join(f"`{c}`" for c in silver_columns(table)), ""]
        dropped = [c.name for c in table.columns if silver_name(c) is None]
        if dropped:
            parts += ["Dropped in silver: " + ", ".join(f"`{c}`" for c in dropped), ""]
    return "\n".join(parts)


def features_doc() -> str:
    from .gold.catalogue import catalogue_markdown, features

    return "\n".join([
        "# Feature catalogue: `gold/applicant_features`",
        "",
        "_Generated from `dbt_project/models/marts/applicant_features.yml` by `python -m creditrisk_assets.docs`;"
        " do not edit._",
        "",
        f"{len(features())} features, one row per application (`sk_id_curr`), each computed only from data dated",
        "strictly before the application's `decision_time` (point-in-time correct). Counts over an empty history",
        "are 0; means and ratios over an empty history are null; `has_*` flags say which histories exist.",
        "",
        catalogue_markdown(),
        "",
    ])


GENERATED = {"contracts.md": contracts_doc, "features.md": features_doc}


def main() -> int:
    DOCS.mkdir(exist_ok=True)
    for name, fn in GENERATED.items():
        (DOCS / name).write_text(fn())
        print(f"wrote docs/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
