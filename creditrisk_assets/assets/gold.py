"""gold/*: the dbt project as Dagster assets, incremental by hour, silver snapshot pinned.

One ``dbt build`` per run. The partition window and the silver snapshot reach dbt through its environment
(``BuildWindow.env``), not ``--vars``, and the target folder is the data home's stable one (``dbt_target``):
so dbt's partial parse holds from one partition run to the next instead of re-parsing the whole project.
"""

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from ..dagster_resources import DuckLake
from ..gold.build import BuildWindow, dbt_target
from ..gold.catalogue import catalogue_markdown
from ..gold.dbt_profiles import PROJECT_DIR
from ..resources import LAKE_POOL, Lake
from ..settings import Settings


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


def build_window(context: dg.AssetExecutionContext, silver_snapshot: int | None) -> BuildWindow:
    window = context.partition_time_window
    return BuildWindow.between(window.start, window.end, silver_snapshot)


@contextlib.contextmanager
def dbt_environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in this process's environment while a dbt invocation starts: ``DbtCliResource.cli`` has
    no ``env`` argument, it copies ``os.environ`` into dbt's when it starts the process. Held only around
    that call, under the gold write lock (one gold build at a time), and restored after."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def skip_version_probe(dbt: DbtCliResource) -> None:
    """``DbtCliResource.cli`` runs ``dbt --version`` once per resource instance (every run: a second dbt
    process, ~2-4 s here, that also asks PyPI for the latest release) only to tell dbt Core from the Fusion
    engine. When the executable is this environment's dbt (how the definitions configure it), its version is
    the installed dbt-core's: record it where the resource caches the probe's answer."""
    if Path(dbt.dbt_executable).parent != Path(sys.executable).parent or "_cli_version" in vars(dbt):
        return
    from dbt.version import __version__ as dbt_core_version
    from packaging import version

    vars(dbt)["_cli_version"] = version.parse(dbt_core_version)


def build_gold_assets(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    project = dbt_project()

    @dbt_assets(manifest=project.manifest_path, partitions_def=partitions_def, name="gold_dbt",
                backfill_policy=dg.BackfillPolicy.single_run(), dagster_dbt_translator=GoldTranslator(),
                project=project, pool=LAKE_POOL)
    def gold_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource, lake: DuckLake,
                 settings: dg.ResourceParam[Settings]):
        # one lake writer at a time, also where the pool is not enforced (in-process runs): two builds of
        # the same window would both delete+insert its rows, and dbt's own DuckDB file takes one process
        duck = lake.get_lake()
        with duck.write_lock(), dbt_target(settings) as target:
            con = duck.connect_lake()
            try:
                snapshot = Lake.snapshot_id(con)
            finally:
                con.close()
            window = build_window(context, snapshot)
            context.log.info(f"dbt build for {window.describe()}")
            skip_version_probe(dbt)
            with dbt_environment(window.env()):
                invocation = dbt.cli(["build"], context=context, target_path=target)
            for event in invocation.stream():
                if isinstance(event, dg.Output):
                    event = event.with_metadata({**event.metadata, "silver_snapshot_id": snapshot,
                                                 "window": f"{window.start_hour} .. {window.end_hour}"})
                yield event

    return gold_dbt
