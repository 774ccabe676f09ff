"""The two PD models: a logistic-regression baseline and XGBoost. Seeded: same data, same model."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .dataset import TARGET

if TYPE_CHECKING:  # scikit-learn and xgboost load where a model is trained or scored, not with the Definitions
    from sklearn.pipeline import Pipeline

SEED = 7
XGB_BASE = {"objective": "binary:logistic", "eval_metric": "auc", "tree_method": "hist",
            "max_delta_step": 1.0,  # keeps steps small on a rare class: the usual imbalance aid for logistic
            "seed": SEED}
SEARCH_SPACE: dict[str, list[int] | list[float]] = {
    "max_depth": [3, 4, 5, 6], "eta": [0.03, 0.05, 0.08], "min_child_weight": [1, 5, 20],
    "subsample": [0.7, 0.85, 1.0], "colsample_bytree": [0.6, 0.8, 1.0], "lambda": [1.0, 5.0]}


@dataclass
class TrainedModel:
    kind: str  # "baseline" | "xgboost"
    model: Any  # sklearn Pipeline | xgboost Booster
    features: list[str]
    categorical: list[str]
    params: dict[str, Any] = field(default_factory=dict)
    categories: dict[str, list[str]] = field(default_factory=dict)  # xgboost: training categories
    train_seconds: float = 0.0
    search: list[dict[str, Any]] = field(default_factory=list)
    platt: tuple[float, float] | None = None  # calibration on validation: pd = sigmoid(a * logit(raw) + b)
    center: np.ndarray | None = None  # baseline: training means of the transformed columns (contributions)

    def matrix(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's input columns, typed as at training time."""
        x = frame[self.features].copy()
        numeric = [c for c in self.features if c not in self.categorical]
        x[numeric] = x[numeric].astype("float64")
        for c in self.categorical:
            x[c] = pd.Categorical(x[c], categories=self.categories.get(c)) if self.kind == "xgboost" else x[c].astype(object)
        return x

    def input_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's input as a client sends it: numbers as float64, categories as text (signatures)."""
        x = frame[self.features].copy()
        numeric = [c for c in self.features if c not in self.categorical]
        x[numeric] = x[numeric].astype("float64")
        x[self.categorical] = x[self.categorical].astype(object).where(x[self.categorical].notna(), None)
        return x

    def raw_pd(self, frame: pd.DataFrame) -> np.ndarray:
        x = self.matrix(frame)
        if self.kind == "baseline":
            return self.model.predict_proba(x)[:, 1]
        return self.model.inplace_predict(x, iteration_range=(0, self.model.best_iteration + 1))

    def predict_pd(self, frame: pd.DataFrame) -> np.ndarray:
        raw = self.raw_pd(frame)
        return raw if self.platt is None else _platt(raw, *self.platt)

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """Per-row, per-feature contributions to the log-odds of default.

        XGBoost: exact TreeSHAP (``pred_contribs``, bias dropped). Baseline: the exact linear
        decomposition, coefficient x (value - training mean) of each transformed column, summed back
        to the feature it came from (one-hot levels, missing flags).
        """
        if self.kind == "xgboost":
            import xgboost as xgb

            dm = xgb.DMatrix(self.matrix(frame), enable_categorical=True)
            contribs = self.model.predict(dm, pred_contribs=True, iteration_range=(0, self.model.best_iteration + 1))
            return contribs[:, :-1]
        prepare, logit = self.model.named_steps["prepare"], self.model.named_steps["logit"]
        z = prepare.transform(self.matrix(frame))
        z = z.toarray() if hasattr(z, "toarray") else np.asarray(z)
        per_column = (z - self.center) * logit.coef_[0]
        owner = _owners(prepare.get_feature_names_out(), self.features, self.categorical)
        out = np.zeros((len(frame), len(self.features)))
        for j, i in enumerate(owner):
            out[:, i] += per_column[:, j]
        return out


def _owners(names: np.ndarray, features: list[str], categorical: list[str]) -> list[int]:
    """Index of the source feature of each transformed column (``num__x``, ``num__missingindicator_x``,
    ``cat__x_level``)."""
    index = {f: i for i, f in enumerate(features)}
    owners = []
    for name in names:
        kind, rest = name.split("__", 1)
        if kind == "num":
            owners.append(index[rest.removeprefix("missingindicator_")])
        else:
            owners.append(index[max((c for c in categorical if rest.startswith(c + "_")), key=len)])
    return owners


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _platt(raw: np.ndarray, a: float, b: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(a * _logit(raw) + b)))


def calibrate(model: TrainedModel, valid: pd.DataFrame) -> TrainedModel:
    """Platt scaling fitted on the validation split, kept only if its slope is positive and it lowers the
    validation ECE.

    A monotone increasing map: rankings (AUC) and reason codes are unchanged; only the PD levels move. A
    slope at or below 0 (validation ranks opposite to the model, e.g. after a regime change) would reverse
    the ranking, so it is refused and recorded.
    """
    from sklearn.linear_model import LogisticRegression

    from .evaluate import calibration

    y, raw = valid[TARGET].to_numpy(), model.raw_pd(valid)
    fit = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(raw).reshape(-1, 1), y)
    a, b = float(fit.coef_[0, 0]), float(fit.intercept_[0])
    before, after = calibration(y, raw)[1], calibration(y, _platt(raw, a, b))[1]
    model.params.update({"valid_ece_raw": round(before, 5), "valid_ece_platt": round(after, 5)})
    if a <= 0:
        model.params["calibration"] = f"none (Platt slope {a:.4f} <= 0 would reverse the ranking)"
    elif after < before:
        model.platt = (a, b)
        model.params["calibration"] = f"platt a={a:.4f} b={b:.4f}"
    else:
        model.params["calibration"] = "none (raw PDs better calibrated on validation)"
    return model


def weighted_rows(train: pd.DataFrame, sample_weight: np.ndarray | None
                  ) -> tuple[pd.DataFrame, np.ndarray | None, dict[str, Any]]:
    """The train rows a model learns from, their weights and what to record about them (model params).

    ``sample_weight`` (one per row of ``train``, e.g. ``dataset.recency_weights``): rows of weight 0 are left
    out, the others weigh in the fit. None: every row, unweighted, nothing recorded.
    """
    if sample_weight is None:
        return train, None, {}
    w = np.asarray(sample_weight, dtype=float).ravel()
    if w.shape != (len(train),):
        raise ValueError(f"sample_weight has {w.size} values for {len(train)} train rows")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("sample_weight must be finite and >= 0")
    keep = w > 0
    if not keep.any():
        raise ValueError("every sample weight is 0: no train row left to learn from")
    w = w[keep]
    effective = float(w.sum() ** 2 / np.square(w).sum())  # Kish's effective sample size
    return train[keep], w, {"sample_weight": f"{int(keep.sum())} of {len(train)} train rows, "
                                             f"effective size {effective:.0f}",
                            "train_rows_weighted": int(keep.sum()), "train_effective_rows": round(effective, 1)}


def baseline_pipeline(numeric: list[str], categorical: list[str], seed: int = SEED) -> Pipeline:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = ColumnTransformer([
        ("num", Pipeline([("impute", SimpleImputer(strategy="median", add_indicator=True)),
                          ("scale", StandardScaler())]), numeric),
        ("cat", Pipeline([("impute", SimpleImputer(strategy="constant", fill_value="(missing)")),
                          ("onehot", OneHotEncoder(handle_unknown="ignore", min_frequency=20))]), categorical),
    ])
    return Pipeline([("prepare", pre), ("logit", LogisticRegression(max_iter=2000, C=0.5, random_state=seed))])


def train_baseline(train: pd.DataFrame, features: list[str], categorical: list[str], seed: int = SEED,
                   valid: pd.DataFrame | None = None, sample_weight: np.ndarray | None = None) -> TrainedModel:
    """``sample_weight`` (see ``weighted_rows``) weighs the logistic fit; imputation and scaling are fitted on
    the kept rows unweighted. Calibration on ``valid`` is never weighted."""
    started = time.perf_counter()
    train, weight, recorded = weighted_rows(train, sample_weight)
    numeric = [c for c in features if c not in categorical]
    model = TrainedModel("baseline", baseline_pipeline(numeric, categorical, seed), features, categorical,
                         params={"C": 0.5, "encoding": "one-hot (min_frequency 20)", "imputation": "median + indicator",
                                 **recorded})
    model.model.fit(model.matrix(train), train[TARGET].to_numpy(), logit__sample_weight=weight)
    z = model.model.named_steps["prepare"].transform(model.matrix(train))
    # contributions are taken against the (weighted) training mean of each transformed column
    model.center = (np.asarray(z.mean(axis=0)).ravel() if weight is None
                    else np.asarray(z.T @ weight).ravel() / weight.sum())
    if valid is not None:
        calibrate(model, valid)
    model.train_seconds = time.perf_counter() - started
    return model


def _sample_params(rng: np.random.Generator) -> dict[str, Any]:
    return {k: v[int(rng.integers(len(v)))] for k, v in SEARCH_SPACE.items()}


#: the first trial of every search: a sensible default
DEFAULT_CANDIDATE: dict[str, Any] = {"max_depth": 4, "eta": 0.05, "min_child_weight": 5, "subsample": 0.85,
                                     "colsample_bytree": 0.8, "lambda": 1.0}


def search_candidates(seed: int = SEED, trials: int = 6,
                      candidates: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The parameter sets a search tries, in order: ``candidates`` when given, else the default followed by
    ``trials - 1`` seeded samples of ``SEARCH_SPACE`` (the same list whichever engine trains them)."""
    if candidates is not None:
        return [dict(c) for c in candidates]
    rng = np.random.default_rng(seed)
    return [dict(DEFAULT_CANDIDATE)] + [_sample_params(rng) for _ in range(trials - 1)]


def booster_params(params: dict[str, Any], seed: int, threads: int) -> dict[str, Any]:
    """What ``xgboost.train`` gets for one candidate (recorded as the model's params)."""
    return {**XGB_BASE, **params, "seed": seed, "nthread": threads}


def xgboost_shell(train: pd.DataFrame, features: list[str], categorical: list[str]) -> TrainedModel:
    """An XGBoost ``TrainedModel`` without its booster: the features and the training categories, so that
    ``matrix`` types any frame (train, validation, a worker's shard) the same way."""
    categories = {c: sorted(train[c].dropna().astype(str).unique().tolist()) for c in categorical}
    return TrainedModel("xgboost", None, features, categorical, categories=categories)


def xgboost_dmatrix(shell: TrainedModel, frame: pd.DataFrame, weight: np.ndarray | None = None) -> Any:
    import xgboost as xgb

    return xgb.DMatrix(shell.matrix(frame), label=frame[TARGET].to_numpy(), weight=weight, enable_categorical=True)


@dataclass
class Trial:
    """One trained candidate of a search."""

    params: dict[str, Any]  # the candidate (search space keys)
    booster: Any  # xgboost Booster
    full: dict[str, Any]  # what xgboost.train got
    valid_auc: float  # on the whole validation split

    def record(self) -> dict[str, Any]:
        return {**self.params, "best_iteration": self.booster.best_iteration, "valid_auc": round(self.valid_auc, 5)}


def valid_auc(booster: Any, shell: TrainedModel, valid: pd.DataFrame) -> float:
    """AUC on the whole validation split at the booster's best iteration (the choice between trials)."""
    from sklearn.metrics import roc_auc_score

    raw = booster.inplace_predict(shell.matrix(valid), iteration_range=(0, booster.best_iteration + 1))
    return float(roc_auc_score(valid[TARGET], raw))


def best_of(shell: TrainedModel, trials: list[Trial], valid: pd.DataFrame, recorded: dict[str, Any],
            started: float, extra: dict[str, Any] | None = None) -> TrainedModel:
    """The search's result: the trial of best validation AUC (the first of equals), calibrated on
    ``valid``, with every trial in ``search`` and ``extra`` (e.g. the engine) in its params."""
    if not trials:
        raise ValueError("no trial was trained")
    best = trials[0]
    for trial in trials[1:]:
        if trial.valid_auc > best.valid_auc:
            best = trial
    shell.model = best.booster
    shell.params = {**best.full, "best_iteration": best.booster.best_iteration, **recorded, **(extra or {})}
    calibrate(shell, valid)
    shell.search, shell.train_seconds = [t.record() for t in trials], time.perf_counter() - started
    return shell


def train_xgboost(train: pd.DataFrame, valid: pd.DataFrame, features: list[str], categorical: list[str],
                  seed: int = SEED, trials: int = 6, time_budget_s: float = 120.0,
                  num_boost_round: int = 2000, early_stopping_rounds: int = 50,
                  candidates: list[dict[str, Any]] | None = None,
                  sample_weight: np.ndarray | None = None, threads: int = 2) -> TrainedModel:
    """A small seeded random search (first trial: a sensible default), early stopping on validation AUC.

    Stops early when the time budget is spent; the best trial by validation AUC wins. ``candidates``
    replaces the search with the given parameter sets (e.g. to retrain a chosen configuration).
    ``sample_weight`` (see ``weighted_rows``) weighs the train rows; validation (early stopping, the
    choice of trial, calibration) is never weighted. In this process, trials one after another; on Ray
    (data-parallel workers, trials side by side): ``distributed.train_xgboost_ray``.
    """
    import xgboost as xgb

    started = time.perf_counter()
    train, weight, recorded = weighted_rows(train, sample_weight)
    shell = xgboost_shell(train, features, categorical)
    dtrain, dvalid = xgboost_dmatrix(shell, train, weight), xgboost_dmatrix(shell, valid)
    done: list[Trial] = []
    for params in search_candidates(seed, trials, candidates):
        if done and time.perf_counter() - started > time_budget_s:
            break
        full = booster_params(params, seed, threads)
        booster = xgb.train(full, dtrain, num_boost_round=num_boost_round, evals=[(dvalid, "valid")],
                            early_stopping_rounds=early_stopping_rounds, verbose_eval=False)
        done.append(Trial(params, booster, full, valid_auc(booster, shell, valid)))
    return best_of(shell, done, valid, recorded, started, {"engine": "local"})
