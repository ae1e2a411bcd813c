"""Tests for the per-task metrics, losses, gates and paired test (``lib/training/tasks.py``).

Why: once a model can be binary, multiclass or regression, every gate and every champion
comparison goes through these few functions. Each metric is checked against scikit-learn or a
value worked out by hand on small fixed arrays, including the cases where it is undefined (one
class present; classes absent from a multiclass test set), which must come out NaN rather than
crash a run. The per-row losses must average to sklearn's metrics, since the paired test runs on
them. The relative gate must turn the right way for an error metric, where lower is better and
the floor is a ceiling. The paired test's bound must have the coverage it claims: when the
challenger is worse by exactly the margin, it may be called non-inferior only about 5 % of the
time at 95 % confidence.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import ArrayLike
from scipy.stats import t as student_t
from scipy.stats import ttest_1samp
from sklearn.metrics import (
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    roc_auc_score,
    root_mean_squared_error,
)

from retrain_assets.lib.training.tasks import (
    TASKS,
    Metric,
    PairedDecision,
    evaluate,
    paired_non_inferiority,
    relative_gate,
    row_losses,
    task_metrics,
)

# Small fixed data sets --------------------------------------------------------------------

Y_BIN = np.array([0, 0, 1, 1, 0, 1])
P_BIN = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
# Positives 0.35, 0.8, 0.9 against negatives 0.1, 0.4, 0.2: 0.35 beats two, the others three.
AUC_BIN = 8 / 9

CLASSES = np.array(["a", "b", "c"])
Y_MC = np.array(["a", "b", "c", "a", "c", "b", "a", "c"])
P_MC = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.2, 0.5, 0.3],
        [0.1, 0.3, 0.6],
        [0.4, 0.4, 0.2],
        [0.3, 0.3, 0.4],
        [0.5, 0.3, 0.2],
        [0.6, 0.1, 0.3],
        [0.2, 0.2, 0.6],
    ]
)

Y_REG = np.array([1.0, 2.0, 3.0, 4.0])
P_REG = np.array([1.5, 2.0, 2.0, 5.0])  # errors 0.5, 0, -1, 1: MSE 2.25 / 4, MAE 2.5 / 4


# --------------------------------------------------------------------------------------------
# Metrics


def test_task_metrics_names_and_directions() -> None:
    assert TASKS == ("binary", "multiclass", "regression")
    expected = {
        "binary": [("roc_auc", True), ("log_loss", False)],
        "multiclass": [("macro_roc_auc", True), ("log_loss", False)],
        "regression": [("rmse", False), ("mae", False)],
    }
    for task, pairs in expected.items():
        metrics = task_metrics(task)
        assert all(isinstance(m, Metric) for m in metrics)
        assert [(m.name, m.higher_is_better) for m in metrics] == pairs


@pytest.mark.parametrize("call", [task_metrics, lambda t: evaluate(t, Y_REG, P_REG)])
def test_unknown_task_raises_with_the_list_of_tasks(call: Callable[[str], object]) -> None:
    with pytest.raises(ValueError, match="'ranking'") as info:
        call("ranking")
    assert str(TASKS) in str(info.value)
    with pytest.raises(ValueError, match="binary"):
        row_losses("ranking", Y_REG, P_REG)


def test_binary_metrics_against_hand_and_sklearn() -> None:
    result = evaluate("binary", Y_BIN, P_BIN)
    assert list(result) == ["roc_auc", "log_loss"]
    assert result["roc_auc"] == pytest.approx(AUC_BIN)
    assert result["roc_auc"] == pytest.approx(roc_auc_score(Y_BIN, P_BIN))
    by_hand = -np.mean(Y_BIN * np.log(P_BIN) + (1 - Y_BIN) * np.log(1 - P_BIN))
    assert result["log_loss"] == pytest.approx(by_hand)
    assert result["log_loss"] == pytest.approx(log_loss(Y_BIN, y_proba=P_BIN))
    # Booleans, and named classes with the positive one second, give the same figures.
    assert evaluate("binary", Y_BIN.astype(bool), P_BIN) == pytest.approx(result)
    named = np.where(Y_BIN == 1, "yes", "no")
    assert evaluate("binary", named, P_BIN, classes=["no", "yes"]) == pytest.approx(result)
    flipped = evaluate("binary", named, 1 - P_BIN, classes=["yes", "no"])
    assert flipped == pytest.approx(result)


def test_binary_auc_with_one_class_is_nan_not_an_error() -> None:
    result = evaluate("binary", np.ones(4, dtype=int), np.array([0.2, 0.6, 0.7, 0.9]))
    assert math.isnan(result["roc_auc"])
    assert result["log_loss"] == pytest.approx(-np.mean(np.log([0.2, 0.6, 0.7, 0.9])))


def test_multiclass_metrics_against_sklearn() -> None:
    result = evaluate("multiclass", Y_MC, P_MC, classes=CLASSES)
    assert list(result) == ["macro_roc_auc", "log_loss"]
    reference = roc_auc_score(Y_MC, P_MC, multi_class="ovr", average="macro", labels=CLASSES)
    assert result["macro_roc_auc"] == pytest.approx(reference)
    assert result["log_loss"] == pytest.approx(log_loss(Y_MC, y_proba=P_MC, labels=CLASSES))
    # Column j is classes[j], whatever the order: permuting both changes nothing ...
    order = [2, 0, 1]
    permuted = evaluate("multiclass", Y_MC, P_MC[:, order], classes=CLASSES[order])
    assert permuted == pytest.approx(result)
    # ... while mislabelling the columns does.
    wrong = evaluate("multiclass", Y_MC, P_MC[:, order], classes=CLASSES)
    assert wrong["log_loss"] != pytest.approx(result["log_loss"])


def test_multiclass_integer_labels_default_to_column_indices() -> None:
    codes = np.searchsorted(CLASSES, Y_MC)
    assert evaluate("multiclass", codes, P_MC) == pytest.approx(
        evaluate("multiclass", Y_MC, P_MC, classes=CLASSES)
    )


def test_multiclass_macro_auc_skips_absent_classes() -> None:
    y = np.array(["a", "b", "a", "b", "a"])
    p = np.array(
        [[0.6, 0.3, 0.1], [0.3, 0.4, 0.3], [0.5, 0.1, 0.4], [0.5, 0.2, 0.3], [0.2, 0.6, 0.2]]
    )
    # Column a, positives rows 0, 2, 4 (0.6, 0.5, 0.2) vs negatives 0.3, 0.5:
    # 0.6 beats both, 0.5 beats one and ties one, 0.2 beats none -> 3.5 / 6.
    # Column b, positives rows 1, 3 (0.4, 0.2) vs negatives 0.3, 0.1, 0.6: 2 + 1 -> 3 / 6.
    expected = (3.5 / 6 + 3 / 6) / 2
    result = evaluate("multiclass", y, p, classes=CLASSES)
    assert result["macro_roc_auc"] == pytest.approx(expected)
    per_class = [roc_auc_score(y == c, p[:, j]) for j, c in enumerate(["a", "b"])]
    assert result["macro_roc_auc"] == pytest.approx(np.mean(per_class))
    assert result["log_loss"] == pytest.approx(log_loss(y, y_proba=p, labels=CLASSES))


def test_multiclass_macro_auc_with_one_class_present_is_nan() -> None:
    result = evaluate("multiclass", np.array(["c", "c"]), P_MC[:2], classes=CLASSES)
    assert math.isnan(result["macro_roc_auc"])
    assert result["log_loss"] == pytest.approx(-np.mean(np.log([0.1, 0.3])))


def test_regression_metrics_against_hand_and_sklearn() -> None:
    result = evaluate("regression", Y_REG, P_REG)
    assert result == {"rmse": pytest.approx(0.75), "mae": pytest.approx(0.625)}
    assert result["rmse"] == pytest.approx(root_mean_squared_error(Y_REG, P_REG))
    assert result["mae"] == pytest.approx(mean_absolute_error(Y_REG, P_REG))
    rmse, mae = task_metrics("regression")
    assert rmse(Y_REG, P_REG) == result["rmse"] and mae(Y_REG, P_REG) == result["mae"]


# --------------------------------------------------------------------------------------------
# Per-row losses


def test_row_losses_average_to_sklearn_metrics() -> None:
    binary = row_losses("binary", Y_BIN, P_BIN)
    assert binary.shape == (6,)
    assert binary.mean() == pytest.approx(log_loss(Y_BIN, y_proba=P_BIN))
    multi = row_losses("multiclass", Y_MC, P_MC, classes=CLASSES)
    assert multi.mean() == pytest.approx(log_loss(Y_MC, y_proba=P_MC, labels=CLASSES))
    assert multi[0] == pytest.approx(-math.log(0.7)) and multi[1] == pytest.approx(-math.log(0.5))
    squared = row_losses("regression", Y_REG, P_REG)
    np.testing.assert_allclose(squared, [0.25, 0.0, 1.0, 1.0])
    assert squared.mean() == pytest.approx(mean_squared_error(Y_REG, P_REG))
    absolute = row_losses("regression", Y_REG, P_REG, regression_loss="absolute")
    assert absolute.mean() == pytest.approx(mean_absolute_error(Y_REG, P_REG))


def test_row_losses_clip_probabilities() -> None:
    losses = row_losses("binary", np.array([1, 0, 0]), np.array([0.0, 1.0, 0.0]))
    np.testing.assert_allclose(losses, [-math.log(1e-7), -math.log(1e-7), -math.log(1 - 1e-7)])
    p = np.array([[1.0, 0.0, 0.0]])
    assert row_losses("multiclass", np.array(["b"]), p, classes=CLASSES)[0] == pytest.approx(
        -math.log(1e-7)
    )


def test_unseen_multiclass_label_raises_naming_it() -> None:
    y = Y_MC.astype(object)
    y[3] = "zebra"
    with pytest.raises(ValueError, match="zebra"):
        row_losses("multiclass", y, P_MC, classes=CLASSES)
    with pytest.raises(ValueError, match="zebra"):
        evaluate("multiclass", y, P_MC, classes=CLASSES)
    with pytest.raises(ValueError, match=r"unseen \[2\]"):
        evaluate("binary", np.array([0, 1, 2]), np.array([0.1, 0.5, 0.9]))


def test_bad_regression_loss_raises() -> None:
    with pytest.raises(ValueError, match="huber"):
        row_losses("regression", Y_REG, P_REG, regression_loss="huber")


@pytest.mark.parametrize(
    ("task", "y", "prediction", "classes", "match"),
    [
        ("binary", Y_BIN, P_BIN[:5], None, r"prediction must be 1-D with 6 rows.*\(5,\)"),
        ("binary", Y_BIN, np.c_[1 - P_BIN, P_BIN], None, "second column"),
        ("multiclass", Y_MC, P_MC[:, 0], CLASSES, r"2-D.*\(8,\)"),
        ("multiclass", Y_MC, P_MC, CLASSES[:2], r"one label per prediction column \(3\)"),
        ("multiclass", Y_MC, P_MC * 0.9, CLASSES, "sum to 1"),
        ("multiclass", Y_MC, P_MC, ["a", "a", "b"], "unique"),
        ("binary", Y_BIN, P_BIN * 2, None, r"\[0, 1\]"),
        ("binary", Y_BIN, np.r_[P_BIN[:5], np.nan], None, "prediction has 1 non-finite"),
        ("regression", Y_REG, np.r_[P_REG[:3], np.inf], None, "prediction has 1 non-finite"),
        ("regression", np.r_[Y_REG[:3], np.nan], P_REG, None, "y_true has 1 non-finite"),
        ("regression", Y_REG.reshape(2, 2), P_REG, None, "y_true must be 1-D"),
        ("regression", np.array([]), np.array([]), None, "y_true is empty"),
    ],
)
def test_invalid_inputs_raise_naming_the_input(
    task: str, y: np.ndarray, prediction: np.ndarray, classes: ArrayLike | None, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        evaluate(task, y, prediction, classes=classes)


# --------------------------------------------------------------------------------------------
# Relative gate

AUC, LOG_LOSS = task_metrics("binary")
RMSE = task_metrics("regression")[0]


def test_gate_higher_is_better_ratio_binds_at_its_boundary() -> None:
    bar = 0.99 * 0.8
    at = relative_gate(AUC, bar, 0.8, ratio=0.99, floor=0.6)
    assert at.passed and at.bar == bar and at.champion == 0.8 and at.value == bar
    below = relative_gate(AUC, math.nextafter(bar, 0.0), 0.8, ratio=0.99, floor=0.6)
    assert not below.passed
    for text in ("roc_auc", "0.7920", "0.8000", "0.6000", "max", "<"):
        assert text in below.detail


def test_gate_higher_is_better_floor_binds_and_stands_alone() -> None:
    weak = relative_gate(AUC, 0.59, 0.55, ratio=0.99, floor=0.6)
    assert weak.bar == 0.6 and not weak.passed
    assert relative_gate(AUC, 0.6, 0.55, ratio=0.99, floor=0.6).passed
    alone = relative_gate(AUC, 0.59, None, ratio=0.99, floor=0.6)
    assert alone.bar == 0.6 and not alone.passed and alone.champion is None
    assert "no champion" in alone.detail and "floor 0.6000" in alone.detail


def test_gate_lower_is_better_ratio_binds_the_other_way() -> None:
    bar = 0.40 / 0.8  # 0.5, under the ceiling 0.6
    at = relative_gate(LOG_LOSS, bar, 0.40, ratio=0.8, floor=0.6)
    assert at.passed and at.bar == bar
    above = relative_gate(LOG_LOSS, math.nextafter(bar, 1.0), 0.40, ratio=0.8, floor=0.6)
    assert not above.passed
    for text in ("log_loss", "0.5000", "ceiling 0.6000", "min", "/ 0.8", ">", "lower is better"):
        assert text in above.detail
    # A ratio above 1 demands an improvement: 0.5 / 1.25 = 0.4.
    strict = relative_gate(RMSE, 0.45, 0.5, ratio=1.25, floor=10.0)
    assert strict.bar == pytest.approx(0.4) and not strict.passed
    assert "rmse" in strict.detail


def test_gate_lower_is_better_ceiling_binds_and_stands_alone() -> None:
    weak = relative_gate(LOG_LOSS, 0.65, 0.55, ratio=0.8, floor=0.6)  # 0.55 / 0.8 = 0.6875
    assert weak.bar == 0.6 and not weak.passed
    assert relative_gate(LOG_LOSS, 0.6, 0.55, ratio=0.8, floor=0.6).passed
    alone = relative_gate(LOG_LOSS, 0.61, None, ratio=0.8, floor=0.6)
    assert alone.bar == 0.6 and not alone.passed and "no champion" in alone.detail
    unbounded = relative_gate(RMSE, 123.0, None, ratio=0.9, floor=math.inf)
    assert unbounded.passed


@pytest.mark.parametrize("metric", [AUC, LOG_LOSS])
def test_gate_nan_candidate_or_champion_fails(metric: Metric) -> None:
    for champion in (0.5, None):
        result = relative_gate(metric, math.nan, champion, ratio=0.95, floor=0.6)
        assert not result.passed
        assert f"candidate {metric.name} is NaN" in result.detail
    blind = relative_gate(metric, 0.55, math.nan, ratio=0.95, floor=0.6)
    assert not blind.passed and f"champion {metric.name} is NaN" in blind.detail


def test_gate_rejects_bad_settings() -> None:
    for ratio in (0.0, -0.5, 1.51, math.nan):
        with pytest.raises(ValueError, match=r"ratio must be in \(0, 1.5\]"):
            relative_gate(AUC, 0.8, 0.8, ratio=ratio, floor=0.6)
    with pytest.raises(ValueError, match="floor"):
        relative_gate(AUC, 0.8, 0.8, ratio=0.99, floor=math.nan)
    with pytest.raises(ValueError, match="champion rmse must be >= 0"):
        relative_gate(RMSE, 0.8, -1.0, ratio=0.99, floor=1.0)


# --------------------------------------------------------------------------------------------
# Paired non-inferiority


def paired_losses(
    n: int, true_difference: float, seed: int, reps: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Champion log-loss-like losses and a challenger's whose mean exceeds them by exactly
    ``true_difference`` (the per-row noise has mean zero)."""
    rng = np.random.default_rng(seed)
    shape = (n,) if reps is None else (reps, n)
    champion = rng.exponential(0.5, size=shape)
    challenger = champion + true_difference + rng.normal(0.0, 0.3, size=shape)
    return champion, challenger


def test_paired_clearly_no_worse_is_non_inferior() -> None:
    champion, challenger = paired_losses(2000, -0.01, seed=1)
    decision = paired_non_inferiority(champion, challenger, margin=0.02)
    assert isinstance(decision, PairedDecision)
    assert decision.non_inferior and decision.upper_bound < 0.02
    diff = challenger - champion
    se = diff.std(ddof=1) / math.sqrt(diff.size)
    assert decision.n_rows == 2000
    assert decision.mean_difference == pytest.approx(diff.mean())
    assert decision.se == pytest.approx(se)
    assert decision.upper_bound == pytest.approx(diff.mean() + student_t.ppf(0.95, 1999) * se)
    reference = ttest_1samp(diff, 0.02, alternative="less").pvalue
    assert decision.p_value == pytest.approx(reference) and decision.p_value < 0.05
    assert "non-inferior" in decision.detail and "2000 paired rows" in decision.detail


def test_paired_clearly_worse_is_not_non_inferior() -> None:
    champion, challenger = paired_losses(2000, 0.1, seed=2)
    decision = paired_non_inferiority(champion, challenger, margin=0.02)
    assert not decision.non_inferior
    assert decision.mean_difference > 0.05 and decision.p_value > 0.5
    assert "keep the champion" in decision.detail and ">= margin 0.02" in decision.detail


def test_paired_bound_has_its_coverage_at_the_margin() -> None:
    # H0 at its boundary: the challenger is worse by exactly the margin. A bound with the
    # coverage it claims calls it non-inferior in about 5 % of samples (400 reps: sd 1.1 %).
    margin = 0.03
    champion, challenger = paired_losses(200, margin, seed=3, reps=400)
    decisions = [
        paired_non_inferiority(champion[i], challenger[i], margin=margin) for i in range(400)
    ]
    share = np.mean([d.non_inferior for d in decisions])
    assert 0.02 <= share <= 0.09
    # The p-value and the bound agree on every decision.
    assert all(d.non_inferior == (d.p_value < 0.05) for d in decisions)


def test_paired_identical_differences_decide_without_variance() -> None:
    champion = np.array([0.2, 0.4, 0.6, 0.8])
    assert paired_non_inferiority(champion, champion, margin=0.01).non_inferior
    same = paired_non_inferiority(champion, champion, margin=0.0)
    assert not same.non_inferior and same.p_value == 1.0


def test_paired_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="lengths 5 and 4"):
        paired_non_inferiority(np.zeros(5), np.zeros(4), margin=0.01)
    with pytest.raises(ValueError, match="at least 2"):
        paired_non_inferiority([0.3], [0.4], margin=0.01)
    with pytest.raises(ValueError, match="challenger_losses has 1 non-finite"):
        paired_non_inferiority([0.3, 0.2], [0.4, np.nan], margin=0.01)
    with pytest.raises(ValueError, match="margin"):
        paired_non_inferiority([0.3, 0.2], [0.4, 0.1], margin=-0.01)
    with pytest.raises(ValueError, match="confidence"):
        paired_non_inferiority([0.3, 0.2], [0.4, 0.1], margin=0.01, confidence=0.4)


def test_an_error_metric_without_champion_or_ceiling_passes_and_says_there_is_no_bound():
    rmse = task_metrics("regression")[0]
    gate = relative_gate(rmse, 1234.5, None, ratio=0.99, floor=math.inf)
    assert gate.passed and gate.bar == math.inf
    assert "no ceiling (no champion, no absolute bound)" in gate.detail
