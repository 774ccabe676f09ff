"""Data simulator: hourly drops of Home-Credit-shaped raw data with a known ground-truth PD.

``simulate(SimulationConfig(...), store)`` writes ``landing/<table>/<YYYY-MM-DD>/<HH>/part-00000.<ext>``
for every contract table, plus ``oracle/<run_name>/manifest.json`` and
``oracle/<run_name>/truth.parquet``. Behaviour is driven by a latent risk per applicant; the
outcome follows a documented PD function of observable quantities (``truth.PD_FORMULA``), so
models can be compared with the Bayes-optimal AUC. Drift scenarios and anomaly injection
are configurable. Deterministic by seed. CLI: ``python -m creditrisk_assets.simulate --help``.
"""

from .config import ANOMALY_KINDS, DRIFT_SCENARIOS, SimulationConfig
from .engine import SimulationResult, simulate
from .truth import bayes_optimal_auc

__all__ = ["ANOMALY_KINDS", "DRIFT_SCENARIOS", "SimulationConfig", "SimulationResult", "bayes_optimal_auc",
           "simulate"]
