"""Live performance: labels that arrived on a day, joined with the predictions stored when their
rows were scored, measured against the champion's own test AUC; plus concept-drift detection.

Only rows scored by the current champion count: after a promotion, labels for rows the previous
champion scored say nothing about the new one (and would re-trigger a retraining for nothing).
"""

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from retrain_assets.assets.monitor import CHAMPION, PREVIOUS, write_json_atomic
from retrain_assets.config import RetrainConfig
from retrain_assets.resources.registry import ModelRegistry
from retrain_assets.resources.storage import LandingStore

if TYPE_CHECKING:  # pandas is imported inside the steps: the code location loads without it
    import pandas as pd


@dataclass(frozen=True)
class LiveReport:
    verdict: Any  # lib.performance.PerformanceVerdict
    state: dict
    unmatched: int
    other_versions: int
    challenger_version: str | None = None
    challenger_rows: int = 0
    guardrail: Any = None  # lib.guardrail.GuardrailVerdict while the previous champion is shadowed


def _days_back(day: str, n: int) -> str:
    return (dt.date.fromisoformat(day) - dt.timedelta(days=n)).isoformat()


def _stored_predictions(store: LandingStore, cfg: RetrainConfig, day: str) -> "pd.DataFrame":
    import pandas as pd

    folder = Path(store.workdir) / "monitoring" / "predictions"
    first = _days_back(day, cfg.performance.max_label_delay_days)
    files = sorted(p for p in folder.glob("*.parquet") if first <= p.stem <= day)
    if not files:
        return pd.DataFrame(columns=[cfg.data.id_column, "score", "champion_version", "day"])
    frame = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
    return frame.rename(columns={"champion_score": "score"})


def _previous_state(store: LandingStore, day: str, champion: str) -> dict | None:
    """The newest earlier day's detector state, if it belongs to the same champion."""
    folder = Path(store.workdir) / "monitoring" / "performance"
    earlier = sorted(p for p in folder.glob("*.json") if p.stem < day) if folder.is_dir() else []
    if not earlier:
        return None
    state = json.loads(earlier[-1].read_text())
    return state if state.get("champion_version") == champion else None


def _drift_share(store: LandingStore, days: list[str]) -> float | None:
    shares = []
    for day in days:
        path = Path(store.workdir) / "monitoring" / "drift" / f"{day}.json"
        if path.is_file():
            shares.append(json.loads(path.read_text())["share_drifted"])
    return sum(shares) / len(shares) if shares else None


def evaluate_day(
    store: LandingStore, cfg: RetrainConfig, day: str, champion: str, baseline: float | None
) -> LiveReport:
    import pandas as pd

    from retrain_assets.lib.monitoring.concept import PageHinkley, PageHinkleyState, row_log_loss
    from retrain_assets.lib.monitoring.performance import PerformanceSettings, assess, join_predictions

    perf, data = cfg.performance, cfg.data
    predictions = _stored_predictions(store, cfg, day)
    first = _days_back(day, perf.window_days)
    label_days = [d for d in store.batch_days("labels") if first <= d <= day]
    joined_by_day: dict[str, pd.DataFrame] = {}
    unmatched = other = shadow = 0
    challenger = None
    for label_day in label_days:
        labels = store.read_batch("labels", label_day)
        joined, missing = join_predictions(labels, predictions, data.id_column, data.target_column)
        current = joined["champion_version"].astype(str) == champion
        if label_day == day:
            unmatched, other = missing, int((~current).sum())
            if "challenger_version" in joined:  # labelled rows the challenger shadow-scored
                versions = joined["challenger_version"].dropna().astype(str)
                if len(versions):
                    challenger = max(versions, key=int)
                    shadow = int((versions == challenger).sum())
        joined_by_day[label_day] = joined[current]
    today = joined_by_day.get(day, pd.DataFrame(columns=["y", "score", "day"]))
    today = today.sort_values(["day", data.id_column]) if len(today) else today

    previous = _previous_state(store, day, champion)
    detector = PageHinkley(delta=perf.page_hinkley_delta, threshold=perf.page_hinkley_threshold)
    ph = PageHinkleyState.from_dict(previous["page_hinkley"]) if previous else PageHinkleyState()
    if len(today):
        losses = row_log_loss(today["y"].to_numpy(), today["score"].to_numpy())
        ph = detector.update(ph, losses)
    drift_share = _drift_share(store, sorted(set(today["day"]))) if len(today) else None
    verdict = assess(
        joined_by_day,
        day,
        baseline,
        PerformanceSettings(
            min_labels=perf.min_labels,
            window_days=perf.window_days,
            relative_drop=perf.relative_drop,
            absolute_floor=perf.absolute_floor,
            concept_max_drift_share=perf.concept_max_drift_share,
            confidence=perf.degradation_confidence,
        ),
        drift_share=drift_share,
        detector_alarm=ph.alarm,
    )
    guardrail = _guardrail(cfg, joined_by_day)
    state = {
        "day": day,
        "champion_version": champion,
        "page_hinkley": ph.to_dict(),
        "verdict": verdict.to_metadata(),
    }
    return LiveReport(verdict, state, unmatched, other, challenger, shadow, guardrail)


def _guardrail(cfg: RetrainConfig, joined_by_day: dict[str, "pd.DataFrame"]) -> Any:
    """The new champion against the previous one on the window's rows both of them scored."""
    import pandas as pd

    from retrain_assets.lib.release.guardrail import assess_guardrail

    frames = [
        f[f["previous_champion_score"].notna()]
        for f in joined_by_day.values()
        if "previous_champion_score" in f
    ]
    frames = [f for f in frames if len(f)]
    if not frames:
        return None
    rows = pd.concat(frames, ignore_index=True)
    g = cfg.guardrail
    return assess_guardrail(
        rows["y"].to_numpy(),
        rows["score"].to_numpy(),
        rows["previous_champion_score"].to_numpy(),
        batches=len(frames),
        max_batches=g.batches,
        margin=g.margin,
        min_rows=g.min_rows,
    )


def build_performance_assets(
    cfg: RetrainConfig, daily: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    perf_check = dg.AssetCheckSpec(
        "performance_report_not_degraded",
        asset="performance_report",
        partitions_def=daily,
        description=f"Live AUC of the champion on the day's labels stays above "
        f"{1 - cfg.performance.relative_drop:.2f} x its test AUC and above "
        f"{cfg.performance.absolute_floor}; no concept drift.",
    )

    @dg.asset(
        group_name="monitoring",
        partitions_def=daily,
        deps=["label_batch", "predictions"],
        check_specs=[perf_check],
    )
    def performance_report(
        context: dg.AssetExecutionContext, store: LandingStore, registry: ModelRegistry
    ):
        """The champion's live AUC and log loss on the labels that arrived this day (pooled with
        earlier days when too few), the degradation and concept-drift verdicts.

        Materialised with each day's label batch; performance_sensor reads its verdicts."""
        day = context.partition_key
        champion = registry.alias_version(CHAMPION)
        if champion is None:
            raise dg.Failure(f"no '{CHAMPION}' alias on {registry.registered_name}")
        baseline = registry.version_tags(champion).get("test_auc")
        report = evaluate_day(store, cfg, day, champion, float(baseline) if baseline else None)
        write_json_atomic(report.state, store.path_for("monitoring", "performance", f"{day}.json"))
        verdict = report.verdict
        guard = report.guardrail
        guard_meta: dict[str, dg.RawMetadataValue] = {"guardrail_regression": False}
        if guard is not None:
            guard_meta = {
                "guardrail_regression": guard.regression,
                "guardrail_reason": guard.reason,
                "guardrail_rows": guard.n_rows,
                "previous_champion_auc": guard.previous_auc,
            }
            if guard.done and not guard.regression:
                registry.delete_alias(PREVIOUS)  # watch over: stop scoring the old champion
        yield dg.MaterializeResult(
            metadata={
                **verdict.to_metadata(),
                "champion_version": champion,
                "unmatched_labels": report.unmatched,
                "scored_by_other_versions": report.other_versions,
                "challenger_version": report.challenger_version or "none",
                "challenger_labelled_rows": report.challenger_rows,
                **guard_meta,
            }
        )
        yield dg.AssetCheckResult(
            check_name="performance_report_not_degraded",
            passed=not (verdict.degraded or verdict.concept_drift),
            severity=dg.AssetCheckSeverity.WARN,
            description=verdict.reason,
            metadata={
                "auc": verdict.auc if verdict.auc is not None else float("nan"),
                "baseline_auc": verdict.baseline_auc
                if verdict.baseline_auc is not None
                else float("nan"),
                "relative_drop": cfg.performance.relative_drop,
                "absolute_floor": cfg.performance.absolute_floor,
                "n_labels": verdict.n_labels,
            },
        )

    return [performance_report]
