"""gold/*: the dbt project as Dagster assets, incremental by hour, silver snapshot pinned."""

import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from ..dagster_resources import DuckLake
from ..gold.catalogue import catalogue_markdown
from ..gold.dbt_profiles import PROJECT_DIR
from ..resources import LAKE_POOL, Lake


class GoldTranslator(DagsterDbtTranslator):
    """dbt sources are the silver assets; dbt models are gold/<model> in group gold."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey(["silver", dbt_resource_props["name"]])
        return dg.AssetKey(["gold", dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "gold"

    def get_metadata(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, Any]:
        meta = dict(super().get_metadata(dbt_resource_props))
        if dbt_resource_props.get("name") == "applicant_features":
            meta["feature_catalogue"] = dg.MetadataValue.md(catalogue_markdown())
        return meta


def dbt_project() -> DbtProject:
    project = DbtProject(project_dir=PROJECT_DIR, profiles_dir=PROJECT_DIR)
    if not project.manifest_path.exists():  # fresh checkout without `make`: parse now
        project.preparer.prepare(project)
    return project


def window_vars(context: dg.AssetExecutionContext, silver_snapshot: int | None) -> dict[str, Any]:
    window = context.partition_time_window
    fmt = "%Y-%m-%d %H:%M:%S"
    return {"start_hour": window.start.strftime(fmt), "end_hour": window.end.strftime(fmt),
            "silver_snapshot": silver_snapshot}


def build_gold_assets(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    project = dbt_project()

    @dbt_assets(manifest=project.manifest_path, partitions_def=partitions_def, name="gold_dbt",
                backfill_policy=dg.BackfillPolicy.single_run(), dagster_dbt_translator=GoldTranslator(),
                project=project, pool=LAKE_POOL)
    def gold_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource, lake: DuckLake):
        # one lake writer at a time, also where the pool is not enforced (in-process runs): two builds of
        # the same window would both delete+insert its rows, and dbt's own DuckDB file takes one process
        duck = lake.get_lake()
        with duck.write_lock():
            con = duck.connect_lake()
            try:
                snapshot = Lake.snapshot_id(con)
            finally:
                con.close()
            dbt_vars = window_vars(context, snapshot)
            context.log.info(f"dbt build for decisions in [{dbt_vars['start_hour']}, {dbt_vars['end_hour']}) "
                             f"reading silver at lake snapshot {snapshot}")
            for event in dbt.cli(["build", "--vars", json.dumps(dbt_vars)], context=context).stream():
                if isinstance(event, dg.Output):
                    event = event.with_metadata({**event.metadata, "silver_snapshot_id": snapshot,
                                                 "window": f"{dbt_vars['start_hour']} .. {dbt_vars['end_hour']}"})
                yield event

    return gold_dbt
