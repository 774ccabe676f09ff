"""The monitoring pass behind ``monitoring/drift`` and ``monitoring/performance``: plain functions.

Reference = the champion's training applications (gold at the lake snapshot its run recorded, up
to its last training decision). Windows = the last ``lookback`` spans of ``window_hours`` ending at
the newest decision in gold. Current PDs come from the prediction log when it has enough rows for
the window, else from the champion scoring the window's gold rows (``pd_source`` says which).
Results go to ``lake.monitoring.drift_metrics`` (one row per window, metric and reference version;
a recomputation replaces its rows) and the Evidently HTML of each window to the object store.
The same pass measures stability on the same frames (:mod:`.stability`: the SSI of the PDs over the
master-scale grades, the CSI of each feature) into ``lake.monitoring.stability_metrics`` (one row
per window, characteristic and reference version).
"""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pandas as pd

from ..gold.lookup import GOLD_TABLE
from ..layout import LATEST_DRIFT_KEY, drift_report_key
from ..modeling.scorecard import MasterScale
from ..modeling.train import TrainedModel
from ..resources import Lake, ObjectStore
from .alerts import Alert
from .drift import OK, PSI_SIGNIFICANT, consecutive_drifted, drift_rows, feature_drift, prediction_drift
from .performance import performance_rows, performance_windows
from .stability import SSI, StabilityResult, fit_reference, window_stability

if TYPE_CHECKING:
    from mlflow import MlflowClient

METRICS_TABLE = "lake.monitoring.drift_metrics"
STABILITY_TABLE = "lake.monitoring.stability_metrics"


@dataclass
class Champion:
    version: str
    model: TrainedModel
    snapshot_id: int | None
    trained_until: pd.Timestamp | None  # newest decision in its training set


@dataclass
class WindowReport:
    start: pd.Timestamp
    end: pd.Timestamp
    status: str
    dataset_drifted: bool
    share_drifted: float | None
    drifted_columns: list[str]
    psi: float | None
    pd_source: str
    current_rows: int
    report_key: str | None
    stability: StabilityResult | None = None


@dataclass
class DriftPass:
    champion_version: str
    windows: list[WindowReport] = field(default_factory=list)
    retrain_recommended: bool = False
    rows: pd.DataFrame = field(default_factory=pd.DataFrame)
    stability_rows: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def latest_stability(self) -> tuple[WindowReport, StabilityResult] | None:
        """The newest window whose SSI or any CSI was computed."""
        for w in reversed(self.windows):
            if w.stability is not None and (w.stability.ssi.status == OK or w.stability.computed):
                return w, w.stability
        return None


def load_champion(client: MlflowClient) -> Champion | None:
    """The model behind the ``champion`` alias and where its training data came from (None: no champion)."""
    import mlflow

    from ..modeling import registry

    version = registry.alias_version(client, registry.CHAMPION)
    if version is None:
        return None
    mv = client.get_model_version(registry.REGISTERED_MODEL, version)
    tags = client.get_run(mv.run_id).data.tags if mv.run_id else {}
    model = mlflow.pyfunc.load_model(f"models:/{registry.REGISTERED_MODEL}/{version}").unwrap_python_model().trained
    snapshot = tags.get("lineage.lake_snapshot_id")
    until = tags.get("lineage.decision_time_max")
    return Champion(version, model, int(snapshot) if snapshot and snapshot != "None" else None,
                    pd.Timestamp(until) if until and until != "None" else None)


def reference_frame(con: duckdb.DuckDBPyConnection, champion: Champion) -> pd.DataFrame:
    """Gold as the champion was trained on it: at its snapshot, up to its newest training decision.

    When that snapshot no longer exists (``creditrisk forget`` / retention expire snapshots), the
    current gold up to the same decision time stands in: the same applications minus erased ones."""
    until = "" if champion.trained_until is None else "WHERE decision_time <= ?"
    params = [] if champion.trained_until is None else [champion.trained_until.to_pydatetime()]
    if champion.snapshot_id is not None:
        try:
            return con.execute(f"SELECT * FROM {GOLD_TABLE}{Lake.as_of(champion.snapshot_id)} {until}",
                               params).df()
        except duckdb.Error:
            pass
    return con.execute(f"SELECT * FROM {GOLD_TABLE} {until}", params).df()


def windows_to_check(con: duckdb.DuckDBPyConnection, window_hours: int, lookback: int) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """The last ``lookback`` windows, the newest ending at the hour after the newest decision."""
    newest = con.execute(f"SELECT max(decision_time) FROM {GOLD_TABLE}").fetchone()
    if newest is None or newest[0] is None:
        return []
    end = pd.Timestamp(newest[0]).floor("h") + pd.Timedelta(hours=1)
    span = pd.Timedelta(hours=window_hours)
    return [(end - (i + 1) * span, end - i * span) for i in reversed(range(lookback))]


def served_pd(con: duckdb.DuckDBPyConnection, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
    """PDs the champion actually served in the window (empty when the prediction log lacks them)."""
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'lake' AND "
                         "schema_name = 'serving' AND table_name = 'prediction_log'").fetchone()
    if not exists or not exists[0]:
        return np.array([])
    rows = con.execute("SELECT pd FROM lake.serving.prediction_log WHERE served_by = 'champion' "
                       "AND logged_at >= ? AND logged_at < ?",
                       [start.tz_localize("UTC") if start.tzinfo is None else start,
                        end.tz_localize("UTC") if end.tzinfo is None else end]).fetchall()
    return np.array([r[0] for r in rows], dtype=float)


def run_drift(con: duckdb.DuckDBPyConnection, store: ObjectStore, champion: Champion, *, window_hours: int,
              lookback: int, drift_share_threshold: float, consecutive: int, min_rows: int,
              scale: MasterScale) -> DriftPass:
    """Drift and stability of each recent window against the champion's reference; stores rows, reports,
    the latest gauges. ``scale`` bins the PDs for the SSI."""
    reference = reference_frame(con, champion)
    features = champion.model.features
    ref_pd = champion.model.predict_pd(reference) if len(reference) else np.array([])
    bins = fit_reference(reference, features, categorical=champion.model.categorical)
    out = DriftPass(champion.version)
    frames, stability_frames = [], []
    for start, end in windows_to_check(con, window_hours, lookback):
        current = con.execute(f"SELECT * FROM {GOLD_TABLE} WHERE decision_time >= ? AND decision_time < ?",
                              [start.to_pydatetime(), end.to_pydatetime()]).df()
        result = feature_drift(reference, current, features, drift_share_threshold=drift_share_threshold,
                               min_rows=min_rows)
        served = served_pd(con, start, end)
        source = "prediction_log" if len(served) >= min_rows else "champion_on_gold"
        cur_pd = served if source == "prediction_log" else (
            champion.model.predict_pd(current) if len(current) else np.array([]))
        pred = prediction_drift(ref_pd, cur_pd, min_rows=min_rows)
        stable = window_stability(bins, ref_pd, current, cur_pd, scale, features, min_rows=min_rows)
        stability_frames.append(stable.rows(start.to_pydatetime(), end.to_pydatetime()))
        key = None
        html = result.html()
        if html is not None:
            key = drift_report_key(start, end, champion.version)
            store.put_bytes(key, html.encode())
        frames.append(drift_rows(start.to_pydatetime(), end.to_pydatetime(), result, pred))
        out.windows.append(WindowReport(start, end, result.status, result.dataset_drifted, result.share_drifted,
                                        result.drifted_columns, pred.psi, source, len(current), key, stable))
    out.rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    out.stability_rows = pd.concat(stability_frames, ignore_index=True) if stability_frames else pd.DataFrame()
    out.retrain_recommended = consecutive_drifted(
        [{"status": w.status, "drifted": w.dataset_drifted} for w in out.windows], consecutive)
    store_rows(con, out.rows, champion.version)
    store_stability_rows(con, out.stability_rows, champion.version)
    latest = next((w for w in reversed(out.windows) if w.status == OK), None)
    if latest is not None:
        store.put_bytes(LATEST_DRIFT_KEY, json.dumps({
            "window_start": str(latest.start), "window_end": str(latest.end), "champion": champion.version,
            "drift_share": latest.share_drifted, "prediction_psi": latest.psi,
            "drift_detected": int(latest.dataset_drifted)}).encode())
    return out


def run_performance(con: duckdb.DuckDBPyConnection, champion: Champion, *, window_hours: int, lookback: int,
                    maturity_hours: int) -> pd.DataFrame:
    """AUC, calibration and default rate vs predicted PD per window, on outcomes matured by the newest decision."""
    windows = windows_to_check(con, window_hours, lookback)
    if not windows:
        return pd.DataFrame()
    start, end = windows[0][0], windows[-1][1]
    gold = con.execute(f"SELECT * FROM {GOLD_TABLE} WHERE decision_time >= ? AND decision_time < ?",
                       [start.to_pydatetime(), end.to_pydatetime()]).df()
    predictions = pd.DataFrame({"application_id": gold["sk_id_curr"], "decision_time": gold["decision_time"],
                                "pd": champion.model.predict_pd(gold) if len(gold) else []})
    outcomes = con.execute("SELECT SK_ID_CURR AS application_id, TARGET AS label, OUTCOME_TIME AS known_at "
                           "FROM lake.silver.loan_outcome").df()
    frame = performance_windows(predictions, outcomes, as_of=end.to_pydatetime(),
                                maturity=dt.timedelta(hours=maturity_hours),
                                window=dt.timedelta(hours=window_hours), start=start.to_pydatetime(),
                                end=end.to_pydatetime())
    store_rows(con, performance_rows(frame), champion.version)
    return frame


def store_rows(con: duckdb.DuckDBPyConnection, rows: pd.DataFrame, version: str) -> None:
    """Replace the rows of these (window, kind) pairs for this reference version in the metrics table."""
    if rows.empty:
        return
    frame = rows.assign(reference_version=version, computed_at=pd.Timestamp.now(tz="UTC").tz_localize(None))
    frame["value"] = frame["value"].astype("float64")
    frame["threshold"] = frame["threshold"].astype("float64")
    frame["drifted"] = frame["drifted"].astype("boolean")
    _replace(con, METRICS_TABLE, frame, version)


def store_stability_rows(con: duckdb.DuckDBPyConnection, rows: pd.DataFrame, version: str) -> None:
    """Replace the stability rows of these (window, kind) pairs for this reference version."""
    if rows.empty:
        return
    frame = rows.assign(reference_version=version, computed_at=pd.Timestamp.now(tz="UTC").tz_localize(None))
    frame["value"] = frame["value"].astype("float64")
    frame["bins"] = frame["bins"].astype("int64")
    for col in ("level", "method"):
        frame[col] = frame[col].astype("string")
    _replace(con, STABILITY_TABLE, frame, version)


def _replace(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, version: str) -> None:
    """In one lake transaction: create ``table`` if needed, drop the rows of ``frame``'s (window, kind)
    pairs for ``version``, insert ``frame``."""
    def work(c: duckdb.DuckDBPyConnection) -> None:
        c.execute("CREATE SCHEMA IF NOT EXISTS lake.monitoring")
        c.register("metrics_batch", frame)
        c.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM metrics_batch LIMIT 0")
        c.execute(f"""DELETE FROM {table} AS t WHERE reference_version = ? AND EXISTS (
                          SELECT 1 FROM metrics_batch b WHERE b.window_start = t.window_start
                          AND b.window_end = t.window_end AND b.kind = t.kind)""", [version])
        c.execute(f"INSERT INTO {table} BY NAME SELECT * FROM metrics_batch")
        c.unregister("metrics_batch")

    Lake.transact(con, work)


def history(con: duckdb.DuckDBPyConnection, metric: str = "share_drifted") -> pd.DataFrame:
    """The stored time series of one metric (every reference version), oldest first."""
    try:
        return con.execute(f"SELECT window_start, window_end, reference_version, value, drifted, status "
                           f"FROM {METRICS_TABLE} WHERE metric = ? ORDER BY window_start, reference_version",
                           [metric]).df()
    except duckdb.CatalogException:
        return pd.DataFrame()


def stability_history(con: duckdb.DuckDBPyConnection, characteristic: str | None = None) -> pd.DataFrame:
    """The stored SSI series (or one feature's CSI series), every reference version, oldest first."""
    where, params = ("kind = ?", [SSI]) if characteristic is None else ("characteristic = ?", [characteristic])
    try:
        return con.execute(f"SELECT window_start, window_end, reference_version, characteristic, value, level, "
                           f"status FROM {STABILITY_TABLE} WHERE {where} ORDER BY window_start, reference_version",
                           params).df()
    except duckdb.CatalogException:
        return pd.DataFrame()


def history_png(series: pd.DataFrame, threshold: float, title: str,
                ylabel: str = "share of drifted features") -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3))
    for version, part in series.groupby("reference_version"):
        ax.plot(part["window_end"], part["value"], marker="o", label=f"vs champion v{version}")
    ax.axhline(threshold, color="red", linestyle="--", label=f"threshold {threshold}")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def summary_markdown(p: DriftPass) -> str:
    rows = ["| window | status | rows | drift share | drifted | PSI (pd source) | report |", "|---|---|---|---|---|---|---|"]
    for w in p.windows:
        share = "" if w.share_drifted is None else f"{w.share_drifted:.2f}"
        psi = "" if w.psi is None else f"{w.psi:.3f}"
        rows.append(f"| {w.start:%m-%d %H:%M} – {w.end:%m-%d %H:%M} | {w.status} | {w.current_rows} | {share} | "
                    f"{'**yes**' if w.dataset_drifted else 'no'} | {psi} ({w.pd_source}) | {w.report_key or ''} |")
    return "\n".join(rows)


def stability_markdown(p: DriftPass, worst: int = 5) -> str:
    """Per window: the SSI and its level, how many CSIs are unstable / on watch, the worst CSIs."""
    rows = ["| window | SSI | SSI level | CSIs computed | unstable (≥ 0.25) | watch (≥ 0.10) | worst CSIs |",
            "|---|---|---|---|---|---|---|"]
    for w in p.windows:
        st = w.stability
        if st is None:
            continue
        ssi = st.ssi.status if st.ssi.value is None else f"{st.ssi.value:.3f}"
        top = ", ".join(f"{s.characteristic} {s.value:.3f}" for s in st.worst(worst))
        rows.append(f"| {w.start:%m-%d %H:%M} – {w.end:%m-%d %H:%M} | {ssi} | {st.ssi.level or ''} | "
                    f"{len(st.computed)} | {len(st.unstable_features)} | {len(st.watch_features)} | {top} |")
    return "\n".join(rows)


def worst_csi_markdown(p: DriftPass, n: int = 10) -> str:
    """The ``n`` largest CSIs of the newest window with stability figures."""
    latest = p.latest_stability
    if latest is None:
        return "no stability computed yet (windows empty or under the minimum rows)"
    w, st = latest
    rows = [f"window {w.start:%m-%d %H:%M} – {w.end:%m-%d %H:%M}", "",
            "| feature | CSI | level | bins |", "|---|---|---|---|"]
    rows += [f"| {s.characteristic} | {s.value:.3f} | {s.level} | {s.bins} |" for s in st.worst(n)]
    return "\n".join(rows)


def as_dict(p: DriftPass) -> dict[str, Any]:
    return {"champion_version": p.champion_version, "retrain_recommended": p.retrain_recommended,
            "windows": [{"start": str(w.start), "end": str(w.end), "status": w.status, "drifted": w.dataset_drifted,
                         "share_drifted": w.share_drifted, "psi": w.psi,
                         "ssi": None if w.stability is None else w.stability.ssi.value,
                         "csi_unstable": [] if w.stability is None else w.stability.unstable_features}
                        for w in p.windows]}


def stability_alert(p: DriftPass) -> Alert | None:
    """The ``stability`` alert of the newest window with stability figures: SSI >= 0.25 or any CSI >= 0.25."""
    latest = p.latest_stability
    if latest is None or not latest[1].alert:
        return None
    w, st = latest
    unstable = st.unstable_features
    ssi = "not computed" if st.ssi.value is None else f"{st.ssi.value:.3f} ({st.ssi.level})"
    return Alert("stability", f"population stability against champion v{p.champion_version}",
                 f"in the window ending {w.end}: SSI {ssi}, {len(unstable)} feature(s) with CSI ≥ {PSI_SIGNIFICANT}",
                 {"SSI": ssi, "unstable features": ", ".join(unstable[:8]) or "none",
                  "worst CSI": ", ".join(f"{s.characteristic} {s.value:.2f}" for s in st.worst(3))})
