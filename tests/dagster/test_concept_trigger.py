"""performance_sensor through Dagster: which reason it gives and when it holds back.

The champion's live labels are crafted: a label file with every label flipped makes the champion's
live ranking collapse (AUC ~0.2 where its test AUC is ~0.8), so each outcome below is certain by
construction, not a matter of the simulation's seed. The config isolates each path:

* concept (Page-Hinkley): no AUC verdict can be made (min_labels above the rows available), so the
  only way to `concept` is the Page-Hinkley alarm on the per-row log loss;
* performance: the alarm cannot fire (threshold 1e9) and a degradation can never be called concept
  drift (concept_max_drift_share 0), so a degraded day must give `performance`;
* then a second degraded day within the cooldown requests nothing, and once the cooldown is over
  a challenger waiting for its canary still holds the sensor back; when the canary has judged it,
  that day is requested, and the days within the cooldown still are not.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import dagster as dg
import pandas as pd

from tests.conftest import (
    FAST,
    SMALL,
    START,
    Loop,
    Project,
    latest_metadata,
    make_project,
    run_requests,
    tick,
)

BOOT = ("landing_sensor", "bootstrap_sensor")
TARGET = "defaulted"


def _day(i: int) -> str:
    return (START + dt.timedelta(days=i)).isoformat()


def _flip(path: Path) -> None:
    """Every label of a label file inverted: the champion now ranks these rows backwards."""
    frame = pd.read_parquet(path)
    frame[TARGET] = 1 - frame[TARGET]
    frame.to_parquet(path, index=False)


def _reports(instance: dg.DagsterInstance) -> dict[str, dict]:
    """performance_report metadata by partition (the newest materialisation of each)."""
    return latest_metadata(instance, "performance_report")


def _tick(project: Project, instance, cursor: str | None, skipped: list | None = None):
    """One performance_sensor tick: (its run requests, the cursor to carry on with); its skip
    message is appended to `skipped` when given."""
    result = tick(project, instance, "performance_sensor", cursor)
    if skipped is not None:
        skipped.append(result.skip_message)
    return list(result.run_requests or []), result.cursor or cursor


def test_page_hinkley_alarm_requests_a_concept_retrain(tmp_path: Path, instance) -> None:
    spec = dataclasses.replace(SMALL, drift="none", days=5)  # labels land on days 1..5
    project = make_project(
        tmp_path,
        spec,
        {
            **FAST,
            "performance": {
                # No AUC verdict is possible: only the Page-Hinkley alarm can say concept.
                "min_labels": 100_000,
                # Measured on this feed: the statistic reaches ~13 on true labels and ~460 on the
                # flipped day, so a threshold of 115 is far from both.
                "page_hinkley_threshold": 115.0,
                "page_hinkley_delta": 0.075,
                "cooldown_days": 3,
            },
        },
    )
    # Labels of day 3 (rows of day 2) flipped: rows 601-900 of the champion's stream, after the
    # detector's 500 warm-up rows (labels of days 1 and 2 are the true ones).
    _flip(project.landing / "labels" / f"{_day(3)}.parquet")
    Loop(project, instance).settle(BOOT)  # champion v1, then every day file ingested

    reports = _reports(instance)
    assert sorted(reports) == [_day(i) for i in range(1, 6)]
    for day in (_day(1), _day(2)):
        assert not reports[day]["detector_alarm"] and not reports[day]["concept_drift"]
    alarm = reports[_day(3)]
    assert alarm["detector_alarm"] and alarm["concept_drift"]
    assert not alarm["degraded"] and "Page-Hinkley" in alarm["reason"]
    assert all(reports[_day(i)]["detector_alarm"] for i in (4, 5))  # the alarm stays raised

    requests, _ = _tick(project, instance, None)
    # Days 4 and 5 carry the alarm too, within the 3-day cooldown of day 3's request.
    [request] = requests
    assert request.run_key == f"concept@{_day(3)}"
    assert request.tags["retrain/reason"] == "concept"
    assert request.tags["retrain/data_day"] == _day(3)
    assert "Page-Hinkley" in request.tags["retrain/evidence"]
    [run] = run_requests(project, instance, [request])
    assert run.success
    assert run.dagster_run.job_name == "retrain_job"
    assert run.dagster_run.tags["retrain/reason"] == "concept"


def test_degradation_requests_a_performance_retrain_then_cooldown_and_canary_hold_back(
    tmp_path: Path, instance
) -> None:
    spec = dataclasses.replace(SMALL, drift="none", days=6)  # labels land on days 1..6
    project = make_project(
        tmp_path,
        spec,
        {
            **FAST,
            "performance": {
                "page_hinkley_threshold": 1e9,  # no alarm: concept only through the AUC path
                "concept_max_drift_share": 0.0,  # ... which this makes impossible
                "cooldown_days": 2,
            },
            # The retraining's test rows include flipped labels: any candidate may pass.
            "gates": {"auc_ratio": 0.5, "auc_floor": 0.0},
            "canary": {"min_rows": 300},
        },
    )
    project.hold_back()
    for i in (2, 3, 4):  # the champion's live AUC collapses on label days 2, 3 and 4
        _flip(project.root / "staged" / "labels" / f"{_day(i)}.parquet")
    loop = Loop(project, instance)
    loop.settle(BOOT)

    # Day 2: degraded, no concept drift: reason performance.
    project.land_until(_day(2))
    loop.settle(("landing_sensor",))
    day2 = _reports(instance)[_day(2)]
    assert day2["degraded"] and not day2["concept_drift"] and not day2["detector_alarm"]
    assert not _reports(instance)[_day(1)]["degraded"]
    requests, cursor = _tick(project, instance, None)
    [request] = requests
    assert request.run_key == f"performance@{_day(2)}"
    assert request.tags["retrain/reason"] == "performance"
    assert request.tags["retrain/data_day"] == _day(2)
    assert "degraded" in request.tags["retrain/evidence"]
    # What it judged: the champion, on which label days, against its test AUC.
    pooled = sorted(day2["pooled_days"].split(", "))
    window = f"{pooled[0]}..{pooled[-1]}" if len(pooled) > 1 else pooled[0]
    assert (
        f"(champion v1 on the labels of {window}, against its test AUC {day2['baseline_auc']:.3f})"
    ) in request.tags["retrain/evidence"]
    [run] = run_requests(project, instance, [request])
    assert run.success and run.dagster_run.tags["retrain/reason"] == "performance"
    candidate = run.asset_materializations_for_node("candidate_model")[0].metadata
    assert candidate["challenger"].value is True  # v2 now waits for its canary (shadow mode)
    challenger = str(candidate["model_version"].value)

    # Day 3: degraded again, one data day after the retraining: within the 2-day cooldown (the
    # challenger is in its canary too; the last tick below shows the cooldown alone holds day 3).
    project.land_until(_day(3))
    loop.settle(("landing_sensor",))
    assert _reports(instance)[_day(3)]["degraded"]
    skipped: list = []
    requests, cursor = _tick(project, instance, cursor, skipped)
    assert requests == []
    # The decision not to retrain is visible on the tick, with its reason.
    assert skipped == [
        f"degradation on {_day(3)} held back: within the 2-day cooldown after the retraining "
        f"of {_day(2)}"
    ]

    # Day 4: degraded, the cooldown is over, but the challenger is still in its canary.
    project.land_until(_day(4))
    loop.settle(("landing_sensor",))
    day4 = _reports(instance)[_day(4)]
    assert day4["degraded"] and day4["champion_version"] == "1"
    assert day4["challenger_version"] == challenger and day4["challenger_labelled_rows"] == 300
    requests, cursor = _tick(project, instance, cursor, skipped)
    assert requests == []
    assert skipped[-1] == (
        f"degradation on {_day(4)} held back: challenger v{challenger} is still in its canary"
    )

    # The canary judges the challenger (300 labelled shadow rows). The same reports, read again
    # from the start, now ask for a retraining on day 4 (it was held by the canary alone), and
    # only there: days 2 and 3 are within the cooldown of the retraining decided on day 2.
    [canary] = loop.tick("canary_sensor")
    assert canary.dagster_run.job_name == "canary_job"
    requests, _ = _tick(project, instance, None)
    assert [r.run_key for r in requests] == [f"performance@{_day(4)}"]
    assert requests[0].tags["retrain/reason"] == "performance"
