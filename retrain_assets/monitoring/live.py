"""What performance_report reads: the day's labels joined to the predictions stored when their
rows were scored, the detector state of the day before, the drift shares of the scored days."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrain_assets.config import RetrainConfig
from retrain_assets.lib.dates import shift_day
from retrain_assets.monitoring.paths import DRIFT_DIR, PERFORMANCE_DIR, PREDICTIONS_DIR
from retrain_assets.resources.landing import LandingStore

if TYPE_CHECKING:  # pandas is imported inside the steps: the code location loads without it
    import pandas as pd


@dataclass(frozen=True)
class LiveReport:
    verdict: Any  # lib.monitoring.performance.PerformanceVerdict
    state: dict
    unmatched: int
    other_versions: int
    challenger_version: str | None = None
    challenger_rows: int = 0
    guardrail: Any = None  # lib.release.guardrail.GuardrailVerdict while the old champion shadows
    estimate: Any = None  # lib.monitoring.impact.EstimationError: estimated vs realized AUC


def stored_predictions(store: LandingStore, cfg: RetrainConfig, day: str) -> pd.DataFrame:
    """Predictions of the days whose labels may land on `day` (max_label_delay_days back)."""
    import pandas as pd

    folder = Path(store.workdir).joinpath(*PREDICTIONS_DIR)
    first = shift_day(day, -cfg.performance.max_label_delay_days)
    files = sorted(p for p in folder.glob("*.parquet") if first <= p.stem <= day)
    if not files:
        return pd.DataFrame(columns=[cfg.data.id_column, "score", "champion_version", "day"])
    frame = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
    return frame.rename(
        columns={
            "champion_score": "score",
            "champion_proba": "proba",
            "champion_classes": "classes",
        }
    )


def previous_state(store: LandingStore, day: str, champion: str) -> dict | None:
    """The newest earlier day's detector state, if it belongs to the same champion."""
    folder = Path(store.workdir).joinpath(*PERFORMANCE_DIR)
    earlier = sorted(p for p in folder.glob("*.json") if p.stem < day) if folder.is_dir() else []
    if not earlier:
        return None
    state = json.loads(earlier[-1].read_text())
    return state if state.get("champion_version") == champion else None


def drift_share(store: LandingStore, days: list[str]) -> float | None:
    """The mean share of drifted columns over the days the labelled rows were scored on."""
    shares = []
    for day in days:
        path = Path(store.workdir).joinpath(*DRIFT_DIR, f"{day}.json")
        if path.is_file():
            shares.append(json.loads(path.read_text())["share_drifted"])
    return sum(shares) / len(shares) if shares else None


def performance_settings(cfg: RetrainConfig):  # -> lib PerformanceSettings (imported lazily)
    from retrain_assets.lib.monitoring.performance import PerformanceSettings

    perf = cfg.performance
    return PerformanceSettings(
        min_labels=perf.min_labels,
        window_days=perf.window_days,
        relative_drop=perf.relative_drop,
        absolute_floor=perf.absolute_floor,
        concept_max_drift_share=perf.concept_max_drift_share,
        confidence=perf.degradation_confidence,
    )


def guardrail_verdict(cfg: RetrainConfig, joined_by_day: dict[str, pd.DataFrame]) -> Any:
    """The new champion against the previous one on the window's rows both of them scored."""
    import pandas as pd

    from retrain_assets.lib.monitoring.live import guardrail_frames, pooled
    from retrain_assets.lib.release.guardrail import assess_guardrail
    from retrain_assets.lib.training.tasks import known_label_rows, prediction_of

    frames = guardrail_frames(joined_by_day)
    if not frames:
        return None
    g = cfg.guardrail
    if cfg.task == "binary":
        new, previous, y, classes = (
            pooled(frames, "score"), pooled(frames, "previous_champion_score"),
            pooled(frames, "y"), None,
        )  # fmt: skip
    else:
        rows = pd.concat(frames, ignore_index=True)
        new, classes = prediction_of(rows, cfg.task)
        previous, old_classes = prediction_of(rows, cfg.task, "previous_champion_")
        if classes != old_classes:  # other classes: log losses over other columns, no verdict
            return None
        known = known_label_rows(cfg.task, rows["y"], classes)
        y, new, previous = rows["y"].to_numpy()[known], new[known], previous[known]
    return assess_guardrail(
        y, new, previous, batches=len(frames), max_batches=g.batches, margin=g.margin,
        min_rows=g.min_rows, task=cfg.task, classes=classes,
    )  # fmt: skip


def labelled_estimate(
    cfg: RetrainConfig, joined_by_day: dict, verdict: Any, calibration_se: float
) -> Any:
    """The estimate the champion's calibrated probabilities gave for the very rows whose labels
    made the verdict, against their realized AUC (None for rows stored before calibration)."""
    import pandas as pd

    from retrain_assets.lib.monitoring.estimation import estimate_performance
    from retrain_assets.lib.monitoring.impact import estimation_error

    if cfg.task != "binary":
        return None
    frames = [joined_by_day[d] for d in verdict.pooled_days if d in joined_by_day]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if rows.empty or "champion_probability" not in rows:
        return None
    rows = rows[rows["champion_probability"].notna()]
    if rows.empty:
        return None
    est = estimate_performance(
        rows["score"].to_numpy(dtype=float),
        rows["champion_probability"].to_numpy(dtype=float),
        threshold=cfg.estimation.threshold,
        confidence=cfg.estimation.confidence,
        calibration_se=calibration_se,
    )
    return estimation_error(est, verdict.auc)


def joined_days(
    store: LandingStore, cfg: RetrainConfig, day: str, champion: str
) -> tuple[dict[str, pd.DataFrame], tuple[int, int, str | None, int]]:
    """Per label day of the window: its labels joined to the champion's stored predictions; and
    for `day` itself: labels without a prediction, rows other versions scored, the shadow
    challenger and its labelled rows."""
    from retrain_assets.lib.monitoring import live
    from retrain_assets.lib.monitoring.performance import join_predictions

    data = cfg.data
    predictions = stored_predictions(store, cfg, day)
    first = shift_day(day, -cfg.performance.window_days)
    joined_by_day: dict[str, pd.DataFrame] = {}
    unmatched = other = shadow = 0
    challenger = None
    for label_day in [d for d in store.batch_days("labels") if first <= d <= day]:
        labels = store.read_batch("labels", label_day)
        joined, missing = join_predictions(
            labels, predictions, data.id_column, data.target_column, task=cfg.task
        )
        joined_by_day[label_day], others = live.champion_rows(joined, champion)
        if label_day == day:
            unmatched, other = missing, others
            challenger, shadow = live.shadow_rows_count(joined)
    return joined_by_day, (unmatched, other, challenger, shadow)


def evaluate_day(
    store: LandingStore,
    cfg: RetrainConfig,
    day: str,
    champion: str,
    baseline: float | None,
    calibration_se: float = 0.0,
) -> LiveReport:
    """The champion's live verdict on `day`'s labels (pooled with the window's earlier days), and
    the estimate its calibrated probabilities gave for the same rows (the calibrator's own noise,
    `calibration_se`, in the estimate's interval)."""
    import pandas as pd

    from retrain_assets.lib.monitoring import live
    from retrain_assets.lib.monitoring.performance import assess

    perf, data = cfg.performance, cfg.data
    joined_by_day, (unmatched, other, challenger, shadow) = joined_days(store, cfg, day, champion)
    today = joined_by_day.get(day, pd.DataFrame(columns=["y", "score", "day"]))
    today = today.sort_values(["day", data.id_column]) if len(today) else today
    before = previous_state(store, day, champion)
    ph = live.next_detector_state(
        before["page_hinkley"] if before else None,
        today,
        perf.page_hinkley_delta,
        perf.page_hinkley_threshold,
        task=cfg.task,
    )
    shares = drift_share(store, sorted(set(today["day"]))) if len(today) else None
    verdict = assess(
        joined_by_day,
        day,
        baseline,
        performance_settings(cfg),
        drift_share=shares,
        detector_alarm=ph.alarm,
        task=cfg.task,
    )
    estimate = labelled_estimate(cfg, joined_by_day, verdict, calibration_se)
    state = {
        "day": day,
        "champion_version": champion,
        "page_hinkley": ph.to_dict(),
        "verdict": verdict.to_metadata(),
        "estimate": estimate.to_metadata() if estimate else None,
    }
    guard = guardrail_verdict(cfg, joined_by_day)
    return LiveReport(verdict, state, unmatched, other, challenger, shadow, guard, estimate)
