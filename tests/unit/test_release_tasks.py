"""The release steps (quality gate, promotion, canary, guardrail) for every model task.

Why: multiclass and regression models go through the same loop as binary ones, so each release
step must judge them in their own metric and direction (RMSE: lower is better), while binary
keeps exactly today's verdicts and registry tags (``gate.auc``). Each outcome (pass, fail, wait)
is pinned by its own deterministic test on seeded synthetic rows.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from retrain_assets.lib.release.canary import (
    CanaryResult,
    CanarySettings,
    NotEnoughData,
    evaluate_canary,
    evaluate_canary_task,
)
from retrain_assets.lib.release.guardrail import assess_guardrail
from retrain_assets.lib.release.model_gates import auc_gate, metric_gate
from retrain_assets.lib.release.promotion import decide, missing_gates

Arr = np.ndarray
CLASSES = ["a", "b", "c"]

# --------------------------------------------------------------------------------------------
# Synthetic rows


def regression_rows(n: int, noise_sd: tuple[float, float], seed: int = 0) -> tuple[Arr, Arr, Arr]:
    """(y, first prediction, second prediction) with the given error sds; the errors correlate
    (0.9), as two fits of the same data do."""
    rng = np.random.default_rng(seed)
    y = rng.normal(10.0, 3.0, n)
    shared, own = rng.standard_normal(n), rng.standard_normal(n)
    second_noise = 0.9 * shared + math.sqrt(1 - 0.81) * own
    return y, y + noise_sd[0] * shared, y + noise_sd[1] * second_noise


def proba(codes: Arr, strength: float, noise: Arr) -> Arr:
    """Softmax probabilities whose logit for the true class is raised by ``strength``."""
    logits = noise.copy()
    logits[np.arange(codes.size), codes] += strength
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def multiclass_rows(n: int, strengths: tuple[float, float], seed: int = 0) -> tuple[Arr, Arr, Arr]:
    """(y as text, first probabilities, second probabilities), columns in ``CLASSES`` order."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 3, n)
    shared, own = rng.standard_normal((n, 3)), rng.standard_normal((n, 3))
    second_noise = 0.9 * shared + math.sqrt(1 - 0.81) * own
    y = np.asarray(CLASSES, dtype=object)[codes]
    return y, proba(codes, strengths[0], shared), proba(codes, strengths[1], second_noise)


# --------------------------------------------------------------------------------------------
# metric_gate


@pytest.mark.parametrize(
    ("candidate", "champion", "floor"),
    [(0.80, 0.81, 0.6), (0.79, 0.81, 0.6), (0.62, None, 0.6), (0.55, None, 0.6),
     (0.65, 0.62, 0.7), (math.nan, 0.8, 0.6), (0.8, math.nan, 0.6)],
)  # fmt: skip
def test_binary_metric_gate_equals_auc_gate(candidate, champion, floor) -> None:
    ours = metric_gate("binary", candidate, champion, ratio=0.99, floor=floor)
    today = auc_gate(candidate, champion, ratio=0.99, floor=floor)
    assert ours.gate == "auc" and ours.passed is today.passed
    assert ours.threshold == pytest.approx(today.threshold, nan_ok=True)
    assert set(ours.registry_tags()) == {"gate.auc", "gate.auc.value", "gate.auc.threshold"}
    assert ours.registry_tags()["gate.auc"] == today.registry_tags()["gate.auc"]


def test_multiclass_metric_gate_passes_near_the_champion() -> None:
    result = metric_gate("multiclass", 0.805, 0.81, ratio=0.99, floor=0.6)
    assert result.passed and result.gate == "metric"
    assert result.threshold == pytest.approx(0.99 * 0.81)
    assert "macro_roc_auc" in result.detail and "higher is better" in result.detail
    assert result.registry_tags() == {
        "gate.metric": "passed",
        "gate.metric.value": "0.8050",
        "gate.metric.threshold": "0.8019",
    }


def test_multiclass_metric_gate_fails_below_the_bar() -> None:
    result = metric_gate("multiclass", 0.80, 0.81, ratio=0.99, floor=0.6)
    assert not result.passed and result.registry_tags()["gate.metric"] == "failed"
    assert not metric_gate("multiclass", 0.58, None, ratio=0.99, floor=0.6).passed


def test_regression_metric_gate_passes_a_slightly_higher_rmse() -> None:
    result = metric_gate("regression", 10.05, 10.0, ratio=0.99, floor=math.inf)
    assert result.passed and result.gate == "metric"
    assert result.threshold == pytest.approx(10.0 / 0.99)
    assert "rmse" in result.detail and "lower is better" in result.detail
    alone = metric_gate("regression", 123.0, None, ratio=0.99, floor=math.inf)
    assert alone.passed and alone.registry_tags()["gate.metric.threshold"] == "inf"


def test_regression_metric_gate_fails_a_higher_rmse_or_above_the_ceiling() -> None:
    assert not metric_gate("regression", 10.2, 10.0, ratio=0.99, floor=math.inf).passed
    capped = metric_gate("regression", 10.05, 10.0, ratio=0.99, floor=5.0)
    assert not capped.passed and capped.threshold == 5.0
    assert not metric_gate("regression", math.nan, 10.0, ratio=0.99, floor=math.inf).passed


# --------------------------------------------------------------------------------------------
# Promotion


def test_promotion_accepts_gate_metric() -> None:
    tags = {"gate.metric": "passed", "gate.latency": "passed"}
    assert missing_gates(tags) == []
    assert decide(None, "1", tags, "shadow").action == "promote"


def test_promotion_still_accepts_gate_auc() -> None:
    tags = {"gate.auc": "passed", "gate.latency": "passed", "canary": "passed"}
    assert missing_gates(tags) == []
    assert decide("1", "2", tags, "shadow").action == "promote"


@pytest.mark.parametrize(
    "tags",
    [{"gate.latency": "passed"}, {"gate.metric": "failed", "gate.latency": "passed"},
     {"gate.auc": "failed", "gate.metric": "failed", "gate.latency": "passed"}],
)  # fmt: skip
def test_promotion_refuses_without_a_passed_quality_gate(tags) -> None:
    assert missing_gates(tags) == ["gate.auc/gate.metric"]
    with pytest.raises(ValueError, match=r"no passed gate\.auc/gate\.metric"):
        decide("1", "2", {**tags, "canary": "passed"}, "none")
    assert missing_gates({}) == ["gate.auc/gate.metric", "gate.latency"]


# --------------------------------------------------------------------------------------------
# Canary

LOSS_KEYS = {
    "n_rows", "metric", "champion_value", "challenger_value", "unseen_labels", "difference",
    "ci_low", "ci_high", "se", "p_value", "margin", "confidence", "method", "non_inferior",
    "reason",
}  # fmt: skip
SETTINGS = CanarySettings(min_rows=1000, margin=0.02)


def test_binary_canary_task_is_evaluate_canary() -> None:
    rng = np.random.default_rng(0)
    y = rng.binomial(1, 0.3, 3000)
    champion, challenger = y + rng.normal(size=3000), y + rng.normal(size=3000)
    ours = evaluate_canary_task("binary", y, champion, challenger)
    today = evaluate_canary(y, champion, challenger)
    assert ours == today and ours.metric == "roc_auc"
    assert ours.champion_value == ours.champion_auc
    assert set(ours.to_metadata()) == {
        "n_rows", "champion_auc", "challenger_auc", "difference", "ci_low", "ci_high", "se",
        "p_value", "margin", "confidence", "method", "non_inferior", "reason", "metric",
    }  # fmt: skip


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_canary_passes_a_clearly_better_challenger(task: str) -> None:
    if task == "regression":
        y, champion, challenger = regression_rows(3000, (1.0, 0.5))
        result = evaluate_canary_task(task, y, champion, challenger, SETTINGS)
    else:
        y, champion, challenger = multiclass_rows(3000, (1.0, 2.5))
        result = evaluate_canary_task(task, y, champion, challenger, SETTINGS, classes=CLASSES)
    assert isinstance(result, CanaryResult)
    assert result.non_inferior and result.difference > 0, result.reason
    assert result.difference == pytest.approx(result.champion_value - result.challenger_value)
    assert result.ci_low <= result.difference <= result.ci_high
    assert result.margin == pytest.approx(0.02 * result.champion_value)
    assert result.method == "paired_t_losses" and math.isnan(result.champion_auc)
    assert result.metric == {"regression": "squared_error", "multiclass": "log_loss"}[task]
    meta = result.to_metadata()
    assert set(meta) == LOSS_KEYS and json.dumps(meta)
    assert f"{result.margin:.4g}" in result.reason and "may be promoted" in result.reason


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_canary_stops_a_clearly_worse_challenger(task: str) -> None:
    if task == "regression":
        y, champion, challenger = regression_rows(3000, (1.0, 1.5))
    else:
        y, champion, challenger = multiclass_rows(3000, (2.5, 1.0))
    classes = CLASSES if task == "multiclass" else None
    result = evaluate_canary_task(task, y, champion, challenger, SETTINGS, classes=classes)
    assert not result.non_inferior and result.difference < 0
    assert result.ci_low <= -result.margin and result.p_value > 0.05
    assert "keep the champion" in result.reason


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_canary_passes_an_equal_challenger_within_the_margin(task: str) -> None:
    if task == "regression":
        y, champion, challenger = regression_rows(5000, (1.0, 1.0), seed=3)
    else:
        y, champion, challenger = multiclass_rows(5000, (2.0, 2.0), seed=3)
    classes = CLASSES if task == "multiclass" else None
    settings = CanarySettings(min_rows=1000, margin=0.05)
    result = evaluate_canary_task(task, y, champion, challenger, settings, classes=classes)
    assert result.non_inferior, result.reason
    assert abs(result.difference) < result.margin
    assert result.ci_low > -result.margin and result.p_value < 0.05


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_canary_waits_below_min_rows(task: str) -> None:
    if task == "regression":
        y, champion, challenger = regression_rows(999, (1.0, 0.5))
    else:
        y, champion, challenger = multiclass_rows(999, (1.0, 2.5))
    classes = CLASSES if task == "multiclass" else None
    with pytest.raises(NotEnoughData, match=r"only 999 labelled shadow rows.*at least 1000"):
        evaluate_canary_task(task, y, champion, challenger, SETTINGS, classes=classes)


def test_canary_counts_and_leaves_out_unseen_labels() -> None:
    y, champion, challenger = multiclass_rows(3000, (1.0, 2.5))
    y[:200] = "d"  # a class neither model was trained on
    result = evaluate_canary_task("multiclass", y, champion, challenger, SETTINGS, classes=CLASSES)
    assert result.unseen_labels == 200 and result.n_rows == 2800
    assert result.to_metadata()["unseen_labels"] == 200 and "200 rows" in result.reason
    # The challenger's columns may come in another order: its own classes say which is which.
    order = [2, 0, 1]
    swapped = evaluate_canary_task(
        "multiclass", y, champion, challenger[:, order], SETTINGS, classes=CLASSES,
        challenger_classes=[CLASSES[i] for i in order],
    )  # fmt: skip
    assert swapped.difference == pytest.approx(result.difference)
    y[200:2100] = "d"
    with pytest.raises(NotEnoughData, match="2100 more with labels a model never saw"):
        evaluate_canary_task("multiclass", y, champion, challenger, SETTINGS, classes=CLASSES)


# --------------------------------------------------------------------------------------------
# Guardrail

WATCH = {"batches": 1, "max_batches": 5, "margin": 0.05, "min_rows": 300}


def test_guardrail_regression_task_rolls_back_a_higher_rmse() -> None:
    y, previous, new = regression_rows(2000, (1.0, 1.5))
    verdict = assess_guardrail(y, new, previous, task="regression", **WATCH)
    assert verdict.regression and verdict.done and verdict.metric == "rmse"
    assert verdict.new_value == verdict.new_auc and verdict.new_auc > 1.05 * verdict.previous_auc
    assert "roll back" in verdict.reason and "lower is better" in verdict.reason


def test_guardrail_regression_task_keeps_an_rmse_within_the_relative_margin() -> None:
    y, previous, new = regression_rows(2000, (1.0, 1.03), seed=1)
    verdict = assess_guardrail(y, new, previous, task="regression", **WATCH)
    assert not verdict.regression and not verdict.done, verdict.reason
    assert verdict.previous_auc < verdict.new_auc <= 1.05 * verdict.previous_auc


def test_guardrail_multiclass_rolls_back_a_lower_macro_auc() -> None:
    y, previous, new = multiclass_rows(2000, (2.5, 0.5))
    verdict = assess_guardrail(y, new, previous, task="multiclass", classes=CLASSES, **WATCH)
    assert verdict.regression and verdict.done and verdict.metric == "macro_roc_auc"
    assert verdict.new_auc < 0.95 * verdict.previous_auc and "roll back" in verdict.reason


def test_guardrail_multiclass_keeps_a_better_model_and_counts_unseen_labels() -> None:
    y, previous, new = multiclass_rows(2000, (1.5, 2.0))
    y[:50] = "d"
    verdict = assess_guardrail(y, new, previous, task="multiclass", classes=CLASSES, **WATCH)
    assert not verdict.regression and verdict.new_auc > verdict.previous_auc
    assert verdict.unseen_labels == 50 and verdict.n_rows == 1950


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_guardrail_gives_no_verdict_on_too_few_rows(task: str) -> None:
    if task == "regression":
        y, previous, new = regression_rows(100, (1.0, 3.0))
    else:
        y, previous, new = multiclass_rows(100, (2.5, 0.5))
    classes = CLASSES if task == "multiclass" else None
    verdict = assess_guardrail(y, new, previous, task=task, classes=classes, **WATCH)
    assert not verdict.regression and verdict.new_auc is None and "no verdict" in verdict.reason


def test_guardrail_binary_is_unchanged_and_names_its_metric() -> None:
    rng = np.random.default_rng(0)
    y = rng.binomial(1, 0.3, 1000)
    verdict = assess_guardrail(y, y + rng.normal(size=1000), y + rng.normal(size=1000), **WATCH)
    assert verdict.metric == "roc_auc" and verdict.unseen_labels == 0
    assert verdict.new_value == verdict.new_auc
