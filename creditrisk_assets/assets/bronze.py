"""bronze/<table>: hourly raw snapshots of the landing area, with lineage and an audit log."""


import dagster as dg
import pandas as pd

from ..contracts import TABLES, contract_markdown
from ..dagster_resources import DuckLake, ObjectStorage
from ..ingest.bronze import PartitionResult, ingest_partitions
from ..metadata import mask_pii, md_table
from ..partitions import hours_of
from ..settings import Settings


def bronze_metadata(results: list[PartitionResult], table: str) -> dict[str, dg.MetadataValue]:
    files = [f for r in results for f in r.files]
    problems = pd.DataFrame([
        {"partition": f.partition, "file": f.source_key.rsplit("/", 1)[-1], "status": f.status, "reason": f.reason}
        for f in files if f.status != "accepted"
    ])
    preview = next((r.preview for r in results if r.preview is not None), None)
    return {
        "partitions": dg.MetadataValue.int(len(results)),
        "files": dg.MetadataValue.int(len(files)),
        "rows": dg.MetadataValue.int(sum(r.rows for r in results)),
        "malformed_rows": dg.MetadataValue.int(sum(r.malformed_rows for r in results)),
        "rejected_files": dg.MetadataValue.int(sum(r.rejected_files for r in results)),
        "bytes": dg.MetadataValue.int(sum(r.bytes for r in results)),
        "seconds": dg.MetadataValue.float(round(sum(r.seconds for r in results), 3)),
        "files_with_problems": dg.MetadataValue.md(md_table(problems, max_rows=50, max_width=120)),
        "preview (PII masked)": dg.MetadataValue.md(md_table(mask_pii(preview, table)) if preview is not None else "_(no rows)_"),
    }


def build_bronze_assets(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    specs = [
        dg.AssetSpec(
            key=dg.AssetKey(["bronze", name]),
            group_name="bronze",
            description=f"Raw hourly snapshot of `landing/{name}/` as text Parquet with lineage columns. "
                        f"{table.description}",
            metadata={"contract": dg.MetadataValue.md(contract_markdown(table))},
            kinds={"parquet", "duckdb"},
        )
        for name, table in TABLES.items()
    ]

    @dg.multi_asset(
        specs=specs,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        can_subset=True,
        name="bronze_ingest",
    )
    def bronze_ingest(context: dg.AssetExecutionContext, store: ObjectStorage, lake: DuckLake,
                      settings: dg.ResourceParam[Settings]):
        objects = store.get_store()
        objects.check()
        hours = hours_of(context)
        for key in sorted(context.selected_asset_keys):
            table = key.path[-1]
            results = ingest_partitions(objects, lake.get_lake(), table, hours, run_id=context.run_id,
                                        workers=settings.workers)
            context.log.info(f"bronze/{table}: {len(hours)} hour(s), {sum(r.rows for r in results)} rows, "
                             f"{sum(r.rejected_files for r in results)} rejected file(s)")
            yield dg.MaterializeResult(asset_key=key, metadata=bronze_metadata(results, table))

    return bronze_ingest

