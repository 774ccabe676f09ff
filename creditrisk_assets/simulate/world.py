"""Everything a run knows before writing: applicants, their history, true PD, outcomes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import SimulationConfig
from .history import (
    BureauCredits,
    HistorySummary,
    PreviousApplications,
    generate_bureau,
    generate_previous,
    summarise,
)
from .leakage import PostDecision, select_post_decision
from .population import Applicants, generate_applicants
from .rand import stream
from .truth import true_pd


@dataclass
class World:
    cfg: SimulationConfig
    app: Applicants
    bureau: BureauCredits
    prev: PreviousApplications
    summary: HistorySummary
    pd: np.ndarray  # TRUE_PD per application
    target: np.ndarray  # 0/1 per application
    post: PostDecision


def build_world(cfg: SimulationConfig) -> World:
    """Generate the run's applicants, credit-level history, ground-truth PD and outcomes."""
    app = generate_applicants(cfg)
    bureau = generate_bureau(app, stream(cfg.seed, "bureau"))
    prev = generate_previous(app, stream(cfg.seed, "previous"))
    summary = summarise(len(app), bureau, prev)
    pd = true_pd(app, summary, concept_drift=app.drifted & (cfg.drift == "default_rate"))
    target = (stream(cfg.seed, "outcome").random(len(app)) < pd).astype(np.int64)
    post = select_post_decision(app, stream(cfg.seed, "post_selection"), first_id=1_000_001 + len(prev))
    return World(cfg, app, bureau, prev, summary, pd, target, post)
