"""Point-in-time training sets: gold features joined with labels that have matured.

A label is usable only once its outcome is known (``OUTCOME_TIME <= as_of``); features are the
ones gold computed strictly before each decision. The split is by time: the oldest decisions
train, the next validate (early stopping, calibration), the newest are the out-of-time test.

Which features a model trains on is decided here (``select_features``): a feature whose source
table has no rows in silver at the training snapshot (a lender that only has applications has no
bureau, previous applications, instalments or cards) is left out, not learnt as the constant gold
fills in for an empty history; so is a feature without a single value in the train split. The
training set records the feature groups (source tables) left out and every feature dropped, with
why; the model card and the ml asset metadata list them, and the model, once trained, knows only
its own features (serving and monitoring use that list).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ..contracts import TABLES
from ..gold.catalogue import Feature, features
from ..gold.dbt_profiles import PROJECT_DIR
from ..resources import Lake
from ..settings import GIT_SHA_PATTERN, Settings

TARGET = "TARGET"
SPLITS = ("train", "valid", "test")
FAIRNESS_COLUMNS = ("gender", "age_band")  # kept out of the features, used to audit them
AGE_BANDS = [(18, 25), (25, 35), (35, 50), (50, 65), (65, 200)]
REPO_DIR = PROJECT_DIR.parent
#: The image build writes the commit it was built from here (Dockerfile ``ARG GIT_SHA``): an image has no ``.git``.
GIT_SHA_FILE = REPO_DIR / "GIT_SHA"
#: why a feature is left out of training (model card, asset metadata)
ALL_NULL = "entirely null in the train split"


class TrainingDataError(ValueError):
    """The training data cannot give a trustworthy model; the message names the problem."""


class GitShaError(RuntimeError):
    """No commit can be named for the running code; the message says how to provide one."""


@dataclass
class TrainingSet:
    #: sk_id_curr, decision_time, every catalogue feature (the dropped ones too, so a model trained on other
    #: feature groups can score the same rows), TARGET, split, gender, age_band
    frame: pd.DataFrame
    features: list[str]  # what the models train on
    categorical: list[str]
    lineage: dict[str, str | int | float | None] = field(default_factory=dict)  # tags, metadata
    feature_groups_absent: list[str] = field(default_factory=list)  # source tables without rows in silver
    features_dropped: dict[str, str] = field(default_factory=dict)  # feature → why it is left out

    def part(self, split: str) -> pd.DataFrame:
        return self.frame[self.frame["split"] == split]


@dataclass(frozen=True)
class FeatureSelection:
    """The features to train on, and what is left out: source tables without rows, features and why."""

    features: list[str]
    categorical: list[str]
    groups_absent: list[str]
    dropped: dict[str, str]


def no_rows(table: str) -> str:
    """Why the features of an empty source table are left out."""
    return f"source table {table} has no rows"


def source_row_counts(con: duckdb.DuckDBPyConnection, tables: Iterable[str],
                      snapshot_id: int | None = None) -> dict[str, int]:
    """Rows in silver at ``snapshot_id`` (now when None) of each contract table among ``tables``; a table
    silver has not created yet has none. Names that are not contract tables are left out (not counted)."""
    at = Lake.as_of(snapshot_id)
    out = {}
    for table in dict.fromkeys(tables):
        if table not in TABLES:
            continue
        try:
            row = con.execute(f'SELECT count(*) FROM lake.silver."{table}"{at}').fetchone()
        except duckdb.CatalogException:
            row = None
        out[table] = int(row[0]) if row else 0
    return out


def select_features(catalogue: Sequence[Feature], source_rows: Mapping[str, int],
                    train: pd.DataFrame) -> FeatureSelection:
    """The catalogue features worth training on: not those whose source table has no rows (``source_rows``
    counts them; a source it does not count is kept), nor those without a value in ``train``."""
    groups = list(dict.fromkeys(f.source for f in catalogue if source_rows.get(f.source, 1) == 0))
    dropped: dict[str, str] = {}
    for f in catalogue:
        if f.source in groups:
            dropped[f.name] = no_rows(f.source)
        elif f.name not in train.columns or train[f.name].isna().all():
            dropped[f.name] = ALL_NULL
    kept = [f for f in catalogue if f.name not in dropped]
    return FeatureSelection([f.name for f in kept], [f.name for f in kept if f.data_type == "varchar"], groups,
                            dropped)


def age_band(age: pd.Series) -> pd.Series:
    labels = [f"{lo}-{hi - 1}" if hi < 200 else f"{lo}+" for lo, hi in AGE_BANDS]
    return pd.cut(age, bins=[lo for lo, _ in AGE_BANDS] + [200], right=False, labels=labels).astype(str)


def load_matured(con: duckdb.DuckDBPyConnection, as_of: dt.datetime | None = None,
                 snapshot_id: int | None = None) -> pd.DataFrame:
    """Features of every application whose outcome is known at ``as_of`` (all when None)."""
    at = Lake.as_of(snapshot_id)
    matured = "" if as_of is None else "WHERE o.OUTCOME_TIME <= ?"
    params = [] if as_of is None else [as_of]
    return con.execute(
        f"""SELECT f.*, o.TARGET, a.CODE_GENDER AS gender
            FROM lake.gold.applicant_features AS f{at}
            JOIN lake.silver.loan_outcome AS o{at} ON o.SK_ID_CURR = f.sk_id_curr
            JOIN lake.silver.application AS a{at} ON a.SK_ID_CURR = f.sk_id_curr
            {matured}
            ORDER BY f.decision_time, f.sk_id_curr""", params).df()


def time_split(frame: pd.DataFrame, valid_frac: float = 0.15, test_frac: float = 0.15) -> pd.Series:
    """train / valid / test by decision time (oldest first); ties never straddle a boundary."""
    times = frame["decision_time"].rank(method="first").to_numpy() / len(frame)
    split = np.where(times <= 1 - valid_frac - test_frac, "train", np.where(times <= 1 - test_frac, "valid", "test"))
    return pd.Series(split, index=frame.index, name="split")


def recency_weights(decision_time: pd.Series, half_life_hours: float = 0.0, window_hours: float = 0.0,
                    reference: pd.Timestamp | dt.datetime | None = None) -> np.ndarray:
    """Sample weights favouring recent decisions: ``0.5 ** (age / half_life_hours)``, where age is the hours
    between a row's decision time and ``reference`` (default: the newest decision time given, weight 1), and
    0 for rows older than ``window_hours``. 0 switches either off: ``(0, 0)`` gives every row weight 1.

    Meant for the train split only: the validation and out-of-time test splits are never reweighted.
    """
    for name, value in (("half_life_hours", half_life_hours), ("window_hours", window_hours)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name}={value!r}: must be a finite number of hours >= 0 (0: off)")
    times = pd.to_datetime(pd.Series(decision_time))
    if times.isna().any():
        raise ValueError("decision_time has missing values: a row without a time has no age")
    if times.empty:
        return np.ones(0)
    ref = times.max() if reference is None else pd.Timestamp(reference)
    age = ((ref - times) / pd.Timedelta(hours=1)).to_numpy(dtype=float)
    if (age < 0).any():
        raise ValueError(f"decision times after the reference {ref}: a weight needs a non-negative age")
    weights = np.power(0.5, age / half_life_hours) if half_life_hours > 0 else np.ones(len(age))
    if window_hours > 0:
        weights = np.where(age <= window_hours, weights, 0.0)
    return weights


def check_training_frame(frame: pd.DataFrame, feature_names: list[str], min_rows: int = 200,
                         min_per_class: int = 20) -> None:
    """Raise TrainingDataError for data no model should be trained on."""
    missing = [c for c in feature_names if c not in frame.columns]
    if missing:
        raise TrainingDataError(f"feature column(s) missing from the training data: {', '.join(missing[:10])}")
    if len(frame) < min_rows:
        raise TrainingDataError(f"only {len(frame)} applications have a matured label; need at least {min_rows}")
    counts = frame[TARGET].value_counts()
    if len(counts) < 2:
        raise TrainingDataError(f"every matured label is {counts.index[0] if len(counts) else '?'}: "
                                "a single class cannot train a PD model")
    if counts.min() < min_per_class:
        raise TrainingDataError(f"only {counts.min()} labels of the minority class; need at least {min_per_class}")
    for split in SPLITS:
        part = frame[frame["split"] == split]
        if part[TARGET].nunique() < 2:
            raise TrainingDataError(f"the {split} split has a single class; more matured labels are needed")


def dbt_manifest_hash() -> str:
    manifest = PROJECT_DIR / "target" / "manifest.json"
    return hashlib.sha256(manifest.read_bytes()).hexdigest()[:16] if manifest.exists() else "unknown"


def git_sha(setting: str | None = None, sha_file: Path = GIT_SHA_FILE, repo: Path = REPO_DIR) -> str:
    """The commit of the running code, recorded with every model: ``setting`` (default
    ``CREDITRISK_GIT_SHA``), else ``sha_file`` (written by the image build), else ``git rev-parse HEAD``
    in ``repo``. Never a placeholder: raises GitShaError when none of them names a commit."""
    if setting is None:
        setting = Settings.from_env().git_sha
    if setting:
        return setting  # Settings checked its form
    if sha_file.is_file():
        text = sha_file.read_text().strip()
        if not GIT_SHA_PATTERN.fullmatch(text):
            raise GitShaError(f"{sha_file} holds {text[:50]!r}, not a commit SHA: rebuild the image with "
                              "--build-arg GIT_SHA=$(git rev-parse HEAD)")
        return text
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=5)
        head = done.stdout.strip() if done.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        head = ""
    if GIT_SHA_PATTERN.fullmatch(head):
        return head
    raise GitShaError(f"no git commit for the code in {repo}: set CREDITRISK_GIT_SHA, build the image with "
                      f"--build-arg GIT_SHA=$(git rev-parse HEAD) (it writes {sha_file.name}) or run from a git checkout")


def build_training_set(con: duckdb.DuckDBPyConnection, as_of: dt.datetime | None = None,
                       snapshot_id: int | None = None, min_rows: int = 200) -> TrainingSet:
    """The point-in-time training set at ``as_of``, pinned to lake ``snapshot_id``; features of source
    tables without rows at that snapshot, and features without a value in the train split, left out."""
    catalogue = features()
    feature_names = [f.name for f in catalogue]
    frame = load_matured(con, as_of, snapshot_id)
    if frame.empty:
        raise TrainingDataError("no application has both features and a matured label yet")
    frame["split"] = time_split(frame)
    frame["age_band"] = age_band(frame["age_years"])
    check_training_frame(frame, feature_names, min_rows=min_rows)
    selection = select_features(catalogue, source_row_counts(con, (f.source for f in catalogue), snapshot_id),
                                frame[frame["split"] == "train"])
    if not selection.features:
        raise TrainingDataError("no feature has a value in the train split: every feature is left out "
                                f"({', '.join(sorted(set(selection.dropped.values())))})")
    lineage: dict[str, str | int | float | None] = {
        "lake_snapshot_id": snapshot_id, "as_of": None if as_of is None else as_of.isoformat(),
        "dbt_manifest_hash": dbt_manifest_hash(), "git_sha": git_sha(),
        "rows": len(frame), "default_rate": round(float(frame[TARGET].mean()), 5),
        **{f"rows_{s}": int((frame["split"] == s).sum()) for s in SPLITS},
        "decision_time_min": str(frame["decision_time"].min()), "decision_time_max": str(frame["decision_time"].max()),
    }
    cols = ["sk_id_curr", "decision_time", *feature_names, TARGET, "split", *FAIRNESS_COLUMNS]
    return TrainingSet(frame[cols].reset_index(drop=True), selection.features, selection.categorical, lineage,
                       selection.groups_absent, selection.dropped)
