"""Scoring without a web framework: the same work behind Ray Serve, FastAPI and batch scoring.

``Scorer`` turns validated applications (dicts of raw feature values) into PD, decision, risk
band and reason codes. For XGBoost it builds one float matrix (categories as their training
codes) and makes one TreeSHAP call: the contributions plus bias sum to the margin, so the PD and
the reason codes come from the same pass. The baseline goes through its sklearn pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from creditrisk_assets.modeling.evaluate import reason_codes
from creditrisk_assets.modeling.train import TrainedModel, _platt

#: Upper PD bound of each risk band (the last band is open-ended).
RISK_BANDS: tuple[tuple[str, float], ...] = (("A", 0.02), ("B", 0.05), ("C", 0.10), ("D", 0.20), ("E", 1.01))
TOP_REASONS = 4


def risk_band(pd_: float) -> str:
    for band, upper in RISK_BANDS:
        if pd_ < upper:
            return band
    return RISK_BANDS[-1][0]


@dataclass
class ModelInfo:
    """What the service says about a loaded model (``GET /v1/model``)."""

    name: str
    version: str
    alias: str
    run_id: str = ""
    kind: str = ""
    training_snapshot: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


class Scorer:
    """One model, vectorised over a batch of applications."""

    def __init__(self, trained: TrainedModel, info: ModelInfo, threshold: float) -> None:
        self.trained, self.info, self.threshold = trained, info, threshold
        self.features = list(trained.features)
        self.codes = {c: {v: float(i) for i, v in enumerate(trained.categories.get(c, []))}
                      for c in trained.categorical}
        if trained.kind == "xgboost":
            trained.model.set_param({"nthread": 1})  # one core per replica; batching gives the throughput
            self.iterations = (0, trained.model.best_iteration + 1)

    def matrix(self, rows: list[dict[str, Any]]) -> np.ndarray:
        """Float matrix in feature order: missing → NaN, categories → training codes (unknown → NaN)."""
        out = np.full((len(rows), len(self.features)), np.nan)
        codes = self.codes
        for i, row in enumerate(rows):
            for j, name in enumerate(self.features):
                v = row.get(name)
                if v is None:
                    continue
                if name in codes:
                    v = codes[name].get(v)
                    if v is None:
                        continue
                out[i, j] = v
        return out

    def score(self, rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """(PD per row, contributions per row and feature to the log-odds of default)."""
        t = self.trained
        if t.kind == "xgboost":
            dm = xgb.DMatrix(self.matrix(rows), feature_names=t.model.feature_names,
                             feature_types=t.model.feature_types, enable_categorical=True, nthread=1)
            contribs = t.model.predict(dm, pred_contribs=True, iteration_range=self.iterations)
            raw = 1.0 / (1.0 + np.exp(-contribs.sum(axis=1)))
            pd_ = raw if t.platt is None else _platt(raw, *t.platt)
            return pd_, contribs[:, :-1]
        frame = pd.DataFrame.from_records(rows, columns=self.features)
        return t.predict_pd(frame), t.contributions(frame)

    def explain(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Per row: pd, decision, risk band and adverse reason codes."""
        pd_, contribs = self.score(rows)
        reasons = reason_codes(contribs, self.features, top_k=TOP_REASONS)
        return [{"pd": round(float(p), 6), "decision": "approve" if p < self.threshold else "decline",
                 "risk_band": risk_band(float(p)), "reason_codes": r}
                for p, r in zip(pd_.tolist(), reasons, strict=True)]


def score_frame(scorer: Scorer, frame: pd.DataFrame, chunk: int = 10_000) -> pd.DataFrame:
    """Batch scoring: pd, decision, band and reasons for every row of ``frame`` (any extra columns kept)."""
    parts = []
    for start in range(0, len(frame), chunk):
        part = frame.iloc[start:start + chunk]
        rows = part.astype(object).where(part.notna(), None).to_dict("records")
        parts.append(pd.DataFrame(scorer.explain(rows), index=part.index))
    scored = pd.concat(parts) if parts else pd.DataFrame(columns=["pd", "decision", "risk_band", "reason_codes"])
    out = frame.join(scored)
    out["reason_codes"] = out["reason_codes"].map(lambda r: ",".join(r) if isinstance(r, list) else "")
    out["model_version"] = scorer.info.version
    return out
