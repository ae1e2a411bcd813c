"""What a retraining policy did over a replayed history: the day-by-day timeline and its summary.

Plain Python (no Dagster): ``replay`` runs the history; this module turns what it observed into
figures a team can judge a policy by, against the simulator's answer key (``ground_truth.json``)
when there is one.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from retrain_assets.lib.tables import text_table
from retrain_assets.names import SOFT_REASONS

TIMELINE_KEYS = (
    "day",
    "drift_share",
    "estimated_auc",
    "live_metric",
    "reason",
    "gates",
    "canary",
    "champion_version",
)


@dataclass
class DayRecord:
    """One replayed data day: what monitoring saw and what the policy did."""

    day: str
    drift_share: float | None = None
    drifted: bool | None = None
    live_auc: float | None = None
    live_metric: float | None = None
    """The day's live figure in the task's primary metric (binary: the live AUC)."""
    estimated: dict[str, Any] = field(default_factory=dict)
    """The champion's estimate on the day's batch, before labels: auc, low, high."""
    estimate_check: dict[str, Any] = field(default_factory=dict)
    """The day's labelled rows: the AUC estimated for them against their realized AUC (error,
    covered), from the performance report."""
    reasons: list[str] = field(default_factory=list)
    gates: list[str] = field(default_factory=list)
    canary: list[str] = field(default_factory=list)
    champion_version: str | None = None
    runs: int = 0
    train_seconds: float = 0.0
    """Seconds inside the retraining runs' steps that day (training, gates, registration)."""

    def to_row(self) -> dict[str, Any]:
        """The machine-readable timeline row (null where a figure does not exist)."""
        return {
            "day": self.day,
            "drift_share": _finite(self.drift_share),
            "drifted": self.drifted,
            "live_auc": _finite(self.live_auc),
            "live_metric": _finite(
                self.live_metric if self.live_metric is not None else self.live_auc
            ),
            "estimated_auc": _finite(self.estimated.get("auc")),
            "estimated_auc_low": _finite(self.estimated.get("low")),
            "estimated_auc_high": _finite(self.estimated.get("high")),
            "estimation_error": _finite(self.estimate_check.get("error")),
            "estimate_covers": self.estimate_check.get("covered"),
            "reason": ", ".join(self.reasons) or None,
            "gates": ", ".join(self.gates) or None,
            "canary": ", ".join(self.canary) or None,
            "champion_version": self.champion_version,
            "runs": self.runs,
            "train_seconds": round(self.train_seconds, 2),
        }


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(float(value)):
        return None
    return round(float(value), 4)


METRIC_LABELS = {"roc_auc": "AUC", "macro_roc_auc": "macro AUC", "rmse": "RMSE"}


def pooled_metric(
    task: str, y: np.ndarray, prediction: np.ndarray, classes: list[str] | None = None
) -> float | None:
    """The task's primary metric on the pooled rows, or None where it is undefined (an AUC over a
    single class); multiclass rows with labels the model never saw are left out."""
    if task == "binary":
        return pooled_auc(y, prediction)
    from retrain_assets.lib.training import tasks

    known = tasks.known_label_rows(task, y, classes)
    if not known.any():
        return None
    labels = np.asarray(y)[known]
    value = tasks.task_metrics(task)[0](labels, np.asarray(prediction)[known], classes)
    return None if math.isnan(value) else float(value)


def pooled_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC of the pooled rows, or None when they hold a single class."""
    y = np.asarray(y)
    if len(y) == 0 or len(np.unique(y)) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, np.asarray(score, dtype=float)))


def estimation_summary(records: list[DayRecord], drift_date: str | None) -> dict[str, Any]:
    """How well the estimate before labels matched the AUC the labels gave for the same rows,
    over the label days that have both: mean and median absolute error, the interval's coverage;
    after the true drift start too, where an answer key gives one."""

    def figures(rows: list[DayRecord], suffix: str) -> dict[str, Any]:
        errors = [abs(r.estimate_check["error"]) for r in rows]
        covered = [bool(r.estimate_check["covered"]) for r in rows]
        return {
            f"estimation_mae{suffix}": _finite(float(np.mean(errors))) if errors else None,
            f"estimation_median_abs_error{suffix}": _finite(float(np.median(errors)))
            if errors
            else None,
            f"estimation_coverage{suffix}": _finite(float(np.mean(covered))) if covered else None,
            f"estimation_days{suffix}": len(rows),
        }

    checked = [r for r in records if r.estimate_check.get("error") is not None]
    out = figures(checked, "")
    if drift_date:
        out.update(figures([r for r in checked if r.day >= drift_date], "_after_drift"))
    return out


def _live_figures(metric: str, final: float | None, baseline: float | None) -> dict[str, Any]:
    """The final live figures in the task's metric; the AUC keys too for a binary model."""
    auc = metric == "roc_auc"
    return {
        "metric": metric,
        "final_live_metric": _finite(final),
        "baseline_live_metric": _finite(baseline),
        "final_live_auc": _finite(final) if auc else None,
        "baseline_live_auc": _finite(baseline) if auc else None,
    }


def _batches_until(days: list[str], start: str, end: str) -> int:
    """Replayed batches from `start` to `end`, both included (the trigger's own batch counts)."""
    return sum(1 for d in days if start <= d <= end)


def summarize(
    records: list[DayRecord],
    truth: dict[str, Any] | None,
    *,
    final_live_auc: float | None,
    baseline_live_auc: float | None,
    auc_days: list[str],
    auc_rows: int,
    metric: str = "roc_auc",
) -> dict[str, Any]:
    """The policy's summary; detection figures need the answer key (None without one).

    - ``first_drift_day``: the first day a drift report flagged its batch;
    - ``detection_delay_batches``: batches from the true drift start until a soft trigger
      (drift, performance, concept, estimated performance) started a retraining, the trigger's
      batch included;
    - ``false_alarms``: soft-trigger retrainings before the true drift start, or any at all when
      the data holds no drift (the seasonal wobble is not drift);
    - ``final_live_metric`` / ``baseline_live_metric``: the policy's serving champions and the
      never retrained first model, scored on the same labelled rows of the last days, in the
      task's primary ``metric`` (``final_live_auc`` / ``baseline_live_auc`` are the same figures
      for a binary model, kept for existing readers; None for the other tasks).
    """
    days = [r.day for r in records]
    first_drift = next((r.day for r in records if r.drifted), None)
    retrains = Counter(reason for r in records for reason in r.reasons)
    soft = [(r.day, reason) for r in records for reason in r.reasons if reason in SOFT_REASONS]
    drift_date = truth.get("drift_date") if truth else None
    delay: int | None = None
    alarms: int | None = None
    first_trigger: str | None = None
    if truth is not None:
        if drift_date:
            alarms = sum(1 for day, _ in soft if day < drift_date)
            after = [day for day, _ in soft if day >= drift_date]
            first_trigger = min(after) if after else None
            if first_trigger is not None:
                delay = _batches_until(days, drift_date, first_trigger)
        else:
            alarms = len(soft)
    return {
        "days": len(records),
        "first_day": days[0] if days else None,
        "last_day": days[-1] if days else None,
        "drift_kind": truth.get("drift") if truth else None,
        "true_drift_day": drift_date,
        "first_drift_day": first_drift,
        "first_trigger_day": first_trigger,
        "detection_delay_batches": delay,
        "retrains": dict(sorted(retrains.items())),
        "false_alarms": alarms,
        "promotions": sum(r.canary.count("promote") for r in records),
        "final_champion_version": records[-1].champion_version if records else None,
        **_live_figures(metric, final_live_auc, baseline_live_auc),
        "auc_days": auc_days,
        "auc_rows": auc_rows,
        **estimation_summary(records, drift_date),
    }


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _estimation_line(s: dict[str, Any]) -> str:
    if not s.get("estimation_days"):
        return "no label day with an estimate"
    line = (
        f"mean |error| {_cell(s['estimation_mae'])}, "
        f"median {_cell(s['estimation_median_abs_error'])}, "
        f"interval covers {_cell(s['estimation_coverage'])} of {s['estimation_days']} label days"
    )
    if s.get("estimation_days_after_drift"):
        line += f" (after the drift: mean |error| {_cell(s['estimation_mae_after_drift'])})"
    return line


def format_report(report: dict[str, Any]) -> str:
    """The timeline as a table, then the summary, for a terminal."""
    s = report["summary"]
    label = METRIC_LABELS.get(s.get("metric", "roc_auc"), s.get("metric"))
    header = ["day", "drift share", "est. AUC", f"live {label}", "trigger", "gates", "canary"]
    header.append("champion")
    rows = [[_cell(row[k]) for k in TIMELINE_KEYS] for row in report["timeline"]]
    lines = text_table(header, rows).splitlines()
    retrains = ", ".join(f"{k}={v}" for k, v in s["retrains"].items()) or "none"
    auc_span = f"last {len(s['auc_days'])} label days, {s['auc_rows']} rows"
    lines += [
        "",
        f"days replayed          {s['days']} ({s['first_day']} .. {s['last_day']})",
        f"drift kind (truth)     {_cell(s['drift_kind'])}, starts {_cell(s['true_drift_day'])}",
        f"first drift flagged    {_cell(s['first_drift_day'])}",
        f"first soft trigger     {_cell(s['first_trigger_day'])}",
        f"detection delay        {_cell(s['detection_delay_batches'])} batch(es)",
        f"retrains by reason     {retrains}",
        f"false alarms           {_cell(s['false_alarms'])}",
        f"promotions             {s['promotions']}",
        f"champion at the end    v{_cell(s['final_champion_version'])}",
        f"{f'live {label}, policy':<23}{_cell(s['final_live_metric'])} ({auc_span})",
        f"live {label}, no retraining {_cell(s['baseline_live_metric'])}",
        f"estimate vs labels     {_estimation_line(s)}",
    ]
    return "\n".join(lines)
