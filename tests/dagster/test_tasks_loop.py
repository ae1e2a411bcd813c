"""Multiclass and regression models through the real loop (issue 15): the first landing ends
with a champion judged in the task's metric (its gate check named for it, its MLflow run and
registry version recording the task, the metric and, for multiclass, the classes); each batch's
predictions hold what the task needs; performance_report judges the labels in the task's metric,
equal to the lib's figure recomputed from the stored files; bad labels per task fail naming the
file and the column, or are noted."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from retrain_assets import names
from retrain_assets.lib.training import tasks
from tests.conftest import SMALL, Loop, Project, failure_message, latest_metadata, make_project

SPEC = dataclasses.replace(SMALL, drift="none", days=4, label_delay=1)
ALL = ("landing_sensor", "bootstrap_sensor", "drift_sensor", "performance_sensor")
METRIC = {"multiclass": "macro_roc_auc", "regression": "rmse"}
UNSEEN_DAY = "2024-01-03"


def _project(tmp_path: Path, task: str, overrides: dict | None = None) -> Project:
    return make_project(tmp_path / "feed", dataclasses.replace(SPEC, task=task), overrides)


def _check(instance: dg.DagsterInstance, asset: str, check: str):
    key = dg.AssetCheckKey(dg.AssetKey(asset), check)
    [record] = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
    return record.event.dagster_event.event_specific_data


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_a_task_model_is_trained_gated_and_judged_in_its_metric(
    tmp_path: Path, instance, task: str
) -> None:
    project = _project(tmp_path, task)
    if task == "multiclass":  # a class no training data held: accepted, counted, noted
        path = project.landing / "labels" / f"{UNSEEN_DAY}.parquet"
        labels = pd.read_parquet(path)
        labels.loc[:4, "repayment"] = "written_off"
        labels.to_parquet(path)
    loop = Loop(project, instance)
    loop.settle(ALL)
    assert all(r.success for r in loop.results), [failure_message(r) for r in loop.results]
    cfg = project.cfg
    assert cfg.task == task

    # The candidate: gated in the task's metric, recorded with its task in MLflow.
    gate = _check(instance, names.CANDIDATE_MODEL, names.METRIC_GATE)
    assert gate.passed and METRIC[task] in gate.description
    client = MlflowClient(cfg.tracking_uri, cfg.tracking_uri)
    version = client.get_model_version_by_alias(cfg.model.registered_name, names.CHAMPION)
    tags = version.tags
    assert tags[names.TASK_TAG] == task and tags[names.METRIC_TAG] == METRIC[task]
    assert tags["gate.metric"] == "passed" and "gate.auc" not in tags
    run = client.get_run(version.run_id)
    assert run.data.params["task"] == task
    assert run.data.metrics[f"test_{METRIC[task]}"] == pytest.approx(
        float(tags[names.TEST_METRIC_TAG]), abs=1e-6
    )
    if task == "multiclass":
        assert json.loads(tags[names.CLASSES_TAG]) == ["default", "late", "on_time"]
        assert 0.6 < run.data.metrics["test_macro_roc_auc"] <= 1.0
    else:
        assert names.CLASSES_TAG not in tags and run.data.metrics["test_rmse"] > 0

    # Every batch scored in the task's shape, and judged in its metric once labelled.
    reports = latest_metadata(instance, names.PERFORMANCE_REPORT)
    assert reports, "no performance report"
    day, meta = sorted(reports.items())[-1]
    assert meta["metric"] == METRIC[task]
    assert meta["metric_value"] == pytest.approx(_recomputed(project, task, day), abs=1e-9)
    if task == "multiclass":
        assert latest_metadata(instance, names.LABEL_BATCH)[UNSEEN_DAY]["unseen_class_labels"] == 5
        unseen = reports[UNSEEN_DAY]
        assert unseen["unseen_labels"] == 5
        assert unseen["metric_value"] == pytest.approx(
            _recomputed(project, task, UNSEEN_DAY), abs=1e-9
        )
    estimated = latest_metadata(instance, names.ESTIMATED_PERFORMANCE)
    assert all("not estimated" in m["estimate"] for m in estimated.values())


def _recomputed(project: Project, task: str, day: str) -> float:
    """The champion's metric on `day`'s labels, from the stored files alone (no package code
    beyond the metric functions)."""
    work = project.cfg.workdir
    labels = pd.read_parquet(work / "batches" / "labels" / f"{day}.parquet")
    predictions = pd.concat(
        [
            pd.read_parquet(p)
            for p in sorted((work / "monitoring" / "predictions").glob("*.parquet"))
        ]
    )
    rows = labels.merge(predictions, on="id")
    target = project.cfg.data.target_column
    if task == "regression":
        error = rows[target].to_numpy(float) - rows["champion_score"].to_numpy(float)
        return math.sqrt(float(np.mean(error**2)))
    classes = json.loads(rows["champion_classes"].iloc[0])
    rows = rows[rows[target].astype(str).isin(classes)]  # a class the model never saw: left out
    proba = np.vstack(rows["champion_proba"].to_numpy())
    return tasks.task_metrics("multiclass")[0](rows[target].astype(str), proba, classes)


def test_regression_labels_that_are_not_numbers_fail_naming_file_and_column(
    tmp_path: Path, instance
) -> None:
    project = _project(tmp_path, "regression")
    path = project.landing / "labels" / "2024-01-03.parquet"
    frame = pd.read_parquet(path).astype({"loss_amount": object})
    frame.loc[3, "loss_amount"] = "unknown"  # text where a number belongs
    path.unlink()
    frame.to_csv(path.with_suffix(".csv"), index=False)
    loop = Loop(project, instance)
    loop.settle(ALL)
    failed = [r for r in loop.results if not r.success]
    assert len(failed) == 1, [failure_message(r) for r in loop.results]
    message = failure_message(failed[0])
    assert "2024-01-03.csv" in message and "loss_amount" in message
    assert "non-numeric" in message


def test_a_class_that_vanished_from_the_training_window_fails_the_data_gate(tmp_path: Path) -> None:
    from retrain_assets.lib.training.fitting import DAY, SPLIT, TARGET
    from retrain_assets.training.dataset import data_gate_result

    project = _project(tmp_path, "multiclass")
    rows = pd.read_parquet(project.landing / "reference.parquet")
    rows = rows.rename(columns={"repayment": TARGET})
    rows[SPLIT] = np.where(np.arange(len(rows)) < 1500, "train", "test")
    rows["_order"] = np.arange(len(rows))
    rows[DAY] = rows["timestamp"].dt.date.astype(str)
    rows = rows[~((rows[SPLIT] == "train") & (rows[TARGET] == "late"))]
    check = data_gate_result(project.cfg, rows, ["default", "late", "on_time"])
    assert not check.passed
    assert "'late'" in check.description and "vanished" in check.description
    assert check.metadata["failed_rules"].value == "class_balance"
