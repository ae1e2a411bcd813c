"""Tests for the streaming Page-Hinkley detector on per-row loss (``lib.concept``).

Why: the detector runs once a day on that day's labelled rows and resumes from a state persisted
as JSON, so three things must hold or it silently lies. (1) The vectorised update must be the
textbook row-by-row test, whatever the batch boundaries are (a day split differently must not
change the verdict). (2) The defaults must stay quiet on a healthy model for months, yet fire
within a few thousand rows once the loss really rises: a detector that cries wolf triggers
needless retraining, one that is deaf lets a stale model serve. (3) The state must survive a
JSON round trip exactly, alarm latch included.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from retrain_assets.lib.concept import PageHinkley, PageHinkleyState, row_log_loss

HEALTHY_SEP = 1.19  # latent separation giving AUC ≈ 0.80 (Φ(1.19 / √2) = 0.80)
DEGRADED_SEP = 0.545  # the same scores against labels that follow them less: AUC ≈ 0.65


def scored_batch(
    rng: np.random.Generator, n: int, sep: float = HEALTHY_SEP
) -> tuple[np.ndarray, np.ndarray]:
    """Labels (20 % positives) and a calibrated AUC-0.80 model's probabilities.

    The model maps a latent score z to the posterior it had at training time; with ``sep`` below
    the healthy value, the labels depend on z less than the model believes (concept drift), so its
    AUC falls and its log loss rises while the score mapping stays the same.
    """
    y = (rng.random(n) < 0.2).astype(int)
    z = sep * y + rng.standard_normal(n)
    logit = math.log(0.25) + HEALTHY_SEP * z - HEALTHY_SEP**2 / 2
    return y, 1 / (1 + np.exp(-logit))


def losses(rng: np.random.Generator, n: int, sep: float = HEALTHY_SEP) -> np.ndarray:
    return row_log_loss(*scored_batch(rng, n, sep))


def naive_update(ph: PageHinkley, state: PageHinkleyState, values: np.ndarray) -> PageHinkleyState:
    """The textbook test, one row at a time: the reference the vectorised update must match."""
    n, mean, cum, min_cum = state.n, state.mean, state.cum, state.min_cum
    alarm, alarm_at = state.alarm, state.alarm_at
    for x in values:
        n += 1
        mean += (x - mean) / n
        cum += x - mean - ph.delta
        min_cum = min(min_cum, cum)
        if not alarm and n >= ph.min_rows and cum - min_cum > ph.threshold:
            alarm, alarm_at = True, n
    return PageHinkleyState(n, mean, cum, min_cum, alarm, alarm_at)


def assert_same(a: PageHinkleyState, b: PageHinkleyState) -> None:
    assert (a.n, a.alarm, a.alarm_at) == (b.n, b.alarm, b.alarm_at)
    assert a.mean == pytest.approx(b.mean, rel=1e-9, abs=1e-12)
    assert a.cum == pytest.approx(b.cum, rel=1e-9, abs=1e-8)
    assert a.min_cum == pytest.approx(b.min_cum, rel=1e-9, abs=1e-8)


def test_scenario_is_realistic() -> None:
    """The synthetic model is the one the defaults were tuned on: AUC 0.80 → 0.65, loss +27 %."""
    rng = np.random.default_rng(0)
    y, p = scored_batch(rng, 100_000)
    y2, p2 = scored_batch(rng, 100_000, DEGRADED_SEP)
    assert roc_auc_score(y, p) == pytest.approx(0.80, abs=0.01)
    assert roc_auc_score(y2, p2) == pytest.approx(0.65, abs=0.01)
    rise = row_log_loss(y2, p2).mean() / row_log_loss(y, p).mean() - 1
    assert 0.25 <= rise <= 0.30


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_equals_row_by_row(seed: int) -> None:
    """Random streams (some with a shift, so alarms happen), random detector settings."""
    rng = np.random.default_rng(seed)
    ph = PageHinkley(
        delta=float(rng.uniform(0, 0.1)),
        threshold=float(rng.uniform(5, 60)),
        min_rows=int(rng.integers(0, 400)),
    )
    stream = np.concatenate([losses(rng, 1500), losses(rng, int(rng.integers(0, 3000)), 0.3)])
    start = PageHinkleyState()
    assert_same(ph.update(start, stream), naive_update(ph, start, stream))
    # ... and from a non-trivial resumed state
    mid = naive_update(ph, start, stream[:700])
    assert_same(ph.update(mid, stream[700:]), naive_update(ph, mid, stream[700:]))


@pytest.mark.parametrize("seed", range(4))
def test_batching_does_not_change_the_result(seed: int) -> None:
    """A stream cut into batches of varying size (empty ones too) ends in the same state."""
    rng = np.random.default_rng(100 + seed)
    ph = PageHinkley(delta=0.01, threshold=20.0, min_rows=300)
    stream = np.concatenate([losses(rng, 4000), losses(rng, 3000, DEGRADED_SEP)])
    cuts = np.sort(rng.integers(0, stream.size, size=int(rng.integers(1, 40))))
    state = PageHinkleyState()
    for batch in np.split(stream, cuts):
        state = ph.update(state, batch)
    whole = ph.update(PageHinkleyState(), stream)
    assert whole.alarm  # the case is only interesting if the alarm row is compared too
    assert_same(state, whole)
    assert_same(state, naive_update(ph, PageHinkleyState(), stream))


def test_no_alarm_on_a_stationary_stream() -> None:
    """Defaults, 60 days × 1000 rows of a healthy model, fed daily: quiet on every seed."""
    ph = PageHinkley()
    peaks = []
    for seed in range(20):
        rng = np.random.default_rng(1000 + seed)
        state, peak = PageHinkleyState(), 0.0
        for _ in range(60):
            day = losses(rng, 1000)
            # the peak within the day, from the naive definition on this day's rows
            before = state
            state = ph.update(state, day)
            t = before.n + np.arange(1, day.size + 1)
            means = (before.n * before.mean + np.cumsum(day)) / t
            cum = before.cum + np.cumsum(day - means - ph.delta)
            stat = cum - np.minimum(np.minimum.accumulate(cum), before.min_cum)
            peak = max(peak, float(stat[t >= ph.min_rows].max(initial=0.0)))
        assert not state.alarm, f"seed {seed}: false alarm at row {state.alarm_at}"
        assert state.n == 60_000
        peaks.append(peak)
    assert max(peaks) < ph.threshold


@pytest.mark.parametrize("seed", range(10))
def test_alarm_soon_after_the_loss_rises(seed: int) -> None:
    """30 healthy days, then loss +27 %: alarm within 4000 rows (measured worst: 2 880 / 1000)."""
    ph = PageHinkley()
    rng = np.random.default_rng(2000 + seed)
    state = PageHinkleyState()
    for _ in range(30):
        state = ph.update(state, losses(rng, 1000))
    assert not state.alarm
    for _ in range(8):
        state = ph.update(state, losses(rng, 1000, DEGRADED_SEP))
    assert state.alarm
    assert state.alarm_at is not None
    assert 30_000 < state.alarm_at <= 34_000


def test_burn_in_is_respected_across_batches() -> None:
    """No alarm before ``min_rows`` rows of the whole stream, however the rows were batched."""
    stream = np.concatenate([np.zeros(100), np.full(900, 5.0)])
    eager = PageHinkley(delta=0.0, threshold=50.0, min_rows=0).update(PageHinkleyState(), stream)
    assert eager.alarm_at is not None and eager.alarm_at < 200
    ph = PageHinkley(delta=0.0, threshold=50.0, min_rows=500)
    state = ph.update(PageHinkleyState(), stream[:300])
    assert not state.alarm and state.statistic > ph.threshold  # would fire, but burn-in
    state = ph.update(state, stream[300:])
    assert state.alarm and state.alarm_at == 500


def test_alarm_is_latched() -> None:
    """Once fired, the alarm stays (first row kept) even when the loss falls back."""
    ph = PageHinkley(delta=0.0, threshold=10.0, min_rows=0)
    state = ph.update(PageHinkleyState(), np.concatenate([np.zeros(50), np.ones(50)]))
    assert state.alarm
    first = state.alarm_at
    state = ph.update(state, np.zeros(5000))
    assert state.alarm and state.alarm_at == first and state.statistic < ph.threshold
    assert ph.reset() == PageHinkleyState()


@pytest.mark.parametrize(
    "state",
    [
        PageHinkleyState(),
        PageHinkleyState(n=1234, mean=0.4123456789012345, cum=-3.25e-3, min_cum=-17.5),
        PageHinkleyState(n=9, mean=1 / 3, cum=60.1, min_cum=-0.1, alarm=True, alarm_at=7),
    ],
)
def test_state_json_round_trip(state: PageHinkleyState) -> None:
    restored = PageHinkleyState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored == state


def test_resuming_from_json_continues_the_stream() -> None:
    rng = np.random.default_rng(7)
    ph = PageHinkley(delta=0.01, threshold=15.0, min_rows=100)
    a, b = losses(rng, 2000), losses(rng, 2000, 0.3)
    state = ph.update(PageHinkleyState(), a)
    resumed = PageHinkleyState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert ph.update(resumed, b) == ph.update(state, b)


def test_empty_batch_and_bad_values() -> None:
    ph = PageHinkley()
    state = PageHinkleyState(n=3, mean=0.5, cum=1.0, min_cum=0.0)
    assert ph.update(state, np.array([])) is state
    with pytest.raises(ValueError, match="finite"):
        ph.update(state, np.array([0.1, np.nan]))
    with pytest.raises(ValueError):
        PageHinkley(threshold=0.0)


def test_row_log_loss_matches_sklearn() -> None:
    rng = np.random.default_rng(11)
    y, p = scored_batch(rng, 5000)
    p[:3] = [0.0, 1.0, 1e-12]  # extremes are clipped, as sklearn needs them clipped
    y[:3] = [1, 0, 1]
    rows = row_log_loss(y, p)
    assert rows.shape == (5000,) and np.all(rows >= 0)
    clipped = np.clip(p, 1e-7, 1 - 1e-7)
    assert rows.mean() == pytest.approx(log_loss(y, clipped, labels=[0, 1]), rel=1e-12)
    assert rows[0] == pytest.approx(-math.log(1e-7))
