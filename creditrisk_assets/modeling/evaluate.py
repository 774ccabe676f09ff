"""Pure, Dagster-free evaluation of a probability-of-default (PD) model.

Everything here takes numpy/pandas inputs and returns plain values (floats, data frames, PNG bytes,
markdown), so it can be unit-tested without a Dagster context and reused by assets, jobs and reports.
Conventions: ``y`` is 1 for a default and 0 otherwise; ``pd_`` is the predicted probability of default.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve  # noqa: E402

__all__ = [
    "calibration",
    "calibration_png",
    "discrimination",
    "fairness",
    "global_importance",
    "importance_png",
    "left_out_lines",
    "model_card",
    "oracle_gap",
    "reason_codes",
    "roc_png",
]

_LOG_LOSS_EPS = 1e-15
_MIN_GROUP_N = 30


# --------------------------------------------------------------------------- input checks


def _as_xy(y: object, pd_: object) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert labels / predicted PDs to 1-D float arrays of equal, non-zero length."""
    y_arr = np.asarray(y, dtype=float).ravel()
    p_arr = np.asarray(pd_, dtype=float).ravel()
    if y_arr.size == 0 or p_arr.size == 0:
        raise ValueError("empty input: y and pd_ must contain at least one observation")
    if y_arr.shape != p_arr.shape:
        raise ValueError(f"y and pd_ must have the same length, got {y_arr.size} and {p_arr.size}")
    if not np.isin(y_arr, (0.0, 1.0)).all():
        raise ValueError("y must be binary (0 = no default, 1 = default) without missing values")
    if not np.isfinite(p_arr).all():
        raise ValueError("pd_ contains NaN or infinite values")
    if (p_arr < 0.0).any() or (p_arr > 1.0).any():
        raise ValueError("pd_ must be probabilities in [0, 1]")
    return y_arr, p_arr


# --------------------------------------------------------------------------- metrics


def discrimination(y: np.ndarray, pd_: np.ndarray) -> dict[str, float]:
    """Ranking and probability-quality metrics.

    Keys: auc, gini (= 2 auc - 1), ks (max |TPR - FPR| over the ROC curve), brier, log_loss (probabilities
    clipped to [1e-15, 1 - 1e-15]), pr_auc (average precision), default_rate, mean_pd, n.
    Raises ValueError for empty input or when ``y`` holds a single class (AUC is undefined).
    """
    y_arr, p_arr = _as_xy(y, pd_)
    n_pos = int(y_arr.sum())
    if n_pos in (0, y_arr.size):
        only = "defaults" if n_pos else "non-defaults"
        raise ValueError(
            f"y contains only one class ({only} only, n={y_arr.size}); "
            "discrimination metrics need both defaulters and non-defaulters"
        )
    auc = float(roc_auc_score(y_arr, p_arr))
    fpr, tpr, _ = roc_curve(y_arr, p_arr)
    p_clip = np.clip(p_arr, _LOG_LOSS_EPS, 1.0 - _LOG_LOSS_EPS)
    log_loss = -float(np.mean(y_arr * np.log(p_clip) + (1.0 - y_arr) * np.log1p(-p_clip)))
    return {
        "auc": auc,
        "gini": 2.0 * auc - 1.0,
        "ks": float(np.max(np.abs(tpr - fpr))),
        "brier": float(np.mean((p_arr - y_arr) ** 2)),
        "log_loss": log_loss,
        "pr_auc": float(average_precision_score(y_arr, p_arr)),
        "default_rate": float(y_arr.mean()),
        "mean_pd": float(p_arr.mean()),
        "n": float(y_arr.size),
    }


def calibration(y: np.ndarray, pd_: np.ndarray, bins: int = 10) -> tuple[pd.DataFrame, float]:
    """Reliability table over equal-frequency (quantile) bins of the predicted PD, and the ECE.

    Bins are formed on the rank of ``pd_``; tied PDs always fall in the same bin, so with many ties
    there can be fewer (and unequal) bins. Empty bins are dropped and the rest are numbered 0..k-1 in
    increasing PD order. ECE = sum_b n_b / N * |mean_pd_b - observed_rate_b|.
    Columns: bin, n, mean_pd, observed_rate.
    """
    if int(bins) != bins or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    y_arr, p_arr = _as_xy(y, pd_)
    n = p_arr.size
    # 0-based rank of the first element of each tie group -> ties share a bin.
    sorted_p = np.sort(p_arr, kind="stable")
    first_rank = np.searchsorted(sorted_p, p_arr, side="left")
    raw_bin = (first_rank * int(bins)) // n
    counts = np.bincount(raw_bin, minlength=int(bins))
    sum_p = np.bincount(raw_bin, weights=p_arr, minlength=int(bins))
    sum_y = np.bincount(raw_bin, weights=y_arr, minlength=int(bins))
    keep = counts > 0
    counts, sum_p, sum_y = counts[keep], sum_p[keep], sum_y[keep]
    table = pd.DataFrame({
        "bin": np.arange(counts.size, dtype=int),
        "n": counts.astype(int),
        "mean_pd": sum_p / counts,
        "observed_rate": sum_y / counts,
    })
    ece = float(np.sum(counts / n * np.abs(table["mean_pd"].to_numpy() - table["observed_rate"].to_numpy())))
    return table, ece


def fairness(
    y: np.ndarray, pd_: np.ndarray, groups: pd.Series, threshold: float
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Approval-decision fairness across groups (approve when ``pd_ < threshold``).

    ``groups`` is matched to ``y``/``pd_`` by position (not by index). Missing group values form their
    own group. Per group: n, approval_rate, default_rate, tpr_good (share of non-defaulters approved;
    NaN when a group has no non-defaulters) and ``considered`` (n >= 30).
    Summary over considered groups: approval_rate_ratio = min / max approval rate (1.0 when fewer than
    two groups, or when no group is approved at all), equal_opportunity_diff = max - min tpr_good
    (0.0 when fewer than two groups have a defined tpr_good), groups_considered.
    """
    y_arr, p_arr = _as_xy(y, pd_)
    g = pd.Series(groups).reset_index(drop=True)
    if len(g) != y_arr.size:
        raise ValueError(f"groups must have the same length as y, got {len(g)} and {y_arr.size}")
    approved = p_arr < threshold
    good = y_arr == 0
    frame = pd.DataFrame({
        "group": g.to_numpy(),
        "approved": approved.astype(float),
        "default": y_arr,
        "good": good.astype(float),
        "good_approved": (good & approved).astype(float),
    })
    agg = frame.groupby("group", dropna=False, sort=True).agg(
        n=("approved", "size"),
        approved=("approved", "sum"),
        defaults=("default", "sum"),
        goods=("good", "sum"),
        good_approved=("good_approved", "sum"),
    )
    goods = agg["goods"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr_good = np.where(goods > 0, agg["good_approved"].to_numpy() / np.where(goods > 0, goods, 1), np.nan)
    table = pd.DataFrame({
        "group": agg.index.to_numpy(),
        "n": agg["n"].to_numpy().astype(int),
        "approval_rate": agg["approved"].to_numpy() / agg["n"].to_numpy(),
        "default_rate": agg["defaults"].to_numpy() / agg["n"].to_numpy(),
        "tpr_good": tpr_good,
        "considered": agg["n"].to_numpy() >= _MIN_GROUP_N,
    })
    eligible = table[table["considered"]]
    rates = eligible["approval_rate"].to_numpy()
    if rates.size >= 2 and rates.max() > 0:
        ratio = float(rates.min() / rates.max())
    else:
        ratio = 1.0
    tprs = eligible["tpr_good"].dropna().to_numpy()
    eo_diff = float(tprs.max() - tprs.min()) if tprs.size >= 2 else 0.0
    summary = {
        "approval_rate_ratio": ratio,
        "equal_opportunity_diff": eo_diff,
        "groups_considered": float(len(eligible)),
        "threshold": float(threshold),
    }
    return table, summary


# --------------------------------------------------------------------------- explanations


def _as_contribs(contribs: np.ndarray, feature_names: Sequence[str]) -> np.ndarray:
    arr = np.asarray(contribs, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"contribs must be 2-D (rows x features), got shape {arr.shape}")
    if arr.shape[1] != len(feature_names):
        raise ValueError(
            f"contribs has {arr.shape[1]} columns but {len(feature_names)} feature names were given "
            "(pass contributions without the bias column)"
        )
    return arr


def reason_codes(contribs: np.ndarray, feature_names: list[str], top_k: int = 4) -> list[list[str]]:
    """Adverse-action reason codes: per row, the ``top_k`` features with the largest positive
    contribution to the log-odds of default, most adverse first. Non-positive (and NaN) contributions
    are never reported, so a row can get fewer than ``top_k`` codes. Ties keep feature order.
    """
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")
    arr = _as_contribs(contribs, feature_names)
    k = min(int(top_k), arr.shape[1])
    if arr.shape[0] == 0:
        return []
    if k == 0:
        return [[] for _ in range(arr.shape[0])]
    # NaN -> -inf so it sorts last and is filtered out as non-positive.
    neg = -np.nan_to_num(arr, nan=-np.inf)
    order = np.argsort(neg, axis=1, kind="stable")[:, :k]
    top_vals = np.take_along_axis(arr, order, axis=1)
    n_pos = np.sum(top_vals > 0, axis=1)  # positives form a prefix of the descending order
    names = np.asarray(list(feature_names), dtype=object)[order]
    return [row[:c].tolist() for row, c in zip(names, n_pos.tolist(), strict=True)]


def global_importance(contribs: np.ndarray, feature_names: list[str]) -> pd.DataFrame:
    """Mean absolute contribution per feature, sorted descending (ties by feature name).
    Columns: feature, mean_abs_contribution."""
    arr = _as_contribs(contribs, feature_names)
    if arr.shape[0] == 0:
        raise ValueError("empty input: contribs has no rows")
    imp = pd.DataFrame({
        "feature": [str(f) for f in feature_names],
        "mean_abs_contribution": np.nanmean(np.abs(arr), axis=0),
    })
    return imp.sort_values(
        ["mean_abs_contribution", "feature"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)


# --------------------------------------------------------------------------- plots


def _png(fig: plt.Figure) -> bytes:
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
        return buf.getvalue()
    finally:
        plt.close(fig)


def roc_png(y: np.ndarray, pd_: np.ndarray, title: str) -> bytes:
    """ROC curve with the chance diagonal, as PNG bytes."""
    y_arr, p_arr = _as_xy(y, pd_)
    auc = discrimination(y_arr, p_arr)["auc"]
    fpr, tpr, _ = roc_curve(y_arr, p_arr)
    fig, ax = plt.subplots(figsize=(5, 5))
    try:
        ax.plot(fpr, tpr, lw=2, label=f"model (AUC = {auc:.3f})")
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
        ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="False positive rate", ylabel="True positive rate",
               title=title)
        ax.legend(loc="lower right")
    except Exception:
        plt.close(fig)
        raise
    return _png(fig)


def calibration_png(table: pd.DataFrame, title: str) -> bytes:
    """Reliability diagram (mean predicted PD vs observed default rate per bin), as PNG bytes."""
    missing = {"mean_pd", "observed_rate"} - set(table.columns)
    if missing:
        raise ValueError(f"calibration table is missing columns {sorted(missing)}")
    fig, ax = plt.subplots(figsize=(5, 5))
    try:
        x = table["mean_pd"].to_numpy(dtype=float)
        obs = table["observed_rate"].to_numpy(dtype=float)
        hi = float(max(np.nanmax(x, initial=0.0), np.nanmax(obs, initial=0.0), 1e-3)) * 1.05
        ax.plot([0, hi], [0, hi], ls="--", color="grey", lw=1, label="perfect calibration")
        ax.plot(x, obs, marker="o", lw=1.5, label="model")
        ax.set(xlim=(0, hi), ylim=(0, hi), xlabel="Mean predicted PD", ylabel="Observed default rate",
               title=title)
        ax.legend(loc="upper left")
    except Exception:
        plt.close(fig)
        raise
    return _png(fig)


def importance_png(importance: pd.DataFrame, title: str, top: int = 20) -> bytes:
    """Horizontal bar chart of the ``top`` features by mean |contribution|, as PNG bytes."""
    top_rows = importance.head(max(int(top), 0))
    fig, ax = plt.subplots(figsize=(6, 0.3 * max(len(top_rows), 3) + 1.2))
    try:
        ax.barh(top_rows["feature"].astype(str).to_numpy()[::-1],
                top_rows["mean_abs_contribution"].to_numpy(dtype=float)[::-1])
        ax.set(xlabel="Mean |contribution| (log-odds)", title=title)
    except Exception:
        plt.close(fig)
        raise
    return _png(fig)


# --------------------------------------------------------------------------- oracle and model card


def oracle_gap(model_auc: float, bayes_optimal_auc: float | None) -> float | None:
    """Bayes-optimal AUC minus the model's AUC (None when there is no oracle, e.g. real data)."""
    if bayes_optimal_auc is None:
        return None
    return float(bayes_optimal_auc) - float(model_auc)


def _fmt(v: object, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        f = float(v)
        if math.isnan(f):
            return "n/a"
        return f"{f:.{digits}f}"
    return str(v)


def _is_count(key: object) -> bool:
    k = str(key)
    return k in ("n", "groups_considered") or k.startswith("n_")


def _fmt_kv(key: object, v: object) -> str:
    """Like _fmt, but integer-valued counts (n, n_*, groups_considered) print without decimals."""
    if _is_count(key) and isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return _fmt(v)


def _cell(v: object) -> str:
    return _fmt(v).replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def left_out_lines(groups_absent: Sequence[str], dropped: Mapping[str, str]) -> list[str]:
    """Markdown bullets: the feature groups left out, then the features dropped, one line per reason."""
    groups = ", ".join(f"{g} (no rows)" for g in groups_absent) or "none"
    out = [f"- Feature groups left out: {groups}"]
    by_reason: dict[str, list[str]] = {}
    for name, reason in dropped.items():
        by_reason.setdefault(reason, []).append(name)
    out += [f"- Features left out ({reason}): {len(names)}: {', '.join(names)}" for reason, names in by_reason.items()]
    return out


def model_card(
    *,
    name: str,
    version: str | None,
    intended_use: str,
    data: Mapping[str, object],
    metrics: Mapping[str, float],
    calibration_ece: float,
    fairness_summary: Mapping[str, float],
    fairness_table: pd.DataFrame,
    importance: pd.DataFrame,
    oracle: Mapping[str, float | None],
    limitations: list[str],
    feature_groups_absent: Sequence[str] = (),
    features_dropped: Mapping[str, str] | None = None,
    sections: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """A deterministic markdown model card (no timestamps; mapping order is preserved as given).

    ``oracle`` is read for ``bayes_optimal_auc``; the gap to it is computed from ``metrics['auc']``.
    Any other oracle entries are listed as-is. ``feature_groups_absent`` (source tables without rows)
    and ``features_dropped`` (feature → why it is left out) are listed under Data. ``sections`` (title →
    markdown lines) come after Explanations, in the order given.
    """
    out: list[str] = [f"# Model card: {name}", ""]

    out += ["## Model", "", f"- Name: {name}", f"- Version: {version if version is not None else 'unregistered'}",
            "- Task: probability of default (binary classification, 1 = default)", ""]

    out += ["## Intended use", "", intended_use.strip() or "_(not stated)_", ""]

    out += ["## Data", ""]
    out += [f"- {k}: {_fmt_kv(k, v)}" for k, v in data.items()] or ["_(no data lineage recorded)_"]
    out += left_out_lines(feature_groups_absent, features_dropped or {})
    out.append("")

    out += ["## Performance", ""]
    perf_rows: list[list[object]] = [[k, _fmt_kv(k, v)] for k, v in metrics.items()]
    bayes = oracle.get("bayes_optimal_auc")
    auc = metrics.get("auc")
    gap = oracle_gap(auc, bayes) if auc is not None else None
    perf_rows.append(["bayes_optimal_auc", bayes if bayes is not None else "n/a (no oracle)"])
    perf_rows.append(["gap_to_bayes_optimal_auc", gap if gap is not None else "n/a (no oracle)"])
    perf_rows += [[f"oracle_{k}", v] for k, v in oracle.items() if k != "bayes_optimal_auc"]
    out += [_md_table(["metric", "value"], perf_rows), ""]
    if gap is not None:
        out += [f"Gap to the Bayes-optimal AUC of the data-generating process ({_fmt(bayes)}): {_fmt(gap)} "
                "(positive = the model leaves ranking power on the table).", ""]

    out += ["## Calibration", "",
            f"- Expected calibration error (ECE, equal-frequency bins): {_fmt(calibration_ece)}", ""]

    out += ["## Fairness", ""]
    if fairness_table is not None and not fairness_table.empty:
        cols = [str(c) for c in fairness_table.columns]
        out += [_md_table(cols, list(fairness_table.itertuples(index=False, name=None))), ""]
    else:
        out += ["_(no group data)_", ""]
    out += [f"- {k}: {_fmt_kv(k, v)}" for k, v in fairness_summary.items()]
    out += [f"- Groups with fewer than {_MIN_GROUP_N} observations are excluded from the summary.", ""]

    out += ["## Explanations", ""]
    if importance is not None and not importance.empty:
        top = importance.head(10)
        out += ["Top features by mean absolute contribution to the log-odds of default:", "",
                _md_table(["rank", "feature", "mean_abs_contribution"],
                          [[i + 1, f, v] for i, (f, v) in enumerate(
                              zip(top["feature"], top["mean_abs_contribution"], strict=True))]), ""]
    else:
        out += ["_(no feature contributions)_", ""]

    for title, lines in (sections or {}).items():
        out += [f"## {title}", "", *lines, ""]

    out += ["## Limitations", ""]
    out += [f"- {item}" for item in limitations] or ["- None recorded."]
    out.append("")
    return "\n".join(out)
