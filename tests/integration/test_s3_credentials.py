"""With no S3 keys in the settings, the object store (boto3), the lake (DuckDB) and dbt take their credentials
from the AWS credential chain, as they would from an instance or pod role; with no credentials anywhere the
lake fails with one error naming the settings. Real SeaweedFS, real DuckDB."""

from __future__ import annotations

from pathlib import Path

import pytest

from creditrisk_assets.resources import Lake, ObjectStoreError, open_store_for_writing
from creditrisk_assets.settings import Settings
from tests.helpers import build_gold
from tests.servers import Server

pytestmark = pytest.mark.integration


def keyless_settings(tmp_path: Path, server: Server, bucket: str) -> Settings:
    return Settings.from_env({"CREDITRISK_HOME": str(tmp_path / "home"), "CREDITRISK_OBJECT_STORE": "s3",
                              "CREDITRISK_S3_ENDPOINT": server.url, "CREDITRISK_S3_BUCKET": bucket})


@pytest.fixture()
def no_ambient_aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing from this machine's own AWS setup: no AWS_* keys, no ~/.aws files, no instance metadata."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
                "CREDITRISK_S3_ACCESS_KEY_ID", "CREDITRISK_S3_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.usefixtures("no_ambient_aws")
def test_without_keys_the_store_and_the_lake_use_the_credential_chain(
        tmp_path: Path, seaweed: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed.extra["access_key"])  # what a role or ~/.aws would provide
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed.extra["secret_key"])
    settings = keyless_settings(tmp_path, seaweed, "chain-creds")
    assert not settings.s3_access_key_id and not settings.s3_secret_access_key
    store = open_store_for_writing(settings)
    store.put_bytes("landing/probe.csv", b"a,b\n1,2\n")
    lake = Lake(settings)
    with lake.connect_lake() as con:
        assert con.execute(f"SELECT a + b FROM read_csv('{store.uri('landing/probe.csv')}')").fetchone() == (3,)
        con.execute("CREATE TABLE lake.main.chain_probe AS SELECT 41 + 1 AS answer")
    with lake.connect_lake() as con:  # a new connection reads the data file back from the bucket
        assert con.execute("SELECT answer FROM lake.main.chain_probe").fetchone() == (42,)
    assert any(o.key.startswith("lake/") and o.key.endswith(".parquet") for o in store.list("lake/"))
    # dbt's own DuckDB connection (its profile) signs with the chain too: gold over the keyless lake
    build_gold(settings, store, hours=3, rows_per_hour=20)
    with lake.connect_lake() as con:
        assert con.execute("SELECT count(*) FROM lake.gold.applicant_features").fetchone()[0] > 0  # type: ignore[index]


@pytest.mark.usefixtures("no_ambient_aws")
def test_without_keys_or_a_chain_the_lake_names_the_settings(tmp_path: Path, seaweed: Server) -> None:
    lake = Lake(keyless_settings(tmp_path, seaweed, "no-creds"))
    with pytest.raises(ObjectStoreError) as info:
        lake.connect()
    message = str(info.value)
    assert "CREDITRISK_S3_ACCESS_KEY_ID" in message and "credential chain" in message and "\n" not in message
