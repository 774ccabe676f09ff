"""The promotion gate: a challenger becomes champion only if every check passes. Pure function."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GatePolicy:
    min_auc: float = 0.65  # no model below this out-of-time AUC is ever champion, even the first one
    auc_tolerance: float = 0.005  # the challenger's out-of-time AUC may be at most this much below the champion's
    max_ece: float = 0.03  # expected calibration error
    min_approval_rate_ratio: float = 0.8  # fairness: lowest / highest approval rate across groups
    max_equal_opportunity_diff: float = 0.2  # fairness: spread of good borrowers' approval rates
    canary_max_approval_delta: float = 0.05  # canary on the reference set: |approval rate change|
    canary_max_mean_abs_dpd: float = 0.05  # canary: mean |PD change| per application


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class Decision:
    promote: bool
    checks: list[Check] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        return [f"{'PASS' if c.passed else 'FAIL'} {c.name}: {c.detail}" for c in self.checks]


def decide(challenger: dict[str, float], champion: dict[str, float] | None, canary: dict[str, float] | None,
           policy: GatePolicy) -> Decision:
    """``challenger``/``champion``: out-of-time metrics (auc, ece, approval_rate_ratio, equal_opportunity_diff);
    ``canary``: approval_delta and mean_abs_dpd of challenger vs champion on the reference set."""
    checks = [Check("minimum_auc", challenger["auc"] >= policy.min_auc,
                    f"AUC {challenger['auc']:.4f} (min {policy.min_auc})")]
    if champion is None:
        checks.append(Check("performance", True, f"no champion yet; challenger AUC {challenger['auc']:.4f}"))
    else:
        floor = champion["auc"] - policy.auc_tolerance
        checks.append(Check("performance", challenger["auc"] >= floor,
                            f"AUC {challenger['auc']:.4f} vs champion {champion['auc']:.4f} (floor {floor:.4f})"))
    checks.append(Check("calibration", challenger["ece"] <= policy.max_ece,
                        f"ECE {challenger['ece']:.4f} (max {policy.max_ece})"))
    checks.append(Check("fairness_approval_ratio", challenger["approval_rate_ratio"] >= policy.min_approval_rate_ratio,
                        f"{challenger['approval_rate_ratio']:.3f} (min {policy.min_approval_rate_ratio})"))
    checks.append(Check("fairness_equal_opportunity",
                        challenger["equal_opportunity_diff"] <= policy.max_equal_opportunity_diff,
                        f"{challenger['equal_opportunity_diff']:.3f} (max {policy.max_equal_opportunity_diff})"))
    if canary is not None:
        checks.append(Check("canary_approval_rate", abs(canary["approval_delta"]) <= policy.canary_max_approval_delta,
                            f"approval rate change {canary['approval_delta']:+.4f} "
                            f"(max ±{policy.canary_max_approval_delta})"))
        checks.append(Check("canary_mean_abs_dpd", canary["mean_abs_dpd"] <= policy.canary_max_mean_abs_dpd,
                            f"mean |ΔPD| {canary['mean_abs_dpd']:.4f} (max {policy.canary_max_mean_abs_dpd})"))
    return Decision(all(c.passed for c in checks), checks)
