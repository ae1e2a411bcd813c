"""Performance estimated before labels, through Dagster: every candidate is calibrated and its
calibrator logged and checked; estimated_performance reports the champion's expected AUC for each
batch (what the lib computes from the stored predictions, nothing else); performance_report puts
the realized AUC beside the estimate for the same rows; a tampered calibrator is refused; and
the estimated-performance trigger and ``drift.require_impact`` decide as configured."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import dagster as dg
import mlflow
import numpy as np
import pandas as pd
import pytest

from retrain_assets.definitions import build_definitions
from retrain_assets.lib.monitoring.estimation import Calibrator, estimate_performance
from retrain_assets.lib.release.model_store import ArtifactIntegrityError
from retrain_assets.resources import model_registry
from retrain_assets.resources.model_registry import ModelRegistry
from tests.conftest import (
    SMALL,
    START,
    Loop,
    Project,
    failure_message,
    latest_metadata,
    make_project,
    tick,
)

SPEC = dataclasses.replace(SMALL, drift="none", days=4, label_delay=1)
ALL = ("landing_sensor", "bootstrap_sensor", "drift_sensor", "performance_sensor")


def _day(i: int) -> str:
    return (START + dt.timedelta(days=i)).isoformat()


def _checks(instance: dg.DagsterInstance, asset: str, check: str) -> list:
    key = dg.AssetCheckKey(dg.AssetKey(asset), check)
    history = instance.event_log_storage.get_asset_check_execution_history(key, limit=50)
    return [r.event.dagster_event.event_specific_data for r in history]


def _registry(project: Project) -> ModelRegistry:
    cfg = project.cfg
    return ModelRegistry(tracking_uri=cfg.tracking_uri, registered_name=cfg.model.registered_name)


def test_candidate_is_calibrated_and_batches_get_an_estimate(tmp_path: Path, instance) -> None:
    project = make_project(tmp_path, SPEC)
    Loop(project, instance).settle(ALL)
    registry = _registry(project)
    tags = registry.version_tags("1")

    # The calibrator: fitted, logged beside a reliability curve, referenced by URI and hash.
    calibrator = registry.calibrator("1")
    assert isinstance(calibrator, Calibrator) and calibrator.method == "sigmoid"
    assert tags["calibration_method"] == "sigmoid" and len(tags["calibration_sha256"]) == 64
    run_id = tags["calibration_uri"].split("/")[1]
    client = mlflow.MlflowClient(tracking_uri=project.cfg.tracking_uri)
    logged = {a.path for a in client.list_artifacts(run_id, "calibration")}
    assert logged == {"calibration/calibrator.json", "calibration/reliability.png"}
    assert "calibration_ece" in client.get_run(run_id).data.metrics
    [calibration] = _checks(instance, "candidate_model", "candidate_model_calibration")
    assert calibration.severity == dg.AssetCheckSeverity.WARN
    assert "expected calibration error" in calibration.description

    # Each batch's estimate is the lib's estimate on the stored scores and probabilities.
    estimated = latest_metadata(instance, "estimated_performance")
    assert sorted(estimated) == [_day(i) for i in range(4)]
    for day, meta in estimated.items():
        path = project.cfg.workdir / "monitoring" / "predictions" / f"{day}.parquet"
        frame = pd.read_parquet(path)
        assert np.allclose(
            frame["champion_probability"], calibrator.apply(frame["champion_score"].to_numpy())
        )
        expected = estimate_performance(
            frame["champion_score"], frame["champion_probability"], confidence=0.9
        )
        assert meta["estimated_auc"] == pytest.approx(expected.auc, abs=1e-12)
        assert meta["estimated_auc_low"] < meta["estimated_auc"] < meta["estimated_auc_high"]
        assert meta["champion_test_auc"] == pytest.approx(float(tags["test_auc"]), abs=1e-6)
        assert meta["calibrated"] is True and meta["degraded"] is False and meta["fell"] is False
        assert "not significantly below the bar" in meta["reason"]
        assert meta["estimate"].startswith(f"AUC {meta['estimated_auc']:.3f} [")
    assert (
        len(_checks(instance, "estimated_performance", "estimated_performance_not_degraded")) == 4
    )

    # Served scores are the model's own unless calibration.serve: then the calibrated ones.
    served = project.cfg.model_copy(
        update={"calibration": project.cfg.calibration.model_copy(update={"serve": True})}
    )
    job = build_definitions(served).resolve_job_def("ingest_job")
    day = _day(0)
    before = pd.read_parquet(project.cfg.workdir / "monitoring" / "predictions" / f"{day}.parquet")
    assert not np.allclose(before["champion_score"], before["champion_probability"])
    job.execute_in_process(
        instance=instance, partition_key=day, asset_selection=[dg.AssetKey("predictions")]
    )
    after = pd.read_parquet(project.cfg.workdir / "monitoring" / "predictions" / f"{day}.parquet")
    assert np.allclose(after["champion_score"], before["champion_probability"])

    # Once labels came: the realized AUC beside the estimate for the same rows, and the error.
    reports = latest_metadata(instance, "performance_report")
    assert reports, "labels landed, so performance reports exist"
    for meta in reports.values():
        assert meta["estimation_error"] == pytest.approx(meta["auc"] - meta["estimated_auc"])
        low, high = meta["estimated_auc_low"], meta["estimated_auc_high"]
        assert meta["estimate_covers"] == (low <= meta["auc"] <= high)


def test_a_poor_calibration_warns_and_a_tampered_one_is_refused(tmp_path: Path, instance) -> None:
    project = make_project(
        tmp_path, dataclasses.replace(SPEC, days=1), {"calibration": {"min_rows": 100000}}
    )
    loop = Loop(project, instance)
    loop.settle(("landing_sensor", "bootstrap_sensor"))
    # Too few rows to calibrate: the check warns, the candidate still passes and is promoted.
    [run] = loop.retrains()
    assert run.success and "retrain/gates" not in run.dagster_run.tags
    [check] = _checks(instance, "candidate_model", "candidate_model_calibration")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert "not calibrated" in check.description
    assert "calibration.min_rows 100000" in check.description
    registry = _registry(project)
    assert registry.alias_version("champion") == "1"
    assert registry.calibrator("1").method == "identity"
    [estimated] = latest_metadata(instance, "estimated_performance").values()
    assert estimated["calibrated"] is False

    # The calibrator file changed after registration: refused, and predictions fail on it.
    source = next(project.cfg.workdir.rglob("calibration/calibrator.json"))
    raw = json.loads(source.read_text())
    raw["method"], raw["params"] = "sigmoid", {"a": 3.0, "b": 0.0}  # a steeper calibrator
    source.write_text(json.dumps(raw))
    model_registry._calibrators.clear()  # a fresh process: nothing verified yet
    with pytest.raises(ArtifactIntegrityError, match=r"calibrator\.json: changed since"):
        registry.calibrator("1")
    job = project.defs.resolve_job_def("ingest_job")
    result = job.execute_in_process(
        instance=instance,
        partition_key=_day(0),
        asset_selection=[dg.AssetKey("predictions")],
        raise_on_error=False,
    )
    assert not result.success and "changed since registration" in failure_message(result)


def _concentrate(path: Path) -> None:
    """A batch whose rows all look alike: every feature at its median (its most common value
    for a category), so the champion scores them nearly the same and cannot rank them; the
    estimate must say the AUC fell to about 0.5, long before any label."""
    frame = pd.read_parquet(path)
    for column in frame.columns:
        if column == "id":
            continue
        if pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].median()
        else:
            frame[column] = frame[column].mode().iloc[0]
    frame.to_parquet(path, index=False)


def test_an_estimated_drop_retrains_before_labels(tmp_path: Path, instance) -> None:
    spec = dataclasses.replace(SPEC, days=6, label_delay=5)  # no label lands before day 5
    overrides = {"drift": {"retrain": False}, "schedule": {"enabled": False}}
    project = make_project(tmp_path, spec, overrides)
    for i in (1, 3, 4):  # one alone (debounced), then two in a row
        _concentrate(project.landing / "features" / f"{_day(i)}.parquet")
    project.hold_back()
    loop = Loop(project, instance)
    for i in range(6):
        project.land_until(_day(i))
        loop.settle(ALL)
    estimated = latest_metadata(instance, "estimated_performance")
    assert [d for d, m in estimated.items() if m["degraded"]] == [_day(i) for i in (1, 3, 4)]
    assert estimated[_day(3)]["estimated_auc_high"] < estimated[_day(3)]["bar"]
    # what drift.require_impact reads: these batches' estimated AUC fell, the others' did not
    assert [d for d, m in estimated.items() if m["fell"]] == [_day(i) for i in (1, 3, 4)]
    [_, retrain] = loop.retrains()
    tags = retrain.dagster_run.tags
    assert tags["retrain/reason"] == "estimated_performance"
    assert tags["retrain/data_day"] == _day(4)
    assert "2 estimated-degraded batches in a row" in tags["retrain/evidence"]
    assert "upper end below the bar" in tags["retrain/evidence"]
    # Decided on day 4's batch; the first label (of day 0) only lands on day 5.
    assert min(latest_metadata(instance, "performance_report")) == _day(5)
    failed = _checks(instance, "estimated_performance", "estimated_performance_not_degraded")
    assert sum(not c.passed for c in failed) == 3


def test_an_estimated_drop_waits_when_switched_off(tmp_path: Path, instance) -> None:
    one_day = dataclasses.replace(SPEC, days=1)
    project = make_project(tmp_path / "on", one_day)
    switched = make_project(tmp_path / "off", one_day, {"estimation": {"retrain": False}})
    for i in range(3):
        _report(instance, "estimated_performance", _day(i), degraded=True, reason="low")
    result = tick(switched, instance, "performance_sensor")
    assert not result.run_requests
    assert "estimation.retrain is false" in result.skip_message
    result = tick(project, instance, "performance_sensor")
    [request] = result.run_requests
    assert request.tags["retrain/reason"] == "estimated_performance"
    assert request.tags["retrain/data_day"] == _day(1)  # the first two in a row; day 2 holds
    assert f"({_day(0)}..{_day(1)})" in request.tags["retrain/evidence"]


def _report(instance: dg.DagsterInstance, asset: str, day: str, **metadata) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset, partition=day, metadata=metadata)
    )


def _drifted(instance: dg.DagsterInstance, day: str) -> None:
    _report(instance, "drift_report", day, drifted=True, evidence="psi(x)=0.9", reference="ref")


def test_require_impact_retrains_only_on_drift_that_hurts(tmp_path: Path, instance) -> None:
    project = make_project(
        tmp_path, dataclasses.replace(SPEC, days=1), {"drift": {"require_impact": True}}
    )
    _drifted(instance, _day(0))
    _drifted(instance, _day(1))
    first = tick(project, instance, "drift_sensor")
    assert not first.run_requests  # the streak is complete, its estimate not there yet
    assert f"waits for estimated_performance[{_day(1)}]" in first.skip_message
    _report(instance, "estimated_performance", _day(0), fell=True, reason="fell 0")
    _report(instance, "estimated_performance", _day(1), fell=False, reason="did not fall")
    second = tick(project, instance, "drift_sensor", first.cursor)
    assert not second.run_requests
    assert "drift.require_impact" in second.skip_message and "did not fall" in second.skip_message
    _drifted(instance, _day(2))
    _report(instance, "estimated_performance", _day(2), fell=True, reason="AUC fell to 0.70")
    third = tick(project, instance, "drift_sensor", second.cursor)
    [request] = third.run_requests
    assert request.tags["retrain/reason"] == "drift" and request.tags["retrain/data_day"] == _day(2)
    assert "impact: AUC fell to 0.70" in request.tags["retrain/evidence"]
    assert request.tags["retrain/regime_start"] == _day(0)


def test_without_require_impact_drift_ignores_the_estimate(tmp_path: Path, instance) -> None:
    project = make_project(tmp_path, dataclasses.replace(SPEC, days=1))
    _drifted(instance, _day(0))
    _drifted(instance, _day(1))
    _report(instance, "estimated_performance", _day(1), fell=False, reason="did not fall")
    [request] = tick(project, instance, "drift_sensor").run_requests
    assert (
        request.tags["retrain/reason"] == "drift"
        and "impact" not in request.tags["retrain/evidence"]
    )
