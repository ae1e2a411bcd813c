"""The calibrator of a candidate: fitted on held-out train rows in time order, never on the test
rows the gates judge.

The newest ``holdout_share`` of the train rows (in time order) is scored by a model fitted the
strategy's way on the older rest; the calibrator maps those out-of-sample scores to the labels.
The candidate itself is fitted on every train row, as without calibration, and the calibrator is
applied to its scores: a model fitted on a little more data is a little more confident, which the
calibration check on the test rows measures. One extra fit, on most of the rows, is the cost
(benchmarks/RESULTS.md, *Retraining cycle*).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from retrain_assets.lib.monitoring.estimation import (
    IDENTITY,
    Calibrator,
    calibration_auc_se,
    estimate_performance,
    expected_calibration_error,
    fit_calibrator,
)
from retrain_assets.lib.training.fitting import DAY, ORDER, TARGET


@dataclass(frozen=True)
class CalibrationSettings:
    method: str = "sigmoid"
    holdout_share: float = 0.2
    min_rows: int = 200


@dataclass(frozen=True)
class Holdout:
    """A calibrator and the held-out rows it was fitted on (their out-of-sample scores)."""

    calibrator: Calibrator
    rows: int
    days: tuple[str, str] | None
    note: str
    scores: np.ndarray = field(default_factory=lambda: np.empty(0))
    y: np.ndarray = field(default_factory=lambda: np.empty(0))


@dataclass(frozen=True)
class CalibrationResult:
    """The calibrator and how well it did on the test rows (raw scores against calibrated)."""

    calibrator: Calibrator
    holdout_rows: int
    holdout_days: tuple[str, str] | None
    test_ece_raw: float
    test_ece: float
    note: str
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def fitted(self) -> bool:
        return self.calibrator.method != IDENTITY.method


def time_ordered_holdout(train: pd.DataFrame, share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(older rows, newest ``share`` of the rows) of a train split, in time order (data day, then
    the assembled order)."""
    keys = [c for c in (DAY, ORDER) if c in train]
    ordered = train.sort_values(keys, kind="stable") if keys else train
    n_holdout = round(len(ordered) * share)
    cut = len(ordered) - n_holdout
    return ordered.iloc[:cut], ordered.iloc[cut:]


def _day_span(rows: pd.DataFrame) -> tuple[str, str] | None:
    if DAY not in rows or rows.empty:
        return None
    return str(rows[DAY].min()), str(rows[DAY].max())


def calibrate(
    fit: Callable[[pd.DataFrame], Pipeline],
    score: Callable[[Pipeline, pd.DataFrame], np.ndarray],
    train: pd.DataFrame,
    settings: CalibrationSettings,
) -> Holdout:
    """A calibrator from the time-ordered hold-out of ``train``, with the rows' count, day span,
    scores and labels, and a note. ``fit`` fits a pipeline on rows the strategy's way; ``score``
    gives P(positive). Too few hold-out rows, a single class in either part, or a calibrator that
    cannot be fitted give the identity, with the reason in the note."""
    older, holdout = time_ordered_holdout(train, settings.holdout_share)
    span = _day_span(holdout)
    y_hold = holdout[TARGET].to_numpy().astype(int)
    if len(holdout) < settings.min_rows:
        why = f"{len(holdout)} held-out rows < calibration.min_rows {settings.min_rows}"
        return Holdout(IDENTITY, len(holdout), span, f"not calibrated: {why}")
    if len(np.unique(older[TARGET])) < 2 or len(np.unique(y_hold)) < 2:
        return Holdout(IDENTITY, len(holdout), span, "not calibrated: a single class in a part")
    scores = score(fit(older), holdout)
    try:
        calibrator = fit_calibrator(scores, y_hold, settings.method, settings.min_rows)
    except ValueError as exc:
        return Holdout(IDENTITY, len(holdout), span, f"not calibrated: {exc}")
    days = f"{span[0]}..{span[1]}" if span else "the reference"
    note = (
        f"{settings.method} calibrator fitted on the newest {len(holdout)} train rows ({days}), "
        f"scored by a model fitted on the {len(older)} older ones"
    )
    return Holdout(calibrator, len(holdout), span, note, scores, y_hold)


def test_rows_error(y_test: np.ndarray, test_scores: np.ndarray, calibrator: Calibrator):
    """(realized AUC - estimated AUC, the estimate's label-noise standard error) on the test
    rows: how far the estimate is off for this model on the newest labelled rows (None, None
    when the AUC is undefined there)."""
    if len(np.unique(y_test)) < 2:
        return None, None
    est = estimate_performance(test_scores, calibrator.apply(test_scores))
    if est.auc is None or est.auc_se is None:
        return None, None
    return float(roc_auc_score(y_test, test_scores)) - est.auc, est.auc_se


def calibration_result(
    holdout: Holdout, y_test: np.ndarray, test_scores: np.ndarray
) -> CalibrationResult:
    """The calibrator with its uncertainty in AUC units (``Calibrator.auc_se``), and its
    expected calibration error on the test rows, raw and calibrated.

    The uncertainty has two parts, in quadrature: the spread of the expected AUC of the test rows
    over bootstrap refits of the calibrator (its fitting noise), and the estimate's error on the
    test rows beyond their label noise, ``sqrt(max(0, error^2 - se^2))`` (the calibrator was
    fitted for a model trained without the hold-out, and the model serves rows newer than its
    hold-out). Only the interval's width uses the test rows: the estimate itself never does."""
    calibrator = holdout.calibrator
    error, label_se = test_rows_error(y_test, test_scores, calibrator)
    metrics: dict[str, Any] = {}
    if holdout.scores.size:
        spread = calibration_auc_se(
            holdout.scores, holdout.y, calibrator.method, test_scores, draws=100
        )
        beyond = math.sqrt(max(0.0, error**2 - label_se**2)) if error is not None else 0.0
        calibrator = dataclasses.replace(calibrator, auc_se=math.hypot(spread, beyond))
        metrics.update({"calibration_bootstrap_auc_se": spread})
    if error is not None:
        metrics["calibration_test_auc_error"] = error
    raw = expected_calibration_error(y_test, test_scores)
    ece = expected_calibration_error(y_test, calibrator.apply(test_scores))
    metrics.update(
        {
            "calibration_ece": ece,
            "calibration_ece_raw": raw,
            "calibration_rows": float(holdout.rows),
            "calibration_auc_se": calibrator.auc_se,
        }
    )
    return CalibrationResult(
        calibrator, holdout.rows, holdout.days, raw, ece, holdout.note, metrics
    )
