"""The code location must load from $RETRAIN_CONFIG exactly as `dagster dev` loads it, Dagster's
string selections must parse (the antlr runtime trap), and the shipped dagster.yaml must give the
queue that runs one retraining at a time."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from retrain_assets.config import ConfigError
from tests.conftest import Project

REPO = Path(__file__).resolve().parents[2]


def test_code_location_loads_from_env(project: Project, monkeypatch) -> None:
    monkeypatch.setenv("RETRAIN_CONFIG", str(project.cfg.source))
    from retrain_assets.definitions import defs as load_defs

    defs = load_defs()
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups == {
        "reference_dataset": "ingest",
        "feature_batch": "ingest",
        "label_batch": "ingest",
        "training_dataset": "training",
        "candidate_model": "training",
        "promoted_model": "release",
        "canary_evaluation": "release",
        "model_history": "release",
        "reference_profile": "monitoring",
        "drift_report": "monitoring",
        "predictions": "monitoring",
        "estimated_performance": "monitoring",
        "performance_report": "monitoring",
    }
    checks = {key.name for key in graph.asset_check_keys}
    assert {
        "feature_batch_schema",
        "label_batch_schema",
        "reference_dataset_schema",
        "drift_report_within_threshold",
        "performance_report_not_degraded",
        "training_dataset_data_gate",
        "candidate_model_auc_vs_champion",
        "candidate_model_p95_latency",
        "canary_evaluation_non_inferior",
    } <= checks
    sensors = ("landing_sensor", "bootstrap_sensor", "drift_sensor", "performance_sensor")
    for name in (*sensors, "canary_sensor", "guardrail_sensor"):
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING
    schedule = defs.resolve_schedule_def("weekly_retrain_schedule")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert {j.name for j in defs.resolve_all_job_defs()} >= {
        "ingest_job",
        "reference_job",
        "retrain_job",
        "canary_job",
        "rollback_job",
    }


def test_missing_config_names_the_path(tmp_path: Path, monkeypatch) -> None:
    from retrain_assets.definitions import defs

    monkeypatch.setenv("RETRAIN_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match=r"nope\.yaml"):
        defs()


def test_string_asset_selection_parses(project: Project) -> None:
    # Fails with "ord() expected string of length 1" when dvc's antlr 4.9 wins (overrides.txt).
    graph = project.defs.resolve_asset_graph()
    selected = dg.AssetSelection.from_string('group:"training" or key:"promoted_model"').resolve(
        graph
    )
    assert {k.to_user_string() for k in selected} == {
        "training_dataset",
        "candidate_model",
        "promoted_model",
    }


def test_dagster_yaml_queues_one_retrain_at_a_time(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        config = instance.run_coordinator.get_run_queue_config()
        assert {"key": "retrain/reason", "limit": 1} in config.tag_concurrency_limits
        assert not instance.telemetry_enabled
        assert str(tmp_path) in instance.run_storage._conn_string  # where it writes
    finally:
        instance.dispose()


def test_retrain_job_carries_the_queue_tag(project: Project) -> None:
    job = project.defs.resolve_job_def("retrain_job")
    assert "retrain/reason" in job.tags
    assert {h.name for h in job.hook_defs} == {"end_mlflow_run_on_failure"}


def test_code_location_imports_no_heavy_library(project: Project) -> None:
    # Every run, sensor tick and UI reload loads the code location: Evidently (4 s), mlflow,
    # sklearn and pandas (with numpy and pyarrow, 0.4 s of a 1 s load) are imported only inside
    # the steps that use them (benchmarks/load.py measures the whole load against `import dagster`).
    heavy = ("evidently", "mlflow", "sklearn", "dvc", "scipy", "pandas", "numpy", "pyarrow")
    code = (
        "import sys; from retrain_assets.definitions import defs; defs(); "
        f"heavy = [m for m in {heavy!r} if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    env = {**os.environ, "RETRAIN_CONFIG": str(project.cfg.source)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
