"""Population stability of one monitoring window against a reference: SSI of the scores, CSI per feature.

Plain functions over pandas / numpy; nothing here knows Dagster or reads settings.

- **SSI** (system stability index): the PSI of the score distribution, binned by master-scale grade
  (the grades are score bands: the score is a decreasing function of the PD, so PD bounds and score
  bounds cut the same population). ``system_stability(reference_pd, current_pd, scale)``.
- **CSI** (characteristic stability index): the PSI of one feature's binned distribution.
  ``fit_bins(reference)`` fixes the bins on the reference: numeric features in its deciles
  (:func:`drift.quantile_edges`: ties merge bins, so a constant feature has two bins, at-or-below and
  above its value), categories as themselves (a category the reference never saw is a bin of its
  own), and missing (null, NaN, infinite) always as a bin of its own. ``characteristic_stability``
  then compares the reference's and the window's shares over those bins.

PSI is :func:`drift.population_stability_index` (shares floored at ``drift.PSI_EPS``): identical
distributions give exactly 0, an empty bin a large but finite value. Levels follow the convention
(thresholds owned by ``drift``): ``stable`` below 0.10, ``watch`` from 0.10, ``unstable`` from 0.25.

Status of a window / characteristic: ``ok``; ``empty_window`` / ``empty_reference`` (no rows);
``insufficient_rows`` (fewer than ``min_rows`` rows in the window or the reference: PSI of a small
sample is mostly noise, about ``(bins - 1) · (1/n + 1/m)``); ``missing_column``; ``unsupported_type``
(datetimes). Only ``ok`` characteristics have a value and a level, and only they count as unstable.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..modeling.scorecard import MasterScale
from .drift import (
    DEFAULT_MIN_ROWS,
    MISSING_COLUMN,
    OK,
    PSI_MODERATE,
    PSI_SIGNIFICANT,
    UNSUPPORTED_TYPE,
    _as_kind,
    _kind,
    _window_status,
    population_stability_index,
    quantile_edges,
)

STABLE, WATCH, UNSTABLE = "stable", "watch", "unstable"
#: the bin of missing values (a category spelled exactly like this would share it)
MISSING_BIN = "<missing>"
#: the characteristic the SSI is stored under
SSI = "ssi"
SSI_CHARACTERISTIC = "master_scale_grade"
DECILES = 10
#: columns of the flat rows (:func:`stability_rows`), one per window and characteristic
ROW_COLUMNS = ("window_start", "window_end", "kind", "characteristic", "value", "level", "status", "bins",
               "reference_rows", "current_rows", "method")


def stability_level(psi: float | None) -> str | None:
    """``stable`` (< 0.10), ``watch`` (0.10 - 0.25) or ``unstable`` (>= 0.25); None without a value."""
    if psi is None or not math.isfinite(psi):
        return None
    return UNSTABLE if psi >= PSI_SIGNIFICANT else WATCH if psi >= PSI_MODERATE else STABLE


# --------------------------------------------------------------------------- bins


@dataclass(frozen=True)
class Bins:
    """The bins of one characteristic, fixed on the reference."""

    column: str
    kind: str  # "numerical" | "categorical" | "" (missing / unsupported)
    edges: tuple[float, ...] = ()  # numerical: interior edges of right-closed bins
    categories: tuple[str, ...] = ()  # categorical: the reference's categories

    @property
    def method(self) -> str:
        if self.kind == "numerical":
            return f"psi (reference deciles: {len(self.edges) + 1} bins; missing)"
        return f"psi (reference categories: {len(self.categories)}; unseen; missing)"

    def labels(self, values: pd.Series) -> pd.Series:
        """The bin of each value (text; missing values in :data:`MISSING_BIN`)."""
        v = _as_kind(values, self.kind)
        missing = v.isna().to_numpy()
        if self.kind == "numerical":
            idx = np.searchsorted(np.asarray(self.edges, dtype=float), v.to_numpy(dtype=float, na_value=np.nan),
                                  side="left")  # as drift.bin_shares: (-inf, e0], (e0, e1], ..., (ek, inf)
            names = np.array([f"bin {i}" for i in range(len(self.edges) + 1)], dtype=object)
            out = pd.Series(names[idx], index=values.index, dtype=object)  # NaN sorts last; relabelled below
        else:
            out = v.astype(object).copy()
        out[missing] = MISSING_BIN
        return out

    def counts(self, values: pd.Series) -> pd.Series:
        """Rows per bin (only bins that occur)."""
        return self.labels(values).value_counts(sort=False)


def fit_bins(reference: pd.Series, *, categorical: bool = False, bins: int = DECILES) -> Bins:
    """Bins of ``reference``: deciles of its finite values (numbers), or its categories.

    The kind follows the dtype (numbers and booleans numerical, datetimes unsupported, anything else
    categorical); ``categorical=True`` makes it categorical whatever the dtype (values as text). A
    reference without any value has the missing bin and one bin for every value (numerical), or
    each category of the window as its own bin (categorical).
    """
    name = str(reference.name)
    kind = "categorical" if categorical else _kind(reference)
    if not kind:
        return Bins(name, "")
    values = _as_kind(reference, kind).dropna()
    if kind == "numerical":
        edges = quantile_edges(values.to_numpy(dtype=float), bins) if len(values) else np.array([])
        return Bins(name, kind, edges=tuple(float(e) for e in edges))
    return Bins(name, kind, categories=tuple(sorted(values.astype(str).unique())))


def psi_of_counts(reference: pd.Series, current: pd.Series) -> float:
    """PSI of two count vectors indexed by bin (bins absent from one side count 0 there)."""
    labels = reference.index.union(current.index)
    e = reference.reindex(labels, fill_value=0).to_numpy(dtype=float)
    a = current.reindex(labels, fill_value=0).to_numpy(dtype=float)
    return population_stability_index(e, a)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Stability:
    """The stability index of one characteristic (the SSI, or one feature's CSI) in one window."""

    characteristic: str
    kind: str  # "ssi" | "csi"
    status: str
    value: float | None = None
    bins: int = 0  # bins with rows on either side
    reference_rows: int = 0
    current_rows: int = 0
    method: str | None = None

    @property
    def level(self) -> str | None:
        return stability_level(self.value) if self.status == OK else None

    @property
    def unstable(self) -> bool:
        return self.level == UNSTABLE


@dataclass
class StabilityResult:
    """SSI and CSIs of one window."""

    ssi: Stability
    csi: list[Stability] = field(default_factory=list)

    @property
    def computed(self) -> list[Stability]:
        return [s for s in self.csi if s.status == OK]

    def worst(self, n: int = 10) -> list[Stability]:
        """The ``n`` largest CSIs (computed ones), largest first; ties by feature name."""
        return sorted(self.computed, key=lambda s: (-(s.value or 0.0), s.characteristic))[:n]

    @property
    def unstable_features(self) -> list[str]:
        return [s.characteristic for s in self.worst(len(self.csi)) if s.unstable]

    @property
    def watch_features(self) -> list[str]:
        return [s.characteristic for s in self.worst(len(self.csi)) if s.level == WATCH]

    @property
    def alert(self) -> bool:
        """SSI >= 0.25 or any CSI >= 0.25."""
        return self.ssi.unstable or bool(self.unstable_features)

    def rows(self, window_start: dt.datetime, window_end: dt.datetime) -> pd.DataFrame:
        return stability_rows(window_start, window_end, [self.ssi, *self.csi])


def stability_rows(window_start: dt.datetime, window_end: dt.datetime, items: Sequence[Stability]) -> pd.DataFrame:
    """Flat rows (columns :data:`ROW_COLUMNS`), one per characteristic, for ``lake.monitoring.stability_metrics``."""
    rows = [(window_start, window_end, s.kind, s.characteristic, s.value, s.level, s.status, s.bins,
             s.reference_rows, s.current_rows, s.method) for s in items]
    return pd.DataFrame(rows, columns=list(ROW_COLUMNS))


# --------------------------------------------------------------------------- CSI and SSI


@dataclass(frozen=True)
class Reference:
    """Bins and reference counts of every characteristic, fitted once and reused for every window."""

    rows: int
    bins: dict[str, Bins]
    counts: dict[str, pd.Series]


def fit_reference(reference: pd.DataFrame, columns: Sequence[str], *, categorical: Collection[str] = (),
                  bins: int = DECILES) -> Reference:
    """Bins (:func:`fit_bins`) and reference counts of ``columns``; ``categorical`` forces those to categories."""
    fitted, counts = {}, {}
    for col in dict.fromkeys(columns):
        if col not in reference.columns:
            continue
        b = fit_bins(reference[col].rename(col), categorical=col in categorical, bins=bins)
        fitted[col] = b
        if b.kind:
            counts[col] = b.counts(reference[col])
    return Reference(len(reference), fitted, counts)


def characteristic_stability(reference: Reference, current: pd.DataFrame, column: str, *,
                             min_rows: int = DEFAULT_MIN_ROWS) -> Stability:
    """CSI of ``column`` in ``current`` against the fitted reference."""
    status = _window_status(reference.rows, len(current), min_rows)
    b = reference.bins.get(column)
    if b is None or column not in current.columns:
        return Stability(column, "csi", MISSING_COLUMN, reference_rows=reference.rows, current_rows=len(current))
    if not b.kind:
        return Stability(column, "csi", UNSUPPORTED_TYPE, reference_rows=reference.rows, current_rows=len(current))
    if status != OK:
        return Stability(column, "csi", status, reference_rows=reference.rows, current_rows=len(current),
                         method=b.method)
    ref, cur = reference.counts[column], b.counts(current[column])
    return Stability(column, "csi", OK, psi_of_counts(ref, cur), len(ref.index.union(cur.index)), reference.rows,
                     len(current), b.method)


def csi(reference: pd.Series, current: pd.Series, *, categorical: bool = False, bins: int = DECILES,
        min_rows: int = DEFAULT_MIN_ROWS) -> Stability:
    """CSI of one feature given as two series (bins fitted on ``reference``)."""
    name = str(reference.name)
    ref = fit_reference(reference.rename(name).to_frame(), [name], categorical=[name] if categorical else (),
                        bins=bins)
    return characteristic_stability(ref, current.rename(name).to_frame(), name, min_rows=min_rows)


def _grades(pd_: np.ndarray | Sequence[float], scale: MasterScale) -> pd.Series:
    p = np.asarray(pd_, dtype=float)
    return pd.Series(scale.grade_all(p[np.isfinite(p)]), dtype="int64").value_counts(sort=False)


def system_stability(reference_pd: np.ndarray | Sequence[float], current_pd: np.ndarray | Sequence[float],
                     scale: MasterScale, *, min_rows: int = DEFAULT_MIN_ROWS) -> Stability:
    """SSI: PSI of the current PDs' master-scale grades against the reference PDs' (NaN / infinite PDs dropped)."""
    ref, cur = _grades(reference_pd, scale), _grades(current_pd, scale)
    n_ref, n_cur = int(ref.sum()), int(cur.sum())
    method = f"psi over {scale.n_grades} master-scale grades"
    status = _window_status(n_ref, n_cur, min_rows)
    if status != OK:
        return Stability(SSI_CHARACTERISTIC, SSI, status, reference_rows=n_ref, current_rows=n_cur, method=method)
    return Stability(SSI_CHARACTERISTIC, SSI, OK, psi_of_counts(ref, cur), len(ref.index.union(cur.index)), n_ref,
                     n_cur, method)


def window_stability(reference: Reference, reference_pd: np.ndarray, current: pd.DataFrame, current_pd: np.ndarray,
                     scale: MasterScale, columns: Sequence[str], *, min_rows: int = DEFAULT_MIN_ROWS
                     ) -> StabilityResult:
    """SSI of the window's PDs and the CSI of each of ``columns`` against the reference."""
    return StabilityResult(system_stability(reference_pd, current_pd, scale, min_rows=min_rows),
                           [characteristic_stability(reference, current, c, min_rows=min_rows)
                            for c in dict.fromkeys(columns)])


def summary(result: StabilityResult, n: int = 5) -> dict[str, Any]:
    """Flat facts for metadata and alerts (feature names and indices, no data values)."""
    return {"ssi": result.ssi.value, "ssi_level": result.ssi.level, "ssi_status": result.ssi.status,
            "csi_computed": len(result.computed), "csi_unstable": result.unstable_features,
            "csi_watch": len(result.watch_features),
            "worst_csi": [{"feature": s.characteristic, "csi": s.value, "level": s.level} for s in result.worst(n)]}
