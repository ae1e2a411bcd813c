"""Standardised Page-Hinkley test on the champion's per-row loss, with a state that can be stored.

Labels arrive days late, a few hundred a day; the test sums evidence over the whole labelled stream
since the champion went live, so a lasting rise of its loss (concept drift) is caught while daily
noise is absorbed. The state is a handful of numbers the asset persists per day.

Page (1954), Continuous inspection schemes; Hinkley (1971), Inference about the change-point from
cumulative sum tests. Why standardised, and how the defaults were chosen: docs/concept_drift.md.
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
    """Page-Hinkley test for an increase in the mean of a stream x_1, x_2, ..., standardised by
    the stream's own running mean and standard deviation::

        z_t = (x_t - mean_t) / sd_t                  (0 while sd_t is 0)
        m_t = sum_{min_rows < i <= t} (z_i - delta)
        alarm when m_t - min(0, m_1, ..., m_t) > threshold

    ``delta`` and ``threshold`` are in running standard deviations: a shift of the mean smaller
    than ``delta`` never accumulates, and a shift s > ``delta`` is caught after roughly
    ``threshold / (s - delta)`` rows. The first ``min_rows`` rows only estimate the running mean
    and sd, so no alarm comes before row ``min_rows + 1``. The defaults come from
    ``python -m benchmarks.concept_detector`` (benchmarks/RESULTS.md).
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
