import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from creditrisk_assets.modeling.dataset import GitShaError, git_sha
from creditrisk_assets.resources import FolderStore, ObjectStoreError, S3Store, object_store_from_settings
from creditrisk_assets.settings import (
    GIT_SHA_PATTERN,
    LOCAL_ONLY_PII_KEY,
    Settings,
    SettingsError,
    get_settings,
)
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


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


# ------------------------------------------------------------------------- CREDITRISK_ENV=production
POSTGRES_DAGSTER_YAML = """
storage:
  postgres:
    postgres_db: {username: dagster, password: {env: DAGSTER_PG_PASSWORD}, hostname: db, db_name: dagster, port: 5432}
"""
# what Dagster's Helm chart writes (configmap-instance.yaml): one dagster_postgres entry per kind
HELM_DAGSTER_YAML = "\n".join(
    f"{kind}:\n  module: dagster_postgres.{module}\n  class: {cls}\n  config: {{postgres_db: {{hostname: db}}}}"
    for kind, module, cls in [("run_storage", "run_storage", "PostgresRunStorage"),
                              ("event_log_storage", "event_log", "PostgresEventLogStorage"),
                              ("schedule_storage", "schedule_storage", "PostgresScheduleStorage")])


def _production_env(tmp_path: Path, dagster_yaml: str | None = POSTGRES_DAGSTER_YAML) -> dict[str, str]:
    """A production environment that passes every check (each test breaks one thing)."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir(exist_ok=True)
    if dagster_yaml is not None:
        (dagster_home / "dagster.yaml").write_text(dagster_yaml)
    return {"CREDITRISK_ENV": "production", "CREDITRISK_HOME": str(tmp_path / "home"),
            "CREDITRISK_PII_KEY": "s" * 40, "CREDITRISK_SERVE_API_KEY": "a" * 32,
            "CREDITRISK_MLFLOW_TRACKING_URI": "http://mlflow:5000",
            "CREDITRISK_LAKE_CATALOG": "postgres:host=db dbname=lake user=lake",
            "DAGSTER_HOME": str(dagster_home)}


def test_production_with_everything_set_loads(tmp_path: Path) -> None:
    s = Settings.from_env(_production_env(tmp_path))
    assert s.env == "production" and s.dagster_home == tmp_path / "dagster_home"
    assert s.production_problems() == []
    helm = _production_env(tmp_path, HELM_DAGSTER_YAML)
    assert Settings.from_env(helm).env == "production"
    without_dagster = {k: v for k, v in _production_env(tmp_path).items() if k != "DAGSTER_HOME"}
    assert Settings.from_env(without_dagster).dagster_home is None  # serving: no Dagster instance to check


@pytest.mark.parametrize(("change", "names"), [
    ({"CREDITRISK_PII_KEY": ""}, "CREDITRISK_PII_KEY"),
    ({"CREDITRISK_PII_KEY": LOCAL_ONLY_PII_KEY}, "CREDITRISK_PII_KEY"),
    ({"CREDITRISK_SERVE_API_KEY": ""}, "CREDITRISK_SERVE_API_KEY"),
    ({"CREDITRISK_MLFLOW_TRACKING_URI": ""}, "CREDITRISK_MLFLOW_TRACKING_URI"),
    ({"CREDITRISK_MLFLOW_TRACKING_URI": "sqlite:////data/mlflow.db"}, "CREDITRISK_MLFLOW_TRACKING_URI"),
    ({"CREDITRISK_MLFLOW_TRACKING_URI": "file:///data/mlruns"}, "CREDITRISK_MLFLOW_TRACKING_URI"),
    ({"CREDITRISK_MLFLOW_TRACKING_URI": "/data/mlruns"}, "CREDITRISK_MLFLOW_TRACKING_URI"),
    ({"CREDITRISK_LAKE_CATALOG": ""}, "CREDITRISK_LAKE_CATALOG"),
    ({"CREDITRISK_LAKE_CATALOG": "sqlite:/data/lake/catalog.sqlite"}, "CREDITRISK_LAKE_CATALOG"),
])
def test_production_refuses_each_embedded_default(tmp_path: Path, change: dict[str, str], names: str) -> None:
    env = {**_production_env(tmp_path), **change}
    with pytest.raises(SettingsError, match=names) as info:
        Settings.from_env(env)
    message = str(info.value)
    assert "\n" not in message and message.startswith("CREDITRISK_ENV=production refuses 1 setting(s): ")
    # the same values are fine locally
    assert Settings.from_env({**env, "CREDITRISK_ENV": "local"}).env == "local"


@pytest.mark.parametrize(("dagster_yaml", "reason"), [
    (None, "is missing"),
    ("", "not Postgres for run_storage, event_log_storage, schedule_storage"),
    ("storage:\n  sqlite:\n    base_dir: /data/dagster_home\n", "is sqlite, not postgres"),
    (HELM_DAGSTER_YAML.split("schedule_storage:")[0], "not Postgres for schedule_storage"),
    (HELM_DAGSTER_YAML.replace("dagster_postgres.run_storage", "dagster.core.storage.runs")
     .replace("PostgresRunStorage", "SqliteRunStorage"), "not Postgres for run_storage ("),
    ("storage: [unclosed\n", "cannot be read"),
    ("- a list\n", "not a YAML mapping"),
])
def test_production_refuses_dagster_on_sqlite(tmp_path: Path, dagster_yaml: str | None, reason: str) -> None:
    with pytest.raises(SettingsError, match="DAGSTER_HOME/dagster.yaml `storage`") as info:
        Settings.from_env(_production_env(tmp_path, dagster_yaml))
    assert reason in str(info.value)


def test_production_reports_every_violation_in_one_line(tmp_path: Path) -> None:
    env = {"CREDITRISK_ENV": "production", "DAGSTER_HOME": str(tmp_path)}  # everything else embedded
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    message = str(info.value)
    assert "\n" not in message and message.startswith("CREDITRISK_ENV=production refuses 5 setting(s): ")
    positions = [message.index(name) for name in ("CREDITRISK_PII_KEY", "CREDITRISK_SERVE_API_KEY",
                                                  "CREDITRISK_MLFLOW_TRACKING_URI", "CREDITRISK_LAKE_CATALOG",
                                                  "DAGSTER_HOME/dagster.yaml")]
    assert positions == sorted(positions)


def test_production_errors_do_not_echo_secrets(tmp_path: Path) -> None:
    dsn = "sqlite:/secret-path-hunter2"
    with pytest.raises(SettingsError) as info:
        Settings.from_env({**_production_env(tmp_path), "CREDITRISK_LAKE_CATALOG": dsn,
                           "CREDITRISK_PII_KEY": LOCAL_ONLY_PII_KEY})
    assert "hunter2" not in str(info.value) and LOCAL_ONLY_PII_KEY not in str(info.value)


def test_env_is_validated_and_local_by_default(tmp_path: Path) -> None:
    assert Settings().env == "local" and Settings.from_env({}).env == "local"
    # local keeps every embedded default, whatever DAGSTER_HOME holds
    assert Settings.from_env({"DAGSTER_HOME": str(tmp_path / "nowhere")}).production_problems() != []
    with pytest.raises(SettingsError, match="CREDITRISK_ENV='prod': expected local or production"):
        Settings.from_env({"CREDITRISK_ENV": "prod"})
    assert "DAGSTER_HOME" not in {r["variable"] for r in Settings().describe()}  # not a CREDITRISK_ setting


def test_local_public_pii_key_is_a_warning_at_definitions_load(caplog: pytest.LogCaptureFixture,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("CREDITRISK_")]:
        monkeypatch.delenv(var)
    with caplog.at_level(logging.WARNING, logger="creditrisk.settings"):
        assert get_settings().uses_local_pii_key
    assert [r.levelname for r in caplog.records if "CREDITRISK_PII_KEY" in r.getMessage()] == ["WARNING"]
    caplog.clear()
    monkeypatch.setenv("CREDITRISK_PII_KEY", "k" * 40)
    with caplog.at_level(logging.WARNING, logger="creditrisk.settings"):
        get_settings()
    assert not caplog.records


def test_definitions_refuse_to_load_in_production_with_the_public_key(tmp_path: Path) -> None:
    """The code location itself (``import creditrisk_assets.definitions``, what ``dagster code-server`` does)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDITRISK_", "DAGSTER_HOME"))}
    env.update({"CREDITRISK_ENV": "production", "CREDITRISK_HOME": str(tmp_path / "home")})
    done = subprocess.run([sys.executable, "-c", "import creditrisk_assets.definitions"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0, "the code location loaded in production with the public PII key"
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("creditrisk_assets.settings.SettingsError: CREDITRISK_ENV=production refuses"), last
    assert "CREDITRISK_PII_KEY" in last


# ------------------------------------------------------------------------- git SHA of the running code
def test_git_sha_setting_wins_and_is_validated(tmp_path: Path) -> None:
    sha = "a" * 40
    assert Settings.from_env({"CREDITRISK_GIT_SHA": sha}).git_sha == sha
    (tmp_path / "GIT_SHA").write_text("b" * 40 + "\n")
    assert git_sha(sha, sha_file=tmp_path / "GIT_SHA", repo=tmp_path) == sha
    with pytest.raises(SettingsError, match="CREDITRISK_GIT_SHA"):
        Settings.from_env({"CREDITRISK_GIT_SHA": "unknown"})


def test_git_sha_in_this_checkout_is_the_real_head() -> None:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert git_sha("") == head.stdout.strip() and GIT_SHA_PATTERN.fullmatch(git_sha(""))


def test_git_sha_falls_back_to_the_image_file_then_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # tmp_path is in no repository
    sha_file = tmp_path / "GIT_SHA"
    sha_file.write_text("c" * 40 + "\n")  # what the Dockerfile writes
    assert git_sha("", sha_file=sha_file, repo=tmp_path) == "c" * 40
    sha_file.write_text("unknown\n")
    with pytest.raises(GitShaError, match="not a commit SHA"):
        git_sha("", sha_file=sha_file, repo=tmp_path)
    sha_file.unlink()
    with pytest.raises(GitShaError, match="CREDITRISK_GIT_SHA"):
        git_sha("", sha_file=sha_file, repo=tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # no git binary at all
    with pytest.raises(GitShaError, match="no git commit"):
        git_sha("", sha_file=sha_file, repo=ROOT)
