"""Evidently's HTML drift report: the human-facing picture of a batch next to its reference.

Why apart from drift.py: the verdicts that trigger retraining come from the fast engine in
drift.py; Evidently draws the report a human opens from the Dagster UI. Evidently takes seconds to
import and is slow on large frames, so it is imported inside the function and run on a random
sample. Evidently 0.7's API: ``Report([DataDriftPreset(...)], include_tests=True).run(current,
reference)`` on ``Dataset.from_pandas(frame, data_definition=DataDefinition(...))``; the tests of
the snapshot carry Evidently's own per-column verdict.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

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
    ``max_rows`` rows of each frame; writes the HTML to ``path`` atomically (temp file in the same
    folder + os.replace) and returns Evidently's verdict per column, {column: drifted}.

    Evidently's PSI bins differ from drift.py's (Sturges bins over both samples, or one bin per
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
    from evidently import DataDefinition, Dataset, Report  # slow import: only when needed
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=list(numerical), categorical_columns=list(categorical)
    )
    ref = Dataset.from_pandas(
        _sample(reference[columns], max_rows, seed), data_definition=definition
    )
    cur = Dataset.from_pandas(_sample(current[columns], max_rows, seed), data_definition=definition)
    preset = DataDriftPreset(columns=columns, method="psi", threshold=psi_threshold)
    snapshot = Report([preset], include_tests=True).run(current_data=cur, reference_data=ref)

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        snapshot.save_html(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

    verdicts: dict[str, bool] = {}
    for test in snapshot.dict().get("tests", []):
        params = test.get("metric_config", {}).get("params", {})
        if params.get("type") == _VALUE_DRIFT and params.get("column") in columns:
            verdicts[params["column"]] = test["status"] == "FAIL"
    absent = [c for c in columns if c not in verdicts]
    if absent:
        raise RuntimeError(f"Evidently returned no drift verdict for {absent}")
    return {c: verdicts[c] for c in columns}
