"""silver/<table>: typed, validated, deduplicated, pseudonymised; silver/quarantine; row accounting."""

import dagster as dg
import pandas as pd

from ..contracts import TABLES, contract_markdown
from ..dagster_resources import DuckLake, ObjectStorage
from ..metadata import md_table
from ..partitions import hours_of
from ..quality.profile import profile_silver
from ..quality.runner import SilverRun, run_silver
from ..quality.silver import silver_columns
from ..resources import LAKE_POOL
from ..settings import Settings
from . import opens

QUARANTINE = dg.AssetKey(["silver", "quarantine"])
#: once silver has been updated and its run has finished. ``eager()`` without "no dependency missing": the
#: profile is one unpartitioned asset over hourly tables, some of whose hours never landed
PROFILE_AUTOMATION = dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing()).with_label(
    "after silver updates")


def silver_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["silver", table])


def _schema(table: str) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(n, t) for n, t in silver_columns(TABLES[table]).items()])


def summarise_events(events: list) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(event, column, action) → (files, rows): one warning per kind of change, not per file."""
    out: dict[tuple[str, str, str], tuple[int, int]] = {}
    for e in events:
        files, rows = out.get((e.event, e.column_name, e.action), (0, 0))
        out[(e.event, e.column_name, e.action)] = (files + 1, rows + e.rows_affected)
    return out


def silver_metadata(run: SilverRun) -> dict[str, dg.MetadataValue | dg.TableSchema]:
    r, acc = run.result, run.accounting
    events = pd.DataFrame([{"partition": e.partition, "file": e.source_uri.rsplit("/", 1)[-1], "event": e.event,
                            "column": e.column_name, "action": e.action, "rows": e.rows_affected}
                           for e in r.schema_events])
    rules = pd.DataFrame(sorted(r.quarantine_by_rule.items(), key=lambda kv: -kv[1]), columns=["rule", "rows"])
    return {
        "bronze_rows": dg.MetadataValue.int(acc.bronze_rows),
        "silver_rows": dg.MetadataValue.int(acc.silver_rows),
        "quarantined_rows": dg.MetadataValue.int(acc.quarantined_rows),
        "quarantine_by_rule": dg.MetadataValue.md(md_table(rules)),
        "schema_changes": dg.MetadataValue.int(len(r.schema_events)),
        "schema_events": dg.MetadataValue.md(md_table(events, max_rows=50)),
        "lake_snapshot_id": dg.MetadataValue.int(r.snapshot_id or 0),
        "chunks": dg.MetadataValue.int(r.chunks),
        "dagster/column_schema": _schema(r.table),
        "dagster/row_count": dg.MetadataValue.int(acc.silver_rows),
    }


def build_silver_assets(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    specs = [
        dg.AssetSpec(
            key=silver_key(name), group_name="silver", deps=[dg.AssetKey(["bronze", name])], kinds={"duckdb", "ducklake"},
            description=f"{table.description} Typed, validated against its contract, deduplicated on "
                        f"`{', '.join(table.primary_key)}`, PII pseudonymised. Lives in the DuckLake `lake.silver`.",
            metadata={"contract": dg.MetadataValue.md(contract_markdown(table)), "dagster/column_schema": _schema(name)},
        )
        for name, table in TABLES.items()
    ]
    specs.append(dg.AssetSpec(
        key=QUARANTINE, group_name="silver", deps=[dg.AssetKey(["bronze", n]) for n in TABLES], kinds={"ducklake"},
        description="Every bronze row that did not make it to silver, with table, partition, source file, rule, "
                    "reason and a pseudonymised payload. Duplicates have their own rule.",
    ))
    checks = [
        dg.AssetCheckSpec("row_accounting", asset=silver_key(name), blocking=True,
                          description="bronze rows = silver rows + quarantined rows, for every partition of the run")
        for name in TABLES
    ]

    @dg.multi_asset(specs=specs, check_specs=checks, partitions_def=partitions_def, can_subset=True,
                    backfill_policy=dg.BackfillPolicy.single_run(), name="silver_tables", pool=LAKE_POOL)
    def silver_tables(context: dg.AssetExecutionContext, store: ObjectStorage, lake: DuckLake,
                      settings: dg.ResourceParam[Settings]):
        hours = hours_of(context)
        tables = [k.path[-1] for k in sorted(context.selected_asset_keys) if k != QUARANTINE]
        if QUARANTINE in context.selected_asset_keys and not tables:
            tables = list(TABLES)  # quarantine alone: rebuild it from every table
        totals = {"quarantined_rows": 0, "tables": 0}
        for name in tables:
            run = run_silver(store.get_store(), lake.get_lake(), settings, TABLES[name], hours, context.run_id)
            for (event, column, action), (files, rows) in summarise_events(run.result.schema_events).items():
                context.log.warning(f"schema change in {name}: {event} {column} → {action} "
                                    f"({files} file(s), {rows} row(s), policy {run.result.schema_events[0].policy})")
            acc = run.accounting
            totals["quarantined_rows"] += acc.quarantined_rows
            totals["tables"] += 1
            if silver_key(name) in context.selected_asset_keys:
                yield dg.MaterializeResult(asset_key=silver_key(name), metadata=silver_metadata(run))
            if dg.AssetCheckKey(silver_key(name), "row_accounting") not in context.selected_asset_check_keys:
                continue
            yield dg.AssetCheckResult(
                asset_key=silver_key(name), check_name="row_accounting", passed=acc.balanced,
                severity=dg.AssetCheckSeverity.ERROR,
                description=None if acc.balanced else f"{acc.missing} row(s) of {name} are neither in silver nor "
                                                      "in quarantine",
                metadata={"bronze_rows": acc.bronze_rows, "silver_rows": acc.silver_rows,
                          "quarantined_rows": acc.quarantined_rows, "missing_rows": acc.missing,
                          "partitions": acc.partitions},
            )
        if QUARANTINE in context.selected_asset_keys:
            yield dg.MaterializeResult(asset_key=QUARANTINE, metadata={
                "quarantined_rows": dg.MetadataValue.int(totals["quarantined_rows"]),
                "tables": dg.MetadataValue.int(totals["tables"])})

    return silver_tables


def build_profile_asset() -> dg.AssetsDefinition:
    @dg.asset(key=["silver", "profile"], group_name="silver", deps=[silver_key(n) for n in TABLES],
              kinds={"evidently", "html"}, automation_condition=PROFILE_AUTOMATION,
              description="Per silver table: distributions, missingness, IQR outliers and correlations, as an "
                          "Evidently HTML report in the object store and a markdown summary here.")
    def profile(context: dg.AssetExecutionContext, store: ObjectStorage, lake: DuckLake) -> dg.MaterializeResult:
        reports = profile_silver(store.get_store(), lake.get_lake())
        md = "\n\n".join(r.markdown for r in reports)
        links = {f"report_{r.table}": opens(r.link or r.uri) for r in reports}
        context.log.info(f"profiled {len(reports)} silver tables")
        return dg.MaterializeResult(metadata={"summary": dg.MetadataValue.md(md or "_(silver is empty)_"),
                                              "tables": len(reports), **links})

    return profile
