"""Tests for the shadow canary's non-inferiority test (``lib.canary``).

Why: the canary is the last say before a challenger replaces the champion in production. Its
maths must be right (DeLong's AUCs and paired variance agree with a naive placement-value
implementation and with scikit-learn, and with the bootstrap it is meant to approximate), and
its decisions must come out the obvious way on the three cases that matter: a better model and
an equally good one are let through, a clearly worse one is stopped, whichever paired method is
used. With too few labels, or only one class, it must refuse to decide (the caller waits)
rather than decide on noise; and the reason an operator reads must carry the figures.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from retrain_assets.lib.release.canary import (
    CanaryResult,
    CanarySettings,
    NotEnoughData,
    delong_paired,
    evaluate_canary,
    paired_bootstrap,
)

Arr = np.ndarray


def separation(auc: float) -> float:
    """Mean shift of a unit-variance binormal score giving this AUC: AUC = Phi(d / sqrt 2)."""
    return math.sqrt(2.0) * float(norm.ppf(auc))


def labels(n: int, seed: int = 0, prior: float = 0.2) -> Arr:
    """y ~ Bernoulli(prior) as 0/1 ints."""
    return (np.random.default_rng(seed).random(n) < prior).astype(int)


def score(y: Arr, auc: float, noise: Arr) -> Arr:
    """A score with (population) AUC ``auc`` given standard-normal ``noise``."""
    return separation(auc) * y + noise


def pair(
    n: int, champion_auc: float, challenger_auc: float, *, rho: float = 0.9, seed: int = 0
) -> tuple[Arr, Arr, Arr]:
    """(y, champion, challenger): two models of the same rows whose noises correlate by rho,
    as two fits on similar data do."""
    rng = np.random.default_rng(seed + 1)
    y = labels(n, seed)
    shared = rng.standard_normal(n)
    own = rng.standard_normal(n)
    champion = score(y, champion_auc, shared)
    challenger = score(y, challenger_auc, rho * shared + math.sqrt(1 - rho**2) * own)
    return y, champion, challenger


def naive_delong(y: Arr, a: Arr, b: Arr) -> tuple[float, float, float]:
    """DeLong from the O(m n) placement-value matrix, straight from the 1988 paper."""
    y = y.astype(bool)
    v10, v01, aucs = [], [], []
    for s in (a, b):
        x, z = s[y], s[~y]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
        aucs.append(psi.mean())
    cov = np.cov(np.vstack(v10)) / y.sum() + np.cov(np.vstack(v01)) / (~y).sum()
    return aucs[0], aucs[1], cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]


# --------------------------------------------------------------------------------------------
# DeLong and bootstrap maths


@pytest.mark.parametrize("ties", [False, True])
def test_delong_matches_naive_placement_values_and_sklearn(ties: bool) -> None:
    y, a, b = pair(300, 0.75, 0.8, rho=0.6, seed=3)
    if ties:  # coarse scores: many ties within and across classes
        a, b = np.round(a, 1), np.round(b, 1)
    auc_a, auc_b, var = delong_paired(y, a, b)
    ref_a, ref_b, ref_var = naive_delong(y, a, b)
    assert auc_a == pytest.approx(ref_a, abs=1e-12)
    assert auc_b == pytest.approx(ref_b, abs=1e-12)
    assert var == pytest.approx(ref_var, abs=1e-12)
    assert auc_a == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert auc_b == pytest.approx(roc_auc_score(y, b), abs=1e-12)


def test_delong_variance_of_identical_models_is_zero() -> None:
    y, a, _ = pair(500, 0.8, 0.8)
    _, _, var = delong_paired(y, a, a)
    assert var == pytest.approx(0.0, abs=1e-15)


def test_bootstrap_resamples_rows_and_agrees_with_delong_variance() -> None:
    y, a, b = pair(2000, 0.78, 0.80, rho=0.7, seed=5)
    diffs = paired_bootstrap(y, a, b, n_boot=2000, seed=1)
    auc_a, auc_b, var = delong_paired(y, a, b)
    assert diffs.shape == (2000,)
    assert np.isfinite(diffs).all()
    # Centred on the observed difference and with DeLong's variance (its asymptotic target).
    assert abs(diffs.mean() - (auc_b - auc_a)) < 3 * math.sqrt(var / 2000) + 1e-3
    assert diffs.var(ddof=1) == pytest.approx(var, rel=0.25)
    # Same seed, same draws; a different seed, different draws.
    np.testing.assert_array_equal(diffs, paired_bootstrap(y, a, b, n_boot=2000, seed=1))
    assert not np.array_equal(diffs[:10], paired_bootstrap(y, a, b, n_boot=10, seed=2))


def test_bootstrap_weighted_auc_equals_auc_of_the_resampled_rows() -> None:
    """Each resample's AUC is computed from draw counts; it must be the AUC of those rows."""
    y, a, b = pair(400, 0.7, 0.8, seed=9)
    a = np.round(a, 1)  # ties, including rows drawn more than once
    n_boot, seed = 5, 4
    diffs = paired_bootstrap(y, a, b, n_boot=n_boot, seed=seed)
    idx = np.random.default_rng(seed).integers(0, y.size, size=(n_boot, y.size))
    expected = [roc_auc_score(y[i], b[i]) - roc_auc_score(y[i], a[i]) for i in idx]
    np.testing.assert_allclose(diffs, expected, atol=1e-12)


# --------------------------------------------------------------------------------------------
# Decisions


def _cases() -> dict[str, tuple[Arr, Arr, Arr]]:
    """Three shadow comparisons at n = 5000 rows around a champion with AUC 0.80."""
    y, champion, better = pair(5000, 0.80, 0.83, seed=11)
    jitter = np.random.default_rng(12).standard_normal(y.size) * 1e-3
    _, _, worse = pair(5000, 0.80, 0.75, seed=11)
    return {
        "better": (y, champion, better),
        "equal": (y, champion, champion + jitter),  # same model, tiny noise
        "worse": (y, champion, worse),  # AUC 0.05 lower
    }


CASES = _cases()
EXPECTED = {"better": True, "equal": True, "worse": False}


@pytest.mark.parametrize("method", ["delong", "paired_bootstrap"])
@pytest.mark.parametrize("case", list(CASES))
def test_non_inferiority_decisions(case: str, method: str) -> None:
    y, champion, challenger = CASES[case]
    result = evaluate_canary(y, champion, challenger, CanarySettings(margin=0.01), method=method)
    assert isinstance(result, CanaryResult)
    assert result.non_inferior is EXPECTED[case], result.reason
    assert result.method == method
    assert result.n_rows == 5000
    assert result.difference == pytest.approx(result.challenger_auc - result.champion_auc)
    assert result.ci_low <= result.difference <= result.ci_high
    assert result.non_inferior is (result.ci_low > -0.01)
    # The p-value and the bound tell the same story.
    assert (result.p_value < 0.05) is result.non_inferior
    if case == "worse":
        assert result.difference < -0.03


def test_both_methods_agree_on_figures() -> None:
    y, champion, challenger = CASES["better"]
    d = evaluate_canary(y, champion, challenger, method="delong")
    b = evaluate_canary(y, champion, challenger, method="paired_bootstrap")
    assert d.difference == b.difference
    assert b.ci_low == pytest.approx(d.ci_low, abs=0.004)
    assert b.ci_high == pytest.approx(d.ci_high, abs=0.004)
    assert b.se == pytest.approx(d.se, rel=0.25)


def test_delong_bounds_are_the_one_sided_normal_bounds() -> None:
    y, champion, challenger = CASES["better"]
    result = evaluate_canary(y, champion, challenger, CanarySettings(confidence=0.9))
    _, _, var = delong_paired(y, champion, challenger)
    z = norm.ppf(0.9)
    assert result.ci_low == pytest.approx(result.difference - z * math.sqrt(var))
    assert result.ci_high == pytest.approx(result.difference + z * math.sqrt(var))
    assert result.p_value == pytest.approx(norm.sf((result.difference + 0.01) / math.sqrt(var)))


def test_reason_and_metadata_carry_the_numbers() -> None:
    y, champion, challenger = CASES["worse"]
    result = evaluate_canary(y, champion, challenger)
    for figure in (
        f"{result.challenger_auc:.4f}",
        f"{result.champion_auc:.4f}",
        f"{result.difference:+.4f}",
        f"{result.ci_low:+.4f}",
        "0.0100",
        "5000",
    ):
        assert figure in result.reason
    assert "keep the champion" in result.reason
    meta = result.to_metadata()
    assert meta["non_inferior"] is False
    assert meta["method"] == "delong"
    assert all(isinstance(v, float | int | str | bool) for v in meta.values())


# --------------------------------------------------------------------------------------------
# Refusing to decide


def test_too_few_rows_raises() -> None:
    y, champion, challenger = pair(1999, 0.8, 0.8)
    with pytest.raises(ValueError, match=r"1999 labelled shadow rows.*at least 2000"):
        evaluate_canary(y, champion, challenger)
    # The same rows decide once the threshold is lowered.
    evaluate_canary(y, champion, challenger, CanarySettings(min_rows=1000))


@pytest.mark.parametrize("method", ["delong", "paired_bootstrap"])
def test_single_class_raises(method: str) -> None:
    rng = np.random.default_rng(0)
    y = np.zeros(3000, dtype=int)
    with pytest.raises(NotEnoughData, match="both classes"):
        evaluate_canary(y, rng.random(3000), rng.random(3000), method=method)


def test_bad_inputs_raise() -> None:
    y, champion, challenger = pair(2000, 0.8, 0.8)
    with pytest.raises(ValueError, match="method"):
        evaluate_canary(y, champion, challenger, method="t-test")
    with pytest.raises(ValueError, match="equal length"):
        evaluate_canary(y, champion, challenger[:-1])
    with pytest.raises(ValueError, match="finite"):
        evaluate_canary(y, champion, np.where(y == 1, np.nan, challenger))
    with pytest.raises(ValueError, match="0/1"):
        evaluate_canary(y * 2, champion, challenger)
    with pytest.raises(ValueError, match="confidence"):
        CanarySettings(confidence=0.4)
