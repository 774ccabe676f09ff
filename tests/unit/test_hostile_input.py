"""Hostile input to ``POST /v1/predict`` gets a 4xx naming the field, never a 5xx.

The property-based test drives the real request handler (``PdService.__call__`` on a real Starlette
request, no Ray) with arbitrary JSON, raw bytes and mutations of a valid application; the rest pins
down the pieces: the depth scan, the magnitude of numbers, and the bounds of the feature contract
(both models score a body at the bounds, and ``docs/features.md`` prints the bounds the catalogue has).
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creditrisk_assets.contracts import TABLES
from creditrisk_assets.docs import DOCS
from creditrisk_assets.gold.catalogue import Feature, features
from creditrisk_assets.modeling.train import train_baseline, train_xgboost
from creditrisk_assets.quality.silver import AGE_RANGE
from creditrisk_assets.settings import Settings
from serving.app import PdService
from serving.schemas import ID_FIELD, MAX_JSON_DEPTH, RequestError, RequestParser, too_deep
from serving.scoring import ModelInfo, Scorer
from tests.unit.test_serving_unit import CATEGORICAL, NAMES, as_request_rows, request, run, synthetic

FEATURES = features()
NUMERIC = [f for f in FEATURES if f.numeric]
BY_NAME = {f.name: f for f in FEATURES}
#: numbers no feature accepts: beyond every bound, not finite, or beyond any bigint
HUGE = ["1e308", "-1e308", "1e400", "-1e400", "1E+999", "NaN", "Infinity", "-Infinity", "1e30", "-1e30",
        str(2**63), str(-(2**63) - 1), "123456789012345678901234567890", "9" * 400]
PARSER = RequestParser(10, 10**6)  # built once: the model comes from the YAML
KNOWN_ID = 424242  # the one application the stub feature store knows


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> PdService:
    """The service in process, scoring with both models (shadow mode), a stub feature store."""
    train, valid = synthetic(600, 1), synthetic(200, 2)
    xgb_model = train_xgboost(train, valid, NAMES, CATEGORICAL, candidates=[{"max_depth": 3, "eta": 0.1}])
    base = train_baseline(train, NAMES, CATEGORICAL, valid=valid)
    svc = PdService(Settings(home=tmp_path_factory.mktemp("serve"), prediction_log_flush_s=3600,
                             prediction_log_flush_rows=10**6))
    svc.champion = Scorer(xgb_model, ModelInfo("m", "1", "champion"), 0.15, Settings().credit_terms)
    svc.challenger = Scorer(base, ModelInfo("m", "2", "challenger"), 0.15, Settings().credit_terms)
    svc.mode = "shadow"
    features_row = {k: v for k, v in as_request_rows(synthetic(1, 9))[0].items() if k != ID_FIELD}
    svc._cache = (time.monotonic() + 10**9, {KNOWN_ID: features_row})  # never reloaded
    return svc


@functools.cache
def _base_row() -> str:
    return json.dumps(as_request_rows(synthetic(1, 5))[0])


def base_row() -> dict[str, Any]:
    """A valid application (a fresh copy)."""
    row: dict[str, Any] = json.loads(_base_row())
    return row


def post(svc: PdService, body: bytes) -> tuple[int, dict[str, Any]]:
    return run(svc, request("POST", "/v1/predict", body))


def named_fields(status: int, payload: dict[str, Any]) -> set[str]:
    """The fields a 4xx names; fails on a 5xx or a 4xx that names none."""
    assert status < 500, payload
    if status == 200:
        return set()
    assert 400 <= status < 500, (status, payload)
    errors = payload["errors"]
    assert errors and all(isinstance(e["field"], str) and e["field"] for e in errors), payload
    return {e["field"] for e in errors}


# ---------------------------------------------------------------------- hostile bodies, generated
PLACEHOLDER = "\x00raw\x00"  # a string value later swapped for a raw JSON token (json.dumps cannot write 1e400)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=25)


def nesting(value: Any) -> int:
    """How many JSON containers deep ``value`` is (a scalar: 0)."""
    if isinstance(value, dict):
        return 1 + max(map(nesting, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(nesting, value), default=0)
    return 0


def dumps_with(value: Any, token: str) -> bytes:
    return json.dumps(value).replace(json.dumps(PLACEHOLDER), token).encode()


def wrong_type(f: Feature) -> st.SearchStrategy[Any]:
    """A JSON value of the wrong type for ``f`` (never valid there)."""
    if f.data_type == "varchar":
        return st.integers() | st.floats(allow_nan=False) | st.booleans() | st.lists(st.text(max_size=3), max_size=2)
    kinds = st.text(max_size=6) | st.booleans() | st.lists(st.integers(), max_size=2) | st.dictionaries(
        st.text(max_size=3), st.integers(), max_size=2)
    if f.data_type != "double":  # an int feature: a fractional number is wrong too
        kinds |= st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer())
    return kinds


def beyond(f: Feature, draw: st.DrawFn) -> Any:
    """A number just outside ``f``'s bounds."""
    assert f.min_value is not None and f.max_value is not None
    step = 1 if f.data_type != "double" else max(1.0, abs(f.max_value) * 1e-6)
    if draw(st.booleans()):
        return f.max_value + step
    return f.min_value - (1 if f.data_type != "double" else max(1.0, abs(f.min_value) * 1e-6))


@st.composite
def hostile(draw: st.DrawFn) -> tuple[bytes, set[str] | None]:
    """A body, and the fields of which one at least must be named (None: any answer but a 5xx will do)."""
    kind = draw(st.sampled_from(["json", "bytes", "type", "huge", "range", "nested_field", "nested_body",
                                 "unknown", "missing", "list", "id", "bounds"]))
    row = base_row()
    if kind == "json":
        return json.dumps(draw(json_values)).encode(), None
    if kind == "bytes":
        return draw(st.binary(max_size=300)), None
    if kind == "id":
        token = draw(st.sampled_from([*HUGE, "0", "-1", "1.5", "true", '"7"', "null", "[]", "{}", str(KNOWN_ID)]))
        return dumps_with({ID_FIELD: PLACEHOLDER}, token), None if token == str(KNOWN_ID) else {ID_FIELD}
    if kind == "bounds":  # every numeric feature at one of its bounds: both models must score it
        for f in NUMERIC:
            row[f.name] = draw(st.sampled_from([f.min_value, f.max_value]))
        return json.dumps(row).encode(), set()  # set(): must be a 200
    if kind == "list":  # a list of applications with one bad: its position is named
        n, bad = draw(st.integers(2, 5)), draw(st.integers(0, 4))
        f = draw(st.sampled_from(NUMERIC))
        rows = [base_row() for _ in range(n)]
        rows[bad % n][f.name] = PLACEHOLDER
        return dumps_with(rows, draw(st.sampled_from(HUGE))), {f"[{bad % n}].{f.name}"}
    if kind == "nested_body":
        depth = draw(st.integers(2, 3000))
        return b"[" * depth + json.dumps(row).encode() + b"]" * draw(st.sampled_from([depth, 0, depth - 1])), None
    if kind == "unknown":
        name = "x_" + draw(st.text(max_size=10))
        row[name] = value = draw(json_values)
        # a value nesting past the depth limit makes the whole body too deep: refused as `body`, unparsed
        return json.dumps(row).encode(), {"body"} if 1 + nesting(value) > MAX_JSON_DEPTH else {name}
    if kind == "missing":
        f = draw(st.sampled_from([f for f in FEATURES if f.required]))
        del row[f.name]
        return json.dumps(row).encode(), {f.name}
    f = draw(st.sampled_from(FEATURES if kind in ("type", "nested_field") else NUMERIC))
    if kind == "type":
        row[f.name] = draw(wrong_type(f))
        return json.dumps(row).encode(), {f.name}
    if kind == "huge":
        row[f.name] = PLACEHOLDER
        return dumps_with(row, draw(st.sampled_from(HUGE))), {f.name}
    if kind == "range":
        row[f.name] = beyond(f, draw)
        return json.dumps(row).encode(), {f.name}
    depth = draw(st.integers(1, 3000))  # nested_field
    row[f.name] = PLACEHOLDER
    return dumps_with(row, "[" * depth + "1" + "]" * depth), {f.name, "body"}


@given(case=hostile())
@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
def test_hostile_bodies_get_a_4xx_naming_the_field_never_a_5xx(service: PdService,
                                                               case: tuple[bytes, set[str] | None]) -> None:
    body, expected = case
    status, payload = post(service, body)
    fields = named_fields(status, payload)
    if expected is None:
        return
    if not expected:
        assert status == 200, payload
        return
    assert status in (400, 422), (status, payload)
    assert fields & expected, (fields, expected, body[:200])


# ---------------------------------------------------------------------- the pieces, pinned down
@pytest.mark.parametrize(("body", "field"), [
    (b"[" * 100_000 + b"]" * 100_000, "body"),  # would be a RecursionError in json.loads
    (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "body"),
    (b"[" * 500_000, "body"),  # unbalanced: json.loads' RecursionError is the fallback
    (b'[{"amt_credit": [[[[1]]]]}]', "body"),
    (b'{"amt_credit": [[1]]}', "amt_credit"),  # shallow enough to be named
    (json.dumps([[{"amt_credit": 1}]]).encode(), "[0]"),
])
def test_deep_nesting_is_refused_naming_body_or_the_field(service: PdService, body: bytes, field: str) -> None:
    status, payload = post(service, body)
    assert status in (400, 422) and field in named_fields(status, payload), payload


@pytest.mark.parametrize(("body", "deep"), [
    (b'[{"a": 1, "b": "x"}]', False), (b"[[[[1]]]]", False), (b"[[[[[1]]]]]", True),
    (b'{"a": {"b": {"c": {"d": {}}}}}', True), (b'{"a": "[[[[[[[[[[[["}', False),
    (b'{"a": "\\"[[[[[["}', False), (b'[1, [2, [3, [4, [5]]]]]', True), (b'["]", [[[[[]]]]]]', True),
    (b"[" * 20, False),  # unbalanced: left to json.loads
    (json.dumps([{"x": "a[b]{c}", "y": 'q"[[[[['} for _ in range(50)]).encode(), False),
    (json.dumps([[[[["deep"]]]]]).encode("utf-16"), True),  # checked on the UTF-8 bytes by parse()
])
def test_depth_scan(body: bytes, deep: bool) -> None:
    if body.startswith(b"\xff\xfe"):
        parser = PARSER
        with pytest.raises(RequestError) as err:
            parser.parse(body)
        assert err.value.errors[0]["error"].startswith(f"JSON nested deeper than {MAX_JSON_DEPTH}")
        return
    assert too_deep(body) is deep
    assert too_deep(body, limit=50) is False


@pytest.mark.parametrize("token", ["1e400", "-1e400", "1e308", "-1e308", "NaN", "1e30", str(2**64)])
@pytest.mark.parametrize("name", [f.name for f in NUMERIC])
def test_huge_numbers_are_refused_naming_the_field(name: str, token: str) -> None:
    parser = PARSER
    row = {**base_row(), name: PLACEHOLDER}
    with pytest.raises(RequestError) as err:
        parser.parse(dumps_with(row, token))
    assert err.value.status == 422 and [e["field"] for e in err.value.errors] == [name]


def test_bounds_are_enforced_and_a_body_at_the_bounds_is_scored(service: PdService) -> None:
    parser = PARSER
    for f in NUMERIC:
        assert f.min_value is not None and f.max_value is not None
        for value in (f.min_value, f.max_value):
            (parsed,), _ = parser.parse(json.dumps({**base_row(), f.name: value}).encode())
            assert parsed[f.name] == value
        for value in (f.max_value + max(1, abs(f.max_value) * 1e-6), f.min_value - max(1, abs(f.min_value) * 1e-6)):
            if f.data_type != "double":
                value = int(value)
            with pytest.raises(RequestError) as err:
                parser.parse(json.dumps({**base_row(), f.name: value}).encode())
            assert [e["field"] for e in err.value.errors] == [f.name], (f.name, value)
    for pick in (0, 1):
        row = {**base_row(), **{f.name: (f.min_value, f.max_value)[pick] for f in NUMERIC}}
        status, payload = post(service, json.dumps(row).encode())
        assert status == 200 and 0 <= payload["pd"] <= 1, payload


def test_application_id_is_bounded() -> None:
    parser = PARSER
    for body in ({ID_FIELD: 0}, {ID_FIELD: 2**63}, {**base_row(), ID_FIELD: -3}, {**base_row(), ID_FIELD: 2**63}):
        with pytest.raises(RequestError) as err:
            parser.parse(json.dumps(body).encode())
        assert [e["field"] for e in err.value.errors] == [ID_FIELD]
    assert parser.parse(json.dumps({ID_FIELD: 2**63 - 1}).encode())[0] == [{ID_FIELD: 2**63 - 1}]


# ---------------------------------------------------------------------- the contract's bounds
def test_every_numeric_feature_has_both_bounds_and_says_where_they_come_from() -> None:
    assert len(NUMERIC) > 50
    for f in NUMERIC:
        assert f.min_value is not None and f.max_value is not None, f.name
        assert math.isfinite(f.min_value) and math.isfinite(f.max_value) and f.min_value < f.max_value, f.name
        assert abs(f.min_value) < 3e38 and abs(f.max_value) < 3e38, f.name  # the scorer's float32 matrix
        assert f.bounds_source, f.name
        if f.data_type != "double":
            assert type(f.min_value) is int and type(f.max_value) is int, f.name


def test_bounds_follow_the_silver_contracts() -> None:
    app, bureau, cards = TABLES["application"], TABLES["bureau"], TABLES["credit_card_balance"]

    def rng(table: Any, column: str) -> tuple[float, float]:
        c = table.column(column)
        assert c.min is not None and c.max is not None
        return c.min, c.max

    def bounds(name: str) -> tuple[float | None, float | None]:
        return BY_NAME[name].min_value, BY_NAME[name].max_value

    for name in ("amt_income_total", "amt_credit", "amt_annuity", "amt_goods_price", "cnt_children",
                 "region_rating_client", "ext_source_1", "ext_source_2", "ext_source_3"):
        assert bounds(name) == rng(app, name.upper()), name
    credit, income, annuity, goods = (rng(app, c) for c in ("AMT_CREDIT", "AMT_INCOME_TOTAL", "AMT_ANNUITY",
                                                            "AMT_GOODS_PRICE"))
    for name, (num, den) in {"credit_income_ratio": (credit, income), "annuity_income_ratio": (annuity, income),
                             "credit_term_years": (credit, annuity), "goods_credit_ratio": (goods, credit)}.items():
        assert bounds(name) == pytest.approx((num[0] / den[1], num[1] / den[0])), name
    assert bounds("age_years") == AGE_RANGE
    lo_days, hi_days = rng(app, "DAYS_EMPLOYED")
    lo_years, hi_years = bounds("years_employed")
    assert lo_years is not None and hi_years is not None
    assert lo_years <= -(hi_days - 1) / 365.25 and hi_years >= -lo_days / 365.25  # 365243 itself is null
    assert bounds("bureau_max_days_overdue") == (0, rng(bureau, "CREDIT_DAY_OVERDUE")[1])
    assert bounds("cc_dpd_max") == (0, rng(cards, "SK_DPD")[1])
    assert bounds("bureau_total_debt")[1] == rng(bureau, "AMT_CREDIT_SUM_DEBT")[1] * bounds("bureau_credit_count")[1]
    assert bounds("prev_amt_credit_mean") == rng(TABLES["previous_application"], "AMT_CREDIT")


def test_features_doc_lists_every_feature_with_the_catalogue_bounds() -> None:
    doc = (DOCS / "features.md").read_text()
    rows = {m.group(1): [c.strip() for c in m.group(2).split("|")]
            for m in re.finditer(r"^\| `([a-z0-9_]+)` \|(.*)\|$", doc, flags=re.MULTILINE)}
    assert list(rows) == [f.name for f in FEATURES]
    for f in FEATURES:
        data_type, lo, hi, source = rows[f.name][:4]
        assert data_type == f.data_type, f.name
        assert (float(lo) if lo else None, float(hi) if hi else None) == (f.min_value, f.max_value), f.name
        assert source == f.bounds_source, f.name
