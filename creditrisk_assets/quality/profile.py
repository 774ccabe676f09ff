"""Data profile of a silver table: distributions, missingness, IQR outliers, correlations."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..contracts import TABLES
from ..layout import report_key
from ..metadata import md_table
from ..resources import Lake, ObjectStore

SKIP_SUFFIXES = ("_HASH",)


@dataclass
class Profile:
    table: str
    rows: int
    columns: pd.DataFrame  # one row per column: type, missing %, distinct, min, p50, max, IQR outliers
    top_correlations: pd.DataFrame

    def markdown(self) -> str:
        return (f"### {self.table} — {self.rows:,} rows\n\n" + md_table(self.columns, max_rows=60) +
                "\n\n**Strongest correlations**\n\n" + md_table(self.top_correlations, max_rows=10))


def profiled_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if not c.startswith("_") and not c.endswith(SKIP_SUFFIXES)]


def profile_frame(table: str, frame: pd.DataFrame) -> Profile:
    cols = profiled_columns(frame)
    rows = []
    for c in cols:
        s = frame[c]
        rec: dict[str, object] = {"column": c, "type": str(s.dtype), "missing_%": round(100 * s.isna().mean(), 2),
                                  "distinct": int(s.nunique(dropna=True))}
        if pd.api.types.is_numeric_dtype(s) and s.notna().any():
            q1, q2, q3 = s.quantile([0.25, 0.5, 0.75])
            iqr = q3 - q1
            out = ((s < q1 - 1.5 * iqr) | (s > q3 + 1.5 * iqr)).sum()
            rec.update({"min": _fmt(s.min()), "p50": _fmt(q2), "max": _fmt(s.max()), "iqr_outliers": int(out)})
        else:
            top = s.value_counts().head(1)
            rec.update({"min": "", "p50": f"top: {top.index[0]}" if len(top) else "", "max": "", "iqr_outliers": ""})
        rows.append(rec)
    numeric = frame[[c for c in cols if pd.api.types.is_numeric_dtype(frame[c])]]
    corr = pd.DataFrame(columns=["a", "b", "pearson"])
    if numeric.shape[1] >= 2 and len(numeric) > 2:
        m = numeric.corr()
        pairs = [(a, b, m.loc[a, b]) for i, a in enumerate(m.columns) for b in m.columns[i + 1:]
                 if pd.notna(m.loc[a, b])]
        pairs.sort(key=lambda t: -abs(t[2]))
        corr = pd.DataFrame([(a, b, round(float(v), 3)) for a, b, v in pairs[:10]], columns=["a", "b", "pearson"])
    return Profile(table, len(frame), pd.DataFrame(rows), corr)


def _fmt(v: object) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}"
    return str(v)


def evidently_html(frame: pd.DataFrame, out: Path) -> Path:
    """Evidently's data summary of ``frame`` as a standalone HTML page.

    Columns without a single value are left out (Evidently cannot summarise them: a source without an
    optional column, e.g. the simulator for the published Home Credit extras); the markdown profile
    still lists them with 100% missing."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataSummaryPreset

    cols = [c for c in profiled_columns(frame) if frame[c].notna().any()]
    data = frame[cols]
    numeric = [c for c in cols if pd.api.types.is_numeric_dtype(data[c])]
    categorical = [c for c in cols if c not in numeric and not pd.api.types.is_datetime64_any_dtype(data[c])]
    data = data[numeric + categorical]
    ds = Dataset.from_pandas(data, data_definition=DataDefinition(numerical_columns=numeric,
                                                                  categorical_columns=categorical))
    Report([DataSummaryPreset()]).run(current_data=ds).save_html(str(out))
    return out


@dataclass
class ProfileReport:
    table: str
    rows: int
    uri: str  # where DuckDB / code reads it
    markdown: str
    link: str = ""  # where a person opens it (a local path or an http URL; ``ObjectStore.link``)


def profile_silver(store: ObjectStore, lake: Lake, sample_rows: int = 100_000) -> list[ProfileReport]:
    """Profile every silver table (a reproducible sample of at most ``sample_rows``) and store the HTML."""
    con = lake.connect_lake()
    out = []
    try:
        existing = {r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake' AND schema_name = 'silver'").fetchall()}
        for name in TABLES:
            if name not in existing:
                continue
            frame = con.execute(f'SELECT * FROM lake.silver."{name}" USING SAMPLE reservoir({sample_rows} ROWS) '
                                "REPEATABLE (42)").df()
            if frame.empty:
                continue
            prof = profile_frame(name, frame)
            with tempfile.TemporaryDirectory(prefix="creditrisk-profile-") as tmp:
                html = evidently_html(frame, Path(tmp) / f"{name}.html")
                key = report_key("profile", f"{name}.html")
                store.put_file(key, html)
            out.append(ProfileReport(name, len(frame), store.uri(key), prof.markdown(), store.link(key)))
    finally:
        con.close()
    return out
