"""Confidence-based performance estimation (lib/monitoring/estimation.py): the expected AUC is
the exact expectation-ratio it claims to be, and it, its interval, the expected accuracy and log
loss match what label draws y ~ Bernoulli(p) actually give; calibrators recover probabilities and
survive a JSON round trip; bad input fails loudly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit, logit
from scipy.stats import rankdata

from retrain_assets.lib.monitoring.estimation import (
    IDENTITY,
    Calibrator,
    PerformanceEstimate,
    estimate_performance,
    expected_auc,
    expected_calibration_error,
    fit_calibrator,
    reliability_curve,
    reliability_png,
)

DRAWS = 2000


def brute_force_auc(s: np.ndarray, p: np.ndarray) -> float:
    """E[N] / E[D] over ordered pairs i != j, by the definition."""
    num = den = 0.0
    for i in range(s.size):
        for j in range(s.size):
            if i == j:
                continue
            w = p[i] * (1.0 - p[j])
            den += w
            num += w * (1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0)
    return num / den


def draw_labels(p: np.ndarray, seed: int, draws: int = DRAWS) -> np.ndarray:
    """``draws`` x n independent Bernoulli(p) labels as floats."""
    rng = np.random.default_rng(seed)
    return (rng.random((draws, p.size)) < p).astype(np.float64)


def realized_auc(s: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The Mann-Whitney AUC (ties 1/2) of ``s`` for each row of ``labels``."""
    ranks = rankdata(s)  # mid-ranks
    n1 = labels.sum(axis=1)
    n0 = s.size - n1
    assert np.all((n1 > 0) & (n0 > 0))
    return (labels @ ranks - n1 * (n1 + 1) / 2) / (n1 * n0)


def mc_error(values: np.ndarray) -> float:
    return float(values.std(ddof=1) / np.sqrt(values.size))


@pytest.mark.parametrize("n", [2, 3, 7, 40, 90])
def test_expected_auc_equals_the_brute_force_definition(n: int) -> None:
    rng = np.random.default_rng(n)
    s = np.round(rng.random(n), 1)  # ~10 distinct values: many ties
    p = rng.random(n)  # not monotone in s
    if n > 3:
        assert np.unique(s).size < n
    assert expected_auc(s, p) == pytest.approx(brute_force_auc(s, p), abs=1e-12, rel=0)
    # a few p at 0 and 1 exactly, and unsorted integer-like scores
    p[: n // 2] = np.round(p[: n // 2])
    s = rng.integers(0, 4, n).astype(float)
    auc = expected_auc(s, p)
    if auc is not None:
        assert auc == pytest.approx(brute_force_auc(s, p), abs=1e-12, rel=0)


def test_standard_error_is_the_delta_method_on_mid_ranks() -> None:
    """sqrt(sum p(1-p) (dAUC/dy_i)^2) at y = p, with AUC(y) = (sum y r - n1(n1+1)/2) /
    (n1 (n - n1)), n1 = sum y, r = mid-ranks: here by central differences."""
    rng = np.random.default_rng(15)
    s = np.round(rng.random(60), 1)  # tie groups of ~6
    p = rng.random(60)
    ranks = rankdata(s)

    def auc_of(y: np.ndarray) -> float:
        n1 = y.sum()
        return float((y @ ranks - n1 * (n1 + 1) / 2) / (n1 * (y.size - n1)))

    h = 1e-6
    grad = np.array([auc_of(p + h * e) - auc_of(p - h * e) for e in np.eye(p.size)]) / (2 * h)
    est = estimate_performance(s, p)
    assert est.auc_se == pytest.approx(np.sqrt(np.sum(p * (1 - p) * grad**2)), rel=1e-6)


def test_expected_auc_and_interval_match_label_draws_on_calibrated_scores() -> None:
    rng = np.random.default_rng(1)
    p = rng.beta(2.0, 5.0, 1000)
    realized = realized_auc(p, draw_labels(p, seed=2))
    est = estimate_performance(p, p, confidence=0.9)
    assert est.auc is not None and est.auc_se is not None
    assert est.auc_low is not None and est.auc_high is not None
    assert abs(realized.mean() - est.auc) < 0.002
    assert est.auc_se == pytest.approx(realized.std(ddof=1), rel=0.10)
    coverage = np.mean((realized >= est.auc_low) & (realized <= est.auc_high))
    assert 0.87 <= coverage <= 0.93
    assert est.auc_high - est.auc_low == pytest.approx(2 * 1.6448536 * est.auc_se, rel=1e-6)


@pytest.mark.parametrize("relation", ["cubed", "noisy rounded"])
def test_expected_auc_when_scores_are_not_the_probabilities(relation: str) -> None:
    rng = np.random.default_rng(3)
    p = rng.beta(2.0, 4.0, 800)
    if relation == "cubed":
        s = np.power(p, 3.0)
    else:  # non-monotone in p, and heavily tied
        s = np.round(np.clip(p + rng.normal(0.0, 0.15, p.size), 0.0, 1.0), 1)
        assert np.unique(s).size <= 11
    realized = realized_auc(s, draw_labels(p, seed=4))
    est = estimate_performance(s, p)
    auc = expected_auc(s, p)
    assert auc is not None and est.auc == auc and est.auc_se is not None
    assert abs(realized.mean() - auc) < max(0.002, 4 * mc_error(realized))
    assert est.auc_se == pytest.approx(realized.std(ddof=1), rel=0.10)  # mid-ranks under ties
    # the probabilities, not the scores, carry the label model: using s as p is wrong here
    wrong = expected_auc(s, np.clip(s, 0.0, 1.0))
    assert wrong is not None and abs(wrong - realized.mean()) > 0.02


def distorted(p: np.ndarray) -> np.ndarray:
    """An over-confident, shifted model: what a miscalibrated classifier reports."""
    return np.asarray(expit(2.0 * logit(p) + 0.5))


def test_sigmoid_calibration_fixes_a_miscalibrated_model() -> None:
    rng = np.random.default_rng(5)
    p_fit = rng.beta(2.0, 3.0, 20_000)
    y_fit = (rng.random(p_fit.size) < p_fit).astype(float)
    cal = fit_calibrator(distorted(p_fit), y_fit, "sigmoid")
    assert cal.method == "sigmoid" and cal.n_rows == 20_000
    assert cal.params["a"] == pytest.approx(0.5, abs=0.05)  # the inverse distortion
    assert cal.params["b"] == pytest.approx(-0.25, abs=0.05)

    p_new = rng.beta(2.0, 3.0, 20_000)
    y_new = (rng.random(p_new.size) < p_new).astype(float)
    s_new = distorted(p_new)
    assert expected_calibration_error(y_new, s_new) > 0.05
    assert expected_calibration_error(y_new, cal.apply(s_new)) < 0.02

    p = rng.beta(2.0, 3.0, 1000)
    s = distorted(p)
    realized = realized_auc(s, draw_labels(p, seed=6)).mean()
    calibrated = expected_auc(s, cal.apply(s))
    raw = expected_auc(s, s)
    assert calibrated is not None and raw is not None
    assert abs(calibrated - realized) < 0.01
    assert abs(raw - realized) > 0.02


def test_fit_calibrator_is_deterministic_and_refuses_too_little_data() -> None:
    rng = np.random.default_rng(7)
    s = rng.random(500)
    y = (rng.random(500) < s).astype(float)
    assert fit_calibrator(s, y) == fit_calibrator(s, y)
    with pytest.raises(ValueError, match=r"50 labelled rows < min_rows=100"):
        fit_calibrator(s[:50], y[:50])
    with pytest.raises(ValueError, match=r"0 positive and 500 negative"):
        fit_calibrator(s, np.zeros(500))
    with pytest.raises(ValueError, match=r"y: 1 of 500 labels are not 0/1"):
        fit_calibrator(s, np.where(np.arange(500) == 3, 0.5, y))
    with pytest.raises(ValueError, match="unknown calibration method 'beta'"):
        fit_calibrator(s, y, "beta")
    # separable data: Platt's smoothed targets keep the slope finite
    separable = fit_calibrator(s, (s > 0.5).astype(float))
    assert 1.0 < separable.params["a"] < 20.0


def test_sigmoid_fit_is_the_optimum_of_platts_smoothed_objective() -> None:
    rng = np.random.default_rng(14)
    s = rng.random(150)
    y = (rng.random(150) < s**2).astype(float)
    x = logit(np.clip(s, 1e-7, 1 - 1e-7))
    n_pos, n_neg = y.sum(), (1 - y).sum()
    smoothed = np.where(y > 0.5, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))

    def optimum(t: np.ndarray) -> np.ndarray:
        def loss(ab: np.ndarray) -> float:
            z = ab[0] * x + ab[1]
            return float(np.sum(np.logaddexp(0.0, z) - t * z))

        return minimize(loss, np.zeros(2), method="BFGS", options={"gtol": 1e-10}).x

    fitted = fit_calibrator(s, y, "sigmoid")
    expected = optimum(smoothed)
    assert fitted.params["a"] == pytest.approx(expected[0], abs=1e-5)
    assert fitted.params["b"] == pytest.approx(expected[1], abs=1e-5)
    assert abs(fitted.params["a"] - optimum(y)[0]) > 0.05  # the smoothing matters at 150 rows


def test_isotonic_calibrator_is_monotone_and_reduces_ece() -> None:
    rng = np.random.default_rng(8)
    p = rng.beta(2.0, 3.0, 20_000)
    y = (rng.random(p.size) < p).astype(float)
    cal = fit_calibrator(distorted(p), y, "isotonic")
    assert cal.method == "isotonic" and len(cal.params["x"]) > 5
    grid = np.linspace(-0.5, 1.5, 2001)  # beyond the fitted range too
    out = cal.apply(grid)
    assert np.all(np.diff(out) >= 0) and out.min() >= 0.0 and out.max() <= 1.0
    p_new = rng.beta(2.0, 3.0, 20_000)
    y_new = (rng.random(p_new.size) < p_new).astype(float)
    s_new = distorted(p_new)
    before = expected_calibration_error(y_new, s_new)
    assert expected_calibration_error(y_new, cal.apply(s_new)) < min(0.02, before / 3)


def test_calibrators_round_trip_through_json() -> None:
    rng = np.random.default_rng(9)
    s = rng.random(1000)
    y = (rng.random(1000) < s**2).astype(float)
    grid = np.concatenate([rng.random(500), [0.0, 1.0, -1.0, 2.0, 1e-9]])
    for cal in (fit_calibrator(s, y, "sigmoid"), fit_calibrator(s, y, "isotonic"), IDENTITY):
        back = Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
        assert back == cal
        np.testing.assert_array_equal(back.apply(grid), cal.apply(grid))
        assert back.apply(grid).shape == grid.shape
    assert IDENTITY.apply(np.array([-0.2, 0.3, 1.4])).tolist() == [0.0, 0.3, 1.0]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"method": "platt", "params": {}}, "unknown calibration method 'platt'"),
        ({"params": {}}, "lacks 'method'"),
        ({"method": "sigmoid", "params": {"a": 1.0}}, "params lack 'b'"),
        ({"method": "sigmoid", "params": {"a": 1.0, "b": "x"}}, "'b' must be a number"),
        ({"method": "sigmoid", "params": {"a": float("nan"), "b": 0.0}}, "'a' must be finite"),
        ({"method": "sigmoid", "params": {"a": 1, "b": 0, "c": 2}}, "unknown params"),
        ({"method": "isotonic", "params": {"x": [0.0, 1.0]}}, "params lack 'y'"),
        ({"method": "isotonic", "params": {"x": [0.0, 1.0], "y": [0.1]}}, "'x' has 2 values"),
        ({"method": "isotonic", "params": {"x": [0.5, 0.2], "y": [0, 1]}}, "strictly increasing"),
        ({"method": "isotonic", "params": {"x": [0, 1], "y": [0.2, 1.5]}}, "within \\[0, 1\\]"),
        ({"method": "isotonic", "params": {"x": [0, float("inf")], "y": [0, 1]}}, "non-finite"),
        ({"method": "isotonic", "params": {"x": 3, "y": [0, 1]}}, "'x' must be a list"),
        ({"method": "identity", "params": {"a": 1}}, "takes no params"),
        ({"method": "identity", "params": {}, "n_rows": -1}, "n_rows must be"),
        ({"method": "identity", "extra": 1}, "unknown keys \\['extra'\\]"),
    ],
)
def test_calibrator_from_dict_rejects_bad_input(raw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Calibrator.from_dict(raw)


def test_expected_accuracy_and_log_loss_match_label_draws() -> None:
    rng = np.random.default_rng(10)
    p = rng.beta(2.0, 3.0, 1000)
    s = np.round(np.clip(p + rng.normal(0.0, 0.1, p.size), 0.0, 1.0), 2)  # exact 0, 1 and 0.4
    assert np.count_nonzero(s == 0.4) >= 5 and np.count_nonzero(s == 0.0) >= 1
    labels = draw_labels(p, seed=11)
    est = estimate_performance(s, p, threshold=0.4)
    accuracy = ((s >= 0.4) == (labels > 0.5)).mean(axis=1)
    sc = np.clip(s, 1e-7, 1 - 1e-7)
    loss = -(labels * np.log(sc) + (1 - labels) * np.log(1 - sc)).mean(axis=1)
    assert abs(accuracy.mean() - est.accuracy) < 4 * mc_error(accuracy)
    assert abs(loss.mean() - est.log_loss) < 4 * mc_error(loss)
    assert est.positive_rate == pytest.approx(p.mean())
    assert est.threshold == 0.4 and est.n_rows == 1000


def test_performance_estimate_round_trips_and_flattens() -> None:
    rng = np.random.default_rng(12)
    p = rng.random(300)
    est = estimate_performance(p, p, confidence=0.95)
    assert PerformanceEstimate.from_dict(json.loads(json.dumps(est.to_dict()))) == est
    meta = est.to_metadata()
    assert meta["estimated_auc"] == est.auc and meta["estimated_auc_low"] == est.auc_low
    assert meta["estimated_n_rows"] == 300 and meta["estimated_confidence"] == 0.95
    assert all(v is None or isinstance(v, int | float) for v in meta.values())
    assert set(est.to_metadata("cbpe_")) == {k.replace("estimated_", "cbpe_") for k in meta}
    with pytest.raises(ValueError, match=r"missing keys \['auc'\]"):
        PerformanceEstimate.from_dict({k: v for k, v in est.to_dict().items() if k != "auc"})


def test_undefined_auc_and_bad_input() -> None:
    one = estimate_performance([0.3], [0.4])
    assert one.auc is None and one.auc_low is None and one.auc_se is None
    assert one.n_rows == 1 and one.accuracy == pytest.approx(0.6)
    no_positives = estimate_performance([0.1, 0.5, 0.9], [0.0, 0.0, 0.0])
    assert no_positives.auc is None and no_positives.positive_rate == 0.0
    assert expected_auc([0.1, 0.9], [1.0, 1.0]) is None
    assert expected_auc([0.1, 0.5, 0.9], [1e-9, 0.0, 0.0]) is None  # ~0 expected positives
    assert expected_auc([0.1, 0.9], [0.0, 1.0]) == 1.0
    with pytest.raises(ValueError, match="scores has 3 rows but p has 2"):
        estimate_performance([0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"scores: 1 of 3 values are not finite"):
        estimate_performance([0.1, np.nan, 0.3], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"p: 2 of 3 values are outside \[0, 1\]"):
        expected_auc([0.1, 0.2, 0.3], [1.2, 0.2, -0.1])
    with pytest.raises(ValueError, match="must be 1-D"):
        expected_auc(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="no rows"):
        estimate_performance([], [])
    with pytest.raises(ValueError, match="confidence"):
        estimate_performance([0.1, 0.2], [0.1, 0.2], confidence=1.0)


def test_reliability_diagnostics_and_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(13)
    p = rng.random(50_000)
    y = (rng.random(p.size) < p).astype(float)
    assert expected_calibration_error(y, p) < 0.01
    shifted = np.clip(p + 0.15, 0.0, 1.0)
    assert expected_calibration_error(y, shifted) > 0.1
    mean_p, rate, counts = reliability_curve(y, p, bins=10)
    assert counts.sum() == p.size and mean_p.size == 10
    assert np.all(np.abs(mean_p - rate) < 0.02)
    assert reliability_curve([1, 0], [1.0, 0.8], bins=4)[2].tolist() == [2]  # p = 1: last bin
    out = reliability_png(y, shifted, p, tmp_path / "plots" / "rel.png", "test")
    assert out == tmp_path / "plots" / "rel.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5_000
