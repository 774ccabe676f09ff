"""Scores, grades and the economics of a cut-off: the terms a credit-risk team works in. Pure functions.

- **Scorecard points** from a PD: ``score = base + PDO / ln 2 · ln(odds / base_odds)`` with
  ``odds = (1 - pd) / pd`` (good : bad). A score of ``base`` means odds of ``base_odds`` : 1, and every
  ``PDO`` points double the odds. Higher is better.
- **Master scale**: grades 1 (best) .. N with PD upper bounds; ``grade(pd)`` is the first grade whose
  upper bound is above the PD (a PD equal to a bound falls in the next grade, like ``approve when PD <
  threshold``). The last grade is open-ended.
- **Cut-off economics**: approving the applications with PD < cut-off earns ``margin · EAD`` on each good
  loan and loses ``LGD · EAD`` on each bad one; ``profit_curve`` gives the profit of every cut-off of a
  grid, ``decision_metrics`` the confusion matrix at one cut-off (positive class: default, i.e. a
  declined application is a predicted default).

Conventions as in ``evaluate.py``: ``y`` is 1 for a default, ``pd_`` the predicted probability of default.
Parameters have no defaults here: their owner is ``Settings`` (``CREDITRISK_SCORE_*``,
``CREDITRISK_MASTER_SCALE``, ``CREDITRISK_LGD``, ``CREDITRISK_MARGIN``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: PDs are clipped to [PD_EPS, 1 - PD_EPS] before odds are taken (a PD of 0 or 1 has no finite score).
PD_EPS = 1e-6
#: Cut-offs of the profit curve: every 0.1 percentage point of PD.
CUTOFF_STEP = 0.001


@dataclass(frozen=True)
class Scorecard:
    pdo: float  # points to double the odds
    base: float  # the score at the base odds
    base_odds: float  # good : bad odds at the base score

    def __post_init__(self) -> None:
        if not (self.pdo > 0 and self.base_odds > 0 and math.isfinite(self.base)):
            raise ValueError(f"scorecard needs PDO > 0 and base odds > 0 (got PDO {self.pdo}, base {self.base}, "
                             f"base odds {self.base_odds})")

    def score(self, pd_: float | Sequence[float] | np.ndarray) -> np.ndarray:
        """Points for each PD (float array; round for display)."""
        p = np.clip(np.asarray(pd_, dtype=float), PD_EPS, 1.0 - PD_EPS)
        return self.base + self.pdo / math.log(2.0) * np.log((1.0 - p) / p / self.base_odds)

    def pd_at(self, score: float | np.ndarray) -> np.ndarray:
        """The inverse: the PD a score stands for."""
        odds = self.base_odds * np.exp((np.asarray(score, dtype=float) - self.base) * math.log(2.0) / self.pdo)
        return 1.0 / (1.0 + odds)


@dataclass(frozen=True)
class MasterScale:
    """Grades 1..N; ``bounds[i]`` is the PD upper bound (exclusive) of grade i + 1; the last grade is open."""

    bounds: tuple[float, ...]

    def __post_init__(self) -> None:
        b = self.bounds
        if not b:
            raise ValueError("a master scale needs at least one PD upper bound")
        if any(not (0.0 < x <= 1.0) for x in b) or any(lo >= hi for lo, hi in zip(b, b[1:], strict=False)):
            raise ValueError(f"master scale bounds must be strictly increasing PDs in (0, 1], got {list(b)}")

    @classmethod
    def parse(cls, text: str) -> MasterScale:
        """From comma-separated upper bounds, e.g. ``0.005,0.01,0.02`` (4 grades: the last is open)."""
        try:
            bounds = tuple(float(x) for x in text.split(",") if x.strip())
        except ValueError as exc:
            raise ValueError(f"master scale {text!r}: expected comma-separated PDs ({exc})") from exc
        return cls(bounds)

    @property
    def grades(self) -> list[int]:
        return list(range(1, self.n_grades + 1))

    @property
    def n_grades(self) -> int:
        return len(self.bounds) + (1 if self.bounds[-1] < 1.0 else 0)

    def upper(self, grade: int) -> float:
        """PD upper bound of ``grade`` (1.0 for the open last grade)."""
        return self.bounds[grade - 1] if grade <= len(self.bounds) else 1.0

    def lower(self, grade: int) -> float:
        return 0.0 if grade == 1 else self.bounds[grade - 2]

    def grade(self, pd_: float) -> int:
        """The grade of one PD."""
        return int(self.grade_all(np.asarray([pd_]))[0])

    def grade_all(self, pd_: Sequence[float] | np.ndarray) -> np.ndarray:
        """Grades of many PDs (int array)."""
        g = np.searchsorted(np.asarray(self.bounds, dtype=float), np.asarray(pd_, dtype=float), side="right") + 1
        return np.minimum(g, self.n_grades)


def grade_table(y: np.ndarray, pd_: np.ndarray, scale: MasterScale, card: Scorecard, cutoff: float) -> pd.DataFrame:
    """Per grade: PD range, score range, applications, predicted (mean PD) vs observed default rate, and at
    ``cutoff`` the approved applications and their observed bad rate. Every grade is listed (empty ones
    with n = 0 and NaN rates)."""
    y_arr, p_arr = np.asarray(y, dtype=float), np.asarray(pd_, dtype=float)
    g = scale.grade_all(p_arr)
    approved = p_arr < cutoff
    rows = []
    for grade in scale.grades:
        inside = g == grade
        n, n_app = int(inside.sum()), int((inside & approved).sum())
        lo, hi = scale.lower(grade), scale.upper(grade)
        rows.append({
            "grade": grade, "pd_from": lo, "pd_to": hi,
            "score_from": int(round(float(card.score(hi)[()]))), "score_to": int(round(float(card.score(lo)[()]))),
            "n": n, "predicted_default_rate": float(p_arr[inside].mean()) if n else math.nan,
            "observed_default_rate": float(y_arr[inside].mean()) if n else math.nan,
            "approved": n_app, "approved_bad_rate": float(y_arr[inside & approved].mean()) if n_app else math.nan,
        })
    return pd.DataFrame(rows)


def monotonicity(table: pd.DataFrame, min_n: int = 1) -> tuple[bool, list[int]]:
    """Whether the observed default rate never falls from one grade to a worse one (grades with fewer than
    ``min_n`` applications are skipped); returns the flag and the grades where it fell."""
    kept = table[table["n"] >= max(min_n, 1)]
    rates, grades = kept["observed_default_rate"].to_numpy(dtype=float), kept["grade"].to_numpy()
    falls = [int(grades[i + 1]) for i in range(len(rates) - 1) if rates[i + 1] < rates[i]]
    return not falls, falls


def cutoff_grid(step: float = CUTOFF_STEP) -> np.ndarray:
    """Cut-offs ``step, 2·step, .., 1`` (approve when PD < cut-off)."""
    n = int(round(1.0 / step))
    return np.round(np.arange(1, n + 1) * step, 10)


def profit_curve(y: np.ndarray, pd_: np.ndarray, ead: np.ndarray, lgd: float, margin: float,
                 cutoffs: np.ndarray | None = None) -> pd.DataFrame:
    """Profit of approving PD < cut-off for each cut-off: Σ_good margin·EAD − Σ_bad LGD·EAD over the
    approved. Columns: cutoff, approved, approval_rate, bad_rate (of the approved), profit."""
    y_arr, p_arr = np.asarray(y, dtype=float), np.asarray(pd_, dtype=float)
    e_arr = np.asarray(ead, dtype=float)
    if not (y_arr.shape == p_arr.shape == e_arr.shape) or y_arr.size == 0:
        raise ValueError(f"y, pd_ and ead must be non-empty and of one length, got {y_arr.size}, {p_arr.size}, "
                         f"{e_arr.size}")
    if not np.isfinite(e_arr).all() or (e_arr < 0).any():
        raise ValueError("ead must be finite and non-negative (a missing exposure has no profit to weigh)")
    if not (0.0 <= lgd <= 1.0) or margin < 0:
        raise ValueError(f"LGD must be in [0, 1] and the margin non-negative, got LGD {lgd}, margin {margin}")
    grid = cutoff_grid() if cutoffs is None else np.asarray(cutoffs, dtype=float)
    order = np.argsort(p_arr, kind="stable")
    p_sorted = p_arr[order]
    gain = np.where(y_arr[order] == 1, -lgd * e_arr[order], margin * e_arr[order])
    cum_profit = np.concatenate([[0.0], np.cumsum(gain)])
    cum_bad = np.concatenate([[0.0], np.cumsum(y_arr[order])])
    k = np.searchsorted(p_sorted, grid, side="left")  # how many have PD < cut-off
    with np.errstate(invalid="ignore", divide="ignore"):
        bad_rate = np.where(k > 0, cum_bad[k] / np.maximum(k, 1), np.nan)
    return pd.DataFrame({"cutoff": grid, "approved": k.astype(int), "approval_rate": k / p_arr.size,
                         "bad_rate": bad_rate, "profit": cum_profit[k]})


def best_cutoff(curve: pd.DataFrame) -> dict[str, float]:
    """The profit-maximising cut-off of a curve (the lowest one among ties)."""
    i = int(np.argmax(curve["profit"].to_numpy()))
    row = curve.iloc[i]
    return {"cutoff": float(row["cutoff"]), "profit": float(row["profit"]),
            "approval_rate": float(row["approval_rate"])}


def profit_at(y: np.ndarray, pd_: np.ndarray, ead: np.ndarray, lgd: float, margin: float, cutoff: float) -> float:
    return float(profit_curve(y, pd_, ead, lgd, margin, np.asarray([cutoff]))["profit"].iloc[0])


def decision_metrics(y: np.ndarray, pd_: np.ndarray, cutoff: float) -> dict[str, float]:
    """Confusion matrix at ``cutoff`` with default as the positive class (declined = predicted default):
    tp declined defaulters, fp declined good, fn approved defaulters, tn approved good; precision, recall,
    F1, accuracy (NaN where undefined), approval rate and the bad rate among the approved."""
    y_arr, p_arr = np.asarray(y, dtype=float), np.asarray(pd_, dtype=float)
    declined, bad = p_arr >= cutoff, y_arr == 1
    tp, fp = int((declined & bad).sum()), int((declined & ~bad).sum())
    fn, tn = int((~declined & bad).sum()), int((~declined & ~bad).sum())
    precision = tp / (tp + fp) if tp + fp else math.nan
    recall = tp / (tp + fn) if tp + fn else math.nan
    f1 = 2 * precision * recall / (precision + recall) if tp else (0.0 if tp + fp and tp + fn else math.nan)
    n = y_arr.size
    return {"tp": float(tp), "fp": float(fp), "fn": float(fn), "tn": float(tn),
            "precision": precision, "recall": recall, "f1": f1, "accuracy": (tp + tn) / n if n else math.nan,
            "approval_rate": (fn + tn) / n if n else math.nan,
            "approved_bad_rate": fn / (fn + tn) if fn + tn else math.nan}


def profit_png(curve: pd.DataFrame, threshold: float, title: str) -> bytes:
    """Profit vs cut-off, with the configured threshold and the profit-maximising cut-off marked (PNG)."""
    from .evaluate import _png, plt

    best = best_cutoff(curve)
    hi = min(1.0, max(0.3, 2 * max(best["cutoff"], threshold)))
    shown = curve[curve["cutoff"] <= hi]
    fig, ax = plt.subplots(figsize=(6, 4))
    try:
        ax.plot(shown["cutoff"], shown["profit"], lw=2, label="expected profit")
        ax.axvline(threshold, ls="--", color="grey", lw=1, label=f"configured threshold {threshold:g}")
        ax.axvline(best["cutoff"], ls=":", color="green", lw=1.5, label=f"profit-maximising {best['cutoff']:g}")
        ax.axhline(0, color="black", lw=0.5)
        ax.set(xlim=(0, hi), xlabel="Cut-off (approve when PD < cut-off)", ylabel="Profit on the out-of-time set",
               title=title)
        ax.legend(loc="best")
    except Exception:
        plt.close(fig)
        raise
    return _png(fig)



@dataclass(frozen=True)
class CreditTerms:
    """What the evaluation needs to speak in scores, grades and money (built by ``Settings.credit_terms``)."""

    scorecard: Scorecard
    scale: MasterScale
    lgd: float
    margin: float
    ead_column: str


@dataclass
class Economics:
    """The evaluation's scores, grades and cut-off economics on one (out-of-time) set."""

    grades: pd.DataFrame  # grade_table
    monotonic: bool
    inversions: list[int]  # grades whose observed default rate fell below the better grade's
    curve: pd.DataFrame  # profit_curve
    best: dict[str, float]  # best_cutoff
    profit_at_threshold: float
    at_threshold: dict[str, float]  # decision_metrics at the configured threshold
    threshold: float
    ead_note: str  # what EAD was (column, imputed rows)

    def metrics(self) -> dict[str, float]:
        """Flat metrics for MLflow (all finite or NaN; NaN is not logged)."""
        d = self.at_threshold
        return {"master_scale_monotonic": float(self.monotonic), "master_scale_inversions": float(len(self.inversions)),
                "profit_max_cutoff": self.best["cutoff"], "profit_max": self.best["profit"],
                "approval_rate_at_profit_max": self.best["approval_rate"], "profit_at_threshold": self.profit_at_threshold,
                **{f"{k}_at_threshold": d[k] for k in ("precision", "recall", "f1", "accuracy", "approved_bad_rate")},
                **{f"{k}_at_threshold": d[k] for k in ("tp", "fp", "fn", "tn")}}


def exposure(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, str]:
    """EAD per application from ``column``; missing values take the median of the others (said in the note);
    without the column every application weighs 1 (profit in units of exposure)."""
    if column not in frame.columns:
        return np.ones(len(frame)), f"`{column}` is not a feature of this set: every application weighs 1"
    ead = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    missing = ~np.isfinite(ead) | (ead < 0)
    if missing.all():
        return np.ones(len(frame)), f"`{column}` has no value: every application weighs 1"
    if missing.any():
        ead = np.where(missing, float(np.median(ead[~missing])), ead)
        return ead, f"`{column}` ({int(missing.sum())} missing values take the median)"
    return ead, f"`{column}`"


def economics(y: np.ndarray, pd_: np.ndarray, ead: np.ndarray, terms: CreditTerms, threshold: float,
              ead_note: str = "", min_grade_n: int = 30) -> Economics:
    """Grades, monotonicity (grades with at least ``min_grade_n`` applications), profit curve and the
    confusion matrix at ``threshold``."""
    grades = grade_table(y, pd_, terms.scale, terms.scorecard, threshold)
    monotonic, inversions = monotonicity(grades, min_n=min_grade_n)
    curve = profit_curve(y, pd_, ead, terms.lgd, terms.margin)
    return Economics(grades, monotonic, inversions, curve, best_cutoff(curve),
                     profit_at(y, pd_, ead, terms.lgd, terms.margin, threshold), decision_metrics(y, pd_, threshold),
                     threshold, ead_note)


def card_sections(e: Economics, terms: CreditTerms) -> dict[str, list[str]]:
    """The model card's "Scores and grades" and "Cut-off economics" sections (markdown lines)."""
    from .evaluate import _fmt, _md_table

    c = terms.scorecard
    cols = list(e.grades.columns)
    grades = [f"Score = {c.base:g} + {c.pdo:g}/ln 2 · ln(odds / {c.base_odds:g}), odds = (1 − PD) / PD; "
              f"{c.base:g} points at odds {c.base_odds:g}:1, every {c.pdo:g} points double the odds.", "",
              _md_table(cols, list(e.grades.itertuples(index=False, name=None))), "",
              f"- Observed default rate monotonic over the grades (those with ≥ 30 applications): "
              f"{'yes' if e.monotonic else 'no, falls at grade(s) ' + ', '.join(map(str, e.inversions))}",
              f"- `approved` / `approved_bad_rate`: at the configured threshold {e.threshold:g}"]
    d = e.at_threshold
    money = [f"Profit of approving PD < cut-off on the out-of-time set: Σ_good {terms.margin:g}·EAD − "
             f"Σ_bad {terms.lgd:g}·EAD (margin {terms.margin:g}, LGD {terms.lgd:g}; EAD: {e.ead_note}).", "",
             _md_table(["cut-off", "value", "approval rate", "profit"],
                       [["configured threshold", e.threshold, d["approval_rate"], int(round(e.profit_at_threshold))],
                        ["profit-maximising", e.best["cutoff"], e.best["approval_rate"], int(round(e.best["profit"]))]]),
             "",
             f"At the configured threshold {e.threshold:g} (positive class: default; declined = predicted default):",
             "", _md_table(["", "defaulted", "repaid"],
                           [["declined", int(d["tp"]), int(d["fp"])], ["approved", int(d["fn"]), int(d["tn"])]]), "",
             "- " + ", ".join(f"{k} {_fmt(d[k])}" for k in ("precision", "recall", "f1", "accuracy",
                                                          "approval_rate", "approved_bad_rate"))]
    return {"Scores and grades": grades, "Cut-off economics": money}
