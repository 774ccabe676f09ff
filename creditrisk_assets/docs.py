"""Generate the files derived from the contracts and the feature catalogue (``python -m creditrisk_assets.docs``).

``docs/contracts.md``, ``docs/features.md`` and the dbt sources (``dbt_project/models/staging/_sources.yml``).
A test fails when a generated file is out of date, so the docs and dbt stay true to the contracts.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .contracts import TABLES, contract_markdown
from .quality.pii import silver_name
from .quality.silver import silver_columns

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DBT_SOURCES = ROOT / "dbt_project" / "models" / "staging" / "_sources.yml"


def contracts_doc() -> str:
    parts = [
        "# Data contracts",
        "",
        "_Generated from `creditrisk_assets/contracts/*.yml` by `python -m creditrisk_assets.docs`; do not edit._",
        "",
        "Every landed file is checked against its table's contract in silver. Types are `int`, `float`, `str`,",
        "`date` (`YYYY-MM-DD`), `timestamp` (`YYYY-MM-DDTHH:MM:SS`, UTC). *required*: a file without the column",
        "is quarantined whole; optional columns are filled with null (policy `alert`/`auto_correct`) or the file",
        "is quarantined (policy `reject`).",
        "",
        "PII classes: `identifier` → keyed HMAC-SHA256 (`<COLUMN>_HASH` in silver); `free_text` → dropped;",
        "`birth_date` → `AGE_YEARS` at the event time; `sensitive` → kept for fairness analysis, never a feature.",
        "PII columns are optional: a source without personal data (Home Credit's files) is not an error.",
        "",
        "Roles: `key` (identifier or join key), `event_time` (places the row in time), `feature`, `label`,",
        "`fairness` (fairness analysis only), `drop` (known, stays in bronze). Columns a contract does not list",
        "stay in bronze only and are recorded as `extra_column` schema events. *Home Credit*: the column of the",
        "published Kaggle file it is imported from (`creditrisk import homecredit`); relative days/months are",
        "turned into absolute dates against the application's decision time.",
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


def dbt_sources() -> str:
    """The dbt sources: one per contract table, each the silver asset of the same name."""
    import yaml  # type: ignore[import-untyped]

    tables = [{"name": t.name, "description": t.description,
               "meta": {"dagster": {"asset_key": ["silver", t.name]}}} for t in TABLES.values()]
    doc = {"version": 2, "sources": [{
        "name": "silver", "description": "Silver tables in the versioned lake (DuckLake), written by the Dagster "
                                         "silver assets; one per contract in creditrisk_assets/contracts/.",
        "database": "lake", "schema": "silver", "tables": tables}]}
    head = "# Generated from creditrisk_assets/contracts/*.yml by `python -m creditrisk_assets.docs`; do not edit.\n"
    return head + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110)


GENERATED = {DOCS / "contracts.md": contracts_doc, DOCS / "features.md": features_doc, DBT_SOURCES: dbt_sources}


def main() -> int:
    DOCS.mkdir(exist_ok=True)
    for path, fn in GENERATED.items():
        path.write_text(fn())
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
