"""Compare retraining policies on the user's own history: what would each have bought, at what cost?

A policy is a config overlay: a nested mapping deep-merged into the user's ``retrain.yaml`` and
validated like it (every setting has ``extra="forbid"``, so a misspelt key is an error naming the
overlay and the key, before anything is replayed). Each policy is replayed by ``run_backtest`` in
its own subfolder, through the real definitions; the user's landing folder is only read and their
live instance, MLflow store and DVC repo are never touched.

Built-in policies:

- ``never``: the bootstrap champion only (no schedule, drift and performance measured but never
  acted on): the floor.
- ``weekly``: the user's schedule only, the soft triggers (drift, performance, concept, estimated
  performance) off.
- ``policy``: the user's config unchanged.
- ``daily``: a retraining on every data day (daily cron, ``max_days_between_retrains: 1``, soft
  triggers off) promoted right after its gates (``canary.mode: none``: otherwise the schedule waits
  for each challenger's canary and it would not be daily). It is the reference for what retraining
  can buy on this history, at the highest training cost; a policy close to it in live metric for
  a fraction of its training seconds is a good one.

Policies are judged in the model task's primary metric (``model.task``): ROC AUC for a binary
model, macro ROC AUC for a multiclass one, RMSE for a regression (where lower is better: a day's
best policy is the one with the lowest). A day's live figure here is that metric on the scores
that served that day's labelled rows, whichever champion gave them (``served_aucs``): the
performance report's own figure counts only rows the current champion scored, so a policy
promoting every day would have almost no labelled day. Every policy is thus judged on the same
rows every label day. The figures are pure functions of the replays' timelines
(``metric_days_lost``, ``mean_live_metric``, ``promotions``, ...), unit-tested on hand-made
timelines; a binary comparison keeps its AUC keys (``mean_live_auc``, ``auc_days_lost``, ...).
"""

from __future__ import annotations

import copy
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from retrain_assets.backtest.report import METRIC_LABELS, DayRecord
from retrain_assets.config import RetrainConfig
from retrain_assets.lib.tables import text_table

SOFT_OFF: dict[str, Any] = {
    "drift": {"retrain": False},
    "performance": {"retrain": False},
    "estimation": {"retrain": False},
}
BUILTIN_POLICIES: dict[str, dict[str, Any]] = {
    "never": {**SOFT_OFF, "schedule": {"enabled": False}},
    "weekly": {**SOFT_OFF, "schedule": {"enabled": True}},
    "policy": {},
    "daily": {
        **SOFT_OFF,
        "schedule": {"enabled": True, "cron": "0 3 * * *", "max_days_between_retrains": 1},
        "canary": {"mode": "none"},
    },
}
DEFAULT_POLICIES = ("never", "weekly", "policy", "daily")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")

DayProgress = Callable[[DayRecord, int, int], None]
PolicyProgress = Callable[[str, int, int], DayProgress | None]
"""Called as each policy's replay starts, with its name, its 1-based index and the policy count;
returns the replay's per-day progress callback (or None)."""


class PolicyError(ValueError):
    """A policy cannot be used; the message names the policy (its overlay file) and the key."""


# --- policies: overlays merged into the user's config -------------------------------------------


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `overlay` merged in: mappings merge key by key, anything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _validation_message(origin: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            lines.append(f"{origin}: {key} is not a setting")
        else:
            lines.append(f"{origin}: {key}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def apply_overlay(cfg: RetrainConfig, overlay: Mapping[str, Any], origin: str) -> RetrainConfig:
    """The user's config with the policy's overlay merged in, validated like a config file."""
    if not isinstance(overlay, Mapping):
        raise PolicyError(f"{origin}: a policy overlay is a mapping, got {type(overlay).__name__}")
    merged = deep_merge(cfg.model_dump(), overlay)
    try:
        return RetrainConfig.model_validate(merged)
    except ValidationError as exc:
        raise PolicyError(_validation_message(origin, exc)) from None


def load_overlay(path: Path) -> dict[str, Any]:
    """A policy overlay from a YAML file (an empty file is the user's config unchanged)."""
    from retrain_assets.config import _UniqueKeyLoader

    path = Path(path)
    if not path.is_file():
        raise PolicyError(f"policy overlay not found: {path}")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path.name}: not valid YAML: {exc}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise PolicyError(f"{path.name}: a policy overlay is a mapping, got {type(raw).__name__}")
    return raw


def parse_policy_arg(text: str) -> tuple[str, Path]:
    """``NAME=overlay.yaml`` -> (name, path); the name becomes a folder and a table row."""
    name, sep, file = text.partition("=")
    name = name.strip()
    if not sep or not file.strip():
        raise PolicyError(f"--policy {text!r}: expected NAME=overlay.yaml")
    if not _NAME.match(name):
        raise PolicyError(f"--policy {text!r}: a name is letters, digits, '_', '.' or '-'")
    return name, Path(file.strip())


def select_policies(
    chosen: Sequence[str] | None, user: Sequence[tuple[str, Path]]
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The overlays to replay, in order, and where each came from.

    ``chosen`` picks among the built-ins and the user's policies (default: every built-in);
    user policies not named in it are added after it. A name used twice is an error.
    """
    files: dict[str, Path] = {}
    for name, path in user:
        if name in files or name in BUILTIN_POLICIES:
            also = " (a built-in policy)" if name in BUILTIN_POLICIES else ""
            raise PolicyError(f"policy name {name!r} is used twice{also}; give each its own name")
        files[name] = path
    order = list(chosen) if chosen else list(DEFAULT_POLICIES)
    twice = sorted({n for n in order if order.count(n) > 1})
    if twice:
        raise PolicyError(f"policies named twice: {', '.join(twice)}")
    unknown = [n for n in order if n not in BUILTIN_POLICIES and n not in files]
    if unknown:
        known = ", ".join([*BUILTIN_POLICIES, *files])
        raise PolicyError(f"unknown policies {', '.join(unknown)}; known: {known}")
    order += [n for n in files if n not in order]
    overlays = {n: load_overlay(files[n]) if n in files else BUILTIN_POLICIES[n] for n in order}
    origins = {n: str(files[n].name) if n in files else f"built-in policy {n}" for n in order}
    return overlays, origins


def policy_configs(
    cfg: RetrainConfig, policies: Mapping[str, Mapping[str, Any]], origins: Mapping[str, str]
) -> dict[str, RetrainConfig]:
    """Every policy's config, all validated before any replay starts."""
    if not policies:
        raise PolicyError("no policy to compare")
    return {
        name: apply_overlay(cfg, overlay, origins.get(name, f"policy {name}"))
        for name, overlay in policies.items()
    }


# --- figures: pure functions of the timelines ---------------------------------------------------

DEFAULT_METRIC = "roc_auc"
"""The metric of a report without one (written before models had a task): the binary AUC."""
AUC_METRICS = ("roc_auc", "macro_roc_auc")
"""Metrics that are AUCs: a comparison in one of them fills the ``*_auc`` keys too."""


def higher_is_better(metric: str) -> bool:
    """The direction of a task metric by name (``roc_auc``, ``macro_roc_auc``, ``rmse``, ...)."""
    from retrain_assets.lib.training.tasks import TASKS, task_metrics

    for task in TASKS:
        for known in task_metrics(task):
            if known.name == metric:
                return known.higher_is_better
    raise ValueError(f"unknown metric {metric!r}")


def metric_label(metric: str) -> str:
    """The metric as people read it: ``AUC``, ``macro AUC``, ``RMSE``."""
    return METRIC_LABELS.get(metric, metric)


def comparison_metric(reports: Mapping[str, Mapping[str, Any]]) -> str:
    """The primary metric every policy's report is in (``roc_auc`` for reports without one)."""
    metrics = {r.get("summary", {}).get("metric") or DEFAULT_METRIC for r in reports.values()}
    if len(metrics) > 1:
        raise ValueError(f"the reports are in different metrics {sorted(metrics)}; one task each")
    return metrics.pop() if metrics else DEFAULT_METRIC


def _finite(value: Any) -> float | None:
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def _value(row: Mapping[str, Any]) -> float | None:
    """The row's live figure in the task's metric (``live_metric``, else the older ``live_auc``)."""
    value = row.get("live_metric")
    return _finite(row.get("live_auc") if value is None else value)


def mean_live_metric(timeline: Sequence[Mapping[str, Any]]) -> float | None:
    """Mean of the days' live figure (the task's metric) over the labelled days (None when no
    day was labelled)."""
    values = [v for v in map(_value, timeline) if v is not None]
    return sum(values) / len(values) if values else None


def mean_live_auc(timeline: Sequence[Mapping[str, Any]]) -> float | None:
    """Mean of the days' live AUC over the labelled days (None when no day was labelled); the
    same as :func:`mean_live_metric` for a timeline in an AUC."""
    return mean_live_metric(timeline)


def train_seconds(timeline: Sequence[Mapping[str, Any]]) -> float:
    """Seconds inside the retraining runs' steps, summed over the days."""
    return round(sum(float(row.get("train_seconds") or 0.0) for row in timeline), 2)


def promotions(timeline: Sequence[Mapping[str, Any]]) -> int:
    """Times the champion moved to a version that never served before (the first champion and
    rollbacks to an older one are not promotions); whether a canary or the gates promoted it."""
    seen: set[str] = set()
    count = 0
    for row in timeline:
        version = row.get("champion_version")
        if version is None or version in seen:
            continue
        count += bool(seen)
        seen.add(str(version))
    return count


def retrain_days(timeline: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """The days each policy started retrainings on, and their reasons: day -> reasons."""
    return {
        row["day"]: [r.strip() for r in str(row["reason"]).split(",") if r.strip()]
        for row in timeline
        if row.get("reason")
    }


def metric_days_lost(
    timelines: Mapping[str, Sequence[Mapping[str, Any]]], higher_is_better: bool = True
) -> dict[str, float | None]:
    """Per policy, the live metric it lost against the best policy of each day, summed over days.

    On each day where at least one policy has a live figure, the best is the highest of them
    when higher is better (an AUC), the lowest when lower is (RMSE); a policy loses
    |best - its figure| on each of those days where it has one. None for a policy with no
    labelled day. 0.0 means it was the best (or tied) every day.
    """
    by_day: dict[str, dict[str, float]] = {}
    for name, timeline in timelines.items():
        for row in timeline:
            value = _value(row)
            if value is not None:
                by_day.setdefault(row["day"], {})[name] = value
    lost: dict[str, float | None] = dict.fromkeys(timelines)
    for values in by_day.values():
        best = max(values.values()) if higher_is_better else min(values.values())
        for name, value in values.items():
            lost[name] = (lost[name] or 0.0) + abs(best - value)
    return {name: None if v is None else round(v, 4) for name, v in lost.items()}


def auc_days_lost(timelines: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, float | None]:
    """Per policy, the live AUC it lost against the best (highest) policy of each day, summed
    over days: :func:`metric_days_lost` for an AUC."""
    return metric_days_lost(timelines, higher_is_better=True)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def policy_figures(report: Mapping[str, Any], lost: float | None) -> dict[str, Any]:
    """One policy's figures from its backtest report and its metric-days lost.

    In the task's metric for every task (``metric``, ``mean_live_metric``, ``metric_days_lost``,
    ``final_live_metric``, ``baseline_live_metric``); the ``*_auc`` keys hold the same figures
    when the metric is an AUC (``final_live_auc`` / ``baseline_live_auc`` as the summary has
    them: binary only) and are None for a regression.
    """
    summary, timeline = report["summary"], report["timeline"]
    metric = summary.get("metric") or DEFAULT_METRIC
    auc = metric in AUC_METRICS
    mean = _round(mean_live_metric(timeline))
    final = summary.get("final_live_metric", summary.get("final_live_auc"))
    baseline = summary.get("baseline_live_metric", summary.get("baseline_live_auc"))
    return {
        "retrains": dict(summary["retrains"]),
        "retrains_total": sum(summary["retrains"].values()),
        "train_seconds": train_seconds(timeline),
        "mean_live_auc": mean if auc else None,
        "labelled_days": sum(1 for row in timeline if _value(row) is not None),
        "auc_days_lost": lost if auc else None,
        "detection_delay_batches": summary["detection_delay_batches"],
        "false_alarms": summary["false_alarms"],
        "final_live_auc": summary.get("final_live_auc"),
        "baseline_live_auc": summary.get("baseline_live_auc"),
        "promotions": promotions(timeline),
        "final_champion_version": summary["final_champion_version"],
        "replay_seconds": report.get("timing", {}).get("total_seconds"),
        "metric": metric,
        "mean_live_metric": mean,
        "metric_days_lost": lost,
        "final_live_metric": final,
        "baseline_live_metric": baseline,
    }


def compare_reports(
    reports: Mapping[str, Mapping[str, Any]], overlays: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The comparison from each policy's backtest report: a summary per policy and, per day,
    every policy's live figure (``live_metric``, in the task's metric; ``live_auc`` too when it
    is an AUC) and retraining reasons (enough to redraw the chart)."""
    metric = comparison_metric(reports)
    auc = metric in AUC_METRICS
    timelines = {name: report["timeline"] for name, report in reports.items()}
    lost = metric_days_lost(timelines, higher_is_better(metric))
    days = sorted({row["day"] for timeline in timelines.values() for row in timeline})
    by_day = {name: {row["day"]: row for row in tl} for name, tl in timelines.items()}

    def live(day: str) -> dict[str, float | None]:
        return {n: _value(by_day[n].get(day, {})) for n in reports}

    return {
        "metric": metric,
        "policies": {name: policy_figures(r, lost[name]) for name, r in reports.items()},
        "days": [
            {
                "day": day,
                "live_auc": live(day) if auc else dict.fromkeys(reports),
                "live_metric": live(day),
                "reason": {n: by_day[n].get(day, {}).get("reason") for n in reports},
            }
            for day in days
        ],
        "overlays": dict(overlays or {}),
    }


# --- replay ---------------------------------------------------------------------------------------


def served_aucs(cfg: RetrainConfig, folder: Path) -> dict[str, float | None]:
    """Per label day of a finished replay under `folder`: the task's primary metric (binary: the
    AUC) of the scores that served the day's labelled rows, whichever champion gave them (the
    replay's stored champion scores).

    The performance report's own live AUC counts only rows the current champion scored: a policy
    that promotes every day would have almost no labelled day. This figure exists for every label
    day of every policy, on the same rows, so policies compare day by day.
    """
    from retrain_assets.backtest.replay import backtest_config, served_rows
    from retrain_assets.backtest.report import pooled_metric
    from retrain_assets.lib.training.tasks import prediction_of
    from retrain_assets.resources.landing import LandingStore

    bt = backtest_config(cfg, Path(folder).resolve(), html=False)
    store = LandingStore(landing_dir=str(bt.data.landing_dir), workdir=str(bt.workdir))
    aucs: dict[str, float | None] = {}
    for day in store.batch_days("labels"):
        rows = served_rows(bt, store, [day])
        auc = None
        if not rows.empty:  # in the task's metric: a multiclass or regression replay's too
            prediction, classes = prediction_of(rows, bt.task)
            auc = pooled_metric(bt.task, rows["y"].to_numpy(), prediction, classes)
        aucs[day] = None if auc is None else round(auc, 4)
    return aucs


def with_served_auc(
    timeline: Sequence[Mapping[str, Any]],
    served: Mapping[str, float | None],
    metric: str = DEFAULT_METRIC,
) -> list[dict[str, Any]]:
    """The timeline with ``live_metric`` the served figure of the day in the task's `metric`
    (``live_auc`` too when it is an AUC, else None) and ``reported_auc`` / ``reported_metric``
    what the day's performance report said (the current champion's rows only)."""
    auc = metric in AUC_METRICS
    return [
        {
            **row,
            "reported_auc": row.get("live_auc"),
            "reported_metric": _value(row),
            "live_auc": served.get(row["day"]) if auc else None,
            "live_metric": served.get(row["day"]),
        }
        for row in timeline
    ]


def compare_policies(
    cfg: RetrainConfig,
    policies: Mapping[str, Mapping[str, Any]],
    out: Path,
    truth: dict[str, Any] | None = None,
    *,
    origins: Mapping[str, str] | None = None,
    progress: PolicyProgress | None = None,
    **backtest: Any,
) -> dict[str, Any]:
    """Replay the history once per policy, each under ``out/<name>`` (``out`` must be empty or
    absent), and compare them. ``backtest`` is passed to ``run_backtest`` (date_from, date_to,
    last_days, html, log_level). Every overlay is validated before the first replay."""
    from retrain_assets.backtest.replay import run_backtest
    from retrain_assets.lib.training.tasks import task_metrics

    configs = policy_configs(cfg, policies, origins or {})
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"comparison folder {out} is not empty; give a new or empty folder")
    reports: dict[str, dict[str, Any]] = {}
    for index, (name, policy_cfg) in enumerate(configs.items(), start=1):
        day_progress = progress(name, index, len(configs)) if progress else None
        report = run_backtest(
            policy_cfg, out / name, truth=truth, progress=day_progress, **backtest
        )
        served = served_aucs(policy_cfg, out / name)
        metric = task_metrics(policy_cfg.task)[0].name
        reports[name] = {**report, "timeline": with_served_auc(report["timeline"], served, metric)}
    result = compare_reports(reports, policies)
    result["truth"] = truth
    result["timing"] = {name: r["timing"] for name, r in reports.items()}
    result["timelines"] = {name: r["timeline"] for name, r in reports.items()}
    return result


# --- for people: a table and a chart --------------------------------------------------------------


def _cell(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def columns(metric: str = DEFAULT_METRIC) -> tuple[str, ...]:
    """The table's headers, naming the metric: ``mean live AUC``, ``RMSE-days lost``, ..."""
    label = metric_label(metric)
    return (
        "policy",
        "retrains by reason",
        "train s",
        f"mean live {label}",
        f"{label}-days lost",
        "delay",
        "false alarms",
        f"final {label}",
        "promotions",
    )


COLUMNS = columns()
"""The headers of a binary comparison (in AUC)."""


def _figure(s: Mapping[str, Any], key: str, old: str) -> Any:
    """`key` of a policy's figures, or its binary-only `old` name in a comparison without it."""
    return s[key] if key in s else s.get(old)


def _notes(result: Mapping[str, Any], metric: str) -> list[str]:
    """The lines under the table saying what its figures are."""
    label = metric_label(metric)
    days = result["days"]
    span = f"{days[0]['day']} .. {days[-1]['day']}" if days else "no day"
    notes = [
        "",
        f"days {span}. Live {label}: of the scores that served each label day's rows (same rows",
        f"for every policy); mean over the labelled days. {label}-days lost: summed shortfall "
        "against",
        "the best policy of each day. Delay (batches) and false alarms need an answer key",
        f"(ground_truth.json). Final {label}: the last label days, as `backtest` reports it.",
    ]
    if not higher_is_better(metric):
        notes.append(f"Lower {label} is better: a day's best policy is the one with the lowest.")
    return notes


def format_comparison(result: Mapping[str, Any]) -> str:
    """The policies side by side, for a terminal, in the comparison's metric."""
    metric = result.get("metric") or DEFAULT_METRIC
    rows = []
    for name, s in result["policies"].items():
        reasons = ", ".join(f"{k} {v}" for k, v in s["retrains"].items()) or "none"
        rows.append(
            [
                name,
                reasons,
                _cell(s["train_seconds"], 1),
                _cell(_figure(s, "mean_live_metric", "mean_live_auc")),
                _cell(_figure(s, "metric_days_lost", "auc_days_lost")),
                _cell(s["detection_delay_batches"]),
                _cell(s["false_alarms"]),
                _cell(_figure(s, "final_live_metric", "final_live_auc")),
                _cell(s["promotions"]),
            ]
        )
    return "\n".join([text_table(columns(metric), rows), *_notes(result, metric)])


REASON_MARKERS = {
    "bootstrap": "*",
    "schedule": "s",
    "drift": "^",
    "performance": "v",
    "concept": "D",
    "rollback": "x",
    "manual": "P",
}


def _live(row: Mapping[str, Any]) -> Mapping[str, float | None]:
    """A comparison day's live figure per policy (``live_metric``, else the older ``live_auc``)."""
    live = row.get("live_metric")
    return row["live_auc"] if live is None else live


def _marker_points(days: Sequence[Mapping[str, Any]], name: str) -> list[tuple[str, float, str]]:
    """(day, y, reason) of each retraining of `name`: on its line, or at its last known figure on
    a day without labels (its first known one before any)."""
    values = [_live(row).get(name) for row in days]
    known = [v for v in values if v is not None]
    last = known[0] if known else None
    points = []
    for row, value in zip(days, values, strict=True):
        last = value if value is not None else last
        reason = row["reason"].get(name)
        if reason and last is not None:
            first = str(reason).split(",")[0].strip()
            points.append((row["day"], last, first))
    return points


def plot_comparison(result: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """The live figure per day in the comparison's metric, one line per policy, a marker (shaped
    by reason) on each day the policy started a retraining; written atomically to ``path`` (Agg
    canvas, no pyplot)."""
    import pandas as pd
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from retrain_assets.lib.files import atomic_path

    days = result["days"]
    x = pd.to_datetime([row["day"] for row in days])
    fig = Figure(figsize=(11, 5.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    handles = []
    for i, name in enumerate(result["policies"]):
        color = f"C{i}"
        values = [_live(row).get(name) for row in days]
        y = [math.nan if v is None else v for v in values]
        handles += ax.plot(x, y, color=color, linewidth=1.5, label=name)
        for day, value, reason in _marker_points(days, name):
            marker = REASON_MARKERS.get(reason, "o")
            rare = reason not in ("schedule", "bootstrap")  # detections: larger, drawn on top
            ax.plot(
                pd.Timestamp(day),
                value,
                marker=marker,
                color=color,
                markersize=9 if rare else 5,
                markeredgecolor="black" if rare else color,
                zorder=4 if rare else 3,
                ls="",
            )
    used = {r for n in result["policies"] for _, _, r in _marker_points(days, n)}
    handles += [
        Line2D([], [], marker=REASON_MARKERS.get(r, "o"), color="grey", ls="", label=f"{r} retrain")
        for r in sorted(used)
    ]
    metric = result.get("metric") or DEFAULT_METRIC
    label, better = metric_label(metric), "higher" if higher_is_better(metric) else "lower"
    ax.set_ylabel(f"live {label} ({better} is better)")
    ax.set_title(f"Live {label} of retraining policies replayed on the same history")
    ax.legend(handles=handles, loc="best", fontsize=8)
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png")
    return target
