"""Model history: one row per data day, the day the live metric degraded, a markdown table and a
chart.

"When did the model begin to degrade?" is answered from facts spread over Dagster runs and MLflow;
the ``model_history`` asset collects them per day and this module turns them into one frame, a
change-point estimate (docs/concept_drift.md) and pictures for a person.

``live_metric`` is the model task's primary metric on the day's labels (binary ROC AUC, multiclass
macro ROC AUC, regression RMSE); for a binary model it equals ``live_auc``. A degradation is a
fall of a higher-is-better metric and a rise of a lower-is-better one (``higher_is_better``).
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain_assets.lib.files import atomic_path
from retrain_assets.lib.tables import markdown_table

COLUMNS = [
    "day",
    "live_auc",
    "live_metric",
    "estimated_auc",
    "estimated_auc_low",
    "estimated_auc_high",
    "champion_version",
    "drift_share",
    "retrain_reasons",
    "promoted_to",
    "rolled_back_to",
]
_FLOATS = (
    "live_auc",
    "live_metric",
    "estimated_auc",
    "estimated_auc_low",
    "estimated_auc_high",
    "drift_share",
)
_STRINGS = ("champion_version", "promoted_to", "rolled_back_to")
METRIC_LABELS = {
    "roc_auc": "AUC",
    "macro_roc_auc": "macro AUC",
    "rmse": "RMSE",
    "mae": "MAE",
    "log_loss": "log loss",
}
"""How the chart names each task metric (``lib/training/tasks.py``); others show their name."""


def metric_label(metric: str) -> str:
    """The chart's name for ``metric``: ``roc_auc`` -> ``AUC``, ``rmse`` -> ``RMSE``, ..."""
    return METRIC_LABELS.get(metric, metric)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _reasons(value: Any) -> list[str]:
    """Accept a str ('a,b'), a list of str or None: callers read reasons from tags or lists."""
    if _missing(value):
        return []
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return [s.strip() for s in items if s.strip()]


def history_frame(days: list[dict[str, Any]]) -> pd.DataFrame:
    """Normalise per-day dicts into one row per day, sorted by day (columns: ``COLUMNS``).

    Several dicts for one day (e.g. a drift run and a retrain run) are merged: reasons are
    concatenated (duplicates dropped, order kept), otherwise the last non-null value wins.
    ``champion_version`` is forward-filled because the champion stays until something changes it.
    A day with ``live_auc`` but no ``live_metric`` gets its AUC as ``live_metric`` (a binary
    model's metric is its AUC).
    """
    merged: dict[str, dict[str, Any]] = {}
    for record in days:
        day = pd.Timestamp(record["day"]).date().isoformat()
        row = merged.setdefault(day, {"day": day, "retrain_reasons": []})
        for key, value in record.items():
            if key == "retrain_reasons":
                row[key] += [r for r in _reasons(value) if r not in row[key]]
            elif key in COLUMNS and key != "day" and not _missing(value):
                row[key] = value
    rows = []
    for day in sorted(merged):
        row = merged[day]
        if "live_metric" not in row and "live_auc" in row:
            row["live_metric"] = row["live_auc"]
        out: dict[str, Any] = {"day": day, "retrain_reasons": ",".join(row["retrain_reasons"])}
        out.update({c: float(row[c]) if c in row else math.nan for c in _FLOATS})
        out.update({c: str(row[c]) if c in row else None for c in _STRINGS})
        rows.append(out)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    champion = frame["champion_version"].astype(object).ffill()
    frame["champion_version"] = champion.where(champion.notna(), None)
    return frame


def degradation_start(
    frame: pd.DataFrame,
    column: str = "live_metric",
    min_segment: int = 3,
    alpha: float = 0.05,
    higher_is_better: bool = True,
) -> dict[str, Any] | None:
    """Estimate the first day of a worse ``column`` level, or None if there is no real change.

    Worse is lower when ``higher_is_better`` (an AUC), higher otherwise (an RMSE). Every split
    with >= ``min_segment`` (at least 2, for the t-test) non-NaN points per side is tried; the one
    minimising the within-segment sum of squares wins. It is reported only if the mean after is
    worse and the Welch p, Bonferroni-adjusted by the number of splits (the split was chosen to
    make the means differ most, so the raw p is optimistic), is below ``alpha``. ``before`` and
    ``after`` are the segment means in the metric's units, ``drop`` how much worse the after
    mean is (positive in both directions), ``p_value`` the raw Welch p.
    """
    from scipy.stats import ttest_ind

    m = max(int(min_segment), 2)
    data = frame[["day", column]].dropna()
    sign = 1.0 if higher_is_better else -1.0  # the detector looks for a fall of sign * y
    y = sign * data[column].to_numpy(dtype=float)
    n = len(y)
    if n < 2 * m:
        return None
    csum = np.cumsum(y)
    k = np.arange(m, n - m + 1)  # split k: before = y[:k], after = y[k:]
    left = csum[k - 1]
    # Total SS minus the between-segment part; the constant sum(y^2) is dropped.
    neg_between = -(left**2 / k + (csum[-1] - left) ** 2 / (n - k))
    split = int(k[int(np.argmin(neg_between))])
    before, after = y[:split], y[split:]
    if before.mean() - after.mean() <= 1e-9 * max(1.0, abs(before.mean())):
        return None  # no drop, or only float rounding on a flat series
    with warnings.catch_warnings():  # scipy warns on near-constant segments; the p is still right
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(ttest_ind(before, after, equal_var=False).pvalue)
    p_adjusted = min(1.0, p * len(k))
    if math.isnan(p) or p_adjusted >= alpha:
        return None
    return {
        "day": str(data["day"].iloc[split]),
        "before": float(sign * before.mean()),
        "after": float(sign * after.mean()),
        "drop": float(before.mean() - after.mean()),
        "p_value": p,
        "p_adjusted": p_adjusted,
    }


def _cell(value: Any) -> str:
    if _missing(value):
        return ""
    if isinstance(value, float | np.floating):
        return f"{value:.3f}"
    return str(value).replace("|", "\\|")


def to_markdown(frame: pd.DataFrame, max_rows: int = 60) -> str:
    """A GitHub-style table of the newest ``max_rows`` days, oldest first (Dagster renders it)."""
    shown = frame.tail(max_rows)
    rows = [[_cell(v) for v in row] for row in shown.itertuples(index=False)]
    text = markdown_table(list(frame.columns), rows)
    if len(frame) > len(shown):
        text += f"\n\n_{len(frame) - len(shown)} older days not shown._"
    return text + "\n"


_EVENTS = (  # column, colour, line style, label
    ("retrain_reasons", "tab:orange", ":", "retrain"),
    ("promoted_to", "tab:green", "-", "promoted"),
    ("rolled_back_to", "tab:red", "--", "rolled back"),
)


def plot_png(
    frame: pd.DataFrame,
    path: str | os.PathLike[str],
    change: dict | None = None,
    metric: str = "roc_auc",
) -> None:
    """Draw the live ``metric`` (``live_metric``) and, for a binary model, the AUC estimated before
    labels (top) and drift share (bottom) with event markers; write ``path`` atomically.

    The top panel's y label names the metric (:func:`metric_label`: ``AUC``, ``macro AUC``,
    ``RMSE``); the estimate and its band are drawn only on days with an ``estimated_auc``.

    A bare ``Figure`` with the Agg canvas is used instead of pyplot: no global backend switch, no
    window, safe in Dagster's threaded executors. Retrains are orange dotted lines labelled with
    their reasons, promotions green, rollbacks red dashed; ``change`` shades the degraded period.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    days = pd.to_datetime(frame["day"])
    fig = Figure(figsize=(11, 6.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax_auc, ax_drift = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    label = metric_label(metric)
    ax_auc.plot(
        days, frame["live_metric"], marker=".", color="tab:blue", label=f"live {label} (label day)"
    )
    _draw_estimate(frame, days, ax_auc)
    ax_drift.bar(days, frame["drift_share"].fillna(0.0), color="tab:purple", width=0.8)
    ax_auc.set_ylabel(label)
    ax_drift.set_ylabel("drift share")
    ax_auc.set_title("Model history")
    _draw_events(frame, days, ax_auc, ax_drift)
    if change is not None and len(days):
        _shade_change(change, days, ax_auc, ax_drift)
    ax_auc.legend(loc="best", fontsize=8)
    locator = AutoDateLocator()
    ax_drift.xaxis.set_major_locator(locator)
    ax_drift.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png")


def _draw_estimate(frame: pd.DataFrame, days: pd.Series, ax_auc: Any) -> None:
    """The AUC estimated for each batch before its labels, with its interval as a band."""
    if frame["estimated_auc"].isna().all():
        return
    ax_auc.fill_between(
        days,
        frame["estimated_auc_low"],
        frame["estimated_auc_high"],
        color="tab:cyan",
        alpha=0.18,
        linewidth=0,
        label="its interval",
    )
    ax_auc.plot(
        days,
        frame["estimated_auc"],
        linestyle="--",
        color="tab:cyan",
        label="estimated AUC (batch day, before labels)",
    )


def _draw_events(frame: pd.DataFrame, days: pd.Series, ax_auc: Any, ax_drift: Any) -> None:
    """A vertical line on both axes per retrain, promotion and rollback, labelled on the top one."""
    for col, color, style, label in _EVENTS:
        for day, value in zip(days, frame[col], strict=True):
            if _missing(value) or value == "":
                continue
            for ax in (ax_auc, ax_drift):
                ax.axvline(day, color=color, linestyle=style, linewidth=1.2)
            text = value if col == "retrain_reasons" else f"{label} v{value}"
            ax_auc.annotate(
                text,
                (day, 1.0),
                xycoords=("data", "axes fraction"),
                rotation=90,
                va="top",
                ha="right",
                fontsize=7,
                color=color,
            )


def _shade_change(change: dict, days: pd.Series, ax_auc: Any, ax_drift: Any) -> None:
    """Shade the degraded period and draw the mean level before and after the change."""
    start = pd.Timestamp(change["day"])
    for ax in (ax_auc, ax_drift):
        ax.axvspan(start, days.max() + pd.Timedelta(days=0.5), color="tab:red", alpha=0.12)
    ax_auc.hlines(change["before"], days.min(), start, color="tab:blue", linewidth=0.8)
    ax_auc.hlines(change["after"], start, days.max(), color="tab:red", linewidth=0.8)
    ax_auc.plot([], [], color="tab:red", alpha=0.3, linewidth=8, label=f"degraded from {start:%F}")
