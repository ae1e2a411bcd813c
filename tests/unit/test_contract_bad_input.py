"""Bad input at the contract level (``lib.contract``): what each kind of bad landing file turns
into before Dagster is involved.

Why: the bad-input matrix (tests/dagster/test_bad_input.py, the table in README.md) promises
the user a message naming the file and the column, or a documented acceptance with a note. These
tests pin the pieces that produce those messages and notes: the encoding error's line and
column, the delimiter and decimal-comma handling, conflicting labels, and the helpers behind the
notes (unseen categories, labels for unknown ids, labels corrected by a later file).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain_assets.lib.data.contract import (
    LandingFileError,
    Violation,
    check_frame,
    read_table,
    relabelled,
    unknown_ids,
    unseen_categories,
)


def features(frame: pd.DataFrame) -> object:
    return check_frame(frame, kind="features", id_column="id", numerical=["x"], categorical=["c"])


def labels(frame: pd.DataFrame, kind: str = "labels"):
    return check_frame(
        frame,
        kind=kind,
        id_column="id",
        numerical=["x"],
        categorical=["c"],
        target_column="y",
    )


def rules(report) -> set[tuple[str, str | None]]:
    return {(v.rule, v.column) for v in report.violations}


# --- encodings ---------------------------------------------------------------------------------


def test_latin1_csv_error_names_line_column_and_bytes(tmp_path):
    path = tmp_path / "2024-01-01.csv"
    path.write_bytes("id,x,c\n1,0.5,a\n2,1.5,café\n".encode("latin-1"))

    with pytest.raises(LandingFileError) as info:
        read_table(path)

    error = info.value
    assert error.rule == "encoding" and error.column == "c"
    assert str(error).startswith(f"{path}: column 'c': not UTF-8 text: line 3: b'caf\\xe9'")
    assert "save the file as UTF-8" in str(error)
    assert error.violation() == Violation("encoding", "c", error.reason)


def test_latin1_in_a_semicolon_csv_finds_the_column_by_its_delimiter(tmp_path):
    path = tmp_path / "2024-01-01.csv"
    path.write_bytes("id;c;x\n1;Zürich;0,5\n".encode("latin-1"))

    with pytest.raises(LandingFileError) as info:
        read_table(path)

    assert info.value.column == "c" and "line 2" in info.value.reason


def test_latin1_in_the_header_names_the_header_not_a_column(tmp_path):
    path = tmp_path / "2024-01-01.csv"
    path.write_bytes("id,größe\n1,2\n".encode("latin-1"))

    with pytest.raises(LandingFileError) as info:
        read_table(path)

    assert info.value.column is None
    assert "line 1 (the header)" in str(info.value)


def test_utf16_csv_says_so(tmp_path):
    path = tmp_path / "2024-01-01.csv"
    path.write_bytes("id,c\n1,a\n".encode("utf-16"))

    with pytest.raises(LandingFileError, match="UTF-16 byte-order mark") as info:
        read_table(path)

    assert info.value.rule == "encoding" and str(path) in str(info.value)


# --- empty and unreadable files ----------------------------------------------------------------


def test_zero_byte_file_is_rule_empty(tmp_path):
    path = tmp_path / "2024-01-01.parquet"
    path.write_bytes(b"")

    with pytest.raises(LandingFileError) as info:
        read_table(path)

    assert info.value.rule == "empty" and info.value.column is None
    assert str(info.value) == f"{path}: the file is empty (no header, no rows)"


def test_header_only_csv_is_an_empty_batch():
    report = features(pd.DataFrame({"id": [], "x": [], "c": []}))

    assert rules(report) == {("empty", None)}


def test_corrupt_parquet_is_unreadable(tmp_path):
    path = tmp_path / "2024-01-01.parquet"
    pd.DataFrame({"id": range(100), "x": 0.5}).to_parquet(path)
    path.write_bytes(path.read_bytes()[:-40])  # a truncated upload

    with pytest.raises(LandingFileError) as info:
        read_table(path)

    assert info.value.rule == "unreadable"
    assert str(info.value).startswith(f"{path}: cannot read as parquet:")


# --- delimiters --------------------------------------------------------------------------------


def test_semicolon_csv_with_decimal_commas_reads_numbers(tmp_path):
    path = tmp_path / "2024-01-01.csv"
    path.write_text("id;x;c\n1;0,5;a\n2;1234,25;b\n", encoding="utf-8")

    frame = read_table(path)

    assert frame["x"].tolist() == [0.5, 1234.25]
    assert features(frame).ok


def test_semicolon_csv_with_decimal_points_still_checks_as_numbers(tmp_path):
    path = tmp_path / "2024-01-01.csv"
    path.write_text("id;x;c\n1;0.5;a\n2;1.5;b\n", encoding="utf-8")

    report = features(read_table(path))

    assert report.ok, report.violations
    assert report.frame["x"].tolist() == [0.5, 1.5]


def test_tab_csv(tmp_path):
    path = tmp_path / "2024-01-01.csv"
    path.write_text("id\tx\tc\n1\t0.5\ta b\n", encoding="utf-8")

    report = features(read_table(path))

    assert report.ok and report.frame["c"].tolist() == ["a b"]


def test_unknown_delimiter_gives_one_column_and_a_hint(tmp_path):
    path = tmp_path / "2024-01-01.csv"
    path.write_text("id:x:c\n1:0.5:a\n", encoding="utf-8")

    report = features(read_table(path))

    assert rules(report) == {
        ("missing_column", "id"),
        ("missing_column", "x"),
        ("missing_column", "c"),
    }
    assert all("separated by , ; tab or |" in v.detail for v in report.violations)


def test_one_missing_column_has_no_delimiter_hint():
    report = features(pd.DataFrame({"id": [1], "x": [0.5]}))

    assert rules(report) == {("missing_column", "c")}
    assert "separated" not in report.violations[0].detail


# --- labels ------------------------------------------------------------------------------------


def test_conflicting_labels_in_one_file_name_the_id_column_and_the_ids():
    report = labels(pd.DataFrame({"id": [5, 6, 5, 7], "y": [0, 1, 1, 0]}))

    assert rules(report) == {("duplicate_ids", "id"), ("conflicting_labels", "id")}
    conflict = next(v for v in report.violations if v.rule == "conflicting_labels")
    assert conflict.detail.startswith("1 id(s) have different 'y' values in this file, e.g. [5]")


def test_the_same_label_twice_is_a_duplicate_not_a_conflict():
    # 1, 1.0 and "1" are the same label once normalised
    report = labels(pd.DataFrame({"id": [5, 5, 5], "y": pd.Series([1, 1.0, "1"], dtype=object)}))

    assert rules(report) == {("duplicate_ids", "id")}


def test_conflicting_labels_in_the_reference_set_too():
    frame = pd.DataFrame({"id": [1, 1], "x": [0.5, 0.5], "c": ["a", "a"], "y": [0, 1]})

    assert ("conflicting_labels", "id") in rules(labels(frame, kind="reference"))


def test_no_conflict_check_when_the_target_is_unusable():
    report = labels(pd.DataFrame({"id": [5, 5], "y": [1, None]}))

    assert rules(report) == {("duplicate_ids", "id"), ("null_target", "y")}


def test_relabelled_compares_with_the_newest_earlier_label():
    earlier = pd.DataFrame({"id": [1, 2, 3, 2], "y": [0, 0, 1, 1], "day": ["d1", "d1", "d1", "d2"]})
    new = pd.DataFrame({"id": [2, 3, 1, 9], "y": [1, 0, 1, 0]})

    changed = relabelled(new, earlier, "id", "y")

    assert changed.to_dict("records") == [
        {"id": 3, "day": "d1", "before": 1, "after": 0},
        {"id": 1, "day": "d1", "before": 0, "after": 1},
    ]


@pytest.mark.parametrize("empty", ["labels", "earlier"])
def test_relabelled_with_nothing_to_compare(empty):
    frame = pd.DataFrame({"id": [1], "y": [0], "day": ["d1"]})
    nothing = frame.iloc[:0]
    new, earlier = (nothing, frame) if empty == "labels" else (frame[["id", "y"]], nothing)

    assert list(relabelled(new, earlier, "id", "y").columns) == ["id", "day", "before", "after"]
    assert relabelled(new, earlier, "id", "y").empty


def test_unknown_ids_counts_and_shows_some():
    n, examples = unknown_ids(pd.Series([1, 2, 99, 98, np.nan]), pd.Series([1, 2, 3]))

    assert n == 2 and examples == [99.0, 98.0]


# --- unseen categories -------------------------------------------------------------------------


def test_unseen_categories_per_column_missing_values_are_not_unseen():
    frame = pd.DataFrame({"c": ["a", "new", None, "new", "b"], "d": ["3", "4", "3", "3", "3"]})

    found = unseen_categories(frame, {"c": ["a", "b"], "d": ["3", "4"], "absent": ["x"]})

    assert found == {"c": (2, ["new"])}


def test_unseen_categories_compare_as_text():
    report = features(pd.DataFrame({"id": [1, 2], "x": [0.5, 0.5], "c": [3, 7]}))

    assert unseen_categories(report.frame, {"c": ["3"]}) == {"c": (1, ["7"])}


@pytest.mark.parametrize("positive", [1, "1"])
def test_mixed_type_labels_are_one_label_each(positive):
    # An object column holding 1, 1.0 and "1" (e.g. concatenated exports): text comparison made
    # 1.0 a negative, silently flipping the label.
    frame = pd.DataFrame({"id": [1, 2, 3, 4], "y": pd.Series([1, 1.0, "1", "0"], dtype=object)})

    report = check_frame(
        frame,
        kind="labels",
        id_column="id",
        numerical=["x"],
        categorical=[],
        target_column="y",
        positive_label=positive,
    )

    assert report.ok, report.violations
    assert report.frame["y"].tolist() == [1, 1, 1, 0]
