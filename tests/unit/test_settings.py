from pathlib import Path

import pytest

from creditrisk_assets.resources import FolderStore, ObjectStoreError, S3Store, object_store_from_settings
from creditrisk_assets.settings import LOCAL_ONLY_PII_KEY, Settings, SettingsError
from tests.servers import free_port


def test_embedded_defaults_live_under_one_home(tmp_path: Path) -> None:
    s = Settings.from_env({"CREDITRISK_HOME": str(tmp_path)})
    assert s.object_store == "folder"
    assert s.resolved_store_root == (tmp_path / "objectstore").resolve()
    assert s.resolved_lake_dir == (tmp_path / "lake").resolve()
    assert s.resolved_mlflow_uri == f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}"
    assert s.uses_local_pii_key and s.pii_key == LOCAL_ONLY_PII_KEY
    assert isinstance(object_store_from_settings(s), FolderStore)


def test_environment_overrides_and_types() -> None:
    s = Settings.from_env({"CREDITRISK_OBJECT_STORE": "s3", "CREDITRISK_S3_BUCKET": "b",
                           "CREDITRISK_SERVE_PORT": "9001", "CREDITRISK_PII_KEY": "k" * 32})
    assert (s.object_store, s.s3_bucket, s.serve_port) == ("s3", "b", 9001)
    assert not s.uses_local_pii_key
    assert isinstance(object_store_from_settings(s), S3Store)


@pytest.mark.parametrize(("env", "names"), [
    ({"CREDITRISK_OBJECT_STORE": "ftp"}, "CREDITRISK_OBJECT_STORE"),
    ({"CREDITRISK_SERVE_PORT": "eighty"}, "CREDITRISK_SERVE_PORT"),
])
def test_bad_values_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        Settings.from_env(env)


def test_secrets_are_masked_in_describe() -> None:
    s = Settings.from_env({"CREDITRISK_S3_SECRET_ACCESS_KEY": "hunter2-secret", "CREDITRISK_PII_KEY": "p" * 40})
    text = repr(s.describe())
    assert "hunter2-secret" not in text and "p" * 40 not in text
    assert {r["variable"] for r in s.describe()} >= {"CREDITRISK_HOME", "CREDITRISK_S3_ENDPOINT"}


def test_unreachable_s3_endpoint_gives_one_clear_error(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    s = Settings.from_env({"CREDITRISK_OBJECT_STORE": "s3", "CREDITRISK_S3_ENDPOINT": f"http://127.0.0.1:{port}",
                           "CREDITRISK_S3_ACCESS_KEY_ID": "a", "CREDITRISK_S3_SECRET_ACCESS_KEY": "b"})
    store = object_store_from_settings(s)
    with pytest.raises(ObjectStoreError, match="CREDITRISK_S3_ENDPOINT"):
        store.check()
    with pytest.raises(ObjectStoreError, match="CREDITRISK_S3_ENDPOINT"):
        store.list("landing/")


def test_folder_store_round_trip_and_listing(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    store.put_bytes("landing/a/2026-10-01/00/part-0.csv", b"x")
    store.put_bytes("landing/ab/2026-10-01/00/part-0.csv", b"yy")
    assert [o.key for o in store.list("landing/a/")] == ["landing/a/2026-10-01/00/part-0.csv"]
    assert len(store.list("landing/a")) == 2
    assert store.get_bytes("landing/ab/2026-10-01/00/part-0.csv") == b"yy"
    with pytest.raises(ValueError, match="escapes"):
        store.put_bytes("../outside", b"no")
    assert store.delete_prefix("landing/") == 2 and store.list("") == []
