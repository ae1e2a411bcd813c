"""Tests for the blocking data gate on training sets (``lib.datagate``).

Why: the gate is the last stop before a retrain, and a rule that never fires is worse than none
(it says "checked"). So a clean set must pass all seven rules, and each planted defect must fail
its own rule, only that rule, with the measured figure in the detail the Dagster check shows.
Leakage is tested along both time paths: ``_order`` (reference rows share one ``_day``, so only
the row order can tell train from test) and plain ``_day`` with a strict ``<``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from retrain_assets.lib.training.data_gate import (
    ORDER,
    RULES,
    GateSettings,
    RuleResult,
    check_training_set,
    summary,
)
from retrain_assets.lib.training.fitting import DAY, SPLIT, TARGET, assemble

START = dt.date(2024, 1, 1)
FEATURES = ["amount", "region"]
N_TRAIN, N_TEST = 600, 100


def day(offset: int) -> str:
    return (START + dt.timedelta(days=offset)).isoformat()


def clean_set() -> pd.DataFrame:
    """600 train rows on days 0-5 (100 a day), 100 test rows on day 6; ids 0..699, balanced
    labels, 5 % nulls in amount, three regions."""
    n = N_TRAIN + N_TEST
    rng = np.random.default_rng(0)
    amount = rng.normal(size=n)
    amount[::20] = np.nan
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "amount": amount,
            "region": np.array(["north", "south", "east"], dtype=object)[np.arange(n) % 3],
            TARGET: np.arange(n) % 2,
            DAY: [day(i // 100) for i in range(n)],
            SPLIT: ["train"] * N_TRAIN + ["test"] * N_TEST,
        }
    )


def run(rows: pd.DataFrame, settings: GateSettings | None = None) -> dict[str, RuleResult]:
    results = check_training_set(
        rows, id_column="id", features=FEATURES, settings=settings or GateSettings()
    )
    assert [r.rule for r in results] == list(RULES)
    return {r.rule: r for r in results}


def only_failure(rows: pd.DataFrame, settings: GateSettings | None = None) -> RuleResult:
    """The single failed rule (asserting that every other rule passed)."""
    failed = [r for r in run(rows, settings).values() if not r.passed]
    assert len(failed) == 1, summary(failed)
    return failed[0]


def test_a_clean_set_passes_every_rule() -> None:
    results = run(clean_set())
    assert all(r.passed for r in results.values()), summary(results.values())
    assert summary(results.values()) == ""
    assert results["min_rows"].figure == N_TRAIN
    assert results["class_balance"].figure == pytest.approx(0.5)
    assert results["null_rate"].figure == pytest.approx(0.05)
    assert results["test_nonempty"].figure == N_TEST
    assert results["no_leakage"].detail == "test starts 2024-01-07, train ends 2024-01-06"


def test_the_default_settings_are_the_documented_ones() -> None:
    check_training_set(clean_set(), id_column="id", features=FEATURES)  # default argument
    assert GateSettings() == GateSettings(min_rows=500, min_class_share=0.02, max_null_rate=0.2)


def test_too_few_train_rows() -> None:
    rows = clean_set()
    rows = rows[(rows[SPLIT] == "test") | (rows.index < 450)]
    result = only_failure(rows)
    assert (result.rule, result.figure, result.threshold) == ("min_rows", 450, 500)
    assert result.detail == "450 train rows (minimum 500)"


def test_a_rare_class() -> None:
    rows = clean_set()
    rows.loc[: N_TRAIN - 1, TARGET] = 0
    rows.loc[:5, TARGET] = 1  # 6 positives among 600 train rows
    result = only_failure(rows)
    assert result.rule == "class_balance"
    assert result.figure == pytest.approx(0.01)
    assert result.threshold == 0.02
    assert result.detail == "class 1 is 1.00% of 600 train rows (6 rows)"


def test_a_class_missing_from_train_has_share_zero() -> None:
    rows = clean_set()
    rows.loc[: N_TRAIN - 1, TARGET] = 0  # positives only in test
    result = only_failure(rows)
    assert (result.rule, result.figure) == ("class_balance", 0.0)
    assert "class 1 is 0.00% of 600 train rows (0 rows)" in result.detail


def test_a_set_with_one_class_only_fails_class_balance() -> None:
    result = only_failure(clean_set().assign(**{TARGET: 1}))
    assert (result.rule, result.figure) == ("class_balance", 0.0)
    assert "class 0 is 0.00%" in result.detail


def test_a_boolean_target_is_balanced_like_a_0_1_one() -> None:
    rows = clean_set()
    rows[TARGET] = rows[TARGET].astype(bool)
    assert run(rows)["class_balance"].figure == pytest.approx(0.5)


def test_duplicate_ids() -> None:
    rows = clean_set()
    rows.loc[100, "id"] = 12
    rows.loc[101, "id"] = 40
    rows.loc[102, "id"] = 40
    result = only_failure(rows)
    assert (result.rule, result.figure, result.threshold) == ("duplicate_ids", 2, 0)
    assert result.detail == "2 duplicate ids, e.g. [12, 40]"


def test_a_feature_with_too_many_nulls_is_named() -> None:
    rows = clean_set()
    rows.loc[: int(N_TRAIN * 0.35) - 1, "region"] = None
    result = only_failure(rows)
    assert result.rule == "null_rate"
    assert result.figure == pytest.approx(0.35)
    assert result.detail == "feature 'region' is 35.0% null over 600 train rows"


def test_nulls_in_test_rows_do_not_count() -> None:
    rows = clean_set()
    rows.loc[N_TRAIN:, "amount"] = np.nan
    assert run(rows)["null_rate"].figure == pytest.approx(0.05)


def test_a_constant_feature_is_named_with_its_value() -> None:
    rows = clean_set()
    rows.loc[: N_TRAIN - 1, "region"] = "north"  # test rows still vary: only train counts
    result = only_failure(rows)
    assert (result.rule, result.figure, result.threshold) == ("constant_feature", 1, 0)
    assert result.detail == "feature 'region' is constant ('north')"


def test_several_constant_features_including_an_all_null_one() -> None:
    rows = clean_set().assign(region="north", amount=np.nan)
    result = run(rows)["constant_feature"]
    assert not result.passed
    assert result.figure == 2
    assert result.detail == "2 constant features: 'amount' (all null), 'region' ('north')"


def test_an_empty_test_split() -> None:
    rows = clean_set().assign(**{SPLIT: "train"})
    result = only_failure(rows)
    assert (result.rule, result.figure, result.threshold) == ("test_nonempty", 0, 1)
    assert result.detail == "0 test rows"


def test_leakage_by_day_when_test_overlaps_train() -> None:
    rows = clean_set()
    rows.loc[N_TRAIN : N_TRAIN + 9, DAY] = day(5)  # 10 test rows on the last train day
    result = only_failure(rows)
    assert (result.rule, result.figure, result.threshold) == ("no_leakage", 10, 0)
    assert result.detail == (
        "test starts 2024-01-06, train ends 2024-01-06 (10 test rows not after train)"
    )


def test_leakage_by_day_names_where_each_side_starts_and_ends() -> None:
    rows = clean_set()
    rows.loc[N_TRAIN:, DAY] = day(4)
    result = only_failure(rows)
    assert result.detail.startswith("test starts 2024-01-05, train ends 2024-01-06")
    assert result.figure == N_TEST


def test_an_id_in_both_train_and_test_is_leakage() -> None:
    rows = clean_set()
    rows.loc[N_TRAIN, "id"] = 7
    results = run(rows)
    assert not results["no_leakage"].passed
    assert results["no_leakage"].figure == 1
    assert "1 ids in both train and test, e.g. [7]" in results["no_leakage"].detail
    assert not results["duplicate_ids"].passed  # the same id twice is a duplicate as well


def test_order_column_decides_time_when_rows_share_a_day() -> None:
    """Reference rows share one _day: by _day alone test is never strictly after train, the
    _order column knows better."""
    rows = clean_set().assign(**{DAY: day(-1)})
    by_day = only_failure(rows)
    assert by_day.rule == "no_leakage"
    assert by_day.detail.startswith("test starts 2023-12-31, train ends 2023-12-31")

    rows[ORDER] = np.arange(len(rows))
    result = run(rows)["no_leakage"]
    assert result.passed
    assert (
        result.detail
        == "test starts at _order 600 (2023-12-31), train ends at _order 599 (2023-12-31)"
    )


def test_order_column_catches_a_test_row_before_the_last_train_row() -> None:
    rows = clean_set()  # by _day this set is clean
    rows[ORDER] = np.arange(len(rows))
    rows.loc[[598, 650], ORDER] = [650, 598]  # a train row comes after a test row
    result = only_failure(rows)
    assert (result.rule, result.figure) == ("no_leakage", 51)  # test orders 598, 600..649
    assert result.detail.startswith(
        "test starts at _order 598 (2024-01-07), train ends at _order 650"
    )


def test_an_assembled_reference_only_set_passes_only_thanks_to_the_order_column() -> None:
    """assemble() with no timestamp and too few labelled days: every reference row gets the day
    before START and the newest share of rows is the test split; its ``_order`` shows that split
    is in time order, while ``_day`` alone cannot."""
    clean = clean_set()
    reference = clean[["id", "amount", "region", TARGET]].rename(columns={TARGET: "label"})
    labelled = reference.iloc[:0].assign(**{DAY: pd.Series(dtype=object)})
    rows = assemble(
        reference,
        labelled,
        target_column="label",
        timestamp_column=None,
        start_date=START,
        test_days=3,
        reference_test_share=0.2,
    )
    assert set(rows[DAY]) == {day(-1)}
    results = run(rows)
    assert all(r.passed for r in results.values()), summary(results.values())
    assert results["no_leakage"].detail.startswith("test starts at _order 560 (2023-12-31)")
    assert run(rows.drop(columns=ORDER))["no_leakage"].passed is False


def test_summary_lists_failed_rules_as_rule_colon_detail() -> None:
    rows = clean_set()
    rows.loc[: N_TRAIN - 1, "region"] = "north"
    rows = rows[(rows[SPLIT] == "test") | (rows.index < 450)]
    assert summary(run(rows).values()) == (
        "min_rows: 450 train rows (minimum 500)\n"
        "constant_feature: feature 'region' is constant ('north')"
    )


def test_settings_move_the_thresholds() -> None:
    strict = GateSettings(min_rows=1000, min_class_share=0.6, max_null_rate=0.01)
    failed = {r.rule for r in run(clean_set(), strict).values() if not r.passed}
    assert failed == {"min_rows", "class_balance", "null_rate"}


def test_missing_columns_are_a_caller_error() -> None:
    with pytest.raises(ValueError, match=r"lacks columns \['colour'\]"):
        check_training_set(clean_set(), id_column="id", features=["amount", "colour"])
