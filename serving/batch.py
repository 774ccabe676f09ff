"""Batch scoring: a file of applications (or the whole feature store) scored with the champion."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import PurePosixPath

import pandas as pd

from creditrisk_assets.gold.lookup import GOLD_TABLE
from creditrisk_assets.layout import batch_scores_key
from creditrisk_assets.modeling import registry
from creditrisk_assets.resources import Lake, ObjectStore
from creditrisk_assets.settings import Settings

from .models import load_scorer
from .scoring import score_frame


@dataclass
class BatchResult:
    output_key: str
    rows: int
    model_version: str
    decline_rate: float
    grades: pd.DataFrame  # per master-scale grade: applications, mean PD, mean score, decline rate


def read_applications(store: ObjectStore, key: str) -> pd.DataFrame:
    data = store.get_bytes(key)
    if key.endswith(".parquet"):
        return pd.read_parquet(io.BytesIO(data))
    if key.endswith(".csv"):
        return pd.read_csv(io.BytesIO(data))
    raise ValueError(f"{key}: batch scoring reads .parquet or .csv files")


def score_batch(settings: Settings, store: ObjectStore, lake: Lake, input_key: str = "") -> BatchResult:
    client = registry.connect_for(settings)
    version = registry.alias_version(client, registry.CHAMPION)
    if version is None:
        raise ValueError("no model version has the `champion` alias: nothing to score with")
    scorer = load_scorer(settings, version, registry.CHAMPION)
    if input_key:
        frame, stem = read_applications(store, input_key), PurePosixPath(input_key).stem
    else:
        with lake.connect_lake() as con:
            frame = con.execute(f"SELECT * FROM {GOLD_TABLE} ORDER BY sk_id_curr").df()
        stem = "applicant_features"
    missing = [c for c in scorer.features if c not in frame.columns]
    if missing:
        raise ValueError(f"{input_key or GOLD_TABLE} lacks feature column(s): {', '.join(missing[:10])}")
    scored = score_frame(scorer, frame, reasons=settings.serve_reason_codes)
    out_key = batch_scores_key(stem, version)
    buf = io.BytesIO()
    scored.to_parquet(buf, index=False)
    store.put_bytes(out_key, buf.getvalue())
    declined = scored["decision"] == "decline"
    grades = (scored.assign(declined=declined).groupby("grade")
              .agg(applications=("pd", "size"), mean_pd=("pd", "mean"), mean_score=("score", "mean"),
                   decline_rate=("declined", "mean")).reset_index())
    return BatchResult(out_key, len(scored), version, float(declined.mean()), grades)
