"""The fleet at a glance: one row of plain facts per model, the reasons a model needs a person's
attention, and the same rows as a markdown table (asset metadata), a chart and a terminal table.

Facts are gathered elsewhere (``retrain_assets/overview.py`` reads the Dagster instance and the
MLflow registry); this module only judges and draws them. Days are data days (ISO dates, the
daily partition keys), never the wall clock. A metric is the model task's primary one (binary ROC
AUC, multiclass macro ROC AUC, regression RMSE); ``higher_is_better`` says which way is worse.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrain_assets.lib.dates import days_between
from retrain_assets.lib.files import atomic_path
from retrain_assets.lib.tables import markdown_table, text_table

GATES_FAILED = "gates failed"
"""``retrain_outcome`` of a retraining whose data or model gate rejected the candidate."""
FAILED = "failed"
"""``retrain_outcome`` of a retraining that failed any other way (an error)."""
OK = "ok"


def _metric_label(metric: str) -> str:
    """timeline's name for a metric (imported here: timeline imports pandas, which the code
    location must not load)."""
    from retrain_assets.lib.release.timeline import metric_label

    return metric_label(metric)


@dataclass(frozen=True)
class ModelStatus:
    """What is known of one model now. None means unknown or not (yet) there."""

    name: str
    task: str | None = None
    metric: str | None = None
    """The primary metric's name (``roc_auc``, ``macro_roc_auc``, ``rmse``)."""
    higher_is_better: bool = True
    champion: str | None = None
    """The version behind the registry alias ``champion``."""
    champion_since: str | None = None
    """The data day the champion took over (its promotion or rollback)."""
    newest_day: str | None = None
    """The newest data day the model has seen (drift or performance report)."""
    live_metric: float | None = None
    """The champion's metric on the labels of ``live_day`` (the newest performance report)."""
    live_day: str | None = None
    live_degraded: bool | None = None
    """That report's own verdict (significantly worse than the test value); None when absent."""
    estimated_metric: float | None = None
    """Binary only: the AUC estimated before labels on the newest batch (``estimated_day``)."""
    estimated_day: str | None = None
    estimated_degraded: bool | None = None
    test_metric: float | None = None
    """The champion's metric on its own test rows (recorded at registration)."""
    drift_day: str | None = None
    """The day of the newest drift report, its share of drifted columns, and its verdict."""
    drift_share: float | None = None
    drifted: bool | None = None
    retrain_day: str | None = None
    """The data day and reason of the newest retraining that counts (queued, running, passed or
    stopped by a gate)."""
    retrain_reason: str | None = None
    retrain_outcome: str | None = None
    """How the newest retraining run ended: ok, gates failed, failed, running, canceled."""
    challenger: str | None = None
    """A gated challenger waiting for (or in) its canary."""
    config_error: str | None = None
    """A model file that did not load: ``<file>: <first line of the error>``."""
    read_error: str | None = None
    """Facts that could not be read (an unreachable MLflow registry)."""

    @property
    def champion_age(self) -> int | None:
        """Data days since the champion took over (None when unknown)."""
        if self.champion_since is None or self.newest_day is None:
            return None
        return max(0, days_between(self.champion_since, self.newest_day))

    @property
    def broken(self) -> bool:
        return self.config_error is not None


@dataclass(frozen=True)
class Thresholds:
    """When a figure needs attention (a model's own config sets them in the Dagster layer)."""

    relative_drop: float = 0.05
    """Live metric worse than test x (1 - relative_drop) (an error metric: test / (1 - drop)),
    where the performance report gave no verdict of its own."""
    estimated_relative_drop: float = 0.05
    """The same for the metric estimated before labels."""
    stale_days: int = 14
    """No retraining for more than this many data days."""


@dataclass(frozen=True)
class StatusRow:
    """A model's facts and the reasons it needs attention (empty: none)."""

    status: ModelStatus
    reasons: list[str] = field(default_factory=list)

    @property
    def needs_attention(self) -> bool:
        return bool(self.reasons)


def config_error_text(file: str | os.PathLike[str], error: str) -> str:
    """``<file name>: <what is wrong>``: the error's first line without a leading copy of the
    file's path; when that line only introduces the file (``invalid config <path>:``), the keys
    listed under it, joined by ``; ``."""
    name = Path(file).name
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    first = lines[0] if lines else ""
    for prefix in (f"{file}:", f"{name}:"):
        if first.startswith(prefix):
            first = first[len(prefix) :].strip()
    if first.endswith(":") and str(file) in first and len(lines) > 1:
        first = "; ".join(lines[1:])
    return f"{name}: {first}"


def worse_than(value: float, reference: float, drop: float, higher_is_better: bool) -> bool:
    """Whether value is worse than reference by more than the relative drop."""
    if higher_is_better:
        return value < reference * (1 - drop)
    return value > reference / (1 - drop)


def _fig(value: float | None) -> str:
    """0.812, 98.000, 1823.2: three decimals below 100, one above."""
    if value is None:
        return "-"
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"


def _worse_reason(
    s: ModelStatus, which: str, figure: tuple[float | None, str | None, bool | None], drop: float
) -> str | None:
    """`<which> <metric> <value> (<day>) worse than test <value>` when the figure (value, day,
    the report's own verdict or None) is worse than the test value, else None."""
    value, day, degraded = figure
    if value is None or s.test_metric is None:
        return None
    worse = (
        degraded
        if degraded is not None
        else worse_than(value, s.test_metric, drop, s.higher_is_better)
    )
    if not worse:
        return None
    label = _metric_label(s.metric or "")
    return f"{which} {label} {_fig(value)} ({day}) worse than test {_fig(s.test_metric)}"


def _retrain_reasons(s: ModelStatus, stale_days: int) -> list[str]:
    out = []
    if s.retrain_outcome in (GATES_FAILED, FAILED):
        out.append(f"last retraining {s.retrain_outcome}")
    if s.retrain_day is not None and s.newest_day is not None:
        idle = days_between(s.retrain_day, s.newest_day)
        if idle > stale_days:
            out.append(f"no retraining for {idle} data days (last {s.retrain_day})")
    return out


def attention(status: ModelStatus, thresholds: Thresholds | None = None) -> list[str]:
    """Why the model needs a person, one short phrase per reason; empty when it does not.

    A broken config, an unreadable registry, no champion, a live metric worse than the test value
    (the performance report's own verdict where it gave one, else ``relative_drop``), drift on
    the newest day, a failed newest retraining (a gate or an error), no retraining for more than
    ``stale_days`` data days, an estimated metric worse than the test value."""
    t = thresholds or Thresholds()
    s = status
    if s.config_error is not None:
        return [f"config error: {s.config_error}"]
    reasons = []
    if s.read_error is not None:
        reasons.append(f"cannot read: {s.read_error}")
    if s.champion is None and s.read_error is None:
        reasons.append("no champion")
    live = (s.live_metric, s.live_day, s.live_degraded)
    reasons.append(_worse_reason(s, "live", live, t.relative_drop) or "")
    if s.drifted:
        share = "" if s.drift_share is None else f" (share {s.drift_share:.0%})"
        reasons.append(f"drift on {s.drift_day}{share}")
    reasons += _retrain_reasons(s, t.stale_days)
    estimated = (s.estimated_metric, s.estimated_day, s.estimated_degraded)
    reasons.append(_worse_reason(s, "estimated", estimated, t.estimated_relative_drop) or "")
    return [r for r in reasons if r]


def assess(status: ModelStatus, thresholds: Thresholds | None = None) -> StatusRow:
    return StatusRow(status, attention(status, thresholds))


def ordered(rows: Sequence[StatusRow]) -> list[StatusRow]:
    """Models needing attention first (broken ones first of those), then by name."""
    return sorted(rows, key=lambda r: (not r.needs_attention, not r.status.broken, r.status.name))


def counts(rows: Sequence[StatusRow]) -> dict[str, int]:
    return {
        "models": len(rows),
        "needing_attention": sum(r.needs_attention for r in rows),
        "broken": sum(r.status.broken for r in rows),
    }


HEADERS = [
    "model",
    "task",
    "metric",
    "champion",
    "age (days)",
    "live",
    "vs test",
    "estimated",
    "test",
    "drift",
    "last retraining",
    "challenger",
    "attention",
]


def relative_gap(value: float | None, test: float | None, higher_is_better: bool) -> float | None:
    """How much better (> 0) or worse (< 0) value is than test, relative to test."""
    if value is None or test is None or test == 0 or not math.isfinite(value * test):
        return None
    gap = (value - test) / abs(test)
    return gap if higher_is_better else -gap


def _day_suffix(day: str | None) -> str:
    return f" ({day})" if day else ""


def cells(row: StatusRow) -> list[str]:
    """The row's cells, in HEADERS order, as text."""
    s = row.status
    gap = relative_gap(s.live_metric, s.test_metric, s.higher_is_better)
    drift = "-"
    if s.drift_day is not None:
        share = "" if s.drift_share is None else f"{s.drift_share:.0%} "
        drift = f"{share}{'DRIFT' if s.drifted else 'ok'} ({s.drift_day})"
    retrain = "-"
    if s.retrain_day is not None:
        retrain = f"{s.retrain_day} {s.retrain_reason or ''}".strip()
        if s.retrain_outcome not in (None, OK):
            retrain += f" [{s.retrain_outcome}]"
    return [
        s.name,
        s.task or "-",
        _metric_label(s.metric) if s.metric else "-",
        f"v{s.champion}" if s.champion else "-",
        "-" if s.champion_age is None else str(s.champion_age),
        "-" if s.live_metric is None else f"{_fig(s.live_metric)}{_day_suffix(s.live_day)}",
        "-" if gap is None else f"{gap:+.1%}",
        _fig(s.estimated_metric),
        _fig(s.test_metric),
        drift,
        retrain,
        f"v{s.challenger}" if s.challenger else "-",
        "; ".join(row.reasons) if row.reasons else "ok",
    ]


def status_table(rows: Sequence[StatusRow]) -> str:
    """A markdown table, one row per model, those needing attention first."""
    body = [[c.replace("|", "\\|") for c in cells(r)] for r in ordered(rows)]
    return markdown_table(HEADERS, body) + "\n"


def summary_line(rows: Sequence[StatusRow]) -> str:
    c = counts(rows)
    return f"{c['models']} models, {c['needing_attention']} need attention, {c['broken']} broken"


def status_text(rows: Sequence[StatusRow]) -> str:
    """The same facts for a terminal: aligned columns, one line per model, then a count line."""
    return text_table(HEADERS, [cells(r) for r in ordered(rows)]) + "\n" + summary_line(rows)


def _bar_label(row: StatusRow) -> str:
    """The model's name, and under it its live and test figures (or why there are none)."""
    s = row.status
    if s.broken:
        return f"{s.name}\nconfig error"
    if s.live_metric is None or s.test_metric is None:
        return f"{s.name}\nno live metric" if s.champion else f"{s.name}\nno champion"
    label = _metric_label(s.metric or "")
    return f"{s.name}\n{label} {_fig(s.live_metric)} vs {_fig(s.test_metric)}"


def _draw_row(ax: Any, i: int, row: StatusRow, width: float) -> None:
    """One model's bar (its live gap to test), diamond (estimated gap) or, with neither, a pale
    band across the chart when it needs attention."""
    s = row.status
    colour = "tab:red" if row.needs_attention else "tab:green"
    gap = relative_gap(s.live_metric, s.test_metric, s.higher_is_better)
    if gap is not None:
        ax.barh(i, 100 * gap, color=colour, height=0.6)
    elif row.needs_attention:
        ax.barh(i, 2 * width, left=-width, color=colour, alpha=0.15, height=0.6, hatch="//")
    estimated = relative_gap(s.estimated_metric, s.test_metric, s.higher_is_better)
    if estimated is not None:
        ax.plot(100 * estimated, i, marker="D", color="black", markersize=5, linestyle="")


def _half_width(rows: Sequence[StatusRow]) -> float:
    """Half the x range in %: every gap fits, and at least 5 %."""
    gaps = [
        abs(100 * g)
        for r in rows
        for g in (
            relative_gap(r.status.live_metric, r.status.test_metric, r.status.higher_is_better),
            relative_gap(
                r.status.estimated_metric, r.status.test_metric, r.status.higher_is_better
            ),
        )
        if g is not None
    ]
    return max([5.0, *(1.2 * g for g in gaps)])


def plot_status_png(rows: Sequence[StatusRow], path: str | os.PathLike[str]) -> Path:
    """One horizontal bar per model: the live metric's gap to its test value in % (right =
    better, left = worse, whatever the metric's direction), red when the model needs attention,
    green when not; the estimated metric's gap as a diamond; a model with no live figure that
    needs attention (broken, no champion) as a pale red band. Written atomically; the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    shown = list(reversed(ordered(rows)))  # barh draws bottom-up: attention on top
    fig = Figure(figsize=(9, 1.6 + 0.6 * max(len(shown), 1)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    width = _half_width(shown)
    for i, row in enumerate(shown):
        _draw_row(ax, i, row, width)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlim(-width, width)
    ax.set_ylim(-0.7, max(len(shown), 1) - 0.3)
    ax.set_yticks(range(len(shown)), [_bar_label(r) for r in shown], fontsize=8)
    ax.set_xlabel("live metric against its test value (%; right = better)")
    c = counts(rows)
    ax.set_title(f"Fleet status: {c['needing_attention']} of {c['models']} need attention")
    fig.legend(
        handles=[
            Patch(color="tab:red", label="needs attention"),
            Patch(color="tab:green", label="ok"),
            Line2D([], [], marker="D", color="black", linestyle="", label="estimated"),
        ],
        loc="outside lower center",
        ncols=3,
        fontsize=8,
    )
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)
