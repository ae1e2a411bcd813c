"""The candidate's calibrator in MLflow: its JSON and a reliability curve as artifacts of the
cycle's run (``calibration/``), referenced from the model version by URI and sha256 (written at
registration, checked when loaded); and the non-blocking check on its calibration error."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from retrain_assets import names
from retrain_assets.config import RetrainConfig
from retrain_assets.lib.files import file_sha256
from retrain_assets.resources.mlflow import MlflowTracking
from retrain_assets.scope import Scope

if TYPE_CHECKING:
    import pandas as pd

ARTIFACT_DIR = "calibration"
CALIBRATOR_FILE = "calibrator.json"
RELIABILITY_FILE = "reliability.png"


def log_calibrator(
    cfg: RetrainConfig, mlflow: MlflowTracking, fit: Any, test: pd.DataFrame
) -> dict[str, str]:
    """Log the calibrator and its reliability curve on the test rows to the active run; the
    model-version tags that point at the calibrator."""
    from retrain_assets.lib.monitoring.estimation import reliability_png
    from retrain_assets.lib.training import fitting

    calibration = fit.calibration
    y = test[fitting.TARGET].to_numpy().astype(int)
    raw = fitting.score(fit.pipeline, test[cfg.data.features])
    with tempfile.TemporaryDirectory(prefix="calibration-") as tmp:
        folder = Path(tmp)
        path = folder / CALIBRATOR_FILE
        path.write_text(json.dumps(calibration.calibrator.to_dict(), sort_keys=True))
        reliability_png(
            y,
            raw,
            calibration.calibrator.apply(raw),
            folder / RELIABILITY_FILE,
            title=f"{cfg.model.registered_name}: reliability on {len(y)} test rows",
        )
        mlflow.tracker.log_artifacts(str(folder), artifact_path=ARTIFACT_DIR)
        sha = file_sha256(path)
    return {
        names.CALIBRATION_URI: f"runs:/{mlflow.run_id}/{ARTIFACT_DIR}/{CALIBRATOR_FILE}",
        names.CALIBRATION_SHA: sha,
        names.CALIBRATION_METHOD: calibration.calibrator.method,
        "calibration_ece": f"{calibration.test_ece:.6f}",
    }


def calibration_check(cfg: RetrainConfig, fit: Any, version: str) -> dg.AssetCheckResult:
    """WARN when the calibrated probabilities are off on the test rows, or no calibrator could be
    fitted: estimated_performance then reads poor probabilities."""
    calibration = fit.calibration
    limit = cfg.calibration.max_ece
    passed = calibration.fitted and calibration.test_ece <= limit
    if not calibration.fitted:
        detail = calibration.note
    else:
        verdict = "<=" if passed else ">"
        detail = (
            f"expected calibration error {calibration.test_ece:.3f} {verdict} "
            f"calibration.max_ece {limit} on {fit.test_rows} test rows (raw scores: "
            f"{calibration.test_ece_raw:.3f}); {calibration.note}"
        )
    return dg.AssetCheckResult(
        check_name=names.CALIBRATION_CHECK,
        passed=bool(passed),
        severity=dg.AssetCheckSeverity.WARN,
        description=detail,
        metadata={
            "ece": calibration.test_ece,
            "ece_raw": calibration.test_ece_raw,
            "max_ece": limit,
            "method": calibration.calibrator.method,
            "holdout_rows": calibration.holdout_rows,
            "holdout_days": " .. ".join(calibration.holdout_days or ()) or "none",
            "model_version": version,
        },
    )


def calibration_spec(cfg: RetrainConfig) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        names.CALIBRATION_CHECK,
        asset=Scope.of(cfg).key(names.CANDIDATE_MODEL),
        blocking=False,
        description=f"Calibrated probabilities on the test rows: expected calibration error <= "
        f"{cfg.calibration.max_ece} ({cfg.calibration.method}, fitted on the newest "
        f"{cfg.calibration.holdout_share:.0%} of the train rows). Warns only: estimated "
        "performance relies on it, serving does not.",
    )
