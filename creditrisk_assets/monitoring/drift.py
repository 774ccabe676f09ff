"""Drift of one monitoring window against a reference: features (Evidently) and predicted PD (PSI, KS).

Plain functions over pandas; nothing here knows Dagster or reads settings. The caller passes the
reference (e.g. the champion's training features) and the current window (e.g. one day of the
prediction log) and stores the result: flat rows for a time-series table (:func:`drift_rows`), the
Evidently HTML for the object store (:meth:`DriftResult.html`), and the drift sensor's decision over
the stored rows (:func:`consecutive_drifted`).

Status of a window (``DriftResult.status`` / ``PredictionDrift.status``):
  ``ok``                 computed;
  ``empty_window``       the current window has no rows;
  ``empty_reference``    the reference has no rows;
  ``insufficient_rows``  fewer than ``min_rows`` rows in the current window or in the reference;
  ``no_columns``         (features) no column could be tested: all missing, entirely null, or too sparse.
A window that is not ``ok`` is never drifted: missing data is not evidence of a shift.

Status of one feature column (``ColumnDrift.status``): ``ok``, ``missing_column`` (absent from a
frame), ``unsupported_type`` (datetime), ``all_null`` (no value in one of the frames),
``insufficient_rows`` (fewer than ``min_rows`` non-null values in one of the frames),
``not_computable`` (the statistic came back NaN). Only ``ok`` columns count in the share of drifted
columns (numerator and denominator).

Why ``min_rows`` defaults to 1,000: with a reference above 1,000 rows Evidently picks distance
measures (normed Wasserstein for numbers, Jensen-Shannon for categories, drift at >= 0.1) whose
value on a small sample of an *unchanged* distribution is large. Measured here (log-normal numeric
column, 8-level categorical, 50,000-row reference, 300 draws): share of columns flagged as drifted
on same-distribution windows of 50 / 200 / 500 / 1,000 rows = 94% / 31% / 4% / 0.3% (Wasserstein)
and 86% / 4% / 0% / 0% (Jensen-Shannon). Below ~1,000 rows a "drift" would mostly be noise.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

OK = "ok"
EMPTY_WINDOW = "empty_window"
EMPTY_REFERENCE = "empty_reference"
INSUFFICIENT_ROWS = "insufficient_rows"
NO_COLUMNS = "no_columns"
MISSING_COLUMN = "missing_column"
UNSUPPORTED_TYPE = "unsupported_type"
ALL_NULL = "all_null"
NOT_COMPUTABLE = "not_computable"

DEFAULT_MIN_ROWS = 1_000
DEFAULT_SAMPLE_ROWS = 20_000  # bench/drift.py: same flags as all 1M rows; unchanged columns' scores +<= 0.025
SEED = 7
PSI_MODERATE = 0.1  # conventional: < 0.1 stable, 0.1-0.25 moderate shift, >= 0.25 significant shift
PSI_SIGNIFICANT = 0.25
PSI_EPS = 1e-4  # floor of a bin's share, so an empty bin gives a large but finite PSI

#: Columns of the flat time-series rows (:func:`drift_rows`, and performance's rows).
ROW_COLUMNS = ("window_start", "window_end", "kind", "metric", "value", "drifted", "status", "method", "threshold")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str  # "numerical" | "categorical" | "" (missing / unsupported)
    status: str
    method: str | None = None  # Evidently's stat test, e.g. "Wasserstein distance (normed)"
    score: float | None = None
    threshold: float | None = None
    drifted: bool = False
    null_share_reference: float | None = None
    null_share_current: float | None = None


@dataclass
class DriftResult:
    """Feature drift of one window. ``*_rows`` are the rows given; ``*_rows_used`` the rows tested.

    When a frame has more than ``sample_rows`` rows, a seeded uniform sample without replacement of
    ``sample_rows`` rows is tested instead (``sampled`` is True); every figure here (scores, null
    shares) is then computed on that sample.
    """

    status: str
    drift_share_threshold: float
    reference_rows: int
    current_rows: int
    reference_rows_used: int = 0
    current_rows_used: int = 0
    sampled: bool = False
    columns: list[ColumnDrift] = field(default_factory=list)
    share_drifted: float | None = None  # among the columns with status ok; None when none was tested
    dataset_drifted: bool = False
    snapshot: Any = field(default=None, repr=False)  # evidently Snapshot, None when not computed

    @property
    def drifted(self) -> bool:
        return self.dataset_drifted

    @property
    def tested_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.status == OK]

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    def html(self) -> str | None:
        """Evidently's standalone HTML report, or None when the window was not computed."""
        return None if self.snapshot is None else self.snapshot.get_html_str(as_iframe=False)

    def summary(self) -> dict[str, Any]:
        """Flat facts for asset metadata and alerts (no data values)."""
        return {"status": self.status, "dataset_drifted": self.dataset_drifted,
                "share_drifted": self.share_drifted, "drift_share_threshold": self.drift_share_threshold,
                "columns_tested": len(self.tested_columns), "columns_drifted": len(self.drifted_columns),
                "drifted_columns": self.drifted_columns, "reference_rows": self.reference_rows,
                "current_rows": self.current_rows, "reference_rows_used": self.reference_rows_used,
                "current_rows_used": self.current_rows_used, "sampled": self.sampled}

    def rows(self, window_start: dt.datetime, window_end: dt.datetime) -> list[dict[str, Any]]:
        """One ``dataset`` row (share of drifted columns) and one ``feature`` row per column."""
        out = [_row(window_start, window_end, "dataset", "share_drifted", self.share_drifted, self.dataset_drifted,
                    self.status, "evidently DataDriftPreset", self.drift_share_threshold),
               _row(window_start, window_end, "dataset", "current_rows", self.current_rows, None, self.status),
               _row(window_start, window_end, "dataset", "current_rows_used", self.current_rows_used, None,
                    self.status)]
        out += [_row(window_start, window_end, "feature", c.column, c.score, c.drifted, c.status, c.method,
                     c.threshold) for c in self.columns]
        return out


@dataclass
class PredictionDrift:
    """Drift of the predicted-PD distribution: PSI over reference-quantile bins, and the KS statistic.

    ``drifted`` is ``psi >= psi_threshold`` (default 0.25, the conventional "significant shift");
    ``level`` is ``stable`` (< 0.1), ``moderate`` (0.1-0.25) or ``significant`` (>= 0.25). The KS
    statistic and p-value are reported, not used to decide: on thousands of rows its p-value flags
    shifts too small to matter.
    """

    status: str
    reference_rows: int  # finite PDs; ``invalid_rows`` counts the NaN / infinite ones dropped
    current_rows: int
    invalid_rows: int = 0
    psi: float | None = None
    psi_threshold: float = PSI_SIGNIFICANT
    level: str | None = None
    ks: float | None = None
    ks_pvalue: float | None = None
    mean_pd_reference: float | None = None
    mean_pd_current: float | None = None
    edges: list[float] = field(default_factory=list)  # interior bin edges (right-closed bins)
    drifted: bool = False

    def rows(self, window_start: dt.datetime, window_end: dt.datetime) -> list[dict[str, Any]]:
        return [_row(window_start, window_end, "prediction", "psi", self.psi, self.drifted, self.status,
                     f"psi ({len(self.edges) + 1} reference-quantile bins)" if self.edges else "psi",
                     self.psi_threshold),
                _row(window_start, window_end, "prediction", "ks", self.ks, None, self.status, "ks_2samp"),
                _row(window_start, window_end, "prediction", "mean_pd", self.mean_pd_current, None, self.status)]


def _row(start: dt.datetime, end: dt.datetime, kind: str, metric: str, value: float | None, drifted: bool | None,
         status: str, method: str | None = None, threshold: float | None = None) -> dict[str, Any]:
    value = None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
    return dict(zip(ROW_COLUMNS, (start, end, kind, metric, value, drifted, status, method, threshold), strict=True))


def drift_rows(window_start: dt.datetime, window_end: dt.datetime,
               *results: DriftResult | PredictionDrift) -> pd.DataFrame:
    """Flat rows (columns :data:`ROW_COLUMNS`) of one window's results, for the drift time-series table."""
    rows = [r for result in results for r in result.rows(window_start, window_end)]
    return pd.DataFrame(rows, columns=list(ROW_COLUMNS))


# --------------------------------------------------------------------------- feature drift


def _window_status(reference_rows: int, current_rows: int, min_rows: int) -> str:
    if current_rows == 0:
        return EMPTY_WINDOW
    if reference_rows == 0:
        return EMPTY_REFERENCE
    if current_rows < min_rows or reference_rows < min_rows:
        return INSUFFICIENT_ROWS
    return OK


def _sample(frame: pd.DataFrame, sample_rows: int | None, seed: int) -> tuple[pd.DataFrame, bool]:
    if sample_rows is None or len(frame) <= sample_rows:
        return frame, False
    idx = np.sort(np.random.default_rng(seed).choice(len(frame), size=sample_rows, replace=False))
    return frame.iloc[idx], True


def _kind(s: pd.Series) -> str:
    if pd.api.types.is_datetime64_any_dtype(s) or pd.api.types.is_timedelta64_dtype(s):
        return ""
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        return "numerical"
    return "categorical"


def _as_kind(s: pd.Series, kind: str) -> pd.Series:
    """Numbers as float64 (infinite -> NaN), categories as text (nulls as None)."""
    if kind == "numerical":
        out = pd.to_numeric(s, errors="coerce").astype("float64")
        return out.where(np.isfinite(out))
    out = s.astype(str).astype(object)
    out[s.isna().to_numpy()] = None
    return out


def feature_drift(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], *,
                  drift_share_threshold: float, min_rows: int = DEFAULT_MIN_ROWS,
                  sample_rows: int | None = DEFAULT_SAMPLE_ROWS, seed: int = SEED) -> DriftResult:
    """Evidently's ``DataDriftPreset`` on ``columns``: per-column drift, and whether the window drifted.

    A column's type follows the reference: numeric (and boolean) columns are numerical, datetimes are
    not tested, anything else is categorical. Evidently picks each column's test itself: for a
    reference column with more than 1,000 non-null values, normed Wasserstein for numerical columns
    with more than 5 distinct values and Jensen-Shannon otherwise, drifted when the distance is
    >= 0.1; at or below 1,000 values, KS / chi-square / z-test p-values, drifted below 0.05 (only
    reachable with a ``min_rows`` below the default). Nulls are dropped per column before testing;
    the null shares are reported beside the score.

    ``dataset_drifted`` is ``share_drifted >= drift_share_threshold`` over the columns that could be
    tested. Frames above ``sample_rows`` rows are tested on a seeded uniform sample of that many rows
    (``sample_rows=None`` tests every row): the distances Evidently uses converge at a few thousand
    rows (see the module docstring), and Evidently's cost grows with rows, not with the answer.
    """
    if not 0 < drift_share_threshold <= 1:
        raise ValueError(f"drift_share_threshold must be in (0, 1], got {drift_share_threshold}")
    if min_rows < 2:
        raise ValueError(f"min_rows must be at least 2, got {min_rows}")
    if sample_rows is not None and sample_rows < min_rows:
        raise ValueError(f"sample_rows ({sample_rows}) must be at least min_rows ({min_rows})")
    result = DriftResult(_window_status(len(reference), len(current), min_rows), drift_share_threshold,
                         len(reference), len(current))
    if result.status != OK:
        return result
    ref, ref_sampled = _sample(reference, sample_rows, seed)
    cur, cur_sampled = _sample(current, sample_rows, seed + 1)
    result.reference_rows_used, result.current_rows_used = len(ref), len(cur)
    result.sampled = ref_sampled or cur_sampled

    checked: dict[str, ColumnDrift] = {}
    data_ref: dict[str, pd.Series] = {}
    data_cur: dict[str, pd.Series] = {}
    for col in dict.fromkeys(columns):
        if col not in ref.columns or col not in cur.columns:
            checked[col] = ColumnDrift(col, "", MISSING_COLUMN)
            continue
        kind = _kind(ref[col])
        if not kind:
            checked[col] = ColumnDrift(col, "", UNSUPPORTED_TYPE)
            continue
        r, c = _as_kind(ref[col], kind), _as_kind(cur[col], kind)
        n_r, n_c = int(r.notna().sum()), int(c.notna().sum())
        status = ALL_NULL if min(n_r, n_c) == 0 else INSUFFICIENT_ROWS if min(n_r, n_c) < min_rows else OK
        checked[col] = ColumnDrift(col, kind, status, null_share_reference=float(r.isna().mean()),
                                   null_share_current=float(c.isna().mean()))
        if status == OK:
            data_ref[col], data_cur[col] = r.reset_index(drop=True), c.reset_index(drop=True)

    if not data_ref:
        result.status, result.columns = NO_COLUMNS, list(checked.values())
        return result
    scores, snapshot = _evidently(pd.DataFrame(data_ref), pd.DataFrame(data_cur),
                                  {c: checked[c].kind for c in data_ref}, drift_share_threshold)
    for col, (method, threshold, score, drifted) in scores.items():
        ok = score is not None and math.isfinite(score)
        checked[col] = replace(checked[col], status=OK if ok else NOT_COMPUTABLE, method=method,
                               score=score if ok else None, threshold=threshold, drifted=drifted and ok)
    result.columns, result.snapshot = list(checked.values()), snapshot
    tested = [c for c in result.columns if c.status == OK]
    if not tested:
        result.status = NO_COLUMNS
        return result
    result.share_drifted = sum(c.drifted for c in tested) / len(tested)
    result.dataset_drifted = result.share_drifted >= drift_share_threshold
    return result


_Score = tuple[str | None, float | None, float | None, bool]  # method, threshold, score, drifted


def _evidently(reference: pd.DataFrame, current: pd.DataFrame, kinds: dict[str, str], drift_share: float
               ) -> tuple[dict[str, _Score], Any]:
    """Run the preset; per column (method, threshold, score, drifted), and the snapshot.

    The drifted flag is Evidently's own per-column test (status FAIL), so the direction of each
    statistic (p-value below, or distance above, its threshold) stays Evidently's business.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    cols = list(kinds)
    definition = DataDefinition(numerical_columns=[c for c in cols if kinds[c] == "numerical"],
                                categorical_columns=[c for c in cols if kinds[c] == "categorical"])
    with np.errstate(divide="ignore", invalid="ignore"):  # correlations of constant columns: NaN, as intended
        snapshot = Report([DataDriftPreset(columns=cols, drift_share=drift_share)], include_tests=True).run(
            current_data=Dataset.from_pandas(current, data_definition=definition),
            reference_data=Dataset.from_pandas(reference, data_definition=definition))
    out = snapshot.dict()
    values = {m["config"]["column"]: m for m in out["metrics"] if m["config"]["type"].endswith(":ValueDrift")}
    failed = {t["metric_config"]["params"]["column"] for t in out["tests"]
              if t["id"] == "drift" and t["status"] == "FAIL"}
    scores: dict[str, _Score] = {}
    for col in cols:
        m = values.get(col)
        if m is None:
            scores[col] = (None, None, None, False)
            continue
        value = m.get("value")
        scores[col] = (m["config"].get("method"), m["config"].get("threshold"),
                       None if value is None else float(value), col in failed)
    return scores, snapshot


# --------------------------------------------------------------------------- prediction drift


def quantile_edges(reference: np.ndarray, bins: int = 10) -> np.ndarray:
    """Interior edges of ``bins`` equal-frequency bins of ``reference`` (ties merge bins)."""
    if int(bins) != bins or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    return np.unique(np.quantile(np.asarray(reference, dtype=float), np.linspace(0, 1, int(bins) + 1)[1:-1]))


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of ``values`` in each right-closed bin ``(-inf, e0], (e0, e1], ..., (ek, inf)``."""
    idx = np.searchsorted(edges, np.asarray(values, dtype=float), side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1)
    return counts / max(counts.sum(), 1)


def population_stability_index(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray,
                               eps: float = PSI_EPS) -> float:
    """PSI = sum (a - e) ln(a / e) over bins of shares (each floored at ``eps``, then renormalised)."""
    e, a = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    if e.shape != a.shape or e.ndim != 1 or e.size == 0:
        raise ValueError(f"expected and actual must be 1-D of the same length, got {e.shape} and {a.shape}")
    e, a = np.maximum(e / e.sum(), eps), np.maximum(a / a.sum(), eps)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """PSI of ``current`` against ``bins`` quantile bins of ``reference``."""
    edges = quantile_edges(reference, bins)
    return population_stability_index(bin_shares(reference, edges), bin_shares(current, edges))


def _finite(values: pd.Series | np.ndarray | Sequence[float]) -> tuple[np.ndarray, int]:
    arr = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    keep = np.isfinite(arr)
    return arr[keep], int((~keep).sum())


def prediction_drift(reference_pd: pd.Series | np.ndarray, current_pd: pd.Series | np.ndarray, *,
                     bins: int = 10, min_rows: int = DEFAULT_MIN_ROWS,
                     psi_threshold: float = PSI_SIGNIFICANT) -> PredictionDrift:
    """PSI (bins: ``bins`` quantiles of the reference PDs) and KS of the current PDs against the reference.

    NaN / infinite PDs are dropped and counted in ``invalid_rows``; the status rules of the module
    docstring apply to the finite ones. PSI on a sample of an unchanged distribution is roughly
    ``(bins - 1) * (1/n + 1/m)``: 0.009 at 1,000 rows, well under the 0.1 / 0.25 conventions.
    """
    ref, bad_r = _finite(reference_pd)
    cur, bad_c = _finite(current_pd)
    out = PredictionDrift(_window_status(len(ref), len(cur), min_rows), len(ref), len(cur), bad_r + bad_c,
                          psi_threshold=psi_threshold)
    if out.status != OK:
        return out
    edges = quantile_edges(ref, bins)
    out.psi = population_stability_index(bin_shares(ref, edges), bin_shares(cur, edges))
    out.level = "significant" if out.psi >= PSI_SIGNIFICANT else "moderate" if out.psi >= PSI_MODERATE else "stable"
    ks = stats.ks_2samp(ref, cur)
    out.ks, out.ks_pvalue = float(ks.statistic), float(ks.pvalue)
    out.mean_pd_reference, out.mean_pd_current = float(ref.mean()), float(cur.mean())
    out.edges = [float(e) for e in edges]
    out.drifted = out.psi >= psi_threshold
    return out


# --------------------------------------------------------------------------- the sensor's decision


def _field(window: Mapping[str, Any] | Any, name: str) -> Any:
    return window.get(name) if isinstance(window, Mapping) else getattr(window, name, None)


def _truthy(value: Any) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return False
    return bool(value)


def consecutive_drifted(windows: Sequence[Mapping[str, Any] | Any], k: int) -> bool:
    """True when the last ``k`` computable windows (oldest first in ``windows``) are all drifted.

    Each window is a mapping or an object with ``status`` and ``drifted`` (a stored ``dataset`` row,
    a :class:`DriftResult`, a :class:`PredictionDrift`). Windows whose status is not ``ok`` (empty,
    too few rows, ...) are skipped: they neither count as drifted nor break a run. An outage says
    nothing about the distribution, so it must not reset the evidence gathered before it, nor add
    to it. The price: two drifted windows around a long outage still trigger, which is wanted for a
    retrain decision (the data the model sees has changed either way). Fewer than ``k`` computable
    windows -> False.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    computable = [w for w in windows if _field(w, "status") == OK]
    last = computable[-k:]
    return len(last) == k and all(_truthy(_field(w, "drifted")) for w in last)
