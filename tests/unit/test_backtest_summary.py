"""The backtest's figures: detection delay, false alarms and the final AUCs from a timeline."""

from __future__ import annotations

import numpy as np
import pytest

from retrain_assets.backtest.replay import schedule_fire_time
from retrain_assets.backtest.report import DayRecord, format_report, pooled_auc, summarize


def _records(reasons_by_day: dict[str, list[str]], n: int = 10) -> list[DayRecord]:
    days = [f"2025-01-{d:02d}" for d in range(1, n + 1)]
    return [
        DayRecord(day=d, reasons=reasons_by_day.get(d, []), drifted=bool(reasons_by_day.get(d)))
        for d in days
    ]


def _summary(records, truth):
    return summarize(
        records, truth, final_live_auc=0.8, baseline_live_auc=0.7, auc_days=[], auc_rows=0
    )


def test_delay_counts_the_batches_from_the_true_start_to_the_first_soft_trigger() -> None:
    records = _records({"2025-01-07": ["drift"], "2025-01-09": ["schedule"]})
    s = _summary(records, {"drift": "abrupt", "drift_date": "2025-01-06"})
    assert s["detection_delay_batches"] == 2  # the 6th and the 7th batch
    assert s["first_trigger_day"] == "2025-01-07"
    assert s["false_alarms"] == 0
    assert s["retrains"] == {"drift": 1, "schedule": 1}


def test_soft_triggers_before_the_drift_or_without_drift_are_false_alarms() -> None:
    records = _records({"2025-01-02": ["performance"], "2025-01-08": ["concept"]})
    early = _summary(records, {"drift": "concept", "drift_date": "2025-01-05"})
    assert early["false_alarms"] == 1 and early["detection_delay_batches"] == 4
    seasonal = _summary(records, {"drift": "seasonal", "drift_date": None})
    assert seasonal["false_alarms"] == 2 and seasonal["detection_delay_batches"] is None
    # the schedule and bootstrap are not detections
    quiet = _summary(_records({"2025-01-03": ["schedule", "bootstrap"]}), {"drift": "none"})
    assert quiet["false_alarms"] == 0


def test_without_an_answer_key_detection_figures_are_null() -> None:
    s = _summary(_records({"2025-01-03": ["drift"]}), None)
    assert s["false_alarms"] is None and s["detection_delay_batches"] is None
    assert s["first_drift_day"] == "2025-01-03"


def test_never_triggered_drift_has_no_delay() -> None:
    s = _summary(_records({}), {"drift": "gradual", "drift_date": "2025-01-04"})
    assert s["detection_delay_batches"] is None and s["false_alarms"] == 0


def test_rows_are_json_ready_with_nulls() -> None:
    row = DayRecord(day="2025-01-01", drift_share=float("nan"), live_auc=0.81234567).to_row()
    assert row["drift_share"] is None and row["live_auc"] == 0.8123
    assert row["reason"] is None and row["champion_version"] is None


def test_format_report_prints_timeline_and_summary() -> None:
    records = _records({"2025-01-07": ["drift"]}, n=8)
    records[6].gates, records[6].champion_version = ["pass"], "2"
    report = {
        "summary": _summary(records, {"drift": "abrupt", "drift_date": "2025-01-06"}),
        "timeline": [r.to_row() for r in records],
    }
    text = format_report(report)
    assert "2025-01-07" in text and "drift" in text and "pass" in text
    assert "detection delay        2 batch(es)" in text


def test_pooled_auc() -> None:
    assert pooled_auc(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.2, 0.8])) == 1.0
    assert pooled_auc(np.array([1, 1]), np.array([0.1, 0.9])) is None
    assert pooled_auc(np.array([]), np.array([])) is None


@pytest.mark.parametrize(
    ("day", "fires"),
    [("2025-01-06", True), ("2025-01-07", False), ("2025-01-12", False), ("2025-01-13", True)],
)
def test_the_weekly_cron_ticks_on_mondays_only(day: str, fires: bool) -> None:
    when = schedule_fire_time("0 3 * * 1", day)  # 2025-01-06 is a Monday
    assert (when is not None) is fires
    if when is not None:
        assert when.isoformat().startswith(f"{day}T03:00")
