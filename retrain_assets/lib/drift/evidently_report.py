"""Evidently's HTML drift report: the picture of a batch next to its reference that a person opens.

The verdicts that trigger retraining come from the fast engine in ``profile``; Evidently only draws
the report. It is slow to import and on large frames, so it is imported inside the function and
run on a random sample.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from retrain_assets.lib.files import atomic_path

_VALUE_DRIFT = "evidently:metric_v2:ValueDrift"


def _sample(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    if len(frame) <= max_rows:
        return frame.reset_index(drop=True)
    return frame.sample(n=max_rows, random_state=seed).reset_index(drop=True)


def write_drift_html(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    path: str | os.PathLike[str],
    *,
    psi_threshold: float = 0.2,
    max_rows: int = 20_000,
    seed: int = 0,
) -> dict[str, bool]:
    """Evidently DataDriftPreset (PSI at ``psi_threshold``) on a random sample of at most
    ``max_rows`` rows of each frame; writes the HTML to ``path`` atomically and returns
    Evidently's verdict per column, {column: drifted}.

    Evidently's PSI bins differ from ``profile``'s (Sturges bins over both samples, or one bin per
    value when the reference has <= 20 distinct values; flagged when PSI >= threshold), so on
    borderline columns the two can disagree; the share of drifted columns is the mean of the
    returned values.
    """
    columns = list(numerical) + list(categorical)
    for name, frame in (("reference", reference), ("current", current)):
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            raise ValueError(f"{name} lacks column(s) {absent}")
        if len(frame) == 0:
            raise ValueError(f"{name} has 0 rows")
    snapshot = _run_report(
        _sample(reference[columns], max_rows, seed),
        _sample(current[columns], max_rows, seed),
        numerical,
        categorical,
        psi_threshold,
    )
    with atomic_path(Path(path)) as tmp:
        snapshot.save_html(str(tmp))
    return _verdicts(snapshot.dict(), columns)


def _run_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    psi_threshold: float,
) -> Any:
    """Evidently 0.7's ``Report([DataDriftPreset], include_tests=True)`` run on the two frames."""
    from evidently import DataDefinition, Dataset, Report  # slow import: only when needed
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=list(numerical), categorical_columns=list(categorical)
    )
    ref = Dataset.from_pandas(reference, data_definition=definition)
    cur = Dataset.from_pandas(current, data_definition=definition)
    columns = [*numerical, *categorical]
    preset = DataDriftPreset(columns=columns, method="psi", threshold=psi_threshold)
    return Report([preset], include_tests=True).run(current_data=cur, reference_data=ref)


def _verdicts(snapshot: dict[str, Any], columns: list[str]) -> dict[str, bool]:
    """Evidently's own per-column verdict, read from the tests of the snapshot."""
    verdicts: dict[str, bool] = {}
    for test in snapshot.get("tests", []):
        params = test.get("metric_config", {}).get("params", {})
        if params.get("type") == _VALUE_DRIFT and params.get("column") in columns:
            verdicts[params["column"]] = test["status"] == "FAIL"
    absent = [c for c in columns if c not in verdicts]
    if absent:
        raise RuntimeError(f"Evidently returned no drift verdict for {absent}")
    return {c: verdicts[c] for c in columns}
