"""The dbt profile for these settings, written into the data home (never into the repo).

The lake is attached exactly as ``Lake.connect_lake`` attaches it; extensions are loaded from
the ``duckdb-extension-*`` packages by path. Secrets are not written: the profile reads them
with ``env_var`` from the environment dbt inherits.
"""

from __future__ import annotations

from pathlib import Path

import yaml  # type: ignore[import-untyped]  # types-PyYAML is not in the dev dependencies

from ..resources import LAKE_ALIAS, SQLITE_META_OPTIONS, Lake, extension_path
from ..settings import Settings

PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"


def profile_dict(settings: Settings) -> dict:
    lake = Lake(settings)
    home = settings.home.resolve()
    catalog = settings.resolved_lake_catalog
    extensions = []
    if catalog.startswith("sqlite:"):
        extensions.append(str(lake.sqlite_extension()))
    elif catalog.startswith("postgres:"):
        extensions.append(str(lake.postgres_extension()))
    extensions.append(str(extension_path("ducklake")))
    output: dict = {
        "type": "duckdb",
        "path": str(lake.dir / "dbt.duckdb"),
        "threads": settings.workers,
        "config_options": {"extension_directory": str(home / "duckdb_extensions"),
                           "autoinstall_known_extensions": False, "autoload_known_extensions": False},
        "extensions": extensions,
        "attach": [{"path": f"ducklake:{catalog}", "alias": LAKE_ALIAS,
                    "options": {"data_path": lake.data_path, "data_inlining_row_limit": 0,
                                **(SQLITE_META_OPTIONS if catalog.startswith("sqlite:") else {})}}],
    }
    if settings.object_store == "s3":
        output["extensions"].insert(0, str(extension_path("httpfs")))
        secret: dict = {"type": "s3", "region": settings.s3_region}
        if settings.s3_access_key_id:
            secret["key_id"] = "{{ env_var('CREDITRISK_S3_ACCESS_KEY_ID') }}"
            secret["secret"] = "{{ env_var('CREDITRISK_S3_SECRET_ACCESS_KEY') }}"
        else:  # as the lake (resources.Lake): the AWS credential chain
            output["extensions"].insert(1, str(extension_path("aws")))
            secret["provider"] = "credential_chain"
        if settings.s3_endpoint:
            secret["endpoint"] = settings.s3_endpoint.split("://", 1)[-1].rstrip("/")
            secret["url_style"] = "path"
            secret["use_ssl"] = settings.s3_endpoint.startswith("https")
        output["secrets"] = [secret]
    return {"creditrisk": {"target": "creditrisk", "outputs": {"creditrisk": output}}}


def write_profiles(settings: Settings) -> Path:
    """Write ``profiles.yml`` for ``settings``; returns its folder (dbt's ``--profiles-dir``)."""
    folder = settings.home.resolve() / "dbt"
    folder.mkdir(parents=True, exist_ok=True)
    lake_dir = settings.resolved_lake_dir
    lake_dir.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(profile_dict(settings), sort_keys=False)
    path = folder / "profiles.yml"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return folder
