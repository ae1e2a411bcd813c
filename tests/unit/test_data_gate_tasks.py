"""Tests for the data gate on multiclass and regression training sets (``check_training_set``).

Why: the binary rule "the rarest of 0/1 is >= 2 % of the train rows" says nothing about a
multiclass set whose class 'late' vanished from the training window (the model would never
predict it again) nor about a regression target that is constant (every metric looks perfect).
Each task's target rule must fail on its own defect, name it in the line the Dagster check shows,
and keep the list of rules the same length and order for a task, since it drives the metadata.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from retrain_assets.lib.training.data_gate import (
    RULES,
    TASK_RULES,
    GateSettings,
    RuleResult,
    check_training_set,
    rules_for,
    summary,
)
from retrain_assets.lib.training.fitting import DAY, SPLIT, TARGET

START = dt.date(2024, 1, 1)
FEATURES = ["amount", "region"]
N_TRAIN, N_TEST = 600, 100
CLASSES = ["early", "late", "on_time"]


def day(offset: int) -> str:
    return (START + dt.timedelta(days=offset)).isoformat()


def base_set() -> pd.DataFrame:
    """600 train rows on days 0-5, 100 test rows on day 6, unique ids, no target yet."""
    n = N_TRAIN + N_TEST
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "amount": rng.normal(size=n),
            "region": np.array(["north", "south", "east"], dtype=object)[np.arange(n) % 3],
            DAY: [day(i // 100) for i in range(n)],
            SPLIT: ["train"] * N_TRAIN + ["test"] * N_TEST,
        }
    )


def multiclass_set() -> pd.DataFrame:
    """Three text classes, a third of the rows each, in train and in test."""
    rows = base_set()
    rows[TARGET] = np.array(CLASSES, dtype=object)[np.arange(len(rows)) % 3]
    return rows


def regression_set() -> pd.DataFrame:
    rows = base_set()
    rows[TARGET] = np.random.default_rng(1).normal(50.0, 10.0, size=len(rows))
    return rows


def run(rows: pd.DataFrame, task: str, **kwargs) -> dict[str, RuleResult]:
    results = check_training_set(rows, id_column="id", features=FEATURES, task=task, **kwargs)
    assert [r.rule for r in results] == list(rules_for(task))
    return {r.rule: r for r in results}


def only_failure(rows: pd.DataFrame, task: str, **kwargs) -> RuleResult:
    failed = [r for r in run(rows, task, **kwargs).values() if not r.passed]
    assert len(failed) == 1, summary(failed)
    return failed[0]


def train_mask(rows: pd.DataFrame) -> pd.Series:
    return rows[SPLIT] == "train"


# --- the rule names per task --------------------------------------------------------------------


def test_binary_and_multiclass_share_the_rules_of_today() -> None:
    assert rules_for() == rules_for("binary") == rules_for("multiclass") == RULES


def test_regression_has_target_values_in_place_of_class_balance() -> None:
    regression = rules_for("regression")
    assert len(regression) == len(RULES)
    assert regression[RULES.index("class_balance")] == "target_values"
    assert [r for r in regression if r != "target_values"] == [
        r for r in RULES if r != "class_balance"
    ]
    assert set(TASK_RULES) == {"binary", "multiclass", "regression"}


def test_an_unknown_task_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        check_training_set(multiclass_set(), id_column="id", features=FEATURES, task="ranking")
    with pytest.raises(ValueError, match="unknown task"):
        rules_for("ranking")


def test_binary_default_ignores_expected_classes() -> None:
    rows = base_set().assign(**{TARGET: np.arange(N_TRAIN + N_TEST) % 2})
    default = check_training_set(rows, id_column="id", features=FEATURES)
    explicit = check_training_set(
        rows, id_column="id", features=FEATURES, task="binary", expected_classes=["0", "1", "2"]
    )
    assert default == explicit
    assert all(r.passed for r in default)


# --- multiclass ---------------------------------------------------------------------------------


def test_multiclass_clean_set_passes_every_rule() -> None:
    results = run(multiclass_set(), "multiclass", expected_classes=CLASSES)
    assert all(r.passed for r in results.values()), summary(results.values())
    balance = results["class_balance"]
    assert balance.figure == pytest.approx(1 / 3)
    assert balance.detail.endswith(f"of {N_TRAIN} train rows (200 rows)")


def test_multiclass_class_that_vanished_from_the_training_window_fails() -> None:
    rows = multiclass_set()
    rows.loc[train_mask(rows) & (rows[TARGET] == "late"), TARGET] = "early"  # 'late': test only
    result = only_failure(rows, "multiclass")
    assert result.rule == "class_balance"
    assert result.figure == 0.0
    assert result.detail.startswith(
        f"class 'late' has 0 of {N_TRAIN} train rows: vanished from the training window"
    )


def test_multiclass_names_every_vanished_class_not_just_the_rarest() -> None:
    rows = multiclass_set()
    rows[TARGET] = rows[TARGET].where(train_mask(rows), "late")  # test rows: 'late'
    rows.loc[len(rows) - 1, TARGET] = "lost"  # one more class, also only in the test rows
    rows.loc[train_mask(rows) & (rows[TARGET] == "late"), TARGET] = "on_time"
    result = only_failure(rows, "multiclass")
    assert "classes 'late', 'lost' have 0 of 600 train rows" in result.detail


def test_multiclass_expected_class_absent_from_the_whole_set_fails() -> None:
    result = only_failure(multiclass_set(), "multiclass", expected_classes=[*CLASSES, "cancelled"])
    assert result.rule == "class_balance"
    assert "class 'cancelled' has 0 of 600 train rows: vanished" in result.detail


def test_multiclass_rare_class_below_the_share_fails() -> None:
    rows = multiclass_set()
    rare = rows.index[train_mask(rows) & (rows[TARGET] == "late")][5:]
    rows.loc[rare, TARGET] = "early"  # 5 'late' train rows left
    result = only_failure(rows, "multiclass")
    assert result.figure == pytest.approx(5 / N_TRAIN)
    assert result.detail == "class 'late' is 0.83% of 600 train rows (5 rows)"


def test_multiclass_names_every_class_under_the_share() -> None:
    rows = multiclass_set()
    rows.loc[rows.index[train_mask(rows) & (rows[TARGET] == "late")][5:], TARGET] = "early"
    rows.loc[rows.index[train_mask(rows) & (rows[TARGET] == "on_time")][8:], TARGET] = "early"
    result = only_failure(rows, "multiclass")
    assert result.detail == (
        "class 'late' is 0.83% of 600 train rows (5 rows); also under 2.00%: 'on_time' (1.33%)"
    )


def test_multiclass_single_class_in_the_train_rows_fails() -> None:
    rows = multiclass_set().assign(**{TARGET: "early"})
    result = only_failure(rows, "multiclass")
    assert (
        result.detail == "only class 'early' in the train rows; a multiclass model needs at least 2"
    )


def test_multiclass_classes_are_compared_as_text() -> None:
    rows = base_set().assign(**{TARGET: np.arange(N_TRAIN + N_TEST) % 3})  # ints 0, 1, 2
    result = run(rows, "multiclass", expected_classes=["0", "1", "2"])["class_balance"]
    assert result.passed, result.detail


def test_multiclass_failure_reads_in_the_summary() -> None:
    rows = multiclass_set()
    rows.loc[train_mask(rows) & (rows[TARGET] == "late"), TARGET] = "early"
    results = check_training_set(rows, id_column="id", features=FEATURES, task="multiclass")
    assert summary(results).startswith("class_balance: class 'late' has 0 of 600 train rows")


# --- regression ---------------------------------------------------------------------------------


def test_regression_clean_set_passes_every_rule() -> None:
    rows = regression_set()
    results = run(rows, "regression")
    assert all(r.passed for r in results.values()), summary(results.values())
    values = results["target_values"]
    assert values.figure == pytest.approx(np.std(rows.loc[train_mask(rows), TARGET]))
    assert values.threshold == 0.0
    assert values.detail.startswith("target std ")
    assert "class_balance" not in results


def test_regression_constant_target_fails_naming_the_value() -> None:
    rows = regression_set()
    rows.loc[train_mask(rows), TARGET] = 12.5  # the test rows still vary
    result = only_failure(rows, "regression")
    assert result.rule == "target_values"
    assert result.figure == 0.0
    assert result.detail == "target is constant (12.5) over 600 train rows"


def test_regression_non_finite_target_fails() -> None:
    rows = regression_set()
    rows.loc[[3, 4], TARGET] = [np.inf, np.nan]
    result = only_failure(rows, "regression")
    assert result.rule == "target_values"
    assert result.detail == (
        "target has 2 non-finite or missing value(s) over 600 train rows, e.g. [inf, nan]"
    )


def test_regression_with_no_train_rows_fails_the_target_rule() -> None:
    rows = regression_set().assign(**{SPLIT: "test"})
    results = run(rows, "regression", settings=GateSettings(min_rows=0))
    assert not results["target_values"].passed
    assert results["target_values"].detail == "no train rows"
