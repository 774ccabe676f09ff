"""Choosing where training and batch scoring run, and the pure parts both engines share (no Ray, no servers)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from creditrisk_assets.modeling.distributed import (
    choose_engine,
    scoring_engine,
    split_rows,
    training_engine,
    trial_slots,
)
from creditrisk_assets.modeling.train import DEFAULT_CANDIDATE, SEARCH_SPACE, search_candidates, train_xgboost
from creditrisk_assets.settings import Settings
from serving.batch import ANSWER_SCHEMA, GradeTally, score_table
from serving.scoring import ModelInfo, Scorer
from tests.unit.test_modeling import CATEGORICAL, FEATURES, synthetic


@pytest.mark.parametrize(("setting", "rows", "expected"), [
    ("local", 10**9, "local"), ("ray", 1, "ray"),
    ("auto", 999, "local"), ("auto", 1000, "ray"), ("auto", 5000, "ray"), ("auto", 0, "local"),
])
def test_choose_engine_by_setting_and_rows(setting: str, rows: int, expected: str) -> None:
    assert choose_engine(setting, rows, min_rows=1000) == expected


def test_choose_engine_refuses_an_unknown_setting() -> None:
    with pytest.raises(ValueError, match="expected auto, local or ray"):
        choose_engine("spark", 10, 1)


def test_engines_follow_the_settings() -> None:
    auto = Settings.from_env({"CREDITRISK_TRAIN_RAY_MIN_ROWS": "500"})
    assert (training_engine(auto, 499), training_engine(auto, 500)) == ("local", "ray")
    assert (scoring_engine(auto, 499), scoring_engine(auto, 500)) == ("local", "ray")
    pinned = Settings.from_env({"CREDITRISK_TRAIN_ENGINE": "local", "CREDITRISK_BATCH_SCORING_ENGINE": "ray",
                                "CREDITRISK_TRAIN_RAY_MIN_ROWS": "500"})
    assert training_engine(pinned, 10**7) == "local" and scoring_engine(pinned, 1) == "ray"
    assert training_engine(Settings(), 999_999) == "local" and training_engine(Settings(), 1_000_000) == "ray"


@pytest.mark.parametrize(("cpus", "workers", "slots"), [(2, 2, 1), (4, 2, 2), (5, 2, 2), (1, 2, 1), (0, 2, 1),
                                                         (3, 1, 3), (8.0, 3, 2)])
def test_trial_slots(cpus: float, workers: int, slots: int) -> None:
    assert trial_slots(cpus, workers) == slots


@pytest.mark.parametrize(("rows", "parts"), [(10, 2), (11, 3), (2, 3), (0, 2), (7, 1)])
def test_split_rows_covers_every_row_once_in_order(rows: int, parts: int) -> None:
    frame = pd.DataFrame({"a": np.arange(rows), "b": np.arange(rows) * 0.5}, index=np.arange(rows) + 100)
    pieces = split_rows(frame, parts)
    assert len(pieces) == parts
    sizes = [len(p) for p in pieces]
    assert max(sizes) - min(sizes) <= 1
    pd.testing.assert_frame_equal(pd.concat(pieces, ignore_index=True), frame.reset_index(drop=True))


def test_search_candidates_are_the_default_then_seeded_samples() -> None:
    first = search_candidates(seed=7, trials=5)
    assert len(first) == 5 and first[0] == DEFAULT_CANDIDATE
    assert first == search_candidates(seed=7, trials=5)  # both engines get the same list
    assert first != search_candidates(seed=8, trials=5)
    assert all(c[k] in SEARCH_SPACE[k] for c in first[1:] for k in SEARCH_SPACE)
    given = [{"max_depth": 3}]
    got = search_candidates(candidates=given)
    assert got == given and got[0] is not given[0]  # a copy: the caller's list is not shared


def test_local_training_records_its_engine_and_searches_the_shared_candidates() -> None:
    frame = synthetic(2000)
    train, valid = frame[frame["split"] == "train"], frame[frame["split"] == "valid"]
    model = train_xgboost(train, valid, FEATURES, CATEGORICAL, trials=2, num_boost_round=30, threads=1)
    assert model.params["engine"] == "local"
    searched = [{k: row[k] for k in SEARCH_SPACE} for row in model.search]
    assert searched == search_candidates(trials=2)
    assert model.params["best_iteration"] == max(model.search, key=lambda r: r["valid_auc"])["best_iteration"]


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    frame = synthetic(2000)
    train, valid = frame[frame["split"] == "train"], frame[frame["split"] == "valid"]
    model = train_xgboost(train, valid, FEATURES, CATEGORICAL, trials=1, num_boost_round=30, threads=1)
    return Scorer(model, ModelInfo("creditrisk-pd", "3", "champion"), 0.15, Settings().credit_terms)


def test_score_table_keeps_the_input_columns_and_scores_the_same_in_any_batches(scorer: Scorer) -> None:
    frame = synthetic(600).drop(columns=["split"]).reset_index(drop=True)
    frame["sk_id_curr"] = np.arange(len(frame), dtype=np.int64) + 1
    frame.loc[::7, "kind"] = None
    table = pa.Table.from_pandas(frame, preserve_index=False)
    whole = score_table(scorer, table, "declined")
    assert whole.schema.names == [*table.schema.names, *ANSWER_SCHEMA.names]
    assert whole.select(table.schema.names).equals(table)  # the input as it was, types included
    assert whole.schema.field("score").type == pa.int64() and set(whole["model_version"].to_pylist()) == {"3"}
    batched = pa.concat_tables([score_table(scorer, table.slice(s, 128), "declined") for s in range(0, len(frame), 128)])
    assert batched.equals(whole)
    declined = np.array(whole["decision"].to_pylist()) == "decline"
    codes = np.array(whole["reason_codes"].to_pylist())
    assert declined.any() and (codes[declined] != "").all() and (codes[~declined] == "").all()


def test_grade_tally_adds_up_to_the_whole_summary(scorer: Scorer) -> None:
    frame = synthetic(900).drop(columns=["split"])
    whole = score_table(scorer, pa.Table.from_pandas(frame, preserve_index=False), "declined")
    tally = GradeTally()
    for start in range(0, whole.num_rows, 250):
        tally.add(whole.slice(start, 250))
    scored = whole.to_pandas()
    expected = (scored.assign(declined=scored["decision"] == "decline").groupby("grade")
                .agg(applications=("pd", "size"), mean_pd=("pd", "mean"), mean_score=("score", "mean"),
                     decline_rate=("declined", "mean")).reset_index())
    pd.testing.assert_frame_equal(tally.frame(), expected, check_exact=False, rtol=1e-12)
    assert tally.rows == len(scored)
    assert tally.decline_rate == pytest.approx((scored["decision"] == "decline").mean())
    assert GradeTally().frame().empty and np.isnan(GradeTally().decline_rate)
