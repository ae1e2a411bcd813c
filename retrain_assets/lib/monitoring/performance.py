"""Live performance of the champion from late labels, and whether a fall is concept drift.

Labels joined to the stored predictions by id give the live figure in the task's primary metric
(binary ROC AUC, multiclass macro ROC AUC, regression RMSE: ``lib.training.tasks``); it is
degraded when significantly worse than the figure the champion was promoted with (or, for an AUC,
an absolute floor), and a degradation while the features did not drift is concept drift. Too few
labels give no verdict. :func:`target_drift` compares the labels' distribution with the
champion's training labels. docs/concept_drift.md.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.metrics import log_loss, roc_auc_score

from retrain_assets.lib.training.tasks import (
    TASKS,
    Metric,
    known_label_rows,
    prediction_of,
    task_metrics,
)

EPS = 1e-7  # probabilities are clipped to [EPS, 1 - EPS] for the log loss
Y = "y"
SCORE = "score"
PROBA = "proba"
CLASSES = "classes"
CHAMPION = "champion_"
MIN_EFFECT = 0.1
"""Target drift needs an effect this large as well as significance (KS statistic, Cramér's V)."""


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; task must be one of {TASKS}")


@dataclass(frozen=True)
class PerformanceSettings:
    """When a verdict is made and what counts as degraded."""

    min_labels: int = 200
    """Below this many labelled rows no verdict is made (after pooling earlier days)."""
    window_days: int = 7
    """How many label days before ``day`` may be pooled to reach ``min_labels``."""
    relative_drop: float = 0.05
    """Degraded when live AUC < baseline AUC x (1 - relative_drop) (an error metric such as
    RMSE: live > baseline / (1 - relative_drop))."""
    absolute_floor: float = 0.6
    """... or when live AUC < this floor, whatever the baseline (AUC tasks only: an error metric
    has no absolute bound)."""
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
    """The figures one day's labels (plus pooled earlier days) give, and what they mean.

    ``auc``, ``log_loss``, ``positive_rate`` and ``baseline_auc`` are the binary figures (None
    for regression; for multiclass only ``log_loss``, its secondary metric, is set). ``metric``
    and ``value`` are the task's primary metric, ``secondary_metric`` and ``secondary_value``
    the other one, for every task (binary: ``roc_auc`` = ``auc``, ``log_loss``).
    """

    n_labels: int
    """Labelled rows in the figures (multiclass: without the rows of unseen labels)."""
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
    """True when there were enough labels (of at least two classes for an AUC) to judge."""
    task: str = "binary"
    metric: str = "roc_auc"
    value: float | None = None
    """The primary metric on the pooled rows (None when undefined or no rows)."""
    secondary_metric: str = "log_loss"
    secondary_value: float | None = None
    unseen_labels: int = 0
    """Multiclass rows whose label the champion never saw in training: left out and counted."""
    baseline_value: float | None = None
    """The champion's primary metric at promotion (binary: ``baseline_auc``)."""

    def to_metadata(self) -> dict[str, float | int | str | bool | None]:
        """A flat dict (scalars only) for Dagster metadata; the pooled days are comma-joined.

        Binary: the historical keys plus ``metric`` and ``metric_value``. Other tasks: the
        primary and secondary metric under their own names (``rmse``, ``mae``, ...), the
        baseline under ``baseline_metric`` (``baseline_auc`` is None) and ``unseen_labels``.
        """
        shared: dict[str, float | int | str | bool | None] = {
            "n_labels": self.n_labels,
            "pooled_days": ", ".join(self.pooled_days),
            "n_pooled_days": len(self.pooled_days),
        }
        if self.task == "binary":
            figures: dict[str, float | int | str | bool | None] = {
                "auc": self.auc,
                "log_loss": self.log_loss,
                "positive_rate": self.positive_rate,
                "baseline_auc": self.baseline_auc,
            }
        else:
            figures = {
                "metric": self.metric,
                "metric_value": self.value,
                self.metric: self.value,
                self.secondary_metric: self.secondary_value,
                "baseline_metric": self.baseline_value,
                "baseline_auc": None,
                "unseen_labels": self.unseen_labels,
            }
        verdict: dict[str, float | int | str | bool | None] = {
            "verdict_made": self.verdict_made,
            "degraded": self.degraded,
            "concept_drift": self.concept_drift,
            "drift_share": self.drift_share,
            "detector_alarm": self.detector_alarm,
            "reason": self.reason,
        }
        if self.task == "binary":
            verdict |= {"metric": self.metric, "metric_value": self.auc}
        return shared | figures | verdict


def join_predictions(
    labels: pd.DataFrame,
    predictions: pd.DataFrame,
    id_column: str,
    target_column: str,
    task: str = "binary",
) -> tuple[pd.DataFrame, int]:
    """Labels joined to stored predictions by id, and how many labels found no prediction.

    Returns a frame with the id column (under its own name), ``y``, ``score`` (float) and the
    predictions' other columns, in the labels' row order. ``y`` is 0/1 int for ``binary`` (other
    labels raise), the class as text for ``multiclass`` ("3", not "3.0"), a float for
    ``regression`` (a non-numeric label raises ``ValueError`` naming the column). Multiclass
    predictions also need ``proba`` (per-row class probabilities) and ``classes`` (their order,
    JSON); ``champion_score``, ``champion_proba`` and ``champion_classes`` are taken under those
    names when the short ones are absent. A label whose id was never scored cannot count towards
    live performance, but the count is returned so the asset can report it (many unmatched labels
    mean the id or the prediction store is wrong). Duplicated ids keep the last row, in
    predictions (a re-scored row supersedes the first score) and in labels (a corrected label
    supersedes the first).
    """
    _check_task(task)
    predictions = _champion_columns(predictions, task)
    firsts = [SCORE, PROBA, CLASSES] if task == "multiclass" else [SCORE]
    for frame, name, needed in (
        (labels, "labels", [id_column, target_column]),
        (predictions, "predictions", [id_column, *firsts]),
    ):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise KeyError(f"{name} lack column(s) {missing}; have {list(frame.columns)}")
    lab = labels[[id_column, target_column]].drop_duplicates(id_column, keep="last")
    target = _label_values(lab[target_column], target_column, task)
    lab = pd.DataFrame({id_column: lab[id_column].to_numpy(), Y: target})
    others = [c for c in predictions.columns if c not in (id_column, *firsts, Y)]
    pred = predictions[[id_column, *firsts, *others]].drop_duplicates(id_column, keep="last")
    joined = lab.merge(pred, on=id_column, how="inner", validate="one_to_one", sort=False)
    joined[SCORE] = joined[SCORE].astype(float)
    if len(joined) and not np.all(np.isfinite(joined[SCORE].to_numpy())):
        raise ValueError(f"{int((~np.isfinite(joined[SCORE])).sum())} stored score(s) not finite")
    unmatched = int(len(lab) - len(joined))
    return joined.reset_index(drop=True), unmatched


def _champion_columns(predictions: pd.DataFrame, task: str) -> pd.DataFrame:
    """``champion_score`` (and for multiclass ``champion_proba``, ``champion_classes``) under
    the joined names when those are absent; empty multiclass predictions get empty columns."""
    names = [SCORE, PROBA, CLASSES] if task == "multiclass" else [SCORE]
    renames = {
        CHAMPION + n: n
        for n in names
        if n not in predictions.columns and CHAMPION + n in predictions.columns
    }
    out = predictions.rename(columns=renames) if renames else predictions
    if task == "multiclass" and not len(out):
        out = out.assign(**{n: pd.Series(dtype=object) for n in names if n not in out.columns})
    return out


def _label_values(values: pd.Series, column: str, task: str) -> np.ndarray:
    """The labels as the task reads them; ``ValueError`` naming ``column`` for bad ones."""
    if task == "multiclass":
        if values.isna().any():
            raise ValueError(f"labels' {column!r} has {int(values.isna().sum())} missing value(s)")
        if pd.api.types.is_bool_dtype(values):
            values = values.astype(int)
        if pd.api.types.is_float_dtype(values) and bool((values % 1 == 0).all()):
            values = values.astype("int64")  # a class 3 read as 3.0 is still "3"
        return values.astype(str).to_numpy(dtype=object)
    target = pd.to_numeric(values, errors="coerce")
    if task == "regression":
        bad_rows = ~np.isfinite(target.to_numpy(dtype=float))
        if bad_rows.any():
            bad = values[bad_rows].unique()[:5]
            raise ValueError(f"labels' {column!r} must be finite numbers; found {list(bad)}")
        return target.to_numpy(dtype=float)
    if not target.isin([0, 1]).all():
        bad = values.loc[~target.isin([0, 1])].unique()[:5]
        raise ValueError(f"labels' {column!r} must be 0/1; found {list(bad)}")
    return target.astype(int).to_numpy()


def _day(value: str) -> dt.date:
    return dt.date.fromisoformat(str(value))


def _pool(
    joined_by_day: dict[str, pd.DataFrame],
    day: str,
    settings: PerformanceSettings,
    size: Callable[[pd.DataFrame], int] = len,
) -> tuple[list[str], list[pd.DataFrame]]:
    """Today's rows, then earlier label days newest first (within the window) until enough
    (``size`` of a frame: the rows it adds to the figures)."""
    today = _day(day)
    earliest = today - dt.timedelta(days=settings.window_days)
    days: list[str] = []
    frames: list[pd.DataFrame] = []
    n = 0
    today_frame = next((f for k, f in joined_by_day.items() if _day(k) == today), None)
    if today_frame is not None and len(today_frame):
        days.append(today.isoformat())
        frames.append(today_frame)
        n = size(today_frame)
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
            n += size(frame)
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
    task: str = "binary",
) -> PerformanceVerdict:
    """The verdict for label day ``day`` from its joined rows (pooled with earlier days if few).

    ``joined_by_day`` maps label day (ISO date) to a joined frame (:func:`join_predictions`:
    ``y`` and ``score``, multiclass also ``proba`` and ``classes``); days after ``day`` and days
    more than ``settings.window_days`` before it are never used. Pooling stops as soon as
    ``min_labels`` rows are reached, so the figure is as recent as the label volume allows.
    ``drift_share`` is the share of features the covariate drift check flagged for the same
    period; ``detector_alarm`` is the Page-Hinkley state on per-row loss (``concept``), which
    flags concept drift even before a verdict is possible.

    The verdict is in the task's primary metric (``tasks.task_metrics``) and ``baseline_auc`` is
    the champion's figure in it at promotion (binary AUC, multiclass macro AUC, regression RMSE).
    An AUC is degraded when its one-sided upper ``confidence`` bound is below
    ``baseline * (1 - relative_drop)`` or below ``absolute_floor``; an error metric (RMSE) when
    its lower bound is above ``baseline / (1 - relative_drop)``; ``absolute_floor`` does not
    apply to an error metric (it has no absolute bound). Standard errors: Hanley-McNeil for the
    AUC, per-row DeLong placements over the classes for the macro AUC, the delta method for RMSE
    (:func:`metric_standard_error`). Multiclass rows whose label the champion never saw are left
    out of the figures (and of ``min_labels``) and counted in ``unseen_labels``.
    """
    _check_task(task)
    if baseline_auc is not None and math.isnan(baseline_auc):
        baseline_auc = None  # a baseline that was never measured
    context = _Context(day, baseline_auc, settings, drift_share, detector_alarm)
    if task == "binary":
        days, frames = _pool(joined_by_day, day, settings)
        return _assess_binary(days, frames, context)
    days, frames = _pool(joined_by_day, day, settings, size=_usable_rows(task))
    return _assess_task(task, days, _task_rows(task, frames), context)


@dataclass(frozen=True)
class _Context:
    day: str
    baseline: float | None
    settings: PerformanceSettings
    drift_share: float | None
    detector_alarm: bool


def _assess_binary(
    days: list[str], frames: list[pd.DataFrame], context: _Context
) -> PerformanceVerdict:
    """The binary verdict in ROC AUC (with the log loss and the positive rate alongside)."""
    settings, baseline_auc = context.settings, context.baseline
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({Y: [], SCORE: []})
    y = rows[Y].to_numpy(dtype=int)
    score = rows[SCORE].to_numpy(dtype=float)
    n = int(y.size)
    auc = float(roc_auc_score(y, score)) if n > 0 and 0 < int(y.sum()) < n else None
    loss = float(log_loss(y, np.clip(score, EPS, 1 - EPS), labels=[0, 1])) if n else None

    parts = _why_no_verdict(n, y, auc, context.day, days, settings)
    verdict_made = auc is not None and n >= settings.min_labels
    degraded = False
    if auc is not None:
        below, text = _judge(auc, baseline_auc, settings, auc_standard_error(auc, y))
        if verdict_made:
            degraded = below
            parts.append(f"{text} over {n} labels from {len(days)} day(s)")
        else:
            parts.append(f"indicative only, would be {text}")
    concept, why = _concept_drift(degraded, context.drift_share, context.detector_alarm, settings)
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
        drift_share=context.drift_share,
        detector_alarm=context.detector_alarm,
        verdict_made=verdict_made,
        value=auc,
        secondary_value=loss,
        baseline_value=baseline_auc,
    )


@dataclass(frozen=True)
class _Rows:
    """Pooled multiclass or regression rows: labels, the champion's prediction, its classes."""

    y: np.ndarray
    prediction: np.ndarray
    classes: list[str] | None
    unseen: int = 0


def _usable_rows(task: str) -> Callable[[pd.DataFrame], int]:
    """How many rows of a joined frame enter the figures (multiclass: known labels only)."""

    def size(frame: pd.DataFrame) -> int:
        if task != "multiclass" or not len(frame):
            return len(frame)
        _, classes = prediction_of(frame, task)
        return int(known_label_rows(task, frame[Y].astype(str).to_numpy(), classes).sum())

    return size


def _task_rows(task: str, frames: list[pd.DataFrame]) -> _Rows:
    """The pooled labels and predictions; multiclass rows of unseen labels removed and counted,
    and every day's probability columns put in the first day's class order."""
    ys: list[np.ndarray] = []
    preds: list[np.ndarray] = []
    order: list[str] | None = None
    unseen = 0
    for frame in frames:
        prediction, classes = prediction_of(frame, task)
        if task == "regression":
            ys.append(frame[Y].to_numpy(dtype=float))
            preds.append(prediction)
            continue
        assert classes is not None
        order = classes if order is None else order
        if sorted(classes) != sorted(order):
            raise ValueError(
                f"pooled rows were scored with different classes: {order} and {classes}"
            )
        y = frame[Y].astype(str).to_numpy()
        known = known_label_rows(task, y, classes)
        unseen += int((~known).sum())
        ys.append(y[known])
        preds.append(prediction[known][:, [classes.index(c) for c in order]])
    if not ys:
        return _Rows(np.empty(0), np.empty(0), None)
    return _Rows(np.concatenate(ys), np.concatenate(preds), order, unseen)


def _assess_task(task: str, days: list[str], rows: _Rows, context: _Context) -> PerformanceVerdict:
    """The multiclass or regression verdict in the task's primary metric."""
    primary, secondary = task_metrics(task)
    settings, n = context.settings, int(rows.y.size)
    value = second = None
    if n:
        figure = primary(rows.y, rows.prediction, rows.classes)
        value = None if math.isnan(figure) else figure
        second = secondary(rows.y, rows.prediction, rows.classes)
    parts = _why_no_verdict_task(primary, n, rows, context.day, days, settings, value)
    verdict_made = value is not None and n >= settings.min_labels
    degraded = False
    if value is not None:
        se = metric_standard_error(task, rows.y, rows.prediction, rows.classes)
        below, text = _judge_metric(primary, value, context.baseline, settings, se)
        if verdict_made:
            degraded = below
            parts.append(f"{text} over {n} labels from {len(days)} day(s)")
        else:
            parts.append(f"indicative only, would be {text}")
    if rows.unseen:
        parts.append(
            f"{rows.unseen} label(s) of classes the champion never saw in training left out"
        )
    concept, why = _concept_drift(degraded, context.drift_share, context.detector_alarm, settings)
    return PerformanceVerdict(
        n_labels=n,
        pooled_days=days,
        auc=None,
        log_loss=second if secondary.name == "log_loss" else None,
        positive_rate=None,
        baseline_auc=None,
        degraded=degraded,
        concept_drift=concept,
        reason="; ".join(parts + why),
        drift_share=context.drift_share,
        detector_alarm=context.detector_alarm,
        verdict_made=verdict_made,
        task=task,
        metric=primary.name,
        value=value,
        secondary_metric=secondary.name,
        secondary_value=second,
        unseen_labels=rows.unseen,
        baseline_value=context.baseline,
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
    auc: float,
    baseline_auc: float | None,
    settings: PerformanceSettings,
    se: float = 0.0,
    name: str = "auc",
) -> tuple[bool, str]:
    """Whether ``auc`` is significantly below the baseline bar or the floor (its one-sided upper
    bound ``auc + z * se`` is), and the sentence saying so (the figure called ``name``)."""
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
        return True, f"degraded: {name} {_fmt(auc)} < " + " and < ".join(below) + bound
    noisy = [text for value, text in bars if auc < value]
    if noisy:
        return False, (
            f"healthy: {name} {_fmt(auc)} < "
            + " and < ".join(noisy)
            + " but not significantly"
            + bound
        )
    prefix = "healthy: " if baseline_auc is not None else "healthy (no baseline): "
    return False, prefix + f"{name} {_fmt(auc)} ≥ " + " and ≥ ".join(t for _, t in bars)


def _fmt_value(x: float) -> str:
    """An error metric in its own units: three decimals unless very large or very small."""
    return f"{x:.4g}" if abs(x) >= 1e4 or 0 < abs(x) < 1e-3 else f"{x:.3f}"


def _judge_metric(
    metric: Metric, value: float, baseline: float | None, settings: PerformanceSettings, se: float
) -> tuple[bool, str]:
    """:func:`_judge` in the metric's direction. An error metric (lower is better) is degraded
    when its one-sided lower bound ``value - z * se`` is above ``baseline / (1 -
    relative_drop)``; it has no absolute bound, so ``absolute_floor`` does not apply."""
    if metric.higher_is_better:
        return _judge(value, baseline, settings, se, name=metric.name)
    from scipy.stats import norm

    name = metric.name
    margin = float(norm.ppf(settings.confidence)) * se if math.isfinite(se) else 0.0
    lower = value - margin
    if baseline is None:
        return False, (
            f"healthy (no baseline): {name} {_fmt_value(value)}; an error metric has no "
            "absolute bound"
        )
    factor = 1 - settings.relative_drop
    bar = baseline / factor
    text = f"1/{factor:g} × {_fmt_value(baseline)} = {_fmt_value(bar)} (baseline)"
    bound = f" (lower {settings.confidence:g} bound {_fmt_value(lower)})" if margin else ""
    if lower > bar:
        return True, f"degraded: {name} {_fmt_value(value)} > {text}{bound}"
    if value > bar:
        return False, (f"healthy: {name} {_fmt_value(value)} > {text} but not significantly{bound}")
    return False, f"healthy: {name} {_fmt_value(value)} ≤ {text}"


def _why_no_verdict_task(
    metric: Metric,
    n: int,
    rows: _Rows,
    day: str,
    days: list[str],
    settings: PerformanceSettings,
    value: float | None,
) -> list[str]:
    """:func:`_why_no_verdict` for multiclass and regression rows."""
    if n == 0 or n < settings.min_labels:
        return _why_no_verdict(n, rows.y, 0.0, day, days, settings)
    if value is None:
        present = sorted(set(rows.y.tolist()))
        return [
            f"{n} labels of one class only ({', '.join(map(str, present))}); {metric.name} "
            "undefined, no verdict"
        ]
    return []


# --------------------------------------------------------------------------------------------
# Standard errors of the primary metrics


def metric_standard_error(
    task: str, y: ArrayLike, prediction: ArrayLike, classes: ArrayLike | None = None
) -> float:
    """Standard error of the task's primary metric on these rows (NaN when undefined).

    binary: Hanley-McNeil (:func:`auc_standard_error`); multiclass:
    :func:`macro_auc_standard_error`; regression: :func:`rmse_standard_error`.
    """
    _check_task(task)
    if task == "regression":
        return rmse_standard_error(y, prediction)
    if task == "multiclass":
        return macro_auc_standard_error(y, prediction, classes)
    labels = np.asarray(y, dtype=int)
    if np.unique(labels).size < 2:
        return float("nan")
    return auc_standard_error(float(roc_auc_score(labels, np.asarray(prediction))), labels)


def rmse_standard_error(y: ArrayLike, prediction: ArrayLike) -> float:
    """Delta-method standard error of the RMSE: with ``sq`` the per-row squared errors,
    ``se(MSE) = sd(sq) / sqrt(n)`` and ``se(RMSE) = se(MSE) / (2 RMSE)`` (0 for a perfect fit,
    NaN below two rows)."""
    error = np.asarray(y, dtype=float) - np.asarray(prediction, dtype=float)
    sq = error * error
    if sq.size < 2:
        return float("nan")
    rmse = math.sqrt(float(sq.mean()))
    if rmse == 0:
        return 0.0
    return float(sq.std(ddof=1)) / math.sqrt(sq.size) / (2 * rmse)


def macro_auc_standard_error(
    y: ArrayLike, prediction: ArrayLike, classes: ArrayLike | None = None
) -> float:
    """Standard error of the macro one-vs-rest AUC over the classes present in ``y``.

    The one-vs-rest AUCs of one set of rows are correlated (a row is a positive of one class and
    a negative of every other), so their Hanley-McNeil errors cannot be combined as independent
    (``sqrt(sum se_k^2) / K`` was ~15 % too small in simulation, 90 % coverage for a nominal
    95 %). Instead each row's influence on each class's AUC comes from its DeLong placement (the
    share of the other side it outranks, ties counting half), ``psi_i = mean_k (n / n_side)
    (placement_ik - AUC_k)``, and ``se = sd(psi) / sqrt(n)``: the covariances between classes
    are in it. NaN with fewer than two classes present. Column j of ``prediction`` is
    ``classes[j]`` (``0 .. k-1`` when None); every label must be one of them.
    """
    from scipy.stats import rankdata

    proba = np.asarray(prediction, dtype=float)
    labels = np.asarray(y)
    known = np.arange(proba.shape[1]) if classes is None else np.asarray(classes)
    if classes is not None:
        labels, known = labels.astype(str), known.astype(str)
    codes = pd.Index(known).get_indexer(labels)
    if (codes < 0).any():
        raise ValueError(f"y has labels not in classes {known.tolist()}")
    present = np.unique(codes)
    n = codes.size
    if present.size < 2:
        return float("nan")
    influence = np.zeros(n)
    for k in present:
        pos = codes == k
        n1, n0 = int(pos.sum()), n - int(pos.sum())
        ranks = rankdata(proba[:, k])
        placement = np.empty(n)
        placement[pos] = (ranks[pos] - rankdata(proba[pos, k])) / n0
        placement[~pos] = 1.0 - (ranks[~pos] - rankdata(proba[~pos, k])) / n1
        auc = float(placement[pos].mean())
        influence += np.where(pos, n / n1, n / n0) * (placement - auc)
    return float((influence / present.size).std(ddof=1)) / math.sqrt(n)


# --------------------------------------------------------------------------------------------
# Target drift


def target_drift(
    task: str, reference_y: ArrayLike, window_y: ArrayLike, alpha: float = 0.05
) -> dict[str, Any]:
    """Has the labels' distribution moved from the reference (the champion's training labels)?

    * regression: two-sample Kolmogorov-Smirnov of the window's labels against the reference's;
      ``drifted`` when ``p_value < alpha`` and the KS statistic is at least 0.1. Also both means.
    * multiclass: chi-square test of the class counts of the window against the reference (the
      union of the classes seen on either side, as text); ``drifted`` when ``p_value < alpha``
      and Cramér's V is at least 0.1. Also each class's share on both sides.
    * binary: the same test on the 0/1 counts (the two-proportion comparison of the positive
      rates; V is the phi coefficient). Also both positive rates.

    A significant but tiny change is not drift: with tens of thousands of labels any difference
    is significant. An empty side gives no test (``p_value`` None, not drifted). Returns plain
    JSON-able scalars and dicts.
    """
    _check_task(task)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha}")
    out: dict[str, Any] = {"task": task, "alpha": alpha, "min_effect": MIN_EFFECT}
    if task == "regression":
        ref = _finite("reference_y", reference_y)
        win = _finite("window_y", window_y)
        return out | _ks_drift(ref, win, alpha)
    ref_labels = _class_labels("reference_y", reference_y, task)
    win_labels = _class_labels("window_y", window_y, task)
    out |= _chi_square_drift(ref_labels, win_labels, alpha)
    if task == "binary":
        shares_ref, shares_win = out.pop("reference_shares"), out.pop("window_shares")
        out["reference_rate"] = shares_ref.get("1", 0.0) if ref_labels.size else None
        out["window_rate"] = shares_win.get("1", 0.0) if win_labels.size else None
    return out


def _finite(name: str, values: ArrayLike) -> np.ndarray:
    numbers = pd.to_numeric(pd.Series(np.asarray(values).ravel()), errors="coerce")
    arr = numbers.to_numpy(dtype=float)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite numbers; {int((~np.isfinite(arr)).sum())} aren't")
    return arr


def _class_labels(name: str, values: ArrayLike, task: str) -> np.ndarray:
    """Labels as text ("3", not "3.0"); binary ones must be 0/1."""
    labels = _label_values(pd.Series(np.asarray(values).ravel()), name, task)
    return np.asarray(labels).astype(str)


def _ks_drift(ref: np.ndarray, win: np.ndarray, alpha: float) -> dict[str, Any]:
    from scipy.stats import ks_2samp

    out: dict[str, Any] = {
        "test": "kolmogorov_smirnov",
        "n_reference": int(ref.size),
        "n_window": int(win.size),
        "reference_mean": float(ref.mean()) if ref.size else None,
        "window_mean": float(win.mean()) if win.size else None,
    }
    if not ref.size or not win.size:
        return out | {"statistic": None, "p_value": None, "drifted": False}
    result = ks_2samp(win, ref)
    statistic, p_value = float(result.statistic), float(result.pvalue)
    drifted = p_value < alpha and statistic >= MIN_EFFECT
    return out | {"statistic": statistic, "p_value": p_value, "drifted": bool(drifted)}


def _shares(labels: np.ndarray, classes: list[str]) -> dict[str, float]:
    if not labels.size:
        return {}
    counts = pd.Series(labels).value_counts()
    return {c: float(counts.get(c, 0)) / labels.size for c in classes}


def _chi_square_drift(ref: np.ndarray, win: np.ndarray, alpha: float) -> dict[str, Any]:
    """Chi-square test of homogeneity of the class counts (no continuity correction), and
    Cramér's V = sqrt(chi2 / n) for two samples."""
    from scipy.stats import chi2_contingency

    classes = sorted(set(ref.tolist()) | set(win.tolist()))
    out: dict[str, Any] = {
        "test": "chi_square",
        "n_reference": int(ref.size),
        "n_window": int(win.size),
        "reference_shares": _shares(ref, classes),
        "window_shares": _shares(win, classes),
    }
    if not ref.size or not win.size:
        return out | {"statistic": None, "p_value": None, "cramers_v": None, "drifted": False}
    if len(classes) < 2:  # one class on both sides: identical distributions
        return out | {"statistic": 0.0, "p_value": 1.0, "cramers_v": 0.0, "drifted": False}
    table = np.array([[np.sum(side == c) for c in classes] for side in (ref, win)])
    chi2, p_value, _, _ = chi2_contingency(table, correction=False)
    v = math.sqrt(float(chi2) / float(table.sum()))
    drifted = float(p_value) < alpha and v >= MIN_EFFECT
    return out | {
        "statistic": float(chi2),
        "p_value": float(p_value),
        "cramers_v": v,
        "drifted": bool(drifted),
    }
