"""The Grafana dashboard is valid JSON and only queries metrics the serving app exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from serving.app import DRIFT_GAUGES

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "infra" / "grafana" / "creditrisk-dashboard.json"


def exported_metric_names() -> set[str]:
    """Every Prometheus series name the app's ray.util.metrics objects produce (Ray prefixes ``ray_``;
    counters get ``_total``, histograms ``_bucket``/``_sum``/``_count``)."""
    source = (ROOT / "serving" / "app.py").read_text()
    names: set[str] = set()
    for kind, name in re.findall(r'metrics\.(Counter|Histogram|Gauge)\("([a-z_]+)"', source):
        base = f"ray_{name}"
        names |= {f"{base}_total"} if kind == "Counter" else (
            {f"{base}_bucket", f"{base}_sum", f"{base}_count"} if kind == "Histogram" else {base})
    names |= {f"ray_creditrisk_{g}" for g in DRIFT_GAUGES}
    return names


def test_dashboard_is_valid_and_queries_only_exported_metrics() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["panels"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    exported = exported_metric_names()
    assert {"ray_creditrisk_requests_total", "ray_creditrisk_request_latency_ms_bucket",
            "ray_creditrisk_predictions_total"} <= exported
    used = set()
    for p in dash["panels"]:
        assert p["targets"], p["title"]
        for t in p["targets"]:
            used |= set(re.findall(r"\b(ray_[a-z_]+)", t["expr"]))
    assert used and used <= exported, used - exported
    assert {"ray_creditrisk_drift_share", "ray_creditrisk_requests_total"} <= used
