"""Model performance over time, per window of decisions, counting only outcomes that have matured.

Inputs (the caller selects / renames into these columns):
  predictions  ``application_id``, ``pd`` (predicted probability of default), ``decision_time``;
               one row per scored decision of one model (filter champion / challenger before).
  outcomes     ``application_id``, ``label`` (1 = default, 0 = repaid), ``known_at`` (when it was learnt).

A prediction's outcome counts at ``as_of`` when the decision is at least ``maturity`` old
(``decision_time <= as_of - maturity``) and the outcome was known by then (``known_at <= as_of``).
The first rule keeps young windows from being judged on the outcomes that arrive early (often the
defaults); the second keeps a backfill at an earlier ``as_of`` from seeing the future.

Window status: ``ok``; ``empty_window`` (no prediction in the window); ``awaiting_labels``
(predictions, but no matured outcome yet); ``one_class`` (every matured outcome is the same, so AUC
is undefined: ``auc`` is None, calibration figures are still given).

:func:`performance_decay` is the performance sensor's rule over those windows: the newest window
with both classes and at least ``min_rows`` labelled decisions, decayed when its AUC is below a
floor or its ECE above a ceiling.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..modeling.evaluate import calibration, discrimination
from .drift import EMPTY_WINDOW, OK, ROW_COLUMNS

AWAITING_LABELS = "awaiting_labels"
ONE_CLASS = "one_class"
PREDICTION_COLUMNS = ("application_id", "pd", "decision_time")
OUTCOME_COLUMNS = ("application_id", "label", "known_at")
WINDOW_COLUMNS = ("window_start", "window_end", "status", "n_predictions", "n_invalid_pd", "n_matured",
                  "n_labelled", "label_coverage", "n_defaults", "default_rate", "mean_pd", "auc", "gini",
                  "brier", "ece")
ROW_METRICS = ("auc", "ece", "default_rate", "mean_pd", "n_labelled", "label_coverage")


def _like(ts: dt.datetime | pd.Timestamp, column: pd.Series) -> pd.Timestamp:
    """``ts`` in the time zone convention of ``column`` (aware columns: UTC for naive ``ts``)."""
    t = pd.Timestamp(ts)
    tz = getattr(column.dtype, "tz", None)
    if tz is not None and t.tzinfo is None:
        return t.tz_localize("UTC").tz_convert(tz)
    if tz is None and t.tzinfo is not None:
        return t.tz_convert("UTC").tz_localize(None)
    return t


def _require(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {', '.join(missing)}; expected {', '.join(columns)}")


def performance_windows(predictions: pd.DataFrame, outcomes: pd.DataFrame, *, as_of: dt.datetime,
                        maturity: dt.timedelta, window: dt.timedelta, start: dt.datetime, end: dt.datetime,
                        bins: int = 10) -> pd.DataFrame:
    """One row per window ``[start + i*window, start + (i+1)*window)`` (the last one cut at ``end``).

    Columns :data:`WINDOW_COLUMNS`: counts (predictions, invalid PDs dropped, matured decisions,
    matured decisions with an outcome, defaults), ``label_coverage`` = labelled / matured,
    ``default_rate`` (observed) and ``mean_pd`` (predicted) over the labelled decisions, ``auc`` and
    ``gini`` and ``brier`` (NaN unless status ok) and ``ece`` (equal-frequency ``bins``, as in
    ``modeling.evaluate.calibration``). Predictions outside ``[start, end)`` are ignored; an outcome
    listed twice counts once (the first known). PDs that are not finite numbers in [0, 1] are dropped.
    """
    if window <= dt.timedelta(0):
        raise ValueError(f"window must be positive, got {window}")
    if maturity < dt.timedelta(0):
        raise ValueError(f"maturity must not be negative, got {maturity}")
    _require(predictions, PREDICTION_COLUMNS, "predictions")
    _require(outcomes, OUTCOME_COLUMNS, "outcomes")
    p = predictions[list(PREDICTION_COLUMNS)].copy()
    p["decision_time"] = pd.to_datetime(p["decision_time"])
    t0, t_end = _like(start, p["decision_time"]), _like(end, p["decision_time"])
    if t_end <= t0:
        raise ValueError(f"end ({end}) must be after start ({start})")
    p = p[(p["decision_time"] >= t0) & (p["decision_time"] < t_end)]
    p["pd"] = pd.to_numeric(p["pd"], errors="coerce")

    o = outcomes[list(OUTCOME_COLUMNS)].copy()
    o["known_at"] = pd.to_datetime(o["known_at"])
    o = o[o["known_at"] <= _like(as_of, o["known_at"])]
    o = o.sort_values("known_at", kind="stable").drop_duplicates("application_id", keep="first")
    m = p.merge(o[["application_id", "label"]], on="application_id", how="left")
    m["label"] = pd.to_numeric(m["label"], errors="coerce")
    m["valid_pd"] = m["pd"].between(0.0, 1.0)  # False for NaN too
    m["matured"] = m["valid_pd"] & (m["decision_time"] <= _like(as_of, m["decision_time"]) - maturity)
    m["labelled"] = m["matured"] & m["label"].isin([0, 1])

    n_windows = int(np.ceil((t_end - t0) / pd.Timedelta(window)))
    m["w"] = ((m["decision_time"] - t0) // pd.Timedelta(window)).astype(int)
    groups = dict(tuple(m.groupby("w", sort=True)))
    rows = []
    for i in range(n_windows):
        ws = t0 + i * pd.Timedelta(window)
        rows.append(_window(ws, min(ws + pd.Timedelta(window), t_end), groups.get(i), bins))
    return pd.DataFrame(rows, columns=list(WINDOW_COLUMNS))


def _window(start: pd.Timestamp, end: pd.Timestamp, sub: pd.DataFrame | None, bins: int) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(WINDOW_COLUMNS)
    row.update(window_start=start, window_end=end, n_predictions=0, n_invalid_pd=0, n_matured=0, n_labelled=0,
               n_defaults=0)
    if sub is None or sub.empty:
        row["status"] = EMPTY_WINDOW
        return row
    lab = sub[sub["labelled"]]
    row.update(n_predictions=len(sub), n_invalid_pd=int((~sub["valid_pd"]).sum()),
               n_matured=int(sub["matured"].sum()), n_labelled=len(lab), n_defaults=int(lab["label"].sum()))
    if row["n_matured"]:
        row["label_coverage"] = row["n_labelled"] / row["n_matured"]
    if lab.empty:
        row["status"] = AWAITING_LABELS
        return row
    y, pd_ = lab["label"].to_numpy(dtype=float), lab["pd"].to_numpy(dtype=float)
    row.update(default_rate=float(y.mean()), mean_pd=float(pd_.mean()), ece=calibration(y, pd_, bins=bins)[1])
    if len(np.unique(y)) < 2:
        row["status"] = ONE_CLASS
        return row
    d = discrimination(y, pd_)
    row.update(status=OK, auc=d["auc"], gini=d["gini"], brier=d["brier"])
    return row


def performance_rows(windows: pd.DataFrame) -> pd.DataFrame:
    """The windows as flat time-series rows (columns ``drift.ROW_COLUMNS``, kind ``performance``)."""
    rows = [dict(zip(ROW_COLUMNS, (w["window_start"], w["window_end"], "performance", metric,
                                   None if pd.isna(w[metric]) else float(w[metric]), None, w["status"], None, None),
                     strict=True))
            for w in windows.to_dict("records") for metric in ROW_METRICS]
    return pd.DataFrame(rows, columns=list(ROW_COLUMNS))


# --------------------------------------------------------------------------- the performance sensor's decision


@dataclass(frozen=True)
class Decay:
    """The performance sensor's evidence: the newest evaluable window, and what it breached (empty: nothing)."""

    window_start: pd.Timestamp
    window_end: pd.Timestamp
    n_labelled: int
    auc: float | None
    ece: float | None
    reasons: tuple[str, ...]

    @property
    def decayed(self) -> bool:
        return bool(self.reasons)

    def as_dict(self) -> dict[str, Any]:
        return {"window_start": str(self.window_start), "window_end": str(self.window_end),
                "n_labelled": self.n_labelled, "auc": self.auc, "ece": self.ece, "reasons": list(self.reasons)}


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def performance_decay(windows: pd.DataFrame, *, min_auc: float, max_ece: float, min_rows: int) -> Decay | None:
    """Whether the champion's matured-label performance decayed, judged on the newest evaluable window.

    Evaluable: status ``ok`` (both classes among the matured outcomes) and at least ``min_rows``
    labelled decisions; the others (awaiting labels, one class, too few labels) say nothing. The
    window has decayed when its AUC is below ``min_auc`` or its ECE above ``max_ece``. None: no
    evaluable window. ``windows`` is :func:`performance_windows`' frame (oldest first).
    """
    if not 0.0 <= min_auc <= 1.0 or not 0.0 <= max_ece <= 1.0:
        raise ValueError(f"min_auc and max_ece must be in [0, 1], got {min_auc} and {max_ece}")
    if windows.empty:
        return None
    ok = windows[(windows["status"] == OK) & (windows["n_labelled"] >= min_rows)]
    if ok.empty:
        return None
    w = ok.sort_values("window_end", kind="stable").iloc[-1]
    auc, ece = _number(w["auc"]), _number(w["ece"])
    reasons = []
    if auc is not None and auc < min_auc:
        reasons.append(f"AUC {auc:.3f} < {min_auc}")
    if ece is not None and ece > max_ece:
        reasons.append(f"ECE {ece:.3f} > {max_ece}")
    return Decay(pd.Timestamp(w["window_start"]), pd.Timestamp(w["window_end"]), int(w["n_labelled"]), auc, ece,
                 tuple(reasons))
