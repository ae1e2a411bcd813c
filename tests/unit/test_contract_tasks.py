"""Tests for the target's normalisation per model task in the data contract (``check_frame``).

Why: every later step reads the label batch and the reference target as the task wants them
(binary int8 0/1, multiclass text classes, regression float64); a target normalised the wrong way
(a class "3.0" next to "3", a label 12.5 read as text) breaks the metrics days later without an
error. And a target that cannot be normalised must fail here with the rule, the column and the
file named, so the user knows which file to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrain_assets.lib.data.contract import BatchReport, check_frame, read_table

SOURCE = Path("landing/labels/2024-01-02.csv")


def labels(y: list | pd.Series, task: str, ids: list | None = None, **kwargs) -> BatchReport:
    """check_frame for a labels batch (id, y) of ``task``."""
    frame = pd.DataFrame({"id": ids if ids is not None else list(range(len(y))), "y": y})
    return check_frame(
        frame,
        kind="labels",
        id_column="id",
        numerical=["x"],
        categorical=["c"],
        target_column="y",
        task=task,
        **kwargs,
    )


def only_violation(report: BatchReport) -> tuple[str, str | None, str]:
    assert len(report.violations) == 1, report.message(SOURCE)
    v = report.violations[0]
    return v.rule, v.column, v.detail


# --- binary: today's behaviour ------------------------------------------------------------------


def test_binary_is_the_default_task() -> None:
    frame = pd.DataFrame({"id": [1, 2, 3], "y": ["yes", "no", "yes"]})
    args: dict[str, Any] = {
        "kind": "labels",
        "id_column": "id",
        "target_column": "y",
        "positive_label": "yes",
    }
    default = check_frame(frame, numerical=[], categorical=[], **args)
    binary = check_frame(frame, numerical=[], categorical=[], **args, task="binary")
    assert default.ok and binary.ok
    pd.testing.assert_frame_equal(default.frame, binary.frame)
    assert binary.frame["y"].dtype == np.int8
    assert binary.frame["y"].tolist() == [1, 0, 1]


def test_binary_still_rejects_a_third_value() -> None:
    rule, column, detail = only_violation(labels([0, 1, 2], "binary"))
    assert (rule, column) == ("target_values", "y")
    assert "at most 2 values" in detail


def test_an_unknown_task_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        labels([1.0], "ranking")


# --- multiclass ---------------------------------------------------------------------------------


def test_multiclass_integer_valued_floats_become_text_without_point_zero() -> None:
    report = labels([1.0, 2.0, 3.0, 2.0], "multiclass")
    assert report.ok, report.message(SOURCE)
    assert report.frame["y"].dtype == object
    assert report.frame["y"].tolist() == ["1", "2", "3", "2"]


def test_multiclass_target_is_normalised_exactly_like_a_categorical_feature() -> None:
    values = [0, 2, 1, 2]
    target = labels(values, "multiclass").frame["y"]
    feature = check_frame(
        pd.DataFrame({"id": [1, 2, 3, 4], "c": values}),
        kind="features",
        id_column="id",
        numerical=[],
        categorical=["c"],
    ).frame["c"]
    assert target.tolist() == feature.tolist() == ["0", "2", "1", "2"]


def test_multiclass_text_labels_are_kept() -> None:
    report = labels(["late", "on_time", "early"], "multiclass")
    assert report.ok
    assert report.frame["y"].tolist() == ["late", "on_time", "early"]


def test_multiclass_one_class_in_a_batch_is_fine() -> None:
    report = labels(["late", "late"], "multiclass")
    assert report.ok, report.message(SOURCE)
    assert report.frame["y"].tolist() == ["late", "late"]


def test_multiclass_missing_label_is_null_target() -> None:
    report = labels(["late", None, "early"], "multiclass")
    assert only_violation(report) == ("null_target", "y", "1 row(s) without a label")
    assert report.message(SOURCE) == f"{SOURCE}: column 'y': null_target: 1 row(s) without a label"


def test_multiclass_all_missing_target_is_one_violation() -> None:
    report = labels([None, None, None], "multiclass")
    rule, column, detail = only_violation(report)
    assert (rule, column) == ("null_target", "y")
    assert detail == "the target is all missing: none of the 3 row(s) has a label"


def test_multiclass_conflicting_labels_per_id() -> None:
    report = labels(["late", "early", "late"], "multiclass", ids=[7, 7, 8])
    rules = {v.rule: v for v in report.violations}
    assert set(rules) == {"duplicate_ids", "conflicting_labels"}
    assert rules["conflicting_labels"].column == "id"
    assert "have different 'y' values in this file, e.g. [7]" in rules["conflicting_labels"].detail


def test_multiclass_same_label_written_two_ways_is_no_conflict() -> None:
    report = labels(pd.Series([3, "3"], dtype=object), "multiclass", ids=[7, 7])
    assert [v.rule for v in report.violations] == ["duplicate_ids"]


def test_multiclass_csv_integer_classes_read_as_text(tmp_path: Path) -> None:
    path = tmp_path / "2024-01-02.csv"
    path.write_text("id,y\n1,0\n2,2\n3,1\n", encoding="utf-8")
    report = labels(read_table(path)["y"], "multiclass", ids=[1, 2, 3])
    assert report.ok
    assert report.frame["y"].tolist() == ["0", "2", "1"]


# --- regression ---------------------------------------------------------------------------------


def test_regression_integers_become_float64() -> None:
    report = labels([3, 1, 2], "regression")
    assert report.ok
    assert report.frame["y"].dtype == np.float64
    assert report.frame["y"].tolist() == [3.0, 1.0, 2.0]


def test_regression_numbers_written_as_text_are_accepted() -> None:
    report = labels(pd.Series(["1.5", " 2 ", 3, "-4e1"], dtype=object), "regression")
    assert report.ok, report.message(SOURCE)
    assert report.frame["y"].dtype == np.float64
    assert report.frame["y"].tolist() == [1.5, 2.0, 3.0, -40.0]


def test_regression_decimal_comma_of_a_semicolon_csv(tmp_path: Path) -> None:
    path = tmp_path / "2024-01-02.csv"
    path.write_text("id;y\n1;12,5\n2;3,25\n", encoding="utf-8")
    report = labels(read_table(path)["y"], "regression", ids=[1, 2])
    assert report.ok
    assert report.frame["y"].tolist() == [12.5, 3.25]


def test_regression_non_numeric_value_is_wrong_dtype_naming_value_and_row() -> None:
    report = labels(pd.Series([1.0, 2.0, 3.0, "abc", "n/a"], dtype=object), "regression")
    rule, column, detail = only_violation(report)
    assert (rule, column) == ("wrong_dtype", "y")
    assert detail == (
        "2 non-numeric value(s), e.g. 'abc' at row 3: a regression target must be numbers"
    )


def test_regression_violation_names_the_file_and_column() -> None:
    report = labels(pd.Series([1.0, "abc"], dtype=object), "regression")
    assert report.message(SOURCE) == (
        f"{SOURCE}: column 'y': wrong_dtype: 1 non-numeric value(s), e.g. 'abc' at row 1: "
        "a regression target must be numbers"
    )


def test_regression_missing_value_is_null_target() -> None:
    report = labels([1.5, np.nan, 2.5], "regression")
    assert only_violation(report) == ("null_target", "y", "1 row(s) without a label")


def test_regression_all_missing_target_is_one_clear_violation() -> None:
    report = labels([np.nan, np.nan], "regression")
    assert only_violation(report) == (
        "null_target",
        "y",
        "the target is all missing: none of the 2 row(s) has a label",
    )
    assert "column 'y'" in report.message(SOURCE) and str(SOURCE) in report.message(SOURCE)


def test_regression_all_missing_text_column_is_one_violation_too() -> None:
    report = labels(pd.Series([None, None], dtype=object), "regression")
    rule, _, detail = only_violation(report)
    assert rule == "null_target" and "all missing" in detail


def test_regression_infinite_values_are_a_violation() -> None:
    report = labels([1.0, np.inf, 2.0, -np.inf], "regression")
    assert only_violation(report) == (
        "target_values",
        "y",
        "2 infinite value(s), e.g. inf at row 1: a regression target must be finite",
    )


def test_regression_infinity_written_as_text_is_caught() -> None:
    report = labels(pd.Series(["1", "inf"], dtype=object), "regression")
    assert only_violation(report)[0] == "target_values"


def test_regression_boolean_column_is_not_numbers() -> None:
    report = labels([True, False, True], "regression")
    assert only_violation(report) == (
        "wrong_dtype",
        "y",
        "3 boolean value(s), e.g. True at row 0: a regression target must be numbers",
    )


def test_regression_booleans_among_numbers_are_not_numbers() -> None:
    report = labels(pd.Series([1.5, True, 2.0], dtype=object), "regression")
    rule, column, detail = only_violation(report)
    assert (rule, column) == ("wrong_dtype", "y")
    assert detail.startswith("1 boolean value(s), e.g. True at row 1")


def test_regression_datetime_target_is_wrong_dtype() -> None:
    report = labels(pd.to_datetime(pd.Series(["2024-01-01"])), "regression")
    rule, column, detail = only_violation(report)
    assert (rule, column) == ("wrong_dtype", "y")
    assert detail.startswith("expected numbers, got dtype datetime64")


def test_regression_conflicting_labels_per_id() -> None:
    report = labels([1.5, 2.5, 1.5, 1.5], "regression", ids=[7, 7, 8, 8])
    conflicts = [v for v in report.violations if v.rule == "conflicting_labels"]
    assert len(conflicts) == 1
    assert "1 id(s) have different 'y' values in this file, e.g. [7]" in conflicts[0].detail


def test_regression_reference_batch_normalises_target_and_features() -> None:
    frame = pd.DataFrame({"id": [1, 2], "x": [0.5, 1.5], "c": [1.0, 2.0], "y": ["10", "20.5"]})
    report = check_frame(
        frame,
        kind="reference",
        id_column="id",
        numerical=["x"],
        categorical=["c"],
        target_column="y",
        task="regression",
    )
    assert report.ok, report.message(SOURCE)
    assert report.frame["y"].tolist() == [10.0, 20.5]
    assert report.frame["c"].tolist() == ["1", "2"]


def test_features_batch_has_no_target_to_normalise() -> None:
    report = check_frame(
        pd.DataFrame({"id": [1], "x": [0.5], "c": ["a"]}),
        kind="features",
        id_column="id",
        numerical=["x"],
        categorical=["c"],
        target_column="y",
        task="regression",
    )
    assert report.ok
    assert "y" not in report.frame
