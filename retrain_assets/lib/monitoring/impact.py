"""What an estimated AUC means for the champion: degraded (a retraining may be due before any
label arrives), fell (drift that hurts, for ``drift.require_impact``), or neither; and how the
estimate compared with the AUC the labels gave later. Plain functions, no Dagster.

The bar is the performance trigger's: the champion's test AUC x (1 - relative_drop), and an
absolute floor. Degraded means the whole interval lies under the bar, not only the point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from retrain_assets.lib.monitoring.estimation import PerformanceEstimate


@dataclass(frozen=True)
class EstimatedVerdict:
    degraded: bool
    """The interval's upper end is below the bar."""
    fell: bool
    """The interval's upper end is below the champion's test AUC (drift that hurts)."""
    bar: float | None
    reason: str


def _interval(est: PerformanceEstimate) -> str:
    return (
        f"estimated AUC {est.auc:.3f} [{est.auc_low:.3f}, {est.auc_high:.3f}] "
        f"({est.confidence:.0%} interval, {est.n_rows} rows)"
    )


def judge_estimate(
    est: PerformanceEstimate,
    baseline_auc: float | None,
    *,
    relative_drop: float,
    absolute_floor: float,
    min_rows: int,
) -> EstimatedVerdict:
    """Degraded when the interval's upper end is under max(baseline x (1 - relative_drop),
    floor); fell when it is under the baseline. No verdict (neither) with fewer than ``min_rows``
    rows or no defined estimate; without a baseline only the floor counts."""
    if est.n_rows < min_rows or est.auc is None or est.auc_high is None:
        why = "no AUC defined" if est.auc is None else f"{est.n_rows} rows < {min_rows}"
        return EstimatedVerdict(False, False, None, f"no estimate: {why}")
    bar = absolute_floor
    against = f"the floor {absolute_floor:g}"
    if baseline_auc is not None and math.isfinite(baseline_auc):
        relative = baseline_auc * (1 - relative_drop)
        if relative > bar:
            bar = relative
            against = f"{1 - relative_drop:.2f} x the champion's test AUC {baseline_auc:.3f}"
    degraded = est.auc_high < bar
    fell = degraded or (baseline_auc is not None and est.auc_high < baseline_auc)
    if degraded:
        reason = f"{_interval(est)}: upper end below the bar {bar:.3f} ({against})"
    elif fell:
        reason = (
            f"{_interval(est)}: below the champion's test AUC {baseline_auc:.3f}, not below the "
            f"bar {bar:.3f}"
        )
    else:
        reason = f"{_interval(est)}: not significantly below the bar {bar:.3f} ({against})"
    return EstimatedVerdict(degraded, bool(fell), bar, reason)


@dataclass(frozen=True)
class EstimationError:
    """An estimate set against the AUC the labels of the same rows gave."""

    estimated: float
    low: float
    high: float
    realized: float

    @property
    def error(self) -> float:
        """realized - estimated: negative when the estimate was too hopeful."""
        return self.realized - self.estimated

    @property
    def covered(self) -> bool:
        return self.low <= self.realized <= self.high

    def to_metadata(self) -> dict[str, float | bool]:
        return {
            "estimated_auc": self.estimated,
            "estimated_auc_low": self.low,
            "estimated_auc_high": self.high,
            "estimation_error": self.error,
            "estimate_covers": self.covered,
        }


def estimation_error(est: PerformanceEstimate, realized: float | None) -> EstimationError | None:
    """The estimate on the labelled rows against their realized AUC (None when either is
    missing)."""
    if realized is None or not math.isfinite(realized) or est.auc is None:
        return None
    assert est.auc_low is not None and est.auc_high is not None
    return EstimationError(est.auc, est.auc_low, est.auc_high, float(realized))
