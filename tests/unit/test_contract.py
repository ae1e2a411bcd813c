"""Tests for reading landing files and holding them to the data contract (``lib.contract``).

Why: this module is the gate between whatever the user drops into the landing folder and
everything downstream (drift reports, training sets, models). A file that cannot be read must fail
with the file's name; a broken rule must name the rule and the column; and a batch that passes
must come out with the dtypes the training code relies on (floats, str/None categories, an int8
0/1 target). A silent mis-normalisation here poisons every later step without an error.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain_assets.lib.data.contract import (
    BatchReport,
    LandingFileError,
    Violation,
    check_frame,
    find_file,
    landing_day,
    read_table,
)


def features(frame: pd.DataFrame, **kwargs) -> BatchReport:
    """check_frame for a features batch with numerical x and categorical c."""
    args = {"kind": "features", "id_column": "id", "numerical": ["x"], "categorical": ["c"]}
    return check_frame(frame, **{**args, **kwargs})


def labels(frame: pd.DataFrame, positive_label: object = 1) -> BatchReport:
    return check_frame(
        frame,
        kind="labels",
        id_column="id",
        numerical=["x"],
        categorical=["c"],
        target_column="y",
        positive_label=positive_label,
    )


def rules(report: BatchReport) -> set[tuple[str, str | None]]:
    return {(v.rule, v.column) for v in report.violations}


CLEAN = pd.DataFrame({"id": [1, 2, 3], "x": [0.5, 1.5, 2.5], "c": ["a", "b", "a"]})


# --- read_table --------------------------------------------------------------------------------


def test_reads_comma_csv(tmp_path):
    path = tmp_path / "2024-01-01.csv"
    path.write_text("id,x,c\n1,0.5,a\n2,1.5,b\n", encoding="utf-8")

    frame = read_table(path)

    assert list(frame.columns) == ["id", "x", "c"]
    assert frame["x"].tolist() == [0.5, 1.5]


def test_reads_semicolon_csv(tmp_path):
    path = tmp_path / "2024-01-01.csv"
    path.write_text("id;x;c\n1;0.5;a\n2;1.5;b\n", encoding="utf-8")

    frame = read_table(path)

    assert list(frame.columns) == ["id", "x", "c"]
    assert frame["id"].tolist() == [1, 2]
    assert frame["c"].tolist() == ["a", "b"]


def test_utf8_bom_does_not_end_up_in_the_first_column_name(tmp_path):
    path = tmp_path / "reference.csv"
    path.write_bytes("id,c\n1,café\n".encode("utf-8-sig"))

    frame = read_table(path)

    assert list(frame.columns) == ["id", "c"]
    assert frame["c"].tolist() == ["café"]


def test_reads_parquet(tmp_path):
    path = tmp_path / "2024-01-01.parquet"
    CLEAN.to_parquet(path)

    pd.testing.assert_frame_equal(read_table(path), CLEAN)


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_non_utf8_csv_is_a_landing_file_error_naming_the_file(tmp_path, encoding):
    path = tmp_path / "2024-01-01.csv"
    path.write_bytes("id,c\n1,café\n2,Zürich\n".encode(encoding))

    with pytest.raises(LandingFileError) as info:
        read_table(path)

    assert str(path) in str(info.value)
    assert "not UTF-8" in str(info.value)


def test_random_bytes_in_parquet_is_a_landing_file_error_naming_the_file(tmp_path):
    path = tmp_path / "2024-01-01.parquet"
    path.write_bytes(np.random.default_rng(0).bytes(512))

    with pytest.raises(LandingFileError) as info:
        read_table(path)

    assert str(path) in str(info.value)
    assert "cannot read as parquet" in str(info.value)


def test_empty_csv_is_a_landing_file_error_naming_the_file(tmp_path):
    path = tmp_path / "2024-01-01.csv"
    path.write_bytes(b"")

    with pytest.raises(LandingFileError) as info:
        read_table(path)

    assert str(path) in str(info.value)


def test_empty_csv_error_says_the_file_is_empty(tmp_path):
    path = tmp_path / "2024-01-01.csv"
    path.write_bytes(b"")

    with pytest.raises(LandingFileError, match="the file is empty"):
        read_table(path)


def test_unsupported_extension_is_a_landing_file_error(tmp_path):
    path = tmp_path / "2024-01-01.xlsx"
    path.write_bytes(b"whatever")

    with pytest.raises(LandingFileError, match="unsupported extension"):
        read_table(path)


@pytest.mark.parametrize("name", ["gone.csv", "gone.parquet"])
def test_missing_file_is_file_not_found_not_a_contract_error(tmp_path, name):
    with pytest.raises(FileNotFoundError):
        read_table(tmp_path / name)


# --- find_file / landing_day -------------------------------------------------------------------


def test_find_file_returns_the_one_file_or_none(tmp_path):
    (tmp_path / "reference.parquet").write_bytes(b"")

    assert find_file(tmp_path, "reference") == tmp_path / "reference.parquet"
    assert find_file(tmp_path, "2024-01-01") is None


def test_find_file_with_csv_and_parquet_for_one_stem_raises(tmp_path):
    (tmp_path / "x.csv").write_text("id\n1\n")
    (tmp_path / "x.parquet").write_bytes(b"")

    with pytest.raises(LandingFileError) as info:
        find_file(tmp_path, "x")

    assert "x.csv" in str(info.value)
    assert "x.parquet" in str(info.value)


@pytest.mark.parametrize(
    ("name", "day"),
    [
        ("2024-01-31.parquet", dt.date(2024, 1, 31)),
        ("2024-01-31.csv", dt.date(2024, 1, 31)),
        ("2024-02-29.pq", dt.date(2024, 2, 29)),
        ("2024-02-30.csv", None),
        ("notes.txt", None),
        ("2024-01-31.txt", None),
        ("2024-1-31.csv", None),
        ("reference.csv", None),
    ],
)
def test_landing_day(name, day):
    assert landing_day(Path("landing/features") / name) == day


# --- check_frame: the clean case ---------------------------------------------------------------


def test_clean_features_batch_has_no_violations():
    report = features(CLEAN, max_null_rate=0.2)

    assert report.ok
    assert report.violations == []
    assert report.ignored_columns == []
    assert report.null_rates == {"x": 0.0, "c": 0.0}
    assert report.frame["x"].dtype == np.float64
    assert report.message("f.csv") == ""


def test_clean_reference_batch_normalises_every_column():
    frame = pd.DataFrame(
        {
            "id": [1, 2],
            "ts": ["2024-01-01 10:00:00", "2024-01-02 11:30:00"],
            "x": [1, 2],
            "c": ["a", None],
            "y": [0, 1],
        }
    )

    report = check_frame(
        frame,
        kind="reference",
        id_column="id",
        numerical=["x"],
        categorical=["c"],
        target_column="y",
        timestamp_column="ts",
    )

    assert report.ok, report.violations
    out = report.frame
    assert out["x"].dtype == np.float64
    assert pd.api.types.is_datetime64_any_dtype(out["ts"])
    assert out["ts"].iloc[1] == pd.Timestamp("2024-01-02 11:30:00")
    assert out["y"].dtype == np.int8
    assert out["c"].tolist() == ["a", None]


def test_input_frame_is_not_modified():
    frame = pd.DataFrame({"id": [1], "x": ["1.5"], "c": [3], "extra": [0]})
    before = frame.copy()

    features(frame)

    pd.testing.assert_frame_equal(frame, before)


# --- check_frame: each rule --------------------------------------------------------------------


def test_missing_column_names_the_column():
    report = features(CLEAN.drop(columns=["c"]))

    assert rules(report) == {("missing_column", "c")}
    assert "c" not in report.frame.columns


def test_missing_target_in_labels_batch():
    report = labels(pd.DataFrame({"id": [1, 2]}))

    assert rules(report) == {("missing_column", "y")}


def test_empty_batch():
    report = features(CLEAN.iloc[:0])

    assert rules(report) == {("empty", None)}
    assert report.null_rates == {"x": 0.0, "c": 0.0}


def test_null_id():
    frame = CLEAN.assign(id=[1.0, np.nan, 3.0])

    assert rules(features(frame)) == {("null_id", "id")}


def test_duplicate_ids():
    report = features(CLEAN.assign(id=[7, 7, 3]))

    assert rules(report) == {("duplicate_ids", "id")}
    assert "7" in report.violations[0].detail


def test_several_null_ids_are_not_duplicates():
    frame = CLEAN.assign(id=[np.nan, np.nan, 3.0])

    assert rules(features(frame)) == {("null_id", "id")}


def test_non_numeric_text_in_numeric_column_is_wrong_dtype():
    report = features(CLEAN.assign(x=["1.5", "abc", "2"]))

    assert rules(report) == {("wrong_dtype", "x")}
    assert "'abc'" in report.violations[0].detail
    assert "row 1" in report.violations[0].detail


def test_bool_numeric_column_is_wrong_dtype():
    report = features(CLEAN.assign(x=[True, False, True]))

    assert rules(report) == {("wrong_dtype", "x")}


def test_datetime_numeric_column_is_wrong_dtype():
    report = features(CLEAN.assign(x=pd.to_datetime(["2024-01-01"] * 3)))

    assert rules(report) == {("wrong_dtype", "x")}


def test_unparseable_timestamp_is_wrong_dtype():
    frame = CLEAN.assign(ts=["2024-01-01", "garbage", None])

    report = features(frame, timestamp_column="ts")

    assert rules(report) == {("wrong_dtype", "ts")}
    assert report.violations[0].detail.startswith("1 ")


def test_null_rate_over_the_limit():
    report = features(CLEAN.assign(c=["a", None, None]), max_null_rate=0.5)

    assert rules(report) == {("null_rate", "c")}
    assert report.null_rates["c"] == pytest.approx(2 / 3)


def test_null_rate_at_the_limit_is_allowed():
    report = features(CLEAN.assign(x=[np.nan, 1.0, 2.0], c=["a", "b", None]), max_null_rate=1 / 3)

    assert report.ok, report.violations


def test_all_nan_column_violates_null_rate():
    report = features(CLEAN.assign(x=[np.nan] * 3), max_null_rate=0.2)

    assert rules(report) == {("null_rate", "x")}
    assert report.null_rates["x"] == 1.0


def test_null_target():
    report = labels(pd.DataFrame({"id": [1, 2, 3], "y": [1, None, 0]}))

    assert rules(report) == {("null_target", "y")}


def test_three_target_values_violate_target_values():
    report = labels(pd.DataFrame({"id": [1, 2, 3], "y": ["a", "b", "c"]}), positive_label="a")

    assert rules(report) == {("target_values", "y")}


def test_violation_describe_names_source_rule_and_column():
    report = features(CLEAN.assign(id=[7, 7, 3]))

    message = report.message("landing/features/2024-01-01.csv")

    assert message.startswith("landing/features/2024-01-01.csv: column 'id': duplicate_ids:")
    assert Violation("empty", None, "no rows").describe("f.csv") == "f.csv: file: empty: no rows"


# --- check_frame: normalisation ----------------------------------------------------------------


def test_extra_columns_are_dropped_and_listed():
    report = features(CLEAN.assign(note="hi", y=[0, 1, 0]))

    assert report.ok
    assert report.ignored_columns == ["note", "y"]
    assert list(report.frame.columns) == ["id", "x", "c"]


def test_labels_batch_ignores_feature_columns():
    frame = pd.DataFrame({"id": [1, 2], "y": [1, 0], "x": [1.0, 2.0]})

    report = labels(frame)

    assert report.ok
    assert list(report.frame.columns) == ["id", "y"]
    assert report.ignored_columns == ["x"]
    assert report.null_rates == {}


def test_categorical_ints_become_strings():
    report = features(CLEAN.assign(c=[3, 4, 3]))

    assert report.frame["c"].tolist() == ["3", "4", "3"]
    assert all(type(v) is str for v in report.frame["c"])


def test_categorical_missing_values_become_none():
    report = features(CLEAN.assign(c=pd.Series(["a", np.nan, pd.NA], dtype=object)))

    assert report.frame["c"].tolist() == ["a", None, None]
    assert report.frame["c"].dtype == object


def test_string_numbers_in_csv_become_floats(tmp_path):
    path = tmp_path / "2024-01-01.csv"
    path.write_text('id,x,c\n1,"1.5",a\n2,2,b\n3,abc,c\n', encoding="utf-8")
    frame = read_table(path).iloc[:2]
    assert frame["x"].dtype == object  # the 'abc' row made pandas keep text

    report = features(frame)

    assert report.ok, report.violations
    assert report.frame["x"].dtype == np.float64
    assert report.frame["x"].tolist() == [1.5, 2.0]


def test_csv_round_trip_through_read_table_and_check_frame(tmp_path):
    path = tmp_path / "2024-01-01.csv"
    path.write_text("id;x;c;extra\n1;0.5;a;z\n2;;b;z\n3;2.5;;z\n", encoding="utf-8")

    report = features(read_table(path), max_null_rate=0.5)

    assert report.ok, report.violations
    assert report.ignored_columns == ["extra"]
    assert report.frame["x"].isna().tolist() == [False, True, False]
    assert report.frame["c"].tolist() == ["a", "b", None]


@pytest.mark.parametrize(
    ("values", "positive", "expected"),
    [
        (["yes", "no", "yes"], "yes", [1, 0, 1]),
        ([1, 0, 0], 1, [1, 0, 0]),
        (["1", "0", "0"], 1, [1, 0, 0]),
        ([True, False, True], True, [1, 0, 1]),
        (["bad", "good", "good"], "bad", [1, 0, 0]),
    ],
    ids=["yes-no", "ints", "text-ints", "bools", "words"],
)
def test_binary_target_is_normalised_to_int8(values, positive, expected):
    report = labels(pd.DataFrame({"id": [1, 2, 3], "y": values}), positive_label=positive)

    assert report.ok, report.violations
    assert report.frame["y"].dtype == np.int8
    assert report.frame["y"].tolist() == expected


def test_single_class_target_is_allowed():
    report = labels(pd.DataFrame({"id": [1, 2], "y": [0, 0]}))

    assert report.ok
    assert report.frame["y"].tolist() == [0, 0]


# --- bugs --------------------------------------------------------------------------------------


def test_float_target_matches_integer_positive_label():
    report = labels(pd.DataFrame({"id": [1, 2, 3], "y": [1.0, 0.0, 1.0]}), positive_label=1)

    assert report.frame["y"].tolist() == [1, 0, 1]


def test_target_without_the_positive_label_among_two_values_is_a_violation():
    report = labels(pd.DataFrame({"id": [1, 2, 3], "y": ["Y", "N", "Y"]}), positive_label="yes")

    assert ("target_values", "y") in rules(report)


def test_integer_categories_do_not_depend_on_missing_values(tmp_path):
    full, gappy = tmp_path / "2024-01-01.csv", tmp_path / "2024-01-02.csv"
    full.write_text("id,x,c\n1,1,3\n2,1,4\n", encoding="utf-8")
    gappy.write_text("id,x,c\n1,1,3\n2,1,\n", encoding="utf-8")

    assert features(read_table(full)).frame["c"].tolist() == ["3", "4"]
    assert features(read_table(gappy)).frame["c"].tolist() == ["3", None]


@pytest.mark.parametrize(
    "stamps",
    [
        ["2024-01-01 10:00:00.250000", "2024-01-01 11:00:00", "2024-01-01 12:00:00"],
        ["2024-01-01 10:00:00", "2024-01-02", "2024-01-03 12:00:00"],
    ],
    ids=["fractional-seconds", "date-only"],
)
def test_iso_timestamps_of_mixed_precision_are_accepted(stamps):
    report = features(CLEAN.assign(ts=stamps), timestamp_column="ts")

    assert report.ok, report.violations
    assert report.frame["ts"].tolist() == [pd.Timestamp(s) for s in stamps]


def test_epoch_seconds_timestamps_are_not_silently_read_as_1970():
    frame = CLEAN.assign(ts=[1704067200, 1704153600, 1704240000])

    report = features(frame, timestamp_column="ts")

    assert not report.ok or report.frame["ts"].dt.year.min() > 1970
