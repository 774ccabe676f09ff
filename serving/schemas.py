"""Request validation for ``POST /v1/predict`` (features) and ``POST /v1/decide`` (the raw application).

``/v1/predict``: the fields are the served models' own features, in the champion's order (the feature
list recorded with the model in MLflow, ``TrainedModel.features``); the feature contract (the dbt model's
YAML, ``gold.catalogue``) gives each the constraints its tests state: types, ``not_null`` (required when a
served model uses it), ``between`` (range) and ``accepted_values``. A contract feature no served model
uses may be sent: checked, ignored. A model feature the contract no longer has is typed from the model
(category: text, else a number) with the magnitude cap below. Every client mistake becomes a
:class:`RequestError` with a 4xx status and one entry per bad field.

``/v1/decide``: ``{"application": {...}, "bureau": [...], "bureau_balance": [...]}``, each record's keys
columns of its source table's contract (``creditrisk_assets/contracts``) and its values JSON scalars,
turned into text as bronze keeps landed values; silver's own rules then judge them (``gold.online``).

Hostile bodies are refused before they reach anything that could fail: the body size first, then the
nesting depth (a byte-level scan, no parsing: a legit body is a list of objects of scalars), then
``json.loads`` (a ``RecursionError`` is still caught, should the scan ever be bypassed), then the
model: every numeric feature has bounds from the contract (``docs/features.md``), and a numeric field
the contract leaves unbounded still gets a float32- / int64-safe magnitude cap, so no huge number
reaches the scorer. ``RequestParser.parse`` raises nothing but :class:`RequestError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from creditrisk_assets.gold.catalogue import Feature, features
from creditrisk_assets.gold.online import APPLICATION, REQUEST_TABLES, RawDecision, raw_text, request_columns

ID_FIELD = "sk_id_curr"
ID_RANGE = (1, 2**63 - 1)  # the contract's SK_ID_CURR >= 1, stored as a bigint
_TYPES: dict[str, type] = {"double": float, "bigint": int, "integer": int, "varchar": str}
#: the magnitude cap of a numeric field without a contract bound: what its column type (and the
#: scorer's float32 matrix, max ~3.4e38) can hold
_MAGNITUDE: dict[str, float | int] = {"double": 1e30, "bigint": 2**63 - 1, "integer": 2**31 - 1}
#: deepest accepted nesting of JSON containers: the list (1) of objects (2) of scalars; one more level
#: lets a field holding a list or object be refused by name (``amt_credit: [[1]]``)
MAX_JSON_DEPTH = 4
_NOT_STRUCTURAL = bytes(b for b in range(256) if b not in b'[]{}"\\')
_OBJECTS_AS_LISTS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


@dataclass
class RequestError(Exception):
    """A client mistake: HTTP ``status`` and one ``{"field", "error"}`` entry per problem."""

    status: int
    errors: list[dict[str, str]] = field(default_factory=list)

    def body(self, request_id: str) -> dict[str, Any]:
        return {"request_id": request_id, "errors": self.errors}


def _int_range(values: tuple[Any, ...]) -> tuple[int, int] | None:
    """(lo, hi) when the accepted values are a run of integers (a strict int range then, since a
    Literal would let ``true`` and ``1.0`` through as equal to 1)."""
    if values and all(type(v) is int for v in values) and sorted(values) == list(range(min(values), max(values) + 1)):
        return min(values), max(values)
    return None


def _annotation(f: Feature) -> Any:
    if f.accepted_values and _int_range(f.accepted_values) is None:
        return Literal[tuple(f.accepted_values)]  # type: ignore[valid-type]
    return _TYPES[f.data_type]


def _field(f: Feature, required: bool) -> Any:
    extra: dict[str, Any] = {"description": f.description}
    lo, hi = _int_range(f.accepted_values) or (f.min_value, f.max_value)
    cap = _MAGNITUDE.get(f.data_type)
    if cap is not None:  # a number is never unbounded, whatever the contract says
        lo, hi = -cap if lo is None else lo, cap if hi is None else hi
    if lo is not None:
        extra["ge"] = lo
    if hi is not None:
        extra["le"] = hi
    if f.data_type == "varchar":
        extra["max_length"] = 200
    if f.data_type == "double":
        extra["allow_inf_nan"] = False
    return Field(... if required else None, **extra)


def _model_feature(name: str, categorical: Collection[str]) -> Feature:
    """A served model's feature the contract does not describe: typed from the model alone."""
    return Feature(name, "varchar" if name in categorical else "double", "a feature of the served model", "")


def application_model(catalogue: list[Feature] | None = None, used: Sequence[str] | None = None,
                      categorical: Collection[str] = ()) -> type[BaseModel]:
    """The pydantic model of one application: the served models' features by name (``used``, in their order;
    None: every contract feature), strictly typed, then the contract's other features (optional, checked,
    ignored), nothing else. ``categorical``: the models' text features (for ones the contract lacks)."""
    catalogue = features() if catalogue is None else catalogue
    by_name = {f.name: f for f in catalogue}
    names = list(dict.fromkeys([*(used or []), *by_name]))
    fields: dict[str, Any] = {ID_FIELD: (int | None, Field(None, ge=ID_RANGE[0], le=ID_RANGE[1],
                                                           description="application id (logged pseudonymised)"))}
    for name in names:
        f = by_name.get(name) or _model_feature(name, categorical)
        ann = _annotation(f)
        required = f.required and (used is None or name in used)
        fields[name] = (ann if required else ann | None, _field(f, required))
    config = ConfigDict(extra="forbid", strict=True)
    return create_model("Application", __config__=config, **fields)


def too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON containers in ``body`` nest deeper than ``limit``, told without parsing it.

    Byte operations only (C speed, a small fraction of ``json.loads``): keep the brackets outside
    strings (a string's brackets are text), then peel the innermost ``[]``/``{}`` pairs ``limit``
    times; a pair still left was deeper. Broken JSON (unbalanced) is left to ``json.loads``."""
    skeleton = body.translate(None, _NOT_STRUCTURAL)
    if b"\\" not in skeleton:
        # no escapes: each string is the run between two successive quotes, so when removing the
        # adjacent quote pairs leaves no quote, no string held a bracket (the usual case)
        skeleton = skeleton.replace(b'""', b"")
    if b'"' in skeleton:  # a string holds a bracket or an escape: strip the strings properly (rare)
        skeleton = _STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    skeleton = skeleton.translate(_OBJECTS_AS_LISTS)
    for _ in range(limit):
        if not skeleton:
            return False
        skeleton = skeleton.replace(b"[]", b"")
    return b"[]" in skeleton


def _where(loc: tuple[Any, ...], prefix: str) -> str:
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


_TOO_DEEP = (f"JSON nested deeper than {MAX_JSON_DEPTH} levels (or unbalanced brackets): a body is one "
             "application (an object of scalar values) or a list of them")


def load_body(body: bytes, max_body_bytes: int) -> Any:
    """The parsed JSON of a request body, refused (``RequestError``) before parsing when too large or too deeply
    nested, and when it is not JSON."""
    if len(body) > max_body_bytes:
        raise RequestError(413, [{"field": "body", "error": f"body is {len(body)} bytes; at most "
                                                              f"{max_body_bytes} are accepted"}])
    if b"\x00" in body[:4]:  # UTF-16/32 (json.loads accepts them): scan the UTF-8 bytes instead
        try:
            body = body.decode(json.detect_encoding(body)).encode()
        except UnicodeError as exc:
            raise RequestError(400, [{"field": "body", "error": f"malformed JSON: {exc}"}]) from None
    if too_deep(body):
        raise RequestError(422, [{"field": "body", "error": _TOO_DEEP}])
    try:
        return json.loads(body)
    except RecursionError:  # openers never closed (`[[[[…`) pass the scan: json.loads stops them here
        raise RequestError(400, [{"field": "body", "error": _TOO_DEEP}]) from None
    except ValueError as exc:  # UnicodeDecodeError too; and an int of more than 4300 digits
        raise RequestError(400, [{"field": "body", "error": f"malformed JSON: {exc}"}]) from None


class RequestParser:
    """Bytes in, validated applications out (or a RequestError naming every bad field)."""

    def __init__(self, max_rows: int, max_body_bytes: int, catalogue: list[Feature] | None = None,
                 used: Sequence[str] | None = None, categorical: Collection[str] = ()) -> None:
        self.model = application_model(catalogue, used, categorical)
        self.used = None if used is None else tuple(used)
        self.validator = self.model.__pydantic_validator__
        self.feature_names = [n for n in self.model.model_fields if n != ID_FIELD]
        self.max_rows, self.max_body_bytes = max_rows, max_body_bytes

    def parse(self, body: bytes) -> tuple[list[dict[str, Any]], bool]:
        """(applications, single): each application is a dict of feature values, or ``{sk_id_curr}``
        alone when features are to come from the feature store. ``single`` when the body was one object."""
        data = load_body(body, self.max_body_bytes)
        single = isinstance(data, dict)
        rows = [data] if single else data
        if not isinstance(rows, list):
            raise RequestError(422, [{"field": "body", "error": "expected one application (a JSON object) or a "
                                                                "list of them"}])
        if not rows:
            raise RequestError(422, [{"field": "body", "error": "the list of applications is empty"}])
        if len(rows) > self.max_rows:
            raise RequestError(422, [{"field": "body", "error": f"{len(rows)} applications; at most "
                                                                f"{self.max_rows} per request"}])
        out: list[dict[str, Any]] = []
        errors: list[dict[str, str]] = []
        for i, row in enumerate(rows):
            prefix = "" if single else f"[{i}]"
            if not isinstance(row, dict):
                errors.append({"field": prefix or "body", "error": "expected a JSON object"})
                continue
            if set(row) == {ID_FIELD}:  # id only: features come from the feature store
                app_id = row[ID_FIELD]
                if type(app_id) is not int or not ID_RANGE[0] <= app_id <= ID_RANGE[1]:
                    errors.append({"field": _where((ID_FIELD,), prefix),
                                   "error": f"expected an integer id in [{ID_RANGE[0]}, {ID_RANGE[1]}]"})
                else:
                    out.append(row)
                continue
            try:
                out.append(self.validator.validate_python(row).__dict__)
            except ValidationError as exc:
                errors += [{"field": _where(e["loc"], prefix), "error": e["msg"], "type": e["type"]}
                           for e in exc.errors(include_url=False, include_input=False)]
        if errors:
            raise RequestError(422, errors)
        return out, single


_TOP_LEVEL = (f"a decision request is an object: {APPLICATION} (one record) and optionally "
              + ", ".join(t for t in REQUEST_TABLES if t != APPLICATION) + " (lists of records)")


def _key(name: str) -> str:
    """An unknown key as an error names it: as sent, quoted (JSON) unless a plain name; never over 100 characters."""
    return name[:100] if re.fullmatch(r"\w{1,100}", name, re.ASCII) else json.dumps(name)[:100]


class DecideParser:
    """Bytes in, one raw decision request out (values as text, per contract column), or a RequestError naming
    every bad field as the request spells it: ``application.AMT_CREDIT``, ``bureau[3].CREDIT_ACTIVE``. What
    the values mean (types, ranges, allowed values) silver's rules judge later, in ``gold.online``."""

    def __init__(self, max_body_bytes: int, max_records: int = 10_000) -> None:
        self.columns = request_columns()
        self.max_body_bytes, self.max_records = max_body_bytes, max_records

    def parse(self, body: bytes) -> RawDecision:
        data = load_body(body, self.max_body_bytes)
        if not isinstance(data, dict):
            raise RequestError(422, [{"field": "body", "error": _TOP_LEVEL}])
        errors: list[dict[str, str]] = []
        for key in data:
            if key not in self.columns:
                errors.append({"field": _key(key), "error": f"unknown key; {_TOP_LEVEL}"})
        if APPLICATION not in data:
            errors.append({"field": APPLICATION, "error": "missing: the application to decide"})
            data = {**data, APPLICATION: {}}
        rows: dict[str, list[dict[str, str | None]]] = {}
        for table, columns in self.columns.items():
            value = data.get(table)
            if value is None and table != APPLICATION:  # null: no records pulled
                continue
            if table == APPLICATION and not isinstance(value, dict):
                errors.append({"field": table, "error": "expected one record (a JSON object)"})
                continue
            if table != APPLICATION and not isinstance(value, list):
                errors.append({"field": table, "error": "expected a list of records (JSON objects)"})
                continue
            records: list[Any] = [value] if isinstance(value, dict) else list(value or [])
            if len(records) > self.max_records:
                errors.append({"field": table, "error": f"{len(records)} records; at most {self.max_records}"})
                continue
            rows[table] = []
            for i, record in enumerate(records):
                where = table if table == APPLICATION else f"{table}[{i}]"
                if not isinstance(record, dict):
                    errors.append({"field": where, "error": "expected a record (a JSON object)"})
                    continue
                row: dict[str, str | None] = {}
                for name, v in record.items():
                    if name not in columns:
                        errors.append({"field": f"{where}.{_key(name)}",
                                       "error": f"unknown field: not a column of the {table} contract"})
                        continue
                    try:
                        row[name] = raw_text(v)
                    except TypeError as exc:
                        errors.append({"field": f"{where}.{name}", "error": str(exc)})
                rows[table].append(row)
        if errors:
            raise RequestError(422, errors)
        return RawDecision(rows)
