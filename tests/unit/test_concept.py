"""Tests for the streaming Page-Hinkley detector on per-row loss (``lib.monitoring.concept``).

Why: the detector runs once a day on that day's labelled rows and resumes from a state persisted
as JSON, so four things must hold or it silently lies. (1) The vectorised update must be the
textbook row-by-row test, whatever the batch boundaries are (a day split differently must not
change the verdict). (2) It must not depend on the loss's scale: a champion trained on little data
has a noisier loss than the one the defaults were measured on, and the test in raw loss units
false-alarmed on it (hence the standardisation). (3) The defaults must stay quiet on a healthy
model for months, yet fire within a few thousand rows once the loss really rises: a detector that
cries wolf triggers needless retraining, one that is deaf lets a stale model serve (the full
measurement is ``python -m benchmarks.concept_detector``; these are cheap regressions of it).
(4) The state must survive a JSON round trip exactly, alarm latch included, and a state stored
by the older raw-unit test must still load.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from retrain_assets.lib.monitoring.concept import PageHinkley, PageHinkleyState, row_log_loss

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


def losses(
    rng: np.random.Generator, n: int, sep: float = HEALTHY_SEP, overconfidence: float = 1.0
) -> np.ndarray:
    """Per-row log losses; ``overconfidence`` > 1 stretches the model's log-odds around the base
    rate, like a champion fitted on a small reference (2.0: loss sd 0.85 instead of 0.58)."""
    y, p = scored_batch(rng, n, sep)
    base = math.log(0.25)
    stretched = base + overconfidence * (np.log(p / (1 - p)) - base)
    return row_log_loss(y, 1 / (1 + np.exp(-stretched)))


def naive_update(ph: PageHinkley, state: PageHinkleyState, values: np.ndarray) -> PageHinkleyState:
    """The textbook test, one row at a time (Welford running mean and sd): the reference the
    vectorised update must match."""
    n, mean, m2, cum, min_cum = state.n, state.mean, state.m2, state.cum, state.min_cum
    alarm, alarm_at = state.alarm, state.alarm_at
    for x in values:
        n += 1
        step = x - mean
        mean += step / n
        m2 += step * (x - mean)
        sd = math.sqrt(max(m2, 0.0) / n)
        z = (x - mean) / sd if sd > 1e-12 * (1 + abs(mean)) else 0.0
        if n > ph.min_rows:
            cum += z - ph.delta
            min_cum = min(min_cum, cum)
            if not alarm and cum - min_cum > ph.threshold:
                alarm, alarm_at = True, n
    return PageHinkleyState(
        n=n, mean=mean, m2=m2, cum=cum, min_cum=min_cum, alarm=alarm, alarm_at=alarm_at
    )


def assert_same(a: PageHinkleyState, b: PageHinkleyState) -> None:
    assert (a.n, a.alarm, a.alarm_at) == (b.n, b.alarm, b.alarm_at)
    assert a.mean == pytest.approx(b.mean, rel=1e-9, abs=1e-12)
    assert a.m2 == pytest.approx(b.m2, rel=1e-9, abs=1e-9)
    assert a.cum == pytest.approx(b.cum, rel=1e-9, abs=1e-7)
    assert a.min_cum == pytest.approx(b.min_cum, rel=1e-9, abs=1e-7)


def statistic_path(ph: PageHinkley, state: PageHinkleyState, day: np.ndarray) -> np.ndarray:
    """The statistic after each row of ``day`` (row by row from ``state``), for in-day peaks."""
    out = np.empty(day.size)
    for i in range(0, day.size, 50):  # 50-row steps: cheap, and the update is exact per row
        for j, x in enumerate(day[i : i + 50]):
            state = ph.update(state, np.array([x]))
            out[i + j] = state.statistic
    return out


def test_scenario_is_realistic() -> None:
    """The synthetic model is the one of the old tuning: AUC 0.80 → 0.65, loss +27 %."""
    rng = np.random.default_rng(0)
    y, p = scored_batch(rng, 100_000)
    y2, p2 = scored_batch(rng, 100_000, DEGRADED_SEP)
    assert roc_auc_score(y, p) == pytest.approx(0.80, abs=0.01)
    assert roc_auc_score(y2, p2) == pytest.approx(0.65, abs=0.01)
    rise = row_log_loss(y2, p2).mean() / row_log_loss(y, p).mean() - 1
    assert 0.25 <= rise <= 0.30
    assert 0.55 < row_log_loss(y, p).std() < 0.60
    assert 0.80 < losses(rng, 100_000, overconfidence=2.0).std() < 0.90


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_equals_row_by_row(seed: int) -> None:
    """Random streams (some with a shift, so alarms happen), random detector settings."""
    rng = np.random.default_rng(seed)
    ph = PageHinkley(
        delta=float(rng.uniform(0, 0.3)),
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
    ph = PageHinkley(delta=0.05, threshold=20.0, min_rows=300)
    stream = np.concatenate([losses(rng, 4000), losses(rng, 3000, DEGRADED_SEP)])
    cuts = np.sort(rng.integers(0, stream.size, size=int(rng.integers(1, 40))))
    state = PageHinkleyState()
    for batch in np.split(stream, cuts):
        state = ph.update(state, batch)
    whole = ph.update(PageHinkleyState(), stream)
    assert whole.alarm  # the case is only interesting if the alarm row is compared too
    assert_same(state, whole)
    assert_same(state, naive_update(ph, PageHinkleyState(), stream))


def test_running_mean_and_sd_are_the_stream_s() -> None:
    rng = np.random.default_rng(3)
    stream = losses(rng, 5000, overconfidence=1.5)
    state = PageHinkleyState()
    for batch in np.array_split(stream, 7):
        state = PageHinkley().update(state, batch)
    assert state.mean == pytest.approx(stream.mean(), rel=1e-12)
    assert state.sd == pytest.approx(stream.std(), rel=1e-9)
    assert PageHinkleyState().sd == 0.0


def test_scale_free() -> None:
    """Losses rescaled and shifted (a noisier or costlier model) give the same test exactly."""
    rng = np.random.default_rng(4)
    stream = np.concatenate([losses(rng, 3000), losses(rng, 2000, DEGRADED_SEP)])
    ph = PageHinkley(delta=0.05, threshold=25.0, min_rows=200)
    a = ph.update(PageHinkleyState(), stream)
    b = ph.update(PageHinkleyState(), 2.7 * stream + 0.3)
    assert a.alarm and (a.alarm_at, a.alarm) == (b.alarm_at, b.alarm)
    assert b.cum == pytest.approx(a.cum, rel=1e-9)
    assert b.min_cum == pytest.approx(a.min_cum, rel=1e-9)


@pytest.mark.parametrize("overconfidence", [1.0, 2.0])
def test_no_alarm_on_a_stationary_stream(overconfidence: float) -> None:
    """Defaults, 60 days × 1000 rows of a healthy model, fed daily: quiet on every seed, for
    the calibrated model and for a noisier (overconfident) one alike (the raw-unit test fired on
    the latter). The largest statistic stays well below the threshold (the benchmark's largest
    over 2 400 much longer streams is in benchmarks/RESULTS.md)."""
    ph = PageHinkley()
    peaks = []
    for seed in range(8):
        rng = np.random.default_rng(1000 + seed)
        state, peak = PageHinkleyState(), 0.0
        for _ in range(60):
            day = losses(rng, 1000, overconfidence=overconfidence)
            state = ph.update(state, day)
            peak = max(peak, state.statistic)
        assert not state.alarm, f"seed {seed}: false alarm at row {state.alarm_at}"
        assert state.n == 60_000
        peaks.append(peak)
    assert max(peaks) < 0.8 * ph.threshold


def test_in_day_peak_is_seen_by_the_alarm() -> None:
    """The alarm looks at every row, not only at day ends: a rise and fall within one batch
    still fires, and the in-day statistic path agrees with the latched row."""
    ph = PageHinkley(delta=0.05, threshold=15.0, min_rows=100)
    rng = np.random.default_rng(5)
    day = np.concatenate([losses(rng, 2000), losses(rng, 300, 0.0), losses(rng, 3000)])
    path = statistic_path(ph, PageHinkleyState(), day)
    state = ph.update(PageHinkleyState(), day)
    assert state.alarm and state.statistic < ph.threshold  # fired mid-batch, fell back since
    assert state.alarm_at == int(np.flatnonzero(path > ph.threshold)[0]) + 1


@pytest.mark.parametrize("seed", range(10))
def test_alarm_soon_after_the_loss_rises(seed: int) -> None:
    """30 healthy days, then loss +27 %: alarm within 3000 rows (over 200 seeds of this case:
    median 900, 95th percentile 1 620, worst 2 980)."""
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
    assert 30_000 < state.alarm_at <= 33_000


def test_warm_up_is_respected_across_batches() -> None:
    """The first ``min_rows`` rows only estimate the mean and sd: nothing is summed and nothing
    fires there, however the rows were batched; a change after the warm-up is still caught."""
    rng = np.random.default_rng(6)
    stream = np.concatenate([rng.normal(0, 1, 300), rng.normal(3, 1, 700)])
    eager = PageHinkley(delta=0.0, threshold=20.0, min_rows=0).update(PageHinkleyState(), stream)
    assert eager.alarm_at is not None and eager.alarm_at < 320
    ph = PageHinkley(delta=0.0, threshold=20.0, min_rows=500)
    state = ph.update(PageHinkleyState(), stream[:300])
    state = ph.update(state, stream[300:500])
    assert (state.n, state.cum, state.min_cum, state.alarm) == (500, 0.0, 0.0, False)
    state = ph.update(state, stream[500:])
    assert state.alarm and state.alarm_at is not None and 500 < state.alarm_at < 600


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
        PageHinkleyState(n=1234, mean=0.4123456789012345, m2=411.25, cum=-3.25e-3, min_cum=-17.5),
        PageHinkleyState(n=9, mean=1 / 3, m2=2 / 3, cum=60.1, min_cum=-0.1, alarm=True, alarm_at=7),
    ],
)
def test_state_json_round_trip(state: PageHinkleyState) -> None:
    restored = PageHinkleyState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored == state


def test_a_state_stored_by_the_raw_unit_test_still_loads() -> None:
    """Before the standardisation a state had no ``m2`` and summed raw loss units: it restarts
    the stream (warm-up again) but keeps the alarm latch."""
    old = {"n": 4000, "mean": 0.41, "cum": 12.5, "min_cum": -3.0, "alarm": False, "alarm_at": None}
    assert PageHinkleyState.from_dict(old) == PageHinkleyState()
    fired = {**old, "alarm": True, "alarm_at": 2715.0}
    assert PageHinkleyState.from_dict(fired) == PageHinkleyState(alarm=True, alarm_at=2715)
    state = PageHinkley().update(
        PageHinkleyState.from_dict(old), losses(np.random.default_rng(8), 100)
    )
    assert state.n == 100 and not state.alarm


def test_resuming_from_json_continues_the_stream() -> None:
    rng = np.random.default_rng(7)
    ph = PageHinkley(delta=0.05, threshold=15.0, min_rows=100)
    a, b = losses(rng, 2000), losses(rng, 2000, 0.3)
    state = ph.update(PageHinkleyState(), a)
    resumed = PageHinkleyState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert ph.update(resumed, b) == ph.update(state, b)


def test_empty_batch_constant_stream_and_bad_values() -> None:
    ph = PageHinkley()
    state = PageHinkleyState(n=3, mean=0.5, m2=0.1, cum=1.0, min_cum=0.0)
    assert ph.update(state, np.array([])) is state
    with pytest.raises(ValueError, match="finite"):
        ph.update(state, np.array([0.1, np.nan]))
    with pytest.raises(ValueError):
        PageHinkley(threshold=0.0)
    # a constant stream has no spread: every row counts as z = 0 (no division by zero)
    flat = PageHinkley(delta=0.1, threshold=5.0, min_rows=0).update(
        PageHinkleyState(), np.full(1000, 0.3)
    )
    assert flat.m2 == 0.0 and not flat.alarm and flat.cum == pytest.approx(-100.0)


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
