"""mlci.dashboard.core: the dashboard's logic without Streamlit (schema helpers, CSV checks, chunks, result tables)."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from mlci.dashboard import core

SCHEMA = {
    "features": [
        {"name": "age", "type": "numeric", "min": 18, "max": 120, "categories": None, "nullable": False},
        {"name": "income", "type": "numeric", "min": 0, "max": None, "categories": None, "nullable": True},
        {
            "name": "region",
            "type": "categorical",
            "min": None,
            "max": None,
            "categories": ["north", "south"],
            "nullable": False,
        },
    ],
    "max_batch": 2,
    "example": {"age": 30.0, "income": 1000.0, "region": "north"},
}


# -- plain logic -----------------------------------------------------------------------------------
def test_range_text_and_steps():
    age, income, region = SCHEMA["features"]
    assert core.range_text(age) == "18 ≤ x ≤ 120"
    assert core.range_text(income) == "≥ 0; may be empty"
    assert core.range_text(region) == "one of: north, south"
    assert core.numeric_step(age, 30) == 1.0
    assert core.numeric_step(income, 0.02) == pytest.approx(0.0001)


def test_record_from_form_types_the_values():
    record = core.record_from_form(SCHEMA, {"age": 40, "income": None, "region": "south"})
    assert record == {"age": 40.0, "income": None, "region": "south"}
    assert isinstance(record["age"], float)


def test_check_csv_accepts_good_rows_and_keeps_extra_columns():
    check = core.check_csv(b"id,age,income,region\n1,30,100,north\n2,40,,south\n", SCHEMA)
    assert check.ok and not check.errors
    assert check.records == [
        {"age": 30.0, "income": 100.0, "region": "north"},
        {"age": 40.0, "income": None, "region": "south"},
    ]
    assert check.warnings == ["columns the model does not use (kept in the results, not sent): id"]


@pytest.mark.parametrize(
    "text, problem",
    [
        (b"", "the file is empty"),
        (b"age,region\n30,north\n", "missing columns the model needs: income"),
        (b"age,income,region\n", "the file has a header but no rows"),
        (b"age,income,region\nold,1,north\n", "column 'age': not a number in rows 1"),
        (b"age,income,region\n30,1,north\n10,1,north\n", "column 'age': outside 18 ≤ x ≤ 120 in rows 2"),
        (b"age,income,region\n30,1,east\n", "column 'region': values east are not one of north, south"),
        (b"age,income,region\n,1,north\n", "column 'age': empty values in rows 1 (this feature is required)"),
    ],
)
def test_check_csv_names_what_is_wrong(text, problem):
    check = core.check_csv(text, SCHEMA)
    assert not check.ok
    assert problem in check.errors


def test_check_csv_reads_semicolons_too():
    assert core.check_csv("age;income;region\n30;1;north\n", SCHEMA).ok


def test_chunks_stay_within_the_limit():
    records = [{"i": i} for i in range(5)]
    assert [(offset, len(chunk)) for offset, chunk in core.chunks(records, 2)] == [(0, 2), (2, 2), (4, 1)]
    assert core.max_batch({"max_batch": -3}) == 1 and core.max_batch({}) == 100


def test_results_frame_adds_prediction_columns():
    source = pd.read_csv(io.StringIO("id,age\n1,30\n2,40\n"))
    out = core.results_frame(
        source, ["no", "yes"], [{"no": 0.9, "yes": 0.1}, {"no": 0.2, "yes": 0.8}], ["no", "yes"], ["1", "1"]
    )
    assert list(out.columns) == ["id", "age", "prediction", "p_no", "p_yes", "model_version"]
    assert list(out["p_yes"]) == [0.1, 0.8]


def test_model_key_and_primary_metric():
    version = {
        "name": "m",
        "version": "2",
        "run_id": "r",
        "colour": "green",
        "environment": "staging",
        "metrics": {"roc_auc": 0.9, "accuracy": 0.8},
        "primary_metric": "roc_auc",
    }
    assert core.model_key(version) == ("m", "2", "r", "green")
    assert core.describe(version) == "m v2 (green, staging)"
    assert core.primary_metric(version) == ("roc_auc", 0.9)
    assert core.primary_metric({"metrics": {}}) == (None, None)


# -- the CSV check ------------------------------------------------------------------------------------
ODD_SCHEMA = {
    "features": [
        {"name": "a", "type": "numeric", "min": None, "max": None, "nullable": False},
        {"name": "b", "type": "numeric", "min": None, "max": 5, "nullable": False},
        {"name": "note", "type": "categorical", "categories": None, "nullable": True},
    ],
    "max_batch": "lots",
}


def test_schema_texts_and_limits_for_odd_schemas():
    a, b, note = ODD_SCHEMA["features"]
    assert core.range_text(a) == "any number"
    assert core.range_text(b) == "≤ 5"
    assert core.range_text(note) == "any text"
    assert core.max_batch(ODD_SCHEMA) == 100  # a limit that is not a number: the default, not a crash


@pytest.mark.parametrize(
    "text, problem",
    [
        (b'a,b,note\n"1,2\n', "not a readable CSV"),
        (b"a,b,note\n1,2,x,9\n", "not a readable CSV"),  # more fields than the header: never shift values
        (b"a,a,b,note\n1,2,3,x\n", "duplicated columns: a"),
        (b"a,b,note\ninf,1,x\n-inf,2,y\n3,1e999,z\n", "column 'a': not a finite number in rows 1, 2"),
        (b"a,b,note\ninf,1,x\n-inf,2,y\n3,1e999,z\n", "column 'b': not a finite number in rows 3"),
    ],
)
def test_check_csv_refuses_what_would_be_sent_wrong(text, problem):
    check = core.check_csv(text, ODD_SCHEMA)
    assert not check.ok and not check.records
    assert any(problem in e for e in check.errors), check.errors


def test_check_csv_reads_a_one_column_file_and_short_rows():
    one = {"features": [ODD_SCHEMA["features"][0]]}
    assert core.check_csv(b"a\n1\n2\n", one).records == [{"a": 1.0}, {"a": 2.0}]
    check = core.check_csv(b"a,b,note\n1,2\n", ODD_SCHEMA)  # a short row: the missing field is empty
    assert check.records == [{"a": 1.0, "b": 2.0, "note": None}]


def test_check_csv_bounds_the_rows_it_takes():
    check = core.check_csv(b"a,b,note\n" + b"1,2,x\n" * 6, ODD_SCHEMA, max_rows=5)
    assert "6 rows is over the dashboard's limit of 5; split the file" in check.errors
