"""The shipped instance configs: one retraining at a time, a dead run cannot hold that slot, and
the UI opens on the project rather than Dagster's first-visit community dialog."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.instance.ref import InstanceRef

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", ["dagster.yaml", "deploy/dagster.yaml"])
def test_runs_are_monitored_and_retrainings_queue_one_at_a_time(path: str) -> None:
    config = yaml.safe_load((REPO / path).read_text())
    monitoring = config["run_monitoring"]
    assert monitoring["enabled"] is True
    assert 0 < monitoring["max_runtime_seconds"] <= 24 * 3600
    limits = config["run_coordinator"]["config"]["tag_concurrency_limits"]
    assert {"key": "retrain/reason", "limit": 1} in limits
    per_model = {"key": "retrain/cycle", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    assert per_model in limits
    assert config["telemetry"]["enabled"] is False
    assert config["nux"]["enabled"] is False


def test_the_dev_instance_loads_with_monitoring_on(tmp_path: Path, monkeypatch) -> None:
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path))) as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_runtime_seconds == 7200
        # What the UI's `shouldShowNux` query reads: the key is the one Dagster's schema knows.
        assert instance.nux_enabled is False
