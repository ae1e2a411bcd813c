"""Tests for live performance from late labels and the concept-drift call (``lib.performance``).

Why: this verdict is what triggers a retrain on performance grounds, so its failure modes are
expensive either way. The join must not invent or double-count rows (a re-scored id counts
once, a label with no prediction is counted, not dropped silently). A verdict on a handful of
labels is noise, so earlier label days are pooled, but never future days (that would leak labels
from after the day being judged) nor days beyond the window (that would dilute a fresh drop).
Degradation must follow the two documented rules, and "concept drift" must mean degraded while
the features did not drift (or the Page-Hinkley alarm), since covariate drift calls for a
different response. The reason text is what an operator reads, so it must carry the figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from retrain_assets.lib.monitoring.performance import (
    PerformanceSettings,
    PerformanceVerdict,
    assess,
    join_predictions,
)

SETTINGS = PerformanceSettings()  # min 200 labels, 7-day window, 5 % drop, floor 0.6
HEALTHY = 1.19  # latent separation giving AUC ≈ 0.80
DEGRADED = 0.545  # AUC ≈ 0.65: below 0.95 × 0.80 but above the 0.6 floor
BROKEN = 0.18  # AUC ≈ 0.55: below the floor


def scored(n: int, sep: float = HEALTHY, *, seed: int = 0, prior: float = 0.2) -> pd.DataFrame:
    """A joined frame (y, score) from a calibrated model whose labels follow z with ``sep``."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prior).astype(int)
    z = sep * y + rng.standard_normal(n)
    score = 1 / (1 + np.exp(-(math.log(0.25) + HEALTHY * z - HEALTHY**2 / 2)))
    return pd.DataFrame({"y": y, "score": score})


def days_of(sizes: dict[str, int], sep: float = HEALTHY) -> dict[str, pd.DataFrame]:
    return {day: scored(n, sep, seed=i) for i, (day, n) in enumerate(sizes.items())}


def auc_of(frames: Sequence[pd.DataFrame]) -> float:
    rows = pd.concat(frames)
    return float(roc_auc_score(rows["y"], rows["score"]))


# -- join ------------------------------------------------------------------------------------


def test_join_counts_unmatched_and_keeps_the_last_prediction() -> None:
    labels = pd.DataFrame({"loan_id": ["a", "b", "c", "d", "e"], "defaulted": [1, 0, 0, 1, 0]})
    predictions = pd.DataFrame(
        {
            "loan_id": ["a", "b", "b", "c", "z"],
            "score": [0.9, 0.2, 0.4, 0.1, 0.5],
            "model_version": ["3", "3", "4", "3", "3"],
        }
    )
    joined, unmatched = join_predictions(labels, predictions, "loan_id", "defaulted")
    assert unmatched == 2  # d and e were never scored; z has no label and is simply not joined
    assert list(joined.columns) == ["loan_id", "y", "score", "model_version"]
    assert joined["loan_id"].tolist() == ["a", "b", "c"]
    assert joined["y"].tolist() == [1, 0, 0]
    assert joined["score"].tolist() == [0.9, 0.4, 0.1]  # b re-scored: the last score counts
    assert joined["model_version"].tolist() == ["3", "4", "3"]
    assert pd.api.types.is_integer_dtype(joined["y"])
    assert pd.api.types.is_float_dtype(joined["score"])


def test_join_accepts_int8_targets_and_rejects_non_binary() -> None:
    predictions = pd.DataFrame({"id": [1, 2], "score": [0.3, 0.6]})
    labels = pd.DataFrame({"id": [1, 2], "t": pd.Series([0, 1], dtype="int8")})
    joined, unmatched = join_predictions(labels, predictions, "id", "t")
    assert unmatched == 0 and joined["y"].tolist() == [0, 1]
    with pytest.raises(ValueError, match="0/1"):
        join_predictions(pd.DataFrame({"id": [1, 2], "t": [0, 2]}), predictions, "id", "t")
    with pytest.raises(KeyError, match="score"):
        join_predictions(labels, predictions.rename(columns={"score": "p"}), "id", "t")


def test_join_with_no_match_is_empty_not_an_error() -> None:
    labels = pd.DataFrame({"id": [1, 2, 3], "t": [0, 1, 0]})
    predictions = pd.DataFrame({"id": [7], "score": [0.3]})
    joined, unmatched = join_predictions(labels, predictions, "id", "t")
    assert len(joined) == 0 and unmatched == 3


# -- pooling ---------------------------------------------------------------------------------


def test_enough_labels_today_uses_today_only() -> None:
    by_day = days_of({"2024-03-10": 400, "2024-03-09": 400})
    verdict = assess(by_day, "2024-03-10", 0.80, SETTINGS)
    assert verdict.pooled_days == ["2024-03-10"] and verdict.n_labels == 400
    assert verdict.auc == pytest.approx(auc_of([by_day["2024-03-10"]]))


def test_pooling_takes_newest_earlier_days_until_min_labels() -> None:
    by_day = days_of(
        {
            "2024-03-10": 120,
            "2024-03-11": 5000,  # future: labels from after the day judged, never used
            "2024-03-09": 30,
            "2024-03-08": 40,
            "2024-03-06": 100,
            "2024-03-05": 100,  # not needed: 200 reached before it
        }
    )
    verdict = assess(by_day, "2024-03-10", 0.80, SETTINGS)
    assert verdict.pooled_days == ["2024-03-10", "2024-03-09", "2024-03-08", "2024-03-06"]
    assert verdict.n_labels == 290
    assert verdict.auc == pytest.approx(auc_of([by_day[d] for d in verdict.pooled_days]))
    assert verdict.verdict_made


def test_pooling_never_reaches_beyond_the_window() -> None:
    by_day = days_of({"2024-03-10": 100, "2024-03-03": 50, "2024-03-02": 1000, "2024-03-12": 900})
    verdict = assess(by_day, "2024-03-10", 0.80, SETTINGS)
    assert verdict.pooled_days == ["2024-03-10", "2024-03-03"]  # 03-03 is 7 days back: the edge
    assert verdict.n_labels == 150
    assert not verdict.degraded and not verdict.verdict_made
    assert "only 150 labels (< 200)" in verdict.reason
    assert verdict.auc is not None  # indicative figure still computed with both classes present


def test_no_labels_today_pools_earlier_days() -> None:
    by_day = days_of({"2024-03-08": 300})
    verdict = assess(by_day, "2024-03-10", 0.80, SETTINGS)
    assert verdict.pooled_days == ["2024-03-08"] and verdict.verdict_made


def test_no_labels_at_all() -> None:
    verdict = assess({}, "2024-03-10", 0.80, SETTINGS)
    assert verdict.n_labels == 0 and verdict.pooled_days == []
    assert verdict.auc is None and verdict.log_loss is None and verdict.positive_rate is None
    assert not verdict.degraded and not verdict.concept_drift
    assert "no labelled rows" in verdict.reason


# -- degradation -----------------------------------------------------------------------------


def test_healthy_model_is_not_degraded() -> None:
    verdict = assess(days_of({"2024-03-10": 3000}), "2024-03-10", 0.80, SETTINGS, drift_share=0.0)
    assert verdict.auc == pytest.approx(0.80, abs=0.03)
    assert not verdict.degraded and not verdict.concept_drift and verdict.verdict_made
    assert verdict.reason.startswith("healthy")
    assert f"auc {verdict.auc:.3f} ≥ 0.95 × 0.800 = 0.760 (baseline)" in verdict.reason
    assert "0.6 (floor)" in verdict.reason


def test_degraded_by_relative_drop() -> None:
    by_day = days_of({"2024-03-10": 3000}, DEGRADED)
    verdict = assess(by_day, "2024-03-10", 0.82, SETTINGS, drift_share=0.5)
    assert verdict.auc is not None and 0.6 < verdict.auc < 0.95 * 0.82
    assert verdict.degraded
    assert f"auc {verdict.auc:.3f} < 0.95 × 0.820 = 0.779 (baseline)" in verdict.reason
    assert "(floor)" not in verdict.reason  # above the floor: only the baseline rule fired
    assert "3000 labels" in verdict.reason
    # a looser relative drop lets the same figures pass
    loose = assess(by_day, "2024-03-10", 0.82, PerformanceSettings(relative_drop=0.25))
    assert not loose.degraded


def test_degraded_by_floor_even_without_baseline() -> None:
    verdict = assess(days_of({"2024-03-10": 3000}, BROKEN), "2024-03-10", None, SETTINGS)
    assert verdict.auc is not None and verdict.auc < 0.6
    assert verdict.degraded and verdict.baseline_auc is None
    assert f"auc {verdict.auc:.3f} < 0.6 (floor)" in verdict.reason
    healthy = assess(days_of({"2024-03-10": 3000}), "2024-03-10", None, SETTINGS)
    assert not healthy.degraded and "no baseline" in healthy.reason


def test_single_class_gives_no_auc_and_no_verdict() -> None:
    frame = scored(500, prior=0.0)
    verdict = assess({"2024-03-10": frame}, "2024-03-10", 0.80, SETTINGS, drift_share=0.0)
    assert verdict.auc is None and not verdict.degraded and not verdict.verdict_made
    assert verdict.positive_rate == 0.0 and verdict.log_loss is not None
    assert "500 labels of one class only" in verdict.reason


def test_few_degraded_labels_are_not_a_verdict() -> None:
    verdict = assess(days_of({"2024-03-10": 120}, BROKEN), "2024-03-10", 0.80, SETTINGS)
    assert not verdict.degraded and not verdict.concept_drift
    assert "only 120 labels (< 200)" in verdict.reason


# -- concept drift ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("drift_share", "concept", "text"),
    [
        (0.05, True, "concept drift: degraded while covariate drift share 0.050 < 0.2"),
        (0.5, False, "covariate drift share 0.500 ≥ 0.2: degradation explained by covariate"),
        (None, False, "no covariate drift share given"),
    ],
)
def test_concept_drift_is_degradation_without_covariate_drift(
    drift_share: float | None, concept: bool, text: str
) -> None:
    by_day = days_of({"2024-03-10": 2000}, DEGRADED)
    verdict = assess(by_day, "2024-03-10", 0.80, SETTINGS, drift_share=drift_share)
    assert verdict.degraded
    assert verdict.concept_drift is concept
    assert text in verdict.reason


def test_detector_alarm_flags_concept_drift_on_its_own() -> None:
    healthy = assess(days_of({"2024-03-10": 2000}), "2024-03-10", 0.80, SETTINGS, drift_share=0.6)
    assert not healthy.degraded and not healthy.concept_drift
    alarmed = assess(
        days_of({"2024-03-10": 2000}),
        "2024-03-10",
        0.80,
        SETTINGS,
        drift_share=0.6,
        detector_alarm=True,
    )
    assert not alarmed.degraded and alarmed.concept_drift
    assert "Page-Hinkley alarm" in alarmed.reason


def test_metadata_is_flat_and_scalar() -> None:
    by_day = days_of({"2024-03-10": 100, "2024-03-09": 150}, DEGRADED)
    verdict = assess(by_day, "2024-03-10", 0.80, SETTINGS, drift_share=0.1)
    meta = verdict.to_metadata()
    assert all(v is None or isinstance(v, (bool, int, float, str)) for v in meta.values())
    assert meta["pooled_days"] == "2024-03-10, 2024-03-09" and meta["n_labels"] == 250
    assert meta["degraded"] is True and meta["concept_drift"] is True
    assert meta["auc"] == verdict.auc and meta["reason"] == verdict.reason
    assert isinstance(verdict, PerformanceVerdict)


def test_nan_baseline_counts_as_none() -> None:
    verdict = assess(days_of({"2024-03-10": 1000}), "2024-03-10", float("nan"), SETTINGS)
    assert verdict.baseline_auc is None and not verdict.degraded


def test_a_dip_within_the_auc_noise_of_a_small_day_is_not_degraded() -> None:
    from retrain_assets.lib.monitoring.performance import auc_standard_error

    # 400 labels, 20 % positives: the AUC's standard error is about 0.026
    y = np.array([1] * 80 + [0] * 320)
    se = auc_standard_error(0.76, y)
    assert 0.02 < se < 0.035
    bar_settings = PerformanceSettings(relative_drop=0.05)  # bar 0.95 x 0.805 = 0.765
    from retrain_assets.lib.monitoring.performance import _judge

    below, text = _judge(0.7635, 0.805, bar_settings, se)
    assert not below and "not significantly" in text
    below, text = _judge(0.66, 0.805, bar_settings, se)
    assert below and "upper 0.99 bound" in text
