"""The repo is a `dg` project ([tool.dg] in pyproject.toml, definitions in
retrain_assets/definitions.py, no autoloaded defs/ folder): `dg check defs` and `dg list defs` work
from the repo root. Run as a user would, in a subprocess, with the instance and the config in a
temporary folder so nothing is written into the repo."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DG = Path(sys.executable).with_name("dg")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("dg")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    # The smallest config the contract accepts: loading the definitions reads no data file.
    (root / "landing").mkdir()
    config = root / "retrain.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data": {
                    "landing_dir": "landing",
                    "id_column": "id",
                    "target_column": "repaid",
                    "numerical_features": ["car_value"],
                    "categorical_features": ["salary_range"],
                    "start_date": "2024-01-01",
                },
                "workdir": ".retrain",
                "model": {"registered_name": "car_loan"},
            }
        )
    )
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "RETRAIN_CONFIG": str(config),
        "VIRTUAL_ENV": sys.prefix,  # the project's venv is the active one: dg warns otherwise
    }


def _dg(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(DG), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"dg {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def test_dg_check_defs_passes(env: dict[str, str]) -> None:
    result = _dg(env, "check", "defs")
    assert "All definitions loaded successfully" in result.stdout + result.stderr
    assert "warning" not in result.stderr.lower(), result.stderr


def test_dg_list_defs_names_the_loop(env: dict[str, str]) -> None:
    listed = json.loads(_dg(env, "list", "defs", "--json").stdout)
    assert {"retrain_job", "ingest_job", "canary_job"} <= {j["name"] for j in listed["jobs"]}
    assert {"drift_sensor", "landing_sensor", "performance_sensor", "canary_sensor"} <= {
        s["name"] for s in listed["sensors"]
    }
    assert [s["name"] for s in listed["schedules"]] == ["weekly_retrain_schedule"]
    assets = {a["asset_key"] for a in listed["assets"]}
    assert {"feature_batch", "drift_report", "candidate_model", "promoted_model"} <= assets
