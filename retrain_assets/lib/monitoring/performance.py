"""Live performance of the champion from late labels, and whether a fall is concept drift.

Labels joined to the stored predictions by id give the live AUC; it is degraded when significantly
below the AUC the champion was promoted with (or an absolute floor), and a degradation while the
features did not drift is concept drift. Too few labels give no verdict. docs/concept_drift.md.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score

EPS = 1e-7  # probabilities are clipped to [EPS, 1 - EPS] for the log loss
Y = "y"
SCORE = "score"


@dataclass(frozen=True)
class PerformanceSettings:
    """When a verdict is made and what counts as degraded."""

    min_labels: int = 200
    """Below this many labelled rows no verdict is made (after pooling earlier days)."""
    window_days: int = 7
    """How many label days before ``day`` may be pooled to reach ``min_labels``."""
    relative_drop: float = 0.05
    """Degraded when live AUC < baseline AUC x (1 - relative_drop)."""
    absolute_floor: float = 0.6
    """... or when live AUC < this floor, whatever the baseline."""
    concept_max_drift_share: float = 0.2
    """Concept drift: degraded while the share of drifted features stays below this."""
    confidence: float = 0.99
    """Degraded only when the AUC's one-sided upper confidence bound (Hanley-McNeil standard
    error) is below the bar: an AUC from a few hundred labels is noisy from day to day."""

    def __post_init__(self) -> None:
        if self.min_labels < 1 or self.window_days < 0:
            raise ValueError(f"min_labels must be >= 1 and window_days >= 0; got {self}")
        if not 0 <= self.relative_drop < 1 or not 0 <= self.concept_max_drift_share <= 1:
            raise ValueError(f"relative_drop must be in [0, 1), drift share in [0, 1]; got {self}")


@dataclass(frozen=True)
class PerformanceVerdict:
    """The figures one day's labels (plus pooled earlier days) give, and what they mean."""

    n_labels: int
    pooled_days: list[str]
    """The label days whose rows entered the figures, ``day`` first, then newest to oldest."""
    auc: float | None
    log_loss: float | None
    positive_rate: float | None
    baseline_auc: float | None
    degraded: bool
    concept_drift: bool
    reason: str
    """Human text naming the figures and thresholds behind the verdict."""
    drift_share: float | None = None
    detector_alarm: bool = False
    verdict_made: bool = False
    """True when there were enough labels of both classes to judge degradation at all."""

    def to_metadata(self) -> dict[str, float | int | str | bool | None]:
        """A flat dict (scalars only) for Dagster metadata; the pooled days are comma-joined."""
        return {
            "n_labels": self.n_labels,
            "pooled_days": ", ".join(self.pooled_days),
            "n_pooled_days": len(self.pooled_days),
            "auc": self.auc,
            "log_loss": self.log_loss,
            "positive_rate": self.positive_rate,
            "baseline_auc": self.baseline_auc,
            "verdict_made": self.verdict_made,
            "degraded": self.degraded,
            "concept_drift": self.concept_drift,
            "drift_share": self.drift_share,
            "detector_alarm": self.detector_alarm,
            "reason": self.reason,
        }


def join_predictions(
    labels: pd.DataFrame, predictions: pd.DataFrame, id_column: str, target_column: str
) -> tuple[pd.DataFrame, int]:
    """Labels joined to stored predictions by id, and how many labels found no prediction.

    Returns a frame with the id column (under its own name), ``y`` (0/1 int), ``score`` (float)
    and the predictions' other columns, in the labels' row order. A label whose id was never
    scored cannot count towards live performance, but the count is returned so the asset can
    report it (many unmatched labels mean the id or the prediction store is wrong). Duplicated
    ids keep the last row, in predictions (a re-scored row supersedes the first score) and in
    labels (a corrected label supersedes the first).
    """
    for frame, name, needed in (
        (labels, "labels", [id_column, target_column]),
        (predictions, "predictions", [id_column, SCORE]),
    ):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise KeyError(f"{name} lack column(s) {missing}; have {list(frame.columns)}")
    lab = labels[[id_column, target_column]].drop_duplicates(id_column, keep="last")
    target = pd.to_numeric(lab[target_column], errors="coerce")
    if not target.isin([0, 1]).all():
        bad = lab.loc[~target.isin([0, 1]), target_column].unique()[:5]
        raise ValueError(f"labels' {target_column!r} must be 0/1; found {list(bad)}")
    lab = pd.DataFrame({id_column: lab[id_column].to_numpy(), Y: target.astype(int).to_numpy()})
    others = [c for c in predictions.columns if c not in (id_column, SCORE, Y)]
    pred = predictions[[id_column, SCORE, *others]].drop_duplicates(id_column, keep="last")
    joined = lab.merge(pred, on=id_column, how="inner", validate="one_to_one", sort=False)
    joined[SCORE] = joined[SCORE].astype(float)
    if len(joined) and not np.all(np.isfinite(joined[SCORE].to_numpy())):
        raise ValueError(f"{int((~np.isfinite(joined[SCORE])).sum())} stored score(s) not finite")
    unmatched = int(len(lab) - len(joined))
    return joined.reset_index(drop=True), unmatched


def _day(value: str) -> dt.date:
    return dt.date.fromisoformat(str(value))


def _pool(
    joined_by_day: dict[str, pd.DataFrame], day: str, settings: PerformanceSettings
) -> tuple[list[str], list[pd.DataFrame]]:
    """Today's rows, then earlier label days newest first (within the window) until enough."""
    today = _day(day)
    earliest = today - dt.timedelta(days=settings.window_days)
    days: list[str] = []
    frames: list[pd.DataFrame] = []
    n = 0
    today_frame = next((f for k, f in joined_by_day.items() if _day(k) == today), None)
    if today_frame is not None and len(today_frame):
        days.append(today.isoformat())
        frames.append(today_frame)
        n = len(today_frame)
    earlier = sorted(
        ((_day(k), f) for k, f in joined_by_day.items() if earliest <= _day(k) < today),
        key=lambda kv: kv[0],
        reverse=True,
    )
    for when, frame in earlier:
        if n >= settings.min_labels:
            break
        if len(frame):
            days.append(when.isoformat())
            frames.append(frame)
            n += len(frame)
    return days, frames


def _fmt(x: float) -> str:
    return f"{x:.3f}"


def assess(
    joined_by_day: dict[str, pd.DataFrame],
    day: str,
    baseline_auc: float | None,
    settings: PerformanceSettings,
    *,
    drift_share: float | None = None,
    detector_alarm: bool = False,
) -> PerformanceVerdict:
    """The verdict for label day ``day`` from its joined rows (pooled with earlier days if few).

    ``joined_by_day`` maps label day (ISO date) to a joined frame with columns ``y`` and
    ``score``; days after ``day`` and days more than ``settings.window_days`` before it are never
    used. Pooling stops as soon as ``min_labels`` rows are reached, so the figure is as recent as
    the label volume allows. ``drift_share`` is the share of features the covariate drift check
    flagged for the same period; ``detector_alarm`` is the Page-Hinkley state on per-row loss
    (``concept``), which flags concept drift even before the AUC verdict is possible.
    """
    if baseline_auc is not None and math.isnan(baseline_auc):
        baseline_auc = None  # a baseline that was never measured
    days, frames = _pool(joined_by_day, day, settings)
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({Y: [], SCORE: []})
    y = rows[Y].to_numpy(dtype=int)
    score = rows[SCORE].to_numpy(dtype=float)
    n = int(y.size)
    auc = float(roc_auc_score(y, score)) if n > 0 and 0 < int(y.sum()) < n else None
    loss = float(log_loss(y, np.clip(score, EPS, 1 - EPS), labels=[0, 1])) if n else None

    parts = _why_no_verdict(n, y, auc, day, days, settings)
    verdict_made = auc is not None and n >= settings.min_labels
    degraded = False
    if auc is not None:
        below, text = _judge(auc, baseline_auc, settings, auc_standard_error(auc, y))
        if verdict_made:
            degraded = below
            parts.append(f"{text} over {n} labels from {len(days)} day(s)")
        else:
            parts.append(f"indicative only, would be {text}")
    concept, why = _concept_drift(degraded, drift_share, detector_alarm, settings)
    return PerformanceVerdict(
        n_labels=n,
        pooled_days=days,
        auc=auc,
        log_loss=loss,
        positive_rate=float(y.mean()) if n else None,
        baseline_auc=baseline_auc,
        degraded=degraded,
        concept_drift=concept,
        reason="; ".join(parts + why),
        drift_share=drift_share,
        detector_alarm=detector_alarm,
        verdict_made=verdict_made,
    )


def _why_no_verdict(
    n: int,
    y: np.ndarray,
    auc: float | None,
    day: str,
    days: list[str],
    settings: PerformanceSettings,
) -> list[str]:
    """The sentence saying why the pooled labels cannot give a verdict (none when they can)."""
    if n == 0:
        return [f"no labelled rows for {day} or the {settings.window_days} days before; no verdict"]
    if n < settings.min_labels:
        return [
            f"only {n} labels (< {settings.min_labels}) over {len(days)} day(s) "
            f"({', '.join(days)}, window {settings.window_days} days); no verdict"
        ]
    if auc is None:
        return [
            f"{n} labels of one class only (positive rate {y.mean():.3f}); AUC undefined, "
            "no verdict"
        ]
    return []


def _concept_drift(
    degraded: bool,
    drift_share: float | None,
    detector_alarm: bool,
    settings: PerformanceSettings,
) -> tuple[bool, list[str]]:
    """Whether the verdict is concept drift (a degradation the covariate drift does not explain,
    or a Page-Hinkley alarm), and the sentences saying why."""
    concept, parts = False, []
    if degraded:
        if drift_share is None:
            parts.append("no covariate drift share given, cannot call it concept drift")
        elif drift_share < settings.concept_max_drift_share:
            concept = True
            parts.append(
                f"concept drift: degraded while covariate drift share {drift_share:.3f} "
                f"< {settings.concept_max_drift_share:g}"
            )
        else:
            parts.append(
                f"covariate drift share {drift_share:.3f} ≥ "
                f"{settings.concept_max_drift_share:g}: degradation explained by covariate drift"
            )
    if detector_alarm:
        concept = True
        parts.append("concept drift: Page-Hinkley alarm on per-row loss")
    return concept, parts


def auc_standard_error(auc: float, y: np.ndarray) -> float:
    """Hanley & McNeil (1982) standard error of an AUC from its class counts."""
    n1 = int(np.sum(y == 1))
    n0 = int(y.size - n1)
    if n1 == 0 or n0 == 0:
        return float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2)) / (n1 * n0)
    return float(math.sqrt(max(var, 0.0)))


def _judge(
    auc: float, baseline_auc: float | None, settings: PerformanceSettings, se: float = 0.0
) -> tuple[bool, str]:
    """Whether ``auc`` is significantly below the baseline bar or the floor (its one-sided upper
    bound ``auc + z * se`` is), and the sentence saying so."""
    from scipy.stats import norm

    margin = float(norm.ppf(settings.confidence)) * se if math.isfinite(se) else 0.0
    upper = auc + margin
    floor = f"{settings.absolute_floor:g} (floor)"
    bars: list[tuple[float, str]] = []
    if baseline_auc is not None:
        factor = 1 - settings.relative_drop
        bar = baseline_auc * factor
        bars.append((bar, f"{factor:g} × {_fmt(baseline_auc)} = {_fmt(bar)} (baseline)"))
    bars.append((settings.absolute_floor, floor))
    bound = f" (upper {settings.confidence:g} bound {_fmt(upper)})" if margin else ""
    below = [text for value, text in bars if upper < value]
    if below:
        return True, f"degraded: auc {_fmt(auc)} < " + " and < ".join(below) + bound
    noisy = [text for value, text in bars if auc < value]
    if noisy:
        return False, (
            f"healthy: auc {_fmt(auc)} < "
            + " and < ".join(noisy)
            + " but not significantly"
            + bound
        )
    prefix = "healthy: " if baseline_auc is not None else "healthy (no baseline): "
    return False, prefix + f"auc {_fmt(auc)} ≥ " + " and ≥ ".join(t for _, t in bars)
