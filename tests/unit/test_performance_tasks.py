"""Live performance for multiclass and regression champions (``lib.monitoring.performance``,
``lib.monitoring.live``), and binary kept as it was.

Why: the verdict that triggers a retrain must judge a model in its own task's metric and in that
metric's direction (a higher RMSE is the degradation), with a noise allowance that fits the metric,
or a small day raises false alarms and a real drop goes unseen. A multiclass label the champion
never saw has no probability to score: it must be counted and left out, never crash the asset.
The binary figures and metadata keys feed dashboards and sensors, so they must not move.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from retrain_assets.lib.monitoring.live import next_detector_state, task_row_losses
from retrain_assets.lib.monitoring.performance import (
    PerformanceSettings,
    assess,
    join_predictions,
    macro_auc_standard_error,
    metric_standard_error,
    rmse_standard_error,
    target_drift,
)
from retrain_assets.lib.training.tasks import task_metrics

DAY = "2024-03-10"
SETTINGS = PerformanceSettings()  # min 200 labels, 5 % relative drop, 0.99 confidence
CLASSES = ["a", "b", "c"]
SHARED_KEYS = {
    "n_labels",
    "pooled_days",
    "n_pooled_days",
    "verdict_made",
    "degraded",
    "concept_drift",
    "drift_share",
    "detector_alarm",
    "reason",
}
BINARY_KEYS = SHARED_KEYS | {"auc", "log_loss", "positive_rate", "baseline_auc"}


def multiclass_arrays(
    n: int, sep: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities: the true class's logit is raised by ``sep`` (higher: better)."""
    codes = rng.integers(0, len(CLASSES), n)
    logits = rng.standard_normal((n, len(CLASSES))) + sep * np.eye(len(CLASSES))[codes]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return np.asarray(CLASSES)[codes], proba


def multiclass_rows(
    n: int, sep: float, *, seed: int = 0, labels: list[str] | None = None
) -> pd.DataFrame:
    """Joined multiclass rows (``labels`` replaces the drawn ones)."""
    y, proba = multiclass_arrays(n, sep, np.random.default_rng(seed))
    y = y if labels is None else np.asarray(labels)
    return pd.DataFrame(
        {
            "y": y.astype(object),
            "score": proba.max(axis=1),
            "proba": list(proba),
            "classes": json.dumps(CLASSES),
        }
    )


def regression_rows(n: int, noise: float, *, seed: int = 0) -> pd.DataFrame:
    """Joined regression rows whose prediction misses the label by N(0, noise^2)."""
    rng = np.random.default_rng(seed)
    prediction = rng.normal(50.0, 10.0, n)
    return pd.DataFrame({"y": prediction + rng.normal(0.0, noise, n), "score": prediction})


def metric_of(task: str, frame: pd.DataFrame) -> float:
    primary, _ = task_metrics(task)
    if task == "multiclass":
        return primary(frame["y"].to_numpy(), np.vstack(frame["proba"]), CLASSES)
    return primary(frame["y"].to_numpy(), frame["score"].to_numpy())


# -- join ------------------------------------------------------------------------------------


def test_join_multiclass_takes_champion_columns_and_labels_as_text() -> None:
    labels = pd.DataFrame({"id": [1, 2, 3], "t": [3.0, 1.0, 2.0]})  # classes read as floats
    predictions = pd.DataFrame(
        {
            "id": [1, 2, 4],
            "champion_score": [0.7, 0.6, 0.5],
            "champion_proba": [[0.2, 0.1, 0.7], [0.6, 0.3, 0.1], [0.5, 0.25, 0.25]],
            "champion_classes": json.dumps(["1", "2", "3"]),
            "champion_version": ["4", "4", "4"],
        }
    )
    joined, unmatched = join_predictions(labels, predictions, "id", "t", task="multiclass")
    assert unmatched == 1
    assert list(joined.columns) == ["id", "y", "score", "proba", "classes", "champion_version"]
    assert joined["y"].tolist() == ["3", "1"]  # "3", not "3.0"
    assert joined["score"].tolist() == [0.7, 0.6]
    assert json.loads(joined["classes"].iloc[0]) == ["1", "2", "3"]
    # already renamed columns are accepted as they are
    renamed = predictions.rename(columns=lambda c: c.removeprefix("champion_"))
    again, _ = join_predictions(labels, renamed, "id", "t", task="multiclass")
    assert again["y"].tolist() == ["3", "1"] and "proba" in again


def test_join_multiclass_needs_probabilities_unless_nothing_was_scored() -> None:
    labels = pd.DataFrame({"id": [1], "t": ["a"]})
    with pytest.raises(KeyError, match="proba"):
        join_predictions(labels, pd.DataFrame({"id": [1], "score": [0.5]}), "id", "t", "multiclass")
    empty = pd.DataFrame(columns=["id", "score", "champion_version", "day"])
    joined, unmatched = join_predictions(labels, empty, "id", "t", task="multiclass")
    assert len(joined) == 0 and unmatched == 1


def test_join_regression_labels_are_floats_and_text_is_an_error() -> None:
    predictions = pd.DataFrame({"id": [1, 2], "score": [10.5, 20.0]})
    labels = pd.DataFrame({"id": [1, 2], "price": [11, 19]})
    joined, _ = join_predictions(labels, predictions, "id", "price", task="regression")
    assert joined["y"].tolist() == [11.0, 19.0] and pd.api.types.is_float_dtype(joined["y"])
    bad = pd.DataFrame({"id": [1, 2], "price": ["11", "cheap"]})
    with pytest.raises(ValueError, match=r"'price'.*finite numbers.*cheap"):
        join_predictions(bad, predictions, "id", "price", task="regression")


def test_join_binary_is_unchanged_and_unknown_task_is_an_error() -> None:
    predictions = pd.DataFrame({"id": [1, 2], "score": [0.3, 0.6]})
    labels = pd.DataFrame({"id": [1, 2], "t": [0, 1]})
    joined, _ = join_predictions(labels, predictions, "id", "t")
    assert joined["y"].tolist() == [0, 1] and list(joined.columns) == ["id", "y", "score"]
    with pytest.raises(ValueError, match="0/1"):
        join_predictions(pd.DataFrame({"id": [1], "t": [2]}), predictions, "id", "t", "binary")
    with pytest.raises(ValueError, match="unknown task"):
        join_predictions(labels, predictions, "id", "t", task="ranking")


# -- assess: multiclass ----------------------------------------------------------------------


def test_multiclass_healthy() -> None:
    rows = multiclass_rows(2000, 1.5)
    value = metric_of("multiclass", rows)
    verdict = assess({DAY: rows}, DAY, value, SETTINGS, drift_share=0.0, task="multiclass")
    assert verdict.metric == "macro_roc_auc" and verdict.value == pytest.approx(value)
    assert verdict.verdict_made and not verdict.degraded and not verdict.concept_drift
    assert verdict.auc is None and verdict.positive_rate is None and verdict.baseline_auc is None
    assert verdict.log_loss == verdict.secondary_value and verdict.secondary_metric == "log_loss"
    assert verdict.reason.startswith(f"healthy: macro_roc_auc {value:.3f} ≥ 0.95 × {value:.3f}")


def test_multiclass_degraded_is_concept_drift_without_covariate_drift() -> None:
    rows = multiclass_rows(2000, 0.4)  # macro AUC ~0.62 against a baseline of 0.80
    verdict = assess({DAY: rows}, DAY, 0.80, SETTINGS, drift_share=0.05, task="multiclass")
    assert verdict.value is not None and verdict.value < 0.7
    assert verdict.degraded and verdict.concept_drift
    assert f"degraded: macro_roc_auc {verdict.value:.3f} < 0.95 × 0.800 = 0.760" in verdict.reason
    assert "upper 0.99 bound" in verdict.reason


def test_multiclass_dip_within_the_noise_of_few_labels_is_not_degraded() -> None:
    rows = multiclass_rows(80, 1.0, seed=3)
    value = metric_of("multiclass", rows)
    baseline = value * 1.03 / 0.95  # bar 3 % above the live figure; se ~0.03 at 80 rows
    settings = PerformanceSettings(min_labels=50)
    verdict = assess({DAY: rows}, DAY, baseline, settings, task="multiclass")
    assert verdict.verdict_made and not verdict.degraded
    assert "but not significantly" in verdict.reason


def test_multiclass_unseen_labels_are_counted_and_left_out() -> None:
    rows = multiclass_rows(300, 1.5, seed=1)
    rows.loc[:39, "y"] = "new_class"  # 40 rows of a class the champion never saw
    verdict = assess({DAY: rows}, DAY, 0.80, SETTINGS, task="multiclass")
    known = rows.iloc[40:]
    assert verdict.unseen_labels == 40 and verdict.n_labels == 260
    assert verdict.value == pytest.approx(metric_of("multiclass", known))
    assert "40 label(s) of classes the champion never saw in training left out" in verdict.reason
    meta = verdict.to_metadata()
    assert meta["unseen_labels"] == 40 and meta["macro_roc_auc"] == verdict.value


def test_multiclass_unseen_labels_do_not_count_towards_min_labels() -> None:
    today = multiclass_rows(250, 1.5, seed=1, labels=["zzz"] * 250)
    before = multiclass_rows(250, 1.5, seed=2)
    verdict = assess({DAY: today, "2024-03-09": before}, DAY, 0.8, SETTINGS, task="multiclass")
    assert verdict.pooled_days == [DAY, "2024-03-09"]  # today alone has no usable label
    assert verdict.n_labels == 250 and verdict.unseen_labels == 250 and verdict.verdict_made


def test_multiclass_one_class_only_gives_no_verdict() -> None:
    rows = multiclass_rows(300, 1.5, labels=["b"] * 300)
    verdict = assess({DAY: rows}, DAY, 0.8, SETTINGS, task="multiclass")
    assert verdict.value is None and not verdict.verdict_made and not verdict.degraded
    assert "300 labels of one class only (b); macro_roc_auc undefined" in verdict.reason
    assert verdict.secondary_value is not None


def test_pooled_days_with_another_class_order_are_aligned() -> None:
    first = multiclass_rows(150, 1.5, seed=1)
    second = multiclass_rows(150, 1.5, seed=2)
    flipped = second.assign(
        proba=[p[::-1] for p in second["proba"]], classes=json.dumps(CLASSES[::-1])
    )
    by_day = {DAY: first, "2024-03-09": flipped}
    verdict = assess(by_day, DAY, 0.8, SETTINGS, task="multiclass")
    assert verdict.value == pytest.approx(metric_of("multiclass", pd.concat([first, second])))


# -- assess: regression ----------------------------------------------------------------------


def test_regression_healthy_and_metadata_keys() -> None:
    verdict = assess({DAY: regression_rows(1000, 2.0)}, DAY, 2.0, SETTINGS, task="regression")
    assert verdict.metric == "rmse" and verdict.value == pytest.approx(2.0, rel=0.1)
    assert verdict.verdict_made and not verdict.degraded
    assert verdict.auc is None and verdict.log_loss is None and verdict.positive_rate is None
    assert verdict.reason.startswith(f"healthy: rmse {verdict.value:.3f} ≤ 1/0.95 × 2.000 = 2.105")
    meta = verdict.to_metadata()
    assert set(meta) == SHARED_KEYS | {
        "metric",
        "metric_value",
        "rmse",
        "mae",
        "baseline_metric",
        "baseline_auc",
        "unseen_labels",
    }
    assert meta["metric"] == "rmse" and meta["metric_value"] == meta["rmse"] == verdict.value
    assert meta["mae"] == verdict.secondary_value and meta["baseline_metric"] == 2.0
    assert meta["baseline_auc"] is None and meta["unseen_labels"] == 0
    assert all(v is None or isinstance(v, (bool, int, float, str)) for v in meta.values())


def test_regression_degraded_when_rmse_significantly_higher() -> None:
    rows = regression_rows(1000, 3.0)
    verdict = assess({DAY: rows}, DAY, 2.0, SETTINGS, drift_share=0.5, task="regression")
    assert verdict.degraded and not verdict.concept_drift  # explained by covariate drift
    assert f"degraded: rmse {verdict.value:.3f} > 1/0.95 × 2.000 = 2.105 (baseline)" in (
        verdict.reason
    )
    assert "lower 0.99 bound" in verdict.reason and "1000 labels" in verdict.reason
    # a looser relative drop lets the same figures pass
    loose = assess({DAY: rows}, DAY, 2.0, PerformanceSettings(relative_drop=0.4), task="regression")
    assert not loose.degraded


def test_regression_rise_within_the_noise_of_few_labels_is_not_degraded() -> None:
    rows = regression_rows(60, 2.0, seed=5)
    value = metric_of("regression", rows)
    baseline = value * 0.95 / 1.05  # bar 5 % below the live figure; se ~9 % at 60 rows
    settings = PerformanceSettings(min_labels=50)
    verdict = assess({DAY: rows}, DAY, baseline, settings, task="regression")
    assert verdict.verdict_made and not verdict.degraded
    assert "but not significantly (lower 0.99 bound" in verdict.reason


def test_regression_has_no_absolute_bound() -> None:
    # the AUC floor (0.6) means nothing for an RMSE: no baseline, no degradation
    verdict = assess({DAY: regression_rows(500, 50.0)}, DAY, None, SETTINGS, task="regression")
    assert verdict.verdict_made and not verdict.degraded
    assert "healthy (no baseline)" in verdict.reason and "no absolute bound" in verdict.reason


def test_regression_few_labels_and_none() -> None:
    few = assess({DAY: regression_rows(50, 9.0)}, DAY, 2.0, SETTINGS, task="regression")
    assert not few.verdict_made and not few.degraded
    assert "only 50 labels (< 200)" in few.reason and "indicative only, would be" in few.reason
    none = assess({}, DAY, 2.0, SETTINGS, task="regression")
    assert none.value is None and none.n_labels == 0 and "no labelled rows" in none.reason


# -- binary unchanged ------------------------------------------------------------------------


def test_binary_metadata_keys_unchanged_plus_metric() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.3).astype(int)
    score = 1 / (1 + np.exp(-(y * 1.5 + rng.standard_normal(500) - 1)))
    verdict = assess({DAY: pd.DataFrame({"y": y, "score": score})}, DAY, 0.8, SETTINGS)
    meta = verdict.to_metadata()
    assert set(meta) == BINARY_KEYS | {"metric", "metric_value"}
    assert meta["metric"] == "roc_auc" and meta["metric_value"] == meta["auc"] == verdict.auc
    assert verdict.value == verdict.auc and verdict.secondary_value == verdict.log_loss
    assert verdict.task == "binary" and verdict.unseen_labels == 0
    assert metric_standard_error("binary", y, score) > 0


# -- standard errors -------------------------------------------------------------------------


def coverage(estimates: np.ndarray, ses: np.ndarray, truth: float) -> float:
    return float(np.mean(np.abs(estimates - truth) <= 1.96 * ses))


def test_rmse_standard_error_covers_the_true_rmse() -> None:
    rng = np.random.default_rng(11)
    estimates, ses = [], []
    for _ in range(400):
        error = rng.normal(0.0, 2.0, 200)  # true RMSE 2
        estimates.append(math.sqrt(float(np.mean(error**2))))
        ses.append(rmse_standard_error(error, np.zeros(200)))
    est, se = np.asarray(estimates), np.asarray(ses)
    assert 0.92 <= coverage(est, se, 2.0) <= 0.98
    assert est.std() / se.mean() == pytest.approx(1.0, abs=0.12)
    assert se.mean() == pytest.approx(2.0 / math.sqrt(2 * 200), rel=0.05)  # normal: sigma/sqrt(2n)
    assert rmse_standard_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert math.isnan(rmse_standard_error([1.0], [0.0]))


def test_macro_auc_standard_error_covers_the_true_macro_auc() -> None:
    primary, _ = task_metrics("multiclass")
    rng = np.random.default_rng(99)
    truth = primary(*multiclass_arrays(100_000, 1.0, rng), CLASSES)
    estimates, ses = [], []
    for _ in range(250):
        y, proba = multiclass_arrays(300, 1.0, rng)
        estimates.append(primary(y, proba, CLASSES))
        ses.append(macro_auc_standard_error(y, proba, CLASSES))
    est, se = np.asarray(estimates), np.asarray(ses)
    assert 0.92 <= coverage(est, se, truth) <= 0.98
    assert est.std() / se.mean() == pytest.approx(1.0, abs=0.12)
    assert math.isnan(macro_auc_standard_error(["a", "a"], [[0.5, 0.5], [0.4, 0.6]], ["a", "b"]))


# -- Page-Hinkley per task -------------------------------------------------------------------


def test_page_hinkley_alarms_on_a_rising_squared_error() -> None:
    state: dict | None = None
    for day in range(4):  # 1000 rows with the usual error: no alarm
        ph = next_detector_state(
            state, regression_rows(250, 1.0, seed=day), 0.075, 115.0, "regression"
        )
        state = ph.to_dict()
    assert not ph.alarm and ph.n == 1000
    for day in range(4, 8):  # the error doubles
        ph = next_detector_state(
            state, regression_rows(250, 2.0, seed=day), 0.075, 115.0, "regression"
        )
        state = ph.to_dict()
    assert ph.alarm and ph.alarm_at is not None and 1000 < ph.alarm_at < 1300


def test_page_hinkley_multiclass_loss_skips_unseen_labels() -> None:
    rows = multiclass_rows(100, 1.0)
    rows.loc[:9, "y"] = "new_class"
    losses = task_row_losses(rows, "multiclass")
    assert losses.shape == (90,) and np.all(losses > 0)
    ph = next_detector_state(None, rows, 0.075, 115.0, task="multiclass")
    assert ph.n == 90
    only_unseen = rows.assign(y="new_class")
    assert next_detector_state(ph.to_dict(), only_unseen, 0.075, 115.0, "multiclass").n == 90


# -- target drift ----------------------------------------------------------------------------


def test_target_drift_regression() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(50, 10, 3000)
    same = target_drift("regression", reference, rng.normal(50, 10, 800))
    assert not same["drifted"] and same["test"] == "kolmogorov_smirnov"
    moved = target_drift("regression", reference, rng.normal(56, 10, 800))
    assert moved["drifted"] and moved["p_value"] < 0.05 and moved["statistic"] >= 0.1
    assert moved["window_mean"] == pytest.approx(56, abs=1.5)
    assert moved["reference_mean"] == pytest.approx(50, abs=1.0)
    json.dumps(moved)


def test_target_drift_multiclass() -> None:
    rng = np.random.default_rng(1)
    reference = rng.choice(CLASSES, 3000, p=[0.5, 0.3, 0.2])
    same = target_drift("multiclass", reference, rng.choice(CLASSES, 800, p=[0.5, 0.3, 0.2]))
    assert not same["drifted"] and same["test"] == "chi_square"
    moved = target_drift("multiclass", reference, rng.choice([*CLASSES, "d"], 800))
    assert moved["drifted"] and moved["cramers_v"] >= 0.1
    assert set(moved["window_shares"]) == set(moved["reference_shares"]) == {"a", "b", "c", "d"}
    assert moved["reference_shares"]["d"] == 0.0
    assert sum(moved["window_shares"].values()) == pytest.approx(1.0)
    json.dumps(moved)
    # numeric classes compare as text: 3.0 is "3"
    assert target_drift("multiclass", [1, 2, 3], [3.0, 2.0, 1.0])["window_shares"] == {
        "1": pytest.approx(1 / 3),
        "2": pytest.approx(1 / 3),
        "3": pytest.approx(1 / 3),
    }


def test_target_drift_binary_needs_significance_and_effect() -> None:
    rng = np.random.default_rng(2)
    reference = (rng.random(5000) < 0.2).astype(int)
    moved = target_drift("binary", reference, (rng.random(1000) < 0.4).astype(int))
    assert moved["drifted"] and moved["window_rate"] == pytest.approx(0.4, abs=0.04)
    assert moved["reference_rate"] == pytest.approx(0.2, abs=0.02)
    same = target_drift("binary", reference, (rng.random(1000) < 0.2).astype(int))
    assert not same["drifted"]
    # 200 000 labels make a 0.2 -> 0.21 change significant, but too small to be drift
    big = target_drift(
        "binary", (rng.random(200_000) < 0.2).astype(int), (rng.random(200_000) < 0.21)
    )
    assert big["p_value"] < 0.05 and big["cramers_v"] < 0.1 and not big["drifted"]
    empty = target_drift("binary", reference, [])
    assert empty["p_value"] is None and not empty["drifted"] and empty["window_rate"] is None
    json.dumps(moved)
