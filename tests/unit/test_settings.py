import dataclasses
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

import pytest

from creditrisk_assets.modeling.dataset import GitShaError, git_sha
from creditrisk_assets.resources import FolderStore, ObjectStoreError, S3Store, object_store_from_settings
from creditrisk_assets.settings import (
    GIT_SHA_PATTERN,
    LOCAL_ONLY_PII_KEY,
    Settings,
    SettingsError,
    get_settings,
    mask_credentials,
    parse_value,
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


# ------------------------------------------------------------------------- parsing by the fields' real types
@dataclasses.dataclass(frozen=True, repr=False)
class _Extended(Settings):
    """Settings with field types it does not use (yet): each parses by its real type."""

    flag: bool = False
    maybe_count: int | None = None
    level: Literal["low", "high"] = "low"


@pytest.mark.parametrize("word", ["1", "true", "True", "TRUE", "yes", "Yes", "on", "ON", " true "])
def test_a_bool_field_accepts_every_true_spelling(word: str) -> None:
    assert _Extended.from_env({"CREDITRISK_FLAG": word}).flag is True


@pytest.mark.parametrize("word", ["0", "false", "False", "FALSE", "no", "NO", "off", "Off"])
def test_a_bool_field_accepts_every_false_spelling(word: str) -> None:
    assert _Extended.from_env({"CREDITRISK_FLAG": word}).flag is False


@pytest.mark.parametrize("junk", ["2", "maybe", "y", "n", "enabled", "truee", "-1"])
def test_a_bool_field_rejects_junk_naming_the_variable_and_the_spellings(junk: str) -> None:
    with pytest.raises(SettingsError) as info:
        _Extended.from_env({"CREDITRISK_FLAG": junk})
    message = str(info.value)
    assert message.startswith(f"CREDITRISK_FLAG={junk!r}: expected a boolean") and "\n" not in message
    assert all(word in message for word in ("1", "0", "true", "false", "yes", "no", "on", "off"))


def test_optional_and_literal_fields_parse_by_type() -> None:
    s = _Extended.from_env({"CREDITRISK_MAYBE_COUNT": "7", "CREDITRISK_LEVEL": "high"})
    assert (s.maybe_count, s.level) == (7, "high")
    assert _Extended.from_env({}).maybe_count is None  # unset (or empty): the default
    with pytest.raises(SettingsError, match=r"^CREDITRISK_MAYBE_COUNT='x': expected an integer$"):
        _Extended.from_env({"CREDITRISK_MAYBE_COUNT": "x"})
    with pytest.raises(SettingsError, match=r"^CREDITRISK_LEVEL='mid': expected low or high$"):
        _Extended.from_env({"CREDITRISK_LEVEL": "mid"})
    assert parse_value("V", "on", Literal[True, 3]) is True and parse_value("V", "3", Literal[True, 3]) == 3


def test_int_float_and_path_fields_parse_by_type(tmp_path: Path) -> None:
    s = Settings.from_env({"CREDITRISK_SERVE_PORT": "9001", "CREDITRISK_SERVE_MAX_BODY_BYTES": "1_000",
                           "CREDITRISK_DECISION_THRESHOLD": "0.2", "CREDITRISK_SCORE_BASE": "650",
                           "CREDITRISK_HOME": str(tmp_path), "CREDITRISK_STORE_ROOT": str(tmp_path / "store"),
                           "DAGSTER_HOME": str(tmp_path / "dh")})
    assert (s.serve_port, s.serve_max_body_bytes) == (9001, 1000) and type(s.serve_port) is int
    assert s.decision_threshold == 0.2 and s.score_base == 650.0 and type(s.score_base) is float
    assert (s.home, s.store_root, s.dagster_home) == (tmp_path, tmp_path / "store", tmp_path / "dh")
    assert isinstance(s.store_root, Path)


@pytest.mark.parametrize(("var", "raw", "expected"), [
    ("CREDITRISK_SERVE_PORT", "80.5", "expected an integer"),
    ("CREDITRISK_SERVE_PORT", "abc", "expected an integer"),
    ("CREDITRISK_TRAIN_TRIALS", "six", "expected an integer"),
    ("CREDITRISK_DECISION_THRESHOLD", "abc", "expected a number"),
    ("CREDITRISK_DECISION_THRESHOLD", "0,15", "expected a number"),
    ("CREDITRISK_LGD", "nan", "expected a finite number"),
    ("CREDITRISK_SCORE_BASE", "inf", "expected a finite number"),
])
def test_unparsable_values_are_one_line_naming_variable_and_type(var: str, raw: str, expected: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({var: raw})
    assert str(info.value) == f"{var}={raw!r}: {expected}"


def test_every_field_round_trips_from_its_env_text(tmp_path: Path) -> None:
    """Property over every field: the text of its default (or of a sample of its type where the default is
    None / empty) parses back to the same value of the same type, so no field has a type ``parse_value``
    does not know; a non-empty default also goes through ``from_env`` (and its validation) unchanged."""
    hints = get_type_hints(Settings)
    samples: dict[Any, Any] = {str: "some-text", Path: tmp_path / "sample", int: 3, float: 0.25, bool: True}
    for f in dataclasses.fields(Settings):
        var = f.metadata.get("var", "CREDITRISK_" + f.name.upper())
        kind = next(t for t in get_args(hints[f.name]) or [hints[f.name]] if t is not type(None))
        value = samples[kind] if f.default is None or f.default == "" else f.default
        parsed = parse_value(var, str(value), hints[f.name])
        assert parsed == value and type(parsed) is type(value), (f.name, value, parsed)
        if f.default is not None and f.default != "":
            assert getattr(Settings.from_env({var: str(value)}), f.name) == value, f.name
    assert Settings.from_env({}) == Settings()


def test_secrets_are_masked_in_describe() -> None:
    s = Settings.from_env({"CREDITRISK_S3_SECRET_ACCESS_KEY": "hunter2-secret", "CREDITRISK_PII_KEY": "p" * 40})
    text = repr(s.describe())
    assert "hunter2-secret" not in text and "p" * 40 not in text
    assert {r["variable"] for r in s.describe()} >= {"CREDITRISK_HOME", "CREDITRISK_S3_ENDPOINT"}


def _secret_fields() -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(Settings) if f.metadata.get("secret")]


def test_repr_and_str_mask_every_secret() -> None:
    """Any field marked secret (today's and future ones) never shows in repr / str / f-strings / describe."""
    secret_fields = _secret_fields()
    assert {f.name for f in secret_fields} >= {"s3_secret_access_key", "serve_api_key", "alert_webhook_url", "pii_key"}
    values = {f.name: f"hunter2-{f.name}-value" for f in secret_fields}
    s = Settings.from_env({"CREDITRISK_" + name.upper(): value for name, value in values.items()})
    shown = [repr(s), str(s), f"{s}", f"{s!r}", repr([s]), repr(s.describe())]
    for text in shown:
        for value in values.values():
            assert value not in text
        assert "hunter2" not in text
    assert "serve_api_key='***'" in repr(s) and "pii_key='***'" in repr(s)
    assert repr(s).startswith("Settings(env='local', ") and "serve_port=8000" in repr(s)
    # the values themselves stay usable
    assert all(getattr(s, name) == value for name, value in values.items())
    assert "s3_secret_access_key=''" in repr(Settings())  # an unset secret: nothing to hide


def test_settings_args_pass_real_secret_values() -> None:
    """The serving app's args (what replicas rebuild Settings from) carry the real values, not the masks."""
    from serving.config import settings_args

    values = {f.name: f"real-{f.name}" for f in _secret_fields()}
    s = Settings.from_env({"CREDITRISK_" + name.upper(): value for name, value in values.items()})
    args = settings_args(s)
    assert all(args["CREDITRISK_" + name.upper()] == value for name, value in values.items())
    assert Settings.from_env(args) == dataclasses.replace(s, home=s.home.resolve())


#: passwords made at run time: the repository's secret scan finds none, and nothing can match by accident
PW, PW2 = secrets.token_hex(6), secrets.token_hex(6)


@pytest.mark.parametrize(("text", "masked"), [
    (f"postgresql://lake:{PW}@db:5432/lake", "postgresql://lake:***@db:5432/lake"),
    (f"postgres:postgresql://lake:{PW}@db/lake?sslmode=require", "postgres:postgresql://lake:***@db/lake?sslmode=require"),
    (f"postgresql://lake:{PW[:3]}@{PW[3:]}@db/lake", "postgresql://lake:***@db/lake"),  # an unencoded @ in the password
    (f"postgres:host=db dbname=lake user=lake password={PW}", "postgres:host=db dbname=lake user=lake password=***"),
    (f"postgres:host=db password = '{PW[:3]} {PW[3:]}' user=lake", "postgres:host=db password=*** user=lake"),
    (f"postgresql://db/lake?user=lake&password={PW}&sslmode=require",
     "postgresql://db/lake?user=lake&password=***&sslmode=require"),
    (f"https://user:{PW}@mlflow.example/", "https://user:***@mlflow.example/"),
    ("http://mlflow:5000", "http://mlflow:5000"),
    ("https://user@host/a", "https://user@host/a"),
    ("postgres:host=db dbname=lake user=lake", "postgres:host=db dbname=lake user=lake"),
])
def test_url_and_dsn_passwords_are_masked(text: str, masked: str) -> None:
    assert mask_credentials(text) == masked


def test_postgres_passwords_are_masked_in_repr_and_describe(tmp_path: Path) -> None:
    env = {**_production_env(tmp_path), "CREDITRISK_LAKE_CATALOG": f"postgres:host=db user=lake password={PW}",
           "CREDITRISK_MLFLOW_TRACKING_URI": f"postgresql+psycopg2://mlflow:{PW2}@db:5432/mlflow"}
    s = Settings.from_env(env)
    for text in (repr(s), str(s), repr(s.describe())):
        assert PW not in text and PW2 not in text
        assert "password=***" in text and "postgresql+psycopg2://mlflow:***@db:5432/mlflow" in text
    assert s.lake_catalog.endswith(f"password={PW}") and PW2 in s.resolved_mlflow_uri  # real values


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
    postgres_db: {username: dagster, password: {env: DAGSTER_PG_PASSWORD}, hostname: db, db_name: dagster, port: 5432,
                  scheme: postgresql+psycopg2}
"""
# what Dagster's Helm chart writes (configmap-instance.yaml): one dagster_postgres entry per kind
HELM_DAGSTER_YAML = "\n".join(
    f"{kind}:\n  module: dagster_postgres.{module}\n  class: {cls}\n"
    "  config: {postgres_db: {hostname: db, scheme: postgresql+psycopg2}}"
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


@pytest.mark.parametrize(("variable", "dagster_yaml"), [
    ("CREDITRISK_MLFLOW_TRACKING_URI", POSTGRES_DAGSTER_YAML),
    ("DAGSTER_HOME", POSTGRES_DAGSTER_YAML.replace("scheme: postgresql+psycopg2", "scheme: postgresql")),
    ("DAGSTER_HOME", "storage:\n  postgres:\n    postgres_url: postgresql://dagster@db/dagster\n"),
    ("DAGSTER_HOME", HELM_DAGSTER_YAML.replace(", scheme: postgresql+psycopg2", "")),
])
def test_production_refuses_a_postgres_url_without_its_driver(tmp_path: Path, variable: str, dagster_yaml: str) -> None:
    env = _production_env(tmp_path, dagster_yaml)
    if variable == "CREDITRISK_MLFLOW_TRACKING_URI":
        env[variable] = "postgresql://mlflow@db:5432/mlflow"
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert "postgresql+psycopg2" in str(info.value) and ("dagster.yaml" in str(info.value)) == (variable == "DAGSTER_HOME")


def test_parallelism_defaults_to_the_cores_this_process_may_use() -> None:
    assert Settings.from_env({}).workers == len(os.sched_getaffinity(0))
    assert Settings.from_env({"CREDITRISK_PARALLELISM": "3"}).workers == 3
    with pytest.raises(SettingsError, match="CREDITRISK_PARALLELISM=-1"):
        Settings.from_env({"CREDITRISK_PARALLELISM": "-1"})
