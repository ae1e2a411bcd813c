"""The calibrator's own noise, the candidate's calibration hold-out, and what an estimate means
(degraded, fell, neither) and how it compares with the AUC the labels gave: plain functions."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from retrain_assets.backtest.report import DayRecord, estimation_summary
from retrain_assets.lib.monitoring.estimation import (
    IDENTITY,
    Calibrator,
    PerformanceEstimate,
    calibration_auc_se,
    estimate_performance,
    expected_auc,
    fit_calibrator,
)
from retrain_assets.lib.monitoring.impact import estimation_error, judge_estimate
from retrain_assets.lib.training.calibration import (
    CalibrationSettings,
    Holdout,
    calibrate,
    calibration_result,
    time_ordered_holdout,
)
from retrain_assets.lib.training.fitting import DAY, ORDER, TARGET


def _estimate(auc: float | None, half: float = 0.02, n: int = 1000) -> PerformanceEstimate:
    low = None if auc is None else auc - half
    high = None if auc is None else auc + half
    return PerformanceEstimate(n, auc, low, high, half / 1.645, 0.8, 0.4, 0.3, 0.5, 0.9)


SETTINGS = {"relative_drop": 0.05, "absolute_floor": 0.6, "min_rows": 200}


def test_degraded_when_the_whole_interval_is_under_the_bar() -> None:
    verdict = judge_estimate(_estimate(0.70), 0.80, **SETTINGS)  # bar 0.76, high 0.72
    assert verdict.degraded and verdict.fell and verdict.bar == pytest.approx(0.76)
    assert "upper end below the bar 0.760" in verdict.reason
    assert "0.95 x the champion's test AUC 0.800" in verdict.reason


def test_a_point_under_the_bar_is_not_enough() -> None:
    verdict = judge_estimate(_estimate(0.75), 0.80, **SETTINGS)  # high 0.77 > bar 0.76
    assert not verdict.degraded and verdict.fell  # but it is significantly under 0.80
    assert "below the champion's test AUC 0.800, not below the bar" in verdict.reason


def test_neither_when_the_interval_reaches_the_test_auc() -> None:
    verdict = judge_estimate(_estimate(0.79), 0.80, **SETTINGS)
    assert not verdict.degraded and not verdict.fell
    assert "not significantly below the bar" in verdict.reason


def test_the_floor_is_the_bar_without_a_baseline_or_when_higher() -> None:
    assert judge_estimate(_estimate(0.55), None, **SETTINGS).degraded
    assert not judge_estimate(_estimate(0.55), None, **SETTINGS).reason.startswith("no")
    low_baseline = judge_estimate(_estimate(0.55), 0.61, **SETTINGS)
    assert low_baseline.bar == 0.6 and "the floor 0.6" in low_baseline.reason


def test_no_verdict_on_too_few_rows_or_an_undefined_auc() -> None:
    few = judge_estimate(_estimate(0.5, n=100), 0.8, **SETTINGS)
    assert not few.degraded and not few.fell and few.reason == "no estimate: 100 rows < 200"
    undefined = judge_estimate(_estimate(None), 0.8, **SETTINGS)
    assert not undefined.degraded and undefined.reason == "no estimate: no AUC defined"


def test_estimation_error_against_the_realized_auc() -> None:
    check = estimation_error(_estimate(0.80), 0.83)
    assert check is not None
    assert check.error == pytest.approx(0.03) and not check.covered
    assert estimation_error(_estimate(0.80), 0.81).covered
    assert estimation_error(_estimate(0.80), None) is None
    assert estimation_error(_estimate(0.80), math.nan) is None
    assert estimation_error(_estimate(None), 0.8) is None


def test_calibration_se_widens_the_interval_in_quadrature() -> None:
    rng = np.random.default_rng(3)
    p = rng.beta(2, 5, 1000)
    plain = estimate_performance(p, p)
    wider = estimate_performance(p, p, calibration_se=0.02)
    assert wider.auc == plain.auc and wider.calibration_se == 0.02
    assert wider.auc_se == pytest.approx(math.hypot(plain.auc_se, 0.02))
    assert wider.auc_high - wider.auc_low > plain.auc_high - plain.auc_low
    with pytest.raises(ValueError, match="calibration_se"):
        estimate_performance(p, p, calibration_se=-1.0)


def test_calibration_auc_se_is_the_spread_of_refitted_calibrators() -> None:
    rng = np.random.default_rng(4)
    p_true = rng.beta(2, 5, 800)
    y = (rng.random(800) < p_true).astype(int)
    scores = np.clip(p_true**0.6, 0, 1)  # over-confident in logit terms: a real fit to do
    test = np.clip(rng.beta(2, 5, 2000) ** 0.6, 0, 1)
    se = calibration_auc_se(scores, y, "sigmoid", test, draws=100, seed=0)
    assert se == calibration_auc_se(scores, y, "sigmoid", test, draws=100, seed=0)
    # The same spread, measured by refitting on independent samples of the same size.
    fresh = []
    for _ in range(100):
        p = rng.beta(2, 5, 800)
        labels = (rng.random(800) < p).astype(int)
        cal = fit_calibrator(np.clip(p**0.6, 0, 1), labels, "sigmoid")
        fresh.append(expected_auc(test, cal.apply(test)))
    assert 0.5 * np.std(fresh) < se < 2.0 * np.std(fresh)
    assert calibration_auc_se(scores, y, "identity", test) == 0.0
    more = calibration_auc_se(np.tile(scores, 8), np.tile(y, 8), "sigmoid", test, draws=100)
    assert more < se / 2  # 8x the rows: about 1/sqrt(8) of the noise


def test_calibrator_keeps_its_auc_se_through_json() -> None:
    cal = Calibrator("sigmoid", {"a": 0.9, "b": -0.1}, n_rows=500, auc_se=0.013)
    assert Calibrator.from_dict(cal.to_dict()) == cal
    assert Calibrator.from_dict({"method": "identity"}).auc_se == 0.0  # older files
    with pytest.raises(ValueError, match="auc_se"):
        Calibrator("identity", {}, auc_se=math.nan)


def _train(n: int, days: int) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * x))).astype(int)
    day = np.repeat([f"2024-01-{d + 1:02d}" for d in range(days)], n // days)
    return pd.DataFrame({"x": x, TARGET: y, DAY: day, ORDER: np.arange(n)})


def test_the_holdout_is_the_newest_rows_in_time_order() -> None:
    train = _train(1000, 10).sample(frac=1.0, random_state=0)  # shuffled: order must be restored
    older, newest = time_ordered_holdout(train, 0.2)
    assert len(newest) == 200 and len(older) == 800
    assert older[ORDER].max() < newest[ORDER].min()
    assert set(newest[DAY]) == {"2024-01-09", "2024-01-10"}


def _fit(rows: pd.DataFrame):
    return make_pipeline(LogisticRegression()).fit(rows[["x"]], rows[TARGET])


def _score(model, rows: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(rows[["x"]])[:, 1]


def test_calibrate_fits_on_the_holdout_and_measures_its_own_noise() -> None:
    train = _train(2000, 10)
    holdout = calibrate(_fit, _score, train, CalibrationSettings("sigmoid", 0.2, 200))
    assert holdout.calibrator.method == "sigmoid" and holdout.rows == 400
    assert holdout.days == ("2024-01-09", "2024-01-10")
    assert "newest 400 train rows (2024-01-09..2024-01-10)" in holdout.note
    test = _train(1000, 10)
    result = calibration_result(holdout, test[TARGET].to_numpy(), _score(_fit(train), test))
    assert result.fitted and 0 < result.calibrator.auc_se < 0.05
    assert result.metrics["calibration_auc_se"] == result.calibrator.auc_se
    assert result.test_ece < 0.1


def test_calibrate_falls_back_to_the_identity_and_says_why() -> None:
    train = _train(500, 5)
    few = calibrate(_fit, _score, train, CalibrationSettings("sigmoid", 0.2, 200))
    assert few.calibrator.method == "identity"
    assert few.note == "not calibrated: 100 held-out rows < calibration.min_rows 200"
    one_class = train.assign(**{TARGET: 0})
    single = calibrate(_fit, _score, one_class, CalibrationSettings("sigmoid", 0.2, 50))
    assert single.note == "not calibrated: a single class in a part"
    result = calibration_result(single, one_class[TARGET].to_numpy(), np.full(500, 0.1))
    assert not result.fitted and result.calibrator.auc_se == 0.0


def _record(day: str, error: float | None, covered: bool | None = None) -> DayRecord:
    check = {} if error is None else {"error": error, "covered": covered}
    return DayRecord(day=day, estimate_check=check)


def test_estimation_summary_counts_only_label_days_with_both_figures() -> None:
    records = [
        _record("2024-01-01", None),
        _record("2024-01-02", 0.01, True),
        _record("2024-01-03", -0.03, False),
        _record("2024-01-04", 0.02, True),
        _record("2024-01-05", -0.05, False),
    ]
    out = estimation_summary(records, "2024-01-04")
    assert out["estimation_days"] == 4
    assert out["estimation_mae"] == pytest.approx(0.0275)
    assert out["estimation_median_abs_error"] == pytest.approx(0.025)
    assert out["estimation_coverage"] == 0.5
    assert out["estimation_days_after_drift"] == 2
    assert out["estimation_mae_after_drift"] == pytest.approx(0.035)
    assert out["estimation_coverage_after_drift"] == 0.5
    empty = estimation_summary([_record("2024-01-01", None)], None)
    assert empty == {
        "estimation_mae": None,
        "estimation_median_abs_error": None,
        "estimation_coverage": None,
        "estimation_days": 0,
    }


def test_the_estimates_error_on_the_test_rows_widens_the_interval() -> None:
    rng = np.random.default_rng(6)
    p_hold = rng.beta(2, 5, 2000)
    y_hold = (rng.random(2000) < p_hold).astype(int)
    holdout = Holdout(IDENTITY, 2000, None, "", p_hold, y_hold)
    sound = calibration_result(
        dataclasses.replace(holdout, calibrator=fit_calibrator(p_hold, y_hold)),
        *_labelled(rng, lambda p: p),
    )
    # The model's scores on the test rows mean more than the hold-out said: the estimate from
    # its calibrator is off there by far more than label noise, and the interval says so.
    drifted = calibration_result(
        dataclasses.replace(holdout, calibrator=fit_calibrator(p_hold, y_hold)),
        *_labelled(rng, lambda p: expit(3 * logit(np.clip(p, 1e-6, 1 - 1e-6)))),
    )
    error = drifted.metrics["calibration_test_auc_error"]
    assert abs(error) > 0.05 > abs(sound.metrics["calibration_test_auc_error"])
    assert drifted.calibrator.auc_se > 0.8 * abs(error)
    assert sound.calibrator.auc_se < 0.03
    assert sound.metrics["calibration_bootstrap_auc_se"] <= sound.calibrator.auc_se


def _labelled(rng: np.random.Generator, truth) -> tuple[np.ndarray, np.ndarray]:
    """(labels, scores) of 3,000 test rows whose true probability is truth(score)."""
    scores = rng.beta(2, 5, 3000)
    return (rng.random(3000) < truth(scores)).astype(int), scores
