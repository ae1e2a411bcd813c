"""A streaming Page-Hinkley test on the champion's per-row loss, with state that can be stored.

Why: labels arrive days after the rows were scored, a few hundred or thousand per day. A daily AUC
on one day's labels is noisy, and a trailing-window AUC forgets everything older than the window.
Page-Hinkley accumulates evidence over the whole labelled stream since the champion went live, so
a modest but lasting rise in the model's loss (the signature of concept drift: P(y|x) moved, the
model did not) is caught after a few thousand rows, while day-to-day noise is absorbed. The state
is a handful of numbers, so the Dagster asset can persist it per day (as JSON metadata) and resume
from yesterday's state instead of replaying history. No Dagster, no MLflow: plain numpy.

The test (Page 1954; Hinkley 1971) for an increase in the mean of a stream x_1, x_2, ...,
standardised by the stream's own running mean and standard deviation::

    mean_t, sd_t = mean and standard deviation of x_1 ... x_t
    z_t    = (x_t - mean_t) / sd_t                    (0 while sd_t is 0)
    m_t    = sum_{min_rows < i <= t} (z_i - delta)    (m_t = 0 for t <= min_rows)
    M_t    = min(0, m_1, ..., m_t)
    alarm when m_t - M_t > threshold

Why standardised: how noisy the per-row loss is depends on the champion. A calibrated AUC-0.80
model has a loss sd of 0.58; the simulator's HistGradientBoosting champion has 0.70-0.74 when fitted
on 5 000 reference rows and 0.85-1.0 on 2 000. In raw loss units the false-alarm rate of the test
goes like exp(-2 delta threshold / sd^2), steep in the sd, so the former defaults (``delta=0.04``,
``threshold=75``, tuned on sd 0.58) fired on 470 of 2 400 healthy 60-day streams (86 % of those
at 5 000 rows/day with a 2 000-row champion). In sd units the behaviour hardly depends on the
model: the tail of the largest statistic on a healthy stream, P(peak > h) ~ length x
exp(-theta h), has theta 0.127-0.133 for ``delta=0.075`` over 80 simulator champions and the
calibrated model alike.

Defaults (``delta=0.075``, ``threshold=115``, ``min_rows=500``), chosen on 40 seeds and measured
on 200 others by ``python -m benchmarks.concept_detector`` (losses fed a day at a time):

* false alarms: ``none`` and ``seasonal`` feeds, 60 days at 300, 1 000 and 5 000 rows/day,
  champions fitted on 2 000 and 5 000 reference rows, 200 streams per cell: 0 of 2 400 fired. The
  largest statistic was 106.5 (5 000 rows/day; 70-97 at 300 and 1 000 rows/day). Extrapolated from
  the tail (x10 rarer per +18 on the threshold, the typical peak +5.4 per doubling of the stream):
  about 0.1 % of 60-day streams at 5 000 rows/day, about 0.3 % over 180 days.
* the simulator's ``concept`` change (drift_day 10-30, loss +60-75 %, about 0.35 sd): every stream
  fired within 20 days, a median 404 rows after the change (95th percentile 693, worst 1 128):
  2 label days at 300 rows/day (95th percentile 3), 1 at 1 000 or 5 000. The former defaults
  fired after a median 287 rows, but 97 of the 1 200 streams had already fired before the change.
* the calibrated model (sd 0.58), 1 000-row days, 200 seeds: healthy, no alarm over 60 000 rows
  (largest 93; an overconfident variant with sd 0.85: 85) nor over 180 000 rows (111; 114). The
  loss rising by 27 % (AUC 0.80 to 0.65, score mapping unchanged) after 30 000 rows: alarm a median
  930 rows later (95th percentile 1 750, worst 2 580); after only 5 000 rows: median 1 130 (95th
  percentile 3 070), 1 stream of 200 not within 30 000 rows. A 20 % rise after 30 000 rows: median
  1 460 (95th percentile 3 580); after only 5 000 rows, 57 of 200 streams had not fired 30 000 rows
  later (the former defaults: 21): the running mean absorbs a small early rise before it adds up,
  the weak spot of this test.

Tried and rejected: the raw-unit test with its threshold raised to 160 is quiet (1 alarm in
2 400) but slower (median 667 rows on the concept change) and still tied to one loss spread;
clipping z at 3-5 detects no sooner at the same false-alarm rate and makes the tail depend more on
the model (theta 0.145-0.167); ``delta=0.1`` (threshold 90) misses small early rises twice as
often; ``delta=0.05`` (threshold 155, 0.06 / 135 likewise) catches them (3 of 200 missed) but is
slower on the concept change (median about 520 rows) and too close to the weekly seasonal swing of
the loss (+-0.01 sd): a seasonal stream of the tuning seeds reached 191. A longer warm-up does
not help: ``min_rows`` from 2 to 2 000 lowered a cell's largest statistic by at most 6 and left
the overall largest unchanged (early z are bounded by sqrt(t - 1), and the statistic forgets its
start); 500 rows let the mean and sd settle before evidence counts, and a week could not be set
in rows anyway (300 to 35 000).

``delta`` sets how much rise is ignored: a shift of the loss mean smaller than ``delta`` running
standard deviations never accumulates. A larger ``threshold`` trades slower detection for fewer
false alarms; detection delay is roughly ``threshold / (shift - delta)`` rows, shift in sd units.
A state stored before the standardisation (no ``m2``) restarts the stream; see ``from_dict``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

_TINY = 1e-12  # a running sd below _TINY * (1 + |mean|) counts as zero (constant stream so far)


@dataclass(frozen=True)
class PageHinkleyState:
    """Everything the test needs to resume: count, running mean and squared deviations, cumulative
    sum, its minimum.

    ``alarm`` is latched: once the test fires it stays set (and ``alarm_at`` keeps the first
    firing row, 1-based over the whole stream) until the state is reset, i.e. replaced by a fresh
    ``PageHinkleyState()`` (typically when a new champion is promoted).
    """

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    """Sum of squared deviations from the running mean (Welford); running sd = sqrt(m2 / n)."""
    cum: float = 0.0
    min_cum: float = 0.0
    alarm: bool = False
    alarm_at: int | None = None

    @property
    def statistic(self) -> float:
        """The current test statistic ``m_t - M_t`` in sd units (compared against the threshold)."""
        return self.cum - self.min_cum

    @property
    def sd(self) -> float:
        """The running standard deviation of the stream (0 before any row)."""
        return float(np.sqrt(self.m2 / self.n)) if self.n else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (ints, floats, bool, None)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PageHinkleyState:
        """Inverse of ``to_dict``; tolerates values that went through JSON (e.g. 3.0 for 3).

        A state stored before the test was standardised (no ``m2`` key) summed raw loss units,
        which cannot be converted: it loads as a fresh stream (the new test warms up again) that
        keeps the alarm latch and its row.
        """
        stored_at = d.get("alarm_at")
        alarm = bool(d.get("alarm", False))
        alarm_at = None if stored_at is None else int(stored_at)
        if "m2" not in d:
            return cls(alarm=alarm, alarm_at=alarm_at)
        return cls(
            n=int(d.get("n", 0)),
            mean=float(d.get("mean", 0.0)),
            m2=float(d["m2"]),
            cum=float(d.get("cum", 0.0)),
            min_cum=float(d.get("min_cum", 0.0)),
            alarm=alarm,
            alarm_at=alarm_at,
        )


@dataclass(frozen=True)
class PageHinkley:
    """Standardised Page-Hinkley test for an increase in the mean; see the module docstring.

    ``delta`` and ``threshold`` are in units of the stream's running standard deviation; the
    first ``min_rows`` rows only estimate the running mean and sd (no evidence is summed, so no
    alarm can come before row ``min_rows + 1``).
    """

    delta: float = 0.075
    threshold: float = 115.0
    min_rows: int = 500

    def __post_init__(self) -> None:
        if self.delta < 0 or self.threshold <= 0 or self.min_rows < 0:
            raise ValueError(
                f"PageHinkley needs delta >= 0, threshold > 0, min_rows >= 0; got {self}"
            )

    def reset(self) -> PageHinkleyState:
        """A fresh state (start of a new champion's stream)."""
        return PageHinkleyState()

    def update(self, state: PageHinkleyState, values: np.ndarray) -> PageHinkleyState:
        """Process a batch in order and return the new state.

        Vectorised with cumulative sums, yet the same as feeding the rows one at a time (up to
        floating-point rounding), so a day's batch can be passed whole and the result does not
        depend on how the stream was cut into batches.
        """
        x = np.asarray(values, dtype=float).ravel()
        if x.size == 0:
            return state
        if not np.all(np.isfinite(x)):
            bad = int((~np.isfinite(x)).sum())
            raise ValueError(f"Page-Hinkley values must be finite; {bad} of {x.size} are not")
        # Row numbers (1-based over the whole stream); running mean and squared deviations
        # including each row, from sums around a shift c (the mean so far) for accuracy.
        t = state.n + np.arange(1, x.size + 1)
        c = state.mean if state.n else float(x[0])
        d = x - c
        means = c + np.cumsum(d) / t
        m2 = np.maximum(state.m2 + np.cumsum(d * d) - t * (means - c) ** 2, 0.0)
        sd = np.sqrt(m2 / t)
        ok = sd > _TINY * (1.0 + np.abs(means))
        z = np.zeros_like(x)
        np.divide(x - means, sd, out=z, where=ok)
        inc = np.where(t > self.min_rows, z - self.delta, 0.0)
        cum = state.cum + np.cumsum(inc)
        min_cum = np.minimum(np.minimum.accumulate(cum), state.min_cum)
        new = replace(
            state,
            n=int(t[-1]),
            mean=float(means[-1]),
            m2=float(m2[-1]),
            cum=float(cum[-1]),
            min_cum=float(min_cum[-1]),
        )
        if state.alarm:
            return new
        fired = np.flatnonzero((cum - min_cum > self.threshold) & (t > self.min_rows))
        if fired.size:
            return replace(new, alarm=True, alarm_at=int(t[fired[0]]))
        return new


def row_log_loss(y_true: np.ndarray, p: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Per-row binary log loss ``-[y log p + (1 - y) log(1 - p)]``, p clipped to [eps, 1 - eps].

    Its mean equals ``sklearn.metrics.log_loss`` with the same clipping; the rows are what the
    Page-Hinkley test consumes.
    """
    y = np.asarray(y_true, dtype=float).ravel()
    q = np.clip(np.asarray(p, dtype=float).ravel(), eps, 1 - eps)
    if y.shape != q.shape:
        raise ValueError(f"y_true and p differ in length: {y.size} vs {q.size}")
    return np.asarray(-(y * np.log(q) + (1 - y) * np.log1p(-q)), dtype=float)
