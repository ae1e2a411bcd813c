"""landing_sensor must request exactly one run per new or changed landing file and never repeat
one for an unchanged file; bootstrap_sensor must start the first retraining once, by itself."""

from __future__ import annotations

import os
import shutil

import dagster as dg
import pandas as pd

from tests.conftest import Project, mark_champion_ready, run_requests, tick


def _keys(result) -> list[str]:
    return sorted(r.tags["landing/file"] for r in result.run_requests)


def test_day_files_wait_for_the_first_champion(project: Project, instance) -> None:
    first = tick(project, instance, "landing_sensor")
    assert _keys(first) == ["reference.parquet"]
    assert first.run_requests[0].job_name == "reference_job"
    waiting = tick(project, instance, "landing_sensor", cursor=first.cursor)
    assert waiting.run_requests == [] and "wait for the first champion" in waiting.skip_message
    mark_champion_ready(instance)
    ready = tick(project, instance, "landing_sensor", cursor=waiting.cursor)
    assert "features/2024-01-01.parquet" in _keys(ready)


def test_labels_wait_for_feature_runs_of_their_day(project: Project, instance) -> None:
    mark_champion_ready(instance)
    first = tick(project, instance, "landing_sensor")
    # Requested in the same tick as the features of their days: the labels wait.
    assert not [k for k in _keys(first) if k.startswith("labels/")]
    # A features run of 2024-01-03 still running: labels dated before it go, the rest wait.
    instance.create_run_for_job(
        job_def=project.defs.resolve_job_def("ingest_job"),
        tags={"landing/kind": "features", "dagster/partition": "2024-01-03"},
        status=dg.DagsterRunStatus.STARTED,
    )
    second = tick(project, instance, "landing_sensor", cursor=first.cursor)
    labels = [r for r in second.run_requests if r.tags["landing/kind"] == "labels"]
    assert [r.partition_key for r in labels] == ["2024-01-02"]
    assert labels[0].asset_selection == [
        dg.AssetKey("label_batch"),
        dg.AssetKey("performance_report"),
    ]


def test_new_files_each_get_one_request(project: Project, instance) -> None:
    mark_champion_ready(instance)
    first = tick(project, instance, "landing_sensor")
    second = tick(project, instance, "landing_sensor", cursor=first.cursor)
    first.run_requests.extend(second.run_requests)
    files = sorted(
        p.relative_to(project.landing).as_posix() for p in project.landing.rglob("*.parquet")
    )
    assert _keys(first) == files
    features = [r for r in first.run_requests if r.tags["landing/file"].startswith("features/")]
    assert {r.partition_key for r in features} == {f"2024-01-0{d}" for d in range(1, 9)}
    assert all(
        r.asset_selection
        == [
            dg.AssetKey(a)
            for a in ("feature_batch", "drift_report", "predictions", "estimated_performance")
        ]
        for r in features
    )
    assert len({r.run_key for r in first.run_requests}) == len(first.run_requests)

    again = tick(project, instance, "landing_sensor", cursor=second.cursor)
    assert again.run_requests == []
    assert again.skip_message == "no new or changed landing file"


def test_changed_file_requests_once_and_touched_file_never(project: Project, instance) -> None:
    mark_champion_ready(instance)
    first = tick(project, instance, "landing_sensor")
    labels = tick(project, instance, "landing_sensor", cursor=first.cursor)  # labels come next
    assert {r.tags["landing/kind"] for r in labels.run_requests} == {"labels"}
    path = project.landing / "features" / "2024-01-03.parquet"
    # Same bytes, new mtime: the hash is recomputed and matches, so nothing is requested.
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    touched = tick(project, instance, "landing_sensor", cursor=labels.cursor)
    assert touched.run_requests == []

    corrected = pd.read_parquet(path)
    corrected.loc[0, "car_value"] = corrected.loc[0, "car_value"] + 1.0
    corrected.to_parquet(path, index=False)
    changed = tick(project, instance, "landing_sensor", cursor=touched.cursor)
    assert _keys(changed) == ["features/2024-01-03.parquet"]
    old_key = next(r.run_key for r in first.run_requests if r.partition_key == "2024-01-03")
    assert changed.run_requests[0].run_key != old_key

    after = tick(project, instance, "landing_sensor", cursor=changed.cursor)
    assert after.run_requests == []


def test_files_outside_the_calendar_are_left_for_later(project: Project, instance) -> None:
    features = project.landing / "features"
    src = features / "2024-01-01.parquet"
    shutil.copy(src, features / "2023-12-31.parquet")  # before start_date
    shutil.copy(src, features / "2999-01-01.parquet")  # in the future
    (features / "notes.txt").write_text("not a batch")
    mark_champion_ready(instance)
    result = tick(project, instance, "landing_sensor")
    requested = _keys(result)
    assert "features/2023-12-31.parquet" not in requested
    assert "features/2999-01-01.parquet" not in requested
    assert "features/2024-01-01.parquet" in requested


def test_bootstrap_requests_first_retrain_once(project: Project, instance) -> None:
    assert tick(project, instance, "bootstrap_sensor").run_requests == []
    landing = tick(project, instance, "landing_sensor")
    reference = [r for r in landing.run_requests if r.job_name == "reference_job"]
    assert len(reference) == 1
    assert all(r.success for r in run_requests(project, instance, reference))

    boot = tick(project, instance, "bootstrap_sensor")
    assert len(boot.run_requests) == 1
    request = boot.run_requests[0]
    assert request.tags["retrain/reason"] == "bootstrap"
    assert "reference_dataset" in request.tags["retrain/evidence"]
    # Same reference materialisation => same run key: the daemon launches it once.
    assert tick(project, instance, "bootstrap_sensor").run_requests[0].run_key == request.run_key
