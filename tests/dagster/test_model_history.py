"""model_history, materialised through Dagster over an instance whose performance reports show a
known history: it names the day live AUC began to fall, and says "not detected" when it did not.

The reports are runless materialisations of performance_report's daily partitions (the metadata
performance_report writes: auc, champion_version), so the history is exactly the one planted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import dagster as dg
import pytest

from tests.conftest import (
    FAST,
    HISTORY_COLUMNS,
    SMALL,
    START,
    Project,
    failure_message,
    make_project,
)

DAYS = 14
DROP_DAY = 8  # days 0-7 at ~0.80, days 8-13 at ~0.66


def _day(i: int) -> str:
    return (START + dt.timedelta(days=i)).isoformat()


def _project(tmp_path: Path) -> Project:
    # model_history reads only the instance and MLflow: the feed itself can be tiny.
    spec = dataclasses.replace(SMALL, drift="none", days=1, rows_per_day=20, reference_rows=100)
    return make_project(tmp_path / "feed", spec, FAST)


def _plant(instance: dg.DagsterInstance, aucs: list[float]) -> None:
    for i, auc in enumerate(aucs):
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key="performance_report",
                partition=_day(i),
                metadata={"auc": auc, "champion_version": "1"},
            )
        )


def _table(markdown: str) -> tuple[list[str], list[list[str]]]:
    """A markdown table's header and rows as stripped cells (whatever the column padding)."""
    header, _rule, *rows = [line for line in markdown.splitlines() if line.startswith("|")]

    def cells(line: str) -> list[str]:
        return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]

    return cells(header), [cells(row) for row in rows]


def _wobble(i: int) -> float:
    return 0.002 if i % 2 else -0.002  # small, deterministic day-to-day noise


def _history(project: Project, instance: dg.DagsterInstance) -> dict:
    result = dg.materialize(
        [project.defs.resolve_assets_def("model_history")], instance=instance, raise_on_error=False
    )
    assert result.success, failure_message(result)
    [event] = result.asset_materializations_for_node("model_history")
    return {k: v.value for k, v in event.metadata.items()}


def test_model_history_names_the_day_live_auc_began_to_fall(tmp_path: Path, instance) -> None:
    project = _project(tmp_path)
    aucs = [(0.80 if i < DROP_DAY else 0.66) + _wobble(i) for i in range(DAYS)]
    _plant(instance, aucs)

    meta = _history(project, instance)

    assert meta["degradation_began"] == _day(DROP_DAY)
    assert meta["auc_before"] == pytest.approx(0.80, abs=0.001)
    assert meta["auc_after"] == pytest.approx(0.66, abs=0.001)
    assert meta["days"] == DAYS
    header, rows = _table(meta["history"])
    assert header == HISTORY_COLUMNS
    no_estimate = ["", "", ""]  # only performance reports were planted
    assert rows == [
        [_day(i), f"{auc:.3f}", f"{auc:.3f}", *no_estimate, "1", "", "", "", ""]
        for i, auc in enumerate(aucs)
    ]
    assert Path(meta["chart"]).read_bytes().startswith(b"\x89PNG")


def test_model_history_detects_nothing_on_a_flat_history(tmp_path: Path, instance) -> None:
    project = _project(tmp_path)
    _plant(instance, [0.80 + _wobble(i) for i in range(DAYS)])

    meta = _history(project, instance)

    assert meta["degradation_began"] == "not detected"
    assert "auc_before" not in meta and "auc_after" not in meta
    assert meta["days"] == DAYS
