"""``creditrisk import table``: mapping checks, value maps, scales, time placement, rejects and accounting.

The lender's table is built from the simulator's own application file (columns renamed, a default flag
added, two columns only a lender has), imported through real DuckDB into a real folder store.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml  # type: ignore[import-untyped]

from creditrisk_assets.contracts import APPLICATION
from creditrisk_assets.ingest.landing_writer import spread_decision_time
from creditrisk_assets.ingest.mapping import (
    BAD_ID,
    BAD_TIME,
    ID_BELOW_BASE,
    MALFORMED,
    MISSING_ID,
    MISSING_LABEL,
    MISSING_TIME,
    UNKNOWN_LABEL,
    MappingError,
    SourceError,
    import_table,
    load_mapping,
    main,
    parse_mapping,
)
from creditrisk_assets.layout import import_rejected_key, import_report_key
from creditrisk_assets.resources import FolderStore, ObjectStore
from creditrisk_assets.settings import Settings
from creditrisk_assets.simulate import SimulationConfig, simulate

START = "2026-10-01T00:00"
#: what a lender calls the columns the test renames (everything else keeps its contract name)
OWN = {"SK_ID_CURR": "LOAN_ID", "DECISION_TIME": "APPLIED_AT", "AMT_INCOME_TOTAL": "MONTHLY_INCOME",
       "CODE_GENDER": "GENDER"}
DELAY = 5


def lender_table(sim_store: ObjectStore, out: Path, hours: int = 3, rows_per_hour: int = 20, seed: int = 3) -> Path:
    """One CSV as a lender has it: the simulator's applications with its own column names, monthly
    income, gender as words, the default flag (Y/N, the simulator's true outcome), a branch and notes."""
    simulate(SimulationConfig(start=START, hours=hours, rows_per_hour=rows_per_hour, seed=seed,
                              tables=["application"], run_name="lender"), sim_store)
    files = ", ".join(f"'{sim_store.uri(o.key)}'" for o in sim_store.list("landing/application/"))
    con = duckdb.connect()
    con.execute(f"CREATE TABLE a AS SELECT * FROM read_csv([{files}], all_varchar = true, header = true, "
                "union_by_name = true)")
    keep = [c for c, *_ in con.execute("DESCRIBE a").fetchall() if c not in OWN]
    con.execute(f"""COPY (
        SELECT a.SK_ID_CURR AS LOAN_ID, a.DECISION_TIME AS APPLIED_AT,
               CASE t.TARGET WHEN 1 THEN 'Y' ELSE 'N' END AS DEFAULTED,
               CAST(CAST(a.AMT_INCOME_TOTAL AS DOUBLE) / 12 AS VARCHAR) AS MONTHLY_INCOME,
               CASE a.CODE_GENDER WHEN 'F' THEN 'female' WHEN 'M' THEN 'male' ELSE 'unknown' END AS GENDER,
               {', '.join(f'a."{c}"' for c in keep)},
               CASE WHEN CAST(a.SK_ID_CURR AS BIGINT) % 2 = 0 THEN 'north' ELSE 'south' END AS BRANCH,
               'called twice, promised to pay' AS NOTES
        FROM a JOIN read_parquet('{sim_store.uri("oracle/lender/truth.parquet")}') AS t
          ON t.SK_ID_CURR = CAST(a.SK_ID_CURR AS BIGINT)
        ORDER BY CAST(a.SK_ID_CURR AS BIGINT)) TO '{out}' (FORMAT csv, HEADER true)""")
    return out


def header(path: Path) -> list[str]:
    return path.read_text().splitlines()[0].split(",")


def lender_mapping(columns: list[str], **changes: Any) -> dict[str, Any]:
    """The mapping of a ``lender_table`` file (as the YAML loader gives it: every scalar as text)."""
    raw: dict[str, Any] = {
        "id": "LOAN_ID",
        "decision_time": {"column": "APPLIED_AT"},
        "label": {"column": "DEFAULTED", "positive": ["1", "Y"], "negative": ["0", "N"],
                  "outcome_delay_hours": str(DELAY)},
        "columns": {"MONTHLY_INCOME": {"to": "AMT_INCOME_TOTAL", "scale": "12"},
                    "GENDER": {"to": "CODE_GENDER", "values": {"female": "F", "male": "M", "unknown": "XNA"}},
                    "BRANCH": "bronze", "NOTES": "drop"},
    }
    for c in columns:
        if c not in (*OWN.values(), "DEFAULTED", "BRANCH", "NOTES"):
            raw["columns"][c] = c  # shorthand: same name in the contract
    raw.update(changes)
    return raw


def write_mapping(path: Path, raw: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture()
def sim_store(tmp_path: Path) -> ObjectStore:
    return FolderStore(tmp_path / "simulated")


@pytest.fixture()
def lender(sim_store: ObjectStore, tmp_path: Path) -> Path:
    return lender_table(sim_store, tmp_path / "loans.csv")


def landed(store: ObjectStore, table: str) -> list[dict[str, Any]]:
    """Every landed row of ``table`` with its landing hour (text values, as landed)."""
    rows = []
    for o in store.list(f"landing/{table}/"):
        con = duckdb.connect()
        rel = con.execute(f"SELECT * FROM read_csv('{store.uri(o.key)}', all_varchar = true, header = true)")
        names = [d[0] for d in rel.description]
        hour = dt.datetime.strptime("/".join(o.key.split("/")[2:4]), "%Y-%m-%d/%H")
        rows += [{**dict(zip(names, r, strict=True)), "_hour": hour} for r in rel.fetchall()]
    return rows


def source_rows(path: Path) -> dict[str, dict[str, Any]]:
    con = duckdb.connect()
    rel = con.execute(f"SELECT * FROM read_csv('{path}', all_varchar = true, header = true)")
    names = [d[0] for d in rel.description]
    return {r[0]: dict(zip(names, r, strict=True)) for r in rel.fetchall()}


# ---------------------------------------------------------------------------------------- the mapping


def test_the_lender_mapping_is_valid_and_yaml_text_stays_text(lender: Path, tmp_path: Path) -> None:
    raw = lender_mapping(header(lender))
    raw["label"]["positive"] = ["yes", "Y"]
    raw["label"]["negative"] = ["no", "N"]
    path = tmp_path / "m.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False).replace("'yes'", "yes").replace("'no'", "no"))
    assert "- yes" in path.read_text()  # unquoted: a YAML 1.1 boolean to most loaders
    m = load_mapping(path)
    assert m.label is not None and m.label.positive == ("yes", "Y") and m.label.negative == ("no", "N")
    assert m.label.outcome_delay_hours == DELAY
    income = next(c for c in m.columns if c.source == "MONTHLY_INCOME")
    assert (income.to, income.scale) == ("AMT_INCOME_TOTAL", 12.0)
    assert m.bronze == ("BRANCH",) and m.drop == ("NOTES",)


def _without_required(raw: dict[str, Any]) -> dict[str, Any]:
    first = next(c.name for c in APPLICATION.columns if c.required and c.name in raw["columns"])
    raw["columns"].pop(first)
    return raw


def _set(path: str, value: Any) -> Any:
    def change(raw: dict[str, Any]) -> dict[str, Any]:
        node = raw
        *parents, last = path.split(".")
        for p in parents:
            node = node[p]
        if value is None:
            node.pop(last)
        else:
            node[last] = value
        return raw
    return change


@pytest.mark.parametrize(("change", "where", "says"), [
    (_set("table", "application"), "table", "unknown key"),
    (_set("id", None), "id", "missing"),
    (_set("decision_time", {"column": "APPLIED_AT", "start": START}), "decision_time", "either"),
    (_set("decision_time", {"start": START, "per_hour": "many"}), "decision_time.per_hour", "integer"),
    (_set("decision_time", {"start": "2026-10-01T00:30", "per_hour": "10"}), "decision_time.start", "hour"),
    (_set("decision_time", {"start": START}), "decision_time.per_hour", "missing"),
    (_set("decision_time", {"start": START, "per_hour": "3600"}), "decision_time.per_hour", "at most 3599"),
    (_set("decision_time", {"column": "APPLIED_AT", "format": "%Q"}), "decision_time.format", "%Q"),
    (_set("label.negative", ["N", "Y"]), "label", "both positive and negative"),
    (_set("label.outcome_delay_hours", "-1"), "label.outcome_delay_hours", "integer >= 0"),
    (_set("label.outcome_delay_hours", None), "label.outcome_delay_hours", "missing"),
    (_set("label.column", "LOAN_ID"), "label.column", "already id"),
    (_set("columns.MONTHLY_INCOME", {"to": "MONTHLY_INCOME_EUR"}), "columns.MONTHLY_INCOME.to",
     "creditrisk_assets/contracts/application.yml"),
    (_set("columns.MONTHLY_INCOME", {"to": "SK_ID_CURR"}), "columns.MONTHLY_INCOME.to", "comes from id"),
    (_set("columns.GENDER", {"to": "CODE_GENDER", "scale": "2"}), "columns.GENDER.scale", "int / float"),
    (_set("columns.MONTHLY_INCOME", {"to": "AMT_INCOME_TOTAL", "scale": "0"}), "columns.MONTHLY_INCOME.scale",
     "non-zero"),
    (_set("columns.MONTHLY_INCOME", {"to": "AMT_CREDIT"}), "columns.", "already the target"),
    (_set("columns.MONTHLY_INCOME", {"scale": "12"}), "columns.MONTHLY_INCOME", "missing to"),
    (_set("columns.GENDER", {"to": "CODE_GENDER", "values": "F"}), "columns.GENDER.values", "mapping"),
    (_set("columns.NOTES", "bronz"), "columns.NOTES.to", "bronz is not a column"),
    (_set("columns.APPLIED_AT", "bronze"), "columns.APPLIED_AT", "already used as decision_time.column"),
    (_set("columns.EMAIL", "bronze"), "columns.EMAIL", "the contract column EMAIL"),
    (_without_required, "columns", "requires"),
])
def test_mapping_errors_are_one_line_naming_file_and_key(lender: Path, change: Any, where: str, says: str) -> None:
    raw = change(copy.deepcopy(lender_mapping(header(lender))))
    with pytest.raises(MappingError) as err:
        parse_mapping(raw, "lender.yml")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"lender.yml: {where}"), message
    assert says in message, message


def test_missing_required_columns_are_listed_in_one_line(lender: Path) -> None:
    raw = lender_mapping(header(lender))
    required = [c.name for c in APPLICATION.columns if c.required and c.name in raw["columns"]][:3]
    for name in required:
        raw["columns"].pop(name)
    with pytest.raises(MappingError, match="requires " + ", ".join(required) + ":"):
        parse_mapping(raw, "lender.yml")


def test_every_column_of_the_file_must_be_in_the_mapping(lender: Path, folder_store: ObjectStore,
                                                         settings: Settings) -> None:
    raw = lender_mapping(header(lender))
    del raw["columns"]["BRANCH"], raw["columns"]["NOTES"]
    with pytest.raises(MappingError, match=r"^lender.yml: columns: 2 column\(s\) of loans.csv not in the mapping: "
                                           r"BRANCH, NOTES; map each"):
        import_table(lender, parse_mapping(raw, "lender.yml"), folder_store, settings)
    raw = lender_mapping(header(lender))
    raw["columns"]["branch"] = raw["columns"].pop("BRANCH")
    with pytest.raises(MappingError, match="columns.branch: branch is not a column of loans.csv; did you mean BRANCH"):
        import_table(lender, parse_mapping(raw, "lender.yml"), folder_store, settings)
    assert folder_store.list("") == [], "nothing is written for a mapping that does not fit"


def test_bronze_columns_are_refused_under_the_reject_policy(lender: Path, tmp_path: Path) -> None:
    strict = Settings.from_env({"CREDITRISK_HOME": str(tmp_path / "strict"), "CREDITRISK_SCHEMA_POLICY": "reject"})
    with pytest.raises(MappingError, match="columns.BRANCH: kept in bronze, but the application schema policy is reject"):
        import_table(lender, parse_mapping(lender_mapping(header(lender)), "m.yml"), FolderStore(tmp_path / "s"),
                     strict)


# ---------------------------------------------------------------------------------------- landing


def test_import_lands_mapped_scaled_and_value_mapped_columns(lender: Path, folder_store: ObjectStore,
                                                             settings: Settings) -> None:
    report = import_table(lender, parse_mapping(lender_mapping(header(lender)), "m.yml"), folder_store, settings,
                          import_id="t1")
    source = source_rows(lender)
    apps = landed(folder_store, "application")
    assert len(apps) == len(source) == report.tables["application"].written == 60
    for row in apps:
        src = source[row["SK_ID_CURR"]]
        decision = dt.datetime.strptime(row["DECISION_TIME"], "%Y-%m-%dT%H:%M:%S")
        assert row["DECISION_TIME"] == src["APPLIED_AT"] and row["_hour"] == decision.replace(minute=0, second=0)
        assert float(row["AMT_INCOME_TOTAL"]) == pytest.approx(float(src["MONTHLY_INCOME"]) * 12, rel=1e-12)
        assert row["CODE_GENDER"] == {"female": "F", "male": "M", "unknown": "XNA"}[src["GENDER"]]
        assert row["BRANCH"] == src["BRANCH"], "bronze columns land under their own name"
        assert "NOTES" not in row and "MONTHLY_INCOME" not in row and "DEFAULTED" not in row
        assert row["EXT_SOURCE_2"] == src["EXT_SOURCE_2"]  # mapped as is: the text is kept
    outcomes = landed(folder_store, "loan_outcome")
    assert len(outcomes) == len(source) == report.tables["loan_outcome"].written
    for row in outcomes:
        src = source[row["SK_ID_CURR"]]
        assert row["TARGET"] == {"Y": "1", "N": "0"}[src["DEFAULTED"]]
        due = dt.datetime.strptime(src["APPLIED_AT"], "%Y-%m-%dT%H:%M:%S") + dt.timedelta(hours=DELAY)
        assert row["OUTCOME_TIME"] == f"{due:%Y-%m-%dT%H:%M:%S}" and row["_hour"] == due.replace(minute=0, second=0)
    assert {"0", "1"} == {r["TARGET"] for r in outcomes}
    assert report.hours == sorted({r["_hour"] for r in apps + outcomes})
    stored = json.loads(folder_store.get_bytes(import_report_key("table", "t1")))
    assert stored["tables"]["application"]["read"] == 60 and stored["tables"]["application"]["rejected_total"] == 0
    assert stored["bronze_only"] == ["BRANCH"] and stored["dropped"] == ["NOTES"]


def test_parquet_source_lands_the_same_rows_as_csv(lender: Path, tmp_path: Path, settings: Settings) -> None:
    parquet = tmp_path / "loans.parquet"
    duckdb.connect().execute(f"COPY (SELECT * FROM read_csv('{lender}', all_varchar = true, header = true)) "
                             f"TO '{parquet}' (FORMAT parquet)")
    mapping = parse_mapping(lender_mapping(header(lender)), "m.yml")
    from_csv, from_parquet = FolderStore(tmp_path / "a"), FolderStore(tmp_path / "b")
    import_table(lender, mapping, from_csv, settings)
    import_table(parquet, mapping, from_parquet, settings)
    for table in ("application", "loan_outcome"):
        assert landed(from_csv, table) == landed(from_parquet, table)


def test_constant_decision_time_spreads_applications_by_id(lender: Path, folder_store: ObjectStore,
                                                           settings: Settings) -> None:
    raw = lender_mapping(header(lender), decision_time={"start": "2026-11-01T06:00", "per_hour": "7"})
    raw["columns"]["APPLIED_AT"] = "drop"
    report = import_table(lender, parse_mapping(raw, "m.yml"), folder_store, settings)
    ids = sorted(int(i) for i in source_rows(lender))
    assert report.id_base == ids[0]
    start = dt.datetime(2026, 11, 1, 6)
    apps = {int(r["SK_ID_CURR"]): r for r in landed(folder_store, "application")}
    assert sorted(apps) == ids
    for sk_id, row in apps.items():
        want = spread_decision_time(sk_id - ids[0], start, 7)
        assert row["DECISION_TIME"] == f"{want:%Y-%m-%dT%H:%M:%S}" and row["_hour"] == want.replace(second=0, minute=0)
    # the rule itself: 7 per hour, evenly spaced inside the hour, never on its boundary
    first_hour = [spread_decision_time(i - 100, start, 7) for i in range(100, 107)]
    assert {t.replace(minute=0, second=0) for t in first_hour} == {start}
    assert [int((t - start).total_seconds()) for t in first_hour] == [450, 900, 1350, 1800, 2250, 2700, 3150]
    assert spread_decision_time(107 - 100, start, 7) == start + dt.timedelta(hours=1, seconds=450)

    # an explicit id base: ids below it cannot be placed and are rejected with that reason
    raw["decision_time"]["id_base"] = str(ids[10])
    again = import_table(lender, parse_mapping(raw, "m.yml"), FolderStore(folder_store.uri("") + "/b"), settings)
    assert again.tables["application"].rejected == {ID_BELOW_BASE: 10}
    assert again.tables["application"].written == len(ids) - 10


def test_rows_that_cannot_be_placed_are_rejected_with_reasons(lender: Path, folder_store: ObjectStore,
                                                             settings: Settings, tmp_path: Path) -> None:
    """Bad ids, bad and missing decision times and a malformed line are rejected (application); an empty
    or unknown label lands the application without an outcome (loan_outcome); read = written + rejected."""
    lines = lender.read_text().splitlines()
    cols = lines[0].split(",")
    bad = tmp_path / "bad.csv"
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{lender}', all_varchar = true, header = true)")
    ids = [r[0] for r in con.execute("SELECT LOAN_ID FROM t ORDER BY rowid").fetchall()]
    edits = {ids[0]: ("LOAN_ID", "abc"), ids[1]: ("LOAN_ID", "-4"), ids[2]: ("LOAN_ID", None),
             ids[3]: ("APPLIED_AT", "yesterday"), ids[4]: ("APPLIED_AT", None),
             ids[5]: ("DEFAULTED", None), ids[6]: ("DEFAULTED", "maybe"), ids[7]: ("LOAN_ID", "7.5")}
    for sk_id, (column, value) in edits.items():
        con.execute(f'UPDATE t SET "{column}" = ? WHERE LOAN_ID = ?', [value, sk_id])
    con.execute(f"COPY (SELECT * FROM t ORDER BY rowid) TO '{bad}' (FORMAT csv, HEADER true)")
    with bad.open("a") as f:
        f.write(",".join(["1"] * (len(cols) + 2)) + "\n")  # two fields too many
    report = import_table(bad, parse_mapping(lender_mapping(cols), "m.yml"), folder_store, settings,
                          import_id="bad")
    app, out = report.tables["application"], report.tables["loan_outcome"]
    assert app.rejected == {BAD_ID: 3, MISSING_ID: 1, BAD_TIME: 1, MISSING_TIME: 1, MALFORMED: 1}
    assert (app.read, app.written) == (61, 61 - 7)
    assert out.rejected == {MISSING_LABEL: 1, UNKNOWN_LABEL: 1}
    assert (out.read, out.written) == (app.written, app.written - 2)
    for t in (app, out):
        assert t.read == t.written + t.rejected_total
    assert len(landed(folder_store, "application")) == app.written
    assert len(landed(folder_store, "loan_outcome")) == out.written

    con = duckdb.connect()
    rejected = con.execute(f"SELECT * FROM read_csv('{folder_store.uri(import_rejected_key('table', 'bad', 'application'))}', "
                           "all_varchar = true, header = true)").df()
    by_id = dict(zip(rejected["LOAN_ID"].fillna(""), rejected["_reason"], strict=True))
    assert by_id["abc"] == by_id["-4"] == by_id["7.5"] == BAD_ID
    assert rejected.loc[rejected["APPLIED_AT"] == "yesterday", "_reason"].tolist() == [BAD_TIME]
    assert rejected.loc[rejected["_reason"] == MALFORMED, "_source_line"].tolist() == [str(len(lines) + 1)]
    assert rejected.loc[rejected["_reason"] == MALFORMED, "_detail"].str.contains("TOO MANY COLUMNS").all()
    assert rejected.loc[rejected["LOAN_ID"] == "abc", "_detail"].tolist() == ["LOAN_ID is not a positive integer"]
    assert "NOTES" not in rejected.columns and "BRANCH" in rejected.columns  # dropped columns are never copied
    no_outcome = con.execute(f"SELECT * FROM read_csv('{folder_store.uri(import_rejected_key('table', 'bad', 'loan_outcome'))}', "
                             "all_varchar = true, header = true)").df()
    assert dict(zip(no_outcome["SK_ID_CURR"], no_outcome["_reason"], strict=True)) == {
        ids[5]: MISSING_LABEL, ids[6]: UNKNOWN_LABEL}
    assert no_outcome["DEFAULTED"].fillna("").tolist() == ["", "maybe"]
    stored = json.loads(folder_store.get_bytes(import_report_key("table", "bad")))
    assert stored["tables"]["application"]["rejected"] == app.rejected
    assert stored["tables"]["loan_outcome"]["reasons"][UNKNOWN_LABEL] == ("DEFAULTED is neither positive (1, Y) nor "
                                                                          "negative (0, N): no outcome")
    assert stored["rejected_keys"] == {"application": import_rejected_key("table", "bad", "application"),
                                       "loan_outcome": import_rejected_key("table", "bad", "loan_outcome")}


def test_time_formats_offsets_a_value_mapped_to_missing_and_no_label(lender: Path, folder_store: ObjectStore,
                                                                     settings: Settings, tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{lender}', all_varchar = true, header = true)")
    first, second = (r[0] for r in con.execute("SELECT LOAN_ID FROM t ORDER BY rowid LIMIT 2").fetchall())
    con.execute("UPDATE t SET APPLIED_AT = strftime(CAST(APPLIED_AT AS TIMESTAMP), '%d/%m/%Y %H:%M:%S')")
    other = tmp_path / "other.csv"
    con.execute(f"COPY (SELECT * FROM t ORDER BY rowid) TO '{other}' (FORMAT csv, HEADER true)")
    raw = lender_mapping(header(lender), decision_time={"column": "APPLIED_AT", "format": "%d/%m/%Y %H:%M:%S"})
    del raw["label"]  # no label: applications only
    raw["columns"]["DEFAULTED"] = "drop"
    raw["columns"]["GENDER"]["values"]["male"] = ""  # "" maps to missing
    report = import_table(other, parse_mapping(raw, "m.yml"), folder_store, settings)
    assert list(report.tables) == ["application"] and folder_store.list("landing/loan_outcome/") == []
    source = source_rows(lender)
    apps = landed(folder_store, "application")
    assert len(apps) == report.tables["application"].written == len(source)
    assert all(r["DECISION_TIME"] == source[r["SK_ID_CURR"]]["APPLIED_AT"] for r in apps)
    males = [r["CODE_GENDER"] for r in apps if source[r["SK_ID_CURR"]]["GENDER"] == "male"]
    assert males and set(males) == {None}
    assert {r["CODE_GENDER"] for r in apps if source[r["SK_ID_CURR"]]["GENDER"] == "female"} == {"F"}

    # an offset is honoured (UTC otherwise): 02:06 at +02:00 is 00:06 UTC, in hour 00
    con.execute(f"UPDATE t SET APPLIED_AT = '2026-10-05T02:06:00+02:00' WHERE LOAN_ID = '{first}'")
    con.execute(f"UPDATE t SET APPLIED_AT = '2026-10-05 02:06:00' WHERE LOAN_ID = '{second}'")
    con.execute(f"COPY (SELECT * FROM t WHERE LOAN_ID IN ('{first}', '{second}')) TO '{other}' (FORMAT csv, HEADER true)")
    raw["decision_time"] = {"column": "APPLIED_AT"}
    store = FolderStore(tmp_path / "offsets")
    import_table(other, parse_mapping(raw, "m.yml"), store, settings)
    times = {r["SK_ID_CURR"]: (r["DECISION_TIME"], r["_hour"]) for r in landed(store, "application")}
    assert times == {first: ("2026-10-05T00:06:00", dt.datetime(2026, 10, 5, 0)),
                     second: ("2026-10-05T02:06:00", dt.datetime(2026, 10, 5, 2))}


def test_rows_before_the_first_partition_are_refused(lender: Path, folder_store: ObjectStore,
                                                     settings: Settings) -> None:
    raw = lender_mapping(header(lender), decision_time={"start": "2026-09-30T23:00", "per_hour": "30"})
    raw["columns"]["APPLIED_AT"] = "drop"
    with pytest.raises(SourceError, match=r"hour 2026-09-30T23:00, before the first hourly partition "
                                          r"\(2026-10-01-00:00\).*CREDITRISK_PARTITIONS_START to 2026-09-30-23:00"):
        import_table(lender, parse_mapping(raw, "m.yml"), folder_store, settings)
    assert folder_store.list("") == []


def test_landing_files_are_not_overwritten_without_replace(lender: Path, folder_store: ObjectStore,
                                                           settings: Settings) -> None:
    mapping = parse_mapping(lender_mapping(header(lender)), "m.yml")
    first = import_table(lender, mapping, folder_store, settings)
    with pytest.raises(SourceError, match="landing file.*exist already.*--replace"):
        import_table(lender, mapping, folder_store, settings)
    again = import_table(lender, mapping, folder_store, settings, replace=True)
    assert again.tables["application"].files == first.tables["application"].files


# ---------------------------------------------------------------------------------------- command line


def test_cli_prints_counts_and_names_what_to_fix(lender: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CREDITRISK_HOME", str(tmp_path / "home"))
    mapping = write_mapping(tmp_path / "lender.yml", lender_mapping(header(lender)))
    assert main(["--source", str(lender), "--mapping", str(mapping), "--import-id", "cli", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "application: read 60, written 60" in out and "loan_outcome: read 60, written 60" in out
    assert "report: imports/table/cli/report.json" in out
    assert "female" not in out and "@" not in out  # counts only, never a value

    raw = lender_mapping(header(lender))
    raw["columns"]["GENDER"] = {"to": "SEX"}
    bad = write_mapping(tmp_path / "bad.yml", raw)
    assert main(["--source", str(lender), "--mapping", str(bad), "--replace"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{bad}: columns.GENDER.to: SEX is not a column" in err
    assert main(["--source", str(tmp_path / "loans.xlsx"), "--mapping", str(mapping)]) == 2
    assert "unsupported file type" in capsys.readouterr().err
