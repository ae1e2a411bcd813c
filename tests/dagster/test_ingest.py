"""Ingest through real Dagster materialisations: a good landing file becomes a normalised batch
with useful metadata and a passed schema check; a bad one fails its run with a message naming the
file and the column, stores nothing, keeps the landing file and leaves other days alone."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from tests.conftest import Project, failure_message


def _materialize(project: Project, instance, asset: str, day: str | None = None):
    # The resolved asset carries the resources the code location binds (LandingStore, ...).
    return dg.materialize(
        [project.defs.resolve_assets_def(asset)],
        instance=instance,
        partition_key=day,
        raise_on_error=False,
    )


def _evaluations(instance, asset: str, check: str) -> list:
    """The check's recorded evaluations (passed, partition, description), newest first."""
    key = dg.AssetCheckKey(dg.AssetKey(asset), check)
    history = instance.event_log_storage.get_asset_check_execution_history(key, limit=50)
    return [r.event.dagster_event.event_specific_data for r in history if r.event]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_feature_batch_is_stored_with_metadata(project: Project, instance) -> None:
    result = _materialize(project, instance, "feature_batch", "2024-01-02")
    assert result.success
    stored = project.cfg.workdir / "batches" / "features" / "2024-01-02.parquet"
    frame = pd.read_parquet(stored)
    assert len(frame) == 300
    assert set(project.cfg.data.features) <= set(frame.columns)
    event = instance.get_latest_materialization_event(dg.AssetKey("feature_batch"))
    meta = event.asset_materialization.metadata
    assert event.asset_materialization.partition == "2024-01-02"
    assert meta["dagster/row_count"].value == 300
    assert re.search(r"^\| car_value +\| 0\.00% +\|$", meta["null_rates"].value, re.M)
    assert meta["preview"].value.count("\n") == 6  # header, rule, 5 rows
    [evaluation] = _evaluations(instance, "feature_batch", "feature_batch_schema")
    assert evaluation.passed and evaluation.partition == "2024-01-02"


def test_label_and_reference_batches(project: Project, instance) -> None:
    assert _materialize(project, instance, "reference_dataset").success
    reference = pd.read_parquet(project.cfg.workdir / "batches" / "reference.parquet")
    assert len(reference) == 2000 and set(reference["defaulted"].unique()) <= {0, 1}
    assert _materialize(project, instance, "label_batch", "2024-01-03").success
    labels = pd.read_parquet(project.cfg.workdir / "batches" / "labels" / "2024-01-03.parquet")
    assert list(labels.columns) == ["id", "defaulted"] and len(labels) == 300
    meta = instance.get_latest_materialization_event(
        dg.AssetKey("label_batch")
    ).asset_materialization.metadata
    assert 0.05 < meta["positive_rate"].value < 0.5


def _drop_column(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["credit_score"])


def _wrong_dtype(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["car_value"] = frame["car_value"].astype(str)
    frame.loc[5, "car_value"] = "twelve thousand"
    return frame


def _duplicate_ids(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[1, "id"] = frame.loc[0, "id"]
    return frame


BAD_INPUTS = {
    "missing_column": (_drop_column, "credit_score", "missing_column"),
    "wrong_dtype": (_wrong_dtype, "car_value", "wrong_dtype"),
    "duplicate_ids": (_duplicate_ids, "id", "duplicate_ids"),
}


@pytest.mark.parametrize("case", [*BAD_INPUTS, "unreadable_bytes"])
def test_bad_landing_file_fails_its_partition_only(project: Project, instance, case: str) -> None:
    day, good_day = "2024-01-04", "2024-01-05"
    path = project.landing / "features" / f"{day}.parquet"
    if case == "unreadable_bytes":
        path.write_bytes(b"PAR1 this is not really parquet \x00\x01\x02")
        column, rule = None, "unreadable"
    else:
        mangle, column, rule = BAD_INPUTS[case]
        mangle(pd.read_parquet(path)).to_parquet(path, index=False)
    before = _sha(path)

    bad = _materialize(project, instance, "feature_batch", day)
    good = _materialize(project, instance, "feature_batch", good_day)

    assert not bad.success and good.success
    message = failure_message(bad)
    assert str(path) in message and rule in message
    if column:
        assert f"column '{column}'" in message
    assert _sha(path) == before, "the landing file must stay as it was"
    assert not (project.cfg.workdir / "batches" / "features" / f"{day}.parquet").exists()
    assert (project.cfg.workdir / "batches" / "features" / f"{good_day}.parquet").exists()
    materialised = instance.get_materialized_partitions(dg.AssetKey("feature_batch"))
    assert materialised == {good_day}
    evaluations = _evaluations(instance, "feature_batch", "feature_batch_schema")
    assert {(e.partition, e.passed) for e in evaluations} == {(day, False), (good_day, True)}
    failed = next(e for e in evaluations if not e.passed)
    assert rule in failed.description and str(path) in failed.description


def test_conflicting_labels_fail_label_check(project: Project, instance) -> None:
    path = project.landing / "labels" / "2024-01-03.parquet"
    labels = pd.read_parquet(path)
    conflict = labels.iloc[[0]].assign(defaulted=1 - labels.iloc[0]["defaulted"])
    pd.concat([labels, conflict]).to_parquet(path, index=False)
    result = _materialize(project, instance, "label_batch", "2024-01-03")
    assert not result.success
    assert "duplicate_ids" in failure_message(result) and str(path) in failure_message(result)
